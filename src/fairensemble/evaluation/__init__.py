"""The evaluation half of a run, reading only the run directory: k-of-E ensembles of a cell's
members (``ensemble``), one cell evaluated under an evaluation spec (``cell``), group-specific
thresholds (``postprocess``), 95 % intervals (``intervals``), every cell of a run evaluated
(``analysis``), summary.json's verdicts and optima (``summary``), the tidy tables they share
(``tables``) and every lever against its cost (``levers``).
"""

from fairensemble.evaluation.analysis import (
    Evaluated,
    MissingCells,
    evaluate_cells,
    evaluate_run,
    load_run,
)
from fairensemble.evaluation.cell import EvalSpec, Evaluator, evaluate_record
from fairensemble.evaluation.ensemble import (
    Evaluation,
    average_members,
    draw_subsets,
    evaluate_cell,
    subsets_by_k,
)
from fairensemble.evaluation.intervals import interval95, percentile_interval, t_interval
from fairensemble.evaluation.postprocess import ThresholdRule, fit_thresholds, predict
from fairensemble.evaluation.summary import summarize, verdict
from fairensemble.evaluation.tables import direction, with_coords

__all__ = ["EvalSpec", "Evaluated", "Evaluation", "Evaluator", "MissingCells", "ThresholdRule",
           "average_members", "direction", "draw_subsets", "evaluate_cell", "evaluate_cells",
           "evaluate_record", "evaluate_run", "fit_thresholds", "interval95", "load_run",
           "percentile_interval", "predict", "subsets_by_k", "summarize", "t_interval", "verdict",
           "with_coords"]
