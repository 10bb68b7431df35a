"""The sequences of the commands, written once for the command line and for ``fe.run`` alike:
a run (plan, check the stored cells, train the missing ones, analyse, report), a report
rebuilt from a run directory, a recommendation, an analysis of predictions made elsewhere.

The two halves meet here: the training side (``sweep``) is handed the evaluator
(``evaluation.Evaluator``) as a plain callable and never imports the evaluation side. Analysis
runs before the report: ``outputs`` evaluates the cells, summarises them, fits learning curves
where the run supports them and weighs every lever against its cost, then hands the results to
``report.write_report``, which renders them and computes nothing.

What a caller shows while a sequence runs (progress bars, warnings) goes through ``Hooks``;
the defaults show nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fairensemble.advice.budget import run_budget
from fairensemble.advice.curves import difficulty_summary, run_curves, sweeps_sizes
from fairensemble.advice.levers import run_levers
from fairensemble.advice.objectives import check_objective
from fairensemble.advice.recommend import run_recommend
from fairensemble.common.errors import ConfigError
from fairensemble.common.files import write_json
from fairensemble.config import RunConfig, check_evaluation_overrides
from fairensemble.evaluation.analysis import Evaluations, evaluate_cells, evaluate_run, load_run
from fairensemble.evaluation.cell import Evaluator
from fairensemble.evaluation.levers import cell_costs, levers, run_cost
from fairensemble.evaluation.raters import attach as attach_raters
from fairensemble.evaluation.summary import summarize
from fairensemble.interop import Prepared, prepare
from fairensemble.report.build import RECOMMENDATION, read_recommendation, write_report
from fairensemble.sweep.executors import check_available
from fairensemble.sweep.plan import Plan
from fairensemble.sweep.runner import SweepResult, plan_with_preview, run_sweep
from fairensemble.sweep.store import RunStore

OnStart = Callable[[int], None]
OnProgress = Callable[[float], None]


class Hooks:
    """What a command shows while it runs. The defaults show nothing; the command line's
    ``Shown`` draws progress bars and prints warnings."""

    def warn(self, line: str) -> None:
        """A line worth seeing that does not stop the command (a damaged cell set aside)."""

    def say(self, line: str) -> None:
        """A step of a longer command (recommend's steps)."""

    @contextmanager
    def evaluating(self) -> Iterator[tuple[OnStart, OnProgress]]:
        """(on_start(n), on_progress(amount)) while stored cells are evaluated."""
        yield (lambda n: None), (lambda amount: None)

    @contextmanager
    def training(self, cfg: RunConfig, plan: Plan, done: int, run_dir: Path
                 ) -> Iterator[Callable[[str, float], None]]:
        """``on_progress(kind, amount)`` while the missing cells train: ("members", n) as
        members finish, ("cell", n) as cells are written."""
        yield lambda kind, amount: None


@dataclass
class Finished:
    """What a run did: its summary and where the time went."""

    summary: dict[str, Any]
    train_s: float = 0.0
    eval_s: float = 0.0  # worker time spent evaluating the newly trained cells
    total_s: float = 0.0
    trained: int = 0


# ----------------------------------------------------------------------------- the halves


def check_stored(cfg: RunConfig, run_dir: str | Path, plan: Plan, hooks: Hooks | None = None
                 ) -> Evaluations:
    """The evaluations of the cells of ``plan`` stored intact in ``run_dir`` (by cell id; hand
    them to ``outputs`` as ``known``), each cell read once and left evaluated under ``cfg``'s
    spec: a cell with a cached evaluation is checked against its checksum, one without is
    evaluated on the executor. A damaged cell is set aside to be retrained (a warning line).
    Hold the run directory (``RunStore.locked``) across this, the training and the report, so
    that nothing read here is read again."""
    hooks = hooks or Hooks()
    with hooks.evaluating() as (on_start, on_progress):
        got, damaged = evaluate_cells(RunStore(run_dir), Evaluator.of(cfg, plan.layouts),
                                      [c.id for c in plan.cells], cfg.executor, set_aside=True,
                                      on_start=on_start, on_progress=on_progress)
    for line in damaged:
        hooks.warn(line)
    return got


def train_missing(cfg: RunConfig, run_dir: str | Path, plan: Plan,
                  preview: dict[str, np.ndarray] | None = None, *, done: set[str],
                  hooks: Hooks | None = None) -> SweepResult:
    """Train the cells of ``plan`` not in ``done`` (``check_stored``), each evaluated in the
    worker that trains it."""
    hooks = hooks or Hooks()
    with hooks.training(cfg, plan, len(done), Path(run_dir)) as on_progress:
        return run_sweep(cfg, run_dir, on_progress=on_progress, plan=plan,
                         on_warning=hooks.warn, evaluate=Evaluator.of(cfg, plan.layouts),
                         preview=preview, done=done)


def outputs(run_dir: str | Path, out_dir: str | Path | None = None, plan: Plan | None = None,
            known: Evaluations | None = None, hooks: Hooks | None = None) -> dict[str, Any]:
    """Evaluate every stored cell of a run, analyse the results and write its outputs
    (metrics.parquet, summary.json, figures, report.html) into ``out_dir`` (default the run
    directory); returns the summary. Reads only the run directory; ``plan`` (from
    ``load_run`` with evaluation overrides, say) defaults to the run's own; ``known``:
    evaluations ``check_stored`` returned under the same lock (not read again)."""
    hooks = hooks or Hooks()
    store = RunStore(run_dir)
    if plan is None:
        _, plan = load_run(store.root)
    out = Path(out_dir) if out_dir is not None else store.root
    with hooks.evaluating() as (on_start, on_progress):
        # the run directory's own outputs follow the latest evaluation spec; a report written
        # elsewhere leaves the run's cached evaluations as they are
        ev = evaluate_run(plan, store, on_progress=on_progress, on_start=on_start,
                          prune=out.resolve() == store.root.resolve(), known=known)
    summary = summarize(ev.table, plan, ev.boot)
    costs = cell_costs(plan, store)
    summary["cost"] = run_cost(costs, plan)
    summary["levers"] = levers(ev.table, ev.boot, plan, costs, plan.cfg.analysis.tolerance)
    recommendation = read_recommendation(store.root)
    curves = learning_curves(ev.table, plan, recommendation)
    if curves:
        summary["difficulty"] = difficulty_summary(curves)
    attach_raters(summary, plan)  # the three measures of difficulty side by side
    write_report(out, ev.table, summary, plan, preview=store.read_preview(),
                 recommendation=recommendation, curves=curves)
    return summary


build_report = outputs  # the name `fe.build_report` has always had


def learning_curves(table: Any, plan: Plan, recommendation: dict[str, Any] | None
                    ) -> list[dict[str, Any]] | None:
    """The learning curves a run supports: those ``recommend --budget`` fitted, else, for a run
    that sweeps ``train_size``, fitted here; None for a run of one size."""
    if recommendation is not None and recommendation.get("curves_by_point"):
        return recommendation["curves_by_point"]
    if not sweeps_sizes(plan) or plan.cfg.mixes is not None:
        return None
    return run_curves(table, plan, n_boot=plan.cfg.analysis.n_boot, seed=plan.cfg.seed)


# ----------------------------------------------------------------------------- the commands


def run(cfg: RunConfig, run_dir: str | Path, hooks: Hooks | None = None) -> Finished:
    """Train every missing cell of ``cfg`` into ``run_dir`` and write its outputs."""
    hooks = hooks or Hooks()
    check_available(cfg.executor)
    t0 = time.perf_counter()
    with RunStore(run_dir).locked():
        plan, preview = plan_with_preview(cfg)
        stored = check_stored(cfg, run_dir, plan, hooks)
        t1 = time.perf_counter()
        result = train_missing(cfg, run_dir, plan, preview, done=set(stored), hooks=hooks)
        train_s = time.perf_counter() - t1
        summary = outputs(run_dir, plan=plan, known=stored, hooks=hooks)
    return Finished(summary, train_s, result.eval_s, time.perf_counter() - t0,
                    len(result.trained))


def report(run_dir: str | Path, out_dir: str | Path | None = None,
           overrides: Sequence[str] = (), hooks: Hooks | None = None) -> dict[str, Any]:
    """Rebuild a run's outputs from its directory alone, under evaluation ``overrides``
    (``--set`` lines of evaluation fields only)."""
    check_evaluation_overrides(overrides)
    _, plan = load_run(run_dir, list(overrides))
    with RunStore(run_dir).locked():
        return outputs(run_dir, out_dir or run_dir, plan=plan, hooks=hooks)


def analyze(predictions: str | Path | None = None, *, hooks: Hooks | None = None,
            **kwargs: Any) -> dict[str, Any]:
    """Analyze member predictions made elsewhere into a run directory (``out``, default
    ``runs/<name>``) with every output ``report`` writes; returns the summary. The arguments
    are ``interop.prepare``'s."""
    return write_imported(prepare(predictions, **kwargs), hooks)


def write_imported(prepared: Prepared, hooks: Hooks | None = None) -> dict[str, Any]:
    """Write an import's cells, config and plan (``Prepared.write``), then its outputs."""
    with RunStore(prepared.run_dir).locked():
        prepared.write()
        return outputs(prepared.run_dir, plan=prepared.plan, hooks=hooks)


def recommend(cfg: RunConfig, run_dir: str | Path, *, objective: str = "gap",
              group: str | None = None, budget: int | None = None,
              sizes: Sequence[int] | None = None, cost: int | None = None,
              tolerance: float | None = None, hooks: Hooks | None = None
              ) -> tuple[dict[str, Any], int]:
    """Which mix should I collect (``advice.recommend``); with ``budget``, how much data of
    which group (``advice.budget``); with ``cost``, which combination of every lever for at
    most that many trainings (``advice.levers``, the overall metric allowed to drop by
    ``tolerance``, default ``analysis.tolerance``). Trains what the steps need into
    ``run_dir`` (reusing its cells), writes recommendation.json and the run's outputs.
    Returns the recommendation and how many cells were trained."""
    hooks = hooks or Hooks()
    check_objective(objective)
    if sizes is not None and budget is None:
        raise ConfigError("--sizes: goes with --budget N (the training-set size to plan for)")
    if cost is not None and budget is not None:
        raise ConfigError("--cost: plans the levers at today's data; --budget plans the data "
                          "to collect; ask one at a time")
    if tolerance is not None and cost is None:
        raise ConfigError("--tolerance: goes with --cost N (the trainings it may spend)")
    check_available(cfg.executor)
    run_dir = Path(run_dir)
    counter = [0]
    train = trainer(run_dir, hooks, counter)
    with RunStore(run_dir).locked():
        if budget is not None:
            rec = run_budget(cfg, run_dir, budget, list(sizes) if sizes else None, group, train,
                             hooks.say)
        elif cost is not None:
            rec = run_levers(cfg, run_dir, cost, cfg.analysis.tolerance if tolerance is None
                             else tolerance, train, hooks.say)
        else:
            rec = run_recommend(cfg, run_dir, objective, group, train, hooks.say)
        plan = rec.pop("plan")
        known = rec.pop("known", None)  # the budget's evaluations, under the report's spec
        write_json(run_dir / RECOMMENDATION, rec)
        outputs(run_dir, plan=plan, known=known, hooks=hooks)
    return rec, counter[0]


def trainer(run_dir: Path, hooks: Hooks, counter: list[int]) -> Callable[[Any, Any, Any], None]:
    """What ``recommend`` trains each step with: the step's stored cells checked, the missing
    ones trained (``counter[0]`` counts them)."""

    def train(step_cfg: RunConfig, plan: Plan, preview: Any) -> None:
        stored = check_stored(step_cfg, run_dir, plan, hooks)
        result = train_missing(step_cfg, run_dir, plan, preview, done=set(stored),
                               hooks=hooks)
        counter[0] += len(result.trained)

    return train


__all__ = ["Finished", "Hooks", "analyze", "build_report", "check_stored", "learning_curves",
           "outputs", "recommend", "report", "run", "train_missing", "trainer", "write_imported"]
