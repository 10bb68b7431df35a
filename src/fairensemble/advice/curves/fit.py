"""Fitting the learning curves: the measured points of a run (one mean over replicates per
training-set size and mix), each group's curve and its refits on resampled replicates, and
the settings of a run that sweeps ``train_size``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from fairensemble import metrics as M
from fairensemble.advice.curves.model import (
    INTERFERENCE_P,
    N_BOOT,
    N_PARAMS,
    N_STARTS,
    PARAMS,
    CurvesError,
    _Design,
    _first_start,
    _fit_form,
    _random_start,
    _scaled,
    _to_theta,
    aicc,
    identifiable_forms,
    model_error,
)
from fairensemble.common.text import grid_value, json_number
from fairensemble.evaluation.tables import direction, point_rows, with_coords
from fairensemble.sweep.plan import Plan, PointLayout

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
        return {k: json_number(v) for k, v in zip(PARAMS, self.theta)}


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
    class_shift: dict[str, float] = field(default_factory=dict)  # ``class_shift``

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
    return {"rho": json_number(rho), "p_value": json_number(p_value),
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
            by_k[k].class_shift = class_shift(layout)
        out.append(by_k)
    return out


def class_shift(layout: PointLayout) -> dict[str, float]:
    """Per group, how differently its classes are balanced in training than at test: the
    largest difference, over the mixes and classes, between a class's share of the group's
    training rows and of its test rows (a spurious correlation in the training data, or a
    label shift). Empty for plans without test counts (made before they were recorded)."""
    out: dict[str, float] = {}
    if not layout.test_counts:
        return out
    for j, g in enumerate(layout.groups):
        test = np.asarray(layout.test_counts[j], dtype=float)
        if test.sum() == 0:
            continue
        diffs = [np.abs(c / c.sum() - test / test.sum()).max()
                 for c in (np.asarray(mix[j], dtype=float) for mix in layout.counts)
                 if c.sum() > 0]
        out[g] = float(max(diffs)) if diffs else 0.0
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


def pooled_fit(curves: Curves) -> dict[str, Any]:
    """RMSE and R^2 over every group's design points together."""
    res, ys = [], []
    for fit in curves.fits.values():
        used = fit.design["fitted"].notna()
        res.append(fit.design.loc[used, "residual"].to_numpy())
        ys.append(fit.design.loc[used, "measured"].to_numpy())
    r, y = np.concatenate(res), np.concatenate(ys)
    ss = float(((y - y.mean()) ** 2).sum())
    return {"rmse": float(np.sqrt((r ** 2).mean())),
            "r2": json_number(1.0 - float((r ** 2).sum()) / ss) if ss > 0 else None,
            "n_points": int(len(r))}
