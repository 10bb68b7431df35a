"""The registered metrics: one small function of a ``Context`` each, its formula in the
docstring; ``@register`` turns each into the standalone function of the same name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fairensemble.metrics.engine import ECE_BINS, Context, ece_bin, one_vs_rest, standalone
from fairensemble.metrics.registry import declare

_LOG_EPS = np.finfo(np.float64).eps  # sklearn.metrics.log_loss clips float64 to [eps, 1 - eps]


Compute = Callable[..., np.ndarray]


def register(**declaration: Any) -> Callable[[Compute], Compute]:
    """Declare the decorated ``compute`` (``registry.declare``) and return the standalone
    function of the same name and docstring: scope "group": ``f(probs, y, weight=None, *,
    members=None) -> [D]`` (the metric on all samples, weighted by ``weight``); scope
    "between": ``f(probs, y, g, weight=None) -> [D]`` with ``g`` int [n] group codes."""
    return lambda compute: declare(compute, bind=standalone, **declaration).function


# Notation: w_i the sample weights of the slice, \hat y_i the prediction, 1[.] an indicator;
# one-vs-rest (OvR) rates are for class 1 when C = 2 and averaged over classes when C > 2.


@register(direction="higher", needs={"labels"}, summary="share of correct predictions")
def accuracy(ctx: Context) -> np.ndarray:
    r"""Accuracy of each draw: :math:`\sum_i w_i [\hat y_i = y_i] / \sum_i w_i`,
    with :math:`\hat y_i = \arg\max_c p_{ic}`."""
    return ctx.confusion[1].sum(axis=-1) / ctx.totals


@register(direction="higher", needs={"labels"},
          summary="mean over classes of the recall of each class")
def balanced_accuracy(ctx: Context) -> np.ndarray:
    r"""Balanced accuracy of each draw: the mean, over classes :math:`c` present in ``y``, of the
    weighted recall :math:`\sum_{i: y_i = c} w_i [\hat y_i = c] / \sum_{i: y_i = c} w_i`
    (``sklearn.metrics.balanced_accuracy_score`` with ``sample_weight``)."""
    return ctx.confusion[1] / ctx.class_totals


@register(direction="higher", needs={"probs"},
          summary="ROC AUC, ties counted one half (one-vs-rest macro for C > 2)")
def auc(ctx: Context) -> np.ndarray:
    r"""ROC AUC of each draw, ties counted one half (weighted Mann-Whitney).

    Binary (C = 2): with scores :math:`s_i = p_{i1}`, positives P (y = 1), negatives N,
    :math:`\mathrm{AUC} = \sum_{i \in P} \sum_{j \in N} w_i w_j
    ([s_j < s_i] + \tfrac12 [s_j = s_i]) / (\sum_P w_i \sum_N w_j)`.
    C > 2: one-vs-rest macro average, over the classes c present in ``y``, of the binary AUC
    of :math:`p_{\cdot c}` for class c against the rest (``sklearn.metrics.roc_auc_score`` with
    ``multi_class="ovr", average="macro"``). NaN when fewer than two classes are present.
    """
    sl = ctx.slices
    classes = [1] if ctx.C == 2 else range(ctx.C)
    out = np.empty((sl.R, sl.L, ctx.D, len(classes)))
    for i, c in enumerate(classes):
        M = ctx.pair_counts(c)
        P = ctx.class_totals[..., c]
        N = ctx.totals - P
        diag = np.diagonal(M, axis1=1, axis2=2).transpose(0, 2, 1)  # [R, G, D]
        whole = np.einsum("j,h,rjhd->rd", sl.overall, sl.overall, M)[:, None]
        # a margin's pairs: positives and negatives both in one of the groups it unites
        margins = [M[:, list(m)][:, :, list(m)].sum(axis=(1, 2))[:, None] for m in sl.margins]
        out[..., i] = np.concatenate([diag, whole, *margins], axis=1) / (P * N)
    return out


@register(direction="higher", needs={"labels"},
          summary="true positive rate P(pred=1 | y=1) (OvR macro for C > 2)")
def tpr(ctx: Context) -> np.ndarray:
    r"""True positive rate (recall): :math:`\sum_i w_i [\hat y_i = 1][y_i = 1] /
    \sum_i w_i [y_i = 1]`; C > 2: the mean, over classes c where it is defined, of the same
    with c as the positive class. NaN when no sample has the positive label (fairlearn's
    ``true_positive_rate`` returns 0 there)."""
    predicted, hits = ctx.confusion
    return one_vs_rest(hits / ctx.class_totals)


@register(direction="lower", needs={"labels"},
          summary="false positive rate P(pred=1 | y=0) (OvR macro for C > 2)")
def fpr(ctx: Context) -> np.ndarray:
    r"""False positive rate: :math:`\sum_i w_i [\hat y_i = 1][y_i \ne 1] /
    \sum_i w_i [y_i \ne 1]`; C > 2: the mean over classes c where defined of the same with c
    as the positive class. NaN when every sample has the positive label."""
    predicted, hits = ctx.confusion
    return one_vs_rest((predicted - hits) / (ctx.totals[..., None] - ctx.class_totals))


@register(direction="neither", needs={"labels"},
          summary="selection rate P(pred=1) (OvR macro for C > 2)")
def selection_rate(ctx: Context) -> np.ndarray:
    r"""Selection rate: :math:`\sum_i w_i [\hat y_i = 1] / \sum_i w_i`; C > 2: the mean over
    classes of :math:`P(\hat y = c)`, which is always 1/C (its per-class values drive
    ``spd``)."""
    predicted, _ = ctx.confusion
    return one_vs_rest(predicted / ctx.totals[..., None])


@register(direction="higher", needs={"labels"},
          summary="precision P(y=1 | pred=1) (OvR macro for C > 2)")
def precision(ctx: Context) -> np.ndarray:
    r"""Precision: :math:`\sum_i w_i [\hat y_i = 1][y_i = 1] / \sum_i w_i [\hat y_i = 1]`;
    C > 2: the mean over classes c where defined of the same with c as the positive class.
    NaN when nothing is predicted positive (scikit-learn's ``zero_division`` would give 0)."""
    predicted, hits = ctx.confusion
    return one_vs_rest(hits / predicted)


def _range(v: np.ndarray) -> np.ndarray:
    """max - min over the group axis of [R, G, D, K]; NaN if any group's value is NaN."""
    return v.max(axis=1) - v.min(axis=1)


@register(scope="between", direction="lower", needs={"labels"}, uses=("selection_rate",),
          summary="statistical parity difference: range of selection rates over groups")
def spd(per_group: dict[str, np.ndarray]) -> np.ndarray:
    r"""Statistical (demographic) parity difference: :math:`\max_g SR_g - \min_g SR_g`, with
    :math:`SR_g` the selection rate of group g (fairlearn's ``demographic_parity_difference``).
    C > 2: the same per class c from each group's :math:`P(\hat y = c)`, averaged over
    classes. NaN if a group's rate is undefined (a group without samples)."""
    return _range(per_group["selection_rate"])


@register(scope="between", direction="lower", needs={"labels"}, uses=("tpr",),
          summary="equal opportunity difference: range of true positive rates over groups")
def eod(per_group: dict[str, np.ndarray]) -> np.ndarray:
    r"""Equal opportunity difference: :math:`\max_g TPR_g - \min_g TPR_g` (fairlearn's
    ``equal_opportunity_difference``). C > 2: per class from the groups' one-vs-rest TPRs,
    averaged over the classes where every group's TPR is defined. NaN if a group's TPR is
    undefined (no positives in it)."""
    return _range(per_group["tpr"])


@register(scope="between", direction="lower", needs={"labels"}, uses=("tpr", "fpr"),
          summary="average odds difference: mean of the TPR and FPR ranges over groups")
def aod(per_group: dict[str, np.ndarray]) -> np.ndarray:
    r"""Average odds difference: :math:`(\mathrm{range}_g TPR_g + \mathrm{range}_g FPR_g) / 2`
    (fairlearn's ``equalized_odds_difference(agg="mean")``). C > 2: per class, then averaged
    over classes."""
    return (_range(per_group["tpr"]) + _range(per_group["fpr"])) / 2.0


@register(scope="between", direction="lower", needs={"labels"}, uses=("tpr", "fpr"),
          summary="equalised odds difference: the larger of the TPR and FPR ranges")
def eq_odds(per_group: dict[str, np.ndarray]) -> np.ndarray:
    r"""Equalised odds difference: :math:`\max(\mathrm{range}_g TPR_g,
    \mathrm{range}_g FPR_g)` (fairlearn's ``equalized_odds_difference()``). C > 2: per class,
    then averaged over classes. NaN if either range is."""
    t, f = _range(per_group["tpr"]), _range(per_group["fpr"])
    return np.where(np.isnan(t) | np.isnan(f), np.nan, np.maximum(t, f))


@register(direction="lower", needs={"probs"},
          summary="expected calibration error, 15 equal-width bins of top-class confidence")
def ece(ctx: Context) -> np.ndarray:
    r"""Expected calibration error with 15 equal-width bins of the top-class confidence
    :math:`\mathrm{conf}_i = \max_c p_{ic}`: :math:`\sum_b |\sum_{i \in b} w_i
    ([\hat y_i = y_i] - \mathrm{conf}_i)| / \sum_i w_i`. Bin b holds
    :math:`b/15 < \mathrm{conf} \le (b+1)/15` (bin 0 includes 0), as
    ``sklearn.calibration.calibration_curve(strategy="uniform", n_bins=15)`` bins ``conf``
    (``np.searchsorted(np.linspace(0, 1, 16)[1:-1], conf)``, see ``ece_bin``)."""
    conf = ctx.conf
    bins = ctx._memo(ctx._draw, "ece_bins", lambda: ece_bin(conf))
    gap = ctx._memo(ctx._draw, "ece_gap", lambda: ctx.correct - conf)
    per_bin = ctx.slices.binned(bins, gap, ECE_BINS)
    return np.abs(per_bin).sum(axis=-1) / ctx.totals


@register(direction="lower", needs={"probs"},
          summary="Brier score: mean squared error of the probabilities")
def brier(ctx: Context) -> np.ndarray:
    r"""Brier score: binary :math:`\sum_i w_i (p_{i1} - y_i)^2 / \sum_i w_i`
    (``sklearn.metrics.brier_score_loss(y, p[:, 1])``); C > 2 :math:`\sum_i w_i \sum_c
    (p_{ic} - [y_i = c])^2 / \sum_i w_i` (``brier_score_loss(y, p)`` with its default
    ``scale_by_half="auto"``, which halves only binary inputs; ``scale_by_half=True`` would
    halve this one too)."""
    return ctx.slices.sums(ctx.sample_brier) / ctx.totals


@register(direction="lower", needs={"probs"},
          summary="negative log-likelihood (log loss) of the true class")
def nll(ctx: Context) -> np.ndarray:
    r"""Negative log-likelihood: :math:`-\sum_i w_i \log \mathrm{clip}(p_{i y_i}) /
    \sum_i w_i`, probabilities clipped to :math:`[\epsilon, 1 - \epsilon]` with
    :math:`\epsilon` the float64 machine epsilon, as ``sklearn.metrics.log_loss`` does with
    float64 input."""

    def build() -> np.ndarray:
        p, y = ctx.probs, ctx.y
        if ctx.C == 2:
            p_true = np.where(y == 1, p[:, :, 1], p[:, :, 0])
        else:
            p_true = np.take_along_axis(p, np.broadcast_to(y, p.shape[:2])[..., None], 2)[..., 0]
        return -np.log(np.clip(p_true, _LOG_EPS, 1 - _LOG_EPS))

    return ctx.slices.sums(ctx._memo(ctx._draw, "nll", build)) / ctx.totals


@register(direction="neither", needs={"labels", "members"},
          summary="member disagreement: share of member pairs predicting different labels")
def disagreement(ctx: Context) -> np.ndarray:
    r"""Disagreement of the draw's k members: the mean over the k(k-1)/2 member pairs (p, q)
    of :math:`\sum_i w_i [\hat y^p_i \ne \hat y^q_i] / \sum_i w_i`. With :math:`n_{ic}` the
    members voting c for sample i, a sample's share of disagreeing pairs is
    :math:`(k^2 - \sum_c n_{ic}^2) / (k (k - 1))`; 0 for k = 1."""

    def build() -> np.ndarray:
        k = ctx.members.subsets.shape[1]
        if k == 1:
            return np.zeros((ctx.D, ctx.n))
        votes = ctx.votes.astype(np.int32)
        if ctx.C == 2:  # k^2 - n_1^2 - (k - n_1)^2 = 2 n_1 (k - n_1)
            n1 = votes[..., 0]
            return n1 * (k - n1) * (2.0 / (k * (k - 1)))
        return (k * k - (votes * votes).sum(axis=-1)) / (k * (k - 1.0))

    per_sample = ctx._memo(ctx._draw, "disagreement", build)
    return ctx.slices.sums(per_sample) / ctx.totals


@register(direction="neither", needs={"probs", "members"},
          summary="ambiguity: mean member Brier minus the ensemble's Brier")
def ambiguity(ctx: Context) -> np.ndarray:
    r"""Ambiguity (exact ambiguity decomposition of the Brier score): the mean over the draw's
    k members of the member's Brier score on the slice minus the ensemble's,
    :math:`\frac1k \sum_m B(p^m) - B(\bar p)`, which equals the slice mean of the per-sample
    variance of the member probabilities (:math:`\frac1k \sum_m (p^m_{i1} - \bar p_{i1})^2`
    binary, summed over classes for C > 2); 0 for k = 1. A slice's member Brier is linear in
    the samples, so it is summed once per member and averaged over each draw's subset."""
    subsets = ctx.members.subsets
    # only the members the draws use (one per draw at k = 1, not all E): a member's sums are
    # the same numbers whichever other members are summed beside it
    used, at = np.unique(subsets, return_inverse=True)
    brier = ctx.members.brier
    member_sums = ctx.slices.sums(brier if len(used) == len(brier) else brier[used])
    member_mean = member_sums[:, :, at.reshape(subsets.shape)].mean(axis=-1) / ctx.totals
    return member_mean - ctx.value("brier")
