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
group's predicted metric at the gap-minimising share is wider than ``MAX_WIDTH``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from fairensemble.common.errors import UserError

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
# a group whose classes' shares differ by more than this between training and test has no
# floor to speak of: the verdict is a class shift
SHIFT = 0.1


class CurvesError(UserError):
    """A learning-curve problem, phrased as one line."""


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


