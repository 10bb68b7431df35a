"""Tables as a data source (``kind: table``); UCI Adult (``data/adult.py``) reuses it.

One code path (``assemble``): a raw ``DataFrame`` -> target classes, group codes, typed
feature columns -> stratified pool / val / test splits. ``Split.X`` holds the raw feature
columns; ``Dataset.prepare`` standardises numeric columns and one-hot encodes categorical ones
with scikit-learn, fitted on each training draw only, so no statistic of the test split or of
rows outside the draw reaches the model inputs.

Vector columns (Parquet / Arrow lists and tensors, ``.npy`` matrices named in ``vectors``; see
``data.vectors``) are a block of features each: ``Split.X`` holds them as one
``fixed_size_list<float>[d]`` column, and ``prepare`` standardises every dimension with the
draw's statistics, as it does numeric columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fairensemble.common.errors import DataError
from fairensemble.data import vectors as vec
from fairensemble.data.base import Dataset, Split
from fairensemble.data.frame import (
    LabelledRows,
    as_text,
    check_subjects,
    draw_splits,
    label_rows,
)
from fairensemble.data.reader import read_table
from fairensemble.data.registry import register

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer

MISSING = "missing"  # category that a missing categorical value becomes
NUMERIC_SHARE = 0.9  # a text column whose values parse as numbers this often is numeric


class TableData(LabelledRows):
    """Any delimited text, Parquet or Arrow table, one row per sample."""

    kind: Literal["table"] = "table"
    """The data source (this section's name)."""
    path: str
    """A table file (CSV, TSV, text, Parquet; optionally compressed) or a folder of Parquet
    shards."""
    features: list[str] | None = None
    """The feature columns (default: every column but the target, group(s), subject, split, the
    raters' columns and drop)."""
    drop: list[str] = []
    """Columns that are not features."""
    group_as_feature: bool = False
    """Give the model the group column(s) as features too."""
    impute: Literal["median", "drop"] = "median"
    """Missing feature values: the training draw's median (numbers, and each element of a missing
    vector) or a 'missing' category (text), or drop the row."""
    vectors: dict[str, str] = {}
    """Vectors kept beside the table, each a block of features: a name (a new feature column) ->
    a .npy file holding an [n_rows, d] matrix whose row i belongs to the table's row i as read,
    before any row is dropped (relative paths: from the working directory, as `path`). Parquet
    and Arrow list or tensor columns need no entry: they are vector features already."""


def load_table(cfg: TableData, seed: int, frame: pd.DataFrame | None = None) -> Dataset:
    """Load a table; split it into pool / val / test (see ``frame.split_rows``).

    ``seed`` fixes the split. Rows with a missing target or group are dropped, as are rows of
    group values outside ``cfg.groups`` when it is given; values with fewer than
    ``min_group_size`` rows are merged into the group ``"other"`` (listed last). ``frame``:
    the file as ``read_table`` returns it for this config, when already read.
    """
    path = Path(cfg.path)
    if frame is None:
        frame = read_table(path, cfg.na_values, cfg.header, cfg.columns)
    frame = vec.attach(frame, cfg.vectors, str(path))
    return assemble(frame, cfg, seed, source=str(path))


@dataclass(frozen=True)
class TablePrepare:
    """``Dataset.prepare`` for tables: median-impute + standardise the numeric columns,
    ``"missing"``-impute + one-hot encode the categorical ones (unseen categories -> all zeros),
    median-impute + standardise each dimension of the vector columns (``vectors.standardise``),
    fitted on the training draw, applied to every split given. Returns float32 arrays: the
    numeric and one-hot features, then each vector column's block.

    ``categories`` (per categorical column, every value of the whole table) fixes the one-hot
    layout, so every training draw yields the same feature columns and cells of a sweep can be
    stacked; the statistics (medians, means, scales) are still fitted on the draw alone."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    categories: tuple[tuple, ...] | None = None
    vectors: tuple[str, ...] = ()

    def transformer(self) -> ColumnTransformer:
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        numeric = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()
        )
        categorical = make_pipeline(
            SimpleImputer(strategy="constant", fill_value=MISSING, keep_empty_features=True),
            OneHotEncoder(
                categories=[list(c) for c in self.categories] if self.categories else "auto",
                handle_unknown="ignore", sparse_output=False, dtype=np.float32,
            ),
        )
        return ColumnTransformer(
            [("numeric", numeric, list(self.numeric)),
             ("categorical", categorical, list(self.categorical))],
            remainder="drop",
            sparse_threshold=0.0,
        )

    def __call__(self, train: Split, others: list[Split]) -> list[np.ndarray]:
        blocks: list[list[np.ndarray]] = [[] for _ in range(1 + len(others))]
        columns = [*self.numeric, *self.categorical]
        if columns:
            transformer = self.transformer()
            parts = [transformer.fit_transform(train.X[columns])]
            parts += [transformer.transform(split.X[columns]) for split in others]
            for block, part in zip(blocks, parts):
                block.append(np.asarray(part, dtype=np.float32))
        for name in self.vectors:
            parts = vec.standardise(vec.matrix(train.X[name]),
                                    [vec.matrix(split.X[name]) for split in others])
            for block, part in zip(blocks, parts):
                block.append(part)
        return [np.ascontiguousarray(b[0] if len(b) == 1 else np.hstack(b), dtype=np.float32)
                for b in blocks]


# ----------------------------------------------------------------------------- the code path


def assemble(frame: pd.DataFrame, cfg: TableData, seed: int, source: str,
             fixed: np.ndarray | None = None) -> Dataset:
    """Raw frame -> Dataset. ``fixed`` (train / val / test per row) fixes the splits (Adult's
    own test file); else the ``split`` column does when given, else they are drawn."""
    import pandas as pd

    if frame.shape[1] == 0:
        raise DataError(f"{source}: empty file (no columns)")
    if len(frame) == 0:
        raise DataError(f"{source}: empty table (0 rows)")
    frame = frame.reset_index(drop=True)
    columns = [str(c) for c in frame.columns]
    for name in cfg.drop:
        if name not in frame.columns:
            raise DataError(f"{source}: drop column {name!r} not found")
    features = _feature_names(cfg, columns, source)
    X = pd.DataFrame(index=frame.index)
    numeric: list[str] = []
    categorical: list[str] = []
    blocks: dict[str, vec.Block] = {}
    for name in features:
        column, kind = (None, "cells") if vec.is_nested(frame[name]) else _feature_column(
            frame[name], name, source)
        if kind == "cells":  # lists, tensors (or cells no feature can hold: one line)
            blocks[name] = vec.decode(frame[name], name, source)
            X[name] = blocks[name].column(X.index)
            continue
        X[name] = column
        (numeric if kind == "numeric" else categorical).append(name)
    keep = None
    if cfg.impute == "drop" and features:
        missing = X[[*numeric, *categorical]].isna().any(axis=1).to_numpy(copy=True)
        for block in blocks.values():
            missing |= block.missing_rows
        keep = ~missing
    labelled = label_rows(frame, cfg, source, keep)
    if keep is not None:
        labelled.info["dropped_missing"] += int((~keep).sum())
    rows = np.flatnonzero(labelled.keep)
    X = X.iloc[rows].reset_index(drop=True)
    if cfg.group_as_feature:
        for col in cfg.group_columns:
            if col not in X.columns:
                X[col] = as_text(frame[col]).to_numpy()[rows]
                categorical.append(col)
    y, g = labelled.y[rows], labelled.g[rows]
    classes, groups = labelled.classes, labelled.groups
    parts, subjects = draw_splits(frame, cfg, rows, g * len(classes) + y,
                                  np.random.default_rng(seed), source, fixed)
    if subjects is not None:
        check_subjects(subjects, parts, source, str(cfg.subject))
    pool_idx, val_idx, test_idx = parts["pool"], parts["val"], parts["test"]

    votes = None if labelled.votes is None else labelled.votes[rows]

    def split(idx: np.ndarray) -> Split:
        return Split(X.iloc[idx].reset_index(drop=True), y[idx], g[idx],
                     None if votes is None else votes[idx])

    info: dict[str, Any] = {"source": source, **labelled.info}
    info.update(
        rows_used=len(rows),
        group_counts={name: int((g == i).sum()) for i, name in enumerate(groups)},
        class_counts={name: int((y == i).sum()) for i, name in enumerate(classes)},
        n_pool=len(pool_idx),
        n_val=len(val_idx),
        n_test=len(test_idx),
        numeric_features=list(numeric),
        categorical_features=list(categorical),
        vector_features={name: list(b.shape) for name, b in blocks.items()},
        missing_vectors={name: int(b.missing_rows[rows].sum()) for name, b in blocks.items()},
    )
    if len(test_idx) == 0 or len(pool_idx) == 0:
        raise DataError(f"{source}: too few rows ({len(rows)}) for a pool and a test split")
    return Dataset(
        groups=groups,
        classes=classes,
        pool=split(pool_idx),
        test=split(test_idx),
        val=split(val_idx) if len(val_idx) else None,
        prepare=TablePrepare(tuple(numeric), tuple(categorical), _categories(X, categorical),
                             tuple(blocks)),
        input_kind="table",
        info=info,
        attributes=labelled.attributes,
        group_values=labelled.group_values,
        ship=True,
    )


def _categories(rows: pd.DataFrame, categorical: list[str]) -> tuple[tuple, ...]:
    """Every value of each categorical column (plus the missing marker where the column has
    missing values), sorted."""
    out: list[tuple] = []
    for col in categorical:
        values = set(rows[col].dropna().unique())
        if rows[col].isna().any():
            values.add(MISSING)
        out.append(tuple(sorted(values, key=str)))
    return tuple(out)


def _feature_names(cfg: TableData, columns: list[str], source: str) -> list[str]:
    if cfg.features is not None:
        for name in cfg.features:
            if name not in columns:
                raise DataError(f"{source}: feature column {name!r} not found")
        if cfg.target in cfg.features:
            raise DataError(f"{source}: target column {cfg.target!r} cannot be a feature")
        for name in _rater_columns(cfg):
            if name in cfg.features:
                raise DataError(f"{source}: rater column {name!r} cannot be a feature (it holds "
                                "the raters' labels)")
        features = list(dict.fromkeys(cfg.features))
    else:
        excluded = {cfg.target, *cfg.group_columns, *cfg.drop, cfg.subject, cfg.split,
                    *_rater_columns(cfg)}
        features = [c for c in columns if c not in excluded]
    if not features and not cfg.group_as_feature:
        raise DataError(f"{source}: no feature columns left besides target and group")
    return features


def _rater_columns(cfg: TableData) -> list[str]:
    """The columns that hold the raters' labels (or counts): never features."""
    return [*cfg.annotations, *([cfg.soft_label] if cfg.soft_label else []),
            *([cfg.raters] if isinstance(cfg.raters, str) else [])]


def _feature_column(values: pd.Series, name: str, source: str) -> tuple[pd.Series | None, str]:
    """Type one feature column: numbers -> float64 ``"numeric"``; text -> object
    ``"categorical"`` (NaN kept); cells that are lists, arrays or dictionaries -> ``(None,
    "cells")`` (``vectors.decode`` reads them). Text that is mostly numbers, or vectors written
    as text, is a data error."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(values):
        return values.astype(object).map(str, na_action="ignore").astype(object), "categorical"
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(np.float64), "numeric"
    try:
        codes, uniques = pd.factorize(values.astype(object))
    except TypeError:  # unhashable cells: lists, arrays, dictionaries
        return None, "cells"
    if len(uniques) == 0:
        return pd.Series(np.nan, index=values.index, dtype=np.float64), "numeric"
    written = vec.text_vector(list(uniques[:20]))
    if written is not None:
        raise DataError(f"{source}: column {name!r} holds vectors written as text ({written!r}); "
                        "a CSV cannot hold vectors: save the table as Parquet (a list column), "
                        "or the vectors as a .npy matrix (dataset.vectors)")
    # parse each distinct value once: text columns hold few distinct values
    parsed = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce").to_numpy(np.float64)
    parses = ~np.isnan(parsed)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    share = counts[parses].sum() / counts.sum()
    if share == 1.0:
        column = np.where(codes >= 0, parsed[codes], np.nan)
        return pd.Series(column, index=values.index, dtype=np.float64), "numeric"
    if share >= NUMERIC_SHARE:
        first_bad = int(np.flatnonzero(~parses[codes] & (codes >= 0))[0])
        raise DataError(
            f"{source}: column {name!r} is numeric but holds text {uniques[codes[first_bad]]!r}"
            f" (data row {first_bad + 1}); if that value means missing, list it in "
            f"dataset.na_values"
        )
    names = np.array([str(u) for u in uniques] + [np.nan], dtype=object)
    return pd.Series(names[codes], index=values.index, dtype=object), "categorical"


register(TableData, load_table)
