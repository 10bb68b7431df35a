"""Per-group learning curves and budget predictions, from a run's metrics and plan alone: error =
floor + a data term (a power law in the group's own count and one in the total) + a conflict
term (what the other groups' share costs the group), fitted with intervals from refits on
resampled replicates (``model`` says why and how).

By job: ``model`` (the curve and its nested forms), ``fit`` (measured points, fits, a run's
settings), ``predict`` (the best share at a budget), ``diagnose`` (which kind of difficulty),
``serialize`` (JSON, and ``run_curves``: the one call a run's analysis makes).
"""

from fairensemble.advice.curves.diagnose import data_terms, difficulty, fit_warnings
from fairensemble.advice.curves.fit import (
    Curves,
    GroupCurve,
    fit_curves,
    fit_run,
    interference,
    measured_points,
    settings,
    sweeps_sizes,
)
from fairensemble.advice.curves.model import (
    MAX_FACTOR,
    CurvesError,
    Form,
    identifiable_forms,
    model_error,
)
from fairensemble.advice.curves.predict import Prediction, band95, flat_objectives, predict
from fairensemble.advice.curves.serialize import (
    budget_grid,
    curves_json,
    difficulty_summary,
    run_curves,
)

__all__ = ["MAX_FACTOR", "Curves", "CurvesError", "Form", "GroupCurve", "Prediction", "band95",
           "budget_grid", "curves_json", "data_terms", "difficulty", "difficulty_summary",
           "fit_curves", "fit_run", "fit_warnings", "flat_objectives", "identifiable_forms",
           "interference", "measured_points", "model_error", "predict", "run_curves", "settings",
           "sweeps_sizes"]
