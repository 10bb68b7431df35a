"""What to do, computed from runs: which mix to collect (``recommend``), how much data of which
group (``budget``, on the learning curves of ``curves``), the one rule that picks a best
candidate with its indistinguishable set (``objectives``), and a ready-to-run config for a
user's own data (``scaffold``).
"""

from fairensemble.advice.budget import parse_sizes, run_budget
from fairensemble.advice.objectives import (
    OBJECTIVES,
    Choice,
    RecommendError,
    Samples,
    check_objective,
    choose,
    choose_pareto,
    pareto_front,
)
from fairensemble.advice.recommend import run_recommend

__all__ = ["OBJECTIVES", "Choice", "RecommendError", "Samples", "check_objective", "choose",
           "choose_pareto", "pareto_front", "parse_sizes", "run_budget", "run_recommend"]
