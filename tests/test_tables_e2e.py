"""Tables end to end through the CLI: 3 groups x 3 classes, explicit mixes, bad tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import cli, rows_per_k, run_cli

from fairensemble import metrics as M


def make_table(path: Path, seed: int = 0) -> Path:
    """900 rows; groups a/b/c (450/300/150); 3 classes that follow a group-specific rule of
    two numeric features and one categorical feature, so there is something to learn."""
    rng = np.random.default_rng(seed)
    grp = np.repeat(["a", "b", "c"], [450, 300, 150])
    x1, x2 = rng.normal(size=(2, 900))
    shade = rng.choice(["dark", "light"], size=900)
    angle = {"a": 0.0, "b": 0.4, "c": 0.8}
    turn = np.array([angle[g] for g in grp]) + (shade == "dark") * 0.5
    score = np.stack([np.cos(turn + k * 2.094) * x1 + np.sin(turn + k * 2.094) * x2
                      for k in range(3)], axis=1)
    label = np.array(["low", "mid", "high"])[score.argmax(1)]
    frame = pd.DataFrame({"x1": x1.round(4), "x2": x2.round(4), "shade": shade, "grp": grp,
                          "label": label})
    frame.to_csv(path, index=False)
    return path


def config(tmp_path: Path, csv: Path, **extra) -> Path:
    cfg = {
        "name": "table3",
        "dataset": {"kind": "table", "path": str(csv), "target": "label", "group": "grp",
                    "test_fraction": 0.3},
        "ratio_group": "c",
        "ratios": [0.2, 0.5],
        "train_size": 200,
        "replicates": 2,
        "model": {"hidden": [32, 32]},
        "train": {"epochs": 30, "lr": 0.01, "batch_size": 32},
        "ensemble": {"members": 3, "k": [1, 3], "draws": 3},
        "executor": {"kind": "serial", "threads": 1},
        **extra,
    }
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_csv_with_three_groups_and_three_classes_runs_end_to_end(tmp_path):
    csv = make_table(tmp_path / "t.csv")
    out = tmp_path / "run"
    res = run_cli("run", str(config(tmp_path, csv)), "--out", str(out))
    assert res.returncode == 0, res.stderr
    table = pd.read_parquet(out / "metrics.parquet")
    assert set(table["group"]) == {"a", "b", "c", "overall", "gap", "worst",
                                    "disparity"}
    assert set(table["metric"]) == set(M.names())  # every registered metric by default
    # ratios x replicates x ks x rows; three classes: no post-processing
    assert len(table) == 2 * 2 * 2 * rows_per_k(["a", "b", "c"])
    assert set(table["post"]) == {"none"}
    full = table[(table.k == 3) & (table.metric == "accuracy")]
    per = full.pivot_table(index=["ratio", "replicate"], columns="group", values="mean")
    assert np.allclose(
        per["gap"], per[["a", "b", "c"]].max(axis=1) - per[["a", "b", "c"]].min(axis=1)
    )
    assert np.allclose(per["worst"], per[["a", "b", "c"]].min(axis=1))
    assert (per["overall"] > 0.6).all(), per  # chance is 1/3: the members learned the rule
    auc = table[(table.metric == "auc") & table.group.isin(["a", "b", "c", "overall"])]["mean"]
    assert ((auc > 0.5) & (auc <= 1.0)).all()

    metas = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    for meta in metas:
        assert meta["groups"] == ["a", "b", "c"] and len(meta["classes"]) == 3
        counts = np.array(meta["train_counts"])  # [group, class]
        assert counts.sum() == 200
        assert counts[2].sum() == round(meta["ratio"] * 200)
        # the other groups keep their relative pool proportions (450:300)
        assert abs(counts[0].sum() / counts[1].sum() - 1.5) < 0.05
        with np.load(out / "cells" / f"{meta['id']}.npz", allow_pickle=False) as npz:
            assert npz["probs_test"].shape == (3, 270, 3)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["grid_points"][0]["groups"] == ["a", "b", "c"]
    assert (out / "report.html").is_file()


def test_explicit_mixes_set_every_groups_share(tmp_path):
    csv = make_table(tmp_path / "t.csv")
    mixes = [{"a": 0.5, "b": 0.3, "c": 0.2}, {"a": 0.3, "b": 0.3, "c": 0.4}]
    out = tmp_path / "run"
    res = run_cli("run", str(config(tmp_path, csv, mixes=mixes, replicates=1)),
                  "--out", str(out))
    assert res.returncode == 0, res.stderr
    table = pd.read_parquet(out / "metrics.parquet")
    assert set(table["mix"]) == {"a=0.5,b=0.3,c=0.2", "a=0.3,b=0.3,c=0.4"}
    for p in (out / "cells").glob("*.json"):
        meta = json.loads(p.read_text())
        counts = np.array(meta["train_counts"]).sum(axis=1)
        assert counts.tolist() == [round(200 * meta["mix"][g]) for g in ("a", "b", "c")]


BAD = [
    ("target column missing", {"target": "nope"}, None, "nope"),
    ("requested group absent", {"groups": ["a", "zz"]}, None, "zz"),
    ("one class", {}, lambda f: f.assign(label="low"), "one class"),
    ("text in a numeric column", {},
     lambda f: f.assign(x1=[*f.x1.astype(str)[:-1], "oops"]), "x1"),
]


@pytest.mark.parametrize("what, dataset, mutate, expected", BAD, ids=[b[0] for b in BAD])
def test_bad_tables_exit_2_naming_the_column(tmp_path, what, dataset, mutate, expected):
    csv = make_table(tmp_path / "t.csv")
    if mutate is not None:
        mutate(pd.read_csv(csv)).to_csv(csv, index=False)
    cfg = yaml.safe_load(config(tmp_path, csv).read_text())
    cfg["dataset"].update(dataset)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    res = cli("run", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "r"))
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], res.stderr


def test_an_empty_file_exits_2_naming_the_file(tmp_path):
    csv = tmp_path / "empty.csv"
    csv.write_text("")
    res = run_cli("run", str(config(tmp_path, csv)), "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "empty.csv" in res.stderr and len(res.stderr.strip().splitlines()) == 1
