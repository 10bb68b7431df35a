"""One registry of classification metrics, per group and between groups, vectorised over draws.

Every metric is declared once, with ``@register``: a small function of a ``Context`` (one block
of D draws of averaged ensemble probabilities ``probs`` float [D, n, C], labels ``y`` int [n],
classes 0..C-1) that returns one value per slice and draw. The slices are each group's samples
and ``overall`` (groups combined with the ``test_mix`` weights), under R sets of sample weights
(R = 1, or bootstrap resamples as multinomial counts). Everything else comes from that one
function: per-group values, ``overall``, ``gap`` and ``worst`` (``group_metrics``), the
between-group disparities built on per-group rates (SPD, EOD, AOD, equalised odds), and the
standalone ``accuracy(probs, y, weight=None) -> [D]`` style functions. There is no Python loop
over draws.

The package, by job: ``registry`` (declarations and look-ups), ``functions`` (the registered
metrics and their formulas), ``engine`` (slices, the shared intermediates of a block of draws,
scoring per group), ``ranks`` (the rank arithmetic behind AUC). Every name is importable from
here.
"""

from __future__ import annotations

from fairensemble.metrics.engine import (
    ECE_BINS,
    TEST_MIXES,
    Context,
    Margins,
    Members,
    Scores,
    Slices,
    ece_bin,
    group_metrics,
    group_slices,
    notes,
    predict,
    score,
    standalone,
    with_margins,
)
from fairensemble.metrics.functions import (
    accuracy,
    ambiguity,
    aod,
    auc,
    balanced_accuracy,
    brier,
    disagreement,
    ece,
    eod,
    eq_odds,
    fpr,
    nll,
    precision,
    register,
    selection_rate,
    spd,
    tpr,
)
from fairensemble.metrics.ranks import Ranks, Ties, pair_counts
from fairensemble.metrics.registry import (
    DERIVED_LABELS,
    DISPARITY,
    METRICS,
    NEEDS,
    Direction,
    Metric,
    Scope,
    declare,
    get,
    labels,
    names,
)

__all__ = ["DERIVED_LABELS", "DISPARITY", "ECE_BINS", "METRICS", "NEEDS", "TEST_MIXES", "Context",
           "Direction", "Margins", "Members", "Metric", "Ranks", "Scope", "Scores", "Slices",
           "Ties", "accuracy", "ambiguity", "aod", "auc", "balanced_accuracy", "brier",
           "disagreement", "ece", "ece_bin", "eod", "eq_odds", "fpr", "get", "group_metrics",
           "group_slices", "labels", "names", "nll", "notes", "pair_counts", "precision", "predict",
           "register", "score", "declare", "selection_rate", "spd", "standalone", "tpr",
           "with_margins"]
