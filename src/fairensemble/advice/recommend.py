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

import numpy as np
import pandas as pd

from fairensemble.common.errors import UserError
from fairensemble.evaluation.analysis import coord_value, direction
from fairensemble.evaluation.intervals import interval95, samples

OBJECTIVES = ("gap", "overall", "worst", "pareto")
COARSE = (0.1, 0.3, 0.5, 0.7, 0.9)
FINE_STEP = 0.05
FLAT_FRACTION = 0.5  # a valley is flat when this share of the candidates cannot be told apart


class RecommendError(UserError):
    """A recommend problem, phrased as one line."""


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise RecommendError(f"--objective: expected one of {', '.join(OBJECTIVES)}, "
                             f"got {objective!r}")
    return objective


def fine_shares(best: float, step: float = FINE_STEP) -> list[float]:
    """Shares around ``best`` in ``step``s (two each side), clipped to [0, 1]."""
    around = [best + i * step for i in (-2, -1, 1, 2)]
    return sorted({round(s, 4) for s in around if -1e-9 <= s <= 1 + 1e-9})


# ----------------------------------------------------------------------------- samples


@dataclass
class Samples:
    """A quantity at each candidate: ``values[candidate]`` is one number per replicate (or per
    bootstrap resample, averaged over replicates). Paired: index i means the same replicate or
    resample at every candidate."""

    values: dict[Any, np.ndarray]
    kind: str  # "replicates" or "bootstrap"

    def mean(self, x: Any) -> float:
        return float(np.mean(self.values[x]))

    def interval(self, x: Any) -> tuple[float | None, float | None]:
        return interval95(self.values[x], self.kind)

    def diff_interval(self, x: Any, ref: Any) -> tuple[float | None, float | None]:
        return interval95(self.values[x] - self.values[ref], self.kind)


# ----------------------------------------------------------------------------- choosing


@dataclass
class Choice:
    objective: str
    best: Any
    value: float
    indistinguishable: list[Any]  # candidates whose difference from best has a CI covering 0
    flat: bool
    decided_by: str  # what the intervals rest on

    def to_json(self) -> dict[str, Any]:
        shares = [x for x in self.indistinguishable if isinstance(x, (int, float))]
        return {
            "objective": self.objective,
            "recommended": self.best,
            "value": self.value,
            "indistinguishable": self.indistinguishable,
            "range": [min(shares), max(shares)] if shares else None,
            "flat_valley": self.flat,
            "intervals": self.decided_by,
        }


def choose(samples: Samples, lower_is_better: bool, objective: str) -> Choice:
    """The best candidate by the mean, and every candidate that a 95 % paired interval cannot
    separate from it. Without intervals (one replicate, no bootstrap) only the best is kept."""
    cands = [x for x in samples.values if not np.isnan(samples.mean(x))]
    if not cands:
        raise RecommendError(f"{objective}: undefined at every candidate (NaN metric)")
    sign = 1.0 if lower_is_better else -1.0
    best = min(cands, key=lambda x: sign * samples.mean(x))
    same = []
    for x in cands:
        lo, hi = samples.diff_interval(x, best)
        if x == best or (lo is not None and lo <= 0.0 <= hi):
            same.append(x)
    flat = len(cands) > 2 and len(same) >= max(3, FLAT_FRACTION * len(cands))
    return Choice(objective, best, samples.mean(best), sorted(same, key=_order), flat,
                  samples.kind)


def pareto_front(overall: dict[Any, float], gap: dict[Any, float], higher_overall: bool = True
                 ) -> list[Any]:
    """Candidates no other candidate beats on both overall (better) and gap (smaller)."""
    def better_or_equal(a: Any, b: Any) -> bool:
        o = overall[a] >= overall[b] if higher_overall else overall[a] <= overall[b]
        return o and gap[a] <= gap[b]

    front = []
    for x in overall:
        dominated = any(better_or_equal(y, x) and (overall[y] != overall[x] or gap[y] != gap[x])
                        for y in overall if y != x)
        if not dominated:
            front.append(x)
    return sorted(front, key=_order)


def choose_pareto(overall: Samples, gap: Samples, higher_overall: bool) -> Choice:
    """The Pareto compromise: among candidates whose overall metric cannot be told apart from
    the best overall, the one with the smallest gap (it lies on the front)."""
    best_overall = choose(overall, not higher_overall, "overall")
    pool = best_overall.indistinguishable
    sub = Samples({x: gap.values[x] for x in pool}, gap.kind)
    picked = choose(sub, True, "pareto")
    return Choice("pareto", picked.best, gap.mean(picked.best), picked.indistinguishable,
                  picked.flat, gap.kind)


def _order(x: Any) -> Any:
    return (0, float(x)) if isinstance(x, (int, float)) else (1, str(x))


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
        if group is not None and group not in groups:
            raise RecommendError(f"--group: expected one of {groups}, got {group!r}")
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
        xcol = "mix" if "mix" in ev.table.columns else "ratio"
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


# ----------------------------------------------------------------------------- a budget


BUDGET_SHARES = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)  # at least three inside (0, 1): conflict


def budget_sizes(largest: int) -> list[int]:
    """Three training-set sizes up to ``largest``: a quarter, a half and all of it, each
    rounded down to two significant figures."""
    from fairensemble.data.sampling import readable_floor

    sizes = sorted({n for n in (readable_floor(int(largest * f))[0] for f in (0.25, 0.5, 1.0))
                    if n >= 10})
    if len(sizes) < 2:
        raise RecommendError(f"--budget: the pool draws at most {largest} samples at every "
                             "share; learning curves need at least two sizes of 10 or more")
    return sizes


def parse_sizes(text: str | None) -> list[int] | None:
    """``--sizes 500,1000,2000``: distinct positive integers, at least two."""
    if text is None:
        return None
    try:
        sizes = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise RecommendError(f"--sizes: expected comma-separated integers, got {text!r}") from None
    if len(sizes) < 2 or sizes[0] < 1:
        raise RecommendError(f"--sizes: expected at least two positive sizes, got {text!r}")
    return sizes


def run_budget(cfg: Any, run_dir: Any, budget: int, sizes: list[int] | None,
               group: str | None, train: Trainer, say: Callable[[str], None]) -> dict[str, Any]:
    """How much of which group to collect for a training set of ``budget``: train the mix
    sweep at a few sizes (reusing stored cells), fit every group's learning curve for the
    single model and the ensemble, and predict each objective's best share at ``budget``.
    Returns recommendation.json's content, plus ``plan`` (the run directory's plan becomes the
    sweep) and ``known`` (the sweep's evaluations, for the report) to pop before writing it."""
    from fairensemble.advice.curves import run_curves
    from fairensemble.config import dump_config
    from fairensemble.data.sampling import largest_train_size
    from fairensemble.evaluation.analysis import evaluate_run
    from fairensemble.sweep.plan import moved_indices
    from fairensemble.sweep.runner import data_key, load_for, plan_with_preview, resolve_ratio_group
    from fairensemble.sweep.store import RunStore

    if budget < 1:
        raise RecommendError(f"--budget: expected a training-set size >= 1, got {budget}")
    if "train_size" in cfg.grid:
        raise RecommendError("grid.train_size: --budget sweeps the training-set size itself; "
                             "remove it from grid (or pass the sizes with --sizes)")
    if cfg.mixes is not None:
        raise RecommendError("mixes: --budget sweeps the share of one group; use ratios")
    loaded: dict[str, Any] = {}

    def loader(pcfg: Any) -> Any:  # each grid point's data once, whatever its train_size
        key = data_key(pcfg)
        if key not in loaded:
            loaded[key] = load_for(pcfg)
        return loaded[key]

    points = cfg.grid_points()
    first = loader(cfg.at(points[0]))
    target = group or resolve_ratio_group(cfg, first)
    if target not in first.groups:  # learning curves move one group (or one combination)
        raise RecommendError(f"--group: expected one of {first.groups}, got {target!r}")
    if sizes is None:
        largest = min(
            largest_train_size(ds.pool.y, ds.pool.g, ds.groups, ds.n_classes,
                               moved_indices(target, ds.groups, ds.group_values),
                               BUDGET_SHARES, cfg.label_balance)
            for ds in (loader(cfg.at(p)) for p in points))
        sizes = budget_sizes(largest)
    step = step_config(cfg, {}, grid={**cfg.grid, "train_size": sizes}, ratios=list(BUDGET_SHARES),
                       mixes=None, ratio_group=target)
    say(f"learning curves: shares {list(BUDGET_SHARES)} of {target} at train sizes "
        f"{', '.join(f'{n:,}' for n in sizes)} x {cfg.replicates} replicate(s)")
    plan, preview = plan_with_preview(step, loader=loader)
    train(step, plan, preview)
    store = RunStore(run_dir)
    store.prepare(dump_config(step), plan.to_json())
    ev = evaluate_run(plan, store)
    factor = budget / max(sizes)
    say(f"fitting the curves; predicting for a training set of {budget:,} "
        f"({factor:.1f} times the largest measured size)")
    curves = run_curves(ev.table, plan, budget, n_boot=cfg.analysis.n_boot, seed=cfg.seed)
    warn = [w for entry in curves for part in ("single", "ensemble") if entry[part]
            for w in entry[part]["warnings"]]
    for line in dict.fromkeys(warn):
        say(f"warning: {line}")
    return {"name": cfg.name, "metric": cfg.primary, "members": cfg.ensemble.members,
            "replicates": cfg.replicates, "budget": budget, "sizes": sizes,
            "shares": list(BUDGET_SHARES), "moved_group": target, "extrapolation_factor": factor,
            "curves": curves[0], "curves_by_point": curves, "points": [], "plan": plan,
            "known": ev.cells}


def _none_post(boot: pd.DataFrame | None) -> pd.DataFrame | None:
    return None if boot is None else boot[boot["post"] == "none"]


def _ratio_rows(table: pd.DataFrame | None) -> pd.DataFrame | None:
    """Rows of the ratio sweep (drops the explicit balanced mix of more than two groups)."""
    if table is None:
        return None
    rows = table[table["post"] == "none"]
    return rows[rows["mix"].isna()] if "mix" in rows.columns else rows
