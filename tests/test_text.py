"""Texts: hashed n-gram bags, the text source and its one-line errors, the bag model trained
stacked equal to the same member in the loop trainer, init text -> run, frozen features from
a user's encoder computed once, and the template scenario's known difficulty."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cli, run_cli

from fairensemble.config import EarlyStopping, ModelConfig, TrainConfig, load_config
from fairensemble.data import load_dataset
from fairensemble.data.templates import OWN, TemplateData
from fairensemble.data.tokens import HashedNgrams
from fairensemble.train import CellData, Inputs, train_loop
from fairensemble.train.bags import train_bags

FAST = ["--set", "ensemble.members=3", "--set", "replicates=1", "--set", "train.epochs=3",
        "--set", "executor.kind=serial", "--set", "ratios=[0.2,0.8]"]


def reviews(path: Path, n: int = 240, seed: int = 0) -> Path:
    """A small review table: sentiment words decide the label; two languages as groups; an
    empty, a missing and a very long text among them."""
    rng = np.random.default_rng(seed)
    good, bad = ["loved it", "great acting", "brilliant"], ["hated it", "boring plot", "awful"]
    rows = []
    for i in range(n):
        y = int(rng.integers(0, 2))
        words = rng.choice(good if y else bad, 2).tolist() + ["the", "movie", "was"]
        rows.append({"review": " ".join(rng.permutation(words)), "label": "pos" if y else "neg",
                     "lang": "fr" if i % 3 == 0 else "en"})
    rows[0]["review"], rows[1]["review"], rows[2]["review"] = "", None, "great " * 2000
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_a_text_is_its_words_pairs_and_character_ngrams_hashed_and_capped():
    tok = HashedNgrams(buckets=1000, word_ngrams=2, char_ngrams=(3,), max_tokens=50)
    ids = tok.ids("Good movie")
    # 2 words + 1 pair + '<good>' and '<movie>' trigrams (4 + 5)
    assert len(ids) == 2 + 1 + 4 + 5 and all(1 <= i < 1000 for i in ids)
    assert tok.ids("good MOVIE!") == ids  # case and punctuation do not matter
    assert tok.ids("") == [] and len(tok.ids("word " * 500)) == 50
    bags = tok.bags(["", "good movie", "word " * 500])
    assert bags.shape == (3, 50) and (bags[0] == 0).all()
    assert (bags[1, :12] > 0).all() and (bags[1, 12:] == 0).all()


@pytest.mark.parametrize("kind", ["none", "reweight", "group_dro"])
def test_stacked_bags_equal_the_same_member_in_the_loop_trainer(kind):
    rng = np.random.default_rng(1)
    vocab = ["good", "bad", "fine", "poor", "the", "a"]
    texts = [" ".join(rng.choice(vocab, 5)) for _ in range(200)]
    y = np.array([int("good" in t or "fine" in t) for t in texts])
    g = (np.arange(200) % 3 == 0).astype(np.int64)
    X = HashedNgrams(buckets=512).bags(texts)
    cell = CellData(X, y, {"test": X[:40]}, [5, 6], inputs=Inputs(kind="tokens", vocab=512),
                    g_train=g)
    train = TrainConfig(epochs=4, batch_size=32, lr=0.05, mitigation=kind,
                        early_stopping=EarlyStopping(patience=2))
    model = ModelConfig(name="bag", width=8)
    s_stats: list = []
    l_stats: list = []
    stacked = train_bags([cell], model, train, 2, stats=s_stats)[0]["test"]
    loop = train_loop([cell], model, train, 2, stats=l_stats)[0]["test"]
    np.testing.assert_allclose(stacked, loop, atol=1e-5)
    assert s_stats[0].epochs == l_stats[0].epochs
    assert (stacked.argmax(-1)[0] == y[:40]).mean() > 0.8  # it learns the words


def test_a_text_column_of_numbers_and_wrong_models_are_one_line(tmp_path):
    table = reviews(tmp_path / "r.csv")
    res = cli("init", "text", str(table), "--text", "label", "--target", "review",
              "--group", "lang", "--out", str(tmp_path / "a.yaml"))
    assert res.returncode == 2
    frame = pd.read_csv(table)
    frame["score"] = np.arange(len(frame)) / 10
    frame.to_csv(tmp_path / "n.csv", index=False)
    res = cli("init", "text", str(tmp_path / "n.csv"), "--text", "score", "--target", "label",
              "--group", "lang", "--out", str(tmp_path / "b.yaml"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "text column 'score' holds numbers" in res.stderr
    res = cli("demo", "--set", "model.name=bag")
    assert res.returncode == 2 and "'bag' reads texts" in res.stderr


def test_init_text_proposes_a_sweep_that_runs_unedited(tmp_path):
    table = reviews(tmp_path / "reviews.csv")
    cfg = tmp_path / "reviews.yaml"
    res = cli("init", "text", str(table), "--text", "review", "--target", "label",
              "--group", "lang", "--out", str(cfg))
    assert res.returncode == 0, res.stderr
    assert "2 empty" in res.stdout and "longer texts are cut" in res.stdout
    proposed = load_config(cfg)
    assert proposed.dataset.kind == "text" and proposed.model.name == "bag"
    res = cli("run", str(cfg), "--out", str(tmp_path / "run"), *FAST)
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["grid_points"][0]["groups"] == ["en", "fr"]
    meta = json.loads(next((tmp_path / "run" / "cells").glob("*.json")).read_text())
    assert meta["cost"]["trainings"] == 3 and meta["cost"]["train_flops"] > 0


def test_an_encoder_of_your_own_embeds_every_text_once(tmp_path):
    table = reviews(tmp_path / "reviews.csv")
    encoder = tmp_path / "encoder.py"
    encoder.write_text(
        "import os, numpy as np\n"
        "def encode(texts):\n"
        "    with open(os.environ['CALLS'], 'a') as fh:\n"
        "        fh.write(f'{len(texts)}\\n')\n"
        "    return np.array([[t.count('great') + t.count('loved'), t.count('awful'), len(t)]\n"
        "                     for t in texts], dtype=np.float32)\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset: {{kind: text, path: {table}, text: review, target: label, "
                   f"group: lang}}\nmodel: {{name: '{encoder}:encode', freeze: backbone}}\n"
                   "train_size: 60\n")
    env = {"CALLS": str(tmp_path / "calls.txt"),
           "FAIRENSEMBLE_CACHE": str(tmp_path / "cache")}
    for _ in range(2):
        res = run_cli("run", str(cfg), "--out", str(tmp_path / "run"), *FAST, env=env)
        assert res.returncode == 0, res.stderr
    calls = [int(n) for n in (tmp_path / "calls.txt").read_text().split()]
    assert sum(calls) == 240  # every text once, in the first run only
    assert list((tmp_path / "cache").glob("features-*.npy"))


def test_the_template_scenario_flips_exactly_the_hard_groups_training_labels():
    cfg = TemplateData(label_noise=0.25, pool_size=800, val_size=200, test_size=400)
    noisy = load_dataset(cfg, 3)
    clean = load_dataset(cfg.model_copy(update={"label_noise": 0.0}), 3)
    hard = noisy.groups.index("older")
    for split in ("pool", "val"):
        a, b = getattr(noisy, split), getattr(clean, split)
        changed = a.y != b.y
        assert (a.g[changed] == hard).all()
        assert changed.sum() == round(0.25 * (b.g == hard).sum())
    np.testing.assert_array_equal(noisy.test.y, clean.test.y)
    # each group speaks with words of its own most of the time
    younger = " ".join(noisy.pool.X[noisy.pool.g == 0])
    assert any(w in younger for w in OWN[0]["adj"]["toxic"])
    assert not any(f" {w}" in younger for w in OWN[1]["adj"]["toxic"])
