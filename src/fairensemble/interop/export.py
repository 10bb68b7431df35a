"""A run's cells as the long form ``analyze`` reads (``fairensemble export``): one row per
sample and member, Parquet (with what evaluating the cells depends on in its metadata, so
``export`` then ``analyze`` gives the run's own metrics) or CSV (rows only).

Columns: ``member``, ``sample`` (0..n-1 within its split), ``split`` (test / val), ``y`` (the
class name), the group column(s) (one per attribute of intersectional groups), ``p_<class>``
(float32, as stored), ``ratio``, ``replicate``, ``mix_index`` (runs with explicit mixes) and
one column per grid field, named as in ``grid`` and holding the point's value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fairensemble.common.errors import DataError
from fairensemble.common.files import atomic_path
from fairensemble.common.text import grid_value
from fairensemble.interop.format import (
    LABEL,
    MEMBER,
    META_FORMAT,
    META_KEY,
    MIX,
    PROB_PREFIX,
    RATIO,
    REPLICATE,
    RESERVED,
    SAMPLE,
    SPLIT,
    cell_digest,
)
from fairensemble.sweep.plan import Plan, PointLayout
from fairensemble.sweep.store import CellRecord, RunStore

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def group_columns(plan: Plan, layout: PointLayout) -> list[str]:
    """The group columns a layout's groups are written in: its attributes, or the one column
    the data named (``group`` when it named none)."""
    if len(layout.attributes) > 1:
        return list(layout.attributes)
    named = getattr(plan.cfg.dataset, "group", None)
    name = named[0] if isinstance(named, list) and len(named) == 1 else named
    if not isinstance(name, str) or name in RESERVED or name.startswith(PROB_PREFIX):
        name = "group"
    return [name]


def _metadata(plan: Plan, digests: dict[str, str], labels: dict[str, dict[str, Any]],
              trained: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What evaluating the cells depends on besides their rows (``importer.META_FIELDS``),
    the names in their order, and each cell's coordinates, id, content digest and what
    training it took (training-set size and cost: the levers' table prices settings with it)."""
    cfg = plan.cfg
    return {
        "format": META_FORMAT,
        "config": {
            "name": cfg.name, "seed": cfg.seed,
            "ratio_group": cfg.ratio_group or plan.ratio_group.get(0),
            "metrics": cfg.metrics, "primary_metric": cfg.primary_metric,
            "test_mix": cfg.test_mix, "analysis": cfg.analysis.model_dump(mode="json"),
            "ensemble": {"k": cfg.ensemble.k, "draws": cfg.ensemble.draws},
            "ratios": cfg.ratios, "mixes": cfg.mixes, "grid": cfg.grid,
        },
        "classes": plan.layouts[0].classes,
        "groups": plan.layouts[0].groups,
        "grid_columns": list(cfg.grid),
        "cells": [{"labels": labels[c.id], "coords": c.coords(), "id": c.id,
                   "digest": digests[c.id], **trained[c.id]} for c in plan.cells],
    }


def _int_classes(classes: list[str]) -> bool:
    """Whether every class name is an integer (the label column is then an integer)."""
    return all(c.lstrip("-").isdigit() for c in classes)


def _batches(record: CellRecord, cell_labels: dict[str, Any], member_names: list[Any],
             attrs: list[str], layout: PointLayout, schema: Any) -> Any:
    """The cell's rows, one record batch per member and split."""
    import pyarrow as pa

    int_classes = _int_classes(record.classes)
    for split, probs, y, g in (("test", record.probs_test, record.y_test, record.g_test),
                               ("val", record.probs_val, record.y_val, record.g_val)):
        if probs is None:
            continue
        n = probs.shape[1]
        label = (pa.array(np.array([int(c) for c in record.classes])[y]) if int_classes else
                 pa.DictionaryArray.from_arrays(pa.array(y.astype(np.int32)),
                                                record.classes).cast(pa.string()))
        per_attr = ([[v[a] for v in layout.group_values] for a in range(len(attrs))]
                    if len(attrs) > 1 else [record.groups])
        groups = [pa.DictionaryArray.from_arrays(pa.array(g.astype(np.int32)), values)
                  .cast(pa.string()) for values in per_attr]
        for e, name in enumerate(member_names):
            columns = {MEMBER: pa.repeat(pa.scalar(name), n), SAMPLE: pa.array(np.arange(n)),
                       SPLIT: pa.repeat(pa.scalar(split), n), LABEL: label,
                       **dict(zip(attrs, groups)),
                       **{f"{PROB_PREFIX}{c}": pa.array(np.ascontiguousarray(probs[e, :, k]))
                          for k, c in enumerate(record.classes)},
                       **{col: pa.repeat(pa.scalar(v), n) for col, v in cell_labels.items()}}
            yield pa.RecordBatch.from_arrays(
                [columns[f.name].cast(f.type) for f in schema], schema=schema)


def export_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the run's cells in the long form to ``out`` (default RUN_DIR/predictions.parquet;
    ``.csv`` for CSV); returns the path. Written to a temporary name and renamed."""
    import pyarrow as pa

    from fairensemble.evaluation.analysis import check_complete, load_run

    cfg, plan = load_run(run_dir)
    store = RunStore(run_dir)
    check_complete(plan, store)
    out = Path(out) if out is not None else store.root / "predictions.parquet"
    kind = FORMATS.get(out.suffix.lower())
    if kind is None:
        raise DataError(f"--out: expected a .parquet or .csv file, got {out.name!r}")
    layout = plan.layouts[0]
    attrs = group_columns(plan, layout)
    members = (list(cfg.dataset.members) if cfg.dataset.kind == "imported"
               else list(range(cfg.ensemble.members)))
    grid_cols = list(cfg.grid)
    labels = {}
    for c in plan.cells:
        labels[c.id] = {**{f: grid_value(c.point[f]) for f in grid_cols}, RATIO: c.ratio,
                        REPLICATE: c.replicate, **({MIX: c.mix_index} if cfg.mixes else {})}
    first = next(iter(labels.values()))
    fields = [pa.field(MEMBER, pa.string() if cfg.dataset.kind == "imported" else pa.int64()),
              pa.field(SAMPLE, pa.int64()), pa.field(SPLIT, pa.string()),
              pa.field(LABEL, pa.int64() if _int_classes(layout.classes) else pa.string()),
              *[pa.field(a, pa.string()) for a in attrs],
              *[pa.field(f"{PROB_PREFIX}{c}", pa.float32()) for c in layout.classes],
              *[pa.field(col, pa.array([labels[c.id][col] for c in plan.cells]).type)
                for col in first]]
    schema = pa.schema(fields)
    digests: dict[str, str] = {}
    trained: dict[str, dict[str, Any]] = {}
    with atomic_path(out) as tmp:
        writer = _writer(kind, str(tmp), schema)
        for cell in plan.cells:
            record = store.read_cell(cell.id)
            digests[cell.id] = cell_digest(record.groups, record.classes, record.arrays())
            trained[cell.id] = {"n_train": record.n_train, "cost": record.cost}
            lay = plan.layouts[cell.point_index]
            for batch in _batches(record, labels[cell.id], members, group_columns(plan, lay),
                                  lay, schema):
                writer.write_batch(batch)
        if kind == "parquet":  # the file's footer: written last, when the digests are known
            writer.add_key_value_metadata({META_KEY.decode(): json.dumps(
                _metadata(plan, digests, labels, trained))})
        writer.close()
    return out


def _writer(kind: str, path: str, schema: Any) -> Any:
    if kind == "csv":
        import pyarrow.csv as pcsv

        return pcsv.CSVWriter(path, schema)
    import pyarrow.parquet as pq

    return pq.ParquetWriter(path, schema)
