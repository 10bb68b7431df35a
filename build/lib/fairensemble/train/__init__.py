"""Member trainers: ``stacked`` (MLP family, all members as one tensor program) and ``loop``
(any ``nn.Module``). Both take a list of ``CellData`` and return member probabilities."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Where members of a cell may differ (``train.diversity``); each names one random stream.
DIVERSITY_SOURCES = ("init", "order", "bootstrap", "augment")


@dataclass
class CellData:
    """Everything a trainer needs for one cell.

    ``X_train``: float32 [n, d] (tables) or uint8 [n, C, H, W] (images); ``y_train`` int64 [n].
    ``evals``: name -> inputs to predict after training (always ``"test"``, ``"val"`` if used).
    ``val``: optional shared (X, y) for early stopping; without it a trainer that early-stops
    holds out ``early_stopping.val_fraction`` of the training draw per member, from its seed.
    ``member_seeds``: one int per member; a member's random streams come from its own seed,
    or from the cell's first seed for the streams ``train.diversity`` leaves shared
    (``member_streams``), so member i is the same whatever else is stacked with it.
    ``meta``: input_kind, image_mean, image_std, hflip, ...
    """

    X_train: Any
    y_train: np.ndarray
    evals: dict[str, Any]
    member_seeds: list[int]
    val: tuple[Any, np.ndarray] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


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


# progress(n_members_finished) is called as members finish (or in fractions of a cell)
Progress = Callable[[float], None]
