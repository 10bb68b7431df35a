"""``fairensemble recommend --budget N``: how much data of which group? The mix sweep measured
at a few training-set sizes, each group's learning curve fitted (``advice.curves``), and the
best share predicted for a training set of N."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fairensemble.advice.objectives import RecommendError
from fairensemble.advice.recommend import Trainer, step_config
from fairensemble.sweep.plan import check_ratio_group

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
    # learning curves move one group (or one combination), not every combination of a value
    check_ratio_group(target, first.groups, field="--group")
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


