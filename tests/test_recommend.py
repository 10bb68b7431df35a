"""``fairensemble recommend``: the selection rules on known numbers, then end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, cli, run_cli

from fairensemble.advice import Samples, choose, choose_pareto, pareto_front
from fairensemble.advice.recommend import fine_shares, quantities


def test_fine_shares_step_around_the_best_and_stay_inside_0_1():
    assert fine_shares(0.5) == [0.4, 0.45, 0.55, 0.6]
    assert fine_shares(0.9) == [0.8, 0.85, 0.95, 1.0]
    assert fine_shares(0.1) == [0.0, 0.05, 0.15, 0.2]


def test_a_candidate_is_indistinguishable_when_the_paired_interval_covers_zero():
    # replicate r adds the same offset to every share (paired): 0.5 and 0.7 differ by exactly
    # 0.01 in every replicate, so they are separable; 0.6 is 0.002 worse than 0.7 on average
    # with +-0.01 noise, so it cannot be told apart.
    offset = np.array([0.0, 0.05, -0.04])
    gap = Samples({0.5: 0.11 + offset, 0.6: 0.10 + offset + np.array([0.012, -0.008, 0.002]),
                   0.7: 0.10 + offset}, "replicates")
    c = choose(gap, lower_is_better=True, objective="gap")
    assert c.best == 0.7 and c.indistinguishable == [0.6, 0.7] and not c.flat
    # unpaired, the 0.05 replicate offsets would swamp a 0.01 difference; paired they do not
    assert c.value == pytest.approx(0.10 + offset.mean())


def test_with_one_replicate_and_no_bootstrap_only_the_best_is_kept():
    gap = Samples({0.3: np.array([0.2]), 0.5: np.array([0.1])}, "replicates")
    c = choose(gap, True, "gap")
    assert c.best == 0.5 and c.indistinguishable == [0.5]


def test_bootstrap_samples_use_percentile_intervals_and_a_flat_valley_is_named():
    rng = np.random.default_rng(0)
    common = rng.normal(0, 0.02, size=400)  # resample-to-resample noise shared by all shares
    values = {s: 0.8 + common + rng.normal(0, 0.002, 400) for s in (0.3, 0.4, 0.5, 0.6)}
    values[0.9] = 0.7 + common + rng.normal(0, 0.002, 400)
    c = choose(Samples(values, "bootstrap"), lower_is_better=False, objective="overall")
    assert 0.9 not in c.indistinguishable
    assert set(c.indistinguishable) == {0.3, 0.4, 0.5, 0.6} and c.flat


def test_pareto_front_keeps_the_candidates_nothing_beats_on_both_axes():
    overall = {0.1: 0.80, 0.3: 0.85, 0.5: 0.86, 0.7: 0.84, 0.9: 0.70}
    gap = {0.1: 0.10, 0.3: 0.05, 0.5: 0.08, 0.7: 0.02, 0.9: 0.02}
    assert pareto_front(overall, gap) == [0.3, 0.5, 0.7]


def test_the_pareto_choice_is_the_smallest_gap_among_the_best_overall_lookalikes():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.001, (3, 3))
    overall = Samples({0.3: 0.85 + noise[0], 0.5: 0.851 + noise[1], 0.7: 0.80 + noise[2]},
                      "replicates")
    gap = Samples({0.3: np.full(3, 0.04), 0.5: np.full(3, 0.09), 0.7: np.full(3, 0.01)},
                  "replicates")
    c = choose_pareto(overall, gap, higher_overall=True)
    assert c.best == 0.3  # 0.7 has the smallest gap but a clearly worse overall metric


def test_quantities_pair_bootstrap_resamples_by_averaging_replicates():
    rows = []
    boot = []
    for ratio in (0.3, 0.7):
        for r in range(2):
            for label in ("A", "B", "overall", "gap", "worst"):
                rows.append(dict(ratio=ratio, replicate=r, k=5, post="none", group=label,
                                 metric="accuracy", mean=ratio + r))
                boot.append(dict(ratio=ratio, replicate=r, k=5, post="none", group=label,
                                 metric="accuracy", b0=ratio + r, b1=ratio + 2 * r))
    q = quantities(pd.DataFrame(rows), pd.DataFrame(boot), "accuracy", ["A", "B"], [5],
                   "ratio")
    s = q.by_k[5]["gap"]
    assert s.kind == "bootstrap"
    np.testing.assert_allclose(s.values[0.7], [0.7 + 0.5, 0.7 + 1.0])


# ----------------------------------------------------------------------------- end to end

LABEL_NOISE = ROOT / "configs" / "label_noise.yaml"
AT_04 = ["--set", "grid={}", "--set", "dataset.label_noise=0.4", "--set", "ensemble.members=5",
         "--set", "replicates=2", "--set", "train.epochs=30", "--set", "executor.kind=serial"]


@pytest.fixture(scope="module")
def label_noise_04(tmp_path_factory) -> tuple[Path, str]:
    run = tmp_path_factory.mktemp("rec") / "run"
    res = run_cli("recommend", str(LABEL_NOISE), "--out", str(run), *AT_04)
    assert res.returncode == 0, res.stderr
    return run, res.stdout


def test_label_noise_04_recommends_a_large_share_of_the_hard_group_for_the_gap(label_noise_04):
    run, stdout = label_noise_04
    rec = json.loads((run / "recommendation.json").read_text())
    point = rec["points"][0]
    assert point["moved_group"] == "F" and point["balanced"]["harder_group"] == "F"
    gap = point["objectives"]["gap"]
    assert gap["recommended"] >= 0.7
    assert gap["recommended"] in gap["indistinguishable"]
    lo, hi = gap["range"]
    assert lo <= gap["recommended"] <= hi
    shares = {c["share"] for c in point["candidates"]}
    assert {0.1, 0.3, 0.5, 0.7, 0.9} <= shares and len(shares) > 5  # coarse, then finer steps
    for name in ("gap", "overall", "worst", "pareto"):
        at = point["objectives"][name]["at_recommended"]
        assert set(at) >= {"M", "F", "overall", "gap"}
        assert at["F"]["ci95"][0] is not None and at["F"]["gain_ci95"][0] is not None
    assert "gap (chosen)" in stdout and "Balanced mix" in stdout
    assert (run / "figures" / "pareto.png").is_file()
    assert "Which mix should I collect?" in (run / "report.html").read_text()


def test_a_second_recommend_trains_nothing_and_gives_the_same_answer(label_noise_04):
    run, _ = label_noise_04
    before = {p.name: p.stat().st_mtime_ns for p in (run / "cells").glob("*")}
    first = json.loads((run / "recommendation.json").read_text())
    res = run_cli("recommend", str(LABEL_NOISE), "--out", str(run), *AT_04)
    assert res.returncode == 0, res.stderr
    assert "0 cells trained" in res.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (run / "cells").glob("*")} == before
    assert json.loads((run / "recommendation.json").read_text()) == first
    # and the run directory is a complete run that report rebuilds on its own
    assert run_cli("report", str(run)).returncode == 0


def test_three_groups_move_one_share_and_keep_the_others_proportions(tmp_path):
    rng = np.random.default_rng(3)
    n = 900
    grp = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    x = rng.normal(size=(n, 2))
    y = (x[:, 0] + np.where(grp == "c", 0.0, 1.0) * x[:, 1] > 0).astype(int)
    csv = tmp_path / "t.csv"
    pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "grp": grp, "y": y}).to_csv(csv, index=False)
    cfg = {"name": "three", "dataset": {"kind": "table", "path": str(csv), "target": "y",
                                        "group": "grp"},
           "train_size": 120, "replicates": 2, "model": {"hidden": [8]},
           "train": {"epochs": 3, "batch_size": 32}, "ensemble": {"members": 3, "draws": 3},
           "executor": {"kind": "serial"}}
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = run_cli("recommend", str(path), "--out", str(tmp_path / "run"), "--group", "c",
                  "--objective", "worst")
    assert res.returncode == 0, res.stderr
    rec = json.loads((tmp_path / "run" / "recommendation.json").read_text())
    point = rec["points"][0]
    assert point["moved_group"] == "c" and point["chosen_by"] == "worst"
    assert point["balanced"]["mix"] == "a=0.333333,b=0.333333,c=0.333333"
    cells = [json.loads(p.read_text()) for p in (tmp_path / "run" / "cells").glob("*.json")]
    moved = [c for c in cells if "mix" not in c["coords"]]
    proportions = []
    for c in moved:
        a, b, cc = (sum(row) for row in c["train_counts"])
        assert cc == pytest.approx(c["ratio"] * 120, abs=1)
        if a + b >= 60:
            proportions.append(a / (a + b))
    # a and b keep their (pool) proportions whatever c's share, up to rounding one sample
    assert len(proportions) >= 4 and max(proportions) - min(proportions) <= 2 / 60


@pytest.mark.parametrize("args, expected", [
    (["--objective", "fastest"], "--objective: expected one of gap, overall, worst, pareto"),
    (["--group", "Z"], "--group: expected one of the groups (M, F), got 'Z'"),
    (["--set", "mixes=[{M: 1.0}]"], "mixes: need at least two candidate mixes"),
])
def test_bad_recommend_input_exits_2_with_one_line(tmp_path, args, expected):
    res = cli("recommend", str(LABEL_NOISE), "--out", str(tmp_path / "r"), *AT_04, *args)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and expected in lines[0], res.stderr
