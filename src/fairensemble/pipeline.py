"""Where the two halves meet for one command: stored cells checked (and evaluated where the
run's evaluation spec has no result for them yet), missing cells trained and evaluated where
they train, then the report, with every cell file read at most once.

The training side (``sweep``) never imports the evaluation side; this module hands it the
evaluator (``evaluation.Evaluator``) as a plain callable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fairensemble.config import RunConfig
from fairensemble.evaluation.analysis import Evaluations, evaluate_cells
from fairensemble.evaluation.cell import Evaluator
from fairensemble.sweep.plan import Plan
from fairensemble.sweep.runner import SweepResult, plan_with_preview, run_sweep
from fairensemble.sweep.store import RunStore


def check_stored(
    cfg: RunConfig,
    run_dir: str | Path,
    plan: Plan,
    *,
    on_warning: Callable[[str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> Evaluations:
    """The evaluations of the cells of ``plan`` stored intact in ``run_dir`` (by cell id; hand
    them to ``build_report`` as ``known``), each cell read once and left evaluated
    under ``cfg``'s spec: a cell with a cached evaluation is checked against its checksum, one
    without is evaluated on the executor (``on_start(n)``, ``on_progress(1)``). A damaged cell
    is set aside to be retrained (``on_warning`` gets a line). Hold the run directory
    (``RunStore.locked``) across this, the training and the report, so that nothing read here
    is read again."""
    store = RunStore(run_dir)
    got, damaged = evaluate_cells(store, Evaluator.of(cfg, plan.layouts),
                                  [c.id for c in plan.cells],
                                  cfg.executor, set_aside=True, on_start=on_start,
                                  on_progress=on_progress)
    for line in damaged:
        if on_warning is not None:
            on_warning(line)
    return got


def train_missing(
    cfg: RunConfig,
    run_dir: str | Path,
    plan: Plan,
    preview: dict[str, np.ndarray] | None = None,
    *,
    done: set[str],
    on_progress: Callable[[str, float], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> SweepResult:
    """Train the cells of ``plan`` not in ``done`` (``check_stored``), each evaluated in the
    worker that trains it."""
    return run_sweep(cfg, run_dir, on_progress=on_progress, plan=plan, on_warning=on_warning,
                     evaluate=Evaluator.of(cfg, plan.layouts), preview=preview,
                     done=done)


def run(cfg: RunConfig, run_dir: str | Path) -> dict[str, Any]:
    """Train every missing cell of ``cfg`` into ``run_dir`` and build its outputs; returns
    the summary (what ``fairensemble run`` does, without the progress bars)."""
    from fairensemble.report.build import build_report

    plan, preview = plan_with_preview(cfg)
    with RunStore(run_dir).locked():
        stored = check_stored(cfg, run_dir, plan)
        train_missing(cfg, run_dir, plan, preview, done=set(stored))
        return build_report(run_dir, plan=plan, known=stored)
