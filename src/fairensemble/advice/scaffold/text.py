"""The proposal for texts (``init text``): a table with a text column, read through the text
source ``run`` uses, counted, and sized as a sweep of hashed n-gram bags a 2-core CPU runs in
minutes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fairensemble.advice.scaffold.assemble import _all_counts, _data_seed, _finish
from fairensemble.advice.scaffold.decide import (
    TEST_FRACTION,
    VAL_FRACTION,
    Proposal,
    missing_markers,
    require_column,
    slug,
)
from fairensemble.advice.scaffold.raters import check_annotations, label_words, rater_notes
from fairensemble.advice.scaffold.tables import (
    _group_comment,
    _group_comments,
    _group_list,
    _plan_groups_and_markers,
    _positive,
    _require_ratio_group,
    _require_values,
    _sniffed_header,
)
from fairensemble.common.errors import DataError
from fairensemble.common.text import preview_names
from fairensemble.data.reader import read_table
from fairensemble.data.text import TextData, from_frame


def propose_text(
    path: str | Path, text: str, target: str | None, group: str | list[str],
    positive: str | None = None, ratio_group: str | None = None, header: bool | None = None,
    subject: str | None = None, split: str | None = None,
    annotations: list[str] | None = None,
) -> Proposal:
    """A ``kind: text`` config for a table with a text column (one row per sample):
    ``group`` one column or several; ``subject`` keeps a subject's rows in one split;
    ``split`` a column whose values fix the splits; ``header`` None sniffs it;
    ``annotations`` one column per rater (``target`` None: the label is their majority)."""
    path = Path(path)
    source = str(path)
    columns_of = _group_list(group)
    frame = read_table(path, header=header)
    sniffed_header = header if header is not None else _sniffed_header(path)
    markers = {c: v for c, v in missing_markers(frame).items() if c != text}
    na_values = sorted({v for values in markers.values() for v in values})
    if na_values:
        frame = read_table(path, na_values, header=header)
    columns = [str(c) for c in frame.columns]
    for role, col in (("text", text), ("target", target), *(("group", c) for c in columns_of),
                      ("subject", subject), ("split", split)):
        if col is not None:
            require_column(col, columns, role, source)
    annotations = check_annotations(frame, target, columns_of, list(annotations or []), source)
    if text == target or text in columns_of or text in annotations:
        raise DataError(f"{source}: --text {text!r} is also the target, a rater or a group")
    _require_values(frame, target, columns_of, positive, source, annotations)
    base = TextData(path=source, text=text, target=target, group=columns_of, positive=positive,
                    test_fraction=TEST_FRACTION, val_fraction=VAL_FRACTION,
                    na_values=na_values, header=sniffed_header, subject=subject, split=split,
                    annotations=annotations)
    seed = _data_seed()
    ds0 = from_frame(frame, base, seed, source)
    counts = _all_counts(ds0)
    _require_ratio_group(ratio_group, counts, columns_of, source, ds0.group_values)
    notes: list[str] = []
    comments: dict[str, str] = {}
    pos, why = _positive(counts, positive, target, comments, notes)
    plan = _plan_groups_and_markers(counts, counts.n * TEST_FRACTION, ratio_group)
    spec = base.model_copy(update={"positive": pos, "min_group_size": plan.min_group_size,
                                   "groups": plan.groups})
    ds = ds0 if spec == base else from_frame(frame, spec, seed, source)
    info = ds.info
    words = np.array([len(str(t).split()) for t in frame[text].fillna("")])
    long = int((words > spec.max_tokens).sum())
    facts = [
        f"{path.resolve()}: {info['rows_read']:,} rows read, {info['dropped_missing']:,} dropped "
        f"(missing {label_words(target)} or {' or '.join(repr(c) for c in columns_of)}), "
        f"{info['dropped_groups']:,} dropped with their group, {info['rows_used']:,} used",
        f"texts in {text!r}: median {info['words_per_text']['median']:.0f} words, longest "
        f"{info['words_per_text']['max']:,}; {info['empty_texts']:,} empty"
        + (f" ({info['missing_texts']:,} of them missing)" if info["missing_texts"] else ""),
        f"members see each text as up to {spec.max_tokens} hashed word and character n-grams "
        f"({spec.buckets:,} buckets)" + (f"; {long:,} longer texts are cut there" if long else
                                          ""),
    ]
    if sniffed_header is False:
        facts.append(f"no header line: columns are numbered 1..{len(columns)}")
    dataset = spec.model_dump(mode="json") | {"path": str(path.resolve())}
    keep = ("kind", "path", "header", "text", "target", "annotations", "positive", "group",
            "groups", "min_group_size", "subject", "split", "test_fraction", "val_fraction",
            "na_values", "buckets", "word_ngrams", "char_ngrams", "max_tokens")
    dataset = {k: dataset[k] for k in keep}
    for key in ("subject", "split", "positive", "target"):
        if dataset[key] is None:
            dataset.pop(key)
    if not annotations:
        dataset.pop("annotations")
    if not na_values:
        dataset.pop("na_values")
    if sniffed_header is not False:
        dataset.pop("header")
    if split is not None:
        for key in ("test_fraction", "val_fraction"):
            dataset.pop(key)
    comments.update({
        "dataset.path": "the table: one row per text (delimited text, Parquet or Arrow)",
        "dataset.header": "line 1 is data, not column names: columns are numbered 1..N",
        "dataset.text": "the column of texts; an empty or missing text is a bag of nothing",
        "dataset.target": f"the class label ({len(counts.classes)} values in the data"
                          + (")" if pos is not None else f": {why})"),
        "dataset.group": _group_comment(columns_of),
        "dataset.subject": "all rows of a subject land in one split",
        "dataset.split": "its values (train / val / test) fix the splits",
        "dataset.test_fraction": f"{TEST_FRACTION:.0%} of the rows form the fixed test split, "
                                 "stratified by group x class",
        "dataset.val_fraction": f"{VAL_FRACTION:.0%} of the rows form a validation split: "
                                "post-processing fits group-specific thresholds on it",
        "dataset.na_values": "values read as missing in " + preview_names(list(markers)),
        "dataset.buckets": "hash buckets of the n-gram ids: the bag model's embedding rows",
        "dataset.max_tokens": "n-grams kept per text: words first, then word pairs, then "
                              "character n-grams",
    })
    rater_notes(ds, annotations, target, comments, facts)
    _group_comments(plan, dataset, comments, notes)
    return _finish(kind="text", name=slug(path.name.split(".")[0]), dataset=dataset, ds=ds,
                   counts=counts, requested_rg=ratio_group, facts=facts, notes=notes,
                   comments=comments, attributes=list(ds.attributes),
                   group_values=list(ds.group_values))


__all__ = ["propose_text"]
