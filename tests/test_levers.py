"""Every lever at its cost: what each cell records it cost, the levers' table (baseline, Pareto
fronts, cheapest settings) against a brute-force reading of the same numbers, ``recommend
--cost`` end to end, and the spurious-correlation scenario with the verdict it deserves."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import cli
from fake_runs import make_run_dir
from test_curves import NO_TOTAL, SHARES, SIZES, generate

from fairensemble.advice.curves import difficulty, fit_curves
from fairensemble.advice.curves.fit import class_shift
from fairensemble.config import validate
from fairensemble.data.synthetic import SyntheticData, load
from fairensemble.evaluation import evaluate_run, load_run
from fairensemble.evaluation.levers import cell_costs, levers
from fairensemble.sweep import PointLayout, RunStore
from fairensemble.train.stacked import flops_per_step

TINY = ["--set", "dataset.pool_size=3000", "--set", "dataset.test_size=1000",
        "--set", "dataset.val_size=400", "--set", "train_size=200", "--set", "replicates=2",
        "--set", "train.epochs=3", "--set", "executor.kind=serial"]


def test_every_cell_records_what_its_members_cost_and_the_summary_adds_it_up(tmp_path):
    res = cli("demo", "--out", str(tmp_path / "run"), *TINY, "--set", "ensemble.members=3",
              "--set", "ratios=[0.2,0.8]", "--set", "grid={}")
    assert res.returncode == 0, res.stderr
    store = RunStore(tmp_path / "run")
    _, plan = load_run(tmp_path / "run")
    per_sample = flops_per_step(2, [64, 64], 2, 1)  # the demo's MLP on 2 features
    totals = {"trainings": 0, "member_epochs": 0, "train_flops": 0.0}
    for cell in plan.cells:
        cost = store.read_meta(cell.id)["cost"]
        assert cost["trainings"] == 3 and cost["member_epochs"] == 3 * 3
        assert cost["samples_seen"] == 3 * 3 * 200  # members x epochs x training rows
        assert cost["train_flops"] == pytest.approx(per_sample * cost["samples_seen"])
        assert cost["train_seconds"] > 0
        for key in totals:
            totals[key] += cost[key]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for key, value in totals.items():
        assert summary["cost"][key] == pytest.approx(value)


def test_the_levers_table_agrees_with_a_brute_force_reading(tmp_path):
    run = make_run_dir(tmp_path / "run", ratios=[0.2, 0.5, 0.8],
                       grid={"train.mitigation": ["none", "reweight"]},
                       analysis={"ci": "replicates", "n_boot": 40, "post": []})
    _, plan = load_run(run)
    ev = evaluate_run(plan, RunStore(run))
    lv = levers(ev.table, ev.boot, plan, cell_costs(plan, RunStore(run)))
    settings = lv["settings"]
    assert len(settings) == 2 * 3 * 3  # mitigations x mixes x k (1, 2, 4)
    (scenario,) = lv["scenarios"]
    base = settings[scenario["baseline"]]
    assert (base["mitigation"], base["ratio"], base["k"], base["post"]) == ("none", 0.5, 1,
                                                                           "none")
    # the gap at a setting is the mean over replicates of metrics.parquet's gap rows
    t = ev.table
    rows = t[(t["group"] == "gap") & (t["metric"] == "accuracy") & (t["k"] == 4)
             & (t["ratio"] == 0.8) & (t["train.mitigation"] == "reweight")]
    s = next(s for s in settings if (s["mitigation"], s["ratio"], s["k"]) == ("reweight", 0.8, 4))
    assert s["gap"] == pytest.approx(rows["mean"].mean()) and s["trainings"] == 4
    for s in settings:  # on the front: nothing at most as costly does better
        beaten = any(o["trainings"] <= s["trainings"] and o["gap"] <= s["gap"]
                     and (o["trainings"], o["gap"]) != (s["trainings"], s["gap"])
                     for o in settings)
        assert s["front_gap"] == (not beaten)
    keep = [s for s in settings if s["overall"] >= base["overall"]]
    for c in scenario["cheapest"][:-1]:
        hits = [s for s in keep if s["gap"] <= c["max_gap"]]
        if not hits:
            assert c["setting"] is None
            continue
        assert settings[c["setting"]]["trainings"] == min(s["trainings"] for s in hits)
    smallest = scenario["cheapest"][-1]
    assert settings[smallest["setting"]]["gap"] == min(s["gap"] for s in keep)


def test_recommend_cost_weighs_every_lever_and_names_the_cheapest_as_good(tmp_path):
    out = tmp_path / "rec"
    res = cli("recommend", "configs/demo.yaml", "--out", str(out), "--cost", "3", *TINY,
              "--set", "ratios=[0.2,0.8]", "--set", "grid={}", "--set", "dataset.spurious=0.9",
              "--set", "dataset.hard_group=F")
    assert res.returncode == 0, res.stderr
    rec = json.loads((out / "recommendation.json").read_text())
    assert rec["kind"] == "levers" and rec["cost"] == 3
    (entry,) = rec["levers"]
    assert entry["candidates"] == 4 * 2 * 3 + 4 * 2 * 2 * 2  # + thresholds at k = 1 and 3
    best, cheap = entry["recommended"], entry["cheapest_indistinguishable"]
    assert best["k"] <= 3 and cheap["trainings"] <= best["trainings"]
    assert best["gap"] <= entry["baseline"]["gap"]
    assert "Which lever, for a given cost?" in (out / "report.html").read_text()
    again = cli("recommend", "configs/demo.yaml", "--out", str(out), "--cost", "3", *TINY,
                "--set", "ratios=[0.2,0.8]", "--set", "grid={}", "--set",
                "dataset.spurious=0.9", "--set", "dataset.hard_group=F")
    assert again.returncode == 0 and "0 cells trained" in again.stderr
    bad = cli("recommend", "configs/demo.yaml", "--out", str(out), "--tolerance", "0.01")
    assert bad.returncode == 2 and "--tolerance: goes with --cost" in bad.stderr


def test_the_spurious_cue_marks_the_group_and_rules_the_hard_groups_training_labels_only():
    plain = load(SyntheticData(pool_size=6000, test_size=6000), seed=3)
    cued = load(SyntheticData(pool_size=6000, test_size=6000, spurious=0.9), seed=3)
    hard = cued.groups.index("F")
    for split in ("pool", "test"):
        p, c = getattr(plain, split), getattr(cued, split)
        assert c.X.shape[1] == p.X.shape[1] + 1  # the cue comes last
        same = c.y == p.y  # common random numbers: a sample moves only if its label did
        assert same.mean() > (0.6 if split == "pool" else 0.999)
        np.testing.assert_array_equal(c.X[same, :2], p.X[same, :2])
        cue = c.X[:, -1]
        assert cue[c.g == hard].mean() == pytest.approx(2.0, abs=0.1)
        assert cue[c.g != hard].mean() == pytest.approx(-2.0, abs=0.1)
    assert cued.pool.y[cued.pool.g == hard].mean() == pytest.approx(0.1, abs=0.02)
    assert cued.pool.y[cued.pool.g != hard].mean() == pytest.approx(0.5, abs=0.03)
    assert cued.test.y[cued.test.g == hard].mean() == pytest.approx(0.5, abs=0.03)


def test_a_floor_of_a_group_trained_on_other_class_shares_than_its_test_is_a_class_shift():
    layout = PointLayout(["M", "F"], ["0", "1"], "F", [[0.5, 0.5]],
                         [[[50, 50], [90, 10]]], test_counts=[[100, 100], [100, 100]])
    assert class_shift(layout) == {"M": 0.0, "F": pytest.approx(0.4)}
    truth = {"M": (0.05, 1.0, 0.5, 0.0, NO_TOTAL), "F": (0.17, 0.2, 0.5, 0.0, NO_TOTAL)}
    curves = fit_curves(generate(truth, SIZES, SHARES), 1, n_boot=60)
    assert difficulty(curves)["groups"]["F"]["kind"] == "floor"
    curves.class_shift = class_shift(layout)
    d = difficulty(curves)
    assert d["groups"]["F"]["kind"] == "class shift" and "reweighting" in d["statement"]


def test_the_spurious_scenario_and_the_mitigations_validate():
    cfg = validate({"dataset": {"spurious": 0.8}, "grid": {
        "train.mitigation": ["none", "reweight", "balanced", "group_dro"]}})
    assert [p["train.mitigation"] for p in cfg.grid_points()][-1] == "group_dro"
