"""Mitigations (``train.mitigation``): each one checked against a plain reference written from
its definition (a hand-computed weighted mean; Sagawa et al.'s online Group DRO step by step),
the stacked and loop trainers against each other, and bad input as one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import cli
from torch import nn

from fairensemble.config import ModelConfig, TrainConfig
from fairensemble.models.mlp import MLP
from fairensemble.train import CellData, order_rng, train_loop, train_stacked
from fairensemble.train.mitigation import Cells, balanced_order, reweight

HIDDEN = [8]


def toy(seed: int, n: int = 240) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two groups of unequal size; group 1's labels are noisier (its loss stays higher)."""
    rng = np.random.default_rng(seed)
    g = (rng.random(n) < 0.3).astype(np.int64)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    X[:, 2] = g
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(np.int64)
    flip = (g == 1) & (rng.random(n) < 0.35)
    y[flip] = 1 - y[flip]
    return X, y, g


def reference(X, y, g, seed, train: TrainConfig, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """One member the plain way: an nn.Linear MLP, autograd, torch.optim.SGD, the trainers'
    init and batch order, and the mitigation written out from its definition. Returns its
    probabilities on X and (Group DRO) its final weights per group x class cell."""
    net = MLP(X.shape[1], HIDDEN, 2, seed=seed)
    opt = torch.optim.SGD(net.parameters(), lr=train.lr, momentum=0.0)
    n = len(y)
    key = g * 2 + y
    present = sorted(set(key.tolist()))
    counts = {c: int((key == c).sum()) for c in present}
    weight = np.array([n / (len(present) * counts[c]) for c in key], dtype=np.float32)
    q = torch.full((len(present),), 1.0 / len(present))
    cell = torch.tensor([present.index(c) for c in key])
    Xt, yt, wt = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(weight)
    rng = order_rng(seed)
    for _ in range(train.epochs):
        perm = torch.from_numpy(rng.permutation(n))
        for s in range(0, n, train.batch_size):
            i = perm[s:s + train.batch_size]
            ce = nn.functional.cross_entropy(net(Xt[i]), yt[i], reduction="none")
            if kind == "reweight":  # the batch's mean of w_i * loss_i
                loss = (wt[i] * ce).mean()
            else:  # Sagawa et al.: group losses, q <- q exp(eta l), normalised, loss = q . l
                group_loss = torch.stack([
                    ce[cell[i] == c].mean() if (cell[i] == c).any() else ce.sum() * 0
                    for c in range(len(present))])
                q = q * torch.exp(train.dro_step * group_loss.detach())
                q = q / q.sum()
                loss = (q * group_loss).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return torch.softmax(net(Xt), dim=-1).numpy(), q.numpy()


@pytest.mark.parametrize("kind", ["reweight", "group_dro"])
def test_each_member_equals_the_mitigation_written_out_by_hand(kind):
    X, y, g = toy(0)
    train = TrainConfig(optimizer="sgd", lr=0.2, momentum=0.0, epochs=6, batch_size=32,
                        mitigation=kind, dro_step=0.5)
    seeds = [11, 12, 13]
    stats: list = []
    got = train_stacked([CellData(X, y, {"test": X}, seeds, g_train=g)],
                        ModelConfig(hidden=HIDDEN), train, 2, stats=stats)[0]["test"]
    for m, seed in enumerate(seeds):
        probs, q = reference(X, y, g, seed, train, kind)
        np.testing.assert_allclose(got[m], probs, atol=2e-5)
        if kind == "group_dro":
            np.testing.assert_allclose(stats[0].dro_weights[m], q, atol=1e-5)


def test_reweighting_is_inverse_cell_frequency_with_mean_one_and_empty_cells_left_out():
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1, 1, 1])
    g = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])  # cells (0,0):3 (0,1):1 (1,0):1 (1,1):5
    w = reweight(Cells.of(y, g, 2))
    assert w.mean() == pytest.approx(1.0)
    assert w[0] == pytest.approx(10 / (4 * 3)) and w[3] == pytest.approx(10 / (4 * 1))
    # a training set without group 1 (a share of 0): its cells are not there to weigh
    only = Cells.of(y[:4], g[:4], 2)
    assert only.K == 2 and reweight(only).mean() == pytest.approx(1.0)


def test_balanced_batches_hold_equal_cell_counts_from_the_members_own_rows():
    rng = np.random.default_rng(5)
    code = np.repeat([0, 1, 2], [90, 7, 3])  # very unequal cells
    order = balanced_order(code, 32, rng)
    assert len(order) == len(code)  # an epoch has the plain epoch's batches
    for start in range(0, len(order), 32):
        counts = np.bincount(code[order[start:start + 32]], minlength=3)
        assert counts.max() - counts.min() <= 1, counts
    assert set(order.tolist()) <= set(range(len(code)))


def test_group_dro_weights_move_toward_the_worst_cell():
    X, y, g = toy(1, n=400)
    stats: list = []
    train = TrainConfig(optimizer="adam", lr=0.02, epochs=20, batch_size=64,
                        mitigation="group_dro", dro_step=0.05)
    train_stacked([CellData(X, y, {"test": X}, [1, 2], g_train=g)], ModelConfig(hidden=HIDDEN),
                  train, 2, stats=stats)
    q = np.array(stats[0].dro_weights)
    noisy = [i for i, (grp, _) in enumerate(stats[0].cells) if grp == 1]
    clean = [i for i, (grp, _) in enumerate(stats[0].cells) if grp == 0]
    assert (q[:, noisy].min(axis=1) > q[:, clean].max(axis=1)).all(), q
    assert np.allclose(q.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["none", "reweight", "balanced", "group_dro"])
def test_stacked_and_loop_trainers_give_the_same_member(kind):
    X, y, g = toy(2)
    train = TrainConfig(epochs=4, batch_size=48, mitigation=kind, dro_step=0.2,
                        dro_adjust=0.5)
    cell = CellData(X, y, {"test": X[:60]}, [3, 4], g_train=g)
    s_stats: list = []
    l_stats: list = []
    stacked = train_stacked([cell], ModelConfig(hidden=HIDDEN), train, 2, stats=s_stats)
    loop = train_loop([cell], ModelConfig(hidden=HIDDEN), train, 2, stats=l_stats)
    np.testing.assert_allclose(stacked[0]["test"], loop[0]["test"], atol=1e-5)
    assert s_stats[0].epochs == l_stats[0].epochs == [4, 4]
    assert s_stats[0].samples == l_stats[0].samples == [4 * len(y)] * 2
    if kind == "group_dro":
        np.testing.assert_allclose(s_stats[0].dro_weights, l_stats[0].dro_weights, atol=1e-6)


def test_bad_mitigation_input_is_one_line(tmp_path):
    res = cli("demo", "--out", str(tmp_path / "a"), "--set", "train.mitigation=dro")
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "train.mitigation" in res.stderr and "group_dro" in res.stderr
    res = cli("demo", "--out", str(tmp_path / "b"), "--set", "train.dro_step=0")
    assert res.returncode == 2 and "train.dro_step" in res.stderr
    rows = ["g,y,x"] + [f"A,0,{i}" for i in range(60)] + [f"B,{i % 2},{i}" for i in range(60)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset: {{kind: table, path: {tmp_path / 't.csv'}, target: y, group: g}}\n"
                   "ratio_group: A\nratios: [0.5, 1.0]\ntrain_size: 30\nreplicates: 1\n"
                   "train: {epochs: 1, mitigation: group_dro}\nensemble: {members: 2}\n"
                   "executor: {kind: serial}\n")
    res = cli("run", str(cfg), "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "group_dro" in res.stderr and "1" in res.stderr and "holds one" in res.stderr
