"""Analyze an ensemble made elsewhere: long-form tables, .npz and arrays in, a run directory
out; export then analyze reproduces a run's metrics; bad input is one line and exit code 2;
intersectional groups get per-attribute margins."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, TINY, cli, run_cli

import fairensemble as fe
from fairensemble.evaluation.ensemble import _boot_counts

# ----------------------------------------------------------------------------- helpers


def long_form(n: int = 240, E: int = 4, seed: int = 0, val: int = 0) -> pd.DataFrame:
    """A valid long-form table: E members' probabilities on n test (+ val) samples, groups
    'north' (easier) and 'south', labels 'no' / 'yes'."""
    rng = np.random.default_rng(seed)
    total = n + val
    region = np.where(rng.random(total) < 0.6, "north", "south")
    y = rng.integers(0, 2, total)
    frames = []
    for e in range(E):
        margin = (2 * y - 1) * np.where(region == "north", 1.5, 0.6)
        p1 = 1 / (1 + np.exp(-(margin + rng.normal(0, 1.2, total))))
        frames.append(pd.DataFrame({
            "member": f"m{e}", "sample": np.arange(total), "y": np.where(y == 1, "yes", "no"),
            "region": region, "split": np.where(np.arange(total) < n, "test", "val"),
            "p_no": 1 - p1, "p_yes": p1}))
    out = pd.concat(frames, ignore_index=True)
    return out if val else out.drop(columns="split")


def direct_accuracy(df: pd.DataFrame, group_col: str = "region") -> dict[str, float]:
    """Per-group accuracy of the members' averaged (float32) probabilities, with pandas."""
    test = df[df["split"] == "test"] if "split" in df else df
    p = test.assign(p_yes=test["p_yes"].astype(np.float32).astype(np.float64),
                    p_no=test["p_no"].astype(np.float32).astype(np.float64))
    avg = p.groupby("sample").agg(p_no=("p_no", "mean"), p_yes=("p_yes", "mean"),
                                  y=("y", "first"), g=(group_col, "first"))
    right = np.where(avg["p_yes"] > avg["p_no"], "yes", "no") == avg["y"]
    return right.groupby(avg["g"]).mean().to_dict()


def metric(run, name: str = "accuracy", k: int | None = None, post: str = "none") -> pd.Series:
    table = pd.read_parquet(run / "metrics.parquet")
    k = table["k"].max() if k is None else k
    sel = table[(table["metric"] == name) & (table["k"] == k) & (table["post"] == post)]
    return sel.set_index("group")["mean"]


# ----------------------------------------------------------------------------- done-when


def test_a_sklearn_ensembles_predictions_give_per_group_accuracy_of_a_direct_computation(
        tmp_path):
    """A bagging ensemble of trees on a table of its own, written as long-form Parquet,
    analysed by the CLI in a real process: per-group accuracy at k = E is that of the
    members' averaged probabilities."""
    from sklearn.ensemble import BaggingClassifier
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(11)
    n = 1500
    site = rng.choice(["clinic_a", "clinic_b", "clinic_c"], n, p=[0.5, 0.3, 0.2])
    X = rng.normal(size=(n, 5))
    logit = X[:, 0] - 0.8 * X[:, 1] + np.where(site == "clinic_c", 0.5 * X[:, 2], X[:, 3])
    y = (logit + rng.normal(0, 0.7, n) > 0).astype(int)
    train, test = np.arange(n) < 1000, np.arange(n) >= 1000
    bag = BaggingClassifier(DecisionTreeClassifier(max_depth=4), n_estimators=7,
                            random_state=0).fit(X[train], y[train])
    frames = []
    for e, (tree, cols) in enumerate(zip(bag.estimators_, bag.estimators_features_)):
        p = tree.predict_proba(X[test][:, cols])
        frames.append(pd.DataFrame({"member": e, "sample": np.flatnonzero(test), "y": y[test],
                                    "site": site[test], "p_0": p[:, 0], "p_1": p[:, 1]}))
    path = tmp_path / "bagging.parquet"
    pd.concat(frames).to_parquet(path, index=False)

    res = run_cli("analyze", str(path), "--out", str(tmp_path / "run"),
                  "--set", "analysis.n_boot=20")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    got = metric(tmp_path / "run", k=7)
    probs = np.stack([t.predict_proba(X[test][:, c]) for t, c in
                      zip(bag.estimators_, bag.estimators_features_)]).astype(np.float32)
    pred = probs.astype(np.float64).mean(axis=0).argmax(axis=1)
    for s in ("clinic_a", "clinic_b", "clinic_c"):
        mask = site[test] == s
        assert got[s] == pytest.approx(np.mean(pred[mask] == y[test][mask]), abs=1e-12)
    # the run directory is a run: `report` rebuilds it, `run` refuses to train it
    assert cli("report", str(tmp_path / "run")).returncode == 0
    assert metric(tmp_path / "run", k=7)["clinic_a"] == got["clinic_a"]
    res = cli("run", str(tmp_path / "run" / "config.yaml"), "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and "nothing to train" in res.stderr


def test_export_then_analyze_reproduces_a_trained_runs_metrics_at_every_k(tmp_path):
    """A tiny trained run (with a validation split: post-processing rows; bootstrap
    intervals: resamples) exported to Parquet and analysed again gives metrics.parquet and
    summary.json equal to the run's own, every k included (member order, cell ids and the
    draw seed travel in the file's metadata)."""
    cfg = {**TINY, "ratios": [0.0, 0.5], "replicates": 1,
           "dataset": {**TINY["dataset"], "val_size": 300},
           "analysis": {"ci": "bootstrap", "n_boot": 20}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    assert cli("run", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "run")).returncode == 0
    res = cli("export", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    exported = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    assert set(exported["split"]) == {"test", "val"}
    assert len(exported) == 2 * 2 * 4 * (600 + 300)  # points x mixes x members x samples

    res = cli("analyze", str(tmp_path / "run" / "predictions.parquet"), "--out",
              str(tmp_path / "again"))
    assert res.returncode == 0, res.stderr
    original = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    again = pd.read_parquet(tmp_path / "again" / "metrics.parquet")
    assert set(original["post"]) == {"none", "threshold_eo", "threshold_dp"}
    pd.testing.assert_frame_equal(again, original)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert json.loads((tmp_path / "again" / "summary.json").read_text()) == summary
    plan = json.loads((tmp_path / "again" / "plan.json").read_text())
    assert plan["imported"]["format"] == "long"
    assert {c["id"] for c in plan["cells"]} == {
        c["id"] for c in json.loads((tmp_path / "run" / "plan.json").read_text())["cells"]}


def test_a_csv_export_analyzed_again_is_exact_at_k_1_and_k_E(tmp_path):
    """CSV carries rows only: with the grid column and the evaluation settings given again,
    the single models and the full ensemble score exactly as in the run."""
    from fake_runs import make_run_dir

    run = make_run_dir(tmp_path / "run", n_test=200, replicates=2,
                       grid={"dataset.label_noise": [0.0, 0.2]})
    assert cli("report", str(run)).returncode == 0
    assert cli("export", str(run), "--out", str(tmp_path / "p.csv")).returncode == 0
    res = cli("analyze", str(tmp_path / "p.csv"), "--out", str(tmp_path / "again"),
              "--grid", "dataset.label_noise", "--set", "ratio_group=F", "--set", "seed=3",
              "--set", "metrics=[accuracy,auc,tpr,fpr,selection_rate,spd,eod,brier]",
              "--set", "executor.kind=serial")
    assert res.returncode == 0, res.stderr
    cols = ["dataset.label_noise", "ratio", "replicate", "k", "post", "group", "metric"]
    a = pd.read_parquet(run / "metrics.parquet").set_index(cols)["mean"]
    b = pd.read_parquet(tmp_path / "again" / "metrics.parquet").set_index(cols)["mean"]
    ends = [k in (1, 4) for k in a.index.get_level_values("k")]
    assert len(a[ends]) > 200
    pd.testing.assert_series_equal(b.loc[a[ends].index], a[ends])


def test_an_export_stopped_by_a_damaged_cell_leaves_the_previous_file_and_no_temporary(
        tmp_path):
    """The file is written under a temporary name and renamed when complete: a cell that
    cannot be read stops export with one line, and what was at the destination stays."""
    from fake_runs import make_run_dir

    run = make_run_dir(tmp_path / "run", n_test=200, replicates=2)
    out = tmp_path / "p.parquet"
    assert cli("export", str(run), "--out", str(out)).returncode == 0
    before = out.read_bytes()
    victim = sorted((run / "cells").glob("*.npz"))[-1]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])

    res = run_cli("export", str(run), "--out", str(out))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and victim.stem in res.stderr
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.parquet", "run"]


# ----------------------------------------------------------------------------- inputs


def test_val_rows_enable_post_processing_and_one_replicate_gets_bootstrap_intervals(tmp_path):
    df = long_form(n=300, val=200)
    df.to_parquet(tmp_path / "p.parquet", index=False)
    summary = fe.analyze(tmp_path / "p.parquet", out=tmp_path / "run",
                         overrides=["analysis.n_boot=20"])
    assert summary["intervals"] == "bootstrap"
    table = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    assert {"threshold_eo", "threshold_dp"} <= set(table["post"])
    assert metric(tmp_path / "run").loc[["north", "south"]].to_dict() == pytest.approx(
        direct_accuracy(df), abs=1e-12)
    html = (tmp_path / "run" / "report.html").read_text()
    assert "bootstrap" in html and "imported from" in html
    change = summary["grid_points"][0]["verdicts"][0]["change"]["south"]
    assert change["ci95"][0] is not None  # an interval from one replicate


def test_logits_are_refused_naming_the_columns_and_read_with_logits(tmp_path):
    df = long_form()
    logit = np.log(df["p_yes"] / df["p_no"])
    df["p_no"], df["p_yes"] = -logit / 2, logit / 2
    df.to_parquet(tmp_path / "l.parquet", index=False)
    res = cli("analyze", str(tmp_path / "l.parquet"), "--out", str(tmp_path / "run"))
    assert res.returncode == 2
    assert "p_no, p_yes: the probabilities in data row 1 sum to" in res.stderr
    assert "--logits" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # nothing written
    res = cli("analyze", str(tmp_path / "l.parquet"), "--out", str(tmp_path / "run"),
              "--logits", "--set", "analysis.n_boot=20")
    assert res.returncode == 0, res.stderr
    want = direct_accuracy(long_form())  # softmax of the logits: the probabilities again
    assert metric(tmp_path / "run").loc[["north", "south"]].to_dict() == pytest.approx(
        want, abs=1e-12)


def test_one_p_column_is_the_positive_class_and_takes_a_sigmoid_with_logits(tmp_path):
    df = long_form().rename(columns={"p_yes": "p"}).drop(columns="p_no")
    df["y"] = (df["y"] == "yes").astype(int)
    df.to_csv(tmp_path / "p.csv", index=False)
    fe.analyze(tmp_path / "p.csv", out=tmp_path / "a", overrides=["analysis.n_boot=20"])
    df["p"] = np.log(df["p"] / (1 - df["p"]))
    df.to_csv(tmp_path / "logit.csv", index=False)
    res = cli("analyze", str(tmp_path / "logit.csv"), "--out", str(tmp_path / "b"))
    assert res.returncode == 2 and "p:" in res.stderr and "sigmoid" in res.stderr
    fe.analyze(tmp_path / "logit.csv", out=tmp_path / "b", logits=True,
               overrides=["analysis.n_boot=20"])
    a, b = metric(tmp_path / "a"), metric(tmp_path / "b")
    assert (a - b).abs().max() < 1e-6


def test_a_folder_of_parquet_shards_and_boolean_labels_are_read(tmp_path):
    df = long_form(n=300, val=100)
    (tmp_path / "shards").mkdir()
    df.iloc[:1000].to_parquet(tmp_path / "shards" / "part-0.parquet", index=False)
    df.iloc[1000:].to_parquet(tmp_path / "shards" / "part-1.parquet", index=False)
    fe.analyze(tmp_path / "shards", out=tmp_path / "a", overrides=["analysis.n_boot=20"])
    assert metric(tmp_path / "a").loc[["north", "south"]].to_dict() == pytest.approx(
        direct_accuracy(df), abs=1e-12)
    booleans = df.assign(y=df["y"] == "yes").rename(columns={"p_yes": "p"}).drop(
        columns="p_no")
    booleans.to_csv(tmp_path / "b.csv", index=False)  # y: True / False, p: of True
    fe.analyze(tmp_path / "b.csv", out=tmp_path / "b", overrides=["analysis.n_boot=20"])
    assert (metric(tmp_path / "b") - metric(tmp_path / "a")).abs().max() < 1e-6


def bad(df: pd.DataFrame, what: str) -> pd.DataFrame:
    df = df.copy()
    if what == "nan":
        df.loc[5, "p_yes"] = np.nan
    elif what == "label":
        df.loc[7, "y"] = "maybe"
    elif what == "samples":
        df = df.drop(index=df.index[(df["member"] == "m2") & (df["sample"] == 9)])
    elif what == "duplicate":
        df = pd.concat([df, df.iloc[[3]]])
    elif what == "no-test":
        df["split"] = np.where(df["region"] == "south", "val", "test")
    elif what == "renamed":
        df = df.rename(columns={"y": "label"})
    elif what == "y-differs":
        at = (df["member"] == "m1") & (df["sample"] == 4)
        df.loc[at, "y"] = np.where(df.loc[at, "y"] == "yes", "no", "yes")
    elif what == "split":
        df["split"] = "train"
    return df


@pytest.mark.parametrize("what, expected", [
    ("nan", "bad.parquet: p_yes: NaN in data row 6"),
    ("label", "holds 'maybe' in data row 8, not one of the classes ['no', 'yes']"),
    ("samples", "members predict different samples: member 'm2' lacks sample 9"),
    ("duplicate", "member 'm0' has sample 3 (test) twice"),
    ("no-test", "group 'south' has no test rows"),
    ("renamed", "required column 'y' (the label) not found"),
    ("y-differs", "sample 4 (test) has another y in member 'm1' (data row 245) than in "
                   "member 'm0'"),
    ("split", "expected test or val"),
])
def test_bad_input_is_one_line_and_exit_2_naming_what_is_wrong(tmp_path, what, expected):
    bad(long_form(), what).to_parquet(tmp_path / "bad.parquet", index=False)
    res = cli("analyze", str(tmp_path / "bad.parquet"), "--out", str(tmp_path / "run"))
    assert res.returncode == 2
    assert expected in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_bad_input_leaves_no_traceback_in_a_real_process(tmp_path):
    bad(long_form(), "samples").to_csv(tmp_path / "bad.csv", index=False)
    res = run_cli("analyze", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "members predict different samples" in res.stderr


def test_unknown_and_misspelt_columns_are_named_with_close_matches(tmp_path):
    df = long_form()
    df.to_parquet(tmp_path / "p.parquet", index=False)
    res = cli("analyze", str(tmp_path / "p.parquet"), "--group", "Region")
    assert res.returncode == 2 and "group column 'Region' not found; did you mean 'region'?" \
        in res.stderr
    df.assign(prob_yes=0.5).to_parquet(tmp_path / "extra.parquet", index=False)
    res = cli("analyze", str(tmp_path / "extra.parquet"), "--group", "region")
    assert res.returncode == 2 and "unknown column 'prob_yes'" in res.stderr
    assert "did you mean 'p_yes'" in res.stderr
    df.rename(columns={"p_no": "prob_no", "p_yes": "prob_yes"}).to_parquet(
        tmp_path / "noprob.parquet", index=False)
    res = cli("analyze", str(tmp_path / "noprob.parquet"))
    assert res.returncode == 2 and "no probability columns" in res.stderr


@pytest.mark.parametrize("args, expected", [
    (["--set", "replicates=3"], "--set replicates: set by the imported predictions"),
    (["--set", "metrics=[accuracy,f1]"], "metrics[1]: expected one of"),
    (["--set", "ratio_group=west"], "ratio_group: expected one of the groups"),
])
def test_bad_settings_are_one_line_errors(tmp_path, args, expected):
    long_form().to_parquet(tmp_path / "p.parquet", index=False)
    res = cli("analyze", str(tmp_path / "p.parquet"), "--out", str(tmp_path / "run"), *args)
    assert res.returncode == 2 and expected in res.stderr
    assert not (tmp_path / "run").exists()


def test_a_ratio_column_needs_its_group_named_and_makes_one_cell_per_share(tmp_path):
    df = pd.concat([long_form(seed=1).assign(ratio=0.2), long_form(seed=2).assign(ratio=0.8)])
    df.to_parquet(tmp_path / "p.parquet", index=False)
    res = cli("analyze", str(tmp_path / "p.parquet"), "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and "--set ratio_group=GROUP" in res.stderr
    summary = fe.analyze(tmp_path / "p.parquet", out=tmp_path / "run",
                         overrides=["ratio_group=south", "analysis.n_boot=20"])
    assert [v["ratio"] for v in summary["grid_points"][0]["verdicts"]] == [0.2, 0.8]
    assert (tmp_path / "run" / "figures" / "gap_vs_ratio.png").is_file()
    table = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    at = table[(table["ratio"] == 0.8) & (table["k"] == 4) & (table["metric"] == "accuracy")]
    assert at.set_index("group")["mean"][["north", "south"]].to_dict() == pytest.approx(
        direct_accuracy(long_form(seed=2)), abs=1e-12)


def test_analyze_never_writes_over_a_trained_run(tmp_path):
    from fake_runs import make_run_dir

    run = make_run_dir(tmp_path / "run", n_test=50)
    before = (run / "plan.json").read_text()
    long_form().to_parquet(tmp_path / "p.parquet", index=False)
    res = cli("analyze", str(tmp_path / "p.parquet"), "--out", str(run))
    assert res.returncode == 2 and "trained by `fairensemble run`" in res.stderr
    assert (run / "plan.json").read_text() == before


def test_an_npz_and_arrays_and_torch_tensors_give_the_same_metrics(tmp_path):
    import torch

    rng = np.random.default_rng(5)
    E, n, C = 3, 300, 3
    logits = rng.normal(size=(E, n, C)) + 2 * np.eye(C)[rng.integers(0, C, n)]
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    y = np.argmax(logits.mean(0) + rng.normal(0, 1, (n, C)), axis=1)
    g = rng.integers(0, 2, n)
    np.savez(tmp_path / "p.npz", probs=probs.astype(np.float32), y=y, g=g,
             groups=np.array(["young", "old"]), classes=np.array(["a", "b", "c"]))
    res = cli("analyze", str(tmp_path / "p.npz"), "--out", str(tmp_path / "npz"),
              "--set", "analysis.n_boot=20")
    assert res.returncode == 0, res.stderr
    names = np.array(["young", "old"])[g]
    fe.analyze(probs=probs, y=y, groups=names, out=tmp_path / "np", classes=["a", "b", "c"],
               overrides=["analysis.n_boot=20"])
    fe.analyze(probs=torch.from_numpy(logits), y=torch.from_numpy(y), groups=names,
               logits=True, out=tmp_path / "torch", classes=["a", "b", "c"],
               overrides=["analysis.n_boot=20"])
    a = pd.read_parquet(tmp_path / "npz" / "metrics.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "np" / "metrics.parquet"), a)
    c = pd.read_parquet(tmp_path / "torch" / "metrics.parquet")
    assert np.allclose(c["mean"], a["mean"], atol=1e-6, equal_nan=True)
    pred = probs.astype(np.float32).astype(np.float64).mean(0).argmax(1)
    acc = metric(tmp_path / "npz", k=E)
    assert acc["old"] == pytest.approx(np.mean((pred == y)[g == 1]), abs=1e-12)


@pytest.mark.parametrize("kwargs, expected", [
    ({"y": np.array([0, 1, 2] * 10)}, "y: label 2 outside the classes 0..1"),
    ({"probs": np.full((2, 30, 2), 0.7)}, "sum to 1.4"),
    ({"groups": np.array(["a"] * 29 + ["b"]), "groups_val": np.array(["c"] * 10),
      "probs_val": np.full((2, 10, 2), 0.5), "y_val": np.zeros(10, int)},
     "group 'c' has no test rows"),
])
def test_bad_arrays_are_one_line_errors(tmp_path, kwargs, expected):
    from fairensemble import DataError

    args = {"probs": np.full((2, 30, 2), 0.5), "y": np.zeros(30, int),
            "groups": np.array(["a", "b"] * 15), **kwargs}
    with pytest.raises(DataError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        fe.analyze(**args, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- intersectional


def test_two_group_columns_make_combinations_with_margins_beside_them(tmp_path):
    rng = np.random.default_rng(2)
    df = long_form(n=600, seed=3)
    per_sample = pd.DataFrame({"sample": np.arange(600),
                               "sex": rng.choice(["Female", "Male"], 600)})
    df = df.merge(per_sample, on="sample")
    df.to_parquet(tmp_path / "p.parquet", index=False)
    res = cli("analyze", str(tmp_path / "p.parquet"), "--out", str(tmp_path / "run"),
              "--group", "region", "--group", "sex", "--set", "analysis.n_boot=20")
    assert res.returncode == 0, res.stderr
    acc = metric(tmp_path / "run")
    combos = {"north & Female", "north & Male", "south & Female", "south & Male"}
    assert combos | {"region=north", "sex=Female"} <= set(acc.index)
    df["both"] = df["region"] + " & " + df["sex"]
    assert acc[sorted(combos)].to_dict() == pytest.approx(direct_accuracy(df, "both"),
                                                          abs=1e-12)
    assert acc[["sex=Female", "sex=Male"]].to_dict() == pytest.approx(
        {f"sex={k}": v for k, v in direct_accuracy(df, "sex").items()}, abs=1e-12)
    auc = metric(tmp_path / "run", "auc")
    from sklearn.metrics import roc_auc_score
    avg = df.groupby("sample").agg(p=("p_yes", "mean"), y=("y", "first"), sex=("sex", "first"))
    male = avg[avg["sex"] == "Male"]
    assert auc["sex=Male"] == pytest.approx(roc_auc_score(male["y"] == "yes", male["p"]),
                                            abs=1e-9)
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert plan["layouts"][0]["attributes"] == ["region", "sex"]
    assert ["south", "Male"] in plan["layouts"][0]["group_values"]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    point = summary["grid_points"][0]
    assert set(point["groups"]) == combos  # gap, worst and verdicts over the combinations
    margin = {m["group"]: m for m in point["margins"]}
    assert margin["sex=Male"]["combinations"] == ["north & Male", "south & Male"]
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Per group (intersectional, with margins)" in html and "sex=Female" in html


def test_a_trained_table_run_with_two_group_columns_reports_margins(tmp_path):
    rng = np.random.default_rng(4)
    n = 1200
    race = rng.choice(["A", "B"], n)
    sex = rng.choice(["F", "M"], n)
    x = rng.normal(size=n)
    pd.DataFrame({"x": x, "z": rng.normal(size=n), "race": race, "sex": sex,
                  "label": (x + rng.normal(0, 0.5, n) > 0).astype(int)}
                 ).to_csv(tmp_path / "t.csv", index=False)
    cfg = fe.load_config(None, [
        "name=t", "dataset.kind=table", f"dataset.path={tmp_path / 't.csv'}",
        "dataset.target=label", "dataset.group=[race, sex]", "ratio_group=A",
        "ratios=[0.5]", "replicates=1", "train_size=300", "ensemble.members=2",
        "train.epochs=2", "executor.kind=serial", "metrics=[accuracy]",
        "analysis.ci=bootstrap", "analysis.n_boot=20"])
    fe.run(cfg, tmp_path / "run")
    acc = metric(tmp_path / "run")
    assert {"race=A", "race=B", "sex=F", "sex=M", "A & F"} <= set(acc.index)
    from fairensemble.sweep import RunStore
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    record = RunStore(tmp_path / "run").read_cell(plan["cells"][0]["id"])
    pred = record.probs_test.astype(np.float64).mean(0).argmax(1)
    female = np.isin(record.g_test, [j for j, v in enumerate(plan["layouts"][0]["group_values"])
                                     if v[1] == "F"])
    assert acc["sex=F"] == pytest.approx(np.mean(pred[female] == record.y_test[female]),
                                         abs=1e-12)
    assert "sex=F" in (tmp_path / "run" / "report.html").read_text()
    # exported, the groups are one column per attribute, and analyze finds the same margins
    assert cli("export", str(tmp_path / "run")).returncode == 0
    exported = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    assert {"race", "sex"} <= set(exported.columns)
    fe.analyze(tmp_path / "run" / "predictions.parquet", out=tmp_path / "again")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "again" / "metrics.parquet"),
                                  pd.read_parquet(tmp_path / "run" / "metrics.parquet"))


# ----------------------------------------------------------------------------- memory


@pytest.mark.parametrize("sizes", [[0, 7, 7, 20], [0, 1000, 1000, 1003], [0, 5, 40_000]])
def test_bootstrap_counts_one_resample_at_a_time_equal_one_call_for_the_group(sizes):
    """The resamples drawn row by row are those one call for each group's [n_boot, size]
    indices gives (the reference is that one call, as evaluate_cell drew them before)."""
    ranges = list(zip(sizes[:-1], sizes[1:]))
    n, n_boot = sizes[-1], 9
    rng = np.random.default_rng(17)
    want = np.zeros((n_boot, n), dtype=np.int64)
    for a, b in ranges:
        if b > a:
            picks = rng.integers(a, b, size=(n_boot, b - a)) + n * np.arange(n_boot)[:, None]
            want += np.bincount(picks.ravel(), minlength=n_boot * n).reshape(n_boot, n)
    got = _boot_counts(ranges, n, n_boot, 17)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, want)


def test_the_analyze_benchmark_quick_mode_emits_json():
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "analyze.py"), "--quick"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["members"] > 1 and out["analyze_s"] > 0 and out["fairlearn_s"] > 0
    assert out["analyze_peak_mib"] > 0 and out["accuracy_matches_fairlearn"] is True
