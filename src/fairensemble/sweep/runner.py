"""Plan a run from its data, train the missing cells on an executor, write what comes back.

Cells of one grid point and replicate that use the stacked MLP trainer form one *unit* and
train as one stacked tensor program; other models train cell by cell. A unit runs wherever
the executor puts it (this process, a local pool, a Ray cluster) and *returns* its cells'
records together with their evaluation when the caller hands one in (``evaluate``: computed
where the arrays already are); the driver writes both into the run directory. This module
never imports the evaluation side: the evaluator is a plain callable it is given. Whichever
executor runs a cell, its numbers are the same: every random stream comes from the run seed
and the cell's identity alone, and the thread count is fixed by the config.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fairensemble.common.errors import ConfigError, DataWarning
from fairensemble.common.files import atomic_write_bytes
from fairensemble.common.seeds import derive_seed
from fairensemble.config import RunConfig, dump_config, validate
from fairensemble.data import Dataset, load_dataset
from fairensemble.data.sampling import SamplingError, mix_shares, plan_counts, sample_indices
from fairensemble.sweep.executors import (
    Executor,
    check_readable,
    make_executor,
    resolve,
    unit_threads,
)
from fairensemble.sweep.plan import (
    Cell,
    Plan,
    PointLayout,
    build_plan,
    check_ratio_group,
    n_mixes,
)
from fairensemble.sweep.store import CellRecord, RunStore
from fairensemble.train.streams import CellData, Inputs, TrainStats


def uses_stack(cfg: RunConfig) -> bool:
    return cfg.model.stacked


def data_seed(cfg: RunConfig) -> int:
    # Independent of the grid point: every difficulty level sees the same base draws.
    return derive_seed(cfg.seed, "data")


def load_for(cfg: RunConfig) -> Dataset:
    """The dataset of a (grid-point) config, from the run's data seed; with a frozen backbone,
    its images replaced by the backbone's features (computed once, then read from the cache)."""
    ds = load_dataset(cfg.dataset, data_seed(cfg))
    if cfg.model.freeze == "backbone":
        from fairensemble.train.frozen import feature_dataset

        ds = feature_dataset(ds, cfg.model, cfg.train, cfg.seed)
    return ds


# ----------------------------------------------------------------------------- planning


def moved_groups(name: str, ds: Dataset) -> list[int]:
    """The groups of ``ds`` a sweep of ``name`` moves (``plan.check_ratio_group``)."""
    return check_ratio_group(name, ds.groups, ds.group_values, ds.attributes)


def resolve_ratio_group(cfg: RunConfig, ds: Dataset) -> str:
    name = cfg.ratio_group or ds.hard_group or ds.groups[-1]
    moved_groups(name, ds)
    return name


def mix_share_vector(cfg: RunConfig, mix_index: int, ds: Dataset, rg: str) -> np.ndarray:
    if cfg.mixes is not None:
        mix = cfg.mixes[mix_index]
        unknown = sorted(set(mix) - set(ds.groups))
        if unknown:
            raise ConfigError(f"mixes[{mix_index}]: unknown group {unknown[0]!r}, "
                             f"expected names from {ds.groups}")
        return np.array([mix.get(name, 0.0) for name in ds.groups])
    return mix_shares(cfg.ratios[mix_index], moved_groups(rg, ds), ds.pool.g, len(ds.groups))


def point_layout(pcfg: RunConfig, ds: Dataset) -> PointLayout:
    """The data-dependent facts of a grid point; checks that every mix can be drawn, so an
    impossible request fails before anything trains."""
    rg = resolve_ratio_group(pcfg, ds)
    shares, counts = [], []
    for mi in range(n_mixes(pcfg)):
        s = mix_share_vector(pcfg, mi, ds, rg)
        try:
            c = plan_counts(pcfg.train_size, s, ds.pool.y, ds.pool.g, ds.groups, ds.n_classes,
                            pcfg.label_balance)
        except SamplingError as err:
            raise SamplingError(f"{err}{_short_of_unreadable(ds)}") from None
        if pcfg.train.mitigation == "group_dro" and np.count_nonzero(c) < 2:
            where = (f"mixes[{mi}]" if pcfg.mixes is not None
                     else f"the training set at a share {pcfg.ratios[mi]:g} of {rg!r}")
            raise ConfigError(f"train.mitigation: 'group_dro' needs at least two group x class "
                              f"cells in every training set; {where} holds one")
        shares.append([float(x) for x in s])
        counts.append(c.tolist())
    test = np.zeros((len(ds.groups), ds.n_classes), dtype=np.int64)
    np.add.at(test, (ds.test.g, ds.test.y), 1)
    return PointLayout(list(ds.groups), list(ds.classes), rg, shares, counts,
                       list(ds.attributes), [list(v) for v in ds.group_values], test.tolist(),
                       rater_record(ds))


def _short_of_unreadable(ds: Dataset) -> str:
    """Why a pool is smaller than its table says, when images were left out of it
    (``dataset.skip_unreadable``): the reason an error about its size needs."""
    lost = (ds.info.get("unreadable") or {}).get("by_split", {}).get("pool", {})
    if not lost:
        return ""
    n = sum(lost.values())
    return (f"; the pool is short of the {n:,} unreadable image{'' if n == 1 else 's'} left "
            f"out of it (dataset.skip_unreadable), by group: "
            f"{', '.join(f'{g!r} {k:,}' for g, k in lost.items())}; lower train_size or repair "
            f"them (listed in {ds.info['unreadable']['list']})")


def check_model(pcfg: RunConfig, ds: Dataset) -> None:
    """A user's factory is built once and run on two zero inputs before anything trains: it
    must import, return an nn.Module and give ``n_classes`` outputs (one line naming
    ``model.name`` otherwise)."""
    from fairensemble import models

    if not models.is_factory(pcfg.model.name) or pcfg.model.freeze == "backbone":
        return  # a frozen backbone already ran on every image to make the features
    import torch

    X = ds.pool.X
    shape = tuple(np.asarray(X[:1]).shape[1:])
    kw = {"in_channels": shape[0]} if len(shape) != 3 else {"in_channels": shape[0],
                                                             "image_size": shape[1]}
    options = models.accepted(pcfg.model.name, {"width": pcfg.model.width,
                                                "dropout": pcfg.model.dropout})
    net = models.create(pcfg.model.name, ds.n_classes, **kw, **options).eval()
    try:
        with torch.no_grad():
            out = net(torch.zeros((2, *shape)))
    except Exception as err:
        raise ConfigError(f"model.name: {pcfg.model.name} fails on inputs of shape "
                         f"[2, {', '.join(map(str, shape))}]: {type(err).__name__}: "
                         f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}"
                         ) from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, ds.n_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"model.name: {pcfg.model.name} returns {got} for 2 inputs, expected "
                         f"(2, {ds.n_classes}): one column per class")


def plan_run(cfg: RunConfig, loader: Callable[[RunConfig], Dataset] | None = None) -> Plan:
    """Every cell of the run, with ids and seeds. Loads each grid point's data once."""
    plan, _ = plan_with_preview(cfg, loader)
    return plan


def plan_with_preview(cfg: RunConfig, loader: Callable[[RunConfig], Dataset] | None = None
                      ) -> tuple[Plan, dict[str, np.ndarray] | None]:
    """The plan, and for synthetic runs a small sample of the first and last grid point's pool
    for the data figure (so the report never needs the data)."""
    loader = loader or load_for
    points = cfg.grid_points()
    layouts, preview = [], {}
    shown = sorted({0, len(points) - 1})
    _PLANNED.clear()
    for pi, point in enumerate(points):
        pcfg = cfg.at(point)
        key = data_key(pcfg)  # grid points that differ only in train_size share their data
        ds = _PLANNED[key] = _PLANNED.get(key) or loader(pcfg)  # what the units train on
        layouts.append(point_layout(pcfg, ds))
        check_model(pcfg, ds)
        if pcfg.dataset.kind == "synthetic" and pi in shown:
            preview.update(_preview(ds, f"p{pi}"))
    return build_plan(cfg, layouts), (preview or None)


def _preview(ds: Dataset, prefix: str, per_group: int = 600) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    idx = np.concatenate([
        rng.choice(np.flatnonzero(ds.pool.g == j), size=min(per_group, int((ds.pool.g == j).sum())),
                   replace=False)
        for j in range(len(ds.groups))
    ])
    X = np.asarray(ds.pool.X)[idx, :2].astype(np.float32)
    return {f"{prefix}_X": X, f"{prefix}_y": ds.pool.y[idx], f"{prefix}_g": ds.pool.g[idx]}


def units_of(plan: Plan, cells: list[Cell]) -> list[list[Cell]]:
    """Group cells into training units: one per (grid point, replicate) for the stack."""
    if not uses_stack(plan.cfg):
        return [[c] for c in cells]
    units: dict[tuple[int, int], list[Cell]] = {}
    for c in cells:
        units.setdefault((c.point_index, c.replicate), []).append(c)
    return list(units.values())


# ----------------------------------------------------------------------------- worker side


class CellEvaluator(Protocol):
    """Evaluates a freshly trained cell in the worker that trained it; picklable, since it
    travels to the workers (``evaluation.Evaluator``)."""

    @property
    def key(self) -> str:
        """What the run directory files the evaluation under (``RunStore.write_evaluation``)."""
        ...

    def __call__(self, record: CellRecord) -> tuple[Any, Any]:
        """(table, boot): the cell's metrics table and bootstrap resamples (or None)."""
        ...


@dataclass
class Unit:
    """What a worker needs to train and evaluate some cells of one grid point (plain values)."""

    cfg_json: dict[str, Any]
    cells: list[Cell]
    layout: PointLayout
    evaluate: CellEvaluator | None
    data: Any = None  # Executor.share handle of the grid point's Dataset; None: load it here
    image_roots: list[str] = field(default_factory=list)  # folders the unit's data reads


# Datasets the last planning loaded, by data_key: the driver ships tables from here, so that
# units train on exactly the table that was planned and never read its file
_PLANNED: dict[str, Dataset] = {}


@dataclass
class CellResult:
    record: CellRecord
    table: Any = None  # pandas DataFrame of the cell's evaluation under ``evaluate``
    boot: Any = None
    eval_s: float = 0.0
    models: dict[str, bytes] = field(default_factory=dict)  # train.save_models: file -> bytes


_DATA_CACHE: dict[str, Dataset] = {}


def data_key(pcfg: RunConfig) -> str:
    """What a grid point's dataset depends on (two points with one key share one Dataset)."""
    parts: list = [pcfg.dataset.model_dump(mode="json"), data_seed(pcfg)]
    if pcfg.model.freeze == "backbone":  # the features depend on the backbone
        parts += [pcfg.model.model_dump(mode="json"), pcfg.train.precision, pcfg.seed]
    return json.dumps(parts, sort_keys=True)


def _dataset_for(pcfg: RunConfig) -> Dataset:
    key = data_key(pcfg)
    if key in _PLANNED:  # trained in the process that planned it (serial, one worker)
        return _PLANNED[key]
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # one grid point at a time keeps memory bounded
        with warnings.catch_warnings():  # the driver showed them when it planned this data
            warnings.simplefilter("ignore", DataWarning)
            _DATA_CACHE[key] = load_for(pcfg)
    return _DATA_CACHE[key]


def build_cell_data(pcfg: RunConfig, ds: Dataset, cell: Cell, threads: int | None = None
                    ) -> tuple[CellData, dict]:
    from fairensemble.train.common import normalised_rows
    from fairensemble.train.streams import soft_targets

    counts = np.asarray(cell.counts, dtype=np.int64)
    idx = sample_indices(counts, ds.pool.y, ds.pool.g, np.random.default_rng(cell.sample_seed))
    train = ds.pool.take(idx)
    others = [ds.test] + ([ds.val] if ds.val is not None else [])
    prepared = ds.prepare(train, others)
    if ds.input_kind == "image" and uses_stack(pcfg):  # an MLP on pixels
        prepared = [normalised_rows(x, ds.image_mean, ds.image_std) for x in prepared]
    kind = ("tokens" if ds.input_kind == "text" else
            "table" if uses_stack(pcfg) else ds.input_kind)
    evals = {"test": prepared[1]}
    val = None
    if ds.val is not None:
        evals["val"] = prepared[2]
        val = (prepared[2], ds.val.y)
    inputs = Inputs(kind=kind, image_mean=ds.image_mean, image_std=ds.image_std,
                    hflip=ds.hflip, num_workers=ds.loader_workers, threads=threads,
                    vocab=ds.vocab)
    soft = None
    if getattr(pcfg.dataset, "train_on", "majority") == "soft" and train.votes is not None:
        soft = soft_targets(train.votes, train.y, ds.n_classes)  # the raters' distribution
    data = CellData(prepared[0], train.y, evals, list(cell.member_seeds), val, inputs,
                    g_train=train.g, soft_train=soft)
    return data, {"counts": counts.tolist(), "n_train": len(idx)}


def train_unit(unit: Unit, progress: Callable[[float], None] | None = None) -> list[CellResult]:
    """Train the cells of one unit, evaluate each, and return them (nothing is written)."""
    import torch

    threads = unit_threads()
    torch.set_num_threads(threads)
    cfg = validate(unit.cfg_json)
    pcfg = cfg.at(unit.cells[0].point)
    check_readable(unit.image_roots)
    ds = resolve(unit.data) if unit.data is not None else _dataset_for(pcfg)
    t0 = time.perf_counter()
    built = [build_cell_data(pcfg, ds, c, threads) for c in unit.cells]
    t_data = time.perf_counter() - t0
    datas = [b[0] for b in built]
    t0 = time.perf_counter()
    saved: list[dict[str, bytes]] = []
    stats: list[TrainStats] = []
    if pcfg.model.name == "bag":
        from fairensemble.train.bags import train_bags

        outputs = train_bags(datas, pcfg.model, pcfg.train, ds.n_classes, progress=progress,
                             stats=stats)
    elif uses_stack(cfg):
        from fairensemble.train.stacked import train_stacked

        model = pcfg.model.head() if pcfg.model.freeze == "backbone" else pcfg.model
        outputs = train_stacked(datas, model, pcfg.train, ds.n_classes, progress=progress,
                                stats=stats)
    else:
        from fairensemble.train.loop import train_loop

        outputs, saved = [], []
        for d in datas:
            with tempfile.TemporaryDirectory() as tmp:
                save_dir = Path(tmp) if pcfg.train.save_models else None
                outputs += train_loop([d], pcfg.model, pcfg.train, ds.n_classes,
                                      progress=progress, save_dir=save_dir, stats=stats)
                saved.append({p.name: p.read_bytes() for p in sorted(Path(tmp).glob("*"))})
    t_train = time.perf_counter() - t0
    n = len(unit.cells)
    results = []
    for c, (_, info), probs, st in zip(unit.cells, built, outputs, stats):
        has_val = "val" in probs and ds.val is not None
        record = CellRecord(
            id=c.id,
            coords=c.coords(),
            groups=unit.layout.groups,
            classes=unit.layout.classes,
            ratio_group=unit.layout.ratio_group,
            probs_test=probs["test"].astype(np.float32),
            y_test=ds.test.y,
            g_test=ds.test.g,
            probs_val=probs["val"].astype(np.float32) if has_val else None,
            y_val=ds.val.y if has_val else None,
            g_val=ds.val.g if has_val else None,
            votes_test=ds.test.votes,
            raters=rater_record(ds),
            seeds={"sample": c.sample_seed, "members": c.member_seeds},
            n_train=info["n_train"],
            train_counts=info["counts"],
            timings={"data_s": t_data / n, "train_s": t_train / n, "stacked_with": n,
                     "threads": torch.get_num_threads()},
            cost=cell_cost(st, t_train / n, ds),
            mitigation=mitigation_record(pcfg.train.mitigation, st, unit.layout),
        )
        result = CellResult(record, models=saved[len(results)] if saved else {})
        if unit.evaluate is not None:
            t0 = time.perf_counter()
            result.table, result.boot = unit.evaluate(record)
            result.eval_s = time.perf_counter() - t0
        results.append(result)
    return results


def rater_record(ds: Dataset) -> dict[str, Any]:
    """What a cell records about its test split's raters (empty without raters): whether its
    votes are counts, what members are scored on."""
    info = ds.info.get("raters") or {}
    return {k: info[k] for k in ("source", "counts", "scored_on", "train_on") if k in info}


def cell_cost(stats: TrainStats, train_s: float, ds: Dataset) -> dict[str, Any]:
    """What a cell's members cost: trainings, member-epochs, training rows seen, training
    seconds, and FLOPs where the model's are known; a frozen backbone's pass over the images
    (``shared_flops``) is the grid point's, paid once whatever the cells."""
    samples = int(sum(stats.samples))
    fps = stats.flops_per_sample
    return {
        "trainings": len(stats.epochs),
        "member_epochs": int(sum(stats.epochs)),
        "samples_seen": samples,
        "train_seconds": float(train_s),
        "flops_per_sample": fps,
        "train_flops": None if fps is None else float(fps) * samples,
        "shared_flops": (ds.info.get("features") or {}).get("flops"),
    }


def mitigation_record(kind: str, stats: TrainStats, layout: PointLayout) -> dict[str, Any]:
    """The mitigation a cell trained under, its group x class cells by name, and each
    member's final Group DRO weights on them."""
    if kind == "none":
        return {}
    names = [f"{layout.groups[g]} / {layout.classes[c]}" for g, c in stats.cells]
    out: dict[str, Any] = {"kind": kind, "cells": names}
    if stats.dro_weights is not None:
        out["dro_weights"] = stats.dro_weights
    return out


# ----------------------------------------------------------------------------- driver


@dataclass
class SweepResult:
    plan: Plan
    trained: list[str]
    eval_s: float = 0.0  # worker time spent evaluating the trained cells


def run_sweep(
    cfg: RunConfig,
    run_dir: Any,
    on_progress: Callable[[str, float], None] | None = None,
    plan: Plan | None = None,
    on_warning: Callable[[str], None] | None = None,
    evaluate: CellEvaluator | None = None,
    preview: dict[str, np.ndarray] | None = None,
    done: set[str] | None = None,
) -> SweepResult:
    """Plan the run, train every missing cell into ``run_dir`` and, given ``evaluate``,
    evaluate it where it was trained. ``on_progress(kind, amount)`` receives ("members", n) as
    members finish and ("cell", 1) as cells are written; ``on_warning`` a line per damaged
    cell set aside. ``done``: the cells already verified intact by the caller (skips the
    check)."""
    if plan is None:
        plan, preview = plan_with_preview(cfg)
    store = RunStore(run_dir)
    notify = on_progress or (lambda kind, amount: None)
    warn = on_warning or (lambda line: None)
    with store.locked():
        store.prepare(dump_config(cfg), plan.to_json())
        if preview is not None:
            store.write_preview(preview)
        if done is None:
            done, damaged = store.check_cells([c.id for c in plan.cells])
            for line in damaged:
                warn(line)
        todo = [c for c in plan.cells if c.id not in done]

        result = SweepResult(plan, [])
        with make_executor(cfg.executor) as executor:
            for line in executor.notes:
                warn(line)
            units = _units(cfg, plan, todo, evaluate, executor)
            for _, cell_results in executor.run(train_unit, units,
                                                lambda m: notify("members", m), warn):
                for res in cell_results:
                    for name, data in res.models.items():
                        atomic_write_bytes(store.root / "models" / res.record.id / name, data)
                    store.write_cell(res.record)
                    if res.table is not None and evaluate is not None:
                        store.write_evaluation(evaluate.key, res.record.id, res.table, res.boot)
                    result.trained.append(res.record.id)
                    result.eval_s += res.eval_s
                notify("cell", len(cell_results))
    _PLANNED.clear()
    return result


def _units(cfg: RunConfig, plan: Plan, todo: list[Cell], evaluate: CellEvaluator | None,
           executor: Executor) -> list[Unit]:
    """The units of the missing cells. A grid point's table travels with them (one
    ``executor.share`` per grid point: Ray's object store), so no worker reads its file; image
    units carry the folders their data reads, which each worker checks before its first unit."""
    per_point: dict[int, tuple[Any, list[str]]] = {}
    units = []
    for cells in units_of(plan, todo):
        pi = cells[0].point_index
        if pi not in per_point:
            pcfg = cfg.at(cells[0].point)
            ds = _PLANNED.get(data_key(pcfg)) or load_for(pcfg)
            shared = executor.share(ds) if ds.ship else None
            per_point[pi] = (shared, [str(p) for p in ds.info.get("image_roots", [])])
        data, roots = per_point[pi]
        units.append(Unit(cfg.model_dump(mode="json"), cells, plan.layouts[pi], evaluate, data,
                          roots))
    return units
