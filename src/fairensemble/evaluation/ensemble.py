"""k-of-E ensemble evaluation: draw member subsets, average their probabilities, score per group."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairensemble.common import arrays
from fairensemble.common.errors import InputError
from fairensemble.metrics import (
    DERIVED_LABELS,
    DISPARITY,
    Context,
    Margins,
    Members,
    get,
    group_slices,
    labels,
    notes,
    score,
    with_margins,
)

# elements in one block of averaged probabilities [draws, n, C] (float64: 16 MB); the metric
# engine's temporaries for a block add about ten times that
_BLOCK_ELEMENTS = 1 << 21
# sample weights x draws in one chunk of bootstrap resamples: the engine's largest
# temporaries are [resamples, draws, n] float64 arrays (16 MB each), a handful at a time
_BOOT_ELEMENTS = 1 << 21


def draw_subsets(n_members: int, k: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Member subsets of size ``k``, int [D, k], each row sorted ascending.

    When there are at most ``draws`` k-subsets of ``n_members``, all of them are returned in
    lexicographic order (D = C(n_members, k)) and ``rng`` is not used. Otherwise D = ``draws``
    subsets drawn uniformly at random from ``rng``, each with k distinct members, and no two
    draws the same subset (sampling without replacement from the set of k-subsets).
    """
    if n_members < 1:
        raise InputError(f"n_members: expected at least 1, got {n_members}")
    if not 1 <= k <= n_members:
        raise InputError(f"k: expected an ensemble size in 1..{n_members}, got {k}")
    if draws < 1:
        raise InputError(f"draws: expected at least 1, got {draws}")
    if math.comb(n_members, k) <= draws:
        return np.array(list(itertools.combinations(range(n_members), k)), dtype=np.int64)
    chosen = np.empty((0, k), dtype=np.int64)
    while len(chosen) < draws:
        # k smallest of E uniform keys per row: a uniform k-subset
        candidates = np.sort(np.argsort(rng.random((draws, n_members)), axis=1)[:, :k], axis=1)
        pooled = np.concatenate([chosen, candidates])
        _, first = np.unique(pooled, axis=0, return_index=True)
        chosen = pooled[np.sort(first)]  # keep first occurrences, in drawing order
    return chosen[:draws]


def subsets_by_k(n_members: int, ks: list[int], draws: int, seed: int) -> dict[int, np.ndarray]:
    """``draw_subsets`` for each k in ``ks``, in that order, from one generator seeded with
    ``seed``: the draws of a cell's evaluation, which anything scoring the same ensembles
    (post-processing) takes from here."""
    rng = np.random.default_rng(seed)
    return {k: draw_subsets(n_members, k, draws, rng) for k in ks}


def average_members(member_probs: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """Mean member probabilities of each subset: float64 [D, n, C] from [E, n, C] and [D, k].

    Members are added one subset position at a time, the same sequence of float operations
    for every sample, so samples whose member probabilities are equal get equal averages
    (ties stay ties for AUC).
    """
    member_probs = arrays.member_probs(member_probs)
    subsets = np.asarray(subsets)
    if subsets.ndim != 2 or subsets.shape[1] < 1:
        raise InputError(f"subsets: expected an int array [draws, k], got {subsets.shape}")
    E = member_probs.shape[0]
    if subsets.size and (subsets.min() < 0 or subsets.max() >= E):
        raise InputError(f"subsets: expected member indices in 0..{E - 1}")
    total = member_probs[subsets[:, 0]].astype(np.float64)
    for j in range(1, subsets.shape[1]):
        total += member_probs[subsets[:, j]]
    total /= subsets.shape[1]
    return total


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate_cell`` measured.

    ``table``: one row per k x post x group label x metric, columns ``k, post, group, metric,
    mean, std, n_draws`` (``post`` names a post-processing of the predictions; ``"none"``
    here). ``boot``: None, or per-resample means over the draws, columns ``k, post, group,
    metric, b0..b{n_boot-1}``. ``notes``: why values are NaN, one short line each.
    """

    table: pd.DataFrame
    boot: pd.DataFrame | None
    notes: list[str]


def evaluate_cell(
    member_probs: np.ndarray,
    y: np.ndarray,
    g: np.ndarray,
    groups: list[str],
    ks: list[int],
    draws: int,
    metrics: list[str],
    test_mix: str,
    seed: int,
    n_boot: int = 0,
    boot_seed: int = 0,
    margins: Margins = (),
) -> Evaluation:
    """Metrics of k-member ensembles for every k in ``ks``, summarised over draws.

    ``member_probs`` float [E, n, C]; ``y`` int [n]; ``g`` int [n] group codes into
    ``groups``. For each k, subsets come from ``draw_subsets`` with one
    ``np.random.default_rng(seed)`` used in the order of ``ks``; each draw's probabilities are
    the subset's mean (``average_members``). The table holds one row per k x group label
    (``metrics.labels``: the groups, ``overall``, ``gap``, ``worst``; ``disparity`` for
    between-group metrics) x metric: mean and std (ddof=0) over the D draws, NaN when the
    metric is undefined in some draw.

    With ``n_boot`` > 0, for k = 1 and k = E (those of them in ``ks``), the test set is
    resampled ``n_boot`` times, stratified by group: each group's samples are drawn with
    replacement to the group's own size, from ``np.random.default_rng(boot_seed)``, as
    multinomial counts used as sample weights (the same resamples for both k). ``boot`` then
    holds, for each resample, every label and metric's mean over the same draws as the table.

    ``margins``: ``(label, group indices)`` of unions of groups (intersectional groups: an
    attribute's value over the combinations holding it), scored by every per-group metric
    beside the groups, after them in the table; gap, worst and disparities stay between the
    groups.
    """
    member_probs = arrays.member_probs(member_probs)
    E, n, C = member_probs.shape
    y = np.asarray(y)
    arrays.check_shape(y, "y", [(n,)], "to match member_probs")
    bad = [k for k in ks if not 1 <= k <= E]
    if bad:
        raise InputError(f"ks: expected ensemble sizes in 1..{E} (members), got {bad}")
    if n_boot < 0:
        raise InputError(f"n_boot: expected a number of resamples >= 0, got {n_boot}")
    registered = [get(m) for m in metrics]
    order, slices = group_slices(y, g, groups, test_mix, C)
    slices, margin_labels = with_margins(slices, groups, margins)
    # groups made contiguous once: every per-group sum is then a slice of the sample axis
    if not np.array_equal(order, np.arange(n)):  # no copy of samples already in group order
        member_probs, y = np.take(member_probs, order, axis=1), y[order]
    y = y.astype(np.int64, copy=False)
    members = None
    if any("members" in m.needs for m in registered):
        members = Members.from_probs(member_probs, y)
    boot_ks = {k for k in ks if k in (1, E)} if n_boot else set()
    counts = _boot_counts(slices.ranges, n, n_boot, boot_seed) if boot_ks else None

    drawn = subsets_by_k(E, ks, draws, seed)
    keys = [(label, m) for m in metrics for label in labels(m, groups)]
    keys += [(label, m) for m in metrics if get(m).scope == "group" for label in margin_labels]
    rank = {label: i for i, label in enumerate([*groups, *margin_labels, *DERIVED_LABELS,
                                                DISPARITY])}
    keys.sort(key=lambda key: rank[key[0]])  # labels outer, metrics inner
    block = max(1, _BLOCK_ELEMENTS // max(1, n * C))
    rows: dict[str, list] = {c: [] for c in ("k", "group", "metric", "mean", "std", "n_draws")}
    boot_rows: list[tuple[int, str, str, np.ndarray]] = []
    cell_notes: list[str] = []
    for k in ks:
        subsets = drawn[k]
        parts: list[dict] = []
        boot_sum = {key: np.zeros(n_boot) for key in keys} if k in boot_ks else None
        for i in range(0, len(subsets), block):
            sub = subsets[i : i + block]
            ctx = Context(y, slices, probs=average_members(member_probs, sub),
                          members=None if members is None else members.for_draws(sub))
            parts.append(score(ctx, metrics, groups, margin_labels))
            if boot_sum is not None:
                step = max(1, _BOOT_ELEMENTS // (len(sub) * n))
                for r in range(0, n_boot, step):
                    weights = counts[r : r + step]
                    scored = score(ctx.reweighted(weights), metrics, groups, margin_labels)
                    for key, v in scored.items():
                        boot_sum[key][r : r + step] += v.sum(axis=1)
        values = {key: np.concatenate([p[key][0] for p in parts]) for key in keys}
        for label, metric in keys:
            v = values[(label, metric)]
            rows["k"].append(k)
            rows["group"].append(label)
            rows["metric"].append(metric)
            rows["mean"].append(float(v.mean()))
            rows["std"].append(float(v.std()))
            rows["n_draws"].append(len(v))
        if boot_sum is not None:
            boot_rows += [(k, *key, boot_sum[key] / len(subsets)) for key in keys]
        for note in notes(y, slices, groups, values, where=f" at k={k}"):
            if note not in cell_notes:
                cell_notes.append(note)
    table = pd.DataFrame(rows).astype({"k": np.int64, "n_draws": np.int64})
    table.insert(1, "post", "none")
    boot = None
    if n_boot:
        boot = pd.DataFrame(
            np.array([r[3] for r in boot_rows]).reshape(len(boot_rows), n_boot),
            columns=[f"b{i}" for i in range(n_boot)],
        )
        boot.insert(0, "k", np.array([r[0] for r in boot_rows], dtype=np.int64))
        boot.insert(1, "post", "none")
        boot.insert(2, "group", [r[1] for r in boot_rows])
        boot.insert(3, "metric", [r[2] for r in boot_rows])
    return Evaluation(table, boot, cell_notes)


def _boot_counts(ranges: list[tuple[int, int]], n: int, n_boot: int, seed: int) -> np.ndarray:
    """int16 (int64 past 32,767) [n_boot, n]: how often each sample is drawn in each
    resample, every group (a range of samples) resampled with replacement to its own size:
    multinomial counts, obtained by drawing indices uniformly within the group and counting
    them.

    Group by group, the indices come from ``rng.integers(a, b)`` one resample at a time,
    which gives the numbers one call for the group's [n_boot, size] indices gives, in the
    same order, without holding them: at a million test samples the one call and its counts
    took gigabytes."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, n), dtype=np.int16)
    for a, b in ranges:
        for r in range(n_boot if b > a else 0):
            row = np.bincount(rng.integers(a, b, size=b - a) - a, minlength=b - a)
            if counts.dtype == np.int16 and row.max() >= 2**15:
                counts = counts.astype(np.int64)
            counts[r, a:b] = row
    return counts
