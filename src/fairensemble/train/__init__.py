"""Member trainers: ``stacked`` (MLP family, all members as one tensor program) and ``loop``
(any ``nn.Module``). Both take a list of ``CellData`` and return member probabilities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class CellData:
    """Everything a trainer needs for one cell.

    ``X_train``: float32 [n, d] (tables) or uint8 [n, C, H, W] (images); ``y_train`` int64 [n].
    ``evals``: name -> inputs to predict after training (always ``"test"``, ``"val"`` if used).
    ``val``: optional shared (X, y) for early stopping; without it a trainer that early-stops
    holds out ``early_stopping.val_fraction`` of the training draw per member, from its seed.
    ``member_seeds``: one int per member; a member's initialisation and its mini-batch order
    come from its own seed only, so member i is the same whatever else is stacked with it.
    ``meta``: input_kind, image_mean, image_std, hflip, ...
    """

    X_train: Any
    y_train: np.ndarray
    evals: dict[str, Any]
    member_seeds: list[int]
    val: tuple[Any, np.ndarray] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


# progress(n_members_finished) is called as members finish (or in fractions of a cell)
Progress = Callable[[float], None]
