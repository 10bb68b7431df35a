"""Reading the long form: one row per sample and member, a column at a time, each turned into
compact codes before the next is read (50 members on a million samples fit in a few GB)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fairensemble.common.errors import DataError
from fairensemble.common.text import close_matches, preview_names
from fairensemble.data.frame import SPLIT_WORDS, text_of
from fairensemble.interop.format import (
    LABEL,
    MEMBER,
    META_FORMAT,
    META_KEY,
    MIX,
    PROB,
    PROB_PREFIX,
    RATIO,
    REPLICATE,
    RESERVED,
    SAMPLE,
    SPLIT,
    Imported,
    ImportedCell,
    Part,
    small_int,
)
from fairensemble.interop.predictions import check_probabilities, name_groups


class _Columns:
    """A table's columns, one at a time: Parquet column by column (one column in memory at
    once), any other table through ``data.reader.read_table``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frame = None
        self.meta: dict[str, Any] = {}
        parquet = path.suffix.lower() in (".parquet", ".pq") or path.is_dir()
        if not path.exists():
            raise DataError(f"{path}: file not found")
        if parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            self.files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
            if not self.files:
                raise DataError(f"{path}: a folder without *.parquet files")
            try:
                schema = pq.read_schema(self.files[0])
                self.rows = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)
            except (OSError, pa.ArrowException) as err:
                raise DataError(f"{path}: not a readable Parquet file ({err})") from None
            self.names = [n for n in schema.names if not n.startswith("__index_level_")]
            self.text = {f.name for f in schema if pa.types.is_string(f.type)
                         or pa.types.is_large_string(f.type) or pa.types.is_binary(f.type)}
            raw = (pq.read_metadata(self.files[0]).metadata or {}).get(META_KEY)
            if raw:
                self.meta = json.loads(raw)
        else:
            from fairensemble.data.reader import read_table

            self.frame = read_table(path)
            self.frame.columns = [str(c) for c in self.frame.columns]
            self.names = list(self.frame.columns)
            self.rows = len(self.frame)

    def __call__(self, name: str) -> Any:
        """The column: a pandas Series, or a pyarrow ChunkedArray."""
        if self.frame is not None:
            return self.frame[name]
        import pyarrow as pa
        import pyarrow.parquet as pq

        # text read as dictionary codes: a few distinct values over millions of rows
        text = [name] if name in self.text else None
        parts = [pq.read_table(f, columns=[name], read_dictionary=text).column(0)
                 for f in self.files]
        return parts[0] if len(parts) == 1 else pa.chunked_array(
            [c for p in parts for c in p.chunks])


def _codes(col: Any, name: str, source: str) -> tuple[np.ndarray, list[Any]]:
    """A column as codes int32 [rows] into its distinct values (in order of first
    appearance); a missing value is an error naming its data row."""
    import pandas as pd

    if isinstance(col, pd.Series):
        codes, uniques = pd.factorize(col)
        values = uniques.tolist()  # Python values: True, not numpy.True_
    else:
        import pyarrow as pa
        import pyarrow.compute as pc

        chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            codes, uniques = pd.factorize(col.to_numpy())
            values = uniques.tolist()
        else:
            # text as dictionary codes, chunk by chunk (never 50 million Python strings): each
            # chunk's dictionary mapped onto one list of values, then ordered by first row
            index: dict[Any, int] = {}
            parts = []
            for chunk in chunks:
                if not pa.types.is_dictionary(chunk.type):
                    chunk = pc.dictionary_encode(chunk)
                lut = np.array([index.setdefault(v, len(index))
                                for v in chunk.dictionary.to_pylist()] + [-1], dtype=np.int64)
                parts.append(lut[chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)])
            joined = np.concatenate(parts) if parts else np.empty(0, np.int64)
            del parts
            codes, first = pd.factorize(joined)
            everything = list(index)
            values = [everything[u] if u >= 0 else None for u in first.tolist()]
            codes[joined < 0] = -1
    missing = np.flatnonzero(codes < 0)
    if len(missing):
        raise DataError(f"{source}: column {name!r} is empty in data row {missing[0] + 1}")
    return codes.astype(np.int32, copy=False), values


def _floats(col: Any, name: str, source: str) -> np.ndarray:
    import pandas as pd

    if isinstance(col, pd.Series):
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            raise DataError(f"{source}: column {name!r} holds {col.dtype} values; expected "
                            "probabilities (numbers)")
        return col.to_numpy(dtype=np.float32, na_value=np.nan)
    import pyarrow as pa

    if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
        raise DataError(f"{source}: column {name!r} holds {col.type} values; expected "
                        "probabilities (numbers)")
    values = col.to_numpy()
    return values.astype(np.float32, copy=False)


def _check_columns(names: list[str], group: Sequence[str] | None, grid: Sequence[str],
                   source: str) -> tuple[list[str], list[str]]:
    """(probability columns, group columns) of a long-form table; missing and unknown
    columns are one-line errors with close matches."""
    listed = f" (columns: {preview_names(names)})"
    probs = [c for c in names if c.startswith(PROB_PREFIX)]
    if PROB in names and probs:
        raise DataError(f"{source}: both a {PROB!r} column and {probs[0]!r}: expected one "
                        f"{PROB_PREFIX}<class> column per class, or {PROB!r} alone (binary)")
    if PROB in names:
        probs = [PROB]
    if not probs:
        raise DataError(f"{source}: no probability columns: expected one {PROB_PREFIX}<class> "
                        f"column per class, or one {PROB!r} column (binary, the positive class)"
                        f"{close_matches(PROB_PREFIX + '1', names)}{listed}")
    roles = {MEMBER: "each row's member", SAMPLE: "an id a sample keeps across members",
             LABEL: "the label"}
    for name, role in roles.items():
        if name not in names:
            raise DataError(f"{source}: required column {name!r} ({role}) not found"
                            f"{close_matches(name, names)}{listed}")
    for name in grid:
        if name not in names:
            raise DataError(f"{source}: grid column {name!r} not found"
                            f"{close_matches(name, names)}{listed}")
        if name in RESERVED or name in probs:
            raise DataError(f"{source}: grid column {name!r}: {name!r} is a column of its own")
    taken = {*RESERVED, *probs, *grid}
    if group:
        for name in group:
            if name not in names:
                raise DataError(f"{source}: group column {name!r} not found"
                                f"{close_matches(name, names)}{listed}")
            if name in taken:
                raise DataError(f"{source}: group column {name!r}: {name!r} is a column of "
                                "its own")
        unknown = [c for c in names if c not in taken and c not in group]
        if unknown:
            what = (f"{MEMBER}, {SAMPLE}, {LABEL}, {SPLIT}, {RATIO}, {REPLICATE}, "
                    f"{PROB_PREFIX}<class> or {PROB}, a --group or a --grid column")
            raise DataError(f"{source}: unknown column {unknown[0]!r}: expected {what}"
                            f"{close_matches(unknown[0], sorted(taken - {MIX}))}")
        return probs, list(group)
    groups = [c for c in names if c not in taken]
    if not groups:
        raise DataError(f"{source}: no group column: expected one or more columns besides "
                        f"{MEMBER}, {SAMPLE}, {LABEL}, {SPLIT}, {RATIO}, {REPLICATE} and the "
                        f"probabilities{listed}")
    return probs, groups


def read_long(path: str | Path, group: Sequence[str] | None = None,
              grid: Sequence[str] | None = None, logits: bool = False) -> Imported:
    """Member predictions from a long-form table (see the module docstring), checked."""
    path = Path(path).expanduser()
    source = str(path)
    table = _Columns(path)
    meta = table.meta if table.meta.get("format") == META_FORMAT else {}
    names = table.names
    grid = list(grid if grid is not None else [c for c in meta.get("grid_columns", [])
                                                if c in names])
    prob_cols, group_cols = _check_columns(names, group, grid, source)
    n = table.rows

    def row(i: int) -> str:
        return f"in data row {i + 1}"

    # the cell of every row: its grid, ratio, replicate and mix_index values
    coord_cols = [c for c in (*grid, RATIO, REPLICATE, MIX) if c in names]
    import pandas as pd

    cell_codes: Any = 0  # one cell, unless coordinate columns say otherwise
    coord_values: list[list[Any]] = []
    for name in coord_cols:
        codes, values = _codes(table(name), name, source)
        coord_values.append([_coordinate(v, name, source) for v in values])
        cell_codes = cell_codes * len(values) + codes.astype(np.int64)
    cell_codes, cell_keys = pd.factorize(np.atleast_1d(cell_codes))
    cell_codes = cell_codes.astype(np.int32) if coord_cols else 0
    cells_labels = []
    for key in cell_keys.tolist():
        labels = {}
        for name, values in reversed(list(zip(coord_cols, coord_values))):
            key, r = divmod(key, len(values))
            labels[name] = values[r]
        cells_labels.append({c: labels[c] for c in coord_cols})
    del cell_keys

    split = np.zeros(n, dtype=np.int8)  # 0 test, 1 val
    if SPLIT in names:
        codes, values = _codes(table(SPLIT), SPLIT, source)
        words = [SPLIT_WORDS.get(str(v).strip().lower()) for v in values]
        for v, word in zip(values, words):
            if word not in ("val", "test"):
                first = int(np.flatnonzero(codes == values.index(v))[0])
                raise DataError(f"{source}: column {SPLIT!r} holds {v!r} {row(first)}; expected "
                                "test or val (rows of other splits have no place here)")
        split = np.array([w == "val" for w in words], dtype=np.int8)[codes]

    member, member_values = _codes(table(MEMBER), MEMBER, source)
    member = member.astype(small_int(len(member_values)))
    members = [text_of(v) for v in member_values]
    E = len(members)

    # every (cell, split, sample) once per member, in order of first appearance
    sample, sample_values = _codes(table(SAMPLE), SAMPLE, source)
    U = len(sample_values)
    key, keys = pd.factorize((split + 2 * np.asarray(cell_codes, dtype=np.int64)) * U + sample)
    del sample, cell_codes
    key = key.astype(np.int32 if len(keys) < 2**31 else np.int64)
    K = len(keys)
    key_cs, key_sample = keys // U, keys % U

    def describe(k: int) -> str:
        cs = int(key_cs[k])
        labels = cells_labels[cs // 2]
        cell = (", " + ", ".join(f"{c}={v}" for c, v in labels.items())) if len(
            cells_labels) > 1 else ""
        return f"sample {sample_values[key_sample[k]]!r} ({'val' if cs % 2 else 'test'}{cell})"

    occurrences = np.bincount(key.astype(np.int64) * E + member, minlength=K * E)
    twice = np.flatnonzero(occurrences > 1)
    if len(twice):
        k, m = divmod(int(twice[0]), E)
        rows = np.flatnonzero((key == k) & (member == m))[:2]
        raise DataError(f"{source}: member {members[m]!r} has {describe(k)} twice (data rows "
                        f"{rows[0] + 1} and {rows[1] + 1}); expected one row per member and "
                        "sample")
    lacking = np.flatnonzero(occurrences == 0)
    if len(lacking):
        k, m = divmod(int(lacking[0]), E)
        other = members[int(np.flatnonzero(occurrences[k * E:(k + 1) * E])[0])]
        raise DataError(f"{source}: members predict different samples: member {members[m]!r} "
                        f"lacks {describe(k)}, which member {other!r} has; every member must "
                        "predict the same samples")
    del occurrences

    # labels and groups: one per (cell, split, sample), the same in every member's row
    classes = [c[len(PROB_PREFIX):] for c in prob_cols] if prob_cols != [PROB] else \
        list(meta.get("classes") or ["0", "1"])
    y_codes, y_values = _codes(table(LABEL), LABEL, source)
    class_of = []
    for i, v in enumerate(y_values):
        name = ("1" if v else "0") if isinstance(v, bool) and len(classes) == 2 else text_of(v)
        if name not in classes:
            first = int(np.flatnonzero(y_codes == i)[0])
            raise DataError(f"{source}: column {LABEL!r} holds {v!r} {row(first)}, not one of "
                            f"the classes {classes} (named by the {', '.join(prob_cols)} "
                            "column(s))" + (
                                "; a single p column means the labels are 0/1: name the "
                                "columns p_<class> for labels like these (p_"
                                f"{text_of(v)}, ...)" if prob_cols == [PROB] else ""))
        class_of.append(classes.index(name))
    y = np.array(class_of, dtype=small_int(len(classes)))[y_codes]
    del y_codes
    attr_codes, attr_values = [], []
    for name in group_cols:
        codes, values = _codes(table(name), name, source)
        attr_codes.append(codes)
        attr_values.append([text_of(v) for v in values])
    g, groups, group_values = name_groups(attr_codes, attr_values, group_cols,
                                          meta.get("groups"))
    del attr_codes
    for what, per_row in (("y", y), ("group", g)):
        per_key = np.empty(K, dtype=per_row.dtype)
        per_key[key[::-1]] = per_row[::-1]  # the first row of each sample
        differs = np.flatnonzero(per_key[key] != per_row)
        if len(differs):
            i = int(differs[0])
            first = int(np.flatnonzero(key == key[i])[0])
            raise DataError(f"{source}: {describe(int(key[i]))} has another {what} in member "
                            f"{members[member[i]]!r} (data row {i + 1}) than in member "
                            f"{members[member[first]]!r} (data row {first + 1}); a sample's "
                            f"{what} is the same in every member's row")

    # probabilities, then each cell's arrays
    columns = [_floats(table(c), c, source) for c in prob_cols]
    columns = check_probabilities(columns, prob_cols, logits, row, source)
    position = np.empty(K, dtype=key.dtype)
    for cs in np.unique(key_cs):
        ks = np.flatnonzero(key_cs == cs)
        position[ks] = np.arange(len(ks))
    by_cs = bounds = None  # several (cell, split)s: the rows ordered by them, stably
    if len(np.unique(key_cs)) > 1:
        row_cs = key_cs[key]
        by_cs = np.argsort(row_cs, kind="stable")
        bounds = np.searchsorted(row_cs[by_cs], np.arange(2 * len(cells_labels) + 1))
        del row_cs
    C = len(columns)
    parts: dict[int, Part] = {}
    for cs in np.unique(key_cs).tolist():
        rows_cs = (slice(None) if by_cs is None else by_cs[bounds[cs]:bounds[cs + 1]])
        ks = np.flatnonzero(key_cs == cs)
        probs = np.empty((E, len(ks), C), dtype=np.float32)
        at = (member[rows_cs], position[key[rows_cs]])
        for c, col in enumerate(columns):
            probs[at + (c,)] = col[rows_cs]
        y_cs, g_cs = np.empty(len(ks), np.int64), np.empty(len(ks), np.int64)
        y_cs[at[1]], g_cs[at[1]] = y[rows_cs], g[rows_cs]
        parts[cs] = Part(probs, y_cs, g_cs)
    del columns, key, member, y, g
    cells = []
    for ci, labels in enumerate(cells_labels):
        if 2 * ci not in parts:
            raise DataError(f"{source}: no test rows{_cell_words(labels, len(cells_labels))}; "
                            f"every cell needs test rows ({SPLIT!r} test)")
        cells.append(ImportedCell(labels, parts[2 * ci], parts.get(2 * ci + 1)))
    imp = Imported(source, "long", members, classes, groups,
                   group_cols, group_values, prob_cols, logits, [c for c in grid], cells,
                   rows=n, meta=meta)
    check_groups(imp)
    return imp


def _coordinate(value: Any, column: str, source: str) -> Any:
    """A grid, ratio, replicate or mix_index value as a coordinate."""
    if isinstance(value, np.generic):
        value = value.item()
    if column == RATIO:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0.0 <= value <= 1.0:
            raise DataError(f"{source}: column {RATIO!r} holds {value!r}; expected the share "
                            "of the ratio group in the training set, in [0, 1]")
        return float(value)
    if column in (REPLICATE, MIX):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(f"{source}: column {column!r} holds {value!r}; expected integers")
    return value


def _cell_words(labels: dict[str, Any], n_cells: int) -> str:
    if n_cells <= 1:
        return ""
    return " in cell " + ", ".join(f"{c}={v}" for c, v in labels.items())


def check_groups(imp: Imported) -> None:
    """Every group has test rows in every cell."""
    for cell in imp.cells:
        counts = np.bincount(cell.test.g, minlength=len(imp.groups))
        empty = [imp.groups[j] for j in np.flatnonzero(counts == 0)]
        if empty:
            where = _cell_words(cell.labels, len(imp.cells))
            raise DataError(f"{imp.source or 'groups'}: group {empty[0]!r} has no test rows"
                            f"{where}; every group needs test samples to be scored (drop its "
                            "rows, or give it test rows)")


# ----------------------------------------------------------------------------- arrays
