"""Tables as a data source (``kind: table``); UCI Adult (``data/adult.py``) reuses it.

One code path (``assemble``): a raw ``DataFrame`` -> target classes, group codes, typed
feature columns -> stratified pool / val / test splits. ``Split.X`` holds the raw feature
columns; ``Dataset.prepare`` standardises numeric columns and one-hot encodes categorical ones
with scikit-learn, fitted on each training draw only, so no statistic of the test split or of
rows outside the draw reaches the model inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from fairensemble.config import TableData
from fairensemble.data.base import DataError, Dataset, Split, preview_names

OTHER = "other"  # name of the group that rare values are merged into
MISSING = "missing"  # category that a missing categorical value becomes
COMPRESSED = {".gz", ".bz2", ".zip", ".xz", ".zst"}
NUMERIC_SHARE = 0.9  # a text column whose values parse as numbers this often is numeric

# ----------------------------------------------------------------------------- public API


def load_table(cfg: TableData, seed: int, frame: pd.DataFrame | None = None) -> Dataset:
    """Load a CSV or Parquet table; split it into pool / val / test stratified by group x label.

    ``seed`` fixes the split. Rows with a missing target or group are dropped, as are rows of
    group values outside ``cfg.groups`` when it is given; values with fewer than
    ``min_group_size`` rows are merged into the group ``"other"`` (listed last). ``frame``:
    the file as ``read_table(cfg.path, cfg.na_values)`` returns it, when already read.
    """
    path = Path(cfg.path)
    if frame is None:
        frame = read_table(path, cfg.na_values)
    return assemble(frame, cfg, seed, source=str(path), fixed_test=None)


def read_table(path: Path, na_values: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a ``.csv`` (optionally compressed) or ``.parquet`` file into a DataFrame;
    ``na_values`` are cell values read as missing, besides pandas' own."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffixes = [s.lower() for s in path.suffixes]
    is_parquet = suffixes[-1:] in ([".parquet"], [".pq"])
    is_csv = suffixes[-1:] == [".csv"] or (
        len(suffixes) >= 2 and suffixes[-2] == ".csv" and suffixes[-1] in COMPRESSED
    )
    if not (is_parquet or is_csv):
        raise DataError(f"{path}: unsupported extension {path.suffix!r}; expected .csv or .parquet")
    try:
        if is_parquet:
            frame = _missing_as_nan(pd.read_parquet(path), na_values)
        else:
            frame = pd.read_csv(path, na_values=list(na_values) or None)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file (no columns)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: cannot be read as a table ({first})") from None
    if frame.shape[1] == 0:
        raise DataError(f"{path}: empty file (no columns)")
    if len(frame) == 0:
        raise DataError(f"{path}: empty table (0 rows)")
    return frame


def _missing_as_nan(frame: pd.DataFrame, na_values: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Parquet's text columns with ``na_values`` markers: the markers become NaN, and a column
    that is numeric apart from them becomes numeric, as ``read_csv`` would read it."""
    if not na_values:
        return frame
    for column in frame.columns:
        if pd.api.types.is_object_dtype(frame[column]) or pd.api.types.is_string_dtype(
                frame[column]):
            marked = frame[column].isin(list(na_values))
            if not marked.any():
                continue
            cleaned = frame[column].mask(marked)
            try:
                frame[column] = pd.to_numeric(cleaned)
            except (ValueError, TypeError):
                frame[column] = cleaned
    return frame


@dataclass(frozen=True)
class TablePrepare:
    """``Dataset.prepare`` for tables: median-impute + standardise the numeric columns,
    ``"missing"``-impute + one-hot encode the categorical ones (unseen categories -> all zeros),
    fitted on the training draw, applied to every split given. Returns float32 arrays.

    ``categories`` (per categorical column, every value of the whole table) fixes the one-hot
    layout, so every training draw yields the same feature columns and cells of a sweep can be
    stacked; the statistics (medians, means, scales) are still fitted on the draw alone."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    categories: tuple[tuple, ...] | None = None

    def transformer(self) -> ColumnTransformer:
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
        columns = [*self.numeric, *self.categorical]
        transformer = self.transformer()
        out = [transformer.fit_transform(train.X[columns])]
        out += [transformer.transform(split.X[columns]) for split in others]
        return [np.ascontiguousarray(x, dtype=np.float32) for x in out]


# ----------------------------------------------------------------------------- the code path


def assemble(
    frame: pd.DataFrame,
    cfg: TableData,
    seed: int,
    source: str,
    fixed_test: np.ndarray | None,
) -> Dataset:
    """Raw frame -> Dataset. ``fixed_test`` marks rows that form the test split (Adult);
    without it the test split is drawn with ``cfg.test_fraction``."""
    if frame.shape[1] == 0:
        raise DataError(f"{source}: empty file (no columns)")
    if len(frame) == 0:
        raise DataError(f"{source}: empty table (0 rows)")
    frame = frame.reset_index(drop=True)
    test_fraction = 0.0 if fixed_test is not None else cfg.test_fraction
    if test_fraction + cfg.val_fraction >= 1.0:
        raise DataError(
            f"dataset.val_fraction: test_fraction + val_fraction must be < 1,"
            f" got {test_fraction:g} + {cfg.val_fraction:g}"
        )
    columns = list(frame.columns)
    for role, name in (("target", cfg.target), ("group", cfg.group)):
        if name not in frame.columns:
            raise DataError(
                f"{source}: {role} column {name!r} not found (columns: {preview_names(columns)})"
            )
    if cfg.target == cfg.group:
        raise DataError(f"{source}: target and group are the same column {cfg.target!r}")
    for name in cfg.drop:
        if name not in frame.columns:
            raise DataError(f"{source}: drop column {name!r} not found")
    features = _feature_names(cfg, columns, source)

    info: dict[str, Any] = {"source": source, "rows_read": len(frame)}
    keep = np.array(frame[cfg.target].notna() & frame[cfg.group].notna(), dtype=bool)
    X = pd.DataFrame(index=frame.index)
    numeric: list[str] = []
    categorical: list[str] = []
    for name in features:
        X[name], kind = _feature_column(frame[name], name, source)
        (numeric if kind == "numeric" else categorical).append(name)
    if cfg.impute == "drop" and features:
        keep &= ~X.isna().any(axis=1).to_numpy()
    info["dropped_missing"] = int((~keep).sum())

    group_text = _as_text(frame[cfg.group])
    groups, group_of_row, dropped, merged = _group_codes(group_text, keep, cfg, source)
    keep &= group_of_row >= 0
    info["dropped_groups"] = dropped
    info["merged_into_other"] = merged

    classes, y_all = _class_codes(frame[cfg.target], keep, cfg, source)
    if not keep.any():
        raise DataError(f"{source}: no rows left after dropping missing values and groups")

    rows = np.flatnonzero(keep)
    X = X.iloc[rows].reset_index(drop=True)
    if cfg.group_as_feature and cfg.group not in X.columns:
        X[cfg.group] = np.asarray(groups, dtype=object)[group_of_row[rows]]
        categorical.append(cfg.group)
    y = y_all[rows]
    g = group_of_row[rows]

    C = len(classes)
    strata = g * C + y
    rng = np.random.default_rng(seed)
    if fixed_test is None:
        test_idx, val_idx, pool_idx = _stratified_split(
            strata, test_fraction, cfg.val_fraction, rng
        )
    else:
        is_test = fixed_test[rows]
        train_rows = np.flatnonzero(~is_test)
        _, val_part, pool_part = _stratified_split(strata[train_rows], 0.0, cfg.val_fraction, rng)
        test_idx = np.flatnonzero(is_test)
        val_idx, pool_idx = train_rows[val_part], train_rows[pool_part]

    def split(idx: np.ndarray) -> Split:
        return Split(X.iloc[idx].reset_index(drop=True), y[idx], g[idx])

    info.update(
        rows_used=len(rows),
        group_counts={name: int((g == i).sum()) for i, name in enumerate(groups)},
        class_counts={name: int((y == i).sum()) for i, name in enumerate(classes)},
        n_pool=len(pool_idx),
        n_val=len(val_idx),
        n_test=len(test_idx),
        numeric_features=list(numeric),
        categorical_features=list(categorical),
    )
    if len(test_idx) == 0 or len(pool_idx) == 0:
        raise DataError(f"{source}: too few rows ({len(rows)}) for a pool and a test split")
    return Dataset(
        groups=groups,
        classes=classes,
        pool=split(pool_idx),
        test=split(test_idx),
        val=split(val_idx) if cfg.val_fraction > 0 else None,
        prepare=TablePrepare(tuple(numeric), tuple(categorical), _categories(X, categorical)),
        input_kind="table",
        info=info,
    )


def _categories(rows: pd.DataFrame, categorical: list[str]) -> tuple[tuple, ...]:
    """Every value of each categorical column (plus the missing marker where the column has
    missing values), sorted."""
    out = []
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
        features = list(dict.fromkeys(cfg.features))
    else:
        excluded = {cfg.target, cfg.group, *cfg.drop}
        features = [c for c in columns if c not in excluded]
    if not features and not cfg.group_as_feature:
        raise DataError(f"{source}: no feature columns left besides target and group")
    return features


def _feature_column(values: pd.Series, name: str, source: str) -> tuple[pd.Series, str]:
    """Type one feature column: numbers -> float64 ``"numeric"``; text -> object
    ``"categorical"`` (NaN kept). Text that is mostly numbers is a data error."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(object).map(str, na_action="ignore").astype(object), "categorical"
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(np.float64), "numeric"
    codes, uniques = pd.factorize(values.astype(object))
    if len(uniques) == 0:
        return pd.Series(np.nan, index=values.index, dtype=np.float64), "numeric"
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


def _group_codes(
    text: pd.Series, keep: np.ndarray, cfg: TableData, source: str
) -> tuple[list[str], np.ndarray, int, dict[str, int]]:
    """Group names in code order and a code per row (-1: row dropped)."""
    kept = text[keep]
    counts = kept.value_counts()
    present = set(counts.index)
    if cfg.groups is not None:
        for name in cfg.groups:
            if name not in present:
                raise DataError(
                    f"{source}: group {name!r} not found in column {cfg.group!r}"
                    f" (values: {preview_names(sorted(present))})"
                )
        candidates = list(dict.fromkeys(cfg.groups))
    else:
        candidates = sorted(present)
    small = [v for v in candidates if counts.get(v, 0) < cfg.min_group_size]
    merged = {v: int(counts[v]) for v in small}
    names = [v for v in candidates if v not in small]
    if small and OTHER not in names:
        names.append(OTHER)
    if len(names) < 2:
        raise DataError(
            f"{source}: column {cfg.group!r} leaves fewer than 2 groups ({names});"
            f" check groups and min_group_size"
        )
    mapping = {v: names.index(v) for v in names}
    mapping.update({v: names.index(OTHER) for v in small})
    code = text.map(mapping).to_numpy(dtype=np.float64, na_value=np.nan)
    code = np.where(np.isnan(code), -1, code).astype(np.int64)
    dropped = int((keep & (code < 0)).sum())
    code[~keep] = -1
    return names, code, dropped, merged


def _class_codes(
    target: pd.Series, keep: np.ndarray, cfg: TableData, source: str
) -> tuple[list[str], np.ndarray]:
    """Class names in code order and a code per row (rows outside ``keep``: any value)."""
    values = target[keep]
    uniques = pd.unique(values.to_numpy())
    try:
        uniques = sorted(uniques)
    except TypeError:
        uniques = sorted(uniques, key=str)
    texts = [_text(u) for u in uniques]
    if cfg.positive is not None:
        hits = [i for i, u in enumerate(uniques) if _same(u, cfg.positive)]
        if not hits:
            raise DataError(
                f"{source}: positive value {cfg.positive!r} not found in target column"
                f" {cfg.target!r} (values: {preview_names(texts)})"
            )
        positives = {texts[i] for i in hits}
        rest = [t for t in dict.fromkeys(texts) if t not in positives]
        if not rest:
            raise DataError(
                f"{source}: target column {cfg.target!r} has one class ({texts[hits[0]]!r})"
                f" once {cfg.positive!r} is the positive class; expected at least 2"
            )
        classes = [rest[0] if len(rest) == 1 else OTHER, texts[hits[0]]]
        code_of = {t: int(t in positives) for t in texts}
    else:
        classes = list(dict.fromkeys(texts))
        if len(classes) < 2:
            raise DataError(
                f"{source}: target column {cfg.target!r} has one class"
                f" ({classes[0] if classes else None!r}); expected at least 2"
            )
        code_of = {t: classes.index(t) for t in classes}
    y = np.zeros(len(target), dtype=np.int64)
    codes, row_uniques = pd.factorize(values)
    y[keep] = np.array([code_of[_text(u)] for u in row_uniques], dtype=np.int64)[codes]
    return classes, y


def _stratified_split(
    strata: np.ndarray, test_fraction: float, val_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices (sorted) of test, val and pool. Per stratum the test and val counts are
    within one row of ``fraction * stratum size`` (largest-remainder rounding, ties broken at
    random), and the totals are the rounded fractions of all rows."""
    _, inverse, sizes = np.unique(strata, return_inverse=True, return_counts=True)
    n_test = _allocate(sizes, test_fraction, sizes, rng)
    n_val = _allocate(sizes, val_fraction, sizes - n_test, rng)
    order = np.lexsort((rng.permutation(len(strata)), inverse))  # shuffled within stratum
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    rank = np.empty(len(strata), dtype=np.int64)
    rank[order] = np.arange(len(strata)) - np.repeat(starts, sizes)
    in_test = rank < n_test[inverse]
    in_val = ~in_test & (rank < (n_test + n_val)[inverse])
    return np.flatnonzero(in_test), np.flatnonzero(in_val), np.flatnonzero(~in_test & ~in_val)


def _allocate(
    sizes: np.ndarray, fraction: float, capacity: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    quota = sizes * fraction
    base = np.minimum(np.floor(quota).astype(np.int64), capacity)
    total = min(int(np.floor(sizes.sum() * fraction + 0.5)), int(capacity.sum()))
    extra = total - int(base.sum())
    remainder = quota - base
    eligible = (remainder > 0) & (base < capacity)
    if extra > 0 and eligible.any():
        score = np.where(eligible, remainder, -1.0)
        order = np.lexsort((rng.random(len(sizes)), -score))
        take = order[: min(extra, int(eligible.sum()))]
        base[take] += 1
    return base


# ----------------------------------------------------------------------------- small helpers


def _text(value: Any) -> str:
    """A value as a class or group name: 1.0 -> "1", True -> "True", "a" -> "a"."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def _as_text(values: pd.Series) -> pd.Series:
    codes, uniques = pd.factorize(values)
    names = np.array([_text(u) for u in uniques] + [None], dtype=object)
    return pd.Series(names[codes], index=values.index, dtype=object)


def _same(value: Any, wanted: Any) -> bool:
    try:
        if value == wanted:
            return True
    except (TypeError, ValueError):
        pass
    return _text(value) == _text(wanted)
