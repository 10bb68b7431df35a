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
so a 50-member ensemble on a million test samples (50 million rows) fits in a few GB."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fairensemble.common.errors import DataError, StoreError
from fairensemble.common.files import file_sha256
from fairensemble.common.seeds import stable_hash
from fairensemble.config import RunConfig
from fairensemble.interop.arrays import from_arrays, read_npz
from fairensemble.interop.format import (
    META_FIELDS,
    MIX,
    RATIO,
    REPLICATE,
    STRUCTURAL,
    Imported,
    _arrays,
    _label,
    cell_digest,
    grid_key,
)
from fairensemble.interop.long_form import read_long
from fairensemble.sweep.plan import Cell, Plan, PointLayout, check_ratio_group
from fairensemble.sweep.store import CellRecord, RunStore


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
    moved = check_ratio_group(ratio_group, groups, imp.group_values, imp.attributes)
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
                trained: dict[str, Any] = {}
                if known is not None and known.get("digest") == digest:
                    trained = {"n_train": int(known.get("n_train") or 0),
                               "cost": dict(known.get("cost") or {})}
                    coords = dict(known["coords"])  # the exported run's own cell
                    c.id, c.replicate, c.ratio = (known["id"], coords.pop("replicate"),
                                                  coords.pop("ratio"))
                    c.mix_index, c.mix = coords.pop("mix_index"), coords.pop("mix", None)
                    c.point = coords
                plan.cells.append(c)
                records.append(CellRecord(
                    id=c.id, coords=c.coords(), groups=groups, classes=classes,
                    ratio_group=ratio_group, **arrays, seeds={"imported": digest}, **trained))
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
    """An import checked and planned, nothing written yet."""

    imported: Imported
    cfg: RunConfig
    plan: Plan
    records: list[CellRecord]
    run_dir: Path

    def write(self) -> None:
        """Write the imported cells, the config and the plan into the run directory (held by
        the caller). A directory holding a trained run is refused; one holding an earlier
        import is replaced (its outputs first, so none outlives its plan)."""
        from fairensemble.config import dump_config

        if is_imported(self.run_dir) is False:
            raise StoreError(f"{self.run_dir}: holds a run trained by `fairensemble run`; "
                             "analyze writes imported predictions into a directory of its own "
                             "(--out)")
        store = RunStore(self.run_dir)
        with store.locked():
            for record in self.records:
                store.write_cell(record)
            self.records.clear()  # the cells are on disk: the evaluation reads them there
            self.imported.cells.clear()
            for name in ("metrics.parquet", "summary.json", "report.html"):
                (store.root / name).unlink(missing_ok=True)
            store.prepare(dump_config(self.cfg), plan_json(self.plan, self.imported))


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


