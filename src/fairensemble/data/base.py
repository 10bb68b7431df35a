"""The value every data source returns: pool / val / test splits with labels and group codes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Split:
    """One split. ``X`` is a float32 feature matrix [n, d], a uint8 image array [n, C, H, W]
    (possibly a ``np.memmap``), or for tables a ``pandas.DataFrame`` of raw columns that
    ``Dataset.prepare`` turns into features. ``y`` holds class codes (int64, 0..C-1) and ``g``
    group codes (int64, indices into ``Dataset.groups``). ``votes``: where raters labelled the
    rows, their votes per class (float32 [n, C]: counts, or shares where the rater counts are
    unknown; ``data.raters``), else None."""

    X: Any
    y: np.ndarray
    g: np.ndarray
    votes: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.int64)
        self.g = np.asarray(self.g, dtype=np.int64)
        if self.votes is not None:
            self.votes = np.asarray(self.votes, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: np.ndarray) -> Split:
        X = self.X.iloc[idx] if hasattr(self.X, "iloc") else self.X[idx]
        return Split(X, self.y[idx], self.g[idx],
                     None if self.votes is None else self.votes[idx])


def identity_prepare(train: Split, others: list[Split]) -> list[np.ndarray]:
    return [train.X, *[s.X for s in others]]


@dataclass
class Dataset:
    """What a source hands to the sweep. ``pool`` is what training draws from, ``test`` is fixed
    for the grid point, ``val`` (optional) is a shared validation split.

    ``prepare(train, others)`` turns raw ``X`` into model inputs, fitted on ``train`` only
    (tables: standardise + one-hot); it returns ``[X_train, *X_others]``. ``input_kind`` is
    ``"table"`` (float features) or ``"image"`` (uint8 [n, C, H, W]); for images
    ``image_mean``/``image_std`` normalise channels after scaling to [0, 1].
    ``info`` carries whatever a report may show (counts, dropped rows, file paths; image
    sources list the folders their files live in under ``image_roots``). With several group
    columns, ``attributes`` names them and ``group_values[i]`` holds group i's value of each
    (an intersectional group); both are empty for one group column. ``hard_group``: the group
    a synthetic difficulty knob acts on (the default ratio group); ``hflip``: images may be
    flipped left-right while training; ``loader_workers``: processes that read image batches
    from the decoded file; ``cache_folder``: where the decoded images are cached (derived
    caches, such as a frozen backbone's features, go beside them); ``ship``: the data are read
    once by the driver and travel to the workers with the units (tables, which fit in
    memory), so no worker needs the file. ``vocab``: text sources, the bucket count of the
    id bags ``prepare`` makes (``input_kind`` ``"text"``: ``Split.X`` holds the texts).
    Raters' votes ride on the splits (``Split.votes``)
    and ``info["raters"]`` says what they are (``data.raters.describe``)."""

    groups: list[str]
    classes: list[str]
    pool: Split
    test: Split
    val: Split | None = None
    prepare: Callable[[Split, list[Split]], list[np.ndarray]] = identity_prepare
    input_kind: str = "table"
    image_mean: tuple[float, ...] | None = None
    image_std: tuple[float, ...] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    attributes: list[str] = field(default_factory=list)
    group_values: list[list[str]] = field(default_factory=list)
    hard_group: str | None = None
    hflip: bool = False
    loader_workers: int = 0
    cache_folder: str | None = None
    ship: bool = False
    vocab: int | None = None

    @property
    def n_classes(self) -> int:
        return len(self.classes)
