"""Every apportionment of shares to counts, and the group-ratio sampler: draw exactly
``train_size`` pool samples with a requested group mix.

``largest_remainder`` is the one rounding rule of the project: training draws per group and
class, test / val splits per stratum, capped subsamples per stratum all go through it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fairensemble.common.errors import DataError


class SamplingError(DataError):
    """A mix the pool cannot supply."""


def largest_remainder(
    total: int,
    weights: np.ndarray | Sequence[float],
    *,
    cap: np.ndarray | Sequence[int] | None = None,
    floor_one: bool = False,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Integers proportional to ``weights`` that sum exactly to ``total`` (Hamilton's method).

    Each entry gets the floor of its exact share, then the units left go one each to the
    largest fractional parts; ties are broken at random by ``rng``, else by position. ``cap``
    bounds each entry (what a capped entry cannot take is apportioned again among the others,
    and ``total`` is reduced to ``cap.sum()`` when it exceeds it). ``floor_one``: every entry of
    positive weight gets at least one when ``total`` allows, the unit taken from the largest
    entry."""
    w = np.asarray(weights, dtype=float)
    n = len(w)
    limit = np.full(n, max(int(total), 0), dtype=np.int64) if cap is None else \
        np.asarray(cap, dtype=np.int64)
    w = np.where(limit > 0, w, 0.0)
    total = int(min(total, int(limit.sum())))
    counts = np.zeros(n, dtype=np.int64)
    if total <= 0 or w.sum() <= 0:
        return counts
    tie = rng.random(n) if rng is not None else np.zeros(n)
    while (left := total - int(counts.sum())) > 0:
        open_ = (counts < limit) & (w > 0)
        if not open_.any():
            break
        exact = np.where(open_, left * w / w[open_].sum(), 0.0)
        floors = np.floor(exact + 1e-9).astype(np.int64)
        room = limit - counts
        counts += np.minimum(floors, room)
        if (floors > room).any():
            continue  # a capped entry: apportion what it could not take among the others
        short = total - int(counts.sum())
        order = np.lexsort((np.arange(n), tie, -(exact - floors)))  # largest remainder first
        eligible = [i for i in order if open_[i] and counts[i] < limit[i]][:short]
        counts[eligible] += 1
    if floor_one:
        zero = np.flatnonzero((w > 0) & (counts == 0) & (limit > 0))
        for i in zero:
            donor = int(np.argmax(counts))
            if counts[donor] <= 1:
                break
            counts[donor] -= 1
            counts[i] = 1
    return counts


def mix_shares(
    ratio: float, moved: Sequence[int], pool_g: np.ndarray, n_groups: int
) -> np.ndarray:
    """Shares per group: the groups in ``moved`` together take ``ratio`` (in proportion to their
    pool sizes), the others split the rest in their relative pool proportions. With two
    groups and one moved: simply ``ratio`` and 1 - ``ratio``."""
    sizes = np.bincount(pool_g, minlength=n_groups).astype(float)
    inside = np.zeros(n_groups, dtype=bool)
    inside[list(moved)] = True
    shares = np.zeros(n_groups)
    for mask, amount in ((inside, ratio), (~inside, 1.0 - ratio)):
        part = np.where(mask, sizes, 0.0)
        if part.sum() > 0:
            shares += amount * part / part.sum()
        elif mask.any():  # no pool rows at all: spread evenly, the sampler then names the gap
            shares += amount * mask / mask.sum()
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


def drawable(
    train_size: int, shares: Sequence[float], pool_y: np.ndarray, pool_g: np.ndarray,
    groups: list[str], n_classes: int, moved: list[int], label_balance: str = "keep",
) -> bool:
    """Whether ``plan_counts`` can allocate ``train_size`` at every share of the ``moved``
    groups (the ratio group, or every combination holding one attribute value)."""
    for share in shares:
        mix = mix_shares(share, moved, pool_g, len(groups))
        try:
            plan_counts(train_size, mix, pool_y, pool_g, groups, n_classes, label_balance)
        except SamplingError:
            return False
    return True


def largest_train_size(
    pool_y: np.ndarray, pool_g: np.ndarray, groups: list[str], n_classes: int,
    moved: list[int], ratios: Sequence[float], label_balance: str = "keep",
) -> int:
    """The largest size ``drawable`` at every ratio in ``ratios`` plus 0 and 1 (binary search
    on 0..pool size; 0 when no size is)."""
    shares = sorted({0.0, 1.0, *ratios})
    lo, hi = 0, len(pool_y)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if drawable(mid, shares, pool_y, pool_g, groups, n_classes, moved, label_balance):
            lo = mid
        else:
            hi = mid - 1
    return lo


def readable_floor(n: int) -> tuple[int, int]:
    """``n`` rounded down to two significant figures, and the unit of the second figure (a
    proposed training-set size reads well and can be drawn)."""
    step = 10 ** max(len(str(n)) - 2, 0)
    return n // step * step, step


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


def stratified_subsample(
    y: np.ndarray, g: np.ndarray, n_max: int | None, rng: np.random.Generator
) -> np.ndarray:
    """Sorted indices of at most ``n_max`` rows drawn without replacement, stratified by
    group x label: each stratum keeps its share (``largest_remainder``), and every stratum keeps
    at least one row when ``n_max`` allows it. All rows when ``n_max`` is None or not smaller
    than the number of rows."""
    n = len(y)
    if n_max is None or n_max >= n:
        return np.arange(n)
    strata = np.asarray(g, dtype=np.int64) * (int(np.max(y)) + 1) + np.asarray(y, np.int64)
    _, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    take = largest_remainder(n_max, counts, cap=counts, floor_one=True)
    chosen = [
        rng.choice(np.flatnonzero(inverse == s), size=int(take[s]), replace=False)
        for s in range(len(counts))
    ]
    return np.sort(np.concatenate(chosen))


__all__ = ["SamplingError", "drawable", "largest_remainder", "largest_train_size", "mix_shares",
           "plan_counts", "readable_floor", "sample_indices", "stratified_subsample"]
