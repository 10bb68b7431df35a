"""The run directory: resolved config, one ``.npz`` + ``.json`` per finished cell, atomic writes.

Layout::

    RUN_DIR/config.yaml          the resolved config
    RUN_DIR/cells/<id>.npz       probs_test [E, n_test, C] float32, y_test, g_test (+ _val)
    RUN_DIR/cells/<id>.json      the cell's coordinates, seeds and timings; written last, so
                                 a cell is finished exactly when its JSON exists
    RUN_DIR/metrics.parquet, summary.json, figures/, report.html

Every file is written to a temporary name in the same folder and renamed into place, so a run
killed at any instant leaves only whole files behind. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class RunStore:
    """Reads and writes one run directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.cells = self.root / "cells"

    def prepare(self, config_yaml: str) -> None:
        self.cells.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.root / "config.yaml", config_yaml)
        for stale in self.cells.glob(".*.tmp"):  # partial files of a killed run
            stale.unlink(missing_ok=True)

    def has_cell(self, cell_id: str) -> bool:
        return (self.cells / f"{cell_id}.json").is_file() and (
            self.cells / f"{cell_id}.npz"
        ).is_file()

    def write_cell(self, cell_id: str, arrays: dict[str, np.ndarray], meta: dict) -> None:
        import io

        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self.cells / f"{cell_id}.npz", buf.getvalue())
        write_json(self.cells / f"{cell_id}.json", meta)

    def read_cell(self, cell_id: str) -> tuple[dict[str, np.ndarray], dict]:
        with np.load(self.cells / f"{cell_id}.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads((self.cells / f"{cell_id}.json").read_text())
        return arrays, meta

    def read_meta(self, cell_id: str) -> dict:
        return json.loads((self.cells / f"{cell_id}.json").read_text())
