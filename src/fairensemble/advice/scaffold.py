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
value is and why.
"""

from __future__ import annotations

import difflib
import glob
import math
import re
import shlex
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fairensemble.common.errors import DataError
from fairensemble.config import RunConfig, validate
from fairensemble.data.adult import AdultData
from fairensemble.data.base import preview_names
from fairensemble.data.celeba import CelebAData
from fairensemble.data.chexpert import CheXpertData
from fairensemble.data.frame import JOIN, OTHER
from fairensemble.data.images import Rows
from fairensemble.data.sampling import (
    drawable,
    largest_train_size,
    readable_floor,
    stratified_subsample,
)
from fairensemble.data.tabular import TableData
from fairensemble.sweep.plan import moved_indices

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
        if requested not in pool.groups and requested not in firsts:
            raise DataError(f"--ratio-group {requested!r}: expected one of "
                            f"{[*pool.groups, *firsts]}")
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


def close_matches(name: str, choices: list[str]) -> str:
    """``"; did you mean 'a' or 'b'?"`` for names like ``name`` (case-insensitive first)."""
    same = [c for c in choices if c.lower() == name.lower()]
    within = [c for c in choices if name.lower() in c.lower()][:3] if len(name) >= 3 else []
    near = same or within or difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if not near:
        lowered = {c.lower(): c for c in choices}
        near = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), 3)]
    return f"; did you mean {' or '.join(repr(c) for c in near)}?" if near else ""


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


# ----------------------------------------------------------------------------- tables


def propose_table(
    path: str | Path, target: str, group: str | list[str], positive: str | None = None,
    ratio_group: str | None = None, header: bool | None = None,
) -> Proposal:
    """A ``kind: table`` config for a table file (or a folder of Parquet shards). ``group``:
    one column or several (intersectional groups); ``header``: None sniffs it."""
    from fairensemble.data.reader import read_table
    from fairensemble.data.tabular import load_table

    path = Path(path)
    source = str(path)
    columns_of = _group_list(group)
    frame = read_table(path, header=header)
    sniffed_header = header if header is not None else _sniffed_header(path)
    markers = missing_markers(frame)
    na_values = sorted({v for values in markers.values() for v in values})
    if na_values:
        frame = read_table(path, na_values, header=header)
    columns = [str(c) for c in frame.columns]
    require_column(target, columns, "target", source)
    for col in columns_of:
        require_column(col, columns, "group", source)
    if target in columns_of:
        raise DataError(f"{source}: target and group are the same column {target!r}")
    _require_values(frame, target, columns_of, positive, source)
    seed = _data_seed()
    # loaded by the path as given, so the loader's messages name it as the user typed it;
    # the config gets the absolute path, so it runs from any directory
    base = TableData(path=source, target=target, group=columns_of, positive=positive,
                     test_fraction=TEST_FRACTION, val_fraction=VAL_FRACTION, na_values=na_values,
                     header=sniffed_header)
    ds0 = load_table(base, seed, frame)
    counts = _all_counts(ds0)
    _require_ratio_group(ratio_group, counts, columns_of, source, ds0.group_values)
    notes: list[str] = []
    comments: dict[str, str] = {}
    pos, why = _positive(counts, positive, target, comments, notes)
    if markers:
        notes.append("missing values written as " + ", ".join(repr(v) for v in na_values)
                     + " (numeric columns " + preview_names(list(markers)) + " are numbers apart "
                     "from them): read as missing (dataset.na_values)")
    plan = _plan_groups_and_markers(counts, counts.n * TEST_FRACTION, ratio_group)
    spec = base.model_copy(update={"positive": pos, "min_group_size": plan.min_group_size,
                                   "groups": plan.groups})
    ds = ds0 if spec == base else load_table(spec, seed, frame)

    missing = {c: int(frame[c].isna().sum()) for c in frame.columns
               if c not in (target, *columns_of) and frame[c].isna().any()}
    info = ds.info
    shown_groups = " or ".join(repr(c) for c in columns_of)
    facts = [
        f"{path.resolve()}: {info['rows_read']:,} rows read, {info['dropped_missing']:,} dropped "
        f"(missing {target!r} or {shown_groups}), {info['dropped_groups']:,} dropped with their "
        f"group, {info['rows_used']:,} used",
        f"features: numeric {preview_names(info['numeric_features']) or '-'}; categorical "
        f"{preview_names(info['categorical_features']) or '-'}",
    ]
    if sniffed_header is False:
        facts.append(f"no header line: columns are numbered 1..{len(columns)}")
    if missing:
        facts.append("missing feature values: " + ", ".join(
            f"{c} ({n:,})" for c, n in missing.items()))
    dataset = spec.model_dump(mode="json") | {"path": str(path.resolve())}
    dataset = {k: dataset[k] for k in ("kind", "path", "header", "target", "positive", "group",
                                       "groups", "min_group_size", "impute", "test_fraction",
                                       "val_fraction", "na_values")}
    if not na_values:
        dataset.pop("na_values")
    if sniffed_header is not False:
        dataset.pop("header")
    comments.update({
        "dataset.path": "the table (delimited text or Parquet). Every column besides target and "
                        "group is a feature (list them in `features`, or exclude some with "
                        "`drop`)",
        "dataset.header": "line 1 is data, not column names: columns are numbered 1..N",
        "dataset.target": f"the class label ({len(counts.classes)} values in the data"
                          + (")" if pos is not None else f": {why})"),
        "dataset.group": _group_comment(columns_of),
        "dataset.impute": "missing features: median (numeric) or a 'missing' category (text), "
                          "fitted on each training draw; 'drop' removes such rows instead",
        "dataset.test_fraction": f"{TEST_FRACTION:.0%} of the rows form the fixed test split, "
                                 f"stratified by group x class",
        "dataset.val_fraction": f"{VAL_FRACTION:.0%} of the rows form a validation split: "
                                "post-processing fits group-specific thresholds on it",
        "dataset.na_values": "values read as missing (found where they alone made "
                             f"{preview_names(list(markers))} text)",
    })
    if pos is None:
        dataset.pop("positive")
    _group_comments(plan, dataset, comments, notes)
    return _finish(
        kind="table", name=slug(path.name.split(".")[0]), dataset=dataset, ds=ds, counts=counts,
        requested_rg=ratio_group, facts=facts, notes=notes, comments=comments,
        attributes=list(ds.attributes), group_values=list(ds.group_values),
    )


def _positive(counts: Counts, positive: str | None, target: str, comments: dict[str, str],
              notes: list[str]) -> tuple[str | None, str]:
    """The positive class (``--positive``, else ``pick_positive``) and why, noted and
    commented."""
    if positive is not None:
        pos, why = positive, f"{positive!r}, as asked (--positive); every other value is negative"
    else:
        pos, why = pick_positive(counts)
    if pos is not None:
        comments["dataset.positive"] = f"positive class: {why}"
    notes.append(f"target {target!r}: " + (f"positive class {why}" if pos is not None else why))
    return pos, why


def _group_list(group: str | list[str]) -> list[str]:
    columns = [group] if isinstance(group, str) else list(group)
    if not columns:
        raise DataError("--group: expected at least one column")
    if len(set(columns)) != len(columns):
        raise DataError(f"--group: expected distinct columns, got {columns}")
    return columns


def _group_comment(columns: list[str]) -> str:
    if len(columns) == 1:
        return "the demographic attribute whose share of the training set is swept"
    return (f"{len(columns)} attributes: each combination of their values is a group (an "
            f"intersectional group, named '{JOIN.join(columns)}'-wise)")


def _sniffed_header(path: Path) -> bool | None:
    """False when the file's first line is data (a headerless text table), else None."""
    from fairensemble.data.reader import PARQUET, sniff

    if path.is_dir() or path.suffix.lower() in PARQUET:
        return None
    return None if sniff(path)[1] else False


def _plan_groups_and_markers(counts: Counts, expected_test: np.ndarray, keep: str | None
                             ) -> GroupPlan:
    """``plan_groups``, after leaving out groups whose name is a missing-value marker
    ('unknown', '?', ...: a missing attribute, not a group), which ``groups`` then lists
    without them."""
    marked = [i for i, name in enumerate(counts.groups)
              if any(part.strip().lower() in MISSING_MARKERS for part in name.split(JOIN))]
    if not marked or len(marked) >= len(counts.groups) - 1:
        return plan_groups(counts, expected_test, keep=keep)
    kept = [i for i in range(len(counts.groups)) if i not in marked]
    sub = Counts(tuple(counts.groups[i] for i in kept), counts.classes, counts.n[kept])
    plan = plan_groups(sub, expected_test[kept], keep=keep)
    left_out = ", ".join(f"{counts.groups[i]} ({int(counts.n[i].sum()):,} rows)" for i in marked)
    groups = plan.groups if plan.groups is not None else list(sub.groups)
    note = plan.note or ""
    note = (f"{note}; " if note else "") + (f"left out: {left_out}, a missing-value marker "
                                            "rather than a group; delete `groups` to keep them")
    return GroupPlan(plan.min_group_size, groups, plan.merged,
                     {**plan.dropped, **{counts.groups[i]: int(counts.n[i].sum())
                                          for i in marked}}, note)


def propose_adult(root: str | Path | None = None, group: str = "sex",
                  ratio_group: str | None = None) -> Proposal:
    """A ``kind: adult`` config for the bundled UCI Adult files, or those under ``root``."""
    from fairensemble.data.adult import load as load_adult

    root = Path(root).expanduser().resolve() if root is not None else None
    seed = _data_seed()
    base = AdultData(root=None if root is None else str(root), group=group)  # type: ignore[arg-type]
    where = str(root) if root is not None else "the bundled UCI Adult"
    ds0 = load_adult(base, seed)
    counts = _all_counts(ds0)
    _require_ratio_group(ratio_group, counts, group, where, ds0.group_values)
    test0 = Counts.of(ds0.test.y, ds0.test.g, ds0.groups, ds0.classes)
    plan = plan_groups(counts, test0.n, keep=ratio_group)
    spec = base.model_copy(update={"min_group_size": plan.min_group_size, "groups": plan.groups})
    ds = ds0 if spec == base else load_adult(spec, seed)
    dataset = {k: v for k, v in spec.model_dump(mode="json").items()
               if k in ("kind", "root", "group", "groups", "min_group_size", "impute",
                        "val_fraction")}
    if root is None:
        dataset.pop("root")
    notes: list[str] = ["target: income >50K (the positive class), as UCI defines it"]
    comments = {
        "dataset.root": "holds adult.data (the pool) and adult.test (the fixed test split, "
                        "UCI's own); income >50K is the positive class, fnlwgt is not a feature",
        "dataset.group": "the demographic attribute whose share of the training set is swept; "
                         "without `root` the copy of UCI Adult bundled with fairensemble is read",
        "dataset.impute": "missing features ('?' in the files): median / 'missing' category",
        "dataset.val_fraction": f"{VAL_FRACTION:.0%} of the rows form a validation split: "
                                "post-processing fits group-specific thresholds on it",
    }
    _group_comments(plan, dataset, comments, notes)
    facts = [f"{where}: {ds.info['rows_read']:,} rows in adult.data + adult.test, "
             f"{ds.info['rows_used']:,} used"]
    return _finish(
        kind="adult", name=f"adult-{group}", dataset=dataset, ds=ds, counts=counts,
        requested_rg=ratio_group, facts=facts, notes=notes, comments=comments,
    )


def _require_values(frame: pd.DataFrame, target: str, groups: list[str],
                    positive: str | None, source: str) -> None:
    present = frame[target].notna()
    for col in groups:
        present &= frame[col].notna()
    rows = frame[present]
    both = " and ".join(repr(c) for c in [target, *groups])
    for role, cols in (("target", [target]), ("group", groups)):
        values = rows[cols].drop_duplicates()
        if len(values) < 2:
            what = "class" if role == "target" else "group"
            got = f" ({' & '.join(map(str, values.iloc[0]))!r})" if len(values) else ""
            name = repr(cols[0]) if len(cols) == 1 else f"columns {cols}"
            raise DataError(f"{source}: {role} column {name} has one {what}{got} in rows "
                            f"with {both}; expected at least 2")
    n_classes = rows[target].nunique()
    if positive is None and n_classes > MAX_CLASSES:
        raise DataError(f"{source}: target column {target!r} has {n_classes:,} distinct values; "
                        f"expected a class label (at most {MAX_CLASSES}), or pass --positive "
                        f"VALUE to make it binary")


def _require_ratio_group(name: str | None, counts: Counts, columns: str | list[str],
                         source: str, group_values: list[list[str]] | None = None) -> None:
    """``--ratio-group`` names a group, or with several columns a value of the first one."""
    firsts = sorted({v[0] for v in group_values}) if group_values else []
    choices = [*counts.groups, *firsts]
    if name is not None and name not in choices:
        column = columns if isinstance(columns, str) else columns[0]
        raise DataError(f"{source}: --ratio-group {name!r} is not a value of {column!r}"
                        f"{close_matches(name, choices)}"
                        f" (values: {preview_names(choices)})")


def _group_comments(plan: GroupPlan, dataset: dict, comments: dict[str, str],
                    notes: list[str]) -> None:
    if plan.groups is None:
        dataset.pop("groups", None)
    if plan.note:
        key = "dataset.groups" if plan.dropped else "dataset.min_group_size"
        comments[key] = f"groups {plan.note}"
        notes.append(f"groups {plan.note}")
    if not plan.merged:
        comments.setdefault("dataset.min_group_size", "no group merged into 'other' (0)")


# ----------------------------------------------------------------------------- images


def propose_celeba(root: str | Path, target: str = "Blond_Hair") -> Proposal:
    """A ``kind: celeba`` config from CelebA's two label files (no image is opened)."""
    from fairensemble.data import celeba

    root = Path(root).expanduser()
    attr = root / celeba.ATTR_FILE
    if attr.is_file():
        with attr.open() as fh:
            fh.readline()
            names = fh.readline().split()
        if names and target not in names:
            raise DataError(f"{attr}: unknown attribute {target!r} (--target)"
                            f"{close_matches(target, names)} ({len(names)} in all)")
    cfg = CelebAData(root=str(root.resolve()), target=target, image_size=224, num_workers=8,
                     hflip=True)
    table = celeba.read_table(cfg)
    rows = _rows(table, celeba.as_images(cfg), str(root / celeba.ATTR_FILE))
    notes = [f"target {target!r} (-1/1 in {celeba.ATTR_FILE}): {target!r} is the positive class",
             "groups: Male -1 -> female, 1 -> male"]
    facts = [f"{root.resolve()}: {len(table):,} images listed in {celeba.ATTR_FILE}; official "
             f"partition from {celeba.PARTITION_FILE} (train / val / test = pool / val / test)"]
    comments = {
        "dataset.root": "holds img_align_celeba/*.jpg, list_attr_celeba.txt and "
                        "list_eval_partition.txt",
        "dataset.target": "the attribute to predict (1 -> the positive class)",
        "dataset.group": "the attribute that defines the groups (-1 / 1 -> groups[0] / [1])",
        "dataset.hflip": "random horizontal flips while training (faces are symmetric)",
    }
    return _image_proposal(cfg, rows, f"celeba-{slug(target)}", facts, notes, comments)


def propose_chexpert(root: str | Path, target: str = "Lung Opacity") -> Proposal:
    """A ``kind: chexpert`` config from CheXpert's ``train.csv`` / ``valid.csv`` (no image is
    opened)."""
    from fairensemble.data import chexpert

    root = Path(root).expanduser()
    first = root / chexpert.CSV_FILES[0]
    if first.is_file():
        try:
            columns = [str(c) for c in pd.read_csv(first, nrows=0).columns]
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            columns = []
        if columns and target not in columns:
            findings = columns[columns.index("AP/PA") + 1:] if "AP/PA" in columns else columns
            raise DataError(f"{first}: finding {target!r} not found (--target)"
                            f"{close_matches(target, columns)} "
                            f"(findings: {preview_names(findings)})")
    cfg = CheXpertData(root=str(root.resolve()), target=target, image_size=224, num_workers=8)
    table, dropped = chexpert.read_table(cfg)
    rows = _rows(table, chexpert.as_images(cfg), str(first))
    notes = [f"target {target!r}: 1.0 -> positive, 0.0 and blank -> negative, -1.0 (uncertain)"
             f" -> negative (uncertain: zeros)"]
    facts = [f"{root.resolve()}: {len(table) + sum(dropped.values()):,} rows in "
             f"{' + '.join(chexpert.CSV_FILES)}, split by patient into pool / val / test "
             f"({1 - cfg.val_fraction - cfg.test_fraction:.0%} / {cfg.val_fraction:.0%} / "
             f"{cfg.test_fraction:.0%} of patients)"]
    if dropped:
        facts.append("dropped: " + ", ".join(f"{k} ({v:,})" for k, v in dropped.items()))
    comments = {
        "dataset.root": "the published folder: train.csv, valid.csv, train/ and valid/",
        "dataset.target": "the finding to predict",
        "dataset.group": "the column that defines the groups; rows with other values (Unknown)"
                         " are dropped",
        "dataset.uncertain": "what -1.0 (uncertain) becomes: zeros, ones, or drop the row",
        "dataset.frontal_only": "frontal views only (lateral views dropped)",
        "dataset.val_fraction": "shares of patients in val and test (no patient in two splits)",
    }
    return _image_proposal(cfg, rows, f"chexpert-{slug(target)}", facts, notes, comments)


def propose_images(
    path: str | Path, image: str, target: str, group: str | list[str],
    roots: list[str] | None = None, suffix: str | None = None, subject: str | None = None,
    positive: str | None = None, ratio_group: str | None = None, split: str | None = None,
    header: bool | None = None,
) -> Proposal:
    """A ``kind: images`` config for a table with one image per row (no image is decoded;
    a sample is opened to read sizes)."""
    from fairensemble.data.images import ImagesData, layout_rows, search_roots
    from fairensemble.data.reader import read_table

    path = Path(path)
    source = str(path)
    columns_of = _group_list(group)
    frame = read_table(path, header=header)
    columns = [str(c) for c in frame.columns]
    require_column(image, columns, "image", source)
    require_column(target, columns, "target", source)
    for col in columns_of:
        require_column(col, columns, "group", source)
    for role, col in (("subject", subject), ("split", split)):
        if col is not None:
            require_column(col, columns, role, source)
    if target in columns_of:
        raise DataError(f"{source}: target and group are the same column {target!r}")
    _require_values(frame, target, columns_of, positive, source)
    notes: list[str] = []
    if suffix is None:
        suffix = guess_suffix(frame[image], search_roots(list(roots or []), path))
        if suffix:
            notes.append(f"image names have no extension; the files are <name>{suffix} "
                         "(dataset.suffix)")
    base = ImagesData(path=str(path.resolve()), image=image, roots=list(roots or []),
                      suffix=suffix, target=target, positive=positive, group=columns_of,
                      subject=subject, split=split, test_fraction=TEST_FRACTION,
                      val_fraction=VAL_FRACTION, image_size=CPU_IMAGE_SIZE,
                      header=_sniffed_header(path) if header is None else header)
    seed = _data_seed()
    rows0 = layout_rows(frame, base, seed, source, missing_ok=True)
    counts = Counts.of(rows0.y, rows0.g, rows0.groups, rows0.classes)
    _require_ratio_group(ratio_group, counts, columns_of, source, rows0.group_values)
    comments: dict[str, str] = {}
    pos, why = _positive(counts, positive, target, comments, notes)
    expected = (_split_counts(rows0)["test"].n if split is not None
                else counts.n * TEST_FRACTION)
    plan = _plan_groups_and_markers(counts, expected, ratio_group)
    sizes = image_sizes(rows0)
    color = "gray" if sizes["modes"] and all(m in GRAY_MODES for m in sizes["modes"]) else "rgb"
    smallest = min(sizes["min_side"], CPU_IMAGE_SIZE) if sizes["min_side"] else CPU_IMAGE_SIZE
    spec = base.model_copy(update={"positive": pos, "min_group_size": plan.min_group_size,
                                   "groups": plan.groups, "color": color,
                                   "image_size": smallest})
    rows = rows0 if spec == base else layout_rows(frame, spec, seed, source, missing_ok=True)
    missing = rows.found.missing
    facts = [f"{path.resolve()}: {rows.info['rows_read']:,} rows read, "
             f"{rows.info['dropped_missing']:,} dropped (missing {target!r} or a group value), "
             f"{rows.info['dropped_groups']:,} dropped with their group, "
             f"{rows.info['rows_used']:,} used",
             f"images: {len(rows.found.sources) - len(missing):,} found, {len(missing):,} not "
             f"found" + (f" (e.g. {', '.join(repr(rows.found.ids[i]) for i in missing[:3])})"
                         if missing else "")
             + f"; looked in {', '.join(str(r) for r in rows.found.roots)}"
             + (f" with suffix {suffix!r}" if suffix else ""),
             f"image sizes seen ({sizes['opened']} opened): {sizes['text']}"]
    if subject is not None:
        n_subjects = len(np.unique(rows.subjects)) if rows.subjects is not None else 0
        facts.append(f"subjects ({subject!r}): {n_subjects:,}; each subject's rows share one "
                     "split")
    if missing:
        notes.append(f"warning: {len(missing):,} images not found; `run` stops naming them "
                     "until they are there (or their rows are removed)")
    _require_images_in_splits(rows, source, repr(target))
    dataset = spec.model_dump(mode="json")
    order = ["kind", "path", "header", "image", "roots", "suffix", "target", "positive", "group",
             "groups", "min_group_size", "subject", "split", "test_fraction", "val_fraction",
             "image_size", "color", "fit", "hflip", "cache_dir", "num_workers"]
    dataset = {k: dataset[k] for k in order}
    for key, unset in (("header", None), ("positive", None), ("subject", None), ("split", None),
                       ("suffix", None), ("roots", [])):
        if dataset[key] == unset:
            dataset.pop(key)
    comments.update({
        "dataset.path": "the table: one row per image",
        "dataset.header": "line 1 is data, not column names: columns are numbered 1..N",
        "dataset.image": "the column naming each row's image (a path, a file name or id looked "
                         "up under `roots`, or the encoded image itself)",
        "dataset.roots": "folders searched in order for each name, relative to the table's "
                         "folder",
        "dataset.suffix": "appended to names without an image extension",
        "dataset.target": f"the class label ({len(counts.classes)} values in the data"
                          + (")" if pos is not None else f": {why})"),
        "dataset.group": _group_comment(columns_of),
        "dataset.subject": "all rows of one subject land in the same split: no subject is both "
                           "trained and tested on",
        "dataset.split": "this column fixes the splits (train / val / test)",
        "dataset.test_fraction": f"{TEST_FRACTION:.0%} of the rows form the fixed test split, "
                                 "stratified by group x class"
                                 + (", by whole subjects" if subject else ""),
        "dataset.val_fraction": f"{VAL_FRACTION:.0%} of the rows form a validation split: "
                                "post-processing fits group-specific thresholds on it",
        "dataset.image_size": f"images decoded at {spec.image_size} px for a CPU run (224 on a "
                              "GPU)",
        "dataset.color": f"{color}: what the images sampled are"
                         + (" (all grayscale)" if color == "gray" else ""),
        "dataset.fit": "crop: centre-crop to a square before resizing (resize squashes instead)",
        "dataset.hflip": "no random horizontal flips while training (true adds them)",
        "dataset.cache_dir": "decoded images are cached here (null: ~/.cache/fairensemble or "
                             "$FAIRENSEMBLE_CACHE)",
        "dataset.num_workers": "processes decoding images (0: this one)",
    })
    _group_comments(plan, dataset, comments, notes)
    pool = rows.parts["pool"]
    return _finish(
        kind="images", name=slug(path.name.split(".")[0]), dataset=dataset, ds=None,
        counts=counts, requested_rg=ratio_group, facts=facts, notes=notes, comments=comments,
        pool_parts=(rows.y[pool], rows.g[pool]), test=_split_counts(rows)["test"],
        attributes=list(rows.attributes), group_values=list(rows.group_values),
    )


GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def guess_suffix(values: pd.Series, roots: list[Path], tries: int = 20) -> str | None:
    """The extension the image names leave out, when they leave one out: the first names
    without an extension are looked up as ``<name>.*`` under the roots; one extension shared
    by every hit is it."""
    from fairensemble.data.images import IMAGE_EXTENSIONS

    found: set[str] = set()
    names = [v.strip() for v in values.head(500) if isinstance(v, str) and v.strip()
             and Path(v.strip()).suffix.lower() not in IMAGE_EXTENSIONS][:tries]
    for name in names:
        for root in roots:
            try:
                hits = [p.suffix for p in root.glob(f"{glob.escape(name)}.*")
                        if p.suffix.lower() in IMAGE_EXTENSIONS]
            except OSError:  # a name the file system cannot hold is no file name
                hits = []
            if hits:
                found.update(hits)
                break
    return found.pop() if len(found) == 1 else None


def image_sizes(rows: Rows) -> dict[str, Any]:
    """Width x height and mode of up to ``SIZE_SAMPLE`` found images (headers only)."""
    import io

    from PIL import Image

    present = [i for i, s in enumerate(rows.found.sources) if s is not None]
    rng = np.random.default_rng(0)
    chosen = sorted(rng.choice(present, size=min(SIZE_SAMPLE, len(present)), replace=False)) \
        if present else []
    dims, modes = [], set()
    for i in chosen:
        src = rows.found.sources[i]
        try:
            with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
                dims.append(im.size)
                modes.add(im.mode)
        except Exception:  # an undecodable file: `run` names it; here it is only not counted
            continue
    if not dims:
        return {"opened": 0, "text": "none could be opened", "min_side": None, "modes": []}
    common = pd.Series([f"{w}x{h}" for w, h in dims]).value_counts()
    shown = ", ".join(f"{k} ({v})" for k, v in common.head(3).items())
    more = f", {len(common) - 3} other sizes" if len(common) > 3 else ""
    return {"opened": len(dims), "text": f"{shown}{more}; modes {', '.join(sorted(modes))}",
            "min_side": int(min(min(w, h) for w, h in dims)), "modes": sorted(modes)}


def _rows(table: pd.DataFrame, icfg: Any, source: str) -> Rows:
    """An image table's rows, labelled and split as a run will split them (images are looked
    up, not opened; missing ones are counted, not fatal)."""
    from fairensemble.data.images import layout_rows

    return layout_rows(table, icfg, _data_seed(), source, missing_ok=True)


def _split_counts(rows: Rows) -> dict[str, Counts]:
    return {s: Counts.of(rows.y[i], rows.g[i], rows.groups, rows.classes)
            for s, i in rows.parts.items()}


def _require_images_in_splits(rows: Rows, where: str, what: str) -> None:
    """Every group has images in the pool and the test split, and the pool has both classes."""
    split_counts = _split_counts(rows)
    for split in ("pool", "test"):
        for grp, row in zip(rows.groups, split_counts[split].n):
            if row.sum() == 0:
                raise DataError(f"{where}: group {grp!r} has no images in the {split} split")
    if (split_counts["pool"].n.sum(0) == 0).any():
        raise DataError(f"{where}: target {what} has one class in the pool split; expected "
                        "both")


def _image_proposal(
    cfg: CelebAData | CheXpertData, rows: Rows, name: str, facts: list[str],
    notes: list[str], comments: dict[str, str],
) -> Proposal:
    _require_images_in_splits(rows, cfg.root, repr(cfg.target))
    if rows.found.missing:
        notes.append(f"warning: {len(rows.found.missing):,} listed images are not on disk, e.g. "
                     f"{rows.found.ids[rows.found.missing[0]]}; `run` stops on them")
    dumped = cfg.model_dump(mode="json")
    first = ["kind", "root", "target", "group", "groups"]
    dataset = {k: dumped[k] for k in [*first, *(k for k in dumped if k not in first)]}
    comments.update({
        "dataset.image_size": "images resized to 224 px, ResNet's ImageNet size",
        "dataset.cache_dir": "decoded images are cached here (null: ~/.cache/fairensemble or "
                             "$FAIRENSEMBLE_CACHE)",
        "dataset.max_pool": "no cap on the pool (a number subsamples it, stratified by group x "
                            "class)",
        "dataset.max_test": "no cap on val and test (a number caps each, stratified)",
    })
    return _finish(
        kind=cfg.kind, name=name, dataset=dataset, ds=None,
        counts=Counts.of(rows.y, rows.g, rows.groups, rows.classes),
        requested_rg=None, facts=facts, notes=notes, comments=comments,
        pool_parts=(rows.y[rows.parts["pool"]], rows.g[rows.parts["pool"]]),
        test=_split_counts(rows)["test"],
    )


# ----------------------------------------------------------------------------- assembly


def _finish(
    *, kind: str, name: str, dataset: dict, ds: Any, counts: Counts, requested_rg: str | None,
    facts: list[str], notes: list[str], comments: dict[str, str],
    pool_parts: tuple[np.ndarray, np.ndarray] | None = None, test: Counts | None = None,
    attributes: list[str] | None = None, group_values: list[list[str]] | None = None,
) -> Proposal:
    """Ratio group, train size and the run fields around a dataset section."""
    if ds is not None:
        pool_y, pool_g = ds.pool.y, ds.pool.g
        groups, classes = list(ds.groups), list(ds.classes)
        test = Counts.of(ds.test.y, ds.test.g, groups, classes)
    else:
        assert pool_parts is not None and test is not None
        pool_y, pool_g = pool_parts
        groups, classes = list(test.groups), list(test.classes)  # after dropping or merging
    pool = Counts.of(pool_y, pool_g, groups, classes)
    counts = counts.in_class_order(classes)
    rg, rg_why = pick_ratio_group(pool, requested_rg, merged=dataset.get("min_group_size", 0) > 0,
                                  group_values=group_values, attribute=(attributes or [""])[0])
    moved = moved_indices(rg, groups, group_values or [])
    cpu_images = kind == "images"
    ratios = CPU_RATIOS if cpu_images else RATIOS
    size = propose_train_size(pool_y, pool_g, groups, len(classes), moved, ratios)
    image = kind in ("celeba", "chexpert", "images")
    rg_rows = int(sum(pool.n[i].sum() for i in moved))
    others = int(pool.n.sum()) - rg_rows
    size_why = (
        f"the largest size every ratio from 0 to 1 can draw (label_balance keep): at ratio 1 all "
        f"of it comes from {rg!r} ({rg_rows:,} pool rows), at ratio 0 from the other "
        f"groups ({others:,}). Largest: {size.largest:,}"
        + (f", rounded down to {size.value:,}" if size.value != size.largest else "")
        + f", so {size.value + size.step:,} cannot be drawn. Any smaller size can"
    )
    if size.value >= rg_rows * 0.9 and not image:
        size_why += (f"; at ratio 1 a draw takes {size.value / rg_rows:.0%} of "
                     f"the pool of {rg!r}, so replicates there share most of their rows")
    train_size = size.value
    if cpu_images and train_size > CPU_TRAIN_MAX:
        train_size = CPU_TRAIN_MAX
        size_why += (f"; capped at {CPU_TRAIN_MAX:,} so the sweep runs on a CPU in minutes "
                     f"(raise it on a GPU)")
    comments["ratio_group"] = f"the group whose share is swept; {rg_why}"
    comments["train_size"] = size_why
    notes.append(f"ratio group {rg_why}")
    notes.append(f"train size {train_size:,}: largest drawable at every ratio 0..1 is "
                 f"{size.largest:,} (limited by {rg!r} at ratio 1)"
                 if rg_rows <= others else
                 f"train size {train_size:,}: largest drawable at every ratio 0..1 is "
                 f"{size.largest:,} (limited by the other groups at ratio 0)")
    low_test = [f"{g}/{c} ({test.n[i, j]})" for i, g in enumerate(test.groups)
                for j, c in enumerate(test.classes) if test.n[i, j] < MIN_TEST_PER_CLASS]
    if low_test:
        notes.append(f"warning: few test rows for group/class {', '.join(low_test)}: per-group "
                     f"metrics there are noisy")
    if train_size < 100:
        notes.append(f"warning: train size {train_size} is small; the pool of {rg!r} limits it")

    config: dict[str, Any] = {"name": name, "seed": 0, "dataset": dataset, "ratio_group": rg,
                              "ratios": list(ratios), "train_size": train_size,
                              "label_balance": "keep"}
    if cpu_images:
        fields, why = _cpu_image_fields(train_size, len(ratios), dataset["image_size"])
    elif image:
        fields, why = _gpu_fields(kind)
    else:
        fields, why = _mlp_fields(train_size)
    config.update(fields)
    comments.update(why)
    step = ratios[1] - ratios[0]
    comments["ratios"] = f"share of ratio_group in each training set: 0 to 1 in steps of {step:g}"
    comments["label_balance"] = "keep: each group's draw keeps that group's label prevalence"
    members = config["ensemble"]["members"]
    ks = [k for k in (1, 2, 3, 5, 10, 20) if k <= members]
    comments["ensemble"] = (f"{members} members per cell; ensembles of k = "
                            f"{', '.join(map(str, ks))} of them are scored (k follows members); "
                            "every registered metric is computed")
    comments["test_mix"] = "overall metrics weight every group equally"
    gpu_try = kind in ("celeba", "chexpert")
    cpu_size = _cpu_train_size(pool_y, pool_g, groups, len(classes), moved) if gpu_try else None
    validate(config)
    return Proposal(config=config, comments=comments, counts=counts, pool=pool, test=test,
                    notes=notes, facts=facts, train_size=size, image=gpu_try,
                    cpu_train_size=cpu_size)


def _mlp_fields(train_size: int) -> tuple[dict[str, Any], dict[str, str]]:
    """The run fields of a table config (a stacked MLP on the CPU), and why."""
    epochs = mlp_epochs(train_size, 128)
    steps = epochs * math.ceil(train_size / 128)
    fields = {
        "replicates": 3,
        "model": {"name": "mlp", "hidden": [64, 64], "activation": "relu"},
        "train": {"optimizer": "adam", "lr": 0.001, "epochs": epochs, "batch_size": 128},
        "ensemble": {"members": 20, "draws": 50},
        "primary_metric": "balanced_accuracy",
        "test_mix": "balanced",
        "executor": {"kind": "local", "workers": 2},
    }
    why = {
        "replicates": "3 training draws per ratio, for intervals over replicates",
        "model": "a small MLP; all 20 members of a cell train as one stacked program",
        "train": f"{epochs} epochs at batch 128: {steps:,} optimizer steps per member (aiming at "
                 f"about {TARGET_STEPS:,}, within {EPOCHS_RANGE[0]}-{EPOCHS_RANGE[1]} epochs)",
        "primary_metric": "balanced accuracy: not flattered by a common class",
    }
    return fields, why


def _gpu_fields(kind: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The run fields of an image config (ResNet-50 on a GPU), as the shipped configs have
    them, and why."""
    metric = "auc" if kind == "chexpert" else "accuracy"
    fields = {
        "replicates": 1,
        "model": {"name": "resnet50"},
        "train": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0005,
                  "epochs": 20, "batch_size": 128, "schedule": "cosine",
                  "early_stopping": {"patience": 5, "metric": metric}, "device": "auto",
                  "save_models": False},
        "ensemble": {"members": 20, "draws": 50},
        "primary_metric": metric,
        "test_mix": "balanced",
        "executor": {"kind": "serial", "workers": 1},
    }
    why = {
        "replicates": "1: each replicate repeats every GPU training",
        "model": "ResNet-50 at 224 px: a GPU is expected (20 members x 11 ratios; see the README "
                 "for the cost). Try it on a CPU first with the command in the header",
        "train": "SGD, cosine schedule, early stopping on the val split: the setup of the shipped"
                 " configs/celeba.yaml and configs/chexpert.yaml",
        "executor": "one process drives the GPU",
    }
    return fields, why


def _cpu_image_fields(train_size: int, n_mixes: int, image_size: int
                      ) -> tuple[dict[str, Any], dict[str, str]]:
    """The run fields of `init images`: a sweep that runs on a 2-core CPU in minutes, and the
    GPU alternative as a comment."""
    per_epoch = n_mixes * CPU_MEMBERS * train_size
    epochs = min(max(round(CPU_IMAGES / per_epoch), CPU_EPOCHS[0]), CPU_EPOCHS[1])
    fields = {
        "replicates": 1,
        "model": {"name": "cnn", "width": 16},
        "train": {"optimizer": "adam", "lr": 0.002, "epochs": epochs, "batch_size": 64,
                  "device": "auto"},
        "ensemble": {"members": CPU_MEMBERS, "draws": 20},
        "primary_metric": "balanced_accuracy",
        "test_mix": "balanced",
        "executor": {"kind": "local", "workers": 2},
    }
    why = {
        "replicates": "1 replicate: intervals come from a bootstrap over test samples instead",
        "model": (f"a small CNN (16 base channels) on {image_size} px images: {n_mixes} mixes "
                  f"x {CPU_MEMBERS} members train on a 2-core CPU in minutes. On a GPU, the "
                  "paper's setup: --set model.name=resnet50 --set dataset.image_size=224 --set "
                  "ensemble.members=20 --set train.epochs=20 --set "
                  "'ratios=[0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1]' (with model.weights=FILE "
                  "for ImageNet weights, and model.freeze=backbone to train heads over frozen "
                  "features in seconds)"),
        "train": (f"{epochs} epochs at batch 64: about {epochs * per_epoch:,} training images in "
                  f"all, aiming at {CPU_IMAGES:,} (within {CPU_EPOCHS[0]}-{CPU_EPOCHS[1]} epochs)"),
        "primary_metric": "balanced accuracy: not flattered by a common class",
        "analysis": "one replicate: 95 % intervals from a bootstrap over test samples",
    }
    fields["analysis"] = {"ci": "bootstrap"}
    return fields, why


def _cpu_train_size(pool_y: np.ndarray, pool_g: np.ndarray, groups: list[str], n_classes: int,
                    moved: list[int]) -> int:
    """The train size for the CPU try (pool capped at ``CPU_POOL``): the capped pool's counts
    per group x class do not depend on the subsample's seed, so any seed gives them."""
    keep = stratified_subsample(pool_y, pool_g, CPU_POOL, np.random.default_rng(0))
    return propose_train_size(pool_y[keep], pool_g[keep], groups, n_classes, moved,
                              RATIOS).value


def _all_counts(ds: Any) -> Counts:
    splits = [s for s in (ds.pool, ds.val, ds.test) if s is not None]
    y = np.concatenate([s.y for s in splits])
    g = np.concatenate([s.g for s in splits])
    return Counts.of(y, g, list(ds.groups), list(ds.classes))


def _data_seed() -> int:
    """The seed ``fairensemble run`` splits the data with for a config with ``seed: 0``."""
    from fairensemble.sweep.runner import data_seed

    return data_seed(RunConfig(seed=0))


# ----------------------------------------------------------------------------- YAML


def render_yaml(p: Proposal, out_name: str, command: str | None = None) -> str:
    """The proposal as YAML: a header (what was read, the counts, what was inferred, the next
    command), then every field with a comment above it saying why it has its value."""
    head: list[str] = [f"fairensemble run config for {p.name}, written by `fairensemble init`"]
    if command:
        head.append(f"  {command}")
    head += ["", *p.facts, "", "rows by group and class, all splits (before any merge or drop):",
             *(f"  {line}" for line in p.counts.lines("group")), "",
             "the pool, which training sets are drawn from:",
             *(f"  {line}" for line in p.pool.lines("group")), ""]
    head += [*(f"- {n}" for n in p.notes), "", f"Run:  {p.run_command(out_name)}"]
    cpu = p.cpu_command(out_name)
    if cpu:
        head += ["A GPU is expected. Try it on a CPU first (small images and pool, ResNet-18, "
                 "4 members):", f"  {cpu}"]
    lines = [_comment(text, 0) for text in head]
    for key, value in p.config.items():
        if key == "dataset":
            lines.append("dataset:")
            for sub, v in value.items():
                if f"dataset.{sub}" in p.comments:
                    lines.append(_comment(p.comments[f"dataset.{sub}"], 2))
                lines.append(f"  {sub}: {_scalar(v)}")
            continue
        if key in p.comments:
            lines.append(_comment(p.comments[key], 0))
        lines.append(_flow(key, value))
    return "\n".join(lines) + "\n"


def _flow(key: str, value: Any, width: int = 98) -> str:
    """``key: value`` in flow style; a mapping too wide for one line continues on the next
    lines, aligned after its brace (as the shipped configs are written)."""
    line = f"{key}: {_scalar(value)}"
    if len(line) <= width or not isinstance(value, dict):
        return line
    pad = " " * (len(key) + 3)
    items = [f"{_scalar(k)}: {_scalar(v)}" for k, v in value.items()]
    rows, current = [], f"{key}: {{"
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "}")
        if len(current) + len(piece) + 1 > width and current.strip() not in (f"{key}: {{", ""):
            rows.append(current.rstrip())
            current = pad
        current += piece if current.endswith(("{", " ")) else " " + piece
    rows.append(current)
    return "\n".join(rows)


def _comment(text: str, indent: int) -> str:
    pad = " " * indent
    if not text:
        return f"{pad}#"
    if text.startswith(" "):  # preformatted (a table row, a command): never wrapped
        return f"{pad}# {text}".rstrip()
    hang = "  " if text.startswith("- ") else ""  # a bullet's continuation lines line up
    wrapped = textwrap.wrap(text, width=98 - indent, subsequent_indent=hang,
                            break_on_hyphens=False)
    return "\n".join(f"{pad}# {w}" for w in wrapped)


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()
