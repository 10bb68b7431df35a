"""Raters in a run's outputs: per cell and group the raters' disagreement, the noise it implies
and the error floor that implies (``metrics.raters``), from the votes stored in the cell
(``votes_test``), so a report rebuilt from the run directory alone has them; summary.json's
``raters``; and ``difficulty_measures``, the three measures of a group's difficulty side by
side: the raters' floor, the learning curves' floor (runs that sweep ``train_size``) and the
error at the mix closest to balanced with its gap.

In metrics.parquet the rater rows are ordinary rows (``post`` none, ``std`` 0, ``n_draws`` 0:
they come from the votes, not from drawn ensembles) of the metrics ``rater_count`` (mean raters
per rated sample), ``rater_disagreement``, ``rater_noise`` and ``rater_floor``, for each group
and ``overall`` (the groups weighted by ``test_mix``), repeated at every ensemble size k so that
any slice by k finds them. They come with the votes whatever ``metrics`` lists; no primary
metric can be one of them, so nothing that ranks mixes or levers reads them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fairensemble.common.text import grid_value, json_number
from fairensemble.evaluation.tables import _mix_label, coord_value, direction, grid_fields
from fairensemble.metrics.raters import RATER_METRICS, group_rater_measures
from fairensemble.sweep.plan import Plan
from fairensemble.sweep.store import CellRecord

# summary.json's names of the rater metrics, per group
SHORT = {"rater_count": "raters", "rater_disagreement": "disagreement",
         "rater_noise": "noise", "rater_floor": "floor"}


def rater_rows(record: CellRecord, ks: list[int], test_mix: str) -> pd.DataFrame | None:
    """The cell's rater rows (see the module docstring); None for a cell without votes."""
    if record.votes_test is None:
        return None
    groups = list(record.groups)
    counts = bool(record.raters.get("counts", True))
    per = group_rater_measures(record.votes_test, record.g_test, len(groups),
                               len(record.classes), counts)
    rated = np.bincount(record.g_test[record.votes_test.sum(axis=1) > 0],
                        minlength=len(groups)).astype(float)
    weights = rated if test_mix == "natural" else (rated > 0).astype(float)
    values: list[tuple[str, str, float]] = []
    for metric in RATER_METRICS:
        v = per[metric]
        ok = np.isfinite(v) & (weights > 0)
        overall = float((v[ok] * weights[ok]).sum() / weights[ok].sum()) if ok.any() else np.nan
        values += [(g, metric, float(v[j])) for j, g in enumerate(groups)]
        values.append(("overall", metric, overall))
    rows = [(k, "none", g, m, x, 0.0, 0) for k in ks for g, m, x in values]
    return pd.DataFrame(rows, columns=["k", "post", "group", "metric", "mean", "std",
                                       "n_draws"]).astype({"k": np.int64, "n_draws": np.int64})


def rater_summary(table: pd.DataFrame, plan: Plan) -> list[dict[str, Any]] | None:
    """summary.json's ``raters``: per grid point, each group's (and overall) mean raters per
    rated test sample, disagreement, noise and floor (means over the point's cells, which share
    its test split), what the votes are, and the group the floor (else the disagreement) calls
    harder. None for a run without raters."""
    rows = table[table["metric"].isin(RATER_METRICS)]
    if "post" in rows.columns:
        rows = rows[rows["post"] == "none"]
    if rows.empty:
        return None
    fields = grid_fields(plan)
    out = []
    for pi, point in enumerate(plan.points):
        mask = np.ones(len(rows), dtype=bool)
        for f in fields:
            mask &= (rows[f] == grid_value(point[f])).to_numpy()
        here = rows[mask]
        here = here[here["k"] == here["k"].min()] if len(here) else here
        means = here.groupby(["group", "metric"])["mean"].mean()
        groups = plan.layouts[pi].groups
        entry: dict[str, Any] = {"point": point, **(plan.layouts[pi].raters or {}),
                                 "groups": {g: _values(means, g) for g in groups},
                                 "overall": _values(means, "overall")}
        entry["harder"] = _harder({g: v["floor"] for g, v in entry["groups"].items()}) or \
            _harder({g: v["disagreement"] for g, v in entry["groups"].items()})
        out.append(entry)
    return out


def _values(means: pd.Series, label: str) -> dict[str, float | None]:
    return {SHORT[m]: json_number(means.get((label, m), np.nan)) for m in RATER_METRICS}


def _harder(values: dict[str, float | None]) -> str | None:
    """The group with the highest value (None when none has one, or they tie)."""
    known = {g: v for g, v in values.items() if v is not None and np.isfinite(v)}
    if not known:
        return None
    top = max(known.values())
    best = [g for g, v in known.items() if v == top]
    return best[0] if len(best) == 1 else None


# ----------------------------------------------------------------------------- side by side


def difficulty_measures(summary: dict[str, Any], plan: Plan) -> list[dict[str, Any]] | None:
    """The three measures of each group's difficulty, per setting (the grid fields other than
    ``train_size``), at the setting's largest training-set size:

    * the raters' floor (with their disagreement and noise), from ``summary["raters"]``;
    * the learning curves' floor of the single model and of the ensemble, with its 95 %
      interval, from ``summary["difficulty"]`` (None where the run does not sweep
      ``train_size``);
    * the balanced mix: each group's error (1 - the primary metric, or the metric itself when
      lower is better) at k = 1 and k = E at the mix whose shares are closest to equal, and the
      gap there.

    ``harder`` names the group each measure calls harder (the ensemble's values where E > 1)
    and ``agree`` whether they all name the same one. None for a run without raters; errors
    and floors are in units of the primary metric's error (accuracy: the error rate, as the
    raters' floor is)."""
    raters = summary.get("raters")
    if not raters:
        return None
    E = summary["members"]
    xcol = summary["mix_column"]
    fields = [f for f in summary["grid_fields"] if f != "train_size"]
    lower = direction(summary["primary_metric"]) == "lower"
    out = []
    seen: list[dict[str, Any]] = []
    for point in plan.points:
        setting = {f: point[f] for f in fields}
        if setting in seen:
            continue
        seen.append(setting)
        same = [i for i, p in enumerate(plan.points) if {f: p[f] for f in fields} == setting]
        top = max(same, key=lambda i: plan.points[i].get("train_size", plan.cfg.train_size))
        entry = summary["grid_points"][top]
        x = _balanced_mix(plan, top, xcol)
        level = {(lv["group"], lv["k"]): lv["mean"] for lv in entry["levels"]
                 if x is not None and _same_x(lv[xcol], x)}
        curve = _curve_entry(summary.get("difficulty") or [], setting)
        groups: dict[str, Any] = {}
        for g in entry["groups"]:
            rate = raters[top]["groups"].get(g, {})
            errors = {f"k={k}": _error(level.get((g, k)), lower) for k in sorted({1, E})}
            groups[g] = {m: rate.get(SHORT[m]) for m in RATER_METRICS}
            groups[g]["curve_floor"] = None if curve is None else {
                f"k={part['k']}": part["groups"][g]["floor"] for part in curve
            } | {f"k={part['k']}_ci": part["groups"][g]["floor_ci"] for part in curve}
            groups[g]["balanced_error"] = errors
        kE = f"k={E}"
        harder = {
            "raters": _harder({g: v["rater_floor"] for g, v in groups.items()})
            or _harder({g: v["rater_disagreement"] for g, v in groups.items()}),
            "learning_curves": None if curve is None else _harder(
                {g: v["curve_floor"].get(kE, v["curve_floor"].get("k=1"))
                 for g, v in groups.items()}),
            "balanced_mix": _harder({g: v["balanced_error"][kE] for g, v in groups.items()}),
        }
        named = [h for h in harder.values() if h is not None]
        out.append({
            "point": setting,
            "train_size": plan.points[top].get("train_size", plan.cfg.train_size),
            "metric": summary["primary_metric"],
            "balanced_mix": {xcol: x, "gap": {f"k={k}": json_number(level.get(("gap", k)))
                                                     for k in sorted({1, E})}},
            "groups": groups,
            "harder": harder,
            "agree": (len(set(named)) == 1) if len(named) >= 2 else None,
            "scored_on": raters[top].get("scored_on", "majority"),
        })
    return out


def _balanced_mix(plan: Plan, pi: int, xcol: str) -> Any:
    """The mix coordinate (as the summary's levels hold it) of grid point ``pi``'s mix whose
    shares are closest to equal."""
    layout = plan.layouts[pi]
    G = len(layout.groups)
    if not layout.shares:
        return None
    spread = [max(abs(s - 1.0 / G) for s in shares) for shares in layout.shares]
    mi = int(np.argmin(spread))
    cell = next((c for c in plan.cells if c.point_index == pi and c.mix_index == mi), None)
    if cell is None:
        return None
    return _mix_label(cell.mix) if xcol == "mix" and cell.mix is not None else \
        coord_value(cell.ratio)


def _same_x(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return bool(np.isclose(a, b, atol=1e-9))
    return a == b


def _error(value: float | None, lower: bool) -> float | None:
    if value is None:
        return None
    return json_number(value if lower else 1.0 - value)


def _curve_entry(difficulty: list[dict[str, Any]], setting: dict[str, Any]
                 ) -> list[dict[str, Any]] | None:
    """The learning-curve parts (single, ensemble) fitted for ``setting``, or None."""
    for item in difficulty:
        if {k: grid_value(v) for k, v in item["point"].items()} == \
                {k: grid_value(v) for k, v in setting.items()}:
            parts = [item.get(p) for p in ("single", "ensemble")]
            return [p for p in parts if p] or None
    return None


def attach(summary: dict[str, Any], plan: Plan) -> None:
    """Put ``difficulty_measures`` into the summary (runs with raters only)."""
    measures = difficulty_measures(summary, plan)
    if measures:
        summary["difficulty_measures"] = measures


__all__ = ["RATER_METRICS", "attach", "difficulty_measures", "rater_rows", "rater_summary"]
