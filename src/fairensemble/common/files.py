"""Files written safely and read by content: atomic writes (a reader never sees half a file),
content digests that identities follow, and a build-once protocol for caches shared by
processes. The ground floor: nothing here imports another fairensemble module."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from fairensemble.common.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to, renamed to ``path`` when the block ends
    and removed when it raises: a reader never sees a half-written file. The file gets the
    permissions a plain ``open`` gives (0666 less the umask; ``tempfile.mkstemp``'s 0600 left
    a run's report and metrics unreadable to anyone else sharing the machine)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


def write_parquet(path: Path, table: pd.DataFrame) -> None:
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@lru_cache(maxsize=32)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def file_sha256(path: str | Path, field: str) -> str:
    """The sha256 of a file's bytes (cached while the file's size and mtime are unchanged), so
    an identity follows a file's content, not its name or place; errors name ``field``."""
    p = Path(path).expanduser()
    try:
        st = p.stat()
        return _file_sha256(str(p.resolve()), st.st_size, st.st_mtime_ns)
    except OSError as err:
        raise InputError(f"{field}: {p}: cannot read it ({err.strerror})") from None


T = TypeVar("T")


def build_once(final: Path, build: Callable[[Path], None], opened: Callable[[Path], T | None],
               what: str) -> T:
    """The cache file ``final`` as ``opened`` reads it; when it finds nothing usable,
    ``build(tmp)`` writes the file under a temporary name, renamed to ``final`` once complete,
    under a file lock beside it (``final`` with suffix ``.lock``), so that processes asking for
    the same file at once build it only once and a reader never sees half a file."""
    got = opened(final)
    if got is not None:
        return got
    with locked(final.with_suffix(".lock")):
        got = opened(final)  # another process may have built it meanwhile
        if got is not None:
            return got
        with atomic_path(final) as tmp:
            build(tmp)
    got = opened(final)
    if got is None:  # pragma: no cover - only if the file system lost the rename
        raise OSError(f"{final}: {what} could not be read back")
    return got


def load_cached(path: Path, what: str, mmap_mode: str = "r") -> np.ndarray | None:
    """The array cached at ``path`` (memory-mapped), or None when it is missing or cannot be
    read (logged as ``what``, e.g. "image cache"): the caller builds it again."""
    if not path.exists():
        return None
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (ValueError, OSError):
        log.warning("ignoring unreadable %s %s", what, path)
        return None


@contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: the atomic rename still keeps it safe
        yield
        return
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


