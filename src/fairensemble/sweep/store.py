"""The run directory, the single source of truth after training: plan, cell records, integrity,
cached evaluations and the lock that keeps two runs out of one directory.

Layout::

    RUN_DIR/config.yaml            the resolved config
    RUN_DIR/plan.json              every cell: id, coordinates, seeds, counts; groups, classes
                                   and ratio group per grid point
    RUN_DIR/cells/<id>.npz         probs_test [E, n_test, C] float32, y_test, g_test (+ *_val;
                                   + votes_test [n_test, C] float32 where raters labelled it)
    RUN_DIR/cells/<id>.json        the cell's record without its arrays, and the sha256 of the
                                   .npz; written last, so a cell is finished when its JSON
                                   exists and the .npz matches the checksum
    RUN_DIR/cells/corrupt/         cell files that failed the check, moved aside
    RUN_DIR/evals/<hash>/<id>.parquet  the cell's evaluated metrics for one evaluation spec
    RUN_DIR/preview.npz            a sample of the data for the data figure (synthetic runs)
    RUN_DIR/metrics.parquet, summary.json, figures/, report.html

Every file is written to a temporary name in the same folder and renamed into place, so a run
killed at any instant leaves only whole files behind. Nothing is pickled. Only the driver
writes here: workers hand their results back.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairensemble.common.errors import StoreError
from fairensemble.common.files import (
    atomic_write_bytes,
    atomic_write_text,
    write_json,
    write_parquet,
)

PREDICTION_ARRAYS = ("probs_test", "y_test", "g_test", "probs_val", "y_val", "g_val")
# votes_test: the raters' votes per test sample [n_test, C] (runs with raters; older cells and
# imported predictions have none)
ARRAY_NAMES = (*PREDICTION_ARRAYS, "votes_test")


class CorruptCell(StoreError):
    """A cell file that fails its checksum or cannot be read."""


class RunLocked(StoreError):
    """Another live process holds the run directory."""


@dataclass
class CellRecord:
    """One trained cell: its members' predicted probabilities on the test (and validation)
    split with the labels and group codes they are scored against, and where it sits in the
    sweep. What workers return and the store writes and reads."""

    id: str
    """The cell's id: a hash of everything that determines its training."""
    coords: dict[str, Any]
    """Where the cell sits in the sweep: its grid fields, ``ratio``, ``replicate``,
    ``mix_index`` (and ``mix``, with explicit mixes)."""
    groups: list[str]
    """Group names; ``g_test`` and ``g_val`` hold indices into this list."""
    classes: list[str]
    """Class names; ``y_test`` and ``y_val`` hold indices into this list."""
    ratio_group: str
    """The group whose training share the sweep moves."""
    probs_test: np.ndarray
    """float32 [E, n_test, C]: each member's predicted probabilities on the test split."""
    y_test: np.ndarray
    """int [n_test]: the test labels (class indices)."""
    g_test: np.ndarray
    """int [n_test]: the test samples' groups (group indices)."""
    probs_val: np.ndarray | None = None
    """float32 [E, n_val, C]: the same on the validation split, when the data have one."""
    y_val: np.ndarray | None = None
    """int [n_val]: the validation labels."""
    g_val: np.ndarray | None = None
    """int [n_val]: the validation samples' groups."""
    seeds: dict[str, Any] = field(default_factory=dict)
    """The seeds the cell used: ``sample`` (its training draw) and ``members`` (one each)."""
    n_train: int = 0
    """Rows in the cell's training set."""
    train_counts: list[list[int]] = field(default_factory=list)
    """Training rows per group (outer) and class (inner)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Where the time went: seconds loading data and training, and how it ran."""
    cost: dict[str, Any] = field(default_factory=dict)
    """What the members cost (``runner.cell_cost``): trainings, member-epochs, rows seen,
    seconds and FLOPs of training, and the grid point's shared FLOPs (a frozen backbone)."""
    mitigation: dict[str, Any] = field(default_factory=dict)
    """The mitigation the members trained under (empty for none): its kind, the group x class
    cells by name and, for Group DRO, each member's final weights on them."""
    votes_test: np.ndarray | None = None
    """float32 [n_test, C]: the raters' votes per test sample (data with raters)."""
    raters: dict[str, Any] = field(default_factory=dict)
    """What the votes are: where they came from and how many raters (the runner's record)."""

    @property
    def members(self) -> int:
        return int(self.probs_test.shape[0])

    @property
    def has_val(self) -> bool:
        return self.probs_val is not None

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in ARRAY_NAMES if getattr(self, k) is not None}

    def meta(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.coords,
            "coords": self.coords,
            "groups": self.groups,
            "classes": self.classes,
            "ratio_group": self.ratio_group,
            "seeds": self.seeds,
            "n_train": self.n_train,
            "train_counts": self.train_counts,
            "timings": self.timings,
            "cost": self.cost,
            "mitigation": self.mitigation,
            **({"raters": self.raters} if self.raters else {}),
        }

    @classmethod
    def from_parts(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> CellRecord:
        keys = ("id", "coords", "groups", "classes", "ratio_group", "seeds", "n_train",
                "train_counts", "timings")
        later = {k: meta.get(k) or {} for k in ("cost", "mitigation", "raters")}  # older: none
        return cls(**{k: meta[k] for k in keys}, **later,
                   **{k: arrays.get(k) for k in ARRAY_NAMES})


@dataclass
class _Hold:
    """A run directory this process holds: its lock file, how deep the holding nests, and the
    cells verified against their checksum (or written) meanwhile, with the size and mtime of
    their .npz then. No other process writes the directory while it is held, so a verified
    cell needs no second read until the hold ends."""

    file: Any
    depth: int = 0
    verified: dict[str, tuple[int, int]] = field(default_factory=dict)


_HELD: dict[str, _Hold] = {}  # run directories this process holds, by resolved path


class RunStore:
    """Reads and writes one run directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.cells = self.root / "cells"

    # -- the lock -------------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the run directory for this process (re-entrant). An OS lock on an open file:
        it dies with its process, so a killed run's lock never blocks the next one."""
        self.root.mkdir(parents=True, exist_ok=True)
        key = str(self.root.resolve())
        held = _HELD.get(key)
        if held is None:
            fh = open(self.root / ".lock", "a+")  # noqa: SIM115 - held until released
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                fh.close()
                raise RunLocked(
                    f"{self.root}: another fairensemble run ({holder}) is using this run "
                    "directory; wait for it to finish"
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
            fh.flush()
            held = _HELD[key] = _Hold(fh)
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0:
                del _HELD[key]
                fcntl.flock(held.file.fileno(), fcntl.LOCK_UN)
                held.file.close()

    # -- config and plan ------------------------------------------------------------------
    def prepare(self, config_yaml: str, plan_json: dict[str, Any]) -> None:
        self.cells.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.root / "config.yaml", config_yaml)
        write_json(self.root / "plan.json", plan_json)
        for stale in self.cells.glob(".*.tmp"):  # partial files of a killed run
            stale.unlink(missing_ok=True)

    def read_plan_json(self) -> dict[str, Any]:
        path = self.root / "plan.json"
        if not path.is_file():
            raise StoreError(f"{path}: not found; this run directory was not written by "
                             "`fairensemble run` (or its run was stopped before planning)")
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            raise StoreError(f"{path}: unreadable plan (not valid JSON)") from None

    # -- cells ----------------------------------------------------------------------------
    def _paths(self, cell_id: str) -> tuple[Path, Path]:
        return self.cells / f"{cell_id}.npz", self.cells / f"{cell_id}.json"

    def has_cell(self, cell_id: str) -> bool:
        """Whether the cell's files are there (cheap; ``check_cells`` verifies contents)."""
        npz, meta = self._paths(cell_id)
        return meta.is_file() and npz.is_file()

    def has_record(self, cell_id: str) -> bool:
        """Whether the cell was finished: its JSON, written last, exists (cheap)."""
        return self._paths(cell_id)[1].is_file()

    def write_cell(self, record: CellRecord) -> None:
        buf = io.BytesIO()
        np.savez(buf, **record.arrays())
        data = buf.getvalue()
        npz, meta = self._paths(record.id)
        atomic_write_bytes(npz, data)
        write_json(meta, {**record.meta(), "npz_sha256": hashlib.sha256(data).hexdigest()})
        self.mark_verified(record.id)

    # -- what this process has verified while holding the directory ----------------------
    def _verified(self) -> dict[str, tuple[int, int]] | None:
        held = _HELD.get(str(self.root.resolve()))
        return None if held is None else held.verified

    def _stamp(self, cell_id: str) -> tuple[int, int] | None:
        try:
            st = self._paths(cell_id)[0].stat()
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def mark_verified(self, cell_id: str) -> None:
        """Note that the cell was just written or read intact (by this process or one of its
        workers); remembered while this process holds the run directory."""
        verified = self._verified()
        stamp = self._stamp(cell_id)
        if verified is not None and stamp is not None:
            verified[cell_id] = stamp

    def is_verified(self, cell_id: str) -> bool:
        """Whether the cell was verified while this process holds the run directory, and its
        .npz is unchanged since (same size and mtime)."""
        verified = self._verified()
        return (verified is not None and cell_id in verified
                and verified[cell_id] == self._stamp(cell_id) and self.has_record(cell_id))

    # -- reading and checking -------------------------------------------------------------
    def _meta_and_bytes(self, cell_id: str) -> tuple[dict[str, Any], bytes]:
        """The cell's record and .npz bytes, checked against the checksum in the record."""
        npz, meta_path = self._paths(cell_id)
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            raise CorruptCell(f"{meta_path}: unreadable cell record") from None
        try:
            data = npz.read_bytes()
        except OSError:
            raise CorruptCell(f"{npz}: missing or unreadable cell file") from None
        if hashlib.sha256(data).hexdigest() != meta.get("npz_sha256"):
            raise CorruptCell(f"{npz}: cell file does not match its checksum (truncated or "
                              "changed after it was written)")
        return meta, data

    def _load(self, cell_id: str) -> CellRecord:
        meta, data = self._meta_and_bytes(cell_id)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            record = CellRecord.from_parts(meta, arrays)
        except Exception:  # a checksum match on a file that was never a valid cell
            raise CorruptCell(f"{self._paths(cell_id)[0]}: unreadable cell file") from None
        self.mark_verified(cell_id)
        return record

    def read_meta(self, cell_id: str) -> dict[str, Any]:
        """The cell's record without its arrays (coordinates, seeds, counts, timings, cost):
        its small JSON, read without the .npz."""
        path = self._paths(cell_id)[1]
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise StoreError(f"{path}: cell not found") from None
        except (OSError, json.JSONDecodeError):
            raise CorruptCell(f"{path}: unreadable cell record") from None

    def read_cell(self, cell_id: str) -> CellRecord:
        """The cell's record, verified against its checksum; ``CorruptCell`` names the file."""
        if not self.has_record(cell_id):
            raise StoreError(f"{self.cells / cell_id}.npz: cell not found")
        return self._load(cell_id)

    def check_cells(self, cell_ids: list[str], set_aside: bool = True
                    ) -> tuple[set[str], list[str]]:
        """Which of ``cell_ids`` are finished and intact, each checked against its checksum
        (a cell verified already while this process holds the directory is not read again).
        A damaged cell raises ``CorruptCell`` naming its file, or with ``set_aside`` is moved
        to ``cells/corrupt/`` (so it gets retrained) and described in the returned lines."""
        done, moved = set(), []
        for cell_id in cell_ids:
            if not self.has_record(cell_id):
                continue  # never finished (a killed run may leave an .npz alone: it is redone)
            if not self.is_verified(cell_id):
                try:
                    self._meta_and_bytes(cell_id)
                except CorruptCell as err:
                    if not set_aside:
                        raise
                    moved.append(self.set_aside(cell_id, err))
                    continue
                self.mark_verified(cell_id)
            done.add(cell_id)
        return done, moved

    def set_aside(self, cell_id: str, err: Exception) -> str:
        """Move a damaged cell to ``cells/corrupt/``; the line that says so."""
        return f"{err}; moved to {self.quarantine(cell_id)} and retraining it"

    def quarantine(self, cell_id: str) -> Path:
        dest = self.cells / "corrupt"
        dest.mkdir(parents=True, exist_ok=True)
        for path in self._paths(cell_id):
            if path.exists():
                os.replace(path, dest / path.name)
        return dest

    # -- evaluations ----------------------------------------------------------------------
    def eval_dir(self, spec_hash: str) -> Path:
        return self.root / "evals" / spec_hash

    def write_evaluation(self, spec_hash: str, cell_id: str, table: pd.DataFrame,
                         boot: pd.DataFrame | None = None) -> None:
        folder = self.eval_dir(spec_hash)
        if boot is not None:
            write_parquet(folder / f"{cell_id}.boot.parquet", boot)
        write_parquet(folder / f"{cell_id}.parquet", table)

    def read_evaluation(self, spec_hash: str, cell_id: str, with_boot: bool
                        ) -> tuple[pd.DataFrame, pd.DataFrame | None] | None:
        """A cached evaluation, or None when there is none (or it is unreadable: an
        evaluation is a cache and is simply recomputed)."""
        folder = self.eval_dir(spec_hash)
        try:
            table = pd.read_parquet(folder / f"{cell_id}.parquet")
            boot = pd.read_parquet(folder / f"{cell_id}.boot.parquet") if with_boot else None
        except Exception:
            return None
        return table, boot

    def prune_evaluations(self, keep: str) -> None:
        """Drop cached evaluations of other specs (they would only grow)."""
        root = self.root / "evals"
        if not root.is_dir():
            return
        for folder in root.iterdir():
            if folder.is_dir() and folder.name != keep:
                for f in folder.iterdir():
                    f.unlink(missing_ok=True)
                folder.rmdir()

    # -- preview --------------------------------------------------------------------------
    def write_preview(self, arrays: dict[str, np.ndarray]) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self.root / "preview.npz", buf.getvalue())

    def read_preview(self) -> dict[str, np.ndarray] | None:
        path = self.root / "preview.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception:
            return None
