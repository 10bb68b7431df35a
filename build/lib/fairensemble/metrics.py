"""Per-group classification metrics, vectorised over ensemble draws, looked up by name.

Every metric takes ``probs`` float [D, n, C] (D draws of averaged ensemble probabilities),
``y`` int [n] with classes 0..C-1 and optional sample weights ``weight`` float [n], and returns
one value per draw, float [D]; there is no Python loop over draws. Predictions are the argmax
over classes, ties going to the lowest class (``numpy.argmax``). ``group_metrics`` is the one
engine that scores every group, ``overall``, ``gap`` and ``worst`` from one argmax and one sort
per class score.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

# group labels that group_metrics adds after the groups themselves
DERIVED_LABELS = ("overall", "gap", "worst")


def _check(
    probs: np.ndarray, y: np.ndarray, weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    probs = np.asarray(probs)
    if probs.ndim != 3 or probs.shape[2] < 2:
        raise ValueError(
            f"probs: expected an array [draws, n, classes >= 2], got shape {probs.shape}"
        )
    n, C = probs.shape[1], probs.shape[2]
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y: expected shape ({n},) to match probs, got {y.shape}")
    y = y.astype(np.int64, copy=False)
    if n and (y.min() < 0 or y.max() >= C):
        raise ValueError(f"y: expected class codes in 0..{C - 1}, got {y.min()}..{y.max()}")
    if weight is not None:
        weight = np.asarray(weight, dtype=np.float64)
        if weight.shape != (n,):
            raise ValueError(f"weight: expected shape ({n},) to match y, got {weight.shape}")
    return probs, y, weight


def _correct(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """1.0 where the argmax prediction is right, float64 [D, n]."""
    if probs.shape[2] == 2:  # argmax of two, without argmax's slow last-axis loop
        pred = probs[:, :, 1] > probs[:, :, 0]
    else:
        pred = probs.argmax(axis=2)
    return (pred == y).astype(np.float64)


def _auc_sorted(s: np.ndarray, pos: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Weighted Mann-Whitney AUC of each row, from scores ``s`` [D, m] sorted along rows, with
    ``pos`` bool [D, m] and weights ``w`` float [D, m] (None: all 1) in the same order.

    Within a tie group (equal scores) every positive gains the negative weight strictly below
    the group plus half the group's own, so a tie group adds P_t * (N_below + N_upto) / 2, with
    P_t its positive weight and N_below / N_upto the negative weight before / through it.
    """
    D, m = s.shape
    if m == 0:
        return np.full(D, np.nan)
    if w is None:
        cum_pos = np.cumsum(pos, axis=1, dtype=np.int64)
        cum_neg = np.arange(1, m + 1) - cum_pos
    else:
        cum_pos = np.cumsum(np.where(pos, w, 0.0), axis=1)
        cum_neg = np.cumsum(np.where(pos, 0.0, w), axis=1)
    total_pos, total_neg = cum_pos[:, -1], cum_neg[:, -1]
    is_end, row_start = _tie_ends(s)
    upto_pos, below_pos = _at_tie_ends(cum_pos, is_end, row_start)
    upto_neg, below_neg = _at_tie_ends(cum_neg, is_end, row_start)
    num = np.add.reduceat((upto_pos - below_pos) * (below_neg + upto_neg), row_start)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / (2.0 * total_pos * total_neg)
    out[(total_pos <= 0) | (total_neg <= 0)] = np.nan
    return out


def _tie_ends(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask of the last element of every tie group in the rows of sorted ``s`` [D, m], and
    where each row's tie groups start in the flat (row-major) list of tie groups."""
    D, m = s.shape
    is_end = np.empty((D, m), dtype=bool)
    np.not_equal(s[:, 1:], s[:, :-1], out=is_end[:, :-1])
    is_end[:, -1] = True
    row_start = np.zeros(D, dtype=np.int64)
    np.cumsum(is_end.sum(axis=1)[:-1], out=row_start[1:])
    return is_end, row_start


def _at_tie_ends(
    cum: np.ndarray, is_end: np.ndarray, row_start: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise cumulative ``cum`` [D, m] through each tie group and before it (flat)."""
    upto = cum[is_end]
    if upto.dtype.kind == "i":
        upto = upto.astype(np.int64)  # products of counts overflow int32 from n ~ 33,000
    below = np.empty_like(upto)
    below[0], below[1:] = 0, upto[:-1]
    below[row_start] = 0
    return upto, below


def _sorted_by(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise argsort of ``scores`` [D, m] and the scores in that order."""
    D, m = scores.shape
    scores = np.ascontiguousarray(scores)  # argsort of a strided view is about twice as slow
    order = np.argsort(scores, axis=1)
    flat = order + (np.arange(D) * m)[:, None]
    return order, np.take(scores.ravel(), flat)


def accuracy(probs: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    r"""Accuracy of each draw: :math:`\sum_i w_i [\hat y_i = y_i] / \sum_i w_i`,
    with :math:`\hat y_i = \arg\max_c p_{ic}`."""
    probs, y, w = _check(probs, y, weight)
    w = np.ones(len(y)) if w is None else w
    return _correct(probs, y) @ w / w.sum()


def balanced_accuracy(
    probs: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None
) -> np.ndarray:
    r"""Balanced accuracy of each draw: the mean, over classes :math:`c` present in ``y``, of the
    weighted recall :math:`\sum_{i: y_i = c} w_i [\hat y_i = c] / \sum_{i: y_i = c} w_i`
    (``sklearn.metrics.balanced_accuracy_score`` with ``sample_weight``)."""
    probs, y, w = _check(probs, y, weight)
    w = np.ones(len(y)) if w is None else w
    C = probs.shape[2]
    class_w = np.bincount(y, weights=w, minlength=C)
    present = np.flatnonzero(class_w > 0)
    onehot_w = np.zeros((len(y), C))
    onehot_w[np.arange(len(y)), y] = w
    hits = _correct(probs, y) @ onehot_w[:, present]
    return (hits / class_w[present]).mean(axis=1)


def auc(probs: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    r"""ROC AUC of each draw, ties counted one half (weighted Mann-Whitney).

    Binary (C = 2): with scores :math:`s_i = p_{i1}`, positives P (y = 1), negatives N,
    :math:`\mathrm{AUC} = \sum_{i \in P} \sum_{j \in N} w_i w_j
    ([s_j < s_i] + \tfrac12 [s_j = s_i]) / (\sum_P w_i \sum_N w_j)`.
    C > 2: one-vs-rest macro average, over the classes c present in ``y``, of the binary AUC
    of :math:`p_{\cdot c}` for class c against the rest (``sklearn.metrics.roc_auc_score`` with
    ``multi_class="ovr", average="macro"``). NaN when fewer than two classes are present.
    """
    probs, y, w = _check(probs, y, weight)
    D, _, C = probs.shape
    class_w = np.bincount(y, weights=w, minlength=C)
    present = np.flatnonzero(class_w > 0)
    if len(present) < 2:
        return np.full(D, np.nan)
    scored = [1] if C == 2 else present
    per_class = []
    for c in scored:
        order, s = _sorted_by(probs[:, :, c])
        per_class.append(_auc_sorted(s, (y == c)[order], None if w is None else w[order]))
    return np.mean(per_class, axis=0)


Metric = Callable[..., np.ndarray]

METRICS: dict[str, Metric] = {
    "accuracy": accuracy,
    "balanced_accuracy": balanced_accuracy,
    "auc": auc,
}


def group_metrics(
    probs: np.ndarray,
    y: np.ndarray,
    g: np.ndarray,
    groups: list[str],
    metrics: list[str],
    test_mix: Literal["balanced", "natural"] = "balanced",
) -> dict[tuple[str, str], np.ndarray]:
    r"""Metrics per group, overall, gap and worst group, each float [D] (one value per draw).

    ``g`` int [n] holds group codes, indices into ``groups``; every group needs test samples.
    ``(group, metric)``: the metric on that group's samples, unweighted.
    ``("overall", metric)``: the metric on all samples; ``test_mix="balanced"`` weights sample i
    by :math:`1 / (G \, n_{g_i})` so every group counts equally, ``"natural"`` is unweighted.
    ``("gap", metric)``: :math:`\max_g m_g - \min_g m_g`; ``("worst", metric)``:
    :math:`\min_g m_g`, per draw (NaN when some group's metric is NaN).
    Same numbers as ``accuracy``, ``balanced_accuracy``, ``auc`` applied group by group.
    """
    probs, y, _ = _check(probs, y, None)
    D, n, C = probs.shape
    g = np.asarray(g)
    if g.shape != (n,):
        raise ValueError(f"g: expected shape ({n},) to match y, got {g.shape}")
    G = len(groups)
    if G < 2:
        raise ValueError(f"groups: expected at least 2 groups, got {list(groups)}")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"metrics: expected names from {sorted(METRICS)}, got {unknown}")
    if test_mix not in ("balanced", "natural"):
        raise ValueError(f"test_mix: expected 'balanced' or 'natural', got {test_mix!r}")
    g = g.astype(np.int64, copy=False)
    if n and (g.min() < 0 or g.max() >= G):
        raise ValueError(f"g: expected group codes in 0..{G - 1}, got {g.min()}..{g.max()}")
    clash = sorted(set(groups) & set(DERIVED_LABELS))
    if clash or len(set(groups)) != G:
        raise ValueError(
            f"groups: expected distinct names other than {DERIVED_LABELS}, got {list(groups)}"
        )
    group_n = np.bincount(g, minlength=G)
    for name, count in zip(groups, group_n):
        if count == 0:
            raise ValueError(f"group {name!r}: no test samples")

    if test_mix == "balanced":
        group_w = 1.0 / (G * group_n)
        overall_w = group_w[g]
    else:
        group_w, overall_w = None, np.ones(n)
    # sample counts per (group, class), the denominators of per-group recalls
    cell_n = np.bincount(g * C + y, minlength=G * C).reshape(G, C)
    class_w = np.bincount(y, weights=overall_w, minlength=C)
    values: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # metric -> (per group [G, D], overall)

    if "accuracy" in metrics or "balanced_accuracy" in metrics:
        correct = _correct(probs, y)
    if "accuracy" in metrics:
        by_group = np.zeros((n, G))
        by_group[np.arange(n), g] = 1.0 / group_n[g]
        values["accuracy"] = ((correct @ by_group).T, correct @ overall_w / overall_w.sum())
    if "balanced_accuracy" in metrics:
        cells = np.zeros((n, G * C))
        cells[np.arange(n), g * C + y] = 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = (correct @ cells).reshape(D, G, C) / cell_n
        per_group = np.nanmean(recall, axis=2).T  # mean over classes present in the group
        present = class_w > 0
        onehot_w = np.zeros((n, C))
        onehot_w[np.arange(n), y] = overall_w
        overall = ((correct @ onehot_w)[:, present] / class_w[present]).mean(axis=1)
        values["balanced_accuracy"] = (per_group, overall)
    if "auc" in metrics:
        values["auc"] = _group_auc(probs, y, g, G, cell_n, group_w, class_w)

    out: dict[tuple[str, str], np.ndarray] = {}
    for metric in metrics:
        per_group, overall = values[metric]
        for name, v in zip(groups, per_group):
            out[(name, metric)] = v
        out[("overall", metric)] = overall
        out[("gap", metric)] = per_group.max(axis=0) - per_group.min(axis=0)
        out[("worst", metric)] = per_group.min(axis=0)
    return out


def _cumcount(codes: np.ndarray, code: int) -> np.ndarray:
    """Row-wise running count of ``code`` in ``codes`` [D, m]."""
    return np.cumsum(codes == code, axis=1, dtype=np.int32)


def _group_auc(
    probs: np.ndarray,
    y: np.ndarray,
    g: np.ndarray,
    G: int,
    cell_n: np.ndarray,
    group_w: np.ndarray | None,
    class_w: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """AUC per group [G, D] and overall [D] from one row-wise sort per scored class.

    In sorted order, cumulative counts of each (group, positive/negative) code are read at the
    ends of tie groups; a group's AUC numerator is sum over tie groups of
    P_t * (N_below + N_upto) / 2 with its own counts (exact integers), the overall one the same
    with counts combined across groups by the overall weights.
    """
    D, _n, C = probs.shape
    scored = [1] if C == 2 else list(range(C))
    per_group = np.full((len(scored), G, D), np.nan)
    overall = np.full((len(scored), D), np.nan)
    gw = np.ones(G, dtype=np.int64) if group_w is None else group_w
    code = (2 * g).astype(np.int32)
    for i, c in enumerate(scored):
        pos_n = cell_n[:, c]
        neg_n = cell_n.sum(axis=1) - pos_n
        order, s = _sorted_by(probs[:, :, c])
        code_sorted = (code + (y == c))[order]
        is_end, row_start = _tie_ends(s)
        w_pos = w_neg = 0  # overall-weighted P_t and N_below + N_upto of each tie group
        for j in range(G):  # code 2j: negative in group j, 2j + 1: positive
            pos_upto, pos_below = _at_tie_ends(_cumcount(code_sorted, 2 * j + 1), is_end, row_start)
            neg_upto, neg_below = _at_tie_ends(_cumcount(code_sorted, 2 * j), is_end, row_start)
            d_pos = pos_upto - pos_below
            neg = neg_below + neg_upto
            num = np.add.reduceat(d_pos * neg, row_start)
            with np.errstate(invalid="ignore", divide="ignore"):
                per_group[i, j] = num / (2.0 * pos_n[j] * neg_n[j])
            w_pos = w_pos + gw[j] * d_pos
            w_neg = w_neg + gw[j] * neg
        num = np.add.reduceat(w_pos * w_neg, row_start)
        total_pos, total_neg = gw @ pos_n, gw @ neg_n
        if total_pos > 0 and total_neg > 0:
            overall[i] = num / (2.0 * total_pos * total_neg)
    if C == 2:
        return per_group[0], overall[0]
    # OvR macro over classes present; undefined with fewer than two classes present
    group_present = cell_n.T > 0  # [C, G]
    by_group = np.where(group_present[:, :, None], per_group, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        by_group /= group_present.sum(axis=0)[:, None]
    by_group[group_present.sum(axis=0) < 2] = np.nan
    present = class_w > 0
    overall_auc = overall[present].mean(axis=0) if present.sum() >= 2 else np.full(D, np.nan)
    return by_group, overall_auc
