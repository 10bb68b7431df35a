"""The training half of a run: what it will train (``plan``: cells, their identity and seeds),
the data facts of each grid point (``layout``), where units run (``executors``: serial, local
processes, Ray), the sweep itself (``runner``: train the missing cells, write what comes back)
and the run directory (``store``), which the evaluation half reads.
"""

from fairensemble.sweep.executors import Executor, check_available, make_executor
from fairensemble.sweep.plan import CELL_FORMAT, Cell, Plan, PointLayout, build_plan
from fairensemble.sweep.runner import (
    SweepResult,
    load_for,
    plan_run,
    plan_with_preview,
    run_sweep,
    train_unit,
)
from fairensemble.sweep.store import CellRecord, CorruptCell, RunLocked, RunStore

__all__ = ["CELL_FORMAT", "Cell", "CellRecord", "CorruptCell", "Executor", "Plan", "PointLayout",
           "RunLocked", "RunStore", "SweepResult", "build_plan", "check_available", "load_for",
           "make_executor", "plan_run", "plan_with_preview", "run_sweep", "train_unit"]
