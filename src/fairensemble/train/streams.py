"""Member trainers: ``stacked`` (MLP family, all members as one tensor program), ``loop`` (any
``nn.Module``) and ``frozen`` (an image backbone's features computed once, members are stacked
heads). Trainers take a list of ``CellData`` and return member probabilities.

This module holds what they share without torch: the cell's inputs contract and each member's
random streams (order, hold-out, bootstrap, augmentation), so a member is the same numbers
whichever trainer runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from fairensemble.common.errors import ConfigError, InputError
from fairensemble.common.seeds import (
    AUGMENT_STREAM,
    BOOTSTRAP_STREAM,
    DIVERSITY_SOURCES,
    HOLDOUT_STREAM,
    ORDER_STREAM,
    stream_rng,
)


@dataclass(frozen=True)
class Inputs:
    """What a trainer must know about a cell's inputs besides the arrays.

    ``kind``: ``"table"`` (float features [n, d]), ``"image"`` (uint8 [n, C, H, W]) or
    ``"tokens"`` (a text's hashed n-gram ids, int [n, L], 0 padding; ``vocab`` ids in all);
    None infers it from the array's dimensions. Images are scaled to [0, 1] and normalised with
    ``image_mean`` / ``image_std`` per channel (default 0 and 1), flipped left-right at random
    when ``hflip``, and read by ``num_workers`` loader processes when they live in a file.
    ``threads``: torch threads for the cell (CPU results are bitwise reproducible only for the
    same count)."""

    kind: Literal["table", "image", "tokens"] | None = None
    image_mean: tuple[float, ...] | None = None
    image_std: tuple[float, ...] | None = None
    hflip: bool = False
    num_workers: int = 0
    threads: int | None = None
    vocab: int | None = None  # ``tokens``: the id bags' bucket count


@dataclass
class CellData:
    """Everything a trainer needs for one cell.

    ``X_train``: float32 [n, d] (tables) or uint8 [n, C, H, W] (images); ``y_train`` int64 [n].
    ``evals``: name -> inputs to predict after training (always ``"test"``, ``"val"`` if used).
    ``val``: optional shared (X, y) for early stopping; without it a trainer that early-stops
    holds out ``early_stopping.val_fraction`` of the training draw per member, from its seed.
    ``soft_train``: optional float32 [n, C] class distributions the members' cross-entropy is
    taken against instead of ``y_train``'s one-hot rows (``dataset.train_on: soft``: the
    raters' votes); ``y_train`` still serves mitigations' cells and balanced batches.
    ``member_seeds``: one int per member; a member's random streams come from its own seed,
    or from the cell's first seed for the streams ``train.diversity`` leaves shared
    (``member_streams``), so member i is the same whatever else is stacked with it.
    """

    X_train: Any
    y_train: np.ndarray
    evals: dict[str, Any]
    member_seeds: list[int]
    val: tuple[Any, np.ndarray] | None = None
    inputs: Inputs = field(default_factory=Inputs)
    g_train: np.ndarray | None = None  # group codes of the training rows (mitigations)
    soft_train: np.ndarray | None = None  # float32 [n, C] soft targets (``soft_targets``)


@dataclass
class TrainStats:
    """What one cell's members did while training: per member the epochs run (early stopping
    can cut them) and the training rows its steps saw; the model's FLOPs per training sample
    (forward and backward, None where unknown); the mitigation's group x class cells (group
    code, class code) and, under Group DRO, each member's final cell weights."""

    epochs: list[int]
    samples: list[int]
    flops_per_sample: float | None = None
    cells: list[list[int]] = field(default_factory=list)
    dro_weights: list[list[float]] | None = None


@dataclass(frozen=True)
class MemberStreams:
    """The seed each of a member's random streams is drawn from.

    ``init``: initial weights (and, in the loop trainer, dropout masks: the same torch stream).
    ``order``: mini-batch order. ``augment``: horizontal flips (images with ``hflip`` only).
    ``bootstrap``: the resample of training rows, or None to train on the rows as drawn.
    ``holdout``: the early-stopping hold-out; it decides which rows a member trains on, so it
    is the member's own when its data differ (``order`` or ``bootstrap``), shared otherwise;
    that keeps today's per-member hold-out under the default and makes ``[init]`` members
    differ by their initialisation alone.
    """

    init: int
    order: int
    augment: int
    bootstrap: int | None
    holdout: int


def member_streams(seeds: Sequence[int], diversity: Sequence[str]) -> list[MemberStreams]:
    """Per member of one cell, its streams' seeds: its own seed for the sources in
    ``diversity``, the cell's first seed for the others, so that with ``diversity=[]`` every
    member is member 0, bit for bit."""
    on = set(diversity)
    first = int(seeds[0])

    def pick(seed: int, *sources: str) -> int:
        return seed if on.intersection(sources) else first

    return [
        MemberStreams(
            init=pick(seed, "init"),
            order=pick(seed, "order"),
            augment=pick(seed, "augment"),
            bootstrap=seed if "bootstrap" in on else None,
            holdout=pick(seed, "order", "bootstrap"),
        )
        for seed in map(int, seeds)
    ]


def order_rng(seed: int) -> np.random.Generator:
    """The generator of a member's mini-batch order: one ``permutation(n)`` per epoch."""
    return stream_rng(seed, ORDER_STREAM)


def augment_rng(seed: int) -> np.random.Generator:
    """The generator of a member's image flips: one ``random(batch)`` per batch."""
    return stream_rng(seed, AUGMENT_STREAM)


def holdout_split(seed: int, n: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """A member's own (train_idx, val_idx) split of its n training rows (both sorted)."""
    n_val = round(val_fraction * n)
    if n_val < 1 or n_val >= n:
        raise ConfigError(
            f"train.early_stopping.val_fraction: {val_fraction} of {n} training rows leaves"
            " an empty train or validation part"
        )
    perm = stream_rng(seed, HOLDOUT_STREAM).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def bootstrap_rows(seed: int, rows: np.ndarray) -> np.ndarray:
    """A member's bootstrap resample of ``rows``: ``len(rows)`` draws with replacement, as a
    sorted multiset (every epoch shuffles it anyway)."""
    rng = stream_rng(seed, BOOTSTRAP_STREAM)
    return rows[np.sort(rng.integers(0, len(rows), len(rows)))]


def member_rows(
    member: MemberStreams, n: int, val_fraction: float | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """A member's training rows of the cell's n and its hold-out rows (None: no hold-out).
    The hold-out comes first so that the bootstrap never draws a row the member is scored on."""
    train_idx, val_idx = np.arange(n), None
    if val_fraction is not None:
        train_idx, val_idx = holdout_split(member.holdout, n, val_fraction)
    if member.bootstrap is not None:
        train_idx = bootstrap_rows(member.bootstrap, train_idx)
    return train_idx, val_idx


def soft_targets(votes: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Soft targets float32 [n, C] from raters' votes: each row's votes over their sum, the
    one-hot of ``y`` for a row no rater labelled."""
    v = np.asarray(votes, dtype=np.float64)
    total = v.sum(axis=1, keepdims=True)
    out = np.eye(n_classes)[np.asarray(y, dtype=np.int64)]
    rated = total[:, 0] > 0
    out[rated] = v[rated] / total[rated]
    return out.astype(np.float32)


def checked_soft(soft: Any, n: int, n_classes: int, where: str) -> np.ndarray:
    """``soft`` as float32 [n, C] rows of probabilities (non-negative, summing to 1); anything
    else is a one-line ``InputError`` naming ``where``."""
    arr = np.asarray(soft, dtype=np.float32)
    if arr.shape != (n, n_classes):
        raise InputError(f"{where}: expected soft targets of shape ({n}, {n_classes}), got "
                         f"{arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any() or \
            not np.allclose(arr.sum(axis=1), 1.0, atol=1e-4):
        raise InputError(f"{where}: expected rows of class probabilities (non-negative, summing "
                         "to 1)")
    return np.ascontiguousarray(arr)


# progress(n_members_finished) is called as members finish (or in fractions of a cell)
Progress = Callable[[float], None]

__all__ = ["DIVERSITY_SOURCES", "CellData", "Inputs", "MemberStreams", "Progress", "augment_rng",
           "bootstrap_rows", "checked_soft", "holdout_split", "member_rows", "member_streams",
           "order_rng", "soft_targets"]
