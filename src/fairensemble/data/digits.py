"""scikit-learn's bundled 8x8 digits as a two-group binary image task (``kind: digits``).

No download: ``sklearn.datasets.load_digits`` (1797 images, values 0..16). Construction:

* class: digit >= 5 (classes ``"0-4"`` and ``"5-9"``, about half each);
* group: a seeded split of the samples, half of each digit to each group; the second group's
  images (``groups[1]``) are mirrored left-right, so a model fitted to one group transfers
  poorly to the other (each group needs its own data), while the two learning problems stay
  exactly symmetric: mirroring permutes pixels, and a mirrored model solves the mirrored task;
* images scaled to [0, 1] (x / 16), optionally upsampled to ``image_size`` (bilinear), stored
  as uint8 [n, 1, s, s] (round(255 x));
* pool / test: ``test_fraction`` of the samples, apportioned over the group x label strata
  (``frame.split_rows``), seeded; no val split.

Difficulty acts on ``hard_group`` only, with random draws made for every sample whatever the
knob values (common random numbers: the easy group's data never change, and the hard group's
change only through the knobs):

* ``rotation_deg``: each image is rotated by an angle drawn uniformly from
  [-rotation_deg, rotation_deg] (``scipy.ndimage.rotate``, bilinear, zero fill), making the
  class shapes more variable (a symmetric range keeps the mirrored group's task symmetric);
* ``pixel_noise``: Gaussian noise of that standard deviation on the [0, 1] scale, clipped;
* ``label_noise``: exactly round(label_noise * n) of its pool labels are flipped, chosen at
  random; test labels stay clean.

With every knob at 0 the two groups are equally hard.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from fairensemble.common.errors import DataError
from fairensemble.common.schema import PositiveInt, Strict, check_hard_group
from fairensemble.common.seeds import rng_for
from fairensemble.data.base import Dataset, Split
from fairensemble.data.frame import counts_by_split, split_rows
from fairensemble.data.registry import register

CLASSES = ["0-4", "5-9"]


class DigitsData(Strict):
    """scikit-learn's bundled 8x8 digits as a two-group image task (see the module docstring)."""

    kind: Literal["digits"] = "digits"
    """The data source (this section's name)."""
    groups: list[str] = ["A", "B"]
    """The two groups' names (the second group's images are mirrored)."""
    hard_group: str | None = None
    """The group the difficulty knobs act on (default: the last group)."""
    pixel_noise: Annotated[float, Field(ge=0.0)] = 0.0
    """Standard deviation of Gaussian pixel noise on the hard group's images (0 to 1 scale)."""
    rotation_deg: Annotated[float, Field(ge=0.0, le=180.0)] = 0.0
    """The hard group's images are rotated by up to this many degrees either way."""
    label_noise: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0
    """Share of the hard group's pool labels flipped at random."""
    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    """Share of the samples in the test split."""
    image_size: PositiveInt = 8
    """Images are upsampled to squares of this many pixels."""

    @model_validator(mode="after")
    def _hard_known(self) -> DigitsData:
        check_hard_group(self.groups, self.hard_group)
        return self

    @property
    def hard(self) -> str:
        return self.hard_group or self.groups[-1]


def load(cfg: DigitsData, seed: int) -> Dataset:
    """Pool / test splits of the two-group digits task, uint8 [n, 1, s, s]."""
    from scipy import ndimage
    from sklearn.datasets import load_digits

    if len(cfg.groups) != 2 or len(set(cfg.groups)) != 2:
        raise DataError(f"dataset.groups: expected two distinct names, got {cfg.groups}")
    bunch = load_digits()
    digit = bunch.target.astype(np.int64)
    n = len(digit)
    y = (digit >= 5).astype(np.int64)
    g = _assign_groups(digit, rng_for(seed, "digits", "groups"))
    _, _, test_rows = split_rows(g * 2 + y, rng_for(seed, "digits", "test"), cfg.test_fraction,
                                 0.0)
    is_test = np.zeros(n, dtype=bool)
    is_test[test_rows] = True

    images = bunch.images.astype(np.float64) / 16.0
    images[g == 1] = images[g == 1][:, :, ::-1]
    if cfg.image_size != 8:
        images = ndimage.zoom(images, (1, cfg.image_size / 8, cfg.image_size / 8), order=1,
                              mode="nearest", grid_mode=True)
    hard = cfg.groups.index(cfg.hard)
    in_hard = g == hard
    angles = rng_for(seed, "digits", "rotation").uniform(-1.0, 1.0, size=n) * cfg.rotation_deg
    noise = rng_for(seed, "digits", "pixel_noise").standard_normal(images.shape)
    if cfg.rotation_deg > 0:
        for i in np.flatnonzero(in_hard):
            images[i] = ndimage.rotate(images[i], angles[i], reshape=False, order=1, cval=0.0)
    if cfg.pixel_noise > 0:
        images[in_hard] += cfg.pixel_noise * noise[in_hard]
    X = np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)[:, None]

    flip_order = rng_for(seed, "digits", "label_noise").permutation(n)
    hard_pool = flip_order[in_hard[flip_order] & ~is_test[flip_order]]
    n_flips = round(cfg.label_noise * len(hard_pool))
    y_observed = y.copy()
    y_observed[hard_pool[:n_flips]] = 1 - y_observed[hard_pool[:n_flips]]

    pool_idx, test_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    pool = Split(X[pool_idx], y_observed[pool_idx], g[pool_idx])
    test = Split(X[test_idx], y[test_idx], g[test_idx])
    scaled = pool.X.astype(np.float64) / 255.0
    counts = counts_by_split({"pool": (pool.y, pool.g), "test": (test.y, test.g)},
                             list(cfg.groups), CLASSES)
    return Dataset(
        groups=list(cfg.groups),
        classes=list(CLASSES),
        pool=pool,
        test=test,
        val=None,
        input_kind="image",
        image_mean=(float(scaled.mean()),),
        image_std=(float(scaled.std()),),
        hard_group=cfg.hard,
        info={
            "source": "digits",
            "target": "digit >= 5",
            "mirrored_group": cfg.groups[1],
            "hard_group": cfg.hard,
            "label_flips": n_flips,
            "counts": counts,
            "dropped": {},
        },
    )


def _assign_groups(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Group code per sample: each digit's samples shuffled and dealt alternately to 0 and 1."""
    g = np.zeros(len(digit), dtype=np.int64)
    for d in range(10):
        idx = rng.permutation(np.flatnonzero(digit == d))
        g[idx[1::2]] = 1
    return g


register(DigitsData, load)
