"""Raters (the paper's third open question): majority labels and the tie rule, disagreement,
the noise and the floor it implies against hand-computed numbers, soft targets in every trainer
against a plain autograd reference, the votes carried into the run directory, the three
measures of difficulty in summary.json and report.html (rebuilt without the data), `init
--annotation`, and bad input as one line each."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT, cli
from PIL import Image

from fairensemble.config import ModelConfig, TrainConfig, load_config, validate
from fairensemble.data import load_dataset
from fairensemble.data.raters import count_votes, majority, tie_coins
from fairensemble.metrics.raters import (
    group_rater_measures,
    majority_floor,
    noise_from_disagreement,
    pair_disagreement,
)
from fairensemble.models.mlp import MLP
from fairensemble.sweep import CellRecord
from fairensemble.sweep.plan import PointLayout, cell_identity
from fairensemble.train import CellData, order_rng, train_loop, train_stacked

HIDDEN = [8]

# ----------------------------------------------------------------------------- the maths


def test_the_majority_breaks_ties_by_the_rows_coin_among_the_tied_classes():
    votes = np.array([[2, 1, 0], [0, 1, 3], [1, 1, 0], [1, 1, 0], [2, 2, 2], [0, 0, 0]])
    coins = np.array([0.9, 0.9, 0.2, 0.7, 0.5, 0.5])
    # no tie: the most votes; a two-way tie: the first tied class below a coin of 1/2, the
    # second above; a three-way tie: the middle third of the coin is the middle class
    assert majority(votes, coins).tolist() == [0, 2, 0, 1, 1, -1]
    # the coins are a fixed stream: row i gets the same coin on every run
    assert np.array_equal(tie_coins(5), tie_coins(5)) and np.array_equal(tie_coins(5),
                                                                          tie_coins(9)[:5])
    assert count_votes(np.array([[0, 1, -1], [1, 1, 1]]), 2).tolist() == [[1, 1], [0, 3]]


def test_disagreement_noise_and_floor_against_hand_computed_numbers():
    # a sample's chance that two of its raters disagree: 2 k (R - k) / (R (R - 1))
    d = pair_disagreement(np.array([[2, 1], [3, 0], [1, 1], [1, 0], [2, 2]]))
    np.testing.assert_allclose(d[[0, 1, 2, 4]], [2 / 3, 0.0, 1.0, 4 / 6])
    assert np.isnan(d[3])  # one rater: no pair
    # binary: D = 2 eps (1 - eps); three classes: D = 1 - (1 - eps)^2 - eps^2 / 2
    assert noise_from_disagreement(2 * 0.1 * 0.9, 2) == pytest.approx(0.1)
    assert noise_from_disagreement(1 - 0.9 ** 2 - 0.1 ** 2 / 2, 3) == pytest.approx(0.1)
    assert noise_from_disagreement(0.9, 2) == pytest.approx(0.5)  # beyond chance: uniform
    eps = 0.1
    assert majority_floor(3, eps) == pytest.approx(3 * eps ** 2 * (1 - eps) + eps ** 3)
    assert majority_floor(3, eps) == pytest.approx(0.028)
    assert majority_floor(1, eps) == pytest.approx(eps)
    assert majority_floor(2, eps) == pytest.approx(eps ** 2 + 0.5 * 2 * eps * (1 - eps))
    assert majority_floor(4, eps) == pytest.approx(  # three or four flips, half of a 2-2 tie
        4 * eps ** 3 * (1 - eps) + eps ** 4 + 0.5 * 6 * eps ** 2 * (1 - eps) ** 2)
    assert majority_floor(5, 0.2) == pytest.approx(
        10 * 0.2 ** 3 * 0.8 ** 2 + 5 * 0.2 ** 4 * 0.8 + 0.2 ** 5)
    # a group: 27 of 100 samples split 2-1, the rest unanimous -> D = 0.27 x 2/3 = 0.18,
    # eps = 0.1, floor 0.028 at R = 3; a second group of R = 1 and R = 3 samples averages
    # the floor at each sample's own R
    votes = np.array([[2, 1]] * 27 + [[3, 0]] * 73 + [[2, 1]] * 27 + [[0, 3]] * 73
                     + [[1, 0]] * 100, dtype=float)
    g = np.repeat([0, 1, 1], [100, 100, 100])
    m = group_rater_measures(votes, g, 2, 2)
    np.testing.assert_allclose(m["rater_disagreement"], [0.18, 0.18])
    np.testing.assert_allclose(m["rater_noise"], [0.1, 0.1])
    np.testing.assert_allclose(m["rater_floor"], [0.028, (0.028 + 0.1) / 2])
    np.testing.assert_allclose(m["rater_count"], [3.0, 2.0])


def test_the_multiclass_floor_is_exact_against_a_simulation():
    rng = np.random.default_rng(0)
    R, eps, C, n = 4, 0.4, 3, 300_000
    wrong = rng.random((n, R)) < eps
    labels = np.where(wrong, rng.integers(1, C, (n, R)), 0)  # the truth is class 0
    votes = np.stack([(labels == c).sum(1) for c in range(C)], axis=1)
    simulated = (majority(votes, rng.random(n)) != 0).mean()
    assert majority_floor(R, eps, C) == pytest.approx(simulated, abs=0.004)
    # two classes through the same rule: the binary closed form
    binary = np.where(rng.random((n, 3)) < 0.1, 1, 0)
    votes2 = np.stack([(binary == c).sum(1) for c in range(2)], axis=1)
    assert (majority(votes2, rng.random(n)) != 0).mean() == pytest.approx(0.028, abs=0.002)


def test_shares_without_rater_counts_count_as_many_raters_with_no_floor():
    p = np.array([0.2, 0.5, 1.0])
    d = pair_disagreement(np.stack([1 - p, p], axis=1), counts=False)
    np.testing.assert_allclose(d, 2 * p * (1 - p))
    m = group_rater_measures(np.stack([1 - p, p], axis=1), np.zeros(3, int), 1, 2, counts=False)
    assert np.isnan(m["rater_floor"][0]) and np.isnan(m["rater_count"][0])


# ----------------------------------------------------------------------------- soft targets


def toy(seed: int, n: int = 200):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    g = (rng.random(n) < 0.4).astype(np.int64)
    p = 1 / (1 + np.exp(-2 * (X[:, 0] + 0.5 * X[:, 1])))
    share = np.round(p * 5) / 5  # five raters' share of the positive class
    soft = np.stack([1 - share, share], axis=1).astype(np.float32)
    y = (share > 0.5).astype(np.int64)
    return X, y, g, soft


def reference(X, soft, seed, train: TrainConfig) -> np.ndarray:
    """One member the plain way: an MLP, autograd, torch.optim.SGD, the trainers' init and
    batch order, and torch's cross-entropy against the soft targets."""
    net = MLP(X.shape[1], HIDDEN, 2, seed=seed)
    opt = torch.optim.SGD(net.parameters(), lr=train.lr, momentum=0.0)
    Xt, st = torch.from_numpy(X), torch.from_numpy(soft)
    rng = order_rng(seed)
    for _ in range(train.epochs):
        perm = torch.from_numpy(rng.permutation(len(X)))
        for s in range(0, len(X), train.batch_size):
            i = perm[s:s + train.batch_size]
            loss = torch.nn.functional.cross_entropy(net(Xt[i]), st[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return torch.softmax(net(Xt), dim=-1).numpy()


@pytest.mark.parametrize("trainer", [train_stacked, train_loop], ids=["stacked", "loop"])
def test_soft_target_training_equals_autograd_with_soft_targets(trainer):
    X, y, g, soft = toy(0)
    train = TrainConfig(optimizer="sgd", lr=0.3, momentum=0.0, epochs=5, batch_size=32)
    seeds = [5, 6]
    got = trainer([CellData(X, y, {"test": X}, seeds, soft_train=soft)],
                  ModelConfig(hidden=HIDDEN), train, 2)[0]["test"]
    for m, seed in enumerate(seeds):
        np.testing.assert_allclose(got[m], reference(X, soft, seed, train), atol=2e-5)
    hard = trainer([CellData(X, y, {"test": X}, seeds)], ModelConfig(hidden=HIDDEN), train,
                   2)[0]["test"]
    assert np.abs(hard - got).max() > 1e-3  # the soft targets made a difference
    one_hot = trainer([CellData(X, y, {"test": X}, seeds, soft_train=np.eye(2)[y])],
                      ModelConfig(hidden=HIDDEN), train, 2)[0]["test"]
    np.testing.assert_allclose(one_hot, hard, atol=1e-6)  # one-hot targets: the labels


@pytest.mark.parametrize("kind", ["reweight", "group_dro"])
def test_soft_targets_under_a_mitigation_give_the_same_member_in_both_trainers(kind):
    X, y, g, soft = toy(1)
    train = TrainConfig(epochs=3, batch_size=40, mitigation=kind, dro_step=0.3)
    cell = CellData(X, y, {"test": X[:50]}, [3, 4], g_train=g, soft_train=soft)
    stacked = train_stacked([cell], ModelConfig(hidden=HIDDEN), train, 2)
    loop = train_loop([cell], ModelConfig(hidden=HIDDEN), train, 2)
    np.testing.assert_allclose(stacked[0]["test"], loop[0]["test"], atol=1e-5)


def test_soft_targets_that_are_not_distributions_are_one_line():
    X, y, g, soft = toy(2, n=40)
    with pytest.raises(ValueError, match=r"soft_train: expected rows of class probabilities"):
        train_stacked([CellData(X, y, {"test": X}, [1], soft_train=soft * 2)],
                      ModelConfig(hidden=HIDDEN), TrainConfig(epochs=1), 2)


# ----------------------------------------------------------------------------- tables


def rated_table(path, n: int = 400, seed: int = 0, noise=(0.05, 0.3), raters: int = 3,
                missing: float = 0.0) -> pd.DataFrame:
    """A table whose truth depends on x1, x2; group b's raters are noisier; `r1..rR` hold each
    rater's yes/no (some missing when ``missing``)."""
    rng = np.random.default_rng(seed)
    group = np.where(rng.random(n) < 0.5, "a", "b")
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    truth = (x1 + 0.5 * x2 > 0).astype(int)
    frame = pd.DataFrame({"x1": x1.round(3), "x2": x2.round(3), "grp": group})
    rate = np.where(group == "a", noise[0], noise[1])
    for r in range(raters):
        said = np.where(rng.random(n) < rate, 1 - truth, truth)
        col = np.where(said == 1, "yes", "no").astype(object)
        col[rng.random(n) < missing] = None
        frame[f"r{r + 1}"] = col
    frame.to_csv(path, index=False)
    return frame


def table_cfg(path, **dataset) -> dict:
    return {"name": "rated", "seed": 3,
            "dataset": {"kind": "table", "path": str(path), "group": "grp",
                        "annotations": ["r1", "r2", "r3"], "test_fraction": 0.4, **dataset},
            "ratio_group": "b", "ratios": [0.25, 0.5, 0.75], "train_size": 120,
            "replicates": 2, "grid": {"train_size": [60, 120]},
            "model": {"hidden": [8]}, "train": {"epochs": 3, "batch_size": 32, "lr": 0.02},
            "ensemble": {"members": 3, "draws": 3}, "primary_metric": "accuracy",
            "analysis": {"n_boot": 20}, "executor": {"kind": "serial"}}


def test_annotations_make_the_majority_label_and_are_never_features(tmp_path):
    frame = rated_table(tmp_path / "t.csv", missing=0.2)
    cfg = validate(table_cfg(tmp_path / "t.csv"))
    ds = load_dataset(cfg.dataset, 0)
    assert ds.classes == ["no", "yes"]
    assert ds.info["numeric_features"] == ["x1", "x2"] and not ds.info["categorical_features"]
    votes = count_votes(np.stack([frame[c].map({"no": 0, "yes": 1}).fillna(-1).to_numpy(int)
                                  for c in ("r1", "r2", "r3")], axis=1), 2)
    want = majority(votes, tie_coins(len(frame)))  # row i's coin: its position in the file
    rated = votes.sum(1) > 0
    assert ds.info["rows_used"] == rated.sum() and ds.info["dropped_missing"] == (~rated).sum()
    got = np.concatenate([ds.pool.y, ds.test.y])
    assert sorted(got.tolist()) == sorted(want[rated].tolist())
    both = np.concatenate([ds.pool.votes, ds.test.votes])
    assert (both.sum(1) >= 1).all() and (both.argmax(1) == got)[both.max(1) * 2 > both.sum(1)
                                                                ].all()
    again = load_dataset(cfg.dataset, 0)
    assert np.array_equal(again.test.y, ds.test.y)  # ties fall the same way every run
    assert ds.info["raters"]["scored_on"] == "majority"


def test_a_target_wins_and_the_raters_only_measure(tmp_path):
    frame = rated_table(tmp_path / "t.csv")
    frame["label"] = frame["r1"]
    frame.to_csv(tmp_path / "t.csv", index=False)
    cfg = validate(table_cfg(tmp_path / "t.csv", target="label"))
    ds = load_dataset(cfg.dataset, 0)
    assert ds.info["raters"]["scored_on"] == "target"
    assert "label" not in ds.info["categorical_features"]
    # the labels are r1's (the target), not the majority; the votes are all three raters'
    assert (ds.test.votes.sum(1) == 3).all()
    r1 = ds.test.votes  # r1 agrees with its own label: a vote for it in every row
    assert (r1[np.arange(len(r1)), ds.test.y] >= 1).all()


def test_a_soft_label_with_rater_counts_gives_counted_votes(tmp_path):
    rng = np.random.default_rng(1)
    n = 200
    frame = pd.DataFrame({"x": rng.normal(size=n), "grp": rng.choice(["a", "b"], n),
                          "n": rng.integers(1, 6, n)})
    frame["share"] = rng.integers(0, frame["n"] + 1) / frame["n"]
    frame.to_csv(tmp_path / "s.csv", index=False)
    base = {"kind": "table", "path": str(tmp_path / "s.csv"), "group": "grp",
            "soft_label": "share"}
    ds = load_dataset(validate({"dataset": {**base, "raters": "n"}}).dataset, 0)
    assert ds.classes == ["0", "1"] and "n" not in ds.info["numeric_features"]
    votes = np.concatenate([ds.pool.votes, ds.test.votes])
    assert sorted(votes.sum(1).tolist()) == sorted(frame["n"].astype(float).tolist())
    unknown = load_dataset(validate({"dataset": base}).dataset, 0)
    assert unknown.info["raters"]["counts"] is False
    np.testing.assert_allclose(unknown.test.votes.sum(1), 1.0, atol=1e-6)


# ----------------------------------------------------------------------------- run directory


def test_an_older_cell_without_votes_reads_as_before_and_identities_hold():
    rec = CellRecord.from_parts(
        {"id": "c", "coords": {}, "groups": ["a"], "classes": ["0", "1"], "ratio_group": "a",
         "seeds": {}, "n_train": 1, "train_counts": [], "timings": {}},
        {"probs_test": np.zeros((1, 2, 2), np.float32), "y_test": np.zeros(2, int),
         "g_test": np.zeros(2, int)})
    assert rec.votes_test is None and rec.raters == {} and "raters" not in rec.meta()
    lay = PointLayout(groups=["a", "b"], classes=["0", "1"], ratio_group="a",
                      shares=[[0.5, 0.5]], counts=[[[5, 5], [5, 5]]])
    plain = {"dataset": {"kind": "table", "path": "t.csv", "target": "y", "group": "g"}}
    identity = cell_identity(validate(plain), lay, 0, 0)["dataset"]
    assert not {"annotations", "soft_label", "raters", "train_on"} & set(identity)
    soft = {"dataset": {**plain["dataset"], "annotations": ["r1"], "train_on": "soft"}}
    assert cell_identity(validate(soft), lay, 0, 0) != cell_identity(validate(plain), lay, 0, 0)


def blank_figures(mp: pytest.MonkeyPatch) -> None:
    """Figures drawn blank (they have tests of their own; drawing them is most of a tiny run's
    time): everything else about the outputs is as a run writes them."""
    import matplotlib.pyplot as plt

    from fairensemble.report import build

    def blank(*args, **kwargs):
        return plt.figure(figsize=(1, 1)), "blank"

    mp.setattr(build, "all_figures", lambda *args, **kwargs: [])
    mp.setattr(build, "learning_curves_figure", blank)
    mp.setattr(build, "curves_fit_figure", blank)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """The shipped raters.yaml scenario, made tiny: five raters, F's noisier."""
    from fairensemble import run

    out = tmp_path_factory.mktemp("scenario") / "run"
    cfg = load_config(ROOT / "configs" / "raters.yaml", [
        "dataset.pool_size=1600", "dataset.test_size=1200", "ratios=[0.25, 0.5, 0.75]",
        "replicates=2", "grid.train_size=[100, 200]", "grid.dataset.train_on=[majority]",
        "ensemble.members=3", "ensemble.draws=3", "train.epochs=3", "analysis.n_boot=20",
        "executor.kind=serial"])
    with pytest.MonkeyPatch.context() as mp:
        blank_figures(mp)
        return out, run(cfg, out)


def test_the_scenario_shows_the_noisier_group_with_more_disagreement_and_a_higher_floor(
        scenario):
    out, summary = scenario
    raters = summary["raters"][0]
    m, f = raters["groups"]["M"], raters["groups"]["F"]
    assert f["disagreement"] > m["disagreement"] and f["floor"] > m["floor"]
    assert raters["harder"] == "F" and m["raters"] == f["raters"] == 5.0
    # 5 raters at 5 % and 20 %: floors near the closed form
    assert m["noise"] == pytest.approx(0.05, abs=0.02) and f["noise"] == pytest.approx(0.2,
                                                                                   abs=0.03)
    assert f["floor"] == pytest.approx(majority_floor(5, f["noise"]))
    table = pd.read_parquet(out / "metrics.parquet")
    rows = table[table["metric"] == "rater_floor"]
    assert set(rows["k"]) == {1, 2, 3} and set(rows["post"]) == {"none"}
    assert rows.groupby("group")["mean"].nunique().max() == 1  # the same in every cell and k
    measures = summary["difficulty_measures"][0]
    assert measures["harder"]["raters"] == "F" and measures["train_size"] == 200
    assert measures["groups"]["F"]["curve_floor"] is not None  # train_size was swept
    assert set(measures["groups"]["F"]["balanced_error"]) == {"k=1", "k=3"}
    assert measures["balanced_mix"]["ratio"] == 0.5


def test_report_html_shows_the_three_measures_and_a_rebuild_without_the_data_keeps_them(
        tmp_path, monkeypatch):
    blank_figures(monkeypatch)
    rated_table(tmp_path / "t.csv", n=500)
    cfg = {**table_cfg(tmp_path / "t.csv"), "grid": {}}  # one size: no learning curves
    (tmp_path / "rated.yaml").write_text(yaml.safe_dump(cfg))
    res = cli("run", str(tmp_path / "rated.yaml"), "--out", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    assert "three measures of difficulty" in res.stdout and "rater floor" in res.stdout
    first = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert first["raters"][0]["groups"]["b"]["floor"] > first["raters"][0]["groups"]["a"]["floor"]
    html = (tmp_path / "run" / "report.html").read_text()
    for words in ("Three measures of difficulty", "rater floor", "learning-curve floor",
                  "error at the balanced mix", "harder group by the raters&#x27; floor: b",
                  "by the learning curves&#x27; floor: n/a (sweep train_size to fit them)"):
        assert words in html, words
    (tmp_path / "t.csv").unlink()  # the data are gone: the run directory is all there is
    shutil.rmtree(tmp_path / "run" / "evals")
    assert cli("report", str(tmp_path / "run")).returncode == 0
    again = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert again["raters"] == first["raters"]
    assert again["difficulty_measures"] == first["difficulty_measures"]
    assert "Three measures of difficulty" in (tmp_path / "run" / "report.html").read_text()


# ----------------------------------------------------------------------------- init


def test_init_table_takes_annotation_columns_and_the_target_becomes_their_majority(tmp_path):
    rated_table(tmp_path / "votes.csv", n=600)
    res = cli("init", "table", str(tmp_path / "votes.csv"), "--group", "grp", "--annotation",
              "r1", "--annotation", "r2", "--annotation", "r3", "--out", str(tmp_path / "v.yaml"))
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "v.yaml").read_text()
    cfg = load_config(tmp_path / "v.yaml")
    assert cfg.dataset.annotations == ["r1", "r2", "r3"] and cfg.dataset.target is None
    assert "--annotation r1 --annotation r2 --annotation r3" in text  # the command, as run
    assert "raters (3 columns: r1, r2, r3)" in res.stdout and "disagreement" in res.stdout
    with_target = cli("init", "table", str(tmp_path / "votes.csv"), "--target", "r1",
                      "--group", "grp", "--annotation", "r2", "--annotation", "r3",
                      "--out", str(tmp_path / "w.yaml"))
    assert with_target.returncode == 0, with_target.stderr
    assert load_config(tmp_path / "w.yaml").dataset.target == "r1"


def test_init_images_takes_annotation_columns(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(80):
        label = i % 2
        img = np.clip(rng.normal(80 + 80 * label, 20, (16, 16)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / f"x{i}.png")
        votes = [label if rng.random() > 0.2 else 1 - label for _ in range(3)]
        rows.append({"file": f"x{i}.png", "sex": "F" if i % 4 < 2 else "M",
                     **{f"reader{r}": v for r, v in enumerate(votes)}})
    pd.DataFrame(rows).to_csv(tmp_path / "xrays.csv", index=False)
    res = cli("init", "images", str(tmp_path / "xrays.csv"), "--image", "file", "--group",
              "sex", *[x for r in range(3) for x in ("--annotation", f"reader{r}")],
              "--out", str(tmp_path / "x.yaml"))
    assert res.returncode == 0, res.stderr
    cfg = load_config(tmp_path / "x.yaml")
    assert cfg.dataset.annotations == ["reader0", "reader1", "reader2"]
    ds = load_dataset(cfg.dataset.model_copy(update={"cache_dir": str(tmp_path / "c")}), 0)
    assert ds.test.votes is not None and (ds.test.votes.sum(1) == 3).all()


# ----------------------------------------------------------------------------- bad input


def one_line(res) -> str:
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert res.stderr.count("\n") == 1, res.stderr
    return res.stderr


@pytest.mark.parametrize("case, expected", [
    ("stray", r"annotation column 'r2' holds 'maybe', 'unsure', not among the classes of the "
              r"target column 'label'"),
    ("share", r"soft label column 'share' holds 1.4 outside \[0, 1\] \(first in data row 3\)"),
    ("both", r"dataset.soft_label: goes without dataset.annotations"),
    ("multiclass", r"dataset.train_on 'soft' trains binary tasks .* 3 classes \(no, unsure, "
                   r"yes\)"),
    ("nothing", r"dataset.target: expected the column holding the class label"),
    ("count", r"raters column 'n' holds 2.5 \(first in data row 1\)"),
])
def test_bad_rater_input_is_one_line_exit_2(tmp_path, case, expected):
    import re

    frame = rated_table(tmp_path / "t.csv", n=60)
    frame["label"] = frame["r1"]
    frame["share"] = 0.5
    frame["n"] = 3.0
    dataset = {"kind": "table", "path": str(tmp_path / "t.csv"), "group": "grp"}
    if case == "stray":
        frame.loc[[3, 8], "r2"] = ["maybe", "unsure"]
        dataset.update(target="label", annotations=["r2", "r3"])
    elif case == "share":
        frame.loc[2, "share"] = 1.4
        dataset.update(soft_label="share", raters="n")
    elif case == "both":
        dataset.update(annotations=["r1"], soft_label="share")
    elif case == "multiclass":
        frame.loc[[3, 8], "r2"] = "unsure"
        dataset.update(annotations=["r1", "r2", "r3"], train_on="soft")
    elif case == "count":
        frame.loc[0, "n"] = 2.5
        dataset.update(soft_label="share", raters="n")
    frame.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"dataset": dataset, "ratios": [0.5],
                                                     "train_size": 10}))
    line = one_line(cli("run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run")))
    assert re.search(expected, line), line


def test_synthetic_raters_need_a_count_and_one_rate_per_group(tmp_path):
    for dataset, expected in (
            ({"rater_noise": 0.1}, "dataset.rater_noise: simulates raters; set dataset.raters"),
            ({"raters": 3, "rater_noise": [0.1, 0.2, 0.3]},
             "dataset.rater_noise: expected one rate, or one per group (M, F)"),
            ({"raters": 3, "rater_noise": 0.7}, "dataset.rater_noise")):
        res = cli("demo", "--out", str(tmp_path / "r"), *[
            f"--set=dataset.{k}={json.dumps(v)}" for k, v in dataset.items()])
        assert expected in one_line(res), res.stderr
