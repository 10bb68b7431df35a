"""Budget predictions: the fitted curves at a training-set size over a grid of shares of the
moved group, each objective's best share with its interval (the choice rule is
``advice.objectives``'s), and how far the prediction reaches beyond what was measured."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fairensemble.advice.curves.fit import Curves, pooled_fit
from fairensemble.advice.curves.model import (
    FLAT_RMSE,
    MAX_FACTOR,
    MAX_WIDTH,
    SHARE_STEP,
    CurvesError,
)
from fairensemble.advice.objectives import Choice, RecommendError, Samples, choose, choose_pareto
from fairensemble.common.text import json_number
from fairensemble.evaluation.intervals import interval95

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
    """Each objective's share by ``objectives.choose`` on the point estimates and the paired
    refits (the shares the refits cannot separate from it), with the percentile interval of
    the refits' own optima."""
    shares = [float(x) for x in s]

    def samples(label: str) -> Samples:
        return Samples({x: boot[label][:, j] for j, x in enumerate(shares)}, "bootstrap",
                       {x: float(values[label][j]) for j, x in enumerate(shares)},
                       finite_only=True)

    out: dict[str, dict[str, Any]] = {}
    for name, lower_better in (("gap", True), ("overall", lower), ("worst", lower)):
        try:
            choice = choose(samples(name), lower_better, name)
        except RecommendError:
            raise CurvesError(f"{name}: undefined at every share (no own data?)") from None
        optima = s[_valid(_best(boot[name], lower_better))]
        out[name] = _choice(choice, shares, values[name], boot[name], optima)
    # pareto: each refit's own optimum uses the overall margin the chosen pool gives up at the
    # point estimate
    choice = choose_pareto(samples("overall"), samples("gap"), not lower)
    best = shares.index(choose(samples("overall"), lower, "overall").best)
    pool = [shares.index(x) for x in choose(samples("overall"), lower,
                                            "overall").indistinguishable]
    margin = float(np.nanmax(np.abs(values["overall"][pool] - values["overall"][best])))
    b_best = _best(boot["overall"], lower)
    b_best_val = np.take_along_axis(boot["overall"], np.maximum(b_best, 0)[:, None], 1)
    b_pool = np.abs(boot["overall"] - b_best_val) <= margin + 1e-12
    optima = s[_valid(_best(np.where(b_pool, boot["gap"], np.nan), True))]
    out["pareto"] = _choice(choice, shares, values["gap"], boot["gap"], optima)
    out["pareto"]["overall"] = json_number(values["overall"][out["pareto"]["index"]])
    return out


def _valid(idx: np.ndarray) -> np.ndarray:
    return idx[idx >= 0]


def _choice(choice: Choice, shares: list[float], values: np.ndarray, boot: np.ndarray,
            optima: np.ndarray) -> dict[str, Any]:
    i = shares.index(choice.best)
    lo, hi = interval95(optima, "bootstrap")  # (None, None) from fewer than two
    vlo, vhi = interval95(boot[:, i][np.isfinite(boot[:, i])], "bootstrap")
    same = choice.indistinguishable
    return {"share": shares[i], "interval": [lo, hi], "value": json_number(values[i]),
            "value_ci": [vlo, vhi], "indistinguishable": [min(same), max(same)], "index": i}


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


def flat_objectives(curves: Curves, pred: Prediction) -> dict[str, dict[str, Any]]:
    """Per objective, how much its predicted value varies across the shares (``span``) against
    the fits' own error (pooled RMSE): ``flat`` when the span is within ``FLAT_RMSE`` times it,
    so that the recommended share rests on differences smaller than what the fits miss."""
    rmse = pooled_fit(curves)["rmse"]
    out = {}
    for name, label in (("gap", "gap"), ("overall", "overall"), ("worst", "worst"),
                        ("pareto", "gap")):
        values = pred.values[label][np.isfinite(pred.values[label])]
        span = float(values.max() - values.min()) if len(values) else float("nan")
        out[name] = {"label": label, "span": json_number(span), "rmse": rmse,
                     "flat": bool(np.isfinite(span) and span < FLAT_RMSE * rmse)}
    return out


