"""Proposals for tables: any delimited file or Parquet (``init table``) and the bundled UCI
Adult (``init adult``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fairensemble.advice.scaffold.assemble import _all_counts, _data_seed, _finish
from fairensemble.advice.scaffold.decide import (
    MAX_CLASSES,
    MISSING_MARKERS,
    TEST_FRACTION,
    VAL_FRACTION,
    Counts,
    GroupPlan,
    Proposal,
    missing_markers,
    pick_positive,
    plan_groups,
    require_column,
    slug,
)
from fairensemble.advice.scaffold.raters import (
    check_annotations,
    label_rows,
    label_values,
    label_words,
    rater_notes,
)
from fairensemble.common.errors import DataError
from fairensemble.common.text import preview_names
from fairensemble.data.adult import AdultData
from fairensemble.data.frame import JOIN
from fairensemble.data.tabular import TableData
from fairensemble.data.vectors import words
from fairensemble.sweep.plan import check_ratio_group

# ----------------------------------------------------------------------------- tables


def propose_table(
    path: str | Path, target: str | None, group: str | list[str], positive: str | None = None,
    ratio_group: str | None = None, header: bool | None = None,
    vectors: dict[str, str] | None = None, drop: list[str] | None = None,
    annotations: list[str] | None = None,
) -> Proposal:
    """A ``kind: table`` config for a table file (or a folder of Parquet shards). ``group``:
    one column or several (intersectional groups); ``header``: None sniffs it; ``vectors``:
    name -> a .npy matrix row-aligned with the table (``dataset.vectors``); ``drop``: columns
    that are not features; ``annotations``: one column per rater (``target`` None: the label is
    their majority). List and tensor columns become vector features by themselves."""
    from fairensemble.data.reader import read_table
    from fairensemble.data.tabular import load_table
    from fairensemble.data.vectors import require_scalar

    path = Path(path)
    source = str(path)
    columns_of = _group_list(group)
    vectors = dict(vectors or {})
    drop = list(dict.fromkeys(drop or []))
    for role, col in (("target", target), *(("group", c) for c in columns_of)):
        if col is not None and col in vectors:
            raise DataError(f"--{role} {col!r} names vectors (--vectors {col}=...); a {role} "
                            "column holds one value (a name or a number) per row")
    frame = read_table(path, header=header)
    sniffed_header = header if header is not None else _sniffed_header(path)
    markers = missing_markers(frame)
    na_values = sorted({v for values in markers.values() for v in values})
    if na_values:
        frame = read_table(path, na_values, header=header)
    columns = [str(c) for c in frame.columns]
    annotations = check_annotations(frame, target, columns_of, list(annotations or []), source)
    if target is not None:
        require_column(target, columns, "target", source)
    for col in columns_of:
        require_column(col, columns, "group", source)
    for col in drop:
        require_column(col, columns, "drop", source)
    if target is not None and target in columns_of:
        raise DataError(f"{source}: target and group are the same column {target!r}")
    for role, col in (("target", target), *(("group", c) for c in columns_of),
                      *(("annotation", c) for c in annotations)):
        if col is not None:
            require_scalar(frame[col], role, col, source)
    _require_values(frame, target, columns_of, positive, source, annotations)
    seed = _data_seed()
    # loaded by the path as given, so the loader's messages name it as the user typed it;
    # the config gets the absolute path, so it runs from any directory
    base = TableData(path=source, target=target, group=columns_of, positive=positive,
                     test_fraction=TEST_FRACTION, val_fraction=VAL_FRACTION, na_values=na_values,
                     header=sniffed_header, vectors=vectors, drop=drop, annotations=annotations)
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
               if c not in (target, *columns_of, *drop, *annotations) and frame[c].isna().any()}
    info = ds.info
    shapes = info.get("vector_features", {})
    for name in vectors:
        if info["missing_vectors"].get(name):
            missing[name] = info["missing_vectors"][name]
    shown_groups = " or ".join(repr(c) for c in columns_of)
    facts = [
        f"{path.resolve()}: {info['rows_read']:,} rows read, {info['dropped_missing']:,} dropped "
        f"(missing {repr(target) if target else 'every rater'} or {shown_groups}), "
        f"{info['dropped_groups']:,} dropped with their "
        f"group, {info['rows_used']:,} used",
        f"features: numeric {preview_names(info['numeric_features']) or '-'}; categorical "
        f"{preview_names(info['categorical_features']) or '-'}"
        + (f"; vectors {preview_names(list(shapes))}" if shapes else ""),
    ]
    for name, shape in shapes.items():
        where = f" ({Path(vectors[name]).name}, one row per table row)" if name in vectors else ""
        facts.append(f"{name}{where}: {words(shape)} -> {int(np.prod(shape)):,} features, "
                     "standardised with each training draw's mean and std")
    if sniffed_header is False:
        facts.append(f"no header line: columns are numbered 1..{len(columns)}")
    if missing:
        facts.append("missing feature values: " + ", ".join(
            f"{c} ({n:,})" for c, n in missing.items()))
    dataset = spec.model_dump(mode="json") | {"path": str(path.resolve())}
    dataset["vectors"] = {name: str(Path(file).expanduser().resolve())
                          for name, file in vectors.items()}
    dataset = {k: dataset[k] for k in ("kind", "path", "header", "vectors", "target",
                                       "annotations", "positive", "group", "groups",
                                       "min_group_size", "drop", "impute", "test_fraction",
                                       "val_fraction", "na_values")}
    for key, value in (("na_values", na_values), ("vectors", vectors), ("drop", drop),
                       ("annotations", annotations), ("target", target)):
        if not value:
            dataset.pop(key)
    if sniffed_header is not False:
        dataset.pop("header")
    comments.update({
        "dataset.path": "the table (delimited text, Parquet or Arrow). Every column besides "
                        "target and group is a feature (list them in `features`, or exclude some "
                        "with `drop`)"
                        + ("; list and tensor columns are vectors, a block of features each "
                           "standardised with the training draw's mean and std"
                           if set(shapes) - set(vectors) else ""),
        "dataset.header": "line 1 is data, not column names: columns are numbered 1..N",
        "dataset.target": f"the class label ({len(counts.classes)} values in the data"
                          + (")" if pos is not None else f": {why})"),
        "dataset.group": _group_comment(columns_of),
        "dataset.vectors": "vectors beside the table: each .npy holds one row per table row, in "
                           "the table's order as read; a block of features, standardised with "
                           "each training draw's mean and std",
        "dataset.drop": "columns that are not features (--drop)",
        "dataset.impute": "missing features: median (numeric"
                          + (", and each element of a missing vector" if shapes else "")
                          + ") or a 'missing' category (text), fitted on each training draw; "
                            "'drop' removes such rows instead",
        "dataset.test_fraction": f"{TEST_FRACTION:.0%} of the rows form the fixed test split, "
                                 f"stratified by group x class",
        "dataset.val_fraction": f"{VAL_FRACTION:.0%} of the rows form a validation split: "
                                "post-processing fits group-specific thresholds on it",
        "dataset.na_values": "values read as missing (found where they alone made "
                             f"{preview_names(list(markers))} text)",
    })
    if pos is None:
        dataset.pop("positive")
    rater_notes(ds, annotations, target, comments, facts)
    _group_comments(plan, dataset, comments, notes)
    return _finish(
        kind="table", name=slug(path.name.split(".")[0]), dataset=dataset, ds=ds, counts=counts,
        requested_rg=ratio_group, facts=facts, notes=notes, comments=comments,
        attributes=list(ds.attributes), group_values=list(ds.group_values),
    )


def _positive(counts: Counts, positive: str | None, target: str | None,
              comments: dict[str, str], notes: list[str]) -> tuple[str | None, str]:
    """The positive class (``--positive``, else ``pick_positive``) and why, noted and
    commented."""
    if positive is not None:
        pos, why = positive, f"{positive!r}, as asked (--positive); every other value is negative"
    else:
        pos, why = pick_positive(counts)
    if pos is not None:
        comments["dataset.positive"] = f"positive class: {why}"
    notes.append(f"{label_words(target)}: "
                 + (f"positive class {why}" if pos is not None else why))
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
    from fairensemble.data.reader import ARROW, PARQUET, sniff

    if path.is_dir() or path.suffix.lower() in (*PARQUET, *ARROW):
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


def _require_values(frame: pd.DataFrame, target: str | None, groups: list[str],
                    positive: str | None, source: str, annotations: list[str] = ()) -> None:
    present = label_rows(frame, target, list(annotations))
    for col in groups:
        present &= frame[col].notna()
    rows = frame[present]
    both = " and ".join(repr(c) for c in [target or "a rater", *groups])
    labels = label_values(frame, present, target, list(annotations)).to_frame("label")
    for role, cols in (("target", [target]), ("group", groups)):
        raters = role == "target" and target is None
        values = labels.drop_duplicates() if raters else rows[cols].drop_duplicates()
        if len(values) < 2:
            what = "class" if role == "target" else "group"
            got = f" ({' & '.join(map(str, values.iloc[0]))!r})" if len(values) else ""
            name = (f"annotation columns {annotations}" if raters else
                    f"{role} column {cols[0]!r}" if len(cols) == 1 else
                    f"{role} column columns {cols}")
            raise DataError(f"{source}: {name} has one {what}{got} in rows "
                            f"with {both}; expected at least 2")
    n_classes = labels["label"].nunique()
    if positive is None and n_classes > MAX_CLASSES:
        what = f"target column {target!r}" if target else f"annotation columns {annotations}"
        raise DataError(f"{source}: {what} has {n_classes:,} distinct values; "
                        f"expected a class label (at most {MAX_CLASSES}), or pass --positive "
                        f"VALUE to make it binary")


def _require_ratio_group(name: str | None, counts: Counts, columns: str | list[str],
                         source: str, group_values: list[list[str]] | None = None) -> None:
    """``--ratio-group`` names a group, or with several columns a value of the first one."""
    if name is not None:
        column = columns if isinstance(columns, str) else columns[0]
        check_ratio_group(name, counts.groups, group_values or [], [column],
                          field="--ratio-group", source=source)


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


