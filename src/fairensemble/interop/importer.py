"""Analyze an ensemble you already have: member predictions made elsewhere in, a run directory
out, with the layout ``run`` writes and everything ``report`` produces.

Inputs (``read_predictions``, ``from_arrays``):

* a long-form table (Parquet, CSV or any table ``data.reader`` reads), one row per sample and
  member: ``member``, ``sample`` (an id shared across members), ``y``, one or more group
  columns, probabilities as ``p_<class>`` columns (or one ``p`` column: binary, the positive
  class), and optionally ``split`` (``test`` / ``val``), ``ratio``, ``replicate`` and grid
  columns (one cell per combination of their values);
* an ``.npz`` with ``probs`` [E, n, C], ``y``, ``g`` (+ ``groups``, ``classes``, ``probs_val``,
  ``y_val``, ``g_val``);
* arrays in Python (numpy, torch).

Everything is checked before anything is written; a problem is one ``DataError`` line naming
the column (logits where probabilities belong, members with different samples, NaN, a label
outside the classes, a group without test rows, duplicate rows, unknown columns). Several group
columns make intersectional groups named as the data sources name them (``"a & b"``).

Parquet is read a column at a time, each turned into compact codes before the next is read,
so a 50-member ensemble on a million test samples (50 million rows) fits in a few GB.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fairensemble.common.arrays import as_array
from fairensemble.common.errors import DataError, StoreError
from fairensemble.common.files import file_sha256
from fairensemble.common.seeds import stable_hash
from fairensemble.data.base import preview_names
from fairensemble.data.frame import JOIN, OTHER, SPLIT_WORDS, text_of
from fairensemble.sweep.plan import Cell, Plan, PointLayout, grid_value, moved_indices
from fairensemble.sweep.store import ARRAY_NAMES, CellRecord, RunStore

if TYPE_CHECKING:
    from fairensemble.config import RunConfig

# the long form's columns
MEMBER, SAMPLE, LABEL, SPLIT = "member", "sample", "y", "split"
RATIO, REPLICATE, MIX = "ratio", "replicate", "mix_index"
PROB, PROB_PREFIX = "p", "p_"
RESERVED = (MEMBER, SAMPLE, LABEL, SPLIT, RATIO, REPLICATE, MIX, PROB)
SUM_TOLERANCE = 1e-3  # a row of probabilities sums to 1 within this
MAX_GROUPS = 1000  # more distinct values than this: not a group column
META_KEY = b"fairensemble"  # Parquet metadata written by `export`
META_FORMAT = 1
# what `export` carries over besides the cells: what evaluating them depends on
META_FIELDS = ("name", "seed", "ratio_group", "metrics", "primary_metric", "test_mix",
               "analysis", "ensemble", "ratios", "mixes", "grid")
# set by the predictions themselves: --set may not change them
STRUCTURAL = ("dataset", "ratios", "mixes", "replicates", "grid", "ensemble.members")


@dataclass
class Part:
    """One split of one cell: member probabilities float32 [E, n, C], labels and group codes."""

    probs: np.ndarray
    y: np.ndarray
    g: np.ndarray


@dataclass
class ImportedCell:
    labels: dict[str, Any]  # grid, ratio, replicate and mix_index columns' values, as read
    test: Part
    val: Part | None = None


@dataclass
class Imported:
    """Member predictions, checked: the cells, and the names their codes stand for."""

    source: str | None  # the file read (None: arrays)
    format: str  # long | npz | arrays
    members: list[str]
    classes: list[str]
    groups: list[str]
    attributes: list[str]  # the group columns
    group_values: list[list[str]]  # per group, each attribute's value
    prob_columns: list[str]
    logits: bool
    grid: list[str]  # grid columns, in the order of the cells' labels
    cells: list[ImportedCell]
    rows: int = 0  # rows read (long form)
    meta: dict[str, Any] = field(default_factory=dict)  # what `export` wrote beside the rows


# ----------------------------------------------------------------------------- probabilities


def _softmax(columns: list[np.ndarray]) -> list[np.ndarray]:
    top = np.maximum.reduce(columns)
    exps = [np.exp(c.astype(np.float64) - top) for c in columns]
    total = np.add.reduce(exps)
    return [(e / total).astype(np.float32) for e in exps]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def check_probabilities(columns: list[np.ndarray], names: list[str], logits: bool,
                        where: Callable[[int], str], source: str | None = None
                        ) -> list[np.ndarray]:
    """Probability columns (one per class, or one ``p`` of the positive class) checked, or
    turned into probabilities when ``logits``: float32, the classes' columns in order (two for
    a single ``p``). ``where(i)`` names the position of the i-th value in an error, ``source``
    (a file) starts it."""
    head = f"{source}: " if source else ""
    for col, name in zip(columns, names):
        bad = np.flatnonzero(~np.isfinite(col))
        if len(bad):
            value = "NaN" if np.isnan(col[bad[0]]) else str(col[bad[0]])
            raise DataError(f"{head}{name}: {value} {where(int(bad[0]))}; expected a "
                            "probability")
    single = len(columns) == 1
    if logits:
        if single:
            p = _sigmoid(columns[0])
            return [1 - p, p]
        return _softmax(columns)
    hint = ("pass --logits (logits=True) to apply a sigmoid" if single else
            "pass --logits (logits=True) to apply a softmax")
    if not single:
        total = np.add.reduce([c.astype(np.float32, copy=False) for c in columns])
        off = np.flatnonzero(np.abs(total - 1) > SUM_TOLERANCE)
        if len(off):
            raise DataError(f"{head}{', '.join(names)}: the probabilities "
                            f"{where(int(off[0]))} sum to {float(total[off[0]]):.4g}, not 1 "
                            f"({len(off):,} such rows): logits or scores? {hint}")
    for col, name in zip(columns, names):
        out = np.flatnonzero((col < 0) | (col > 1))
        if len(out):
            raise DataError(f"{head}{name}: {float(col[out[0]]):g} {where(int(out[0]))} is not "
                            f"a probability (outside [0, 1]): logits? {hint}")
    if single:
        p = columns[0].astype(np.float32, copy=False)
        return [1 - p, p]
    return [c.astype(np.float32, copy=False) for c in columns]


# ----------------------------------------------------------------------------- groups


def name_groups(codes: list[np.ndarray], values: list[list[str]], attributes: list[str],
                order: list[str] | None = None) -> tuple[np.ndarray, list[str], list[list[str]]]:
    """Group codes, names and per-group attribute values from each attribute's codes and
    value names. Several attributes make every combination present a group, named
    ``"a & b"`` (``OTHER`` when every value is ``OTHER``), as the data sources name them.
    Groups are sorted by name, or follow ``order`` where it names them."""
    import pandas as pd

    if len(codes) == 1:
        combined, tuples = codes[0], [(v,) for v in values[0]]
    else:
        key = np.zeros(len(codes[0]), dtype=np.int64)
        for c, v in zip(codes, values):
            key = key * len(v) + c
        combined, uniq = pd.factorize(key)
        tuples = []
        for k in uniq.tolist():
            parts = []
            for v in reversed(values):
                k, r = divmod(k, len(v))
                parts.append(v[r])
            tuples.append(tuple(reversed(parts)))
    names = [OTHER if all(v == OTHER for v in t) and len(t) > 1 else JOIN.join(t)
             for t in tuples]
    present = dict.fromkeys(names)
    if len(present) > MAX_GROUPS:
        raise DataError(f"group column(s) {', '.join(attributes)}: {len(present):,} distinct "
                        f"groups; is that a group? name the group columns with --group")
    if len(present) != len(names):  # two value tuples with one name ("a & b" & "c", say)
        raise DataError(f"group columns {', '.join(attributes)}: values containing "
                        f"{JOIN.strip()!r} make two combinations share a name")
    ranked = [g for g in (order or []) if g in present]
    ranked += sorted(g for g in present if g not in ranked)
    index = {g: i for i, g in enumerate(ranked)}
    lookup = np.array([index[n] for n in names], dtype=np.int64)
    group_values = [list(tuples[names.index(g)]) for g in ranked] if len(codes) > 1 else []
    return lookup.astype(_small(len(ranked)))[combined], ranked, group_values


# ----------------------------------------------------------------------------- the long form


def _small(n: int) -> type:
    """The smallest signed integer type holding codes 0..n-1 (per-row codes of millions of
    rows: int8 where int64 would take eight times the memory)."""
    return next(t for t in (np.int8, np.int16, np.int32, np.int64) if n <= np.iinfo(t).max)


def _close(name: str, choices: list[str]) -> str:
    from fairensemble.advice.scaffold import close_matches

    return close_matches(name, choices)


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
                        f"{_close(PROB_PREFIX + '1', names)}{listed}")
    roles = {MEMBER: "each row's member", SAMPLE: "an id a sample keeps across members",
             LABEL: "the label"}
    for name, role in roles.items():
        if name not in names:
            raise DataError(f"{source}: required column {name!r} ({role}) not found"
                            f"{_close(name, names)}{listed}")
    for name in grid:
        if name not in names:
            raise DataError(f"{source}: grid column {name!r} not found"
                            f"{_close(name, names)}{listed}")
        if name in RESERVED or name in probs:
            raise DataError(f"{source}: grid column {name!r}: {name!r} is a column of its own")
    taken = {*RESERVED, *probs, *grid}
    if group:
        for name in group:
            if name not in names:
                raise DataError(f"{source}: group column {name!r} not found"
                                f"{_close(name, names)}{listed}")
            if name in taken:
                raise DataError(f"{source}: group column {name!r}: {name!r} is a column of "
                                "its own")
        unknown = [c for c in names if c not in taken and c not in group]
        if unknown:
            what = (f"{MEMBER}, {SAMPLE}, {LABEL}, {SPLIT}, {RATIO}, {REPLICATE}, "
                    f"{PROB_PREFIX}<class> or {PROB}, a --group or a --grid column")
            raise DataError(f"{source}: unknown column {unknown[0]!r}: expected {what}"
                            f"{_close(unknown[0], sorted(taken - {MIX}))}")
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
    member = member.astype(_small(len(member_values)))
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
    y = np.array(class_of, dtype=_small(len(classes)))[y_codes]
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


def _attribute_columns(groups: Any, n: int, names: Sequence[str] | None,
                       attributes: Sequence[str] | None, what: str
                       ) -> tuple[list[str], list[np.ndarray]]:
    """(attribute names, per attribute the values [n]) of the groups handed over: an array
    [n] (names, or codes named by ``names``), an array [n, A], or a mapping / DataFrame of
    attribute -> values [n]."""
    if hasattr(groups, "columns") and hasattr(groups, "__getitem__") and not isinstance(
            groups, np.ndarray):  # a DataFrame
        groups = {str(c): groups[c] for c in groups.columns}
    if isinstance(groups, dict):
        attrs = [str(a) for a in groups]
        cols = [as_array(v, f"{what}[{a!r}]") for a, v in groups.items()]
    else:
        arr = as_array(groups, what)
        if arr.ndim == 1:
            cols = [arr]
        elif arr.ndim == 2:
            cols = [arr[:, a] for a in range(arr.shape[1])]
        else:
            raise DataError(f"{what}: expected group values [samples] or [samples, "
                            f"attributes], got shape {arr.shape}")
        attrs = list(attributes) if attributes is not None else (
            ["group"] if len(cols) == 1 else [f"attribute{a + 1}" for a in range(len(cols))])
        if len(attrs) != len(cols):
            raise DataError(f"attributes: {len(attrs)} names for {len(cols)} group columns")
    for a, col in zip(attrs, cols):
        if col.shape != (n,):
            raise DataError(f"{what}: expected {n} values (one per sample) for {a!r}, got "
                            f"shape {col.shape}")
    if names is not None:
        if len(cols) != 1 or not np.issubdtype(cols[0].dtype, np.integer):
            raise DataError(f"{what}: group names are for integer codes of one group column")
        names = [str(v) for v in names]
        bad = cols[0][(cols[0] < 0) | (cols[0] >= len(names))]
        if len(bad):
            raise DataError(f"{what}: code {bad[0]} outside the groups' names 0..{len(names) - 1}")
        cols = [np.array(names, dtype=object)[cols[0]]]
    return attrs, cols


def from_arrays(probs: Any, y: Any, groups: Any, *, probs_val: Any = None, y_val: Any = None,
                groups_val: Any = None, classes: Sequence[str] | None = None,
                group_names: Sequence[str] | None = None,
                attributes: Sequence[str] | None = None, members: Sequence[str] | None = None,
                logits: bool = False, source: str | None = None,
                format: str = "arrays") -> Imported:
    """Member predictions handed over as arrays, checked: ``probs`` [E, n, C] (or [E, n]: the
    positive class of a binary task), ``y`` [n] (class codes, or names in ``classes``),
    ``groups`` (see ``_attribute_columns``); the ``*_val`` arrays a validation split (for
    post-processing)."""
    import pandas as pd

    parts, attrs, raw = [], None, []
    for tag, p_, y_, g_ in (("", probs, y, groups), ("_val", probs_val, y_val, groups_val)):
        if p_ is None:
            if y_ is not None or g_ is not None:
                raise DataError(f"probs{tag}: missing, while y{tag} / groups{tag} are given")
            continue
        p = as_array(p_, f"probs{tag}")
        if p.ndim not in (2, 3) or not np.issubdtype(p.dtype, np.number):
            raise DataError(f"probs{tag}: expected numbers [members, samples, classes] (or "
                            f"[members, samples]: the positive class), got {p.dtype} of shape "
                            f"{p.shape}")
        E, n = p.shape[:2]
        if y_ is None or g_ is None:
            raise DataError(f"y{tag} and groups{tag}: both are needed with probs{tag}")
        labels = as_array(y_, f"y{tag}")
        if labels.shape != (n,):
            raise DataError(f"y{tag}: expected {n} labels (one per sample of probs{tag}), got "
                            f"shape {labels.shape}")
        a, cols = _attribute_columns(g_, n, group_names, attributes, f"groups{tag}")
        if attrs is not None and a != attrs:
            raise DataError(f"groups{tag}: attributes {a}, but the test split's are {attrs}")
        attrs = a
        columns = [p[..., c].ravel() for c in range(p.shape[2])] if p.ndim == 3 else [p.ravel()]
        names = ([f"probs{tag}[..., {c}]" for c in range(p.shape[2])] if p.ndim == 3
                 else [f"probs{tag}"])

        def at(i: int, E: int = E, n: int = n) -> str:
            return f"at member {i // n}, sample {i % n}"

        columns = check_probabilities(columns, names, logits, at, source)
        raw.append((tag, np.stack(columns, axis=-1).reshape(E, n, len(columns)), labels, cols))
    E, C = raw[0][1].shape[0], raw[0][1].shape[2]
    if len(raw) > 1 and raw[1][1].shape[::2] != (E, C):
        raise DataError(f"probs_val: expected {E} members and {C} classes as probs, got shape "
                        f"{raw[1][1].shape}")
    classes = [str(c) for c in classes] if classes is not None else [str(c) for c in range(C)]
    if len(classes) != C:
        raise DataError(f"classes: {len(classes)} names for {C} classes")
    n_test = len(raw[0][2])
    # groups named over both splits at once, so codes agree
    codes, values = [], []
    for a in range(len(attrs)):
        both = np.concatenate([np.asarray(r[3][a]) for r in raw])
        if pd.isna(pd.Series(both)).any():
            raise DataError(f"groups: a missing group value for {attrs[a]!r}")
        c, u = pd.factorize(both)
        codes.append(c)
        values.append([text_of(v) for v in u])
    g_all, group_list, group_values = name_groups(codes, values, attrs)
    for (tag, p, labels, _), g in zip(raw, np.split(g_all, [n_test])):
        if np.issubdtype(labels.dtype, np.integer) or (
                np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels))):
            y_codes = labels.astype(np.int64)
            bad = y_codes[(y_codes < 0) | (y_codes >= C)]
            if len(bad):
                raise DataError(f"y{tag}: label {bad[0]} outside the classes 0..{C - 1}")
        else:
            index = {c: i for i, c in enumerate(classes)}
            unknown = [v for v in pd.unique(labels.astype(str)) if v not in index]
            if unknown:
                raise DataError(f"y{tag}: label {unknown[0]!r} is not one of the classes "
                                f"{classes}")
            y_codes = np.array([index[v] for v in labels.astype(str)], dtype=np.int64)
        parts.append(Part(p, y_codes, g.astype(np.int64)))
    names = [str(m) for m in members] if members is not None else [str(e) for e in range(E)]
    if len(names) != E:
        raise DataError(f"members: {len(names)} names for {E} members")
    imp = Imported(source, format, names, classes, group_list, attrs,
                   group_values, [], logits, [],
                   [ImportedCell({}, parts[0], parts[1] if len(parts) > 1 else None)])
    check_groups(imp)
    return imp


def read_npz(path: str | Path, logits: bool = False) -> Imported:
    """Member predictions from an .npz: ``probs`` [E, n, C], ``y``, ``g`` (+ ``groups``:
    names of g's codes, ``classes``, ``attributes``, ``members``, ``probs_val``, ``y_val``,
    ``g_val``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as err:
        what = "object arrays (pickled)" if "pickle" in str(err) else str(err)
        raise DataError(f"{path}: cannot read {what}; save names as strings "
                        "(np.array(names, dtype=str))") from None
    except OSError as err:
        raise DataError(f"{path}: not a readable .npz ({err})") from None
    known = ("probs", "y", "g", "groups", "classes", "attributes", "members", "probs_val",
             "y_val", "g_val")
    for name in ("probs", "y", "g"):
        if name not in arrays:
            raise DataError(f"{path}: array {name!r} not found{_close(name, list(arrays))} "
                            f"(arrays: {preview_names(list(arrays))})")
    unknown = [k for k in arrays if k not in known]
    if unknown:
        raise DataError(f"{path}: unknown array {unknown[0]!r}: expected "
                        f"{', '.join(known)}{_close(unknown[0], list(known))}")

    def names(key: str) -> list[str] | None:
        return None if key not in arrays else [str(v) for v in arrays[key].tolist()]

    return from_arrays(arrays["probs"], arrays["y"], arrays["g"],
                       probs_val=arrays.get("probs_val"), y_val=arrays.get("y_val"),
                       groups_val=arrays.get("g_val"), classes=names("classes"),
                       group_names=names("groups"), attributes=names("attributes"),
                       members=names("members"), logits=logits, source=str(path),
                       format="npz")


def read_predictions(path: str | Path, group: Sequence[str] | None = None,
                     grid: Sequence[str] | None = None, logits: bool = False) -> Imported:
    """Member predictions from a file: ``.npz`` arrays or a long-form table."""
    path = Path(path).expanduser()
    if path.suffix.lower() == ".npz":
        if group or grid:
            raise DataError(f"{path}: --group and --grid name columns of a long-form table; "
                            "an .npz names its groups in 'g' (and 'attributes')")
        return read_npz(path, logits)
    return read_long(path, group, grid, logits)


# ----------------------------------------------------------------------------- the run


def cell_digest(groups: list[str], classes: list[str], arrays: dict[str, np.ndarray]) -> str:
    """A digest of a cell's content (names and arrays): the same predictions give the same
    digest wherever they come from, so an import of an exported cell keeps its id."""
    h = hashlib.sha256(json.dumps([groups, classes]).encode())
    for name in ARRAY_NAMES:
        a = arrays.get(name)
        if a is None:
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.view(np.uint8).ravel() if a.size else b"")
    return h.hexdigest()[:16]


def _arrays(cell: ImportedCell) -> dict[str, np.ndarray]:
    out = {"probs_test": cell.test.probs, "y_test": cell.test.y, "g_test": cell.test.g}
    if cell.val is not None:
        out.update(probs_val=cell.val.probs, y_val=cell.val.y, g_val=cell.val.g)
    return out


def grid_key(column: str) -> str:
    """The config key of a grid column: a dotted name as it is (``dataset.label_noise``),
    any other under ``dataset`` (``arch`` -> ``dataset.arch``: the rows whose arch is ...)."""
    return column if "." in column else f"dataset.{column}"


def _label(value: Any) -> str:
    return json.dumps(grid_value(value), sort_keys=True, default=str)


def build_run(imp: Imported, overrides: Sequence[str] = (), name: str | None = None
              ) -> tuple[RunConfig, Plan, list[CellRecord]]:
    """The config, plan and cell records of a run of the imported predictions. Evaluation
    settings come from ``overrides`` (``--set``), else from what ``export`` wrote, else the
    defaults, with intervals from a bootstrap over test samples when there is one replicate."""
    from fairensemble.common.errors import ConfigError
    from fairensemble.config import parse_override, set_path, validate

    meta = imp.meta
    data: dict[str, Any] = {k: v for k, v in (meta.get("config") or {}).items()
                            if k in META_FIELDS and k not in ("ratios", "mixes", "grid")}
    data.pop("ensemble", None)
    ens = (meta.get("config") or {}).get("ensemble") or {}
    data["ensemble"] = {k: ens[k] for k in ("k", "draws") if ens.get(k) is not None}
    if imp.source is not None and "name" not in data:
        data["name"] = Path(imp.source).stem.split(".")[0] or "imported"
    data.setdefault("name", "imported")
    if name is not None:
        data["name"] = name
    for text in overrides:
        key, value = parse_override(text)
        if any(key == s or key.startswith(s + ".") for s in STRUCTURAL):
            raise ConfigError(f"--set {key}: set by the imported predictions (members, "
                              "replicates, grid and mixes come from the data)")
        set_path(data, key, value)

    # the cells' coordinates
    grid = {c: grid_key(c) for c in imp.grid}
    original = meta.get("config") or {}
    mixes = original.get("mixes") if any(MIX in c.labels for c in imp.cells) else None
    if any(MIX in c.labels for c in imp.cells) and not mixes:
        raise DataError(f"{imp.source}: column {MIX!r} needs the run's mixes, which "
                        "`fairensemble export` writes into a Parquet file's metadata")
    grid_lists: dict[str, list[Any]] = {}
    for col, key in grid.items():
        seen = list(dict.fromkeys(c.labels[col] for c in imp.cells))
        given = (original.get("grid") or {}).get(key)
        by_label = {_label(v): v for v in given or []}
        if given and all(_label(v) in by_label for v in seen):
            grid_lists[key] = [v for v in given if _label(v) in {_label(s) for s in seen}]
        else:
            try:
                grid_lists[key] = sorted(seen)
            except TypeError:
                grid_lists[key] = sorted(seen, key=str)
    has_ratio = any(RATIO in c.labels for c in imp.cells)
    replicates = sorted({c.labels.get(REPLICATE, 0) for c in imp.cells})

    groups, classes = imp.groups, imp.classes
    ratio_group = data.get("ratio_group")
    if ratio_group is None and has_ratio:
        raise ConfigError(f"ratio_group: the {RATIO!r} column gives a share of the training "
                          "set: name whose with --set ratio_group=GROUP")
    if ratio_group is None:  # a label only: the group with the fewest test samples
        counts = sum(np.bincount(c.test.g, minlength=len(groups)) for c in imp.cells)
        ratio_group = groups[int(np.argmin(counts))]
    moved = moved_indices(ratio_group, groups, imp.group_values)
    if not moved:
        first = f" or a value of {imp.attributes[0]!r}" if len(imp.attributes) > 1 else ""
        raise ConfigError(f"ratio_group: expected one of the groups ({preview_names(groups)})"
                          f"{first}, got {ratio_group!r}")
    if has_ratio:
        ratios = list(dict.fromkeys(c.labels[RATIO] for c in imp.cells))
        given = original.get("ratios") or []
        ratios = [r for r in given if r in ratios] + sorted(r for r in ratios if r not in given)
    else:  # the training mix is not known: the ratio group's share of the test samples
        test_g = np.concatenate([c.test.g for c in imp.cells])
        ratios = [round(float(np.isin(test_g, moved).mean()), 3)]

    data.update(
        dataset={"kind": "imported", "path": imp.source, "format": imp.format,
                 "sha256": (file_sha256(imp.source, "predictions")
                            if imp.source and Path(imp.source).is_file() else None),
                 "members": imp.members, "group": imp.attributes, "probs": imp.prob_columns,
                 "logits": imp.logits, "ratio": "column" if has_ratio else "test_share"},
        ratio_group=ratio_group, ratios=ratios, replicates=len(replicates),
        grid=grid_lists, mixes=mixes)
    data["ensemble"]["members"] = len(imp.members)
    for key, values in grid_lists.items():
        set_path(data, key, values[0])
    data.setdefault("analysis", {})
    data["analysis"].setdefault("ci", "bootstrap" if len(replicates) < 2 else "replicates")
    if len(imp.cells) == 1:  # one cell: evaluating it in this process spares a copy
        data.setdefault("executor", {}).setdefault("kind", "serial")
    cfg = validate(data)

    # the plan: cells in the order `run` plans them (grid point, mix, replicate); a cell is
    # found by its labels (a mix's ratio comes with its rows, so mixes are found by index)
    columns = [c for c in (imp.cells[0].labels if imp.cells else {})
               if not (c == RATIO and mixes is not None)]

    def key_of(labels: dict[str, Any], cols: Sequence[str]) -> str:
        return json.dumps({c: _label(labels[c]) for c in cols}, sort_keys=True)

    found = {key_of(c.labels, columns): c for c in imp.cells}
    exported = {key_of(m["labels"], list(m["labels"])): m for m in meta.get("cells", [])}
    layout = PointLayout(groups, classes, ratio_group, [], [],
                         imp.attributes if len(imp.attributes) > 1 else [], imp.group_values)
    points = cfg.grid_points()
    plan = Plan(cfg, points, [], [layout] * len(points))
    records = []
    for pi, point in enumerate(points):
        for mi in range(len(mixes) if mixes is not None else len(ratios)):
            for r in replicates:
                want = {**{col: point[key] for col, key in grid.items()}, RATIO: ratios[mi],
                        MIX: mi, REPLICATE: r}
                cell = found.pop(key_of(want, columns), None)
                if cell is None:
                    raise DataError(f"{imp.source}: no rows for " + ", ".join(
                        f"{c}={want[c]}" for c in columns) + "; analyze needs a cell (rows) "
                        f"for every combination of {', '.join(columns)} values")
                arrays = _arrays(cell)
                digest = cell_digest(groups, classes, arrays)
                c = Cell(id=stable_hash({"imported": digest,
                                         "cell": key_of(cell.labels, list(cell.labels))}),
                         point_index=pi, point=dict(point), mix_index=mi,
                         mix=mixes[mi] if mixes is not None else None,
                         ratio=float(cell.labels.get(RATIO, ratios[mi])), replicate=int(r),
                         sample_seed=0, member_seeds=[], counts=[])
                known = exported.get(key_of(cell.labels, list(cell.labels)))
                if known is not None and known.get("digest") == digest:
                    coords = dict(known["coords"])  # the exported run's own cell
                    c.id, c.replicate, c.ratio = (known["id"], coords.pop("replicate"),
                                                  coords.pop("ratio"))
                    c.mix_index, c.mix = coords.pop("mix_index"), coords.pop("mix", None)
                    c.point = coords
                plan.cells.append(c)
                records.append(CellRecord(
                    id=c.id, coords=c.coords(), groups=groups, classes=classes,
                    ratio_group=ratio_group, **arrays, seeds={"imported": digest}))
    if found:
        extra = next(iter(found.values())).labels
        raise DataError(f"{imp.source}: the rows of " + ", ".join(
            f"{c}={v}" for c, v in extra.items()) + " fall outside the grid of cells")
    return cfg, plan, records


def plan_json(plan: Plan, imp: Imported) -> dict[str, Any]:
    """plan.json of an imported run: the plan, marked imported."""
    return {**plan.to_json(), "imported": {
        "source": imp.source, "format": imp.format, "rows": imp.rows,
        "members": imp.members, "cells": {c.id: dict(c.coords()) for c in plan.cells}}}


def is_imported(run_dir: Path) -> bool | None:
    """Whether a run directory holds an imported run (None: it holds no run)."""
    store = RunStore(run_dir)
    if not (store.root / "plan.json").is_file():
        return None
    return "imported" in store.read_plan_json()


@dataclass
class Prepared:
    """An import checked and planned, nothing written yet: what ``write_run`` writes."""

    imported: Imported
    cfg: RunConfig
    plan: Plan
    records: list[CellRecord]
    run_dir: Path


def write_run(prepared: Prepared, on_start: Callable[[int], None] | None = None,
              on_progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Write the imported cells, the config and the plan into the run directory, then build
    the report; returns the summary. A directory holding a trained run is refused; one
    holding an earlier import is replaced (its outputs first, so none outlives its plan)."""
    from fairensemble.config import dump_config
    from fairensemble.report.build import build_report

    run_dir, records = prepared.run_dir, prepared.records
    if is_imported(run_dir) is False:
        raise StoreError(f"{run_dir}: holds a run trained by `fairensemble run`; analyze "
                         "writes imported predictions into a directory of its own (--out)")
    store = RunStore(run_dir)
    with store.locked():
        for record in records:
            store.write_cell(record)
        records.clear()  # the cells are on disk: the evaluation reads them from there
        prepared.imported.cells.clear()
        for name in ("metrics.parquet", "summary.json", "report.html"):
            (store.root / name).unlink(missing_ok=True)
        store.prepare(dump_config(prepared.cfg), plan_json(prepared.plan, prepared.imported))
        return build_report(run_dir, plan=prepared.plan, on_start=on_start,
                            on_progress=on_progress)


def prepare(predictions: str | Path | None = None, *, out: str | Path | None = None,
            overrides: Sequence[str] = (), group: Sequence[str] | None = None,
            grid: Sequence[str] | None = None, logits: bool = False, name: str | None = None,
            probs: Any = None, y: Any = None, groups: Any = None, probs_val: Any = None,
            y_val: Any = None, groups_val: Any = None, classes: Sequence[str] | None = None,
            members: Sequence[str] | None = None) -> Prepared:
    """Read and check member predictions and plan their run (see ``analyze``); nothing is
    written."""
    if (predictions is None) == (probs is None):
        raise DataError("analyze: expected a predictions file or probs=... arrays (one of them)")
    if predictions is not None:
        imp = read_predictions(predictions, group, grid, logits)
    else:
        imp = from_arrays(probs, y, groups, probs_val=probs_val, y_val=y_val,
                          groups_val=groups_val, classes=classes, members=members,
                          logits=logits)
    cfg, plan, records = build_run(imp, overrides, name)
    run_dir = Path(out) if out is not None else Path("runs") / cfg.name
    return Prepared(imp, cfg, plan, records, run_dir)


def analyze(predictions: str | Path | None = None, *,
            on_start: Callable[[int], None] | None = None,
            on_progress: Callable[[float], None] | None = None, **kwargs: Any
            ) -> dict[str, Any]:
    """Analyze member predictions made elsewhere: a run directory (``out``, default
    ``runs/<name>``) with every output ``report`` writes; returns the summary.

    ``predictions``: a long-form table or an .npz (see the module docstring), or ``probs``
    [E, n, C] (numpy or torch), ``y`` [n] and ``groups`` (values [n], [n, A], or a mapping of
    attribute -> values) with optional ``*_val`` arrays, ``classes`` and ``members`` names.
    ``overrides``: ``--set`` lines (metrics, ensemble.k, analysis.n_boot, ratio_group, ...);
    ``group``/``grid``: the long form's group and grid columns (default: every column that is
    not reserved is a group column); ``logits``: the inputs are logits (softmax, or a sigmoid
    for one ``p``); ``name``: the run's name. Everything is checked before anything is
    written."""
    return write_run(prepare(predictions, **kwargs), on_start, on_progress)


__all__ = ["Imported", "ImportedCell", "Part", "Prepared", "analyze", "build_run",
           "cell_digest", "check_probabilities", "from_arrays", "name_groups", "prepare",
           "read_long", "read_npz", "read_predictions", "write_run"]
