"""From a run directory to tidy metrics, optimal mixes and positive-sum verdicts.

Reads only the run directory (config.yaml, plan.json, the cells and their cached
evaluations): a run trained on a cluster can be re-analysed on a laptop without its data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from fairensemble.common.errors import StoreError
from fairensemble.config import ExecutorConfig, RunConfig, load_config
from fairensemble.evaluation.cell import Evaluator
from fairensemble.evaluation.tables import with_coords
from fairensemble.sweep.executors import make_executor
from fairensemble.sweep.plan import Plan
from fairensemble.sweep.store import CellRecord, CorruptCell, RunStore

EVAL_BATCH = 6  # cells per evaluation unit when re-evaluating


class MissingCells(StoreError):
    """Cells of the plan that the run directory does not hold yet."""


def load_run(run_dir: str | Path, overrides: list[str] | None = None) -> tuple[RunConfig, Plan]:
    """The config and plan of a run directory (``overrides`` as ``--set`` gives them)."""
    store = RunStore(run_dir)
    cfg_path = store.root / "config.yaml"
    if not cfg_path.is_file():
        raise StoreError(f"{cfg_path}: not a run directory (no config.yaml)")
    cfg = load_config(cfg_path, overrides)
    return cfg, Plan.from_json(cfg, store.read_plan_json())


def check_complete(plan: Plan, store: RunStore) -> None:
    missing = [c for c in plan.cells if not store.has_cell(c.id)]
    if missing and plan.cfg.dataset.kind == "imported":
        raise MissingCells(f"{store.root}: {len(missing)} of {len(plan.cells)} imported cells "
                           "are missing; import the predictions again with `fairensemble "
                           "analyze`")
    if missing:
        raise MissingCells(
            f"{store.root}: {len(missing)} of {len(plan.cells)} cells are not trained yet; "
            f"run `fairensemble run {store.root / 'config.yaml'} --out {store.root}` to finish"
        )


@dataclass
class EvalUnit:
    evaluate: Evaluator
    cell_ids: list[str]
    run_dir: str | None = None  # workers on this machine read the cells themselves
    records: list[CellRecord] | None = None  # shipped to workers elsewhere (Ray)


class CellEvaluation(NamedTuple):
    """One cell's evaluation as a worker returns it, or why it could not read the cell."""

    cell_id: str
    table: pd.DataFrame | None
    boot: pd.DataFrame | None
    damage: str | None = None  # the CorruptCell message naming the damaged file


def _read(run_dir: str | None, cell_id: str) -> tuple[CellRecord | None, str | None]:
    """A cell's record, or the message naming its damaged file."""
    try:
        return RunStore(run_dir).read_cell(cell_id), None
    except CorruptCell as err:
        return None, str(err)


def evaluate_unit(unit: EvalUnit, progress: Callable[[float], None] | None = None
                  ) -> list[CellEvaluation]:
    out = []
    for i, cell_id in enumerate(unit.cell_ids):
        record, damage = ((unit.records[i], None) if unit.records is not None
                          else _read(unit.run_dir, cell_id))
        table, boot = unit.evaluate(record) if record is not None else (None, None)
        out.append(CellEvaluation(cell_id, table, boot, damage))
        if progress is not None:
            progress(1.0)
    return out


Evaluations = dict[str, tuple[pd.DataFrame, pd.DataFrame | None]]


def evaluate_cells(store: RunStore, evaluate: Evaluator, cell_ids: list[str],
                   executor: ExecutorConfig, set_aside: bool = False,
                   on_start: Callable[[int], None] | None = None,
                   on_progress: Callable[[float], None] | None = None,
                   known: Evaluations | None = None
                   ) -> tuple[Evaluations, list[str]]:
    """The evaluation (table, boot) of each finished cell of ``cell_ids``, reading each cell
    file at most once: a cell with a cached evaluation is checked against its checksum (not
    at all when this process verified it already while holding the run directory); the
    others are read and evaluated on the executor (``on_start(n)`` announces how many,
    ``on_progress(1)`` follows each) and their evaluations cached. ``known`` holds
    evaluations under the same spec that an earlier call returned while this process held the
    run directory: they are taken as they are, neither read nor checked again.

    A damaged cell raises ``CorruptCell`` naming its file; with ``set_aside`` it is moved to
    ``cells/corrupt/`` instead (so it gets retrained), left out of the result and described in
    the returned lines."""
    want_boot = evaluate.spec.n_boot > 0
    got: Evaluations = {}
    todo = []
    known = known or {}
    for cell_id in cell_ids:
        if cell_id in known or not store.has_record(cell_id):
            continue  # never finished
        cached = store.read_evaluation(evaluate.key, cell_id, want_boot)
        if cached is None:
            todo.append(cell_id)
        else:
            got[cell_id] = cached
    # a cached evaluation stands for its cell only while the cell is intact
    intact, damaged = store.check_cells(list(got), set_aside=set_aside)
    got = {c: v for c, v in got.items() if c in intact}
    got.update((c, known[c]) for c in cell_ids if c in known)

    def damage(cell_id: str, err: CorruptCell) -> None:
        if not set_aside:
            raise err
        damaged.append(store.set_aside(cell_id, err))

    ship = executor.kind == "ray"  # Ray workers get the records; local ones read the files
    records: dict[str, CellRecord] = {}
    if ship:
        for cell_id in todo:
            try:
                records[cell_id] = store.read_cell(cell_id)
            except CorruptCell as err:
                damage(cell_id, err)
        todo = [c for c in todo if c in records]
    if todo:
        if on_start is not None:
            on_start(len(todo))
        units = [EvalUnit(evaluate, ids, None if ship else str(store.root),
                          [records[c] for c in ids] if ship else None)
                 for ids in (todo[i : i + EVAL_BATCH] for i in range(0, len(todo), EVAL_BATCH))]
        with make_executor(executor) as ex:
            for _, results in ex.run(evaluate_unit, units, on_progress or (lambda m: None)):
                for res in results:
                    if res.damage is not None:
                        damage(res.cell_id, CorruptCell(res.damage))
                        continue
                    store.write_evaluation(evaluate.key, res.cell_id, res.table, res.boot)
                    store.mark_verified(res.cell_id)  # read intact by the worker
                    got[res.cell_id] = (res.table, res.boot)
    return got, damaged


@dataclass
class Evaluated:
    table: pd.DataFrame  # metrics.parquet
    boot: pd.DataFrame | None  # bootstrap resamples (analysis.ci: bootstrap), with coordinates
    cells: Evaluations = field(default_factory=dict)  # by cell id: ``known`` for a report


def evaluate_run(plan: Plan, store: RunStore,
                 on_progress: Callable[[float], None] | None = None,
                 prune: bool = False, on_start: Callable[[int], None] | None = None,
                 known: Evaluations | None = None) -> Evaluated:
    """metrics.parquet's table: one row per (grid point, mix, replicate, k, post, group,
    metric), and the bootstrap resamples where asked, from every cell's evaluation
    (``evaluate_cells``: each cell read at most once; a damaged cell stops it, naming its
    file). ``prune`` drops cached evaluations of other specs; ``known`` as for
    ``evaluate_cells``."""
    check_complete(plan, store)
    evaluate = Evaluator.of(plan.cfg, plan.layouts)
    got, _ = evaluate_cells(store, evaluate, [c.id for c in plan.cells], plan.cfg.executor,
                            on_start=on_start, on_progress=on_progress, known=known)
    if prune:
        store.prune_evaluations(keep=evaluate.key)
    table = pd.concat([with_coords(got[c.id][0], c) for c in plan.cells], ignore_index=True)
    table["k"] = table["k"].astype("int64")
    table["n_draws"] = table["n_draws"].astype("int64")
    boot = None
    if evaluate.spec.n_boot > 0:
        boot = pd.concat([with_coords(got[c.id][1], c) for c in plan.cells],
                         ignore_index=True)
    return Evaluated(table, boot, got)
