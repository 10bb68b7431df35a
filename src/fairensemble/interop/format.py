"""The long form's words, shared by import and export: its column names, the Parquet metadata
``export`` writes, what an import holds (``Imported``), and a cell's digest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fairensemble.common.text import grid_value
from fairensemble.sweep.store import PREDICTION_ARRAYS

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


def cell_digest(groups: list[str], classes: list[str], arrays: dict[str, np.ndarray]) -> str:
    """A digest of a cell's content (names and arrays): the same predictions give the same
    digest wherever they come from, so an import of an exported cell keeps its id."""
    h = hashlib.sha256(json.dumps([groups, classes]).encode())
    for name in PREDICTION_ARRAYS:  # the votes of a run with raters do not travel
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


def small_int(n: int) -> type:
    """The smallest signed integer type holding codes 0..n-1 (per-row codes of millions of
    rows: int8 where int64 would take eight times the memory)."""
    return next(t for t in (np.int8, np.int16, np.int32, np.int64) if n <= np.iinfo(t).max)
