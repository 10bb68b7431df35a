"""Propose a ready-to-run config for a user's own data: count it, size the sweep, write YAML.

``propose_table`` / ``propose_adult`` / ``propose_celeba`` / ``propose_chexpert`` read the data
through the same loaders ``fairensemble run`` uses (label files only, for images), so every
count and the pool the train size is computed on are the ones a run will see. The decisions
are pure functions on those counts:

* positive class (``pick_positive``): ``--positive`` if given; otherwise a two-valued target's
  rarer value (ties: the value sorting last); a target with 3..``MAX_CLASSES`` values stays
  multi-class.
* tiny groups (``plan_groups``): a group is tiny when its test split would hold fewer than
  ``MIN_TEST_PER_CLASS`` rows of some class (a per-class rate from n rows has a standard error
  up to 0.5 / sqrt(n), 0.09 at 30). Tiny groups are merged into ``other`` (via
  ``min_group_size``) when together they clear that bar and a row-count threshold separates
  them from the rest; otherwise they are dropped (via ``groups``) when two or more groups
  remain, and kept, with a warning, when not.
* ratio group (``pick_ratio_group``): ``--ratio-group`` if given, else the group with the
  fewest pool rows, not counting the ``other`` bin.
* train size (``propose_train_size``): the largest size for which ``plan_counts`` succeeds at
  every ratio of the sweep and at 0 and 1 (binary search on the real pool), rounded down to
  two significant figures and checked again on shares 0, 0.01, ..., 1.

``render_yaml`` writes the proposal as a commented YAML whose comments say what each inferred
value is and why."""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairensemble.common.errors import DataError
from fairensemble.common.text import close_matches, preview_names
from fairensemble.data.frame import OTHER
from fairensemble.data.sampling import (
    drawable,
    largest_train_size,
    readable_floor,
)
from fairensemble.sweep.plan import check_ratio_group

MIN_TEST_PER_CLASS = 30  # test rows of each class a group needs for its own metrics
MAX_CLASSES = 20  # more distinct target values than this, without --positive: not a label
TEST_FRACTION = 0.3
VAL_FRACTION = 0.15  # a validation split, so group-specific thresholds can be fitted
RATIOS = [round(0.1 * i, 1) for i in range(11)]
TARGET_STEPS = 1000  # optimizer steps per MLP member the epoch count aims at
EPOCHS_RANGE = (20, 200)
# values that stand for "missing" in many tables but not to pandas (which already reads "",
# "NA", "NaN", "null", "None", ...); compared stripped and lower-cased
MISSING_MARKERS = ("?", "-", "--", ".", "missing", "unknown", "none", "n.a.")
CPU_POOL = 2000  # dataset.max_pool of the suggested CPU try of an image config
# `init images` proposes a sweep a 2-core CPU runs in minutes: a small CNN on small images,
# 6 mixes x 5 members, epochs sized so that training sees about CPU_IMAGES images in all
CPU_RATIOS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
CPU_TRAIN_MAX = 1000
CPU_IMAGE_SIZE = 32
CPU_MEMBERS = 5
CPU_IMAGES = 150_000
CPU_EPOCHS = (3, 30)
CPU_TEXT_MAX = 2000  # train size of the proposed text sweep
TEXT_STEPS = 300  # optimizer steps per bag member the epoch count aims at
TEXT_EPOCHS = (5, 30)
SIZE_SAMPLE = 100  # images opened (header only) to report the sizes seen
CPU_TRY = ("model.name=resnet18", "dataset.image_size=32", f"dataset.max_pool={CPU_POOL}",
           f"dataset.max_test={CPU_POOL}", "ensemble.members=4")


# ----------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Counts:
    """Rows per (group, class) of one split: ``n[g, c]``."""

    groups: tuple[str, ...]
    classes: tuple[str, ...]
    n: np.ndarray

    @classmethod
    def of(cls, y: np.ndarray, g: np.ndarray, groups: list[str], classes: list[str]) -> Counts:
        n = np.zeros((len(groups), len(classes)), dtype=np.int64)
        np.add.at(n, (np.asarray(g, np.int64), np.asarray(y, np.int64)), 1)
        return cls(tuple(groups), tuple(classes), n)

    def rows(self, group: str) -> int:
        return int(self.n[self.groups.index(group)].sum())

    def in_class_order(self, classes: list[str] | tuple[str, ...]) -> Counts:
        """The same counts with the columns in ``classes``' order (when they are the same
        classes), so that tables made before and after the positive class was chosen align."""
        if sorted(classes) != sorted(self.classes):
            return self
        order = [self.classes.index(c) for c in classes]
        return Counts(self.groups, tuple(classes), self.n[:, order])

    def lines(self, title: str) -> list[str]:
        """An aligned text table: one line per group with its class counts and total."""
        head = [title, *self.classes, "total"]
        body = [[grp, *(f"{v:,}" for v in row), f"{row.sum():,}"]
                for grp, row in zip(self.groups, self.n)]
        body.append(["all", *(f"{v:,}" for v in self.n.sum(0)), f"{self.n.sum():,}"])
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                          for i, (c, w) in enumerate(zip(r, widths))) for r in [head, *body]]


@dataclass(frozen=True)
class GroupPlan:
    """What to do with tiny groups: merge them (``min_group_size``), drop them (``groups``)."""

    min_group_size: int = 0
    groups: list[str] | None = None
    merged: dict[str, int] = field(default_factory=dict)  # value -> rows
    dropped: dict[str, int] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class TrainSize:
    value: int  # proposed: largest, rounded down
    largest: int  # largest drawable at every checked share
    step: int  # the rounding unit: value + step exceeds the largest


@dataclass
class Proposal:
    """A run config for the user's data and the reasons behind each inferred value."""

    config: dict[str, Any]  # validated by ``validate``
    comments: dict[str, str]  # dotted field -> why it has its value
    counts: Counts  # all kept rows, before merging or dropping groups
    pool: Counts  # the pool a training set is drawn from (final groups)
    test: Counts
    notes: list[str]  # what was inferred, one sentence each
    facts: list[str]  # what was read
    train_size: TrainSize
    image: bool = False
    cpu_train_size: int | None = None
    # files written beside the config, by the suffix after its stem (`init images FOLDER
    # --layout`: the inferred table, the images that do not fit), and the one that
    # dataset.path reads (``scaffold.place`` points it there)
    beside: dict[str, bytes] = field(default_factory=dict)
    table_suffix: str | None = None

    @property
    def name(self) -> str:
        return str(self.config["name"])

    def run_command(self, path: str) -> str:
        return f"fairensemble run {shlex.quote(path)}"

    def cpu_command(self, path: str) -> str | None:
        if not self.image:
            return None
        sets = [*CPU_TRY, f"train_size={self.cpu_train_size}"]
        return " ".join([self.run_command(path), *(f"--set {shlex.quote(s)}" for s in sets),
                         f"--out {shlex.quote(f'runs/{self.name}-cpu')}"])


# ----------------------------------------------------------------------------- pure rules


# two-valued targets that name their positive value: 1, true, yes
INDICATORS = {frozenset({"0", "1"}): "1", frozenset({"false", "true"}): "true",
              frozenset({"no", "yes"}): "yes", frozenset({"n", "y"}): "y"}


def pick_positive(counts: Counts) -> tuple[str | None, str]:
    """The positive class of a two-valued target: the value an indicator calls positive (1,
    true, yes), else the rarer (ties: the one sorting last, the loader's class 1). More than
    two classes: ``None`` (multi-class)."""
    totals = counts.n.sum(0)
    if len(counts.classes) != 2:
        return None, (f"{len(counts.classes)} classes, kept multi-class (no positive class; "
                      f"--positive VALUE makes it binary)")
    named = INDICATORS.get(frozenset(c.lower() for c in counts.classes))
    if named is not None:
        pos = next(c for c in counts.classes if c.lower() == named)
        share = totals[counts.classes.index(pos)] / totals.sum()
        return pos, f"{pos!r}: an indicator's positive value ({share:.0%} of rows)"
    if totals[0] == totals[1]:
        pos = counts.classes[1]
        return pos, f"{pos!r}: both values are equally common, so the one sorting last"
    i = int(np.argmin(totals))
    share = totals[i] / totals.sum()
    return counts.classes[i], f"{counts.classes[i]!r}: the rarer value ({share:.0%} of rows)"


def tiny_groups(expected_test: np.ndarray, groups: tuple[str, ...]) -> list[str]:
    """Groups whose (expected) test split holds fewer than ``MIN_TEST_PER_CLASS`` rows of
    some class; ``expected_test`` is [G, C]."""
    return [grp for grp, row in zip(groups, expected_test) if row.min() < MIN_TEST_PER_CLASS]


def plan_groups(counts: Counts, expected_test: np.ndarray, keep: str | None = None) -> GroupPlan:
    """Merge or drop tiny groups (module docstring); ``keep`` is never merged or dropped."""
    tiny = [g for g in tiny_groups(expected_test, counts.groups) if g != keep]
    if not tiny:
        return GroupPlan()
    rest = [g for g in counts.groups if g not in tiny]
    rows = {g: counts.rows(g) for g in counts.groups}
    idx = [counts.groups.index(g) for g in tiny]
    union = expected_test[idx].sum(0)
    rule = (f"fewer than {MIN_TEST_PER_CLASS} expected test rows of some class, too few for a "
            f"per-group metric")
    listed = ", ".join(f"{g} ({rows[g]:,} rows)" for g in tiny)
    each = "each has" if len(tiny) > 1 else "it has"
    separable = bool(rest) and max(rows[g] for g in tiny) < min(rows[g] for g in rest)
    if union.min() >= MIN_TEST_PER_CLASS and separable and OTHER not in rest:
        threshold = readable_between(max(rows[g] for g in tiny), min(rows[g] for g in rest))
        return GroupPlan(
            min_group_size=threshold,
            merged={g: rows[g] for g in tiny},
            note=f"merged into {OTHER!r}: {listed}; {each} {rule}, together they have at "
                 f"least {int(union.min())} of each class. min_group_size {threshold:,} merges "
                 f"every group below {threshold:,} rows",
        )
    if len(rest) >= 2:
        if union.min() >= MIN_TEST_PER_CLASS:
            why = "no row count separates them from the kept groups (min_group_size)"
        elif len(tiny) == 1:
            why = f"merging it into {OTHER!r} alone would not add rows"
        else:
            why = f"merged into {OTHER!r} together they would still have too few"
        return GroupPlan(
            groups=sorted(rest),
            dropped={g: rows[g] for g in tiny},
            note=f"dropped: {listed}; {each} {rule}, and {why}. Their rows are left out; "
                 f"delete `groups` to keep them",
        )
    return GroupPlan(note=f"kept, though {listed}: {each} {rule}; fewer than two groups would "
                          f"remain otherwise, so expect noisy per-group metrics")


def pick_ratio_group(pool: Counts, requested: str | None, merged: bool = False,
                     group_values: list[list[str]] | None = None, attribute: str = ""
                     ) -> tuple[str, str]:
    """``requested``, or the group with the fewest pool rows (not the ``other`` bin of
    merged groups, when ``merged``: a bin of leftovers is not a group one studies). With
    intersectional groups: the value of the first attribute with the fewest pool rows (its
    combinations move together, the others keep their proportions)."""
    firsts = sorted({v[0] for v in group_values}) if group_values else []
    if requested is not None:
        check_ratio_group(requested, pool.groups, group_values or [], [attribute],
                          field="--ratio-group")
        return requested, f"{requested!r}, as asked (--ratio-group)"
    if firsts:
        sizes = {v: sum(pool.rows(g) for g, vals in zip(pool.groups, group_values)
                        if vals[0] == v) for v in firsts if v != OTHER}
        name = min(sizes, key=lambda v: (sizes[v], v))
        return name, (f"{name!r}: the value of {attribute!r} with the fewest pool rows "
                      f"({sizes[name]:,}); its combinations move together, the others keep "
                      "their proportions")
    sizes = {g: pool.rows(g) for g in pool.groups}
    candidates = [g for g in pool.groups if not (merged and g == OTHER)] or list(pool.groups)
    name = min(candidates, key=lambda g: (sizes[g], g))
    return name, f"{name!r}: the smallest group in the pool ({sizes[name]:,} rows)"


def readable_between(low: int, high: int) -> int:
    """The number with fewest significant figures in (``low``, ``high``]."""
    first = low + 1
    for sig in range(1, len(str(first)) + 1):
        step = 10 ** max(len(str(first)) - sig, 0)
        value = math.ceil(first / step) * step
        if value <= high:
            return value
    return first


def propose_train_size(
    pool_y: np.ndarray, pool_g: np.ndarray, groups: list[str], n_classes: int,
    moved: list[int], ratios: list[float], label_balance: str = "keep",
) -> TrainSize:
    """``largest_train_size`` rounded down to two significant figures, then checked on shares
    0, 0.01, ..., 1 too (stepping down in the rounding unit should one fail)."""
    largest = largest_train_size(pool_y, pool_g, groups, n_classes, moved, ratios,
                                 label_balance)
    if largest == 0:
        names = ", ".join(repr(groups[i]) for i in moved)
        raise DataError(
            f"the pool cannot draw even one sample at every ratio of {names}"
            f" (pool rows per group: {np.bincount(pool_g, minlength=len(groups)).tolist()})")
    value, step = readable_floor(largest)
    fine = sorted({*ratios, *(i / 100 for i in range(101))})
    while value > step and not drawable(value, fine, pool_y, pool_g, groups, n_classes,
                                        moved, label_balance):
        value -= step
    return TrainSize(value, largest, step)


def mlp_epochs(train_size: int, batch_size: int) -> int:
    """Epochs giving about ``TARGET_STEPS`` optimizer steps per member, within EPOCHS_RANGE."""
    per_epoch = math.ceil(train_size / batch_size)
    return min(max(math.ceil(TARGET_STEPS / per_epoch), EPOCHS_RANGE[0]), EPOCHS_RANGE[1])


def require_column(name: str, columns: list[str], role: str, source: str) -> None:
    if name not in columns:
        raise DataError(f"{source}: {role} column {name!r} not found{close_matches(name, columns)}"
                        f" (columns: {preview_names(columns)})")


def missing_markers(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Per column, the marker values (as written) that alone make an otherwise numeric column
    text: good evidence that the table spells "missing" that way."""
    found: dict[str, list[str]] = {}
    for column in frame.columns:
        values = frame[column].dropna()
        if values.empty or not (pd.api.types.is_object_dtype(values)
                                or pd.api.types.is_string_dtype(values)):
            continue
        text = values.astype(str)
        marked = text.str.strip().str.lower().isin(MISSING_MARKERS)
        rest = text[~marked]
        if marked.any() and len(rest) and pd.to_numeric(rest, errors="coerce").notna().all():
            found[str(column)] = sorted(set(text[marked]))
    return found


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "run"


