"""Grid -> cells -> executor -> store: plan a run, train the missing cells, write them.

A cell is (grid point, mix, replicate). Cells of one grid point and replicate that use the
stacked MLP trainer form one *unit* and are trained as one stacked tensor program; other
models train cell by cell. Units run serially or on a local process pool; whichever runs
them, a cell's numbers are the same, because every random stream is derived from the run seed
and the cell's identity alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import RunConfig, dump_config, validate
from .data import Dataset, load_dataset
from .data.sampling import mix_shares, plan_counts, sample_indices
from .store import RunStore
from .train import CellData

CELL_FORMAT = 1


def derive_seed(run_seed: int, *parts: Any) -> int:
    """A 32-bit seed from the run seed and any JSON-able identity (stable across machines)."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    key = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return int(np.random.SeedSequence(run_seed, spawn_key=key).generate_state(1)[0])


def stable_hash(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:n]


@dataclass
class Cell:
    id: str
    point_index: int
    point: dict[str, Any]
    mix_index: int
    mix: dict[str, float] | None  # explicit mix, or None for a ratio of ratio_group
    ratio: float  # share of ratio_group in the training set
    replicate: int
    sample_seed: int
    member_seeds: list[int]
    counts: list[list[int]]  # samples per (group, class) the training draw takes

    def coords(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.point)
        out.update(ratio=self.ratio, replicate=self.replicate, mix_index=self.mix_index)
        if self.mix is not None:
            out["mix"] = self.mix
        return out


@dataclass
class Plan:
    cfg: RunConfig
    points: list[dict[str, Any]]
    cells: list[Cell]
    groups: dict[int, list[str]] = field(default_factory=dict)  # per grid point
    ratio_group: dict[int, str] = field(default_factory=dict)


def uses_stack(cfg: RunConfig) -> bool:
    return cfg.model.name == "mlp"


def data_seed(cfg: RunConfig) -> int:
    # Independent of the grid point: every difficulty level sees the same base draws.
    return derive_seed(cfg.seed, "data")


def load_for(cfg: RunConfig) -> Dataset:
    """The dataset of a (grid-point) config, from the run's data seed."""
    return load_dataset(cfg.dataset, data_seed(cfg))


def resolve_ratio_group(cfg: RunConfig, ds: Dataset) -> str:
    name = cfg.ratio_group or getattr(cfg.dataset, "hard_group", None) or ds.groups[-1]
    if name not in ds.groups:
        raise ValueError(f"ratio_group: expected one of {ds.groups}, got {name!r}")
    return name


def mix_share_vector(cfg: RunConfig, cell_mix_index: int, ds: Dataset, rg: str) -> np.ndarray:
    if cfg.mixes is not None:
        mix = cfg.mixes[cell_mix_index]
        unknown = sorted(set(mix) - set(ds.groups))
        if unknown:
            raise ValueError(f"mixes[{cell_mix_index}]: unknown group {unknown[0]!r}, "
                             f"expected names from {ds.groups}")
        return np.array([mix.get(name, 0.0) for name in ds.groups])
    return mix_shares(cfg.ratios[cell_mix_index], ds.groups.index(rg), ds.pool.g, len(ds.groups))


def plan_run(cfg: RunConfig, loader: Callable[[RunConfig], Dataset] | None = None) -> Plan:
    """Every cell of the run, with ids and seeds. Loads each grid point's data once to check
    that every requested mix can be drawn, so an impossible request fails before training."""
    loader = loader or load_for
    points = cfg.grid_points()
    plan = Plan(cfg, points, [])
    n_mixes = len(cfg.mixes) if cfg.mixes is not None else len(cfg.ratios)
    E = cfg.ensemble.members
    member_seeds = {
        r: [derive_seed(cfg.seed, "member", r, m) for m in range(E)]
        for r in range(cfg.replicates)
    }
    for pi, point in enumerate(points):
        pcfg = cfg.at(point)
        ds = loader(pcfg)
        rg = resolve_ratio_group(pcfg, ds)
        plan.groups[pi], plan.ratio_group[pi] = list(ds.groups), rg
        for mi in range(n_mixes):
            shares = mix_share_vector(pcfg, mi, ds, rg)
            counts = plan_counts(pcfg.train_size, shares, ds.pool.y, ds.pool.g, ds.groups,
                                 ds.n_classes, pcfg.label_balance).tolist()
            ratio = float(shares[ds.groups.index(rg)])
            mix = cfg.mixes[mi] if cfg.mixes is not None else None
            for r in range(cfg.replicates):
                identity = {
                    "format": CELL_FORMAT,
                    "seed": cfg.seed,
                    # where the decoded cache lives and how many loaders decode it do not
                    # change a cell's numbers
                    "dataset": pcfg.dataset.model_dump(
                        mode="json", exclude={"cache_dir", "num_workers"}),
                    "ratio_group": rg,
                    "shares": [round(float(s), 12) for s in shares],
                    "train_size": pcfg.train_size,
                    "label_balance": pcfg.label_balance,
                    "model": pcfg.model.model_dump(mode="json"),
                    "train": pcfg.train.model_dump(mode="json", exclude={"device"}),
                    "members": E,
                    "replicate": r,
                }
                plan.cells.append(Cell(
                    id=stable_hash(identity),
                    point_index=pi,
                    point=point,
                    mix_index=mi,
                    mix=mix,
                    ratio=ratio,
                    replicate=r,
                    sample_seed=derive_seed(cfg.seed, "sample", mi, r),
                    member_seeds=member_seeds[r],
                    counts=counts,
                ))
    return plan


def units_of(plan: Plan, cells: list[Cell]) -> list[list[Cell]]:
    """Group cells into training units: one per (grid point, replicate) for the stack."""
    if not uses_stack(plan.cfg):
        return [[c] for c in cells]
    units: dict[tuple[int, int], list[Cell]] = {}
    for c in cells:
        units.setdefault((c.point_index, c.replicate), []).append(c)
    return list(units.values())


# ----------------------------------------------------------------------------- worker side

_DATA_CACHE: dict[str, Dataset] = {}


def _dataset_for(pcfg: RunConfig) -> Dataset:
    key = json.dumps([pcfg.dataset.model_dump(mode="json"), data_seed(pcfg)], sort_keys=True)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # one grid point at a time keeps memory bounded
        _DATA_CACHE[key] = load_dataset(pcfg.dataset, data_seed(pcfg))
    return _DATA_CACHE[key]


def flatten_images(X: np.ndarray, ds: Dataset) -> np.ndarray:
    """uint8 images [n, C, H, W] -> normalised float32 rows, for the MLP stack."""
    x = np.asarray(X, dtype=np.float32) / 255.0
    if ds.image_mean is not None and ds.image_std is not None:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        x = (x - np.reshape(ds.image_mean, shape)) / np.reshape(ds.image_std, shape)
    return x.reshape(len(x), -1).astype(np.float32)


def build_cell_data(
    pcfg: RunConfig, ds: Dataset, cell: Cell, threads: int | None = None
) -> tuple[CellData, dict]:
    counts = np.asarray(cell.counts, dtype=np.int64)
    idx = sample_indices(counts, ds.pool.y, ds.pool.g, np.random.default_rng(cell.sample_seed))
    train = ds.pool.take(idx)
    others = [ds.test] + ([ds.val] if ds.val is not None else [])
    prepared = ds.prepare(train, others)
    if ds.input_kind == "image" and uses_stack(pcfg):
        prepared = [flatten_images(x, ds) for x in prepared]
    evals = {"test": prepared[1]}
    val = None
    if ds.val is not None:
        evals["val"] = prepared[2]
        val = (prepared[2], ds.val.y)
    meta = {
        "threads": threads,
        "input_kind": "table" if uses_stack(pcfg) else ds.input_kind,
        "image_mean": ds.image_mean,
        "image_std": ds.image_std,
        "hflip": bool(getattr(pcfg.dataset, "hflip", False)),
        "num_workers": int(getattr(pcfg.dataset, "num_workers", 0)),
    }
    data = CellData(prepared[0], train.y, evals, list(cell.member_seeds), val, meta)
    return data, {"counts": counts.tolist(), "n_train": len(idx)}


def train_unit(
    cfg_json: dict,
    cells: list[Cell],
    groups: list[str],
    rg: str,
    run_dir: str,
    threads: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> list[str]:
    """Train the cells of one unit and write each to the store; returns the written ids."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    cfg = validate(cfg_json)
    store = RunStore(run_dir)
    pcfg = cfg.at(cells[0].point)
    ds = _dataset_for(pcfg)
    t0 = time.perf_counter()
    built = [build_cell_data(pcfg, ds, c, threads) for c in cells]
    t_data = time.perf_counter() - t0
    datas = [b[0] for b in built]
    t0 = time.perf_counter()
    if uses_stack(cfg):
        from .train.stacked import train_stacked

        outputs = train_stacked(datas, pcfg.model, pcfg.train, ds.n_classes, progress=progress)
    else:
        from .train.loop import train_loop

        outputs = []
        for c, d in zip(cells, datas):
            save_dir = store.root / "models" / c.id if pcfg.train.save_models else None
            outputs += train_loop([d], pcfg.model, pcfg.train, ds.n_classes,
                                  progress=progress, save_dir=save_dir)
    t_train = time.perf_counter() - t0
    written = []
    for c, (_, info), probs in zip(cells, built, outputs):
        arrays = {"probs_test": probs["test"].astype(np.float32),
                  "y_test": ds.test.y, "g_test": ds.test.g}
        if "val" in probs and ds.val is not None:
            arrays.update(probs_val=probs["val"].astype(np.float32),
                          y_val=ds.val.y, g_val=ds.val.g)
        meta = {
            "id": c.id,
            **c.coords(),
            "ratio_group": rg,
            "groups": groups,
            "classes": ds.classes,
            "seeds": {"sample": c.sample_seed, "members": c.member_seeds},
            "n_train": info["n_train"],
            "train_counts": info["counts"],
            "timings": {"data_s": t_data / len(cells), "train_s": t_train / len(cells),
                        "stacked_with": len(cells), "threads": torch.get_num_threads()},
        }
        store.write_cell(c.id, arrays, meta)
        written.append(c.id)
    return written


def _worker_unit(args: tuple, queue: Any, parent: int) -> list[str]:
    def progress(members: float) -> None:
        if os.getppid() != parent:  # the run was killed: stop, keep what is written
            os._exit(1)
        queue.put(members)

    return train_unit(*args, progress=progress)


# ----------------------------------------------------------------------------- driver


def training_threads(cfg: RunConfig) -> int:
    """Torch threads per worker: fixed by the config (never by how many cells are left), so a
    resumed run computes exactly what an uninterrupted one would."""
    if cfg.executor.threads:
        return cfg.executor.threads
    workers = cfg.executor.workers if cfg.executor.kind == "local" else 1
    return max(1, (os.cpu_count() or 1) // workers)


def run_sweep(
    cfg: RunConfig,
    run_dir: str | os.PathLike,
    on_progress: Callable[[str, float], None] | None = None,
    plan: Plan | None = None,
) -> tuple[Plan, list[str]]:
    """Plan the run, train every missing cell into ``run_dir``; returns (plan, trained ids).

    ``on_progress(kind, amount)`` receives ("members", n) as members finish and
    ("cell", 1) as cells are written."""
    plan = plan or plan_run(cfg)
    store = RunStore(run_dir)
    store.prepare(dump_config(cfg))
    todo = [c for c in plan.cells if not store.has_cell(c.id)]
    notify = on_progress or (lambda kind, amount: None)
    units = units_of(plan, todo)
    cfg_json = cfg.model_dump(mode="json")
    trained: list[str] = []

    def args_of(unit: list[Cell], threads: int | None) -> tuple:
        pi = unit[0].point_index
        return (cfg_json, unit, plan.groups[pi], plan.ratio_group[pi], str(store.root), threads)

    workers = min(cfg.executor.workers, len(units)) if cfg.executor.kind == "local" else 1
    threads = training_threads(cfg)
    if workers <= 1:
        for unit in units:
            ids = train_unit(*args_of(unit, threads), progress=lambda m: notify("members", m))
            trained += ids
            notify("cell", len(ids))
        return plan, trained

    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        queue = manager.Queue()
        pending = {pool.submit(_worker_unit, args_of(u, threads), queue, os.getpid())
                   for u in units}
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            while not queue.empty():
                notify("members", queue.get())
            for fut in done:
                ids = fut.result()
                trained += ids
                notify("cell", len(ids))
        while not queue.empty():
            notify("members", queue.get())
    return plan, trained
