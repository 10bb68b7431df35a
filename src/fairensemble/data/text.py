"""Texts as a data source (``dataset.kind: text``): a table with a text column, one row per
sample. Labels, groups (one column or several), the ``split`` column, ``subject``-level splits
and raters work as for tables (``frame.py``).

The members see each text as a bag of hashed word and character n-grams (``tokens.py``) when
``model.name`` is ``bag`` (the built-in model, trained as a stacked ensemble), or as an
embedding a user's encoder computes once (``model.name: path/to/file.py:function`` with
``model.freeze: backbone``: the function maps a list of strings to a tensor [n, d], and the
members are heads over the cached embeddings). ``Split.X`` holds the texts themselves (an
object array of ``str``); a missing text is the empty text, counted in ``info``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from fairensemble.common.errors import DataError
from fairensemble.common.schema import PositiveInt, Strict, column_name
from fairensemble.common.text import preview_names
from fairensemble.data.base import Dataset, Split
from fairensemble.data.frame import LabelledRows, check_subjects, draw_splits, label_rows
from fairensemble.data.reader import read_table
from fairensemble.data.registry import register
from fairensemble.data.tokens import HashedNgrams

if TYPE_CHECKING:
    import pandas as pd


class TokenOptions(Strict):
    """How texts become hashed n-gram bags (every text source has these)."""

    buckets: Annotated[int, Field(ge=2)] = 1 << 15
    """Hash buckets of the n-gram ids (the bag model's embedding rows)."""
    word_ngrams: PositiveInt = 2
    """Word n-grams up to this length are features (1: words only)."""
    char_ngrams: list[PositiveInt] = [3, 4]
    """Lengths of each word's character n-grams that are features (none: words only)."""
    max_tokens: PositiveInt = 256
    """Features kept per text: a longer text is cut there."""

    def tokenizer(self) -> HashedNgrams:
        return HashedNgrams(self.buckets, self.word_ngrams, tuple(self.char_ngrams),
                            self.max_tokens)


class TextData(LabelledRows, TokenOptions):
    """A table with a text column (see the module docstring)."""

    kind: Literal["text"] = "text"
    """The data source (this section's name)."""
    path: str
    """A table file (CSV, TSV, text, Parquet; optionally compressed) or a folder of Parquet
    shards."""
    text: str
    """The column holding each row's text."""

    @field_validator("text", mode="before")
    @classmethod
    def _numbered(cls, v: Any) -> Any:
        return column_name(v)


def load(cfg: TextData, seed: int) -> Dataset:
    """Read the table, check its text column, split it into pool / val / test."""
    frame = read_table(cfg.path, cfg.na_values, cfg.header, cfg.columns)
    return from_frame(frame, cfg, seed, source=str(Path(cfg.path).expanduser()))


def texts_of(values: pd.Series, column: str, source: str) -> tuple[np.ndarray, int]:
    """A column's values as texts (object array of str) and how many were missing (made
    empty). A column of numbers is not text: one line naming it."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        example = values.dropna().iloc[0] if values.notna().any() else None
        raise DataError(f"{source}: text column {column!r} holds numbers (e.g. {example!r}); "
                        "expected text (dataset.text names the column of texts)")
    missing = values.isna().to_numpy()
    texts = values.astype(object).where(~missing, "").to_numpy(dtype=object)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise DataError(f"{source}: text column {column!r} holds {type(texts[bad[0]]).__name__}"
                        f" values (data row {bad[0] + 1}); expected text")
    return texts, int(missing.sum())


def from_frame(frame: pd.DataFrame, cfg: TextData, seed: int, source: str,
               info: dict[str, Any] | None = None) -> Dataset:
    """Rows -> labelled, split texts (the built-in scenarios call this with the table they
    make)."""
    frame = frame.reset_index(drop=True)
    column = cfg.text
    if column not in frame.columns:
        raise DataError(f"{source}: text column {column!r} not found "
                        f"(columns: {preview_names([str(c) for c in frame.columns])})")
    labels = {cfg.target, cfg.soft_label, *cfg.annotations} - {None}
    if column in labels or column in cfg.group_columns:
        raise DataError(f"{source}: text column {column!r} is also a label or a group")
    texts, missing = texts_of(frame[column], column, source)
    labelled = label_rows(frame, cfg, source)
    rows = np.flatnonzero(labelled.keep)
    y, g = labelled.y[rows], labelled.g[rows]
    parts, subjects = draw_splits(frame, cfg, rows, g * len(labelled.classes) + y,
                                  np.random.default_rng(seed), source)
    if subjects is not None:
        check_subjects(subjects, parts, source, str(cfg.subject))
    if len(parts["pool"]) == 0 or len(parts["test"]) == 0:
        raise DataError(f"{source}: too few rows ({len(rows)}) for a pool and a test split")
    used = texts[rows]
    votes = None if labelled.votes is None else labelled.votes[rows]
    lengths = np.array([len(t.split()) for t in used])

    def split(idx: np.ndarray) -> Split:
        return Split(used[idx], y[idx], g[idx], None if votes is None else votes[idx])

    return Dataset(
        groups=labelled.groups,
        classes=labelled.classes,
        pool=split(parts["pool"]),
        test=split(parts["test"]),
        val=split(parts["val"]) if len(parts["val"]) else None,
        prepare=cfg.tokenizer(),
        input_kind="text",
        vocab=cfg.buckets,
        info={"source": source, **labelled.info, "rows_used": len(rows),
              "missing_texts": missing, "empty_texts": int((lengths == 0).sum()),
              "words_per_text": {"median": float(np.median(lengths)) if len(lengths) else 0.0,
                                 "max": int(lengths.max()) if len(lengths) else 0},
              "group_counts": {n: int((g == i).sum()) for i, n in enumerate(labelled.groups)},
              **(info or {})},
        attributes=labelled.attributes,
        group_values=labelled.group_values,
        ship=True,
    )


register(TextData, load)

__all__ = ["TextData", "TokenOptions", "from_frame", "load", "texts_of"]
