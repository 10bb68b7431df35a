"""Which kind of difficulty each group has, read off its fitted curve: a floor, a data term,
a conflict term, and the warnings a poor or interfering fit deserves."""

from __future__ import annotations

from typing import Any

import numpy as np

from fairensemble.advice.curves.fit import Curves
from fairensemble.advice.curves.model import POOR_R2, SHIFT, Form, model_error
from fairensemble.advice.curves.predict import Prediction
from fairensemble.common.text import with_interval
from fairensemble.evaluation.intervals import interval95

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
        shift = curves.class_shift.get(g, 0.0)
        if kind == "floor" and shift > SHIFT:  # a floor assumes training looks like test
            kind = "class shift"
        words = (f"{g}: floor {with_interval(t['floor'], t['floor_ci'])}, "
                 f"{with_interval(excess, [lo, hi])} "
                 f"{'above' if excess >= 0 else 'below'} the lowest other floor; data term "
                 f"{with_interval(t['data_term'], t['data_term_ci'])} and conflict term "
                 f"{with_interval(t['conflict_term'], t['conflict_term_ci'])} at "
                 f"{t['at']['n_group']:.0f} of {t['at']['train_size']} -> {kind}"
                 + (f" (its classes' shares differ by up to {shift:.2f} between training and "
                    "test)" if kind == "class shift" else ""))
        out["groups"][g] = {**t, "floor_excess": excess, "floor_excess_ci": [lo, hi],
                            "kind": kind, "statement": words, "class_shift": shift}
    err = {g: terms[g]["floor"] + terms[g]["data_term"] + terms[g]["conflict_term"]
           for g in groups}
    harder = max(err, key=err.get)
    kind = out["groups"][harder]["kind"]
    reason = {"floor": "a higher floor (error more data cannot remove)",
              "data-limited": "a steeper curve (more of its data would still lower its error)",
              "conflict": "the other groups' data (a larger share of its own would lower its "
                          "error)",
              "class shift": "its classes are balanced differently in training than at test "
                             "(a spurious correlation or a label shift): the error more data "
                             "of the same kind leaves is the shifted prior, which reweighting "
                             "by group x class or group thresholds remove",
              "neither": "no difference the fits can detect"}[kind]
    out["harder"] = harder
    out["statement"] = (f"{harder} is harder (error {err[harder]:.3f} at share "
                        f"{terms[harder]['at']['share']:.2f} of {terms[harder]['at']['train_size']}"
                        f"): {reason}")
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


