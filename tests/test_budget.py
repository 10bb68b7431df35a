"""Specifications of learning curves in use: which kind of difficulty a group has (floor,
data, conflict) on the synthetic task whose truth is known, and `recommend --budget`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import cli

from fairensemble.advice.curves import run_curves
from fairensemble.config import validate
from fairensemble.evaluation import Evaluator
from fairensemble.sweep import run_sweep

FLOORS = {
    "name": "floors", "seed": 0,
    "dataset": {"kind": "synthetic", "groups": ["M", "F"], "hard_group": "F",
                "label_noise": 0.3, "pool_size": 20000, "test_size": 10000},
    "ratio_group": "F", "ratios": [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0], "replicates": 3,
    "grid": {"train_size": [250, 500, 1000], "dataset.label_noise_on": ["train", "all"]},
    "model": {"name": "mlp", "hidden": [64, 64]},
    "train": {"lr": 0.003, "epochs": 30, "batch_size": 128},
    "ensemble": {"members": 5, "draws": 10}, "metrics": ["accuracy"],
    "executor": {"kind": "local", "workers": 2},
}
# the truth of the generator: each group's own Bayes rule errs on Phi(-class_sep / 2) = 0.067
# of its samples; with 30 % of F's test labels flipped too, F's best error is
# 0.3 * (1 - 0.067) + 0.7 * 0.067 = 0.327
BAYES_ERROR, NOISY_FLOOR = 0.0668, 0.327


@pytest.fixture(scope="module")
def floors(tmp_path_factory):
    run = tmp_path_factory.mktemp("floors") / "run"
    cfg = validate(FLOORS)
    result = run_sweep(cfg, run, evaluate=Evaluator.of(cfg))
    from fairensemble.evaluation import evaluate_run
    from fairensemble.sweep import RunStore

    table = evaluate_run(result.plan, RunStore(run)).table
    curves = run_curves(table, result.plan, n_boot=100, seed=0)
    return {entry["point"]["dataset.label_noise_on"]: entry["ensemble"] for entry in curves}


def floor_gap(part: dict) -> tuple[float, np.ndarray]:
    """F's floor minus M's, and its interval from the paired refits."""
    f, m = part["groups"]["F"], part["groups"]["M"]
    return f["floor"] - m["floor"], np.array(f["floor_excess_ci"])


def test_noise_on_the_training_labels_only_leaves_the_floor_where_the_clean_group_has_it(floors):
    gap, ci = floor_gap(floors["train"])
    assert ci[0] < 0.05  # F's floor cannot be told from M's above 0.05
    assert floors["train"]["groups"]["M"]["floor"] == pytest.approx(BAYES_ERROR, abs=0.01)
    assert floors["train"]["groups"]["F"]["floor"] == pytest.approx(BAYES_ERROR, abs=0.03)


def test_noise_on_every_label_raises_the_floor_by_what_the_noise_implies(floors):
    gap, ci = floor_gap(floors["all"])
    assert gap >= 0.15 and ci[0] > 0
    assert floors["all"]["groups"]["F"]["floor"] == pytest.approx(NOISY_FLOOR, abs=0.03)
    assert floors["all"]["groups"]["F"]["kind"] == "floor"
    assert "a higher floor" in floors["all"]["difficulty"]


def test_the_fits_explain_the_measured_errors_with_the_conflict_term(floors):
    for part in floors.values():
        for fit in part["groups"].values():
            assert fit["fit"]["r2"] > 0.9 and fit["form"].endswith("+conflict")
        # F pays more for M's data at 50/50 than M pays for F's: why the best mix moves to F
        assert part["groups"]["F"]["conflict_term"] > part["groups"]["M"]["conflict_term"]


BUDGET = {
    "name": "budget", "seed": 1,
    "dataset": {"kind": "synthetic", "groups": ["M", "F"], "hard_group": "F",
                "label_noise": 0.3, "pool_size": 6000, "test_size": 4000},
    "ratio_group": "F", "replicates": 2, "model": {"name": "mlp", "hidden": [32, 32]},
    "train": {"lr": 0.003, "epochs": 15, "batch_size": 128},
    "ensemble": {"members": 3, "draws": 5}, "metrics": ["accuracy"],
    "executor": {"kind": "serial"}, "analysis": {"n_boot": 50},
}


def test_recommend_budget_writes_the_curves_and_a_second_call_trains_nothing(tmp_path):
    path = tmp_path / "budget.yaml"
    path.write_text(yaml.safe_dump(BUDGET))
    args = ("recommend", str(path), "--budget", "1200", "--sizes", "150,300,600", "--out",
            str(tmp_path / "rec"))
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert "42 cells trained" in first.stderr  # 3 sizes x 7 shares x 2 replicates
    rec = json.loads((tmp_path / "rec" / "recommendation.json").read_text())
    assert rec["budget"] == 1200 and rec["sizes"] == [150, 300, 600]
    curves = rec["curves"]
    for part in ("single", "ensemble"):
        got = curves[part]
        assert got["budget"] == 1200 and got["extrapolation"]["factor"] == 2.0
        for g in ("M", "F"):
            group = got["groups"][g]
            for key in ("floor", "data_term"):
                lo, hi = group[f"{key}_ci"]
                assert lo <= group[key] <= hi, (part, g, key)
        for objective in ("gap", "overall", "worst", "pareto"):
            pred = got["predicted"][objective]
            assert 0.0 <= pred["share"] <= 1.0 and len(pred["interval"]) == 2
    assert "How much data of which group?" in (tmp_path / "rec" / "report.html").read_text()
    assert (tmp_path / "rec" / "figures" / "budget_share.png").is_file()
    second = cli(*args)
    assert second.returncode == 0 and "0 cells trained" in second.stderr
    again = json.loads((tmp_path / "rec" / "recommendation.json").read_text())
    assert again["curves"]["ensemble"]["predicted"] == curves["ensemble"]["predicted"]


def test_recommend_budget_on_the_bundled_adult_data(tmp_path):
    res = cli("recommend", "configs/adult.yaml", "--budget", "4000", "--sizes", "250,500,1000",
              "--set", "ensemble.members=3", "--set", "replicates=2", "--set", "train.epochs=3",
              "--set", "analysis.n_boot=50", "--out", str(tmp_path / "adult"))
    assert res.returncode == 0, res.stderr
    rec = json.loads((tmp_path / "adult" / "recommendation.json").read_text())
    assert set(rec["curves"]["ensemble"]["groups"]) == {"Male", "Female"}
    assert rec["moved_group"] == "Female"
    table = pd.read_parquet(tmp_path / "adult" / "metrics.parquet")
    assert sorted(table["train_size"].unique()) == [250, 500, 1000]
    again = cli("recommend", "configs/adult.yaml", "--budget", "4000", "--sizes",
                "250,500,1000", "--set", "ensemble.members=3", "--set", "replicates=2",
                "--set", "train.epochs=3", "--set", "analysis.n_boot=50",
                "--out", str(tmp_path / "adult"))
    assert again.returncode == 0 and "0 cells trained" in again.stderr


@pytest.mark.parametrize("args, expected", [
    (["--sizes", "100,200"], "--sizes: goes with --budget N"),
    (["--budget", "500", "--sizes", "100"], "--sizes: expected at least two positive sizes"),
    (["--budget", "500", "--sizes", "a,b"], "--sizes: expected comma-separated integers"),
    (["--budget", "500", "--set", "grid.train_size=[100,200]"],
     "grid.train_size: --budget sweeps the training-set size itself"),
])
def test_recommend_budget_bad_input_is_one_line(tmp_path, args, expected):
    path = tmp_path / "budget.yaml"
    path.write_text(yaml.safe_dump(BUDGET))
    res = cli("recommend", str(path), *args, "--out", str(tmp_path / "rec"))
    assert res.returncode == 2 and expected in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
