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

from .config import AdultData, CelebAData, CheXpertData, RunConfig, TableData, validate
from .data.base import DataError, preview_names
from .data.sampling import SamplingError, mix_shares, plan_counts

MIN_TEST_PER_CLASS = 30  # test rows of each class a group needs for its own metrics
MAX_CLASSES = 20  # more distinct target values than this, without --positive: not a label
TEST_FRACTION = 0.3
VAL_FRACTION = 0.15  # a validation split, so group-specific thresholds can be fitted
RATIOS = [round(0.1 * i, 1) for i in range(11)]
TARGET_STEPS = 1000  # optimizer steps per MLP member the epoch count aims at
EPOCHS_RANGE = (20, 200)
OTHER = "other"  # the loader's name for merged groups (data/tabular.py)
# values that stand for "missing" in many tables but not to pandas (which already reads "",
# "NA", "NaN", "null", "None", ...); compared stripped and lower-cased
MISSING_MARKERS = ("?", "-", "--", ".", "missing", "unknown", "none", "n.a.")
CPU_POOL = 2000  # dataset.max_pool of the suggested CPU try of an image config
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


def pick_positive(counts: Counts) -> tuple[str | None, str]:
    """The positive class of a two-valued target: the rarer (ties: the one sorting last, the
    loader's class 1). More than two classes: ``None`` (multi-class)."""
    totals = counts.n.sum(0)
    if len(counts.classes) != 2:
        return None, (f"{len(counts.classes)} classes, kept multi-class (no positive class; "
                      f"--positive VALUE makes it binary)")
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


def pick_ratio_group(pool: Counts, requested: str | None, merged: bool = False
                     ) -> tuple[str, str]:
    """``requested``, or the group with the fewest pool rows (not the ``other`` bin of
    merged groups, when ``merged``: a bin of leftovers is not a group one studies)."""
    if requested is not None:
        if requested not in pool.groups:
            raise DataError(f"--ratio-group {requested!r}: expected one of {list(pool.groups)}")
        return requested, f"{requested!r}, as asked (--ratio-group)"
    sizes = {g: pool.rows(g) for g in pool.groups}
    candidates = [g for g in pool.groups if not (merged and g == OTHER)] or list(pool.groups)
    name = min(candidates, key=lambda g: (sizes[g], g))
    return name, f"{name!r}: the smallest group in the pool ({sizes[name]:,} rows)"


def drawable(
    train_size: int, shares: list[float], pool_y: np.ndarray, pool_g: np.ndarray,
    groups: list[str], n_classes: int, ratio_group: int, label_balance: str = "keep",
) -> bool:
    """Whether ``plan_counts`` can allocate ``train_size`` at every share of ``ratio_group``."""
    for share in shares:
        mix = mix_shares(share, ratio_group, pool_g, len(groups))
        try:
            plan_counts(train_size, mix, pool_y, pool_g, groups, n_classes, label_balance)
        except SamplingError:
            return False
    return True


def largest_train_size(
    pool_y: np.ndarray, pool_g: np.ndarray, groups: list[str], n_classes: int,
    ratio_group: int, ratios: list[float], label_balance: str = "keep",
) -> int:
    """The largest size ``drawable`` at every ratio in ``ratios`` plus 0 and 1 (binary search
    on 0..pool size; 0 when no size is)."""
    shares = sorted({0.0, 1.0, *ratios})
    lo, hi = 0, len(pool_y)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if drawable(mid, shares, pool_y, pool_g, groups, n_classes, ratio_group, label_balance):
            lo = mid
        else:
            hi = mid - 1
    return lo


def readable_floor(n: int) -> tuple[int, int]:
    """``n`` rounded down to two significant figures, and the unit of the second figure."""
    step = 10 ** max(len(str(n)) - 2, 0)
    return n // step * step, step


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
    ratio_group: int, ratios: list[float], label_balance: str = "keep",
) -> TrainSize:
    """``largest_train_size`` rounded down to two significant figures, then checked on shares
    0, 0.01, ..., 1 too (stepping down in the rounding unit should one fail)."""
    largest = largest_train_size(pool_y, pool_g, groups, n_classes, ratio_group, ratios,
                                 label_balance)
    if largest == 0:
        raise DataError(
            f"the pool cannot draw even one sample at every ratio of {groups[ratio_group]!r}"
            f" (pool rows per group: {np.bincount(pool_g, minlength=len(groups)).tolist()})")
    value, step = readable_floor(largest)
    fine = sorted({*ratios, *(i / 100 for i in range(101))})
    while value > step and not drawable(value, fine, pool_y, pool_g, groups, n_classes,
                                        ratio_group, label_balance):
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
    path: str | Path, target: str, group: str, positive: str | None = None,
    ratio_group: str | None = None,
) -> Proposal:
    """A ``kind: table`` config for a CSV or Parquet file."""
    from .data.tabular import load_table, read_table

    path = Path(path)
    source = str(path)
    frame = read_table(path)
    markers = missing_markers(frame)
    na_values = sorted({v for values in markers.values() for v in values})
    if na_values:
        frame = read_table(path, na_values)
    columns = [str(c) for c in frame.columns]
    require_column(target, columns, "target", source)
    require_column(group, columns, "group", source)
    if target == group:
        raise DataError(f"{source}: target and group are the same column {target!r}")
    _require_values(frame, target, group, positive, source)
    seed = _data_seed()
    # loaded by the path as given, so the loader's messages name it as the user typed it;
    # the config gets the absolute path, so it runs from any directory
    base = TableData(path=source, target=target, group=group, positive=positive,
                     test_fraction=TEST_FRACTION, val_fraction=VAL_FRACTION, na_values=na_values)
    ds0 = load_table(base, seed, frame)
    counts = _all_counts(ds0)
    _require_ratio_group(ratio_group, counts, group, source)
    notes: list[str] = []
    comments: dict[str, str] = {}
    if positive is not None:
        pos, why = positive, f"{positive!r}, as asked (--positive); every other value is negative"
    else:
        pos, why = pick_positive(counts)
    if pos is not None:
        comments["dataset.positive"] = f"positive class: {why}"
    notes.append(f"target {target!r}: " + (f"positive class {why}" if pos is not None else why))
    if markers:
        notes.append("missing values written as " + ", ".join(repr(v) for v in na_values)
                     + " (numeric columns " + preview_names(list(markers)) + " are numbers apart "
                     "from them): read as missing (dataset.na_values)")
    plan = plan_groups(counts, counts.n * TEST_FRACTION, keep=ratio_group)
    spec = base.model_copy(update={"positive": pos, "min_group_size": plan.min_group_size,
                                   "groups": plan.groups})
    ds = ds0 if spec == base else load_table(spec, seed, frame)

    missing = {c: int(frame[c].isna().sum()) for c in frame.columns
               if c not in (target, group) and frame[c].isna().any()}
    info = ds.info
    facts = [
        f"{path.resolve()}: {info['rows_read']:,} rows read, {info['dropped_missing']:,} dropped "
        f"(missing {target!r} or {group!r}), {info['dropped_groups']:,} dropped with their "
        f"group, {info['rows_used']:,} used",
        f"features: numeric {preview_names(info['numeric_features']) or '-'}; categorical "
        f"{preview_names(info['categorical_features']) or '-'}",
    ]
    if missing:
        facts.append("missing feature values: " + ", ".join(
            f"{c} ({n:,})" for c, n in missing.items()))
    dataset = spec.model_dump(mode="json") | {"path": str(path.resolve())}
    dataset = {k: dataset[k] for k in ("kind", "path", "target", "positive", "group", "groups",
                                       "min_group_size", "impute", "test_fraction",
                                       "val_fraction", "na_values")}
    if not na_values:
        dataset.pop("na_values")
    comments.update({
        "dataset.path": "the table; CSV (optionally compressed) or Parquet. Every column besides "
                        "target and group is a feature (list them in `features`, or exclude "
                        "some with `drop`)",
        "dataset.target": f"the class label ({len(counts.classes)} values in the data"
                          + (")" if pos is not None else f": {why})"),
        "dataset.group": "the demographic attribute whose share of the training set is swept",
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
    )


def propose_adult(root: str | Path | None = None, group: str = "sex",
                  ratio_group: str | None = None) -> Proposal:
    """A ``kind: adult`` config for the bundled UCI Adult files, or those under ``root``."""
    from .data.adult import load as load_adult

    root = Path(root).expanduser().resolve() if root is not None else None
    seed = _data_seed()
    base = AdultData(root=None if root is None else str(root), group=group)  # type: ignore[arg-type]
    where = str(root) if root is not None else "the bundled UCI Adult"
    ds0 = load_adult(base, seed)
    counts = _all_counts(ds0)
    _require_ratio_group(ratio_group, counts, group, where)
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


def _require_values(frame: pd.DataFrame, target: str, group: str, positive: str | None,
                    source: str) -> None:
    rows = frame[frame[target].notna() & frame[group].notna()]
    for role, col in (("target", target), ("group", group)):
        values = pd.unique(rows[col])
        if len(values) < 2:
            what = "class" if role == "target" else "group"
            got = f" ({str(values[0])!r})" if len(values) else ""
            raise DataError(f"{source}: {role} column {col!r} has one {what}{got} in rows "
                            f"with both {target!r} and {group!r}; expected at least 2")
    n_classes = rows[target].nunique()
    if positive is None and n_classes > MAX_CLASSES:
        raise DataError(f"{source}: target column {target!r} has {n_classes:,} distinct values; "
                        f"expected a class label (at most {MAX_CLASSES}), or pass --positive "
                        f"VALUE to make it binary")


def _require_ratio_group(name: str | None, counts: Counts, column: str, source: str) -> None:
    if name is not None and name not in counts.groups:
        raise DataError(f"{source}: --ratio-group {name!r} is not a value of {column!r}"
                        f"{close_matches(name, list(counts.groups))}"
                        f" (values: {preview_names(list(counts.groups))})")


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
    from .data import celeba

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
    return _image_proposal(cfg, table, f"celeba-{slug(target)}", facts, notes, comments)


def propose_chexpert(root: str | Path, target: str = "Lung Opacity") -> Proposal:
    """A ``kind: chexpert`` config from CheXpert's ``train.csv`` / ``valid.csv`` (no image is
    opened)."""
    from .data import chexpert

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
    table, dropped = chexpert.read_table(cfg, _data_seed())
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
    return _image_proposal(cfg, table, f"chexpert-{slug(target)}", facts, notes, comments)


def _image_proposal(
    cfg: CelebAData | CheXpertData, table: pd.DataFrame, name: str, facts: list[str],
    notes: list[str], comments: dict[str, str],
) -> Proposal:
    groups, classes = list(cfg.group_names), [f"no {cfg.target}", cfg.target]
    parts = {s: table[table["split"] == s] for s in ("pool", "val", "test")}
    split_counts = {s: Counts.of(p["y"].to_numpy(), p["g"].to_numpy(), groups, classes)
                    for s, p in parts.items()}
    pool = split_counts["pool"]
    for split, c in split_counts.items():
        for grp, row in zip(groups, c.n):
            if row.sum() == 0:
                raise DataError(f"{cfg.root}: group {grp!r} ({cfg.group}) has no images in the "
                                f"{split} split")
    if (pool.n.sum(0) == 0).any():
        raise DataError(f"{cfg.root}: target {cfg.target!r} has one class in the pool split;"
                        f" expected both")
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
        counts=Counts.of(table["y"].to_numpy(), table["g"].to_numpy(), groups, classes),
        requested_rg=None, facts=facts, notes=notes, comments=comments,
        pool_parts=(parts["pool"]["y"].to_numpy(), parts["pool"]["g"].to_numpy()),
        test=split_counts["test"],
    )


# ----------------------------------------------------------------------------- assembly


def _finish(
    *, kind: str, name: str, dataset: dict, ds: Any, counts: Counts, requested_rg: str | None,
    facts: list[str], notes: list[str], comments: dict[str, str],
    pool_parts: tuple[np.ndarray, np.ndarray] | None = None, test: Counts | None = None,
) -> Proposal:
    """Ratio group, train size and the run fields around a dataset section."""
    if ds is not None:
        pool_y, pool_g = ds.pool.y, ds.pool.g
        groups, classes = list(ds.groups), list(ds.classes)
        test = Counts.of(ds.test.y, ds.test.g, groups, classes)
    else:
        assert pool_parts is not None and test is not None
        pool_y, pool_g = pool_parts
        groups, classes = list(counts.groups), list(counts.classes)
    pool = Counts.of(pool_y, pool_g, groups, classes)
    rg, rg_why = pick_ratio_group(pool, requested_rg, merged=dataset.get("min_group_size", 0) > 0)
    rgi = groups.index(rg)
    size = propose_train_size(pool_y, pool_g, groups, len(classes), rgi, RATIOS)
    image = kind in ("celeba", "chexpert")
    others = pool.n.sum() - pool.rows(rg)
    size_why = (
        f"the largest size every ratio from 0 to 1 can draw (label_balance keep): at ratio 1 all "
        f"of it comes from {rg!r} ({pool.rows(rg):,} pool rows), at ratio 0 from the other "
        f"groups ({others:,}). Largest: {size.largest:,}"
        + (f", rounded down to {size.value:,}" if size.value != size.largest else "")
        + f", so {size.value + size.step:,} cannot be drawn. Any smaller size can"
    )
    if size.value >= pool.rows(rg) * 0.9 and not image:
        size_why += (f"; at ratio 1 a draw takes {size.value / pool.rows(rg):.0%} of "
                     f"the pool of {rg!r}, so replicates there share most of their rows")
    comments["ratio_group"] = f"the group whose share is swept; {rg_why}"
    comments["train_size"] = size_why
    notes.append(f"ratio group {rg_why}")
    notes.append(f"train size {size.value:,}: largest drawable at every ratio 0..1 is "
                 f"{size.largest:,} (limited by {rg!r} at ratio 1)"
                 if pool.rows(rg) <= others else
                 f"train size {size.value:,}: largest drawable at every ratio 0..1 is "
                 f"{size.largest:,} (limited by the other groups at ratio 0)")
    low_test = [f"{g}/{c} ({test.n[i, j]})" for i, g in enumerate(test.groups)
                for j, c in enumerate(test.classes) if test.n[i, j] < MIN_TEST_PER_CLASS]
    if low_test:
        notes.append(f"warning: few test rows for group/class {', '.join(low_test)}: per-group "
                     f"metrics there are noisy")
    if size.value < 100:
        notes.append(f"warning: train size {size.value} is small; the pool of {rg!r} limits it")

    config: dict[str, Any] = {"name": name, "seed": 0, "dataset": dataset, "ratio_group": rg,
                              "ratios": list(RATIOS), "train_size": size.value,
                              "label_balance": "keep"}
    fields, why = _gpu_fields(kind) if image else _mlp_fields(size.value)
    config.update(fields)
    comments.update(why)
    comments["ratios"] = "share of ratio_group in each training set: 0 to 1 in steps of 0.1"
    comments["label_balance"] = "keep: each group's draw keeps that group's label prevalence"
    comments["ensemble"] = ("20 members per cell; ensembles of k = 1, 2, 3, 5, 10, 20 of them "
                            "are scored (k follows members); every registered metric is computed")
    comments["test_mix"] = "overall metrics weight every group equally"
    cpu_size = _cpu_train_size(pool_y, pool_g, groups, len(classes), rgi) if image else None
    validate(config)
    return Proposal(config=config, comments=comments, counts=counts, pool=pool, test=test,
                    notes=notes, facts=facts, train_size=size, image=image,
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


def _cpu_train_size(pool_y: np.ndarray, pool_g: np.ndarray, groups: list[str], n_classes: int,
                    rgi: int) -> int:
    """The train size for the CPU try (pool capped at ``CPU_POOL``): the capped pool's counts
    per group x class do not depend on the subsample's seed, so any seed gives them."""
    from .data.images import stratified_subsample

    keep = stratified_subsample(pool_y, pool_g, CPU_POOL, np.random.default_rng(0))
    return propose_train_size(pool_y[keep], pool_g[keep], groups, n_classes, rgi, RATIOS).value


def _all_counts(ds: Any) -> Counts:
    splits = [s for s in (ds.pool, ds.val, ds.test) if s is not None]
    y = np.concatenate([s.y for s in splits])
    g = np.concatenate([s.g for s in splits])
    return Counts.of(y, g, list(ds.groups), list(ds.classes))


def _data_seed() -> int:
    """The seed ``fairensemble run`` splits the data with for a config with ``seed: 0``."""
    from .sweep import data_seed

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
