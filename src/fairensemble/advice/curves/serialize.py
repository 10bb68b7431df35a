"""Learning curves as JSON (recommendation.json, summary.json) and the one call a run's
analysis makes: ``run_curves``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from fairensemble.advice.curves.diagnose import difficulty, fit_warnings
from fairensemble.advice.curves.fit import Curves, GroupCurve, fit_run, pooled_fit
from fairensemble.advice.curves.model import FLAT_RMSE, MAX_FACTOR, N_BOOT
from fairensemble.advice.curves.predict import band95, flat_objectives, predict
from fairensemble.common.text import json_number
from fairensemble.sweep.plan import Plan

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
            "fit": {"rmse": fit.rmse, "r2": json_number(fit.r2), "n_points": fit.n_points,
                    "n_zero": fit.n_zero,
                    "aicc": {f: json_number(v) for f, v in fit.aicc.items()},
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
        "fit": pooled_fit(curves),
        "intervals": f"{curves.intervals} bootstrap, {curves.n_boot} refits",
        "budget": budget, "weights": pred.weights, "extrapolation": pred.extrapolation,
        "predicted": recommended, "per_share": per_share, "by_budget": by_budget,
        "difficulty": diff["statement"], "harder": diff["harder"],
    }


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
            "statement", "form", "class_shift")
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
                "groups": {g: {**{k: v.get(k) for k in keep}, "r2": v["fit"]["r2"]}
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


def _records(design: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in design.to_dict("records"):
        out.append({k: (v if isinstance(v, list) else json_number(v) if isinstance(v, float)
                        else int(v) if isinstance(v, (int, np.integer)) else v)
                    for k, v in row.items()})
    return out


def _nums(xs: np.ndarray) -> list[float | None]:
    return [json_number(x) for x in np.asarray(xs, dtype=float)]


