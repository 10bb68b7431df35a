"""Synthetic two-group, two-class Gaussian data whose hard group's task can be made harder.

Generative model (groups indexed j = 0, 1 in the order of ``dataset.groups``; s_0 = -1,
s_1 = +1; d = ``n_features``; e_1, e_2 the first two unit vectors; R(a) the rotation of the
(e_1, e_2) plane by angle a)::

    y ~ Bernoulli(prevalence)
    mu_j = s_j * (group_sep / 2) * e_1                      # the groups occupy different regions
    v_j  = R(s_j * (45 deg + [j is hard] * rotation_deg)) e_2   # each group has its own boundary
    u_j  = R(s_j * 45 deg) e_2                              # v_j before any rotation
    x | y, j ~ N(mu_j + (2y - 1) * (class_sep / 2) * v_j, Sigma_j),
    Sigma_j = u_j u_j^T + anisotropy^2 u_j^perp u_j^perp^T  (first two dims; I elsewhere)

so the Bayes boundary of group j is the hyperplane through mu_j with normal v_j, and the two
groups' boundaries are perpendicular: a model trained on one group alone is near chance on the
other. The group centres are only ``group_sep`` apart (default 1, against a unit noise scale),
so the groups overlap: without the group as a feature, a shared model must arbitrate the
overlap region between two conflicting boundaries, and the training mix decides how. That is
what makes representation matter at every mix, not only at the extremes. With every difficulty
knob at 0 the groups are exchangeable: the reflection x_1 -> -x_1 maps group 0's distribution
onto group 1's, so swapping the names gives the same learning problem. Difficulty acts on
``hard_group`` only:

* ``rotation_deg`` in [0, 90] turns its class layout (and so its boundary) about mu_j, away from
  the symmetric 45 deg; at large angles one of its classes moves towards the other group.
  With isotropic noise (``anisotropy`` 1, the default) this turns the group's boundary but
  leaves its own task as easy as before: the two groups' boundaries conflict differently, for
  both alike. With ``anisotropy`` a > 1 the noise of each group is a times larger across its
  unrotated class direction u_j than along it, so rotating the hard group's classes moves them
  into its noisier direction: its own Bayes error (the Mahalanobis rule's, the classes being
  Gaussian with a shared covariance) grows from Phi(-class_sep / 2) to
  Phi(-(class_sep / 2) * sqrt(cos^2 t + sin^2 t / a^2)) at rotation t, while the other
  group's task is unchanged (a genuinely harder group);
* ``label_noise`` in [0, 0.5] flips exactly round(label_noise * n) of its labels, chosen at
  random, in pool and val (``label_noise_on: train``) or in every split (``all``);
  at 0.5 its training labels carry no information about x.

* ``spurious`` in [0, 1] (the paper's failure signature, CelebA's blond men): a nuisance
  feature, appended last, is a clean cue of the group (means -2 and +2, unit noise), and in
  pool and val the hard group's labels agree with the cue, that is they are the negative
  class, at this rate instead of ``prevalence``; at test they follow ``prevalence``. A model
  that reads the cue predicts the negative class for the hard group, which the test set
  punishes; a larger share of the hard group brings more of its rare positives but the same
  imbalance within it.

* ``raters`` R with ``rater_noise`` (one rate, or one per group): R simulated raters label
  every sample of every split, each giving its drawn label flipped at its group's rate,
  independently; the raters' majority (a tie: a fair coin) becomes the label, in training and
  at test, and their votes are kept (``Split.votes``) for the rater measures
  (``metrics.raters``). A group whose raters are noisier has noisier labels and a higher
  floor: the error a model that knew the drawn labels would make against the majority.
  ``label_noise`` then flips the majority labels as before.

The same base draws (labels and Gaussian noise) are used whatever the difficulty, so the easy
group's data are identical across difficulty levels (common random numbers). With
``group_feature`` the group code (0/1) is appended as a last feature.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from fairensemble.common.schema import (
    Fraction,
    NonNegativeInt,
    PositiveInt,
    Strict,
    check_hard_group,
)
from fairensemble.common.seeds import rng_for
from fairensemble.data.base import Dataset, Split
from fairensemble.data.raters import count_votes, majority
from fairensemble.data.registry import register

RaterNoise = Annotated[float, Field(ge=0.0, le=0.5)]
CUE_SEP = 4.0  # distance between the groups' means of the spurious cue (unit noise): clean


class SyntheticData(Strict):
    """Two groups, two classes, Gaussian class-conditionals (see the module docstring)."""

    kind: Literal["synthetic"] = "synthetic"
    """The data source (this section's name)."""
    n_features: Annotated[int, Field(ge=2)] = 2
    """Features per sample (the first two carry the classes and groups; the rest is noise)."""
    groups: list[str] = ["M", "F"]
    """The two groups' names."""
    hard_group: str | None = None
    """The group the difficulty knobs act on (default: the last group)."""
    label_noise: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0
    """Share of the hard group's labels flipped at random, 0 to 0.5 (at 0.5 its labels carry no
    information)."""
    label_noise_on: Literal["train", "all"] = "train"
    """Where labels are flipped: pool and val only (``train``), or every split, test included
    (``all``)."""
    rotation_deg: Annotated[float, Field(ge=0.0, le=90.0)] = 0.0
    """Rotation of the hard group's class layout (and so its boundary), in degrees."""
    anisotropy: Annotated[float, Field(ge=1.0)] = 1.0
    """Noise across each group's unrotated class direction, relative to along it; above 1 a rotated
    hard group is a genuinely harder task."""
    group_feature: bool = False
    """Append the group code (0/1) as a last feature."""
    pool_size: PositiveInt = 20000
    """Rows in the pool training sets are drawn from."""
    val_size: NonNegativeInt = 0
    """Rows in the validation split (0: none)."""
    test_size: PositiveInt = 10000
    """Rows in the test split."""
    class_sep: Annotated[float, Field(gt=0.0)] = 3.0
    """Distance between the class means of a group."""
    group_sep: Annotated[float, Field(ge=0.0)] = 1.0
    """Distance between the two groups' centres (1 against unit noise: the groups overlap)."""
    prevalence: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    """Share of the positive class."""
    spurious: Fraction | None = None
    """A spurious correlation tied to the hard group, as blond hair is to sex in CelebA: a
    last feature is a clean cue of the group, and in the pool (and val) the hard group's
    labels agree with it (the negative class) at this rate instead of the base prevalence;
    at test they follow the base prevalence, so the cue no longer predicts them. None: no
    cue."""

    raters: PositiveInt | None = None
    """Simulated raters per sample (none: the labels as drawn): their majority becomes every
    split's label and their votes are kept for the rater measures."""
    rater_noise: RaterNoise | list[RaterNoise] = 0.0
    """Each simulated rater's chance of flipping a sample's label, 0 to 0.5: one rate for both
    groups, or one per group in the order of ``groups``."""
    train_on: Literal["majority", "soft"] = "majority"
    """With raters: members train on the majority label, or ``soft``: cross-entropy against the
    raters' label distribution. Evaluation is against the majority label either way."""

    @model_validator(mode="after")
    def _two_groups(self) -> SyntheticData:
        if len(self.groups) != 2 or len(set(self.groups)) != 2:
            raise ValueError(f"dataset.groups: expected two distinct names, got {self.groups}")
        check_hard_group(self.groups, self.hard_group)
        if isinstance(self.rater_noise, list) and len(self.rater_noise) != 2:
            raise ValueError(f"dataset.rater_noise: expected one rate, or one per group "
                             f"({', '.join(self.groups)}), got {self.rater_noise}")
        if self.raters is None and (any(self.noise_by_group) or self.train_on == "soft"):
            field = "train_on" if self.train_on == "soft" else "rater_noise"
            raise ValueError(f"dataset.{field}: simulates raters; set dataset.raters (how many "
                             "label each sample)")
        return self

    @property
    def noise_by_group(self) -> list[float]:
        """Each group's rater noise, in the order of ``groups``."""
        noise = self.rater_noise
        return [float(x) for x in noise] if isinstance(noise, list) else [float(noise)] * 2

    @property
    def hard(self) -> str:
        """The group whose task difficulty knobs act on."""
        return self.hard_group or self.groups[-1]


def _directions(cfg: SyntheticData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres mu [2, 2], class directions v [2, 2] and unrotated class directions u [2, 2] of
    the two groups (first two dims)."""
    hard = cfg.groups.index(cfg.hard)
    mus, vs, us = [], [], []
    for j, s in enumerate((-1.0, 1.0)):
        angle = math.radians(45.0 + (cfg.rotation_deg if j == hard else 0.0)) * s
        base = math.radians(45.0) * s
        mus.append([s * cfg.group_sep / 2.0, 0.0])
        vs.append([-math.sin(angle), math.cos(angle)])
        us.append([-math.sin(base), math.cos(base)])
    return np.array(mus), np.array(vs), np.array(us)


def bayes_error(cfg: SyntheticData, hard: bool) -> float:
    """A group's error under its own Bayes rule (its labels as drawn, before label noise):
    Phi(-D / 2) with D the Mahalanobis distance between its class means, class_sep * sqrt(
    cos^2 t + sin^2 t / a^2) for rotation t and anisotropy a."""
    from scipy.special import ndtr

    t = math.radians(cfg.rotation_deg) if hard else 0.0
    distance = cfg.class_sep * math.sqrt(math.cos(t) ** 2
                                         + (math.sin(t) / cfg.anisotropy) ** 2)
    return float(ndtr(-distance / 2.0))


def _generate(cfg: SyntheticData, n: int, rng: np.random.Generator, mus, vs, us,
              cued: bool = False) -> Split:
    """``cued``: the hard group's labels follow the spurious cue (pool and val)."""
    g = np.repeat(np.arange(2), [n - n // 2, n // 2])
    prevalence = np.full(n, cfg.prevalence)
    if cued:  # the hard group's cue says "negative": it is right at the rate `spurious`
        prevalence[g == cfg.groups.index(cfg.hard)] = 1.0 - cfg.spurious
    y = (rng.random(n) < prevalence).astype(np.int64)
    eps = rng.standard_normal((n, cfg.n_features))
    X = eps
    if cfg.anisotropy != 1.0:  # stretch the noise across each group's unrotated direction
        u = us[g]
        across = np.stack([-u[:, 1], u[:, 0]], axis=1)
        along = (X[:, :2] * u).sum(axis=1, keepdims=True)
        side = (X[:, :2] * across).sum(axis=1, keepdims=True)
        X[:, :2] = along * u + cfg.anisotropy * side * across
    X[:, :2] += mus[g] + ((2 * y - 1) * cfg.class_sep / 2.0)[:, None] * vs[g]
    if cfg.group_feature:
        X = np.concatenate([X, g[:, None].astype(float)], axis=1)
    if cfg.spurious is not None:  # a clean cue of the group, in every split
        hard = (g == cfg.groups.index(cfg.hard)).astype(float)
        cue = (2.0 * hard - 1.0) * CUE_SEP / 2.0 + rng.standard_normal(n)
        X = np.concatenate([X, cue[:, None]], axis=1)
    return Split(X.astype(np.float32), y, g)


def _flip(split: Split, group: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Flip exactly round(fraction * n_group) labels of ``group``; returns the flipped indices."""
    members = np.flatnonzero(split.g == group)
    n_flip = int(round(fraction * len(members)))
    flipped = rng.choice(members, size=n_flip, replace=False) if n_flip else members[:0]
    split.y[flipped] = 1 - split.y[flipped]
    return flipped


def _rate(split: Split, R: int, noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """R raters label every sample of ``split`` (each flips its label at its group's rate);
    the majority (ties: a fair coin) becomes the label and the votes are kept. Returns how many
    majority labels differ from the drawn ones, per group."""
    n = len(split)
    flip = rng.random((n, R)) < noise[split.g][:, None]
    said = np.where(flip, 1 - split.y[:, None], split.y[:, None])
    votes = count_votes(said, 2)
    elected = majority(votes, rng.random(n))
    wrong = np.bincount(split.g[elected != split.y], minlength=2)
    split.y, split.votes = elected, votes
    return wrong


def load(cfg: SyntheticData, seed: int) -> Dataset:
    """Draw pool / val / test for one grid point. ``seed`` fixes the base draws."""
    mus, vs, us = _directions(cfg)
    base = np.random.SeedSequence(seed)
    s_pool, s_val, s_test, s_noise = base.spawn(4)
    pool = _generate(cfg, cfg.pool_size, np.random.default_rng(s_pool), mus, vs, us,
                     cued=cfg.spurious is not None)
    val = (
        _generate(cfg, cfg.val_size, np.random.default_rng(s_val), mus, vs, us,
                  cued=cfg.spurious is not None)
        if cfg.val_size
        else None
    )
    test = _generate(cfg, cfg.test_size, np.random.default_rng(s_test), mus, vs, us)

    rated = {}
    if cfg.raters is not None:
        for name, split in (("pool", pool), ("val", val), ("test", test)):
            if split is not None:
                rated[name] = _rate(split, cfg.raters, np.array(cfg.noise_by_group),
                                    rng_for(seed, "synthetic", "raters", name))
    hard = cfg.groups.index(cfg.hard)
    noisy = [pool, val] + ([test] if cfg.label_noise_on == "all" else [])
    noise_rng = np.random.default_rng(s_noise)
    flipped = {}
    for name, split in zip(("pool", "val", "test"), noisy):
        if split is not None and cfg.label_noise > 0:
            flipped[name] = len(_flip(split, hard, cfg.label_noise, noise_rng))

    bayes = {name: 1.0 - bayes_error(cfg, name == cfg.hard) for name in cfg.groups}
    raters = {} if cfg.raters is None else {"raters": {
        "source": "synthetic", "columns": [], "counts": True, "scored_on": "majority",
        "train_on": cfg.train_on,
        "rated_rows": sum(len(s) for s in (pool, val, test) if s is not None),
        "raters_per_row": {"mean": float(cfg.raters), "min": cfg.raters, "max": cfg.raters},
        "rater_noise": dict(zip(cfg.groups, cfg.noise_by_group)),
        "majority_wrong": {name: {grp: int(n) for grp, n in zip(cfg.groups, wrong)}
                           for name, wrong in rated.items()}}}
    return Dataset(
        groups=list(cfg.groups),
        classes=["0", "1"],
        pool=pool,
        val=val,
        test=test,
        input_kind="table",
        hard_group=cfg.hard,
        info={
            "source": "synthetic",
            "group_centres": mus.tolist(),
            "class_directions": vs.tolist(),
            "bayes_accuracy_per_group": bayes,
            "labels_flipped": flipped,
            **raters,
        },
    )


register(SyntheticData, load)
