"""summary.json from metrics.parquet: per grid point the optimal mixes for one member and for
the ensemble, positive-sum verdicts with 95 % intervals, every fairness measure's best mix,
who benefits from the ensemble, per-attribute margins of intersectional groups and what
post-processing did; with raters, their disagreement and floor per group (``raters``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fairensemble import metrics as M
from fairensemble.common.text import json_number
from fairensemble.evaluation.cell import margins_of
from fairensemble.evaluation.intervals import (
    boot_columns,
    interval95,
    kind_of,
    percentile_interval,
    samples,
    t_interval,
)
from fairensemble.evaluation.raters import rater_summary
from fairensemble.evaluation.tables import (
    coord_value,
    direction,
    grid_fields,
    mix_column,
    point_rows,
)
from fairensemble.sweep.plan import Plan

TOL = 1e-12  # a change this small counts as no change


def _improvement(metric: str, change: float) -> float:
    """A change as an improvement: positive when the metric got better."""
    return -change if direction(metric) == "lower" else change


def _significant(change: dict[str, Any]) -> float:
    """The mean change where its 95 % interval excludes 0, else 0 (no detectable change)."""
    lo, hi = change["ci95"]
    if lo is None or (lo <= 0.0 <= hi):
        return 0.0
    return change["mean"]


def _verdict_95(changes: dict[str, dict], groups: list[str], metric: str) -> str:
    if any(changes[g]["ci95"][0] is None for g in [*groups, "gap"]):
        return "n/a"  # one replicate and no bootstrap (or an undefined metric): no interval
    return verdict({g: _improvement(metric, _significant(changes[g])) for g in groups},
                   _significant(changes["gap"]))


def verdict(group_improvements: dict[str, float], gap_change: float) -> str:
    """positive-sum: every group improves (or holds) and the gap does not widen;
    leveling-down: the gap narrows while some group got worse; mixed: anything else.
    ``group_improvements`` are changes signed so that positive is better (a falling
    calibration error improves).

    ``verdict`` in summary.json applies this to the mean changes; ``verdict_95`` counts a
    change only where its 95 % interval excludes zero."""
    worse = [g for g, d in group_improvements.items() if d < -TOL]
    if not worse and gap_change <= TOL:
        return "positive-sum"
    if worse and gap_change < -TOL:
        return "leveling-down"
    return "mixed"


def _effect(change: dict[str, Any]) -> str:
    """narrowed / widened when the 95 % interval of a disparity's change excludes zero."""
    lo, hi = change["ci95"]
    if lo is None:
        return "n/a"
    if hi < 0:
        return "narrowed"
    if lo > 0:
        return "widened"
    return "no detectable change"


class Changes:
    """The change of every (label, metric) from k = 1 to k = E at each mix of one grid point,
    with its 95 % interval: a t-interval over replicates, or a percentile interval over
    bootstrap resamples of the test set (the replicates' mean, resample by resample)."""

    def __init__(self, rows: pd.DataFrame, boot: pd.DataFrame | None, E: int, xcol: str):
        self.E, self.xcol = E, xcol
        wide = rows[rows["k"].isin([1, E])].pivot_table(
            index=[xcol, "replicate", "group", "metric"], columns="k", values="mean",
            dropna=False)
        self.per_replicate = (wide[E] - wide[1]) if E != 1 else wide[1] * 0.0
        self.boot = None
        if boot is not None:
            cols = boot_columns(boot)
            b = boot[boot["k"].isin([1, E])].set_index([xcol, "replicate", "group", "metric",
                                                          "k"])[cols]
            diff = b.xs(E, level="k") - b.xs(1, level="k") if E != 1 else \
                b.xs(1, level="k") * 0.0
            self.boot = diff.groupby(level=[xcol, "group", "metric"]).mean()

    def __call__(self, x: Any, label: str, metric: str) -> dict[str, Any]:
        try:
            vals = self.per_replicate.loc[(x, slice(None), label, metric)].to_numpy(float)
        except KeyError:
            return {"mean": None, "ci95": [None, None], "n_replicates": 0}
        if self.boot is not None:
            try:
                lo, hi = percentile_interval(self.boot.loc[(x, label, metric)].to_numpy(float))
            except KeyError:
                lo, hi = None, None
        else:
            lo, hi = t_interval(vals)
        return {"mean": json_number(vals.mean()), "ci95": [lo, hi], "n_replicates": len(vals)}


def summarize(table: pd.DataFrame, plan: Plan, boot: pd.DataFrame | None = None
              ) -> dict[str, Any]:
    """summary.json: per grid point, the optimal mixes for k=1 and k=E, positive-sum verdicts
    per mix, each fairness measure's minimising mix and whether the ensemble narrowed or
    widened it, who benefits (per-group gain next to per-group diversity), what
    post-processing did, and the primary metric per mix, label and k with its interval
    (``levels``: what the figures draw)."""
    cfg = plan.cfg
    E = cfg.ensemble.members
    pm = cfg.primary
    better = "min" if direction(pm) == "lower" else "max"
    post_rows = table[table["post"] != "none"] if "post" in table.columns else table.iloc[:0]
    if "post" in table.columns:
        table = table[table["post"] == "none"]
    if boot is not None:
        boot = boot[boot["post"] == "none"]
    fields = grid_fields(plan)
    xcol = mix_column(table)
    fairness = ["gap", *[m for m in cfg.metrics if M.get(m).scope == "between"
                         and table["metric"].eq(m).any()]]
    points = []
    for pi, point in enumerate(plan.points):
        all_rows = point_rows(table, fields, point)
        rows = all_rows[all_rows["metric"] == pm]
        groups = plan.groups[pi]
        point_boot = None if boot is None else point_rows(boot, fields, point)
        changes = Changes(all_rows, point_boot, E, xcol)
        entry: dict[str, Any] = {"point": point, "groups": groups,
                                 "ratio_group": plan.ratio_group[pi], "optimal": {},
                                 "verdicts": []}
        for k in sorted({1, E}):
            at_k = rows[rows["k"] == k]
            gap = at_k[at_k["group"] == "gap"].groupby(xcol, sort=False)["mean"].mean()
            overall = at_k[at_k["group"] == "overall"].groupby(xcol, sort=False)["mean"].mean()
            entry["optimal"][f"k={k}"] = {
                "gap_min_ratio": _arg(gap, "min"),
                "gap_min_value": json_number(gap.min()),
                "overall_best_ratio": _arg(overall, better),
                "overall_best_value": json_number(getattr(overall, better)()),
                "gap_by_ratio": {str(coord_value(x)): float(v) for x, v in gap.items()},
                "overall_by_ratio": {str(coord_value(x)): float(v) for x, v in overall.items()},
            }
        mixes = list(rows[xcol].drop_duplicates())
        for x in mixes:
            ch = {label: changes(x, label, pm) for label in [*groups, "overall", "gap", "worst"]}
            means = [ch[g]["mean"] for g in [*groups, "gap"]]
            v = "n/a" if None in means else verdict(
                {g: _improvement(pm, ch[g]["mean"]) for g in groups}, ch["gap"]["mean"])
            entry["verdicts"].append({xcol: coord_value(x), "verdict": v,
                                      "verdict_95": _verdict_95(ch, groups, pm), "change": ch})
        for key in ("verdict", "verdict_95"):
            counts = pd.Series([e[key] for e in entry["verdicts"]]).value_counts()
            entry[f"{key}_counts"] = {k: int(v) for k, v in counts.items()}
        entry["fairness"] = {m: _fairness(all_rows, changes, m, pm, E, xcol, mixes)
                             for m in fairness}
        entry["benefits"] = _benefits(all_rows, changes, pm, groups, E, xcol, mixes)
        entry["levels"] = _levels(all_rows, point_boot, pm, [*groups, "overall", "gap"], xcol,
                                  mixes)
        margins = margins_of(plan.layouts[pi]) if plan.layouts else []
        if margins:
            entry["margins"] = _margins(all_rows, changes, pm, margins, groups, E, xcol, mixes)
        if not post_rows.empty:
            entry["post"] = _post(point_rows(post_rows, fields, point), all_rows, pm, E, xcol)
        points.append(entry)
    out = {
        "name": cfg.name,
        "primary_metric": pm,
        "direction": direction(pm),
        "ratio_group": plan.ratio_group.get(0),
        "members": E,
        "replicates": cfg.replicates,
        "intervals": kind_of(boot),
        "test_mix": cfg.test_mix,
        "grid_fields": fields,
        "mix_column": xcol,
        "fairness_measures": fairness,
        "grid_points": points,
    }
    raters = rater_summary(table, plan)
    if raters:
        out["raters"] = raters
    return out


def _fairness(rows: pd.DataFrame, changes: Changes, measure: str, pm: str, E: int, xcol: str,
              mixes: list[Any]) -> dict[str, Any]:
    """One fairness measure (lower is fairer): the gap in the primary metric, or a
    disparity (SPD, EOD, AOD, equalized odds)."""
    label, metric = ("gap", pm) if measure == "gap" else ("disparity", measure)
    sel = rows[(rows["group"] == label) & (rows["metric"] == metric)]
    out: dict[str, Any] = {"label": label, "metric": metric}
    for k in sorted({1, E}):
        by_x = sel[sel["k"] == k].groupby(xcol, sort=False)["mean"].mean()
        out[f"k={k}"] = {"min_ratio": _arg(by_x, "min"), "min_value": json_number(by_x.min())}
    by_mix = []
    for x in mixes:
        ch = changes(x, label, metric)
        by_mix.append({xcol: coord_value(x), "change": ch["mean"], "ci95": ch["ci95"],
                       "effect": _effect(ch)})
    out["by_mix"] = by_mix
    counts = pd.Series([b["effect"] for b in by_mix]).value_counts()
    out["counts"] = {k: int(v) for k, v in counts.items()}
    return out


def _benefits(rows: pd.DataFrame, changes: Changes, pm: str, groups: list[str], E: int,
              xcol: str, mixes: list[Any]) -> list[dict[str, Any]]:
    """Who benefits from the ensemble: per mix and group, the gain in the primary metric from
    1 to E members beside the members' diversity on that group at k = E."""
    at_E = rows[rows["k"] == E]
    diversity = {m: at_E[at_E["metric"] == m].groupby([xcol, "group"])["mean"].mean()
                 for m in ("disagreement", "ambiguity") if at_E["metric"].eq(m).any()}
    out = []
    for x in mixes:
        for g in groups:
            ch = changes(x, g, pm)
            item = {xcol: coord_value(x), "group": g, "gain": ch["mean"], "gain_ci95": ch["ci95"]}
            for m, series in diversity.items():
                item[m] = json_number(series.get((x, g), np.nan))
            out.append(item)
    return out


def _levels(rows: pd.DataFrame, boot: pd.DataFrame | None, metric: str, labels: list[str],
            xcol: str, mixes: list[Any]) -> list[dict[str, Any]]:
    """``metric`` per mix, label and ensemble size k: the mean over replicates and its 95 %
    interval (``intervals.py``), which the figures draw as they are. Under bootstrap only
    k = 1 and k = E have resamples: other sizes have no interval."""
    by = [xcol, "group", "k"]
    sel = rows[(rows["metric"] == metric) & rows["group"].isin(labels)]
    means = samples(sel, by, "replicates")
    kind = kind_of(boot)
    spread = means if boot is None else samples(
        boot[(boot["metric"] == metric) & boot["group"].isin(labels)], by, kind)
    out = []
    for x in mixes:
        for label in labels:
            for k in sorted(sel["k"].unique()):
                values = means.get((x, label, k))
                if values is None:
                    continue
                lo, hi = interval95(spread[(x, label, k)], kind) if (x, label, k) in spread \
                    else (None, None)
                out.append({xcol: coord_value(x), "group": label, "k": int(k),
                            "mean": json_number(pd.Series(values).mean()), "ci95": [lo, hi]})
    return out


def _margins(rows: pd.DataFrame, changes: Changes, pm: str, margins: list, groups: list[str],
             E: int, xcol: str, mixes: list[Any]) -> list[dict[str, Any]]:
    """Intersectional groups' per-attribute margins: per mix, each attribute value's primary
    metric over the combinations holding it at k = 1 and k = E, and its change with the
    interval. Gaps, worst groups and verdicts stay over the combinations."""
    sel = rows[rows["metric"] == pm]
    mean = sel.groupby([xcol, "group", "k"], sort=False)["mean"].mean()
    out = []
    for x in mixes:
        for label, members in margins:
            ch = changes(x, label, pm)
            out.append({xcol: coord_value(x), "group": label,
                        "combinations": [groups[j] for j in members],
                        **{f"k={k}": json_number(mean.get((x, label, k), np.nan))
                           for k in sorted({1, E})},
                        "change": ch["mean"], "ci95": ch["ci95"]})
    return out


def _post(post: pd.DataFrame, none: pd.DataFrame, pm: str, E: int, xcol: str
          ) -> dict[str, Any]:
    """Post-processing against none at k = 1 and E: the mean over mixes of the overall
    primary metric and of each disparity, and in how many cells (mix x replicate) equalized-
    odds thresholds lowered the equalized-odds difference at k = E."""
    both = pd.concat([none[none["k"].isin([1, E])], post], ignore_index=True)
    keys = [("overall", pm)] + [("disparity", m) for m in ("eq_odds", "spd", "eod", "aod")]
    out: dict[str, Any] = {}
    for name, part in both.groupby("post", sort=False):
        out[name] = {}
        for k in sorted({1, E}):
            at = part[part["k"] == k]
            out[name][f"k={k}"] = {
                f"{label}:{metric}": json_number(
                    at[(at["group"] == label) & (at["metric"] == metric)]["mean"].mean())
                for label, metric in keys
                if ((at["group"] == label) & (at["metric"] == metric)).any()
            }
    eo = both[(both["k"] == E) & (both["group"] == "disparity") & (both["metric"] == "eq_odds")]
    if not eo.empty and eo["post"].eq("threshold_eo").any():
        wide = eo.pivot_table(index=[xcol, "replicate"], columns="post", values="mean")
        lowered = (wide["threshold_eo"] < wide["none"]).sum()
        out["eq_odds_lowered_by_threshold_eo_at_k=E"] = {"cells": int(lowered),
                                                          "of": int(len(wide))}
    return out


def _arg(series: pd.Series, which: str) -> Any:
    """The mix at the series' min or max, ignoring NaN (None where every value is NaN, e.g.
    AUC on a group whose test split holds one class)."""
    clean = series.dropna()
    if clean.empty:
        return None
    return coord_value(clean.idxmin() if which == "min" else clean.idxmax())
