"""Data on other nodes, on a real local Ray instance: a table travels to the units in memory, so
no worker reads its file; a worker that cannot read an image folder stops the run with one
line naming the folder and its node."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import make_celeba

from fairensemble.analysis import evaluate_run
from fairensemble.config import validate
from fairensemble.executors import ExecutorError
from fairensemble.store import RunStore
from fairensemble.sweep import plan_with_preview, run_sweep


def _table_config(csv: Path, executor: dict) -> dict:
    return {
        "name": "table", "seed": 3,
        "dataset": {"kind": "table", "path": str(csv), "target": "label", "group": "grp",
                    "val_fraction": 0.2},
        "ratio_group": "a", "ratios": [0.2, 0.8], "train_size": 120, "replicates": 2,
        "model": {"hidden": [8]}, "train": {"epochs": 3, "batch_size": 32},
        "ensemble": {"members": 3, "draws": 4}, "executor": executor,
    }


def _metrics(run: Path, plan) -> pd.DataFrame:
    return evaluate_run(plan, RunStore(run)).table


def test_ray_units_train_on_the_planned_table_without_reading_its_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    table = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                          "color": rng.choice(["red", "blue"], size=n),
                          "grp": rng.choice(["a", "b"], size=n)})
    table["label"] = (table.x1 + (table.grp == "a") * table.x2 > 0).astype(int)
    csv = tmp_path / "data" / "table.csv"
    csv.parent.mkdir()
    table.to_csv(csv, index=False)

    local = validate(_table_config(csv, {"kind": "serial", "threads": 1}))
    run_sweep(local, tmp_path / "local")

    cfg = validate(_table_config(csv, {"kind": "ray", "workers": 2}))
    plan, preview = plan_with_preview(cfg)
    csv.unlink()  # the file exists only until planning, as on a driver-only disk
    result = run_sweep(cfg, tmp_path / "ray", plan=plan, preview=preview)
    assert len(result.trained) == len(plan.cells) == 4
    pd.testing.assert_frame_equal(_metrics(tmp_path / "ray", plan),
                                  _metrics(tmp_path / "local", plan))


def test_a_ray_worker_that_cannot_read_the_image_folder_stops_with_one_line_naming_it_and_the_node(
        tmp_path):
    import ray

    root = make_celeba(tmp_path / "celeba", n=48)
    cfg = validate({
        "name": "faces", "seed": 1,
        "dataset": {"kind": "celeba", "root": str(root), "image_size": 8,
                    "cache_dir": str(tmp_path / "cache")},
        "ratios": [0.0, 1.0], "train_size": 8, "replicates": 1,
        "model": {"hidden": [8]}, "train": {"epochs": 1, "batch_size": 8},
        "ensemble": {"members": 2, "k": [1, 2], "draws": 2},
        "executor": {"kind": "ray", "workers": 1},
    })
    plan, preview = plan_with_preview(cfg)  # decodes the images into the cache
    folder = root / "img_align_celeba"
    shutil.rmtree(folder)  # gone from this "node"; the decoded cache is still there
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        node = ray.get_runtime_context().get_node_id()
        with pytest.raises(ExecutorError) as err:
            run_sweep(cfg, tmp_path / "run", plan=plan, preview=preview)
    finally:
        ray.shutdown()
    message = str(err.value)
    assert "\n" not in message and str(folder) in message and node in message, message
    assert not list((tmp_path / "run" / "cells").glob("*.json"))
