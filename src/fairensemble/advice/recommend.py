"""``fairensemble recommend``: which share of each group should a training set have?

The paper's recipe for practitioners, as one command:

1. train an ensemble at the balanced mix and measure each group's metric and the gap (with a
   95 % interval): the difficulty estimate, naming the harder group;
2. sweep the share of the harder group (or of ``ratio_group`` when the config names one) on a
   coarse grid, then in finer steps around the best share, reusing every cell the run
   directory already holds (so it resumes and never retrains a cell);
3. for each objective (smallest gap, best overall, best worst group, and a Pareto
   compromise) report the recommended share, the shares statistically indistinguishable from
   it, the per-group metrics there and the ensemble's gain, and say plainly when the data
   cannot separate the candidates.

Objectives are judged on the ensemble (k = E). Intervals are paired: every candidate share of
a grid point shares its test set and member seeds, so differences are taken replicate by
replicate (t-interval) or bootstrap resample by resample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from fairensemble.advice.objectives import (
    RecommendError,
    Samples,
    _order,
    check_objective,
    choose,
    choose_pareto,
    pareto_front,
)
from fairensemble.evaluation.intervals import samples
from fairensemble.evaluation.tables import coord_value, direction, mix_column
from fairensemble.sweep.plan import check_ratio_group

COARSE = (0.1, 0.3, 0.5, 0.7, 0.9)
FINE_STEP = 0.05


def fine_shares(best: float, step: float = FINE_STEP) -> list[float]:
    """Shares around ``best`` in ``step``s (two each side), clipped to [0, 1]."""
    around = [best + i * step for i in (-2, -1, 1, 2)]
    return sorted({round(s, 4) for s in around if -1e-9 <= s <= 1 + 1e-9})


# ----------------------------------------------------------------------------- orchestration


@dataclass
class Quantities:
    """Per candidate at one grid point: paired samples of the per-group metric, overall, gap
    and worst group at k = 1 and k = E."""

    groups: list[str]
    by_k: dict[int, dict[str, Samples]]  # k -> label -> samples


def quantities(rows: pd.DataFrame, boot: pd.DataFrame | None, metric: str, groups: list[str],
               ks: list[int], xcol: str) -> Quantities:
    """Samples of ``metric`` per candidate from a grid point's metrics rows (post "none"):
    one value per replicate, or with ``boot`` one per resample, averaged over replicates."""
    labels = [*groups, "overall", "gap", "worst"]
    frame, kind = (rows, "replicates") if boot is None else (boot, "bootstrap")
    out: dict[int, dict[str, Samples]] = {}
    for k in ks:
        out[k] = {}
        for label in labels:
            sel = frame[(frame["k"] == k) & (frame["group"] == label)
                        & (frame["metric"] == metric)]
            values = {coord_value(x): v for x, v in samples(sel, [xcol], kind).items()}
            out[k][label] = Samples(values, kind)
    return Quantities(groups, out)


def harder_group(q: Quantities, E: int, x: Any, lower_is_better: bool) -> str:
    means = {g: q.by_k[E][g].mean(x) for g in q.groups}
    return max(means, key=means.get) if lower_is_better else min(means, key=means.get)


def recommend_point(q: Quantities, E: int, lower_is_better: bool) -> dict[str, Any]:
    """Every objective's choice at one grid point, with what it means at the chosen share."""
    at = q.by_k[E]
    choices = {
        "gap": choose(at["gap"], True, "gap"),
        "overall": choose(at["overall"], lower_is_better, "overall"),
        "worst": choose(at["worst"], lower_is_better, "worst"),
        "pareto": choose_pareto(at["overall"], at["gap"], not lower_is_better),
    }
    overall_means = {x: at["overall"].mean(x) for x in at["overall"].values}
    gap_means = {x: at["gap"].mean(x) for x in at["gap"].values}
    result: dict[str, Any] = {
        "objectives": {},
        "pareto_front": pareto_front(overall_means, gap_means, not lower_is_better),
        "candidates": [
            {"share": x, **{f"{label}_k{k}": q.by_k[k][label].mean(x)
                            for k in sorted(q.by_k) for label in [*q.groups, "overall", "gap",
                                                                  "worst"]}}
            for x in sorted(overall_means, key=_order)
        ],
    }
    for name, choice in choices.items():
        entry = choice.to_json()
        entry["at_recommended"] = describe(q, E, choice.best)
        result["objectives"][name] = entry
    return result


def describe(q: Quantities, E: int, x: Any) -> dict[str, Any]:
    """Per-group metric at the ensemble and the gain from one member to E, with intervals."""
    out: dict[str, Any] = {}
    for label in [*q.groups, "overall", "gap", "worst"]:
        s_E, s_1 = q.by_k[E][label], q.by_k[1][label]
        gain = Samples({x: s_E.values[x] - s_1.values[x]}, s_E.kind)
        out[label] = {"k=E": s_E.mean(x), "ci95": list(s_E.interval(x)),
                      "gain_from_1": gain.mean(x), "gain_ci95": list(gain.interval(x))}
    return out


# ----------------------------------------------------------------------------- the command


Trainer = Callable[[Any, Any, Any], None]  # (step config, its plan, preview) -> trains


def step_config(cfg: Any, point: dict[str, Any], **fields: Any) -> Any:
    """``cfg`` narrowed to one grid point (kept as a one-value grid, so cells keep their
    coordinates and ids) with ``fields`` (ratios, mixes, ratio_group) replaced."""
    from fairensemble.config import validate

    data = cfg.model_dump(mode="json")
    data["grid"] = {f: [v] for f, v in point.items()}
    data.update(fields)
    return validate(data)


def run_recommend(cfg: Any, run_dir: Any, objective: str, group: str | None, train: Trainer,
                  say: Callable[[str], None]) -> dict[str, Any]:
    """Steps 1 and 2 for every grid point; returns recommendation.json's content and writes
    the union of the cells it used as the run directory's plan (so ``report`` works)."""
    from fairensemble.config import validate
    from fairensemble.evaluation.analysis import evaluate_run
    from fairensemble.sweep.plan import Plan, PointLayout
    from fairensemble.sweep.runner import load_for, plan_with_preview
    from fairensemble.sweep.store import RunStore

    check_objective(objective)
    if cfg.replicates < 2 and cfg.analysis.ci == "replicates":
        data = cfg.model_dump(mode="json")
        data["analysis"]["ci"] = "bootstrap"
        cfg = validate(data)
        say("one replicate: intervals come from a bootstrap over test samples "
            f"(analysis.ci=bootstrap, {cfg.analysis.n_boot} resamples)")
    E = cfg.ensemble.members
    metric = cfg.primary
    lower = direction(metric) == "lower"
    store = RunStore(run_dir)
    points_out, all_cells, layouts = [], {}, []

    def train_and_measure(step_cfg: Any, ds: Any, cells_so_far: dict[str, Any]) -> Any:
        # a step covers one grid point, whose data ``ds`` is already loaded
        plan, preview = plan_with_preview(step_cfg, loader=lambda _: ds)
        train(step_cfg, plan, preview)
        for c in plan.cells:
            cells_so_far[c.id] = c
        sub = Plan(step_cfg, plan.points, list(cells_so_far.values()), plan.layouts)
        return evaluate_run(sub, store)

    for point in cfg.grid_points():
        pcfg = cfg.at(point)
        ds = load_for(pcfg)
        groups = list(ds.groups)
        if len(groups) < 2:
            raise RecommendError(f"dataset: one group only ({groups[0]}); nothing to move")
        if group is not None:
            check_ratio_group(group, groups, ds.group_values, ds.attributes, field="--group")
        where = ", ".join(f"{k}={v}" for k, v in point.items())
        where = f"{where}: " if where else ""
        cells: dict[str, Any] = {}
        explicit = cfg.mixes is not None
        # step 1: the balanced mix
        if explicit:
            if len(cfg.mixes) < 2:
                raise RecommendError("mixes: need at least two candidate mixes to compare")
            first = step_config(cfg, point, mixes=cfg.mixes)
        elif len(groups) == 2:
            first = step_config(cfg, point, ratios=[0.5], mixes=None,
                                ratio_group=cfg.ratio_group or group or groups[-1])
        else:
            first = step_config(cfg, point, mixes=[{g: 1.0 / len(groups) for g in groups}])
        say(f"{where}step 1, the balanced mix" if not explicit else
            f"{where}the {len(cfg.mixes)} mixes of the config")
        ev = train_and_measure(first, ds, cells)
        xcol = mix_column(ev.table)
        q = quantities(ev.table[ev.table["post"] == "none"], _none_post(ev.boot), metric,
                       groups, [1, E], xcol)
        x0 = next(iter(q.by_k[E]["gap"].values))
        harder = harder_group(q, E, x0, lower)
        balanced = {"mix": x0, **describe(q, E, x0), "harder_group": harder}
        target = cfg.ratio_group or group or harder
        entry: dict[str, Any] = {"point": point, "groups": groups, "metric": metric,
                                 "balanced": balanced, "moved_group": target}
        if explicit:
            final = q
        else:
            # step 2: coarse shares of the moved group, then finer ones around the best
            coarse = step_config(cfg, point, ratios=list(COARSE), mixes=None, ratio_group=target)
            say(f"{where}step 2, shares {list(COARSE)} of {target}")
            ev = train_and_measure(coarse, ds, cells)
            q = quantities(_ratio_rows(ev.table), _ratio_rows(ev.boot), metric, groups,
                           [1, E], "ratio")
            best = recommend_point(q, E, lower)["objectives"][objective]["recommended"]
            fine = [s for s in fine_shares(best) if s not in q.by_k[E]["gap"].values]
            if fine:
                say(f"{where}finer shares {fine} around {best}")
                ev = train_and_measure(step_config(cfg, point, ratios=fine, mixes=None,
                                                   ratio_group=target), ds, cells)
            final = quantities(_ratio_rows(ev.table), _ratio_rows(ev.boot), metric,
                               groups, [1, E], "ratio") if fine else q
        entry.update(recommend_point(final, E, lower))
        entry["chosen_by"] = objective
        points_out.append(entry)
        # the sweep's cells; a balanced explicit mix of more than two groups stays in
        # recommendation.json, outside the ratio sweep the report draws
        all_cells.update({i: c for i, c in cells.items() if explicit or c.mix is None})
        layouts.append(PointLayout(groups, list(ds.classes), target, [], [],
                                   list(ds.attributes), [list(v) for v in ds.group_values]))

    shares = sorted({c.ratio for c in all_cells.values()})
    union_cfg = cfg if cfg.mixes is not None else step_config(
        cfg, {}, grid=cfg.grid, ratios=shares, ratio_group=cfg.ratio_group)
    union = Plan(union_cfg, cfg.grid_points(), list(all_cells.values()), layouts)
    from fairensemble.config import dump_config

    store.prepare(dump_config(union_cfg), union.to_json())
    return {"name": cfg.name, "objective": objective, "metric": metric, "members": E,
            "replicates": cfg.replicates, "intervals": cfg.analysis.ci, "points": points_out,
            "plan": union}


def _none_post(boot: pd.DataFrame | None) -> pd.DataFrame | None:
    return None if boot is None else boot[boot["post"] == "none"]


def _ratio_rows(table: pd.DataFrame | None) -> pd.DataFrame | None:
    """Rows of the ratio sweep (drops the explicit balanced mix of more than two groups)."""
    if table is None:
        return None
    rows = table[table["post"] == "none"]
    return rows[rows["mix"].isna()] if "mix" in rows.columns else rows
