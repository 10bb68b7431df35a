"""The one table reader behind ``table``, ``images`` and ``init``: delimited text, Parquet or
Arrow in, a pandas DataFrame out.

* Parquet: a ``.parquet`` / ``.pq`` file, or a folder of ``*.parquet`` shards read together in
  name order (how Hugging Face ``datasets`` exports a split).
* Arrow: an Arrow IPC file or stream (``.arrow``, ``.feather``, ``.ipc``), or a folder of
  ``*.arrow`` shards (what ``datasets``' ``save_to_disk`` writes).
* List-like columns of Parquet and Arrow (``list``, ``large_list``, ``fixed_size_list``, list
  views, the ``fixed_shape_tensor`` extension) stay Arrow: a pandas ``ArrowDtype`` column,
  which ``data.vectors`` decodes as a whole (embeddings, one vector per row). Every other
  column is what ``pandas.read_parquet`` makes of it.
* Delimited text: ``.csv``, ``.tsv``, ``.txt``, ``.data`` or any other extension, optionally
  compressed (``.gz``, ``.bz2``, ``.zip``, ``.xz``). The delimiter is sniffed from
  the first lines: comma, tab, semicolon or pipe when one splits every line into the same
  number of fields (quotes respected), else runs of whitespace (``german.data``).
* Header: ``header=None`` sniffs it: the first line is data, not names, when some column holds
  a number there and numbers below (a header names columns, it does not measure them).
  Without a header the columns are ``columns`` when given, else ``"1"`` .. ``"N"``, the way
  dataset documentation numbers attributes.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import zipfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from fairensemble.common.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
PARQUET = (".parquet", ".pq")
ARROW = (".arrow", ".feather", ".ipc")
DELIMITERS = (",", "\t", ";", "|")
SNIFF_LINES = 50
BINARY = (".xlsx", ".xls", ".npz", ".npy", ".pkl", ".pickle")


def read_table(
    path: str | Path,
    na_values: list[str] | tuple[str, ...] = (),
    header: bool | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Read a table (see the module docstring); ``na_values`` are cell values read as missing
    besides pandas' own. Errors are ``DataError`` lines naming the file."""
    path = Path(path).expanduser()
    if path.is_dir():
        shards = sorted(path.glob("*.parquet")) or sorted(path.glob("*.arrow"))
        if not shards:
            raise DataError(f"{path}: a folder without *.parquet files (nor *.arrow); expected "
                            "a table file or a folder of Parquet shards")
        frame = _concat([_read_columnar(p, na_values) for p in shards], path)
    elif not path.is_file():
        raise DataError(f"{path}: file not found")
    elif _suffix(path) in (*PARQUET, *ARROW):
        frame = _read_columnar(path, na_values)
    elif _suffix(path) in BINARY:
        hint = (" (vectors aligned with a table's rows: dataset.vectors)"
                if _suffix(path) == ".npy" else "")
        raise DataError(f"{path}: a {_suffix(path)} file is not a table this reader knows; "
                        f"save it as CSV or Parquet{hint}")
    else:
        frame = _read_text(path, na_values, header, columns)
    if frame.shape[1] == 0:
        raise DataError(f"{path}: empty file (no columns)")
    if len(frame) == 0:
        raise DataError(f"{path}: empty table (0 rows)")
    if columns is not None and len(columns) != frame.shape[1]:
        raise DataError(f"dataset.columns: {len(columns)} names given but {path} has "
                        f"{frame.shape[1]} columns")
    return frame


def sniff(path: str | Path) -> tuple[str | None, bool]:
    """(delimiter, whether the first line is a header) of a text table; ``None`` as the
    delimiter means runs of whitespace."""
    lines = _first_lines(Path(path))
    delimiter = _delimiter(lines)
    return delimiter, _has_header(_fields(lines, delimiter))


# ----------------------------------------------------------------------------- internals


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in (*COMPRESSED, ".zip"):
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def _read_columnar(path: Path, na_values: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """A Parquet or Arrow file; list-like columns stay Arrow (module docstring)."""
    import pandas as pd
    import pyarrow.parquet as pq

    from fairensemble.data.vectors import is_list_type

    parquet = _suffix(path) in PARQUET
    what = "Parquet" if parquet else "an Arrow file"
    try:
        if parquet:
            lists = [f.name for f in pq.read_schema(path) if is_list_type(f.type)]
            if not lists:
                return _missing_as_nan(pd.read_parquet(path), na_values)
            table = pq.read_table(path, use_pandas_metadata=True)
        else:
            table = _read_arrow(path)
            lists = [f.name for f in table.schema if is_list_type(f.type)]
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path}: cannot be read as {what} ({_first_line(err)})") from None
    return _missing_as_nan(_arrow_frame(table, lists), na_values)


def _read_arrow(path: Path):  # -> pa.Table
    import pyarrow as pa

    with pa.OSFile(str(path)) as source:
        try:
            return pa.ipc.open_file(source).read_all()
        except pa.ArrowInvalid:  # not the file format: the stream format (datasets' .arrow)
            source.seek(0)
            return pa.ipc.open_stream(source).read_all()


def _arrow_frame(table, lists: list[str]) -> pd.DataFrame:
    """An Arrow table as pandas: the ``lists`` columns as ``ArrowDtype`` columns (no copy),
    the rest as ``pandas.read_parquet`` converts them, in the table's column order."""
    import pandas as pd

    frame = table.drop_columns(lists).to_pandas()
    added = {name: pd.Series(pd.arrays.ArrowExtensionArray(table.column(name)),
                             index=frame.index) for name in lists}
    order = [c for c in table.column_names if c in added or c in frame.columns]
    return frame.assign(**added)[order]


def _concat(frames: list[pd.DataFrame], folder: Path) -> pd.DataFrame:
    import pandas as pd

    first = list(frames[0].columns)
    for i, f in enumerate(frames[1:], 1):
        if list(f.columns) != first:
            raise DataError(f"{folder}: shard {i + 1} has columns {list(f.columns)[:6]}, "
                            f"the first shard {first[:6]}; expected the same columns")
    return pd.concat(frames, ignore_index=True)


def _first_lines(path: Path) -> list[str]:
    try:
        with _open_text(path) as fh:
            lines = []
            for line in fh:
                if line.strip():
                    lines.append(line.rstrip("\r\n"))
                if len(lines) >= SNIFF_LINES:
                    break
    except (OSError, UnicodeDecodeError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as err:
        raise DataError(f"{path}: cannot be read as a table ({_first_line(err)})") from None
    return lines


def _open_text(path: Path) -> io.TextIOBase:
    suffix = path.suffix.lower()
    if suffix in COMPRESSED:
        return COMPRESSED[suffix](path, "rt", encoding="utf-8", errors="strict")
    if suffix == ".zip":
        archive = zipfile.ZipFile(path)
        names = [n for n in archive.namelist() if not n.endswith("/")]
        if len(names) != 1:
            raise DataError(f"{path}: a zip archive with {len(names)} files; expected one table")
        return io.TextIOWrapper(archive.open(names[0]), encoding="utf-8")
    return open(path, encoding="utf-8")  # noqa: SIM115 - closed by the caller's with


def _delimiter(lines: list[str]) -> str | None:
    """The candidate delimiter that splits every sniffed line into the same number (> 1) of
    fields; else None (whitespace)."""
    best, best_score = None, 0.0
    for delim in DELIMITERS:
        widths = [len(row) for row in csv.reader(lines, delimiter=delim)]
        if not widths:
            continue
        width, count = Counter(widths).most_common(1)[0]
        score = count / len(widths)
        if width > 1 and score > best_score + 1e-9 and score >= 0.9:
            best, best_score = delim, score
    return best


def _fields(lines: list[str], delimiter: str | None) -> list[list[str]]:
    if delimiter is None:
        return [line.split() for line in lines]
    return [[f.strip() for f in row] for row in csv.reader(lines, delimiter=delimiter)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "infinity")


def _has_header(rows: list[list[str]]) -> bool:
    """A first row with a number in a column that holds numbers below is data. A first row of
    text only is a header (the common case), as is a table of a single row."""
    if len(rows) < 2:
        return True
    first, rest = rows[0], rows[1:]
    for j, cell in enumerate(first):
        below = [r[j] for r in rest if j < len(r) and r[j] != ""]
        if below and _is_number(cell) and sum(map(_is_number, below)) >= 0.9 * len(below):
            return False
    return True


def _read_text(path: Path, na_values: list[str] | tuple[str, ...], header: bool | None,
               columns: list[str] | None) -> pd.DataFrame:
    import pandas as pd

    lines = _first_lines(path)
    if not lines:
        raise DataError(f"{path}: empty file (no columns)")
    delimiter = _delimiter(lines)
    if header is None:
        header = _has_header(_fields(lines, delimiter))
    kwargs: dict = {"na_values": list(na_values) or None, "skipinitialspace": True}
    if delimiter is None:
        kwargs["sep"] = r"\s+"
    else:
        kwargs["sep"] = delimiter
    width = len(_fields(lines[:1], delimiter)[0])
    if columns is not None and len(columns) != width:
        raise DataError(f"dataset.columns: {len(columns)} names given but {path} has {width} "
                        "columns")
    if not header:
        kwargs.update(header=None, names=columns or [str(i + 1) for i in range(width)])
    try:
        frame = pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file (no columns)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as err:
        raise DataError(f"{path}: cannot be read as a table ({_first_line(err)})") from None
    if header and columns is not None:
        frame.columns = columns
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _missing_as_nan(frame: pd.DataFrame, na_values: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Parquet's text columns with ``na_values`` markers: the markers become NaN, and a column
    that is numeric apart from them becomes numeric, as ``read_csv`` would read it."""
    import pandas as pd

    if not na_values:
        return frame
    for column in frame.columns:
        if pd.api.types.is_object_dtype(frame[column]) or pd.api.types.is_string_dtype(
                frame[column]):
            try:
                marked = frame[column].isin(list(na_values))
            except TypeError:  # cells that are dictionaries or arrays: no marker among them
                continue
            if not marked.any():
                continue
            cleaned = frame[column].mask(marked)
            try:
                frame[column] = pd.to_numeric(cleaned)
            except (ValueError, TypeError):
                frame[column] = cleaned
    return frame


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


__all__ = ["read_table", "sniff"]
