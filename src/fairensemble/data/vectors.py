"""Vector columns: one vector of numbers per row (a sentence encoder's embedding, a foundation
model's features) as a block of features of ``kind: table``.

Where they come from:

* Parquet and Arrow columns of type ``list``, ``large_list``, ``fixed_size_list`` (and the list
  views) of numbers, and pyarrow's ``fixed_shape_tensor`` extension; nested lists of one shape
  are tensors too. A tensor is flattened row-major: a 4x8 tensor is 32 features. The reader
  keeps these columns as Arrow (a pandas ``ArrowDtype`` column), so ``decode`` turns a whole
  column into one contiguous float32 matrix [n, d] (flatten + reshape, no loop over cells).
* ``.npy`` files (``dataset.vectors``, ``attach``): a matrix [n_rows, d] (or [n_rows, ...], a
  tensor per row) whose row i belongs to the table's row i as read, before any row is dropped.

Missing vectors: a null cell is a missing vector and a NaN (or null) element a missing element;
both read as NaN. ``standardise`` fills each missing element with the training draw's median
of that dimension, as a missing number is filled (``impute: drop`` drops such rows instead),
then centres and scales every dimension with the draw's mean and standard deviation (ddof 0; a
constant dimension is only centred), as numeric columns are. An infinite element is an error.

A column that cannot be vectors (lists of varying length, nested lists of varying shape,
dictionaries or structs, lists of text, lists mixed with text) is one ``DataError`` naming the
column and what it holds.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fairensemble.common.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

USE = ("a feature holds a number, a text or a vector of numbers of one length; leave the "
       "column out with dataset.drop (init table: --drop)")
ROWS_PER_PASS = 1024  # rows per block of the variance pass (float64 temporaries)
# three numbers or more in brackets (two could be an interval, "[20, 30]", a category)
TEXT_VECTOR = re.compile(r"^\s*\[\s*[-+0-9.eE]+(\s*[,\s]\s*[-+0-9.eEnaNA]+){2,}\s*\]\s*$")


@dataclass(frozen=True)
class Block:
    """A decoded vector column: ``matrix`` [n, d] float32 (NaN: missing), ``shape`` the shape
    of one cell (``(384,)`` for vectors, ``(4, 8)`` for tensors)."""

    matrix: np.ndarray
    shape: tuple[int, ...]

    @property
    def features(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def missing_rows(self) -> np.ndarray:
        return np.isnan(self.matrix).any(axis=1)

    def column(self, index: Any) -> pd.Series:
        """The matrix as a pandas column of ``fixed_size_list<float>[d]`` (zero-copy), which
        ``matrix`` reads back."""
        import pandas as pd
        import pyarrow as pa

        flat = pa.array(np.ascontiguousarray(self.matrix, dtype=np.float32).reshape(-1))
        cells = pa.FixedSizeListArray.from_arrays(flat, self.features)
        return pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([cells])), index=index)


def words(shape: tuple[int, ...] | list[int]) -> str:
    """``384-dimensional vectors``, ``4x8 tensors``."""
    if len(shape) == 1:
        return f"{shape[0]}-dimensional vectors"
    return "x".join(map(str, shape)) + " tensors"


# ----------------------------------------------------------------------------- kinds of column


def is_list_type(t: pa.DataType) -> bool:
    """A list-like Arrow type (what may hold vectors), extension types by their storage."""
    import pyarrow as pa

    if isinstance(t, pa.BaseExtensionType):
        return is_list_type(t.storage_type)
    types = pa.types
    return (types.is_list(t) or types.is_large_list(t) or types.is_fixed_size_list(t)
            or types.is_list_view(t) or types.is_large_list_view(t))


def arrow_type(values: pd.Series) -> pa.DataType | None:
    """The Arrow type of an Arrow-backed column, else None."""
    import pandas as pd

    return values.dtype.pyarrow_dtype if isinstance(values.dtype, pd.ArrowDtype) else None


def is_nested(values: pd.Series) -> bool:
    """An Arrow-backed column of lists, structs or maps: never a number or a text."""
    import pyarrow as pa

    t = arrow_type(values)
    if t is None:
        return False
    return is_list_type(t) or pa.types.is_nested(
        t.storage_type if isinstance(t, pa.BaseExtensionType) else t)


def require_scalar(values: pd.Series, role: str, name: str, source: str) -> None:
    """A target, group, subject or split column holds one value per row, not vectors,
    dictionaries or lists (one line naming the column otherwise)."""
    import pandas as pd

    what = None
    if is_nested(values):
        what = holds(arrow_type(values))
    elif pd.api.types.is_object_dtype(values.dtype):
        try:
            pd.factorize(values)
        except TypeError:  # cells that are lists, arrays or dictionaries
            what = _cells(values)
    if what is not None:
        raise DataError(f"{source}: {role} column {name!r} holds {what}; a {role} column holds "
                        "one value (a name or a number) per row")


def holds(t: pa.DataType) -> str:
    """What an Arrow column of type ``t`` holds, in words: ``384-dimensional vectors``,
    ``4x8 tensors``, ``vectors (lists of numbers)``, ``lists of text``, ``dictionaries``."""
    import pyarrow as pa

    if isinstance(t, pa.FixedShapeTensorType):
        return words(tuple(t.shape))
    if isinstance(t, pa.BaseExtensionType):
        return holds(t.storage_type)
    if is_list_type(t):
        inner = t.value_type
        if _numeric(inner):
            if pa.types.is_fixed_size_list(t):
                return words((t.list_size,))
            return "vectors (lists of numbers)"
        if is_list_type(inner):
            return "nested lists"
        return f"lists of {_kind(inner)}"
    return _kind(t)


def text_vector(values: list[Any]) -> str | None:
    """The first of ``values`` (a column's first distinct values) when every one is a vector
    written as text, ``"[0.12, -0.5, ...]"`` (how a CSV holds a list column); else None."""
    texts = [v for v in values if isinstance(v, str)]
    if not texts or len(texts) < len(values) or not all(TEXT_VECTOR.match(v) for v in texts):
        return None
    first = texts[0].strip()
    return first if len(first) <= 40 else first[:36] + " ..."


# ----------------------------------------------------------------------------- decoding


def decode(values: pd.Series, name: str, source: str) -> Block:
    """A vector column (Arrow lists or tensors, or cells that are lists or arrays) as a
    ``Block``; anything else is one ``DataError`` naming the column and what it holds."""
    import pyarrow as pa

    t = arrow_type(values)
    if t is not None:
        if not is_list_type(t):
            raise DataError(f"{source}: column {name!r} holds {holds(t)}; {USE}")
        return _decode_arrow(values.array.__arrow_array__().combine_chunks(), name, source)
    cells = values.tolist()
    try:
        arr = pa.array(cells, from_pandas=True)
    except (pa.ArrowException, ValueError, TypeError):
        raise DataError(f"{source}: column {name!r} holds {_cells(values)}; {USE}") from None
    if not is_list_type(arr.type):
        raise DataError(f"{source}: column {name!r} holds {holds(arr.type)}; {USE}")
    return _decode_arrow(arr, name, source)


def matrix(values: pd.Series) -> np.ndarray:
    """The [n, d] float32 matrix of a column ``Block.column`` made (no copy where Arrow has
    one chunk)."""
    arr = values.array.__arrow_array__().combine_chunks()
    flat = arr.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(len(arr), arr.type.list_size)


def _decode_arrow(arr: pa.Array, name: str, source: str) -> Block:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    tensor = tuple(t.shape) if isinstance(t, pa.FixedShapeTensorType) else None
    while isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
    n = len(arr)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    if not valid.any():
        raise DataError(f"{source}: column {name!r} holds no vector (every cell is missing)")
    shape: list[int] = []
    level: pa.Array = arr
    while is_list_type(level.type):
        if pa.types.is_list_view(level.type) or pa.types.is_large_list_view(level.type):
            level = level.cast(pa.large_list(level.type.value_field))
        outer = not shape
        if not outer and level.null_count:
            raise DataError(f"{source}: column {name!r} holds nested lists with missing inner "
                            "lists; expected vectors or tensors of one shape (a missing vector is "
                            "a null cell)")
        if pa.types.is_fixed_size_list(level.type):
            length = level.type.list_size
        else:
            lengths = pc.fill_null(pc.list_value_length(level), -1).to_numpy()
            length = _one_length(lengths, name, source, outer)
        shape.append(int(length))
        level = level.flatten()
    if not _numeric(level.type):
        raise DataError(f"{source}: column {name!r} holds {holds(t)} ({_short(t)}); {USE}")
    if 0 in shape:
        raise DataError(f"{source}: column {name!r} holds empty lists; expected vectors of at "
                        "least one number (a missing vector is a null cell)")
    d = math.prod(shape)
    flat = pc.cast(level, pa.float32(), safe=False).to_numpy(zero_copy_only=False)
    if valid.all():
        out = flat.reshape(n, d)
    else:
        out = np.full((n, d), np.nan, dtype=np.float32)
        out[valid] = flat.reshape(-1, d)
    infinite = np.isinf(out).any(axis=1)
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        raise DataError(f"{source}: column {name!r} holds an infinite value in data row "
                        f"{row + 1}; expected finite numbers (a missing element is NaN)")
    return Block(out, tensor if tensor and math.prod(tensor) == d else tuple(shape))


def _one_length(lengths: np.ndarray, name: str, source: str, outer: bool) -> int:
    present = lengths[lengths >= 0]
    distinct, counts = np.unique(present, return_counts=True)
    if len(distinct) == 1:
        return int(distinct[0])
    common = int(distinct[np.argmax(counts)])
    if not outer:
        other = int(distinct[distinct != common][0])
        raise DataError(f"{source}: column {name!r} holds nested lists of varying length "
                        f"(inner lists of {common} and of {other} values); expected vectors or "
                        "tensors of one shape")
    ref = int(np.flatnonzero(lengths == common)[0])
    bad = int(np.flatnonzero((lengths >= 0) & (lengths != common))[0])
    raise DataError(f"{source}: column {name!r} holds lists of varying length ({common} values "
                    f"in data row {ref + 1}, {int(lengths[bad])} in data row {bad + 1}); a vector "
                    "column needs one length in every row (a missing vector is a null cell)")


def _numeric(t: pa.DataType) -> bool:
    import pyarrow as pa

    types = pa.types
    return (types.is_integer(t) or types.is_floating(t) or types.is_boolean(t)
            or types.is_decimal(t))


def _kind(t: pa.DataType) -> str:
    import pyarrow as pa

    types = pa.types
    if types.is_string(t) or types.is_large_string(t) or types.is_string_view(t):
        return "text"
    if types.is_binary(t) or types.is_large_binary(t) or types.is_fixed_size_binary(t):
        return "bytes"
    if types.is_struct(t):
        return f"dictionaries ({_short(t)})"
    if types.is_map(t):
        return f"dictionaries ({_short(t)})"
    if types.is_null(t):
        return "missing values only"
    if types.is_temporal(t):
        return "dates or times"
    if types.is_dictionary(t):
        return _kind(t.value_type)
    if _numeric(t):
        return "numbers"
    return str(t)


def _short(t: pa.DataType) -> str:
    text = str(t)
    return text if len(text) <= 60 else text[:56] + " ..."


def _cells(values: pd.Series) -> str:
    """What an object column's cells are: ``a mix of lists (data row 1) and text (data row
    3: 'n/a')``, ``dictionaries (data row 1)``."""
    seen: dict[str, str] = {}
    for i, cell in enumerate(values.tolist()):
        kind = _cell_kind(cell)
        if kind is None or kind in seen:
            continue
        short = isinstance(cell, (str, int, float)) and len(repr(cell)) < 30
        shown = f": {cell!r}" if short else ""
        seen[kind] = f"{kind} (data row {i + 1}{shown})"
        if len(seen) == 3:
            break
    parts = list(seen.values())
    if len(parts) == 1:
        return parts[0]
    return "a mix of " + ", ".join(parts[:-1]) + " and " + parts[-1]


def _cell_kind(cell: Any) -> str | None:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return None
    if isinstance(cell, np.ndarray):
        return "lists" if cell.ndim == 1 else f"{cell.ndim}-dimensional arrays"
    if isinstance(cell, (list, tuple)):
        return "lists"
    if isinstance(cell, dict):
        return "dictionaries"
    if isinstance(cell, (str, np.str_)):
        return "text"
    if isinstance(cell, (bytes, bytearray)):
        return "bytes"
    if isinstance(cell, (bool, int, float, np.number, np.bool_)):
        return "numbers"
    return type(cell).__name__


# ----------------------------------------------------------------------------- .npy files


def attach(frame: pd.DataFrame, vectors: dict[str, str], source: str) -> pd.DataFrame:
    """The table with each ``.npy`` file of ``vectors`` (name -> path) as a vector column
    (a new frame; ``frame`` is left as it is). One line naming ``dataset.vectors.<name>`` when
    a file does not fit: missing, not a numeric matrix, or another number of rows."""
    if not vectors:
        return frame
    added = {}
    for name, file in vectors.items():
        field = f"dataset.vectors.{name}"
        if name in frame.columns:
            raise DataError(f"{field}: {source} already has a column {name!r}; name the vectors "
                            "differently")
        matrix_ = _load_npy(Path(file).expanduser(), field)
        if matrix_.shape[0] != len(frame):
            raise DataError(
                f"{field}: {file} holds {matrix_.shape[0]:,} rows but {source} has "
                f"{len(frame):,}; expected one row per table row, in the table's order as read "
                "(before any row is dropped)")
        shape = tuple(int(s) for s in matrix_.shape[1:])
        flat = np.ascontiguousarray(matrix_, dtype=np.float32).reshape(len(frame), -1)
        block = Block(flat, shape)
        infinite = np.isinf(flat).any(axis=1)
        if infinite.any():
            raise DataError(f"{field}: {file} holds an infinite value in row "
                            f"{int(np.flatnonzero(infinite)[0]) + 1}; expected finite numbers "
                            "(a missing element is NaN)")
        added[name] = block.column(frame.index)
    return frame.assign(**added)


def _load_npy(path: Path, field: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{field}: {path}: file not found")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err) or "Python objects" in str(err):
            raise DataError(f"{field}: {path} holds Python objects; expected a numeric "
                            "[n_rows, d] matrix (np.save of a float array)") from None
        raise DataError(f"{field}: {path} cannot be read as a .npy array "
                        f"({str(err).strip().splitlines()[0]})") from None
    except (OSError, EOFError) as err:
        raise DataError(f"{field}: {path} cannot be read as a .npy array "
                        f"({type(err).__name__})") from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise DataError(f"{field}: {path} is a .npz archive; expected one .npy matrix "
                        "(np.save, not np.savez)")
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{field}: {path} holds {arr.dtype} values; expected numbers (float32, "
                        "float64 or integers)")
    if arr.ndim < 2 or 0 in arr.shape[1:]:
        raise DataError(f"{field}: {path} holds an array of shape {tuple(arr.shape)}; expected "
                        "a [n_rows, d] matrix, one row per table row")
    return arr


# ----------------------------------------------------------------------------- standardising


def standardise(train: np.ndarray, others: list[np.ndarray]) -> list[np.ndarray]:
    """[train, *others] with each missing element filled by the training draw's median of its
    dimension (0 where the draw has none), then centred and scaled by the draw's mean and
    standard deviation of each dimension (module docstring). float32 out."""
    fill = None
    gaps = [np.isnan(m) for m in (train, *others)]
    if any(g.any() for g in gaps):
        columns = np.flatnonzero(np.logical_or.reduce([g.any(axis=0) for g in gaps]))
        fill = np.zeros(train.shape[1], dtype=np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a dimension the draw never has
            medians = np.nanmedian(train[:, columns], axis=0)
        fill[columns] = np.nan_to_num(medians, nan=0.0)

    def filled(m: np.ndarray, gap: np.ndarray) -> np.ndarray:
        return m if fill is None or not gap.any() else np.where(gap, fill, m)

    base = filled(train, gaps[0])
    mean = base.mean(axis=0, dtype=np.float64)
    squares = np.zeros_like(mean)
    for start in range(0, len(base), ROWS_PER_PASS):  # two passes, memory bounded
        squares += np.square(base[start:start + ROWS_PER_PASS] - mean).sum(axis=0)
    scale = np.sqrt(squares / max(len(base), 1))
    scale[scale < 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean))] = 1.0
    mean32, scale32 = mean.astype(np.float32), scale.astype(np.float32)
    out = []
    for m, gap in zip((train, *others), gaps):
        x = filled(m, gap).astype(np.float32, copy=True)
        x -= mean32
        x /= scale32
        out.append(x)
    return out


__all__ = ["Block", "attach", "decode", "holds", "is_list_type", "is_nested", "matrix",
           "require_scalar", "standardise", "text_vector", "words"]
