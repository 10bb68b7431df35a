"""Group-ratio sampler: draw exactly ``train_size`` pool samples with a requested group mix."""

from __future__ import annotations

import numpy as np

from .base import DataError


class SamplingError(DataError):
    """A mix the pool cannot supply."""


def largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to ``weights`` that sum exactly to ``total`` (Hamilton's method)."""
    weights = np.asarray(weights, dtype=float)
    if weights.sum() <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    exact = total * weights / weights.sum()
    counts = np.floor(exact + 1e-9).astype(np.int64)
    short = total - counts.sum()
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:short]] += 1
    return counts


def mix_shares(
    ratio: float, ratio_group: int, pool_g: np.ndarray, n_groups: int
) -> np.ndarray:
    """Shares per group: ``ratio`` for ``ratio_group``; the others split the rest in their
    relative pool proportions (with two groups: simply 1 - ratio)."""
    sizes = np.bincount(pool_g, minlength=n_groups).astype(float)
    others = sizes.copy()
    others[ratio_group] = 0.0
    shares = (1.0 - ratio) * others / others.sum() if others.sum() > 0 else others
    shares[ratio_group] = ratio
    return shares


def plan_counts(
    train_size: int,
    shares: np.ndarray,
    pool_y: np.ndarray,
    pool_g: np.ndarray,
    groups: list[str],
    n_classes: int,
    label_balance: str = "keep",
) -> np.ndarray:
    """How many samples of each (group, class) a draw takes, as an int array [G, C].

    ``keep``: each group's class counts follow that group's label prevalence in the pool;
    ``balanced``: equal classes within each group. Raises ``SamplingError`` naming the group
    and class when the pool holds too few."""
    n_groups = len(groups)
    per_group = largest_remainder(train_size, np.asarray(shares, dtype=float))
    available = np.zeros((n_groups, n_classes), dtype=np.int64)
    np.add.at(available, (pool_g, pool_y), 1)
    counts = np.zeros_like(available)
    for j in range(n_groups):
        if per_group[j] == 0:
            continue
        if per_group[j] > available[j].sum():
            raise SamplingError(
                f"train_size {train_size} with share {shares[j]:.3g} of group {groups[j]!r} "
                f"needs {per_group[j]} samples of that group but the pool holds "
                f"{available[j].sum()}"
            )
        weights = available[j] if label_balance == "keep" else (available[j] > 0).astype(float)
        counts[j] = largest_remainder(int(per_group[j]), weights)
        short = np.flatnonzero(counts[j] > available[j])
        if len(short):
            c = short[0]
            raise SamplingError(
                f"train_size {train_size} with share {shares[j]:.3g} of group {groups[j]!r} "
                f"and label_balance {label_balance!r} needs {counts[j, c]} samples of class {c} "
                f"in that group but the pool holds {available[j, c]}"
            )
    return counts


def sample_indices(
    counts: np.ndarray, pool_y: np.ndarray, pool_g: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Pool indices realising ``counts`` [G, C], drawn without replacement, in random order."""
    chosen = []
    for j, c in zip(*np.nonzero(counts)):
        members = np.flatnonzero((pool_g == j) & (pool_y == c))
        chosen.append(rng.choice(members, size=int(counts[j, c]), replace=False))
    idx = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    return rng.permutation(idx)
