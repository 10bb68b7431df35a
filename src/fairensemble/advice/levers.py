"""``fairensemble recommend --cost N``: which combination of mix, ensemble size, mitigation and
thresholds gives the smallest gap for a training cost of at most N trainings, without lowering
the overall metric by more than a tolerance?

The run sweeps the config's mixes under every mitigation (``train.mitigation`` becomes a grid
axis unless the config sweeps it already) with N members per cell, so every ensemble of k <= N
members, with and without group-specific thresholds, is a candidate. Per scenario (a grid
point without its lever fields) the candidates whose overall metric stays within the tolerance
of the baseline's (one member, no mitigation, no thresholds, the mix closest to balanced) are
compared on the gap by ``objectives.choose``: the smallest gap, every candidate a 95 % paired
interval cannot separate from it, and among those the cheapest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from fairensemble.advice.objectives import RecommendError, Samples, choose
from fairensemble.advice.recommend import Trainer
from fairensemble.evaluation.intervals import kind_of, samples
from fairensemble.evaluation.levers import LEVER_FIELDS
from fairensemble.evaluation.tables import coord_value, direction, grid_fields, mix_column
from fairensemble.train.mitigation import MITIGATIONS


def lever_config(cfg: Any, cost: int) -> Any:
    """``cfg`` with every mitigation as a grid axis (unless it sweeps them already) and
    ``cost`` members per cell, their ensembles scored at every size up to it."""
    from fairensemble.config import validate

    if cost < 1:
        raise RecommendError(f"--cost: expected a number of trainings >= 1, got {cost}")
    data = cfg.model_dump(mode="json")
    data["grid"] = {**data["grid"]}
    data["grid"].setdefault("train.mitigation", list(MITIGATIONS))
    data["ensemble"]["members"] = cost
    data["ensemble"]["k"] = None
    if cfg.replicates < 2 and cfg.analysis.ci == "replicates":
        data["analysis"]["ci"] = "bootstrap"
    return validate(data)


def choose_levers(table: pd.DataFrame, boot: pd.DataFrame | None, plan: Any, cost: int,
                  tolerance: float) -> list[dict[str, Any]]:
    """Per scenario: the baseline, the recommended candidate (smallest gap), those that cannot
    be told apart from it, and the cheapest of them."""
    cfg = plan.cfg
    pm = cfg.primary
    higher = direction(pm) != "lower"
    fields = grid_fields(plan)
    xcol = mix_column(table)
    scenario_fields = [f for f in fields if f not in LEVER_FIELDS]
    kind = kind_of(boot)
    rows = table[table["metric"] == pm]
    spread_rows = rows if boot is None else boot[boot["metric"] == pm]
    key = ["train.mitigation", xcol, "k", "post"]
    out = []
    for scenario, part in (rows.groupby(scenario_fields, sort=False) if scenario_fields
                           else [((), rows)]):
        scenario = dict(zip(scenario_fields, scenario if isinstance(scenario, tuple)
                            else (scenario,)))
        sp = spread_rows
        for f, v in scenario.items():
            sp = sp[sp[f] == v]
        means = part.groupby([*key, "group"], sort=False)["mean"].mean()
        gap = samples(sp[sp["group"] == "gap"], key, kind)
        cands = [c for c in gap if c[2] <= cost]
        if not cands:
            raise RecommendError(f"--cost {cost}: no ensemble of at most {cost} members was "
                                 "scored")
        plain = [c for c in cands if c[2] == 1 and c[3] == "none" and c[0] == "none"]
        base = min(plain or cands, key=lambda c: _balanced(c[1]))
        floor = means[(*base, "overall")]
        ok = [c for c in cands if (means[(*c, "overall")] >= floor - tolerance if higher
                                   else means[(*c, "overall")] <= floor + tolerance)]
        choice = choose(Samples({c: gap[c] for c in ok}, kind), True, "gap")
        cheapest = min(choice.indistinguishable, key=lambda c: (c[2], means[(*c, "gap")]))

        def describe(c: tuple, means: pd.Series = means, gap: dict = gap,
                     base: tuple = base) -> dict[str, Any]:
            s = Samples(gap, kind)
            return {"mitigation": c[0], xcol: coord_value(c[1]), "k": int(c[2]), "post": c[3],
                    "trainings": int(c[2]), "gap": float(means[(*c, "gap")]),
                    "gap_ci95": list(s.interval(c)),
                    "overall": float(means[(*c, "overall")]),
                    "gap_change_vs_baseline_ci95": list(s.diff_interval(c, base))}

        out.append({"scenario": scenario, "baseline": describe(base),
                    "recommended": describe(choice.best),
                    "cheapest_indistinguishable": describe(cheapest),
                    "indistinguishable": len(choice.indistinguishable),
                    "candidates": len(cands), "eligible": len(ok), "flat": choice.flat,
                    "intervals": kind})
    return out


def _balanced(x: Any) -> float:
    try:
        return abs(float(x) - 0.5)
    except (TypeError, ValueError):
        return 0.0


def run_levers(cfg: Any, run_dir: Any, cost: int, tolerance: float, train: Trainer,
               say: Callable[[str], None]) -> dict[str, Any]:
    """Train what the levers need (reusing stored cells), evaluate, choose; returns
    recommendation.json's content with the plan the run directory now holds."""
    from fairensemble.config import dump_config
    from fairensemble.evaluation.analysis import evaluate_run
    from fairensemble.sweep.runner import plan_with_preview
    from fairensemble.sweep.store import RunStore

    step = lever_config(cfg, cost)
    mitigations = step.grid["train.mitigation"]
    mixes = len(step.mixes) if step.mixes is not None else len(step.ratios)
    say(f"every lever at a cost of at most {cost} trainings: {mixes} mixes x "
        f"mitigations {', '.join(mitigations)} x ensembles of 1..{cost} members, with and "
        "without group thresholds")
    plan, preview = plan_with_preview(step)
    train(step, plan, preview)
    store = RunStore(run_dir)
    ev = evaluate_run(plan, store)
    store.prepare(dump_config(step), plan.to_json())
    points = choose_levers(ev.table, ev.boot, plan, cost, tolerance)
    return {"name": cfg.name, "kind": "levers", "cost": cost, "tolerance": tolerance,
            "metric": step.primary, "members": cost, "replicates": step.replicates,
            "intervals": step.analysis.ci, "levers": points, "plan": plan,
            "known": ev.cells}


__all__ = ["choose_levers", "lever_config", "run_levers"]
