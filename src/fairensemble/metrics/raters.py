"""How much human raters disagree, and the error floor that implies: the maths behind
``dataset.annotations`` / ``dataset.soft_label`` (the paper's third open question: task
difficulty read off annotator disagreement rather than off a balanced-mix gap).

A sample's *votes* are a row of counts per class (float [n, C]; R_i = the row's sum raters).

* **Pairwise disagreement** of a sample: the chance that two of its raters, drawn without
  replacement, give different labels, ``1 - sum_c k_c (k_c - 1) / (R (R - 1))`` (unbiased for
  the population's rate; defined for R >= 2). A group's disagreement is the mean over its
  samples with two raters or more. Votes known only as shares (a soft label without rater
  counts, R unknown) count as many raters: ``1 - sum_c p_c^2``.
* **Symmetric noise** eps that disagreement implies: every rater gives the true class with
  probability 1 - eps and each other class with eps / (C - 1), independently, so two raters
  disagree with probability ``D = 1 - (1 - eps)^2 - eps^2 / (C - 1)``; binary:
  ``D = 2 eps (1 - eps)``. Solved for eps in [0, (C - 1) / C] (D beyond (C - 1) / C, which a
  few raters can show by chance, gives the uniform eps).
* **Floor**: the error a model that knew the true class would have against the majority
  label it is scored on, when that label is the majority of R raters at noise eps with ties
  broken by a fair coin among the tied classes (the rule ``data.raters.majority`` applies):
  ``P(majority != truth)``. Binary: ``sum_{j > R/2} C(R, j) eps^j (1 - eps)^(R - j)`` plus,
  for even R, half the chance of a tie; R = 3, eps = 0.1: ``3 eps^2 (1 - eps) + eps^3 =
  0.028``. Multi-class (C > 2): exact as well, under the symmetric model above: the true
  class's count is Binomial(R, 1 - eps), the other votes spread uniformly over the C - 1
  other classes, and the truth wins outright or a share 1 / (s + 1) of an s-way tie
  (``majority_floor``). A group's floor is the mean over its samples of the floor at their own
  R, at the group's eps; it needs rater counts (NaN without them).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

# the rows evaluation adds to a cell's metrics table, in this order
RATER_METRICS = ("rater_count", "rater_disagreement", "rater_noise", "rater_floor")


def rater_counts(votes: np.ndarray) -> np.ndarray:
    """R_i: how many raters labelled each sample (float [n])."""
    return np.asarray(votes, dtype=np.float64).sum(axis=1)


def pair_disagreement(votes: np.ndarray, counts: bool = True) -> np.ndarray:
    """Per sample, the chance two of its raters disagree (float [n]); NaN where it is
    undefined (fewer than two raters). ``counts=False``: the votes are shares of many raters
    (each row sums to 1), ``1 - sum_c p_c^2``."""
    v = np.asarray(votes, dtype=np.float64)
    R = v.sum(axis=1)
    out = np.full(len(v), np.nan)
    if not counts:
        ok = R > 0
        p = v[ok] / R[ok, None]
        out[ok] = 1.0 - (p ** 2).sum(axis=1)
        return out
    ok = R >= 2
    same = (v[ok] * (v[ok] - 1.0)).sum(axis=1) / (R[ok] * (R[ok] - 1.0))
    out[ok] = 1.0 - same
    return out


def noise_from_disagreement(d: float, n_classes: int) -> float:
    """The symmetric noise eps whose pairwise disagreement is ``d`` (see the module
    docstring); NaN for NaN."""
    if d is None or not np.isfinite(d):
        return float("nan")
    C = int(n_classes)
    top = (C - 1) / C
    d = min(max(float(d), 0.0), top)
    return float((1.0 - math.sqrt(max(0.0, 1.0 - d / top))) * top)


def majority_floor(R: int, eps: float, n_classes: int = 2) -> float:
    """P(the majority of R raters is not the true class) at symmetric noise eps, ties broken
    by a fair coin among the tied classes (exact; see the module docstring). R = 0: NaN."""
    R = int(R)
    if R <= 0 or not np.isfinite(eps):
        return float("nan")
    return _floor(R, round(float(eps), 12), int(n_classes))


@lru_cache(maxsize=4096)
def _floor(R: int, eps: float, C: int) -> float:
    from scipy.stats import binom

    t = np.arange(R + 1)
    p_truth = binom.pmf(t, R, 1.0 - eps)  # the true class's count
    if C == 2:
        m = R - t  # the one other class's count
        win = np.where(t > m, 1.0, np.where(t == m, 0.5, 0.0))
        return float(max(0.0, 1.0 - (p_truth * win).sum()))
    others = C - 1
    lfact = np.array([math.lgamma(k + 1) for k in range(R + 1)])
    total = 0.0
    for ti in range(1, R + 1):  # t = 0: some other class has a vote, the truth loses
        m = R - ti
        # ways[v, s]: sum over the first j classes' counts (each <= t, v votes in all, s of them
        # equal to t) of prod 1 / n_j!; P = m! (C - 1)^-m sum_s ways[m, s] / (s + 1)
        ways = np.zeros((m + 1, others + 1))
        ways[0, 0] = 1.0
        for _ in range(others):
            nxt = np.zeros_like(ways)
            for n in range(min(ti, m) + 1):
                w = math.exp(-lfact[n])
                if n == ti:
                    nxt[n:, 1:] += w * ways[:m + 1 - n, :-1]
                else:
                    nxt[n:, :] += w * ways[:m + 1 - n, :]
            ways = nxt
        share = (ways[m] / (np.arange(others + 1) + 1.0)).sum()
        total += p_truth[ti] * math.exp(lfact[m] - m * math.log(others)) * share
    return float(min(1.0, max(0.0, 1.0 - total)))


def group_rater_measures(votes: np.ndarray, g: np.ndarray, n_groups: int, n_classes: int,
                         counts: bool = True) -> dict[str, np.ndarray]:
    """Per group (float [G] each, NaN where a group has no rated sample): the mean rater count
    of its rated samples, its pairwise disagreement, the noise eps that implies and the floor
    (mean over its rated samples of the floor at their own R; NaN without counts)."""
    R = rater_counts(votes)
    d = pair_disagreement(votes, counts)
    out = {name: np.full(n_groups, np.nan) for name in RATER_METRICS}
    for j in range(n_groups):
        rated = (g == j) & (R > 0)
        if not rated.any():
            continue
        out["rater_count"][j] = R[rated].mean() if counts else np.nan
        dj = d[rated]
        dj = dj[np.isfinite(dj)]
        if len(dj) == 0:
            continue
        out["rater_disagreement"][j] = dj.mean()
        eps = noise_from_disagreement(dj.mean(), n_classes)
        out["rater_noise"][j] = eps
        if counts:
            Rs, n_of = np.unique(R[rated].round().astype(int), return_counts=True)
            out["rater_floor"][j] = sum(n * majority_floor(r, eps, n_classes)
                                        for r, n in zip(Rs, n_of)) / n_of.sum()
    return out


__all__ = ["RATER_METRICS", "group_rater_measures", "majority_floor", "noise_from_disagreement",
           "pair_disagreement", "rater_counts"]
