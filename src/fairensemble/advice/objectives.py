"""The one rule that picks a best candidate, used by every recommendation: the best by its
estimate, every candidate a 95 % paired interval cannot separate from it, whether the valley
is flat, and the Pareto compromise between overall performance and the gap.

Candidates are anything hashable: a share of the moved group, or a combination of levers
(mix, ensemble size, mitigation, thresholds). ``Samples`` holds, per candidate, paired values
(one per replicate, or per bootstrap resample or refit) and optionally point estimates; paired
means index i is the same replicate or resample at every candidate, so differences are taken
sample by sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fairensemble.common.errors import UserError
from fairensemble.evaluation.intervals import interval95

# what a recommendation optimises: the gap, the overall metric, the worst group, or the
# smallest gap among the candidates whose overall metric cannot be told from the best
OBJECTIVES = ("gap", "overall", "worst", "pareto")
FLAT_FRACTION = 0.5  # a valley is flat when this share of the candidates cannot be told apart


class RecommendError(UserError):
    """A recommend problem, phrased as one line."""


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise RecommendError(f"--objective: expected one of {', '.join(OBJECTIVES)}, "
                             f"got {objective!r}")
    return objective


# ----------------------------------------------------------------------------- samples


@dataclass
class Samples:
    """A quantity at each candidate: ``values[candidate]`` is one number per replicate (or per
    bootstrap resample or refit). Paired: index i means the same replicate or resample at
    every candidate. ``point`` holds point estimates where they are not the samples' mean
    (a curve fitted to the means, whose refits are the samples). ``finite_only``: samples that
    are not finite (a refit without data of a group) are left out of intervals; otherwise a
    NaN sample leaves a candidate without an interval."""

    values: dict[Any, np.ndarray]
    kind: str  # "replicates" or "bootstrap"
    point: dict[Any, float] | None = None
    finite_only: bool = False

    def mean(self, x: Any) -> float:
        """The candidate's estimate: its point estimate, else the mean of its samples."""
        if self.point is not None:
            return float(self.point[x])
        return float(np.mean(self.values[x]))

    def interval(self, x: Any) -> tuple[float | None, float | None]:
        return interval95(self._used(self.values[x]), self.kind)

    def diff_interval(self, x: Any, ref: Any) -> tuple[float | None, float | None]:
        return interval95(self._used(self.values[x] - self.values[ref]), self.kind)

    def _used(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        return values[np.isfinite(values)] if self.finite_only else values


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
    sub = Samples({x: gap.values[x] for x in pool}, gap.kind,
                  None if gap.point is None else {x: gap.point[x] for x in pool},
                  gap.finite_only)
    picked = choose(sub, True, "pareto")
    return Choice("pareto", picked.best, gap.mean(picked.best), picked.indistinguishable,
                  picked.flat, gap.kind)


def _order(x: Any) -> Any:
    return (0, float(x)) if isinstance(x, (int, float)) else (1, str(x))


