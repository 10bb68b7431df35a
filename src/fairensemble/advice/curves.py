"""Per-group learning curves and budget predictions, from a run's metrics and plan alone.

A run that sweeps ``train_size`` and the mix measures each group's error at many
(own count, total) pairs. Following Rolf et al. (ICML 2021, "Representation Matters"), each
group's error (1 - metric, or the metric itself when lower is better) is modelled as

    err_g(n_g, n) = floor_g + a_g * n_g^(-p_g) + b_g * n^(-q_g)  [+ c_g * (1 - n_g / n)^r_g]

where n_g is the group's count in the training draw and n the training-set size. ``floor_g``
is the error more data cannot remove (label noise in the labels one is judged on, ambiguity);
``a_g n_g^-p_g + b_g n^-q_g`` is the **data term**, what more data would still remove.

The bracketed **conflict term** goes beyond Rolf et al.: their model lets the other groups'
data only help (b >= 0), but where groups' tasks conflict (a shared model must trade one
group's boundary for another's) a group's error rises with the other groups' share of the
training set at any size. ``c_g (1 - s_g)^r_g``, with s_g = n_g / n the group's own share,
is what the other groups' data cost it at that mix; it vanishes when the group trains alone.
Measured on the synthetic label-noise task, where the truth is known, Rolf's form alone fits
poorly (R^2 0.54 to 0.73) and puts a noisy group's floor at 0, while with the conflict term
the same selection rule fits with R^2 about 0.95 and recovers both groups' floors.

Fitting (per group and per ensemble size k, on the design-point means: one mean over
replicates per (train_size, mix)) is bounded least squares (``scipy.optimize.least_squares``):
floor in [0, max(1, largest error)], amplitudes >= 0, exponents in ``EXPONENT_RANGE``, from
several seeded starts, the best kept. Amplitudes are fitted at reference counts (the geometric
means of the measured counts) so that they sit on the error's scale whatever the exponent.

Nested forms, and the rule that picks one. Form P parameters, and what it needs to be
identifiable: at least P + 2 distinct design points (so AICc's correction is finite and one
degree of freedom is left), plus

    full       floor + a n_g^-p + b n^-q    5   >= 3 distinct own counts, >= 2 totals
    own        floor + a n_g^-p             3   >= 3 distinct own counts
    own_fixed  floor + a n_g^-1/2           2   >= 2 distinct own counts
    floor      floor                        1   (always)
    <form>+conflict  the form + c (1 - s)^r  +2  and >= 3 distinct shares

Among the identifiable forms the one with the smallest AICc (on the design-point means) wins
(ties go to the simpler form; with fewer than three design points AICc is undefined and the
floor alone is fitted). A curve too flat to tell from noise is thus reported as a floor.

Points with n_g = 0 (share 0 of that group) are left out of that group's fit: the own-count
term diverges at 0, and what a group scores with no data of its own is transfer from the other
groups, which the model does not describe. They stay in the measured points (``used`` False)
and are counted in each fit's ``n_zero``. Predictions need n_g >= 1 for a group whose form has
an own-count term (NaN otherwise).

Intervals come from refits on resampled replicates: for each bootstrap draw, the replicates of
every design point are resampled with replacement (the same draw for every group and for both
k, so differences between groups are paired), the means recomputed and the chosen form refitted.
With one replicate per design point the fitted values' residuals are resampled instead
(``intervals: "residuals"``). Replicates share their test set, so test-sample noise is not in
these intervals (it is small next to the training-draw noise at the usual test sizes).

The model lets the other groups' data only help (b >= 0). Where they hurt instead (the groups'
data conflict, so a shared model's error depends on the share, not only on counts), each fit's
residuals rise with the total at a given own count; ``interference`` tests that (Spearman) and
``fit_warnings`` says so beside poor fits (R^2 below ``POOR_R2``), since such floors are not
what more data would leave.

Budget predictions put the fits at training-set size N and a grid of shares of the moved group
(the others keeping their relative proportions, as the sweep does; with two groups simply
1 - share) and pick the share per objective as ``recommend`` does: gap (smallest gap), overall
(best equal-weight mean of groups, the ``balanced`` test mix, or given weights), worst (best
worst group) and pareto (the smallest gap among shares whose overall cannot be told apart from
the best, by the paired bootstrap). The recommended share's interval is the percentile interval
of the refits' own optima; the refits keep the chosen form, so these intervals do not carry the
uncertainty of the form itself. An objective whose predicted values vary across the shares by
less than ``FLAT_RMSE`` times the fits' RMSE is called flat: the share it picks rests on
differences smaller than what the fits miss. Extrapolation is flagged (``supported`` False)
when N lies more than ``MAX_FACTOR`` times beyond the measured sizes or the 95 % interval of a
group's predicted metric at the gap-minimising share is wider than ``MAX_WIDTH``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from scipy.stats import spearmanr

from fairensemble import metrics as M
from fairensemble.common.errors import UserError
from fairensemble.evaluation.analysis import direction, point_rows, with_coords
from fairensemble.evaluation.intervals import interval95
from fairensemble.sweep.plan import Plan, grid_value

BASE_FORMS = ("full", "own", "own_fixed", "floor")
FORMS = (*BASE_FORMS, *(f"{f}+conflict" for f in BASE_FORMS))
PARAMS = ("floor", "a", "p", "b", "q", "c", "r")
EXPONENT_RANGE = (0.05, 2.0)
CONFLICT_EXPONENT_RANGE = (0.05, 5.0)
FIXED_EXPONENT = 0.5
N_BOOT = 200
N_STARTS = 8  # seeded starts of each fit on the measured means (refits start from it, +1)
MAX_FACTOR = 4.0  # how far beyond the measured sizes a prediction is trusted
MAX_WIDTH = 0.10  # widest 95 % interval of a group's predicted metric a prediction is trusted at
SHARE_STEP = 0.01
INTERFERENCE_P = 0.05  # residuals rising with the total at this level flag interference
FLAT_RMSE = 2.0  # an objective whose prediction varies less than this times the fits' RMSE is flat
POOR_R2 = 0.8  # a group's fit explaining less of its design points' variance is called poor


class CurvesError(UserError):
    """A learning-curve problem, phrased as one line."""


# ----------------------------------------------------------------------------- measured points


def measured_points(table: pd.DataFrame, plan: Plan, metric: str | None = None
                    ) -> pd.DataFrame:
    """The measured points of a run: one row per (grid point, mix, replicate, k, group) with
    the group's count in the training draw ``n_group`` (from the cell's counts), the
    training-set size ``n_total``, the metric ``value`` and the ``error`` (1 - value when
    higher is better, the value itself when lower is better). ``table`` is metrics.parquet
    (any ``post`` rows other than "none" are ignored); ``metric`` defaults to the primary.

    Columns: every grid field (``train_size`` always, from the counts when it is not swept),
    ``ratio`` (and ``mix`` for explicit mixes), ``replicate``, ``k``, ``group``, ``n_group``,
    ``n_total``, ``share``, ``value``, ``error``, ``used`` (False where n_group = 0)."""
    metric = metric or plan.cfg.primary
    way = _direction(metric)
    if M.get(metric).scope != "group":
        raise CurvesError(f"metric: {metric!r} compares groups; learning curves need a "
                          "per-group metric such as accuracy")
    rows = table[table["metric"] == metric]
    if "post" in rows.columns:
        rows = rows[rows["post"] == "none"]
    if rows.empty:
        raise CurvesError(f"metric: no rows of {metric!r} in the metrics table")
    counts = []
    for cell in plan.cells:
        groups = plan.layouts[cell.point_index].groups
        per_group = [int(sum(c)) for c in cell.counts]
        counts.append(with_coords(pd.DataFrame({
            "group": groups, "n_group": per_group, "n_total": sum(per_group)}), cell))
    cells = pd.concat(counts, ignore_index=True)
    keys = [c for c in cells.columns if c not in ("group", "n_group", "n_total")]
    missing = [c for c in keys if c not in rows.columns]
    if missing:
        raise CurvesError(f"metrics table: expected column(s) {missing} (the plan's "
                          "coordinates); is it this run's metrics.parquet?")
    out = rows.merge(cells, on=[*keys, "group"], how="inner")
    if out.empty:
        raise CurvesError("metrics table: no row matches a cell of the plan")
    if "train_size" not in out.columns:
        out.insert(0, "train_size", out["n_total"])
    out = out.rename(columns={"mean": "value"})
    out["share"] = out["n_group"] / out["n_total"]
    out["error"] = out["value"] if way == "lower" else 1.0 - out["value"]
    out["used"] = out["n_group"] > 0
    drop = [c for c in ("metric", "post", "std", "n_draws") if c in out.columns]
    return out.drop(columns=drop)


def _direction(metric: str) -> str:
    way = direction(metric)
    if way == "neither":
        raise CurvesError(f"metric: {metric!r} has no better direction; learning curves need "
                          "a metric where higher or lower is better")
    return way


# ----------------------------------------------------------------------------- the model


def model_error(theta: np.ndarray, n_group: Any, n_total: Any) -> np.ndarray:
    """floor + a n_g^-p + b n^-q + c (1 - n_g / n)^r for parameter rows ``theta`` [..., 7]
    (floor, a, p, b, q, c, r; 5 columns: no conflict term); a term whose amplitude is 0
    contributes 0 (its exponent may be NaN). Broadcasts: theta [B, 7] against counts [S]
    gives [B, S]."""
    theta = np.asarray(theta, dtype=float)
    if theta.shape[-1] == 5:
        pad = np.broadcast_to(np.array([0.0, np.nan]), (*theta.shape[:-1], 2))
        theta = np.concatenate([theta, pad], axis=-1)
    ng = np.asarray(n_group, dtype=float)
    n = np.asarray(n_total, dtype=float)
    floor, a, p, b, q, c, r = (theta[..., i] for i in range(7))
    if theta.ndim > 1:
        floor, a, p, b, q, c, r = (x[:, None] for x in (floor, a, p, b, q, c, r))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        own = np.where(a > 0, a * np.power(ng, -np.nan_to_num(p, nan=1.0)), 0.0)
        own = np.where((a > 0) & (ng < 1), np.nan, own)  # no own data: outside the model
        total = np.where(b > 0, b * np.power(n, -np.nan_to_num(q, nan=1.0)), 0.0)
        others = np.clip(1.0 - ng / n, 0.0, 1.0)
        conflict = np.where(c > 0, c * np.power(others, np.nan_to_num(r, nan=1.0)), 0.0)
    return floor + own + total + conflict


@dataclass(frozen=True)
class Form:
    """A nested form: which terms it has (the own-count term with a free or fixed exponent,
    the total term, the conflict term) and so which parameters it fits, in order."""

    name: str

    @property
    def own(self) -> str | None:
        base = self.name.split("+")[0]
        return {"full": "free", "own": "free", "own_fixed": "fixed"}.get(base)

    @property
    def total(self) -> bool:
        return self.name.split("+")[0] == "full"

    @property
    def conflict(self) -> bool:
        return self.name.endswith("+conflict")

    @property
    def slots(self) -> list[str]:
        out = ["floor"]
        if self.own:
            out += ["a", "p"] if self.own == "free" else ["a"]
        if self.total:
            out += ["b", "q"]
        if self.conflict:
            out += ["c", "r"]
        return out

    @property
    def n_params(self) -> int:
        return len(self.slots)


N_PARAMS = {f: Form(f).n_params for f in FORMS}


@dataclass
class _Design:
    """One group's design-point means: counts, the mean error, and the reference counts."""

    n_group: np.ndarray
    n_total: np.ndarray
    y: np.ndarray
    ref_group: float
    ref_total: float

    @property
    def others(self) -> np.ndarray:
        """The other groups' share of each design point's training set."""
        return np.clip(1.0 - self.n_group / self.n_total, 0.0, 1.0)

    def residuals(self, x: np.ndarray, form: str, y: np.ndarray) -> np.ndarray:
        return _scaled(x, form, self) - y

    def jacobian(self, x: np.ndarray, form: str, y: np.ndarray) -> np.ndarray:
        f, v = Form(form), dict(zip(Form(form).slots, x))
        u = self.n_group / self.ref_group
        w = self.n_total / self.ref_total
        o = self.others
        cols = [np.ones_like(u)]
        if f.own:
            p = v.get("p", FIXED_EXPONENT)
            up = u ** -p
            cols.append(up)
            if f.own == "free":
                cols.append(-v["a"] * up * np.log(u))
        if f.total:
            wq = w ** -v["q"]
            cols += [wq, -v["b"] * wq * np.log(w)]
        if f.conflict:
            with np.errstate(divide="ignore", invalid="ignore"):
                orr = o ** v["r"]
                cols += [orr, np.where(o > 0, v["c"] * orr * np.log(np.where(o > 0, o, 1.0)),
                                       0.0)]
        return np.column_stack(cols)


def _scaled(x: np.ndarray, form: str, d: _Design) -> np.ndarray:
    """The model in the fitted parametrisation: amplitudes at the reference counts."""
    f, v = Form(form), dict(zip(Form(form).slots, x))
    err = np.full_like(d.y, v["floor"])
    if f.own:
        err = err + v["a"] * (d.n_group / d.ref_group) ** -v.get("p", FIXED_EXPONENT)
    if f.total:
        err = err + v["b"] * (d.n_total / d.ref_total) ** -v["q"]
    if f.conflict:
        err = err + v["c"] * d.others ** v["r"]
    return err


def _to_theta(x: np.ndarray, form: str, d: _Design) -> np.ndarray:
    """Fitted parameters -> (floor, a, p, b, q, c, r) on raw counts (absent terms: amplitude 0,
    exponent NaN)."""
    f, v = Form(form), dict(zip(Form(form).slots, x))
    theta = np.array([v["floor"], 0.0, np.nan, 0.0, np.nan, 0.0, np.nan])
    if f.own:
        p = v.get("p", FIXED_EXPONENT)
        theta[1:3] = v["a"] * d.ref_group ** p, p
    if f.total:
        theta[3:5] = v["b"] * d.ref_total ** v["q"], v["q"]
    if f.conflict:
        theta[5:7] = v["c"], v["r"]
    return theta


_LIMITS = {"a": (0.0, np.inf), "p": EXPONENT_RANGE, "b": (0.0, np.inf), "q": EXPONENT_RANGE,
           "c": (0.0, np.inf), "r": CONFLICT_EXPONENT_RANGE}


def _bounds(form: str, floor_max: float) -> tuple[np.ndarray, np.ndarray]:
    limits = {"floor": (0.0, floor_max), **_LIMITS}
    slots = Form(form).slots
    return (np.array([limits[k][0] for k in slots]), np.array([limits[k][1] for k in slots]))


def _random_start(form: str, y: np.ndarray, floor_max: float, rng: np.random.Generator
                  ) -> np.ndarray:
    spread = float(np.ptp(y)) + 1e-3
    draw = {"floor": lambda: rng.uniform(0.0, min(max(float(y.min()), 0.0), floor_max)),
            "a": lambda: rng.uniform(0.0, spread), "p": lambda: rng.uniform(0.1, 1.5),
            "b": lambda: rng.uniform(0.0, spread), "q": lambda: rng.uniform(0.1, 1.5),
            "c": lambda: rng.uniform(0.0, spread), "r": lambda: rng.uniform(0.3, 3.0)}
    return np.array([draw[k]() for k in Form(form).slots])


def _first_start(form: str, y: np.ndarray, floor_max: float) -> np.ndarray:
    """A start from the data: floor at half the smallest error, the rest a power law of 1/2."""
    floor = min(0.5 * max(float(y.min()), 0.0), floor_max)
    rest = max(float(y.mean()) - floor, 1e-3)
    values = {"floor": floor, "a": 0.8 * rest, "p": 0.5, "b": 0.2 * rest, "q": 0.5,
              "c": 0.2 * rest, "r": 1.0}
    return np.array([values[k] for k in Form(form).slots])


def _fit_form(d: _Design, y: np.ndarray, form: str, starts: list[np.ndarray], floor_max: float
              ) -> tuple[np.ndarray, float]:
    """The best of several bounded least-squares fits: (fitted parameters, residual SS)."""
    lo, hi = _bounds(form, floor_max)
    best, best_cost = None, np.inf
    for x0 in starts:
        x0 = np.clip(x0, lo, np.where(np.isfinite(hi), hi, x0))
        fit = least_squares(d.residuals, x0, jac=d.jacobian, bounds=(lo, hi), method="trf",
                            args=(form, y), x_scale="jac")
        if fit.cost < best_cost:
            best, best_cost = fit.x, fit.cost
    return best, 2.0 * best_cost


def identifiable_forms(n_group: np.ndarray, n_total: np.ndarray) -> list[str]:
    """The nested forms the design points can identify (the rule in the module docstring)."""
    pairs = {(float(a), float(b)) for a, b in zip(n_group, n_total)}
    D = len(pairs)
    own = len({a for a, _ in pairs})
    totals = len({b for _, b in pairs})
    shares = len({round(a / b, 9) for a, b in pairs})
    need = {"full": own >= 3 and totals >= 2, "own": own >= 3, "own_fixed": own >= 2,
            "floor": True}
    ok = []
    for name in FORMS:
        f = Form(name)
        base = name.split("+")[0]
        if need[base] and (not f.conflict or shares >= 3) and (
                name == "floor" or D >= f.n_params + 2):
            ok.append(name)
    return ok


def aicc(rss: float, n: int, k: int) -> float:
    """Corrected Akaike criterion of a least-squares fit (inf where n <= k + 1)."""
    if n <= k + 1:
        return math.inf
    return n * math.log(max(rss, 1e-300) / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)


# ----------------------------------------------------------------------------- fits


@dataclass
class GroupCurve:
    """One group's learning curve at one ensemble size: the chosen form, its parameters
    (floor, a, p, b, q) on raw counts, the bootstrap refits' parameters and the fit's
    quality on the design-point means."""

    group: str
    form: str
    theta: np.ndarray  # [7]: floor, a, p, b, q, c, r (an absent term: amplitude 0, exponent NaN)
    boot: np.ndarray  # [n_boot, 7]
    design: pd.DataFrame  # per design point: measured mean error, fitted, residual, ...
    aicc: dict[str, float]  # per identifiable form
    rmse: float
    r2: float
    n_zero: int  # design points with no data of this group (left out of the fit)
    interference: dict[str, Any] = field(default_factory=dict)  # see ``interference``

    @property
    def floor(self) -> float:
        return float(self.theta[0])

    @property
    def n_points(self) -> int:
        """Design points the fit used (those with data of this group)."""
        return int(self.design["fitted"].notna().sum())

    def error(self, n_group: Any, n_total: Any) -> np.ndarray:
        return model_error(self.theta, n_group, n_total)

    def boot_error(self, n_group: Any, n_total: Any) -> np.ndarray:
        """[n_boot, ...] errors of the bootstrap refits."""
        return model_error(self.boot, np.atleast_1d(n_group), np.atleast_1d(n_total))

    def params(self) -> dict[str, float | None]:
        return {k: _num(v) for k, v in zip(PARAMS, self.theta)}


@dataclass
class Curves:
    """Learning curves of every group at one setting (the grid fields other than
    ``train_size``) and one ensemble size ``k``."""

    k: int
    metric: str
    direction: str  # "higher" or "lower": how the metric is better
    groups: list[str]
    moved_group: str  # the group whose share a prediction moves
    others: dict[str, float]  # relative proportions of the other groups
    sizes: list[int]  # measured training-set sizes
    shares: list[float]  # measured shares of the moved group
    fits: dict[str, GroupCurve]
    intervals: str  # "replicates" (resampled replicates) or "residuals"
    n_boot: int
    seed: int
    point: dict[str, Any] = field(default_factory=dict)

    def share_vector(self, share: float) -> dict[str, float]:
        """Each group's share when the moved group has ``share``."""
        out = {g: (1.0 - share) * w for g, w in self.others.items()}
        out[self.moved_group] = share
        return {g: out[g] for g in self.groups}

    def metric_of(self, error: np.ndarray) -> np.ndarray:
        return error if self.direction == "lower" else 1.0 - error


def fit_curves(points: pd.DataFrame, k: int, *, metric: str = "accuracy",
               moved_group: str | None = None, others: dict[str, float] | None = None,
               n_boot: int = N_BOOT, seed: int = 0, n_starts: int = N_STARTS,
               point: dict[str, Any] | None = None) -> Curves:
    """Fit every group's learning curve to ``points`` of one setting (``measured_points`` rows
    of one value of each grid field other than ``train_size``) at ensemble size ``k``.

    ``metric`` names what ``points`` measure (its direction turns predicted errors back into
    metrics). ``moved_group`` (default: the last group) and ``others`` (relative proportions of
    the rest, default equal) say how a prediction moves the mix. The bootstrap is seeded by
    ``seed``; the same seed draws the same replicates for every group and every k."""
    rows = points[points["k"] == k]
    if rows.empty:
        raise CurvesError(f"k: no measured points at k={k} (have {sorted(points['k'].unique())})")
    sizes = sorted(int(s) for s in rows["train_size"].unique())
    if len(sizes) < 2:
        raise CurvesError(
            f"train_size: learning curves need at least two train sizes (sweep it, e.g. "
            f"grid: {{train_size: [500, 1000, 2000]}}), got {sizes}")
    groups = list(dict.fromkeys(rows["group"]))
    moved_group = moved_group or groups[-1]
    if moved_group not in groups:
        raise CurvesError(f"moved_group: expected one of {groups}, got {moved_group!r}")
    rest = [g for g in groups if g != moved_group]
    total = sum((others or {}).get(g, 0.0) for g in rest)
    others = {g: others[g] / total for g in rest} if others and total > 0 else \
        {g: 1.0 / len(rest) for g in rest}
    arrays = _DesignArrays.of(rows, groups)
    resample = _Resampler(arrays, n_boot, np.random.SeedSequence(seed, spawn_key=(0,)))
    fits = {g: _fit_group(g, arrays, resample, np.random.default_rng(
                np.random.SeedSequence(seed, spawn_key=(1, gi))), n_starts)
            for gi, g in enumerate(groups)}
    shares = sorted({float(s) for s in rows.loc[rows["group"] == moved_group, "share"]})
    return Curves(k=k, metric=metric, direction=_direction(metric), groups=groups,
                  moved_group=moved_group, others=others, sizes=sizes, shares=shares,
                  fits=fits, intervals=resample.kind, n_boot=n_boot, seed=seed,
                  point=dict(point or {}))


@dataclass
class _DesignArrays:
    """The measured errors of one setting and k, arranged by design point (train_size, mix):
    ``errors[g]`` [design point, replicate] (NaN where a replicate is missing), the group's
    count and the total per design point."""

    keys: list[str]
    design_keys: list[tuple]
    errors: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    totals: np.ndarray

    @classmethod
    def of(cls, rows: pd.DataFrame, groups: list[str]) -> _DesignArrays:
        mixes = "mix" in rows.columns and rows["mix"].notna().any()
        keys = ["train_size", "mix" if mixes else "ratio"]
        design = rows.groupby(keys, sort=True)
        design_keys = list(design.groups)
        reps = {r: i for i, r in enumerate(sorted(rows["replicate"].unique()))}
        D = len(design_keys)
        errors = {g: np.full((D, len(reps)), np.nan) for g in groups}
        counts = {g: np.zeros(D) for g in groups}
        totals = np.zeros(D)
        for di, key in enumerate(design_keys):
            part = design.get_group(key)
            totals[di] = part["n_total"].iloc[0]
            for g, r, e, ng in part[["group", "replicate", "error", "n_group"]].itertuples(
                    index=False):
                errors[g][di, reps[r]] = e
                counts[g][di] = ng
        return cls(keys, design_keys, errors, counts, totals)

    @property
    def n_replicates(self) -> np.ndarray:
        return np.isfinite(next(iter(self.errors.values()))).sum(axis=1)


class _Resampler:
    """Bootstrap data sets of design-point means, the same draws for every group: replicates
    resampled within each design point, or (one replicate everywhere) residuals resampled
    across design points."""

    def __init__(self, arrays: _DesignArrays, n_boot: int, seed: np.random.SeedSequence):
        self.n_boot = n_boot
        rng = np.random.default_rng(seed)
        self.kind = "replicates" if (arrays.n_replicates >= 2).any() else "residuals"
        if self.kind == "replicates":
            # per design point, [n_boot, R_d] positions among the replicates it has
            self.draws = []
            for row in next(iter(arrays.errors.values())):
                have = np.flatnonzero(np.isfinite(row))
                self.draws.append(have[rng.integers(0, len(have), size=(n_boot, len(have)))])
        else:
            self.uniforms = rng.random((n_boot, len(arrays.totals)))

    def means(self, b: int, errors: np.ndarray, used: np.ndarray, fitted: np.ndarray,
              residuals: np.ndarray) -> np.ndarray:
        """Resample ``b``'s means at the ``used`` design points of one group."""
        if self.kind == "replicates":
            means = np.array([errors[di, draw[b]].mean() for di, draw in enumerate(self.draws)])
            return means[used]
        idx = np.floor(self.uniforms[b, used] * used.sum()).astype(int)
        return fitted + residuals[idx]


def _fit_group(g: str, arrays: _DesignArrays, resample: _Resampler, rng: np.random.Generator,
               n_starts: int) -> GroupCurve:
    """Fit one group's identifiable forms, keep the best by AICc, refit it on every resample."""
    errors, counts, totals = arrays.errors[g], arrays.counts[g], arrays.totals
    means = np.nanmean(errors, axis=1)
    used = (counts > 0) & np.isfinite(means)
    if used.sum() == 0:
        raise CurvesError(f"group {g!r}: no design point holds data of this group")
    own = counts[used]
    d = _Design(own, totals[used], means[used], float(np.exp(np.log(own).mean())),
                float(np.exp(np.log(totals[used]).mean())))
    floor_max = max(1.0, float(d.y.max()))
    forms = identifiable_forms(d.n_group, d.n_total)
    scores, fitted = {}, {}
    for form in forms:
        starts = [_first_start(form, d.y, floor_max)] + [
            _random_start(form, d.y, floor_max, rng) for _ in range(n_starts - 1)]
        fitted[form], rss = _fit_form(d, d.y, form, starts, floor_max)
        scores[form] = aicc(rss, len(d.y), N_PARAMS[form])
    form = min(forms, key=lambda f: (scores[f], N_PARAMS[f]))
    x_hat = fitted[form]
    pred = _scaled(x_hat, form, d)
    resid = d.y - pred
    # refits of the chosen form, each from the fit itself and one random start
    boot = np.empty((resample.n_boot, len(PARAMS)))
    for b in range(resample.n_boot):
        yb = resample.means(b, errors, used, pred, resid)
        xb, _ = _fit_form(d, yb, form, [x_hat, _random_start(form, yb, floor_max, rng)],
                          floor_max)
        boot[b] = _to_theta(xb, form, d)
    table = pd.DataFrame({"train_size": [key[0] for key in arrays.design_keys],
                          arrays.keys[1]: [key[1] for key in arrays.design_keys],
                          "n_group": counts, "n_total": totals,
                          "n_replicates": arrays.n_replicates, "measured": means})
    table["fitted"] = np.nan
    table.loc[used, "fitted"] = pred
    table["residual"] = table["measured"] - table["fitted"]
    table["replicates"] = [row[np.isfinite(row)].tolist() for row in errors]
    ss_tot = float(((d.y - d.y.mean()) ** 2).sum())
    rss = float((resid ** 2).sum())
    return GroupCurve(group=g, form=form, theta=_to_theta(x_hat, form, d), boot=boot,
                      design=table, aicc=scores, rmse=math.sqrt(rss / len(d.y)),
                      r2=1.0 - rss / ss_tot if ss_tot > 0 else float("nan"),
                      n_zero=int((counts == 0).sum()), interference=interference(resid, d.n_total))


def interference(residuals: np.ndarray, n_total: np.ndarray) -> dict[str, Any]:
    """Do the other groups' data hurt this group? With b >= 0 the model lets the total only
    lower a group's error at a given own count; residuals that rise with the total (Spearman
    correlation > 0 at p < ``INTERFERENCE_P``) say that more of the other groups' data raised
    it instead: their data conflict with this group's, which the model cannot express, so its
    floor and predictions are unreliable."""
    if len(np.unique(n_total)) < 2 or len(residuals) < 4 or np.ptp(residuals) == 0:
        return {"rho": None, "p_value": None, "flagged": False}
    rho, p_value = spearmanr(residuals, n_total)
    return {"rho": _num(rho), "p_value": _num(p_value),
            "flagged": bool(rho > 0 and p_value < INTERFERENCE_P)}


# ----------------------------------------------------------------------------- a run


def sweeps_sizes(plan: Plan) -> bool:
    """Whether a run measured the two or more training-set sizes learning curves need."""
    return len(set(plan.cfg.grid.get("train_size", []))) >= 2


def settings(points: pd.DataFrame, plan: Plan) -> list[dict[str, Any]]:
    """The distinct values of the grid fields other than ``train_size``: one fit each."""
    fields = [f for f in plan.cfg.grid if f != "train_size"]
    if not fields:
        return [{}]
    return [{f: v.item() if isinstance(v, np.generic) else v for f, v in zip(fields, vals)}
            for vals in points[fields].drop_duplicates().itertuples(index=False, name=None)]


def fit_run(table: pd.DataFrame, plan: Plan, *, metric: str | None = None,
            n_boot: int = N_BOOT, seed: int = 0) -> list[dict[int, Curves]]:
    """Learning curves of a run at k = 1 and k = E for every setting (the grid fields other than
    ``train_size``): a list, one ``{k: Curves}`` per setting, in the order the table holds
    them. The moved group is the plan's ratio group; the others keep their proportions in the
    plan's mixes."""
    metric = metric or plan.cfg.primary
    points = measured_points(table, plan, metric)
    E = plan.cfg.ensemble.members
    out = []
    for si, setting in enumerate(settings(points, plan)):
        rows = point_rows(points, list(setting), setting)
        layout = plan.layouts[_point_index(plan, setting)]
        others = _other_proportions(layout.groups, layout.ratio_group, layout.shares)
        by_k = {}
        for k in sorted({1, E}):
            # each setting its own bootstrap stream; k = 1 and E share it (paired refits)
            by_k[k] = fit_curves(rows, k, metric=metric, moved_group=layout.ratio_group,
                                 others=others, n_boot=n_boot, seed=seed + 7919 * si,
                                 point=setting)
        out.append(by_k)
    return out


def _point_index(plan: Plan, setting: dict[str, Any]) -> int:
    for i, p in enumerate(plan.points):
        if all(grid_value(p.get(f)) == v for f, v in setting.items()):
            return i
    return 0


def _other_proportions(groups: list[str], moved: str, shares: list[list[float]]
                       ) -> dict[str, float]:
    """The relative proportions of the groups other than ``moved`` in the plan's mixes."""
    mi = groups.index(moved)
    rest = np.zeros(len(groups))
    for s in shares:
        s = np.asarray(s, dtype=float)
        if s[mi] < 1.0:
            rest += s / (1.0 - s[mi])
    rest[mi] = 0.0
    if rest.sum() <= 0:
        rest = np.ones(len(groups))
        rest[mi] = 0.0
    rest /= rest.sum()
    return {g: float(rest[i]) for i, g in enumerate(groups) if g != moved}


# ----------------------------------------------------------------------------- predictions


@dataclass
class Prediction:
    """Predicted metrics at one budget over a grid of shares of the moved group: point
    estimates [S] and bootstrap refits [n_boot, S] per label (each group, overall, gap,
    worst), and each objective's recommended share with its interval."""

    budget: int
    shares: np.ndarray
    values: dict[str, np.ndarray]
    boot: dict[str, np.ndarray]
    recommended: dict[str, dict[str, Any]]
    extrapolation: dict[str, Any]
    weights: dict[str, float]

    def interval(self, label: str) -> tuple[np.ndarray, np.ndarray]:
        """Percentile 95 % intervals at every share."""
        return band95(self.boot[label])


def band95(boot: np.ndarray) -> np.ndarray:
    """[2, S]: the 2.5 and 97.5 percentiles of bootstrap values [n_boot, S] per column,
    ignoring NaN (NaN where a column has no value, e.g. a group without data)."""
    out = np.full((2, boot.shape[1]), np.nan)
    has = np.isfinite(boot).any(axis=0)
    if has.any():
        out[:, has] = np.nanpercentile(boot[:, has], [2.5, 97.5], axis=0)
    return out


def default_shares(curves: Curves, step: float = SHARE_STEP) -> np.ndarray:
    """Shares from the smallest positive to the largest measured share below 1 (the range the
    fits saw the moved group and the others in), in ``step``s."""
    inside = [s for s in curves.shares if 0.0 < s < 1.0] or [0.5]
    lo, hi = min(inside), max(inside)
    n = int(round((hi - lo) / step))
    return np.round(np.linspace(lo, hi, n + 1), 6) if n > 0 else np.array([lo])


def predict(curves: Curves, budget: int, shares: Sequence[float] | None = None,
            weights: dict[str, float] | None = None) -> Prediction:
    """Per-group metric, overall, gap and worst group at training-set size ``budget`` for each
    share of the moved group, and the recommended share of each objective.

    ``weights`` weigh the groups in ``overall`` (default equal: the balanced test mix; pass the
    test set's group proportions for the natural mix)."""
    if budget < 1:
        raise CurvesError(f"budget: expected a training-set size >= 1, got {budget}")
    s = np.asarray(default_shares(curves) if shares is None else shares, dtype=float)
    if s.size == 0 or (s < 0).any() or (s > 1).any():
        raise CurvesError("shares: expected values in [0, 1]")
    w = {g: 1.0 for g in curves.groups} if weights is None else dict(weights)
    if set(w) != set(curves.groups):
        raise CurvesError(f"weights: expected one per group {curves.groups}, got {sorted(w)}")
    wsum = sum(w.values())
    w = {g: w[g] / wsum for g in curves.groups}
    values, boot = {}, {}
    for g in curves.groups:
        fit = curves.fits[g]
        share_g = np.array([curves.share_vector(x)[g] for x in s])
        err, err_b = fit.error(share_g * budget, budget), fit.boot_error(share_g * budget, budget)
        if curves.direction == "higher":
            err, err_b = np.clip(err, 0.0, 1.0), np.clip(err_b, 0.0, 1.0)
        values[g], boot[g] = curves.metric_of(err), curves.metric_of(err_b)
    _derived(values, curves, w)
    _derived(boot, curves, w)
    recommended = _recommend(s, values, boot, curves.direction == "lower")
    pred = Prediction(int(budget), s, values, boot, recommended, {}, w)
    pred.extrapolation = extrapolation(curves, pred)
    return pred


def _derived(v: dict[str, np.ndarray], curves: Curves, w: dict[str, float]) -> None:
    stack = np.stack([v[g] for g in curves.groups])
    v["overall"] = sum(w[g] * v[g] for g in curves.groups)
    v["gap"] = stack.max(axis=0) - stack.min(axis=0)
    v["worst"] = stack.max(axis=0) if curves.direction == "lower" else stack.min(axis=0)


def _best(values: np.ndarray, lower: bool) -> np.ndarray:
    """Index of the best share along the last axis, ignoring NaN (-1 where all are NaN)."""
    v = np.where(np.isnan(values), np.inf if lower else -np.inf, values)
    idx = np.argmin(v, axis=-1) if lower else np.argmax(v, axis=-1)
    return np.where(np.isnan(values).all(axis=-1), -1, idx)


def _recommend(s: np.ndarray, values: dict[str, np.ndarray], boot: dict[str, np.ndarray],
               lower: bool) -> dict[str, dict[str, Any]]:
    """Each objective's share at the point estimate, the shares its paired bootstrap cannot
    separate from it, and the percentile interval of the refits' own optima."""
    out: dict[str, dict[str, Any]] = {}
    for name, label, lower_better in (("gap", "gap", True), ("overall", "overall", lower),
                                      ("worst", "worst", lower)):
        i = int(_best(values[label], lower_better))
        if i < 0:
            raise CurvesError(f"{name}: undefined at every share (no own data?)")
        optima = s[_valid(_best(boot[label], lower_better))]
        out[name] = _choice(s, i, values[label], boot[label], optima)
    # pareto: the smallest gap among shares whose overall the bootstrap cannot separate from
    # the best; each refit uses the overall margin that pool gives up at the point estimate
    best = out["overall"]["index"]
    pool = np.array([_covers_zero(boot["overall"][:, j] - boot["overall"][:, best])
                     for j in range(len(s))])
    pool[best] = True
    gap = np.where(pool, values["gap"], np.nan)
    i = int(_best(gap, True))
    margin = float(np.nanmax(np.abs(values["overall"][pool] - values["overall"][best])))
    b_best = _best(boot["overall"], lower)
    b_best_val = np.take_along_axis(boot["overall"], np.maximum(b_best, 0)[:, None], 1)
    b_pool = np.abs(boot["overall"] - b_best_val) <= margin + 1e-12
    optima = s[_valid(_best(np.where(b_pool, boot["gap"], np.nan), True))]
    out["pareto"] = _choice(s, i, values["gap"], boot["gap"], optima)
    out["pareto"]["overall"] = _num(values["overall"][i])
    return out


def _valid(idx: np.ndarray) -> np.ndarray:
    return idx[idx >= 0]


def _covers_zero(diff: np.ndarray) -> bool:
    lo, hi = interval95(diff[np.isfinite(diff)], "bootstrap")
    return lo is not None and lo <= 0.0 <= hi


def _choice(s: np.ndarray, i: int, values: np.ndarray, boot: np.ndarray, optima: np.ndarray
            ) -> dict[str, Any]:
    same = [float(s[j]) for j in range(len(s))
            if j == i or _covers_zero(boot[:, j] - boot[:, i])]
    lo, hi = interval95(optima, "bootstrap")  # (None, None) from fewer than two
    vlo, vhi = interval95(boot[:, i][np.isfinite(boot[:, i])], "bootstrap")
    return {"share": float(s[i]), "interval": [lo, hi], "value": _num(values[i]),
            "value_ci": [vlo, vhi], "indistinguishable": [min(same), max(same)],
            "index": i}


def extrapolation(curves: Curves, pred: Prediction) -> dict[str, Any]:
    """How far a prediction reaches beyond the measured sizes, and whether the fits support it:
    not when the budget is more than ``MAX_FACTOR`` times the largest measured size (or less
    than 1 / ``MAX_FACTOR`` of the smallest), nor when a group's predicted metric at the
    gap-minimising share has a 95 % interval wider than ``MAX_WIDTH``."""
    largest, smallest = max(curves.sizes), min(curves.sizes)
    factor = pred.budget / largest
    reasons = []
    if factor > MAX_FACTOR:
        reasons.append(f"budget {pred.budget} is {factor:.1f} times the largest measured size "
                       f"{largest} (fits are trusted up to {MAX_FACTOR:g} times)")
    if pred.budget * MAX_FACTOR < smallest:
        reasons.append(f"budget {pred.budget} is below 1/{MAX_FACTOR:g} of the smallest "
                       f"measured size {smallest}")
    i = pred.recommended["gap"]["index"]
    widths = {}
    for g in curves.groups:
        lo, hi = interval95(pred.boot[g][:, i][np.isfinite(pred.boot[g][:, i])], "bootstrap")
        widths[g] = None if lo is None else float(hi - lo)
    wide = {g: w for g, w in widths.items() if w is not None and w > MAX_WIDTH}
    if wide:
        reasons.append("95 % interval of the predicted " + ", ".join(
            f"{g} ({w:.3f})" for g, w in wide.items()) + f" wider than {MAX_WIDTH:g}")
    return {"factor": factor, "largest_measured": largest, "smallest_measured": smallest,
            "supported": not reasons, "reasons": reasons, "interval_widths": widths,
            "max_factor": MAX_FACTOR, "max_width": MAX_WIDTH}


# ----------------------------------------------------------------------------- difficulty


def data_terms(curves: Curves, train_size: int | None = None, share: float | None = None
               ) -> dict[str, dict[str, Any]]:
    """Per group the floor, the data term (a n_g^-p + b n^-q) and the conflict term
    (c (1 - s_g)^r) at ``train_size`` (default: the largest measured) with the moved group at
    ``share`` (default: the balanced mix, 1 / number of groups), each with a 95 % interval
    (errors, not metrics); the three add up to the predicted error."""
    n = max(curves.sizes) if train_size is None else int(train_size)
    s = 1.0 / len(curves.groups) if share is None else float(share)
    mix = curves.share_vector(s)
    out = {}
    for g in curves.groups:
        fit = curves.fits[g]
        ng = mix[g] * n
        alone = fit.theta.copy()
        alone[5] = 0.0  # the conflict term switched off: floor + data term
        boot_alone = fit.boot.copy()
        boot_alone[:, 5] = 0.0
        term = float(model_error(alone, ng, n) - fit.floor)
        boot_term = model_error(boot_alone, np.atleast_1d(ng), np.atleast_1d(n))[:, 0] \
            - fit.boot[:, 0]
        conflict = float(fit.error(ng, n) - fit.floor - term)
        boot_conflict = fit.boot_error(ng, n)[:, 0] - fit.boot[:, 0] - boot_term
        out[g] = {"floor": fit.floor, "floor_ci": list(interval95(fit.boot[:, 0], "bootstrap")),
                  "data_term": term,
                  "data_term_ci": list(interval95(boot_term[np.isfinite(boot_term)],
                                                  "bootstrap")),
                  "conflict_term": conflict,
                  "conflict_term_ci": list(interval95(boot_conflict[np.isfinite(boot_conflict)],
                                                      "bootstrap")),
                  "at": {"train_size": n, "share": mix[g], "n_group": ng}}
    return out


def difficulty(curves: Curves, train_size: int | None = None, share: float | None = None
               ) -> dict[str, Any]:
    """Which kind of difficulty each group has, in words and numbers.

    Per group: the floor's excess over the lowest other floor (paired bootstrap interval), the
    data term and the conflict term at today's size and mix (``data_terms``). The kind is the
    largest of the three among those whose interval lies above 0: ``floor`` (more data of the
    group would not close it), ``data-limited`` (more of its data would), ``conflict`` (the
    other groups' data cost it at this mix: a larger share of its own would); ``neither`` when
    none is detectable. ``harder`` names the group with the highest predicted error at that
    size and mix, and ``statement`` says which kind makes it harder."""
    terms = data_terms(curves, train_size, share)
    groups = curves.groups
    out: dict[str, Any] = {"groups": {}}
    for g in groups:
        fit = curves.fits[g]
        rest = [o for o in groups if o != g]
        other_floor = np.stack([curves.fits[o].boot[:, 0] for o in rest]).min(axis=0)
        excess = fit.floor - min(curves.fits[o].floor for o in rest)
        lo, hi = interval95(fit.boot[:, 0] - other_floor, "bootstrap")
        t = terms[g]
        sizes = {"floor": (excess, lo),
                 "data-limited": (t["data_term"], t["data_term_ci"][0]),
                 "conflict": (t["conflict_term"], t["conflict_term_ci"][0])}
        detected = {k: v for k, (v, low) in sizes.items() if low is not None and low > 0}
        kind = max(detected, key=detected.get) if detected else "neither"
        words = (f"{g}: floor {_fmt(t['floor'], t['floor_ci'])}, {_fmt(excess, [lo, hi])} "
                 f"{'above' if excess >= 0 else 'below'} the lowest other floor; data term "
                 f"{_fmt(t['data_term'], t['data_term_ci'])} and conflict term "
                 f"{_fmt(t['conflict_term'], t['conflict_term_ci'])} at "
                 f"{t['at']['n_group']:.0f} of {t['at']['train_size']} -> {kind}")
        out["groups"][g] = {**t, "floor_excess": excess, "floor_excess_ci": [lo, hi],
                            "kind": kind, "statement": words}
    err = {g: terms[g]["floor"] + terms[g]["data_term"] + terms[g]["conflict_term"]
           for g in groups}
    harder = max(err, key=err.get)
    kind = out["groups"][harder]["kind"]
    reason = {"floor": "a higher floor (error more data cannot remove)",
              "data-limited": "a steeper curve (more of its data would still lower its error)",
              "conflict": "the other groups' data (a larger share of its own would lower its "
                          "error)",
              "neither": "no difference the fits can detect"}[kind]
    out["harder"] = harder
    out["statement"] = (f"{harder} is harder (error {err[harder]:.3f} at share "
                        f"{terms[harder]['at']['share']:.2f} of {terms[harder]['at']['train_size']}"
                        f"): {reason}")
    return out


def _fmt(value: float, ci: Sequence[float | None]) -> str:
    if ci[0] is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


# ----------------------------------------------------------------------------- JSON


def curves_json(curves: Curves, budget: int | None = None, shares: Sequence[float] | None = None,
                weights: dict[str, float] | None = None, budgets: Sequence[int] | None = None
                ) -> dict[str, Any]:
    """One ensemble size's part of recommendation.json's ``curves`` section: per group the
    floor, data term (errors, with intervals), form, fit quality, residuals and a curve to
    draw; the budget, extrapolation, each objective's predicted share with its interval, the
    per-share predictions, the recommended shares at several ``budgets`` (for the figure of
    share against budget) and the difficulty statement."""
    budget = max(curves.sizes) if budget is None else int(budget)
    pred = predict(curves, budget, shares, weights)
    diff = difficulty(curves)
    groups = {}
    for g in curves.groups:
        fit = curves.fits[g]
        d = diff["groups"][g]
        groups[g] = {
            "floor": d["floor"], "floor_ci": d["floor_ci"],
            "data_term": d["data_term"], "data_term_ci": d["data_term_ci"],
            "conflict_term": d["conflict_term"], "conflict_term_ci": d["conflict_term_ci"],
            "data_term_at": d["at"], "form": fit.form, "params": fit.params(),
            "kind": d["kind"], "floor_excess": d["floor_excess"],
            "floor_excess_ci": d["floor_excess_ci"], "statement": d["statement"],
            "fit": {"rmse": fit.rmse, "r2": _num(fit.r2), "n_points": fit.n_points,
                    "n_zero": fit.n_zero,
                    "aicc": {f: _num(v) for f, v in fit.aicc.items()},
                    "interference": fit.interference},
            "residuals": _records(fit.design),
            "curve": _curve(curves, fit),
        }
    recommended = {name: {k: v for k, v in c.items() if k != "index"}
                   for name, c in pred.recommended.items()}
    flats = flat_objectives(curves, pred)
    for name, flat in flats.items():
        recommended[name].update(flat)
    per_share: dict[str, Any] = {"share": pred.shares.tolist()}
    for label in [*curves.groups, "overall", "gap", "worst"]:
        lo, hi = pred.interval(label)
        per_share[label] = {"value": _nums(pred.values[label]), "lo": _nums(lo), "hi": _nums(hi)}
    if budgets is None:
        budgets = budget_grid(curves, budget)
    by_budget = []
    for n in budgets:
        p = pred if int(n) == budget else predict(curves, int(n), shares, weights)
        by_budget.append({"budget": int(n), **{
            name: {"share": c["share"], "interval": c["interval"]}
            for name, c in p.recommended.items()}})
    return {
        "k": curves.k, "metric": curves.metric, "direction": curves.direction,
        "warnings": fit_warnings(curves, pred) + [
            f"{name}: flat, the predicted {f['label']} varies by only {f['span']:.4f} across "
            f"shares {pred.shares[0]:g}-{pred.shares[-1]:g}, within {FLAT_RMSE:g} times the fits' "
            f"RMSE ({f['rmse']:.4f}): the data cannot single out a share"
            for name, f in flats.items() if f["flat"]],
        "moved_group": curves.moved_group, "measured_sizes": curves.sizes,
        "measured_shares": curves.shares, "groups": groups,
        "fit": _pooled_fit(curves),
        "intervals": f"{curves.intervals} bootstrap, {curves.n_boot} refits",
        "budget": budget, "weights": pred.weights, "extrapolation": pred.extrapolation,
        "predicted": recommended, "per_share": per_share, "by_budget": by_budget,
        "difficulty": diff["statement"], "harder": diff["harder"],
    }


def flat_objectives(curves: Curves, pred: Prediction) -> dict[str, dict[str, Any]]:
    """Per objective, how much its predicted value varies across the shares (``span``) against
    the fits' own error (pooled RMSE): ``flat`` when the span is within ``FLAT_RMSE`` times it,
    so that the recommended share rests on differences smaller than what the fits miss."""
    rmse = _pooled_fit(curves)["rmse"]
    out = {}
    for name, label in (("gap", "gap"), ("overall", "overall"), ("worst", "worst"),
                        ("pareto", "gap")):
        values = pred.values[label][np.isfinite(pred.values[label])]
        span = float(values.max() - values.min()) if len(values) else float("nan")
        out[name] = {"label": label, "span": _num(span), "rmse": rmse,
                     "flat": bool(np.isfinite(span) and span < FLAT_RMSE * rmse)}
    return out


def fit_warnings(curves: Curves, pred: Prediction | None = None) -> list[str]:
    """What a reader should distrust, one line each: poor fits (R^2 below ``POOR_R2``),
    interference (``interference``) and unsupported extrapolation."""
    out = []
    for g, fit in curves.fits.items():
        if np.isfinite(fit.r2) and fit.r2 < POOR_R2:
            out.append(f"{g}: poor fit (R^2 {fit.r2:.2f} on {fit.n_points} design points, "
                       f"RMSE {fit.rmse:.3f})")
        if fit.interference.get("flagged") and not Form(fit.form).conflict:
            why = ("the form AICc chose has no conflict term" if len(curves.shares) >= 3 else
                   "measure at least 3 shares so that the conflict term can express it")
            out.append(f"{g}: the error rises with the other groups' data at the same own count "
                       f"(residuals vs size: Spearman {fit.interference['rho']:.2f}, p "
                       f"{fit.interference['p_value']:.2g}) and {why}; its floor and "
                       "predictions may be off")
    if pred is not None:
        out += [f"extrapolation: {r}" for r in pred.extrapolation["reasons"]]
    return out


def budget_grid(curves: Curves, budget: int, n: int = 9) -> list[int]:
    """Sizes from the smallest measured to the larger of ``budget`` and MAX_FACTOR times the
    largest measured, log-spaced, with ``budget`` and the measured sizes among them."""
    top = max(budget, int(MAX_FACTOR * max(curves.sizes)))
    grid = np.geomspace(min(curves.sizes), top, n).round().astype(int).tolist()
    return sorted({*grid, budget, *curves.sizes})


def run_curves(table: pd.DataFrame, plan: Plan, budget: int | None = None, *,
               shares: Sequence[float] | None = None, weights: dict[str, float] | None = None,
               metric: str | None = None, n_boot: int = N_BOOT, seed: int = 0
               ) -> list[dict[str, Any]]:
    """recommendation.json's ``curves`` content for a run: one entry per setting (grid fields
    other than ``train_size``) with ``point``, ``single`` (k = 1) and ``ensemble`` (k = E; None
    when E = 1)."""
    out = []
    E = plan.cfg.ensemble.members
    for by_k in fit_run(table, plan, metric=metric, n_boot=n_boot, seed=seed):
        single = by_k[1]
        out.append({
            "point": single.point,
            "single": curves_json(single, budget, shares, weights),
            "ensemble": curves_json(by_k[E], budget, shares, weights) if E != 1 else None,
        })
    return out


def difficulty_summary(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """summary.json's ``difficulty``: per setting and for the single model and the ensemble,
    each group's floor, data term and conflict term (errors, with intervals), its kind of
    difficulty and the statement, from ``run_curves``'s entries."""
    keep = ("floor", "floor_ci", "data_term", "data_term_ci", "conflict_term",
            "conflict_term_ci", "data_term_at", "kind", "floor_excess", "floor_excess_ci",
            "statement", "form")
    out = []
    for entry in entries:
        item: dict[str, Any] = {"point": entry["point"]}
        for part in ("single", "ensemble"):
            got = entry.get(part)
            if not got:
                item[part] = None
                continue
            item[part] = {
                "k": got["k"], "metric": got["metric"], "harder": got["harder"],
                "statement": got["difficulty"],
                "warnings": got["warnings"], "fit": got["fit"],
                "groups": {g: {**{k: v[k] for k in keep}, "r2": v["fit"]["r2"]}
                           for g, v in got["groups"].items()},
            }
        out.append(item)
    return out


def _curve(curves: Curves, fit: GroupCurve, n: int = 40) -> list[dict[str, Any]]:
    """The fitted error and its bootstrap band against the group's own count, at each measured
    size, from the smallest measured own count to the whole training set."""
    out = []
    own = fit.design.loc[fit.design["n_group"] > 0, "n_group"]
    lo_count = max(1.0, float(own.min())) if len(own) else 1.0
    for size in curves.sizes:
        ng = np.geomspace(min(lo_count, size), size, n)
        err = fit.error(ng, size)
        band = band95(fit.boot_error(ng, size))
        out.append({"train_size": size, "n_group": ng.tolist(), "error": _nums(err),
                    "lo": _nums(band[0]), "hi": _nums(band[1])})
    return out


def _pooled_fit(curves: Curves) -> dict[str, Any]:
    """RMSE and R^2 over every group's design points together."""
    res, ys = [], []
    for fit in curves.fits.values():
        used = fit.design["fitted"].notna()
        res.append(fit.design.loc[used, "residual"].to_numpy())
        ys.append(fit.design.loc[used, "measured"].to_numpy())
    r, y = np.concatenate(res), np.concatenate(ys)
    ss = float(((y - y.mean()) ** 2).sum())
    return {"rmse": float(np.sqrt((r ** 2).mean())),
            "r2": _num(1.0 - float((r ** 2).sum()) / ss) if ss > 0 else None,
            "n_points": int(len(r))}


def _records(design: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in design.to_dict("records"):
        out.append({k: (v if isinstance(v, list) else _num(v) if isinstance(v, float)
                        else int(v) if isinstance(v, (int, np.integer)) else v)
                    for k, v in row.items()})
    return out


def _num(x: Any) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _nums(xs: np.ndarray) -> list[float | None]:
    return [_num(x) for x in np.asarray(xs, dtype=float)]


__all__ = ["Curves", "CurvesError", "Form", "GroupCurve", "Prediction", "curves_json", "data_terms",
           "difficulty", "difficulty_summary", "fit_curves", "fit_run", "fit_warnings",
           "interference", "measured_points",
           "model_error", "predict", "run_curves", "sweeps_sizes"]
