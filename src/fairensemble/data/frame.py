"""From a table's rows to labelled rows and splits: shared by the ``table`` and ``images``
sources (and so by Adult, CelebA and CheXpert, which are layers over those).

* classes: the ``target`` column's values (``positive`` makes it binary: that value against
  the rest); with raters (``annotations``, one column per rater, or a ``soft_label`` share)
  and no target, the raters' majority label (``data.raters``: ties by a fair coin per row);
  with a target too, the target, the raters only measuring disagreement;
* groups: the ``group`` column's values, or with several columns (``group: [race, sex]``) every
  combination present, named ``"<race> & <sex>"`` (an intersectional group); ``groups`` keeps
  only the listed names (in that order), ``min_group_size`` merges smaller groups into
  ``other``; rows with a missing target or group value are dropped and counted;
* splits (``split_rows``): a ``split`` column fixes them (values train / val / test, or a
  mapping in ``split_values``); otherwise test and val are drawn per stratum (group x class)
  with ``largest_remainder``, whole ``subject``s at a time when a subject column is given (a
  patient, a lesion, a person: all its rows land in one split).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from fairensemble.common.errors import DataError
from fairensemble.common.schema import NonNegativeInt, PositiveInt, Strict, column_name
from fairensemble.common.text import preview_names
from fairensemble.data import raters as R
from fairensemble.data.sampling import largest_remainder
from fairensemble.data.vectors import require_scalar

if TYPE_CHECKING:
    import pandas as pd

OTHER = "other"  # name of the group that rare values are merged into
JOIN = " & "  # between the attribute values of an intersectional group's name
SPLITS = ("train", "val", "test")
# split column values understood without a mapping (compared lower-cased)
SPLIT_WORDS = {"train": "train", "training": "train", "pool": "train",
               "val": "val", "valid": "val", "validation": "val", "dev": "val",
               "test": "test", "testing": "test"}


class LabelledRows(Strict):
    """The fields every row-per-sample source shares: what the label and the groups are, and
    how rows are split into pool / val / test."""

    target: str | None = None
    """The column holding the class label (none: the raters' majority, from ``annotations`` or
    ``soft_label``)."""
    positive: str | int | float | bool | None = None
    """Makes the target (or the raters' labels) binary: this value against every other."""
    group: str | list[str]
    """The column holding the group, or several: every combination of their values is a group (an
    intersectional group, named 'a & b')."""
    groups: list[str] | None = None
    """Keep only these groups, in this order (default: every value)."""
    min_group_size: NonNegativeInt = 0
    """Groups with fewer rows are merged into 'other'."""
    na_values: list[str] = []
    """Cell values that mean missing besides pandas' own (e.g. ['?']); matched exactly."""
    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    """Share of rows (or subjects) in the test split, drawn per group x class."""
    val_fraction: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """Share of rows (or subjects) in the validation split (0: none)."""
    split: str | None = None
    """A column whose values (train / val / test) fix the splits."""
    split_values: dict[str, Literal["train", "val", "test"]] | None = None
    """The split column's own values mapped to train / val / test (default: the usual
    spellings)."""
    subject: str | None = None
    """A column naming the subject (patient, lesion, person): all its rows land in one split."""
    header: bool | None = None
    """Delimited text: whether line 1 names the columns (none: sniffed)."""
    columns: list[str] | None = None
    """Names for a headerless file's columns (default: 1..N)."""
    annotations: list[str] = []
    """Columns holding each rater's label, one per rater, with the target's values (missing
    where that rater did not label the row). The target is their majority (a tie: a fair coin
    per row, the same on every run) unless ``target`` is given: it then wins, and the raters
    only measure disagreement."""
    soft_label: str | None = None
    """A column holding the share of raters who gave the positive class (0 to 1; binary tasks):
    the target is its majority (above 0.5; exactly 0.5: a fair coin per row) unless ``target``
    is given."""
    raters: str | PositiveInt | None = None
    """How many raters each ``soft_label`` row had: a column, or one number for every row (a
    column named by a number is quoted, '5'; none: unknown, counted as many raters:
    disagreement 2 p (1 - p) and no floor)."""
    train_on: Literal["majority", "soft"] = "majority"
    """What members train on when there are raters: the majority label (or the target), or
    ``soft``: cross-entropy against the raters' label distribution (binary tasks). Evaluation
    is against the majority label (or the target) either way."""

    @field_validator("target", "group", "subject", "split", "columns", "annotations",
                     "soft_label", mode="before")
    @classmethod
    def _numbered(cls, v: Any) -> Any:
        return column_name(v)

    @model_validator(mode="after")
    def _labels(self) -> LabelledRows:
        if self.target is None and not self.annotations and self.soft_label is None:
            raise ValueError("dataset.target: expected the column holding the class label (or "
                             "the raters': dataset.annotations, one column per rater, or "
                             "dataset.soft_label)")
        if self.annotations and self.soft_label is not None:
            raise ValueError("dataset.soft_label: goes without dataset.annotations; give each "
                             "rater's column (annotations) or the share of raters who gave the "
                             "positive class (soft_label), not both")
        if self.raters is not None and self.soft_label is None:
            raise ValueError("dataset.raters: counts the raters behind dataset.soft_label; "
                             "annotations count their own")
        if self.train_on == "soft" and not self.rated:
            raise ValueError("dataset.train_on: 'soft' trains on the raters' label distribution;"
                             " give dataset.annotations or dataset.soft_label")
        if self.soft_label is not None and self.target is None and self.positive is not None:
            raise ValueError("dataset.positive: a soft label is the positive class's share "
                             "already; positive applies to a target or to annotations")
        if len(set(self.annotations)) != len(self.annotations):
            raise ValueError(f"dataset.annotations: expected distinct columns, got "
                             f"{self.annotations}")
        roles = [("target", self.target), *(("group", c) for c in self.group_columns),
                 ("subject", self.subject), ("split", self.split)]
        field = "annotations" if self.annotations else "soft_label"
        for col in [*self.annotations, *([self.soft_label] if self.soft_label else [])]:
            for role, name in roles:
                if col == name:
                    raise ValueError(f"dataset.{field}: column {col!r} is also the {role} "
                                     "column; a rater's column holds the raters' labels only")
        return self

    @property
    def rated(self) -> bool:
        """Whether the rows carry raters' votes (annotations or a soft label)."""
        return bool(self.annotations) or self.soft_label is not None

    @field_validator("group")
    @classmethod
    def _group_columns(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list):
            if not v or len(set(v)) != len(v):
                raise ValueError(f"dataset.group: expected one column or distinct columns, "
                                 f"got {v}")
            return v[0] if len(v) == 1 else v
        return v

    @property
    def group_columns(self) -> list[str]:
        return list(self.group) if isinstance(self.group, list) else [self.group]


@dataclass
class Labelled:
    """Codes per row of the whole table: ``y`` (class), ``g`` (group, -1 where dropped) and
    ``keep`` (the row is used); the names; how intersectional groups decompose."""

    y: np.ndarray
    g: np.ndarray
    keep: np.ndarray
    classes: list[str]
    groups: list[str]
    attributes: list[str] = field(default_factory=list)  # the group columns, when several
    group_values: list[list[str]] = field(default_factory=list)  # per group, its values
    info: dict[str, Any] = field(default_factory=dict)
    votes: np.ndarray | None = None  # raters' votes per row, float32 [n, C] (data.raters)
    raters: dict[str, Any] = field(default_factory=dict)  # what the votes are (raters.describe)


def label_rows(frame: pd.DataFrame, cfg: LabelledRows, source: str,
               keep: np.ndarray | None = None) -> Labelled:
    """Class and group codes of every row (``keep``: rows already excluded stay excluded), and
    with raters their votes (``data.raters``)."""
    columns = [str(c) for c in frame.columns]
    roles = [("target", cfg.target), *(("group", c) for c in cfg.group_columns),
             ("subject", cfg.subject), ("split", cfg.split),
             *(("annotation", c) for c in cfg.annotations), ("soft label", cfg.soft_label),
             ("raters", cfg.raters if isinstance(cfg.raters, str) else None)]
    for role, name in roles:
        if name is not None and name not in frame.columns:
            raise DataError(f"{source}: {role} column {name!r} not found "
                            f"(columns: {preview_names(columns)})")
    if cfg.target in cfg.group_columns:
        raise DataError(f"{source}: target and group are the same column {cfg.target!r}")
    for role, name in roles:
        if name is not None:
            require_scalar(frame[name], role, name, source)
    keep = np.ones(len(frame), dtype=bool) if keep is None else keep.copy()
    if cfg.target is not None:
        present = frame[cfg.target].notna().to_numpy().copy()
    elif cfg.annotations:  # the majority needs one vote at least
        present = frame[cfg.annotations].notna().any(axis=1).to_numpy().copy()
    else:
        present = frame[cfg.soft_label].notna().to_numpy().copy()
    for col in cfg.group_columns:
        present &= frame[col].notna().to_numpy()
    info: dict[str, Any] = {"rows_read": len(frame),
                            "dropped_missing": int((keep & ~present).sum())}
    keep &= present
    texts = [as_text(frame[c]) for c in cfg.group_columns]
    name = texts[0] if len(texts) == 1 else texts[0].str.cat(texts[1:], sep=JOIN).replace(
        {group_name([OTHER] * len(texts), joined=True): OTHER})
    groups, g, dropped, merged = _group_codes(name, keep, cfg, source)
    keep &= g >= 0
    info["dropped_groups"], info["merged_into_other"] = dropped, merged
    if not keep.any():
        raise DataError(f"{source}: no rows left after dropping missing values and groups")
    classes, y, votes, counts = _labels(frame, keep, cfg, source)
    out = Labelled(y, g, keep, classes, groups, info=info, votes=votes)
    if votes is not None:
        out.raters = R.describe(cfg, votes, counts, keep)
        info["raters"] = out.raters
    if len(cfg.group_columns) > 1:
        out.attributes = cfg.group_columns
        out.group_values = [group_values_of(n, len(texts)) for n in groups]
    return out


def _labels(frame: pd.DataFrame, keep: np.ndarray, cfg: LabelledRows, source: str
            ) -> tuple[list[str], np.ndarray, np.ndarray | None, bool]:
    """Class names, a class code per row, the raters' votes per row (None without raters) and
    whether they are counts: from the target, or the raters' majority (module docstring)."""
    import pandas as pd

    target = f"target column {cfg.target!r}"
    if not cfg.rated:
        classes, code_of = _classes(frame[cfg.target][keep], cfg.positive, target, source)
        return classes, _codes(frame[cfg.target], keep, code_of, target, source)[0], None, True
    if cfg.target is not None:
        classes, code_of = _classes(frame[cfg.target][keep], cfg.positive, target, source)
        y = _codes(frame[cfg.target], keep, code_of, target, source)[0]
    if cfg.soft_label is not None:
        votes, counts = R.soft_votes(frame, cfg.soft_label, cfg.raters, keep, source)
        if cfg.target is None:
            classes = ["0", "1"]
        elif len(classes) != 2:
            raise DataError(f"{source}: soft label column {cfg.soft_label!r} is the positive "
                            f"class's share in a binary task; {target} has {len(classes)} "
                            f"classes ({preview_names(classes, 5)}); make it binary with "
                            "dataset.positive")
    else:
        if cfg.target is None:
            values = pd.concat([frame[c][keep] for c in cfg.annotations], ignore_index=True)
            classes, code_of = _classes(values.dropna(), cfg.positive,
                                        f"annotation columns {cfg.annotations}", source)
        codes = np.stack([_codes(frame[c], keep, code_of, f"annotation column {c!r}", source,
                                 expected=target if cfg.target else None)[1]
                          for c in cfg.annotations], axis=1)
        votes, counts = R.count_votes(codes, len(classes)), True
    if cfg.target is None:
        y = R.majority(votes, R.tie_coins(len(frame)))
    if cfg.train_on == "soft" and len(classes) != 2:
        raise DataError(f"{source}: dataset.train_on 'soft' trains binary tasks on the raters' "
                        f"share of the positive class; the labels have {len(classes)} classes "
                        f"({preview_names(classes, 5)}); make them binary with dataset.positive "
                        "or train on the majority")
    return classes, y, votes, counts


def group_name(values: Sequence[str], joined: bool = False) -> str:
    """The name of the group holding these attribute values: the value itself for one
    attribute, ``"a & b"`` for an intersectional group, ``other`` (the merged rare groups) when
    every value is ``other``. ``joined``: the plain joined name, without that rule."""
    if len(values) > 1 and not joined and all(v == OTHER for v in values):
        return OTHER
    return JOIN.join(values)


def group_values_of(name: str, n_attributes: int) -> list[str]:
    """The attribute values of a group named by ``group_name``."""
    return [OTHER] * n_attributes if name == OTHER else name.split(JOIN)


def split_rows(
    strata: np.ndarray,
    rng: np.random.Generator,
    test_fraction: float,
    val_fraction: float,
    subjects: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted row indices of (pool, val, test).

    ``fixed`` (train / val / test per row) decides alone, except that ``val_fraction`` carves
    a val split out of the train rows when no row is val (Adult: UCI's own test split, val
    drawn from adult.data). Otherwise the units (rows, or whole subjects: a subject's stratum
    is that of its first row) of each stratum are shuffled and the first ``n_test`` go to
    test, the next ``n_val`` to val: the per-stratum counts are the ``largest_remainder``
    apportionment of round(fraction x units) over the strata (ties at random). Drawn splits
    need ``test_fraction + val_fraction < 1`` (a ``DataError`` naming the fields otherwise)."""
    n = len(strata)
    if fixed is None and test_fraction + val_fraction >= 1.0:
        raise DataError(f"dataset.val_fraction: test_fraction + val_fraction must be < 1, got "
                        f"{test_fraction:g} + {val_fraction:g}")
    if fixed is not None:
        test = np.flatnonzero(fixed == "test")
        val = np.flatnonzero(fixed == "val")
        train = np.flatnonzero(fixed == "train")
        if len(val) == 0 and val_fraction > 0 and len(train):
            sub = None if subjects is None else subjects[train]
            pool_part, val_part, _ = split_rows(strata[train], rng, 0.0, val_fraction, sub)
            return train[pool_part], train[val_part], test
        return train, val, test
    if subjects is None:
        unit_of = np.arange(n)
        unit_stratum = strata
    else:
        import pandas as pd

        unit_of, uniques = pd.factorize(subjects)
        first = np.full(len(uniques), n, dtype=np.int64)
        np.minimum.at(first, unit_of, np.arange(n))
        unit_stratum = strata[first]
    _, inverse, sizes = np.unique(unit_stratum, return_inverse=True, return_counts=True)
    units = len(unit_stratum)
    n_test = largest_remainder(_round(units * test_fraction), sizes, cap=sizes, rng=rng)
    n_val = largest_remainder(_round(units * val_fraction), sizes, cap=sizes - n_test, rng=rng)
    order = np.lexsort((rng.permutation(units), inverse))  # shuffled within stratum
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    rank = np.empty(units, dtype=np.int64)
    rank[order] = np.arange(units) - np.repeat(starts, sizes)
    unit_test = rank < n_test[inverse]
    unit_val = ~unit_test & (rank < (n_test + n_val)[inverse])
    in_test, in_val = unit_test[unit_of], unit_val[unit_of]
    return (np.flatnonzero(~in_test & ~in_val), np.flatnonzero(in_val), np.flatnonzero(in_test))


def draw_splits(frame: pd.DataFrame, cfg: LabelledRows, rows: np.ndarray, strata: np.ndarray,
                rng: np.random.Generator, source: str, fixed: np.ndarray | None = None
                ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The pool / val / test indices (into ``rows``, the table's used rows) and the rows'
    subjects: ``fixed`` (per table row) or the ``split`` column fixes them, else they are
    drawn per stratum (``split_rows``), whole subjects at a time when ``subject`` is given.
    Checking that no subject straddles two splits is the caller's (after any caps)."""
    if fixed is None and cfg.split is not None:
        fixed = fixed_splits(frame[cfg.split], cfg, source)
    subjects = None if cfg.subject is None else as_text(frame[cfg.subject]).to_numpy()[rows]
    pool, val, test = split_rows(strata, rng, cfg.test_fraction, cfg.val_fraction, subjects,
                                 None if fixed is None else fixed[rows])
    return {"pool": pool, "val": val, "test": test}, subjects


def fixed_splits(values: pd.Series, cfg: LabelledRows, source: str) -> np.ndarray:
    """The split column as train / val / test per row; an unknown value is a one-line error."""
    mapping = cfg.split_values
    text = as_text(values)
    if text.isna().any():
        row = int(np.flatnonzero(text.isna().to_numpy())[0])
        raise DataError(f"{source}: split column {cfg.split!r} is empty in data row {row + 1}; "
                        "expected train, val or test")
    if mapping is not None:
        out = text.map(mapping)
    else:
        out = text.str.strip().str.lower().map(SPLIT_WORDS)
    if out.isna().any():
        bad = sorted(set(text[out.isna()]))
        hint = ("map them in dataset.split_values" if mapping is None else
                "dataset.split_values does not map them")
        raise DataError(f"{source}: split column {cfg.split!r} holds {preview_names(bad, 5)}; "
                        f"expected train, val or test ({hint})")
    return out.to_numpy(dtype=object)


def check_subjects(subjects: np.ndarray, parts: dict[str, np.ndarray], source: str,
                   column: str) -> None:
    """No subject in two splits (a fixed split column could put one there)."""
    seen: dict[Any, str] = {}
    for name, idx in parts.items():
        for s in np.unique(subjects[idx]):
            if s in seen and seen[s] != name:
                raise DataError(f"{source}: subject {s!r} (column {column!r}) is in both the "
                                f"{seen[s]} and the {name} split; a subject's rows must share "
                                "one split")
            seen[s] = name


def counts_by_split(parts: dict[str, tuple[np.ndarray, np.ndarray]], groups: list[str],
                    classes: list[str]) -> dict[str, dict[str, dict[str, int]]]:
    """{split: {group: {class: rows}}} for a report's info."""
    return {name: {grp: {cls: int(((g == gi) & (y == ci)).sum())
                         for ci, cls in enumerate(classes)}
                   for gi, grp in enumerate(groups)}
            for name, (y, g) in parts.items()}


def _round(x: float) -> int:
    return int(np.floor(x + 0.5))


# ----------------------------------------------------------------------------- codes


def _group_codes(
    text: pd.Series, keep: np.ndarray, cfg: LabelledRows, source: str
) -> tuple[list[str], np.ndarray, int, dict[str, int]]:
    """Group names in code order and a code per row (-1: row dropped)."""
    kept = text[keep]
    counts = kept.value_counts()
    present = set(counts.index)
    what = (f"column {cfg.group!r}" if isinstance(cfg.group, str)
            else f"columns {cfg.group} (as '{JOIN.join(cfg.group)}')")
    if cfg.groups is not None:
        for name in cfg.groups:
            if name not in present:
                raise DataError(f"{source}: group {name!r} not found in {what}"
                                f" (values: {preview_names(sorted(present))})")
        candidates = list(dict.fromkeys(cfg.groups))
    else:
        candidates = sorted(present)
    small = [v for v in candidates if counts.get(v, 0) < cfg.min_group_size]
    merged = {v: int(counts[v]) for v in small}
    names = [v for v in candidates if v not in small]
    if small and OTHER not in names:
        names.append(OTHER)
    if len(names) < 2:
        raise DataError(f"{source}: {what} leaves fewer than 2 groups ({names}); check groups "
                        f"and min_group_size")
    mapping = {v: names.index(v) for v in names}
    mapping.update({v: names.index(OTHER) for v in small})
    code = text.map(mapping).to_numpy(dtype=np.float64, na_value=np.nan)
    code = np.where(np.isnan(code), -1, code).astype(np.int64)
    dropped = int((keep & (code < 0)).sum())
    code[~keep] = -1
    return names, code, dropped, merged


def _classes(values: pd.Series, positive: Any, what: str, source: str
             ) -> tuple[list[str], dict[str, int]]:
    """Class names in code order and the code of each value's text, from the used rows'
    values of the labels (``what`` names them in messages)."""
    import pandas as pd

    uniques = pd.unique(values.to_numpy())
    try:
        uniques = sorted(uniques)
    except TypeError:
        uniques = sorted(uniques, key=str)
    texts = [text_of(u) for u in uniques]
    if positive is not None:
        hits = [i for i, u in enumerate(uniques) if _same(u, positive)]
        if not hits:
            raise DataError(
                f"{source}: positive value {positive!r} not found in {what}"
                f" (values: {preview_names(texts)})"
            )
        positives = {texts[i] for i in hits}
        rest = [t for t in dict.fromkeys(texts) if t not in positives]
        if not rest:
            raise DataError(
                f"{source}: {what} has one class ({texts[hits[0]]!r})"
                f" once {positive!r} is the positive class; expected at least 2"
            )
        return [rest[0] if len(rest) == 1 else OTHER, texts[hits[0]]], \
            {t: int(t in positives) for t in texts}
    classes = list(dict.fromkeys(texts))
    if len(classes) < 2:
        raise DataError(
            f"{source}: {what} has one class"
            f" ({classes[0] if classes else None!r}); expected at least 2"
        )
    return classes, {t: classes.index(t) for t in classes}


def _codes(column: pd.Series, keep: np.ndarray, code_of: dict[str, int], what: str, source: str,
           expected: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The class code of each row's value: (codes, 0 outside ``keep`` and where missing;
    codes, -1 there). A value with no code (a rater's label the target never takes) is one
    line naming the column and those values."""
    import pandas as pd

    values = column[keep]
    codes, uniques = pd.factorize(values)
    texts = [text_of(u) for u in uniques]
    stray = [t for t in texts if t not in code_of]
    if stray:
        classes = list(dict.fromkeys(code_of))
        raise DataError(f"{source}: {what} holds {preview_names([repr(t) for t in stray], 5)}, "
                        f"not among the classes of the {expected or 'labels'} "
                        f"({preview_names([repr(t) for t in classes], 8)})")
    mapped = np.array([code_of[t] for t in texts] + [-1], dtype=np.int64)[codes]
    with_missing = np.full(len(column), -1, dtype=np.int64)
    with_missing[keep] = mapped
    return np.maximum(with_missing, 0), with_missing


def text_of(value: Any) -> str:
    """A value as a class or group name: 1.0 -> "1", True -> "True", "a" -> "a"."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def as_text(values: pd.Series) -> pd.Series:
    """A column's values as names (``text_of``), missing values as None."""
    import pandas as pd

    codes, uniques = pd.factorize(values)
    names = np.array([text_of(u) for u in uniques] + [None], dtype=object)
    return pd.Series(names[codes], index=values.index, dtype=object)


def _same(value: Any, wanted: Any) -> bool:
    try:
        if value == wanted:
            return True
    except (TypeError, ValueError):
        pass
    return text_of(value) == text_of(wanted)


__all__ = ["JOIN", "OTHER", "Labelled", "LabelledRows", "as_text", "check_subjects", "group_name",
           "group_values_of", "counts_by_split", "draw_splits", "fixed_splits", "label_rows",
           "split_rows", "text_of"]
