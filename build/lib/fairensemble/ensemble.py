"""k-of-E ensemble evaluation: draw member subsets, average their probabilities, score per group."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from fairensemble.metrics import DERIVED_LABELS, group_metrics

# elements in one block of averaged probabilities [draws, n, C] (float64: 16 MB); the metric
# engine's temporaries for a block add about ten times that
_BLOCK_ELEMENTS = 1 << 21


def draw_subsets(n_members: int, k: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Member subsets of size ``k``, int [D, k], each row sorted ascending.

    When there are at most ``draws`` k-subsets of ``n_members``, all of them are returned in
    lexicographic order (D = C(n_members, k)) and ``rng`` is not used. Otherwise D = ``draws``
    subsets drawn uniformly at random from ``rng``, each with k distinct members, and no two
    draws the same subset (sampling without replacement from the set of k-subsets).
    """
    if n_members < 1:
        raise ValueError(f"n_members: expected at least 1, got {n_members}")
    if not 1 <= k <= n_members:
        raise ValueError(f"k: expected an ensemble size in 1..{n_members}, got {k}")
    if draws < 1:
        raise ValueError(f"draws: expected at least 1, got {draws}")
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


def average_members(member_probs: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """Mean member probabilities of each subset: float64 [D, n, C] from [E, n, C] and [D, k].

    Members are added one subset position at a time, the same sequence of float operations
    for every sample, so samples whose member probabilities are equal get equal averages
    (ties stay ties for AUC).
    """
    member_probs = np.asarray(member_probs)
    subsets = np.asarray(subsets)
    if member_probs.ndim != 3:
        raise ValueError(
            f"member_probs: expected an array [members, n, classes], got {member_probs.shape}"
        )
    if subsets.ndim != 2 or subsets.shape[1] < 1:
        raise ValueError(f"subsets: expected an int array [draws, k], got {subsets.shape}")
    E = member_probs.shape[0]
    if subsets.size and (subsets.min() < 0 or subsets.max() >= E):
        raise ValueError(f"subsets: expected member indices in 0..{E - 1}")
    total = member_probs[subsets[:, 0]].astype(np.float64)
    for j in range(1, subsets.shape[1]):
        total += member_probs[subsets[:, j]]
    total /= subsets.shape[1]
    return total


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
) -> pd.DataFrame:
    """Per-group metrics of k-member ensembles for every k in ``ks``, summarised over draws.

    For each k, subsets come from ``draw_subsets`` with one ``np.random.default_rng(seed)``
    used in the order of ``ks``. Returns one row per k x group label (``groups``, then
    ``overall``, ``gap``, ``worst``) x metric with columns ``k, group, metric, mean, std,
    n_draws``: mean and std (ddof=0) over the D draws, NaN when the metric is undefined.
    """
    member_probs = np.asarray(member_probs)
    if member_probs.ndim != 3:
        raise ValueError(
            f"member_probs: expected an array [members, n, classes], got {member_probs.shape}"
        )
    E, n, C = member_probs.shape
    bad = [k for k in ks if not 1 <= k <= E]
    if bad:
        raise ValueError(f"ks: expected ensemble sizes in 1..{E} (members), got {bad}")
    rng = np.random.default_rng(seed)
    labels = [*groups, *DERIVED_LABELS]
    block = max(1, _BLOCK_ELEMENTS // max(1, n * C))
    rows: dict[str, list] = {c: [] for c in ("k", "group", "metric", "mean", "std", "n_draws")}
    for k in ks:
        subsets = draw_subsets(E, k, draws, rng)
        parts = [
            group_metrics(
                average_members(member_probs, subsets[i : i + block]),
                y,
                g,
                groups,
                metrics,
                test_mix,  # type: ignore[arg-type]
            )
            for i in range(0, len(subsets), block)
        ]
        for label in labels:
            for metric in metrics:
                values = np.concatenate([p[(label, metric)] for p in parts])
                rows["k"].append(k)
                rows["group"].append(label)
                rows["metric"].append(metric)
                rows["mean"].append(float(values.mean()))
                rows["std"].append(float(values.std()))
                rows["n_draws"].append(len(values))
    return pd.DataFrame(rows).astype({"k": np.int64, "n_draws": np.int64})
