"""The stacked MLP trainer: each member equals a plain autograd + torch.optim run of its own."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

import fairensemble.train.flat as flat
import fairensemble.train.stacked as stacked
from fairensemble.config import EarlyStopping, ModelConfig, TrainConfig
from fairensemble.models.mlp import MLP, init_mlp_params
from fairensemble.train import (
    CellData,
    MemberStreams,
    holdout_split,
    member_rows,
    member_streams,
    order_rng,
    train_stacked,
)
from fairensemble.train.common import early_stopping_score, lr_schedule
from fairensemble.train.stacked import flops_per_step


def blobs(seed: int, n: int, d: int = 3, n_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    score = X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y.astype(np.int64)


def reference_member(X: np.ndarray, y: np.ndarray, X_eval: np.ndarray, seed: int,
                     model: ModelConfig, train: TrainConfig, n_classes: int,
                     val: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """One member the plain way: nn.Linear MLP, autograd, torch.optim (default, non-fused),
    the stacked trainer's init, batch order and (optionally) early stopping."""
    net = MLP(X.shape[1], list(model.hidden), n_classes, model.activation, seed=seed)
    params = net.parameters()
    if train.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=train.lr, weight_decay=train.weight_decay)
    elif train.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=train.lr, momentum=train.momentum,
                              weight_decay=train.weight_decay)
    rng = order_rng(seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    stop = train.early_stopping
    best, best_state, since = -np.inf, None, 0
    for lr in lr_schedule(train):
        for group in opt.param_groups:
            group["lr"] = lr
        perm = torch.from_numpy(rng.permutation(len(X)))
        for s in range(0, len(X), train.batch_size):
            i = perm[s : s + train.batch_size]
            opt.zero_grad()
            nn.functional.cross_entropy(net(Xt[i]), yt[i]).backward()
            opt.step()
        if stop is not None:
            with torch.no_grad():
                logits = net(torch.from_numpy(val[0]))
            if stop.metric == "loss":
                score = -nn.functional.cross_entropy(logits, torch.from_numpy(val[1])).item()
            else:
                score = float((logits.argmax(1).numpy() == val[1]).mean())
            if score > best:
                best, since = score, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                since += 1
                if since >= stop.patience:
                    break
    if best_state is not None:
        net.load_state_dict(best_state)
    with torch.no_grad():
        return torch.softmax(net(torch.from_numpy(X_eval)), dim=-1).numpy()


def test_init_mlp_params_equals_nn_linear_default_under_manual_seed() -> None:
    torch.manual_seed(1234)
    layers = [nn.Linear(5, 32), nn.Linear(32, 7), nn.Linear(7, 3)]
    params = init_mlp_params(1234, 5, [32, 7], 3)
    for lin, (w, b) in zip(layers, params):
        assert w.shape == (lin.in_features, lin.out_features)
        assert torch.equal(w, lin.weight.detach().t())
        assert torch.equal(b, lin.bias.detach())
    # and MLP(seed=...) starts from exactly these numbers
    net = MLP(5, [32, 7], 3, seed=1234)
    assert all(torch.equal(w, w2) for (w, _), (w2, _) in zip(params, net.params()))


@pytest.mark.parametrize(
    ("train", "activation"),
    [
        (TrainConfig(optimizer="adam", lr=1e-2, epochs=4, batch_size=64), "relu"),
        (TrainConfig(optimizer="adam", lr=1e-2, weight_decay=1e-2, epochs=4, batch_size=64,
                     schedule="cosine"), "tanh"),
        (TrainConfig(optimizer="adamw", lr=1e-2, weight_decay=0.1, epochs=4, batch_size=64,
                     schedule="step", step_size=2, gamma=0.5), "gelu"),
        (TrainConfig(optimizer="sgd", lr=5e-2, momentum=0.9, weight_decay=1e-3, epochs=4,
                     batch_size=64), "leaky_relu"),
        (TrainConfig(optimizer="sgd", lr=5e-2, momentum=0.0, epochs=3, batch_size=50), "relu"),
    ],
    ids=["adam", "adam-l2-cosine", "adamw-step", "sgd-momentum-wd", "sgd-plain"],
)
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unfused"])
def test_each_member_equals_autograd_and_torch_optim(
    train: TrainConfig, activation: str, fused: bool, monkeypatch
) -> None:
    monkeypatch.setattr(flat, "FUSED_OPTIMISER", fused)  # unfused: torch builds < 2.4
    # 203 rows: the last batch is partial (203 = 3 * 64 + 11) and must be kept
    X, y = blobs(0, 203)
    X_eval, _ = blobs(1, 40)
    model = ModelConfig(hidden=[16, 8], activation=activation)
    seeds = [3, 11, 7]
    got = train_stacked([CellData(X, y, {"test": X_eval}, seeds)], model, train, 2)[0]["test"]
    assert got.shape == (3, 40, 2) and got.dtype == np.float32
    for j, seed in enumerate(seeds):
        want = reference_member(X, y, X_eval, seed, model, train, 2)
        np.testing.assert_allclose(got[j], want, atol=1e-5)
    assert np.abs(got[0] - got[1]).max() > 1e-3  # members really differ


def test_multiclass_members_equal_the_reference() -> None:
    X, y = blobs(2, 150, d=4, n_classes=3)
    model, train = ModelConfig(hidden=[12]), TrainConfig(lr=1e-2, epochs=3, batch_size=32)
    got = train_stacked([CellData(X, y, {"test": X[:30]}, [5])], model, train, 3)[0]["test"]
    np.testing.assert_allclose(got[0], reference_member(X, y, X[:30], 5, model, train, 3),
                               atol=1e-5)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-6)


def test_a_member_is_the_same_in_a_stack_of_20_and_alone(monkeypatch) -> None:
    # small chunks so that the 20-member stack spans several chunks of different positions
    monkeypatch.setattr(stacked, "CHUNK_FLOATS", 6 * 32 * 32)
    X, y = blobs(3, 160, d=2)
    X2, y2 = blobs(4, 160, d=2)
    X_eval, _ = blobs(5, 64, d=2)
    model, train = ModelConfig(hidden=[32, 32]), TrainConfig(epochs=3, batch_size=32, lr=3e-3)
    seeds = list(range(100, 120))
    stack = train_stacked(
        [CellData(X, y, {"test": X_eval}, seeds[:8]), CellData(X2, y2, {"test": X_eval},
                                                               seeds[8:])], model, train, 2)
    part = train_stacked([CellData(X2, y2, {"test": X_eval}, seeds[9:16])], model, train, 2)
    alone = train_stacked([CellData(X2, y2, {"test": X_eval}, [seeds[13]])], model, train, 2)
    np.testing.assert_allclose(stack[1]["test"][1:8], part[0]["test"], atol=1e-5)
    np.testing.assert_allclose(stack[1]["test"][5], alone[0]["test"][0], atol=1e-5)
    # stronger, and what a resumed sweep relies on: on CPU the numbers are bitwise the same
    np.testing.assert_array_equal(stack[1]["test"][1:8], part[0]["test"])
    np.testing.assert_array_equal(stack[1]["test"][5], alone[0]["test"][0])


def test_cells_of_different_sizes_train_as_if_alone() -> None:
    X, y = blobs(6, 120)
    X2, y2 = blobs(7, 90)
    model, train = ModelConfig(hidden=[8]), TrainConfig(epochs=2, batch_size=16, lr=1e-2)
    both = train_stacked([CellData(X, y, {"test": X[:10]}, [1, 2]),
                          CellData(X2, y2, {"test": X2[:7], "val": X2[:5]}, [3])],
                         model, train, 2)
    assert both[1]["test"].shape == (1, 7, 2) and both[1]["val"].shape == (1, 5, 2)
    alone = train_stacked([CellData(X2, y2, {"test": X2[:7]}, [3])], model, train, 2)
    np.testing.assert_allclose(both[1]["test"], alone[0]["test"], atol=1e-6)


@pytest.mark.parametrize(("metric", "n_val", "patience"), [("loss", 80, 2), ("accuracy", 20, 3)])
def test_early_stopping_on_shared_val_restores_each_members_best(
    metric: str, n_val: int, patience: int
) -> None:
    # members stop at different epochs; with 20 val rows accuracy ties the best (no improvement)
    X, y = blobs(8, 200)
    Xv, yv = blobs(9, n_val)
    model = ModelConfig(hidden=[16])
    train = TrainConfig(lr=0.05, epochs=25, batch_size=32,
                        early_stopping=EarlyStopping(patience=patience, metric=metric))
    seeds = [21, 22, 23]
    got = train_stacked([CellData(X, y, {"test": X[:30]}, seeds, val=(Xv, yv))], model, train,
                        2)[0]["test"]
    for j, seed in enumerate(seeds):
        want = reference_member(X, y, X[:30], seed, model, train, 2, val=(Xv, yv))
        np.testing.assert_allclose(got[j], want, atol=1e-5)


def test_a_member_stops_patience_epochs_after_its_best() -> None:
    # separable data: val accuracy is 1.0 after the first epoch and cannot improve on it
    rng = np.random.default_rng(12)
    y = rng.integers(0, 2, 200)
    X = np.stack([(2 * y - 1) * (3 + rng.random(200)), rng.normal(size=200)], 1)
    X = X.astype(np.float32)
    calls: list[float] = []
    train = TrainConfig(lr=0.05, epochs=20, batch_size=16,
                        early_stopping=EarlyStopping(patience=3, metric="accuracy"))
    train_stacked([CellData(X, y, {"test": X[:5]}, [1, 2], val=(X[:50], y[:50]))],
                  ModelConfig(hidden=[8]), train, 2, progress=calls.append)
    assert len(calls) == 1 + 3  # one call per epoch run


def test_holdout_is_the_members_own_and_disjoint() -> None:
    tr, va = holdout_split(5, 100, 0.2)
    assert len(va) == 20 and len(tr) == 80
    assert len(np.union1d(tr, va)) == 100
    assert not np.array_equal(va, holdout_split(6, 100, 0.2)[1])
    with pytest.raises(ValueError, match="val_fraction"):
        holdout_split(5, 3, 0.1)


def test_auc_score_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(size=(4, 50, 2)).astype(np.float32))
    logits[..., 1] = torch.round(logits[..., 1] * 2) / 2  # ties
    y = torch.from_numpy(rng.integers(0, 2, size=(4, 50)))
    got = early_stopping_score("auc", logits, y)
    probs = torch.softmax(logits.double(), -1).numpy()
    want = [roc_auc_score(y[i].numpy(), probs[i, :, 1]) for i in range(4)]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_auc_score_ranks_a_one_class_holdout_by_the_negated_loss() -> None:
    rng = np.random.default_rng(1)
    logits = torch.from_numpy(rng.normal(size=(3, 40, 2)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 2, size=(3, 40)))
    y[1] = 1  # member 1's hold-out holds one class: AUC is undefined
    got = early_stopping_score("auc", logits, y)
    loss = torch.nn.functional.cross_entropy(logits[1], y[1]).item()
    assert got[1] == pytest.approx(-loss, abs=1e-6)
    assert got[0] == pytest.approx(roc_auc_score(y[0].numpy(), logits[0].softmax(-1)[:, 1]),
                                   abs=1e-6)


def test_progress_adds_up_to_the_member_count() -> None:
    X, y = blobs(10, 64)
    calls: list[float] = []
    train = TrainConfig(epochs=4, batch_size=16, early_stopping=EarlyStopping(patience=1))
    train_stacked([CellData(X, y, {"test": X[:4]}, [1, 2, 3])], ModelConfig(hidden=[4]), train,
                  2, progress=calls.append)
    assert 1 <= len(calls) <= 4
    assert sum(calls) == pytest.approx(3.0)


def test_bad_inputs_raise_one_line_naming_the_field() -> None:
    X, y = blobs(11, 20)
    cell = CellData(X, y, {"test": X}, [1])
    with pytest.raises(ValueError, match=r"^model\.dropout"):
        train_stacked([cell], ModelConfig(dropout=0.1), TrainConfig(epochs=1), 2)
    with pytest.raises(ValueError, match=r"^cells\[0\]\.y_train: expected class codes in 0\.\.1"):
        train_stacked([CellData(X, y + 1, {"test": X}, [1])], ModelConfig(), TrainConfig(), 2)
    with pytest.raises(ValueError, match=r"^cells\[1\]\.X_train: expected 3 features"):
        train_stacked([cell, CellData(X[:, :2], y, {"test": X}, [2])], ModelConfig(),
                      TrainConfig(), 2)
    with pytest.raises(ValueError, match=r"^cells\[0\]\.member_seeds"):
        train_stacked([CellData(X, y, {"test": X}, [])], ModelConfig(), TrainConfig(), 2)


def test_flops_per_step_counts_forward_and_both_backward_matmuls() -> None:
    # 2-64-64-2 at batch 128: first layer forward + weight grad, then 3 matmuls per layer
    want = 2 * (2 * 128 * 2 * 64) + 3 * (2 * 128 * 64 * 64) + 3 * (2 * 128 * 64 * 2)
    assert flops_per_step(2, [64, 64], 2, 128) == want


# ----------------------------------------------------------------------------- diversity


@pytest.mark.parametrize("early", [None, EarlyStopping(patience=2, val_fraction=0.2)],
                         ids=["no-holdout", "holdout"])
def test_without_diversity_every_member_is_member_0_bitwise(early: EarlyStopping | None) -> None:
    X, y = blobs(13, 120)
    model = ModelConfig(hidden=[16])
    train = TrainConfig(epochs=4, batch_size=32, lr=1e-2, early_stopping=early, diversity=[])
    seeds = [31, 32, 33, 34]
    got = train_stacked([CellData(X, y, {"test": X[:40]}, seeds)], model, train, 2)[0]["test"]
    first = train_stacked([CellData(X, y, {"test": X[:40]}, seeds[:1])], model, train,
                          2)[0]["test"]
    for member in got:
        np.testing.assert_array_equal(member, first[0])


@pytest.mark.parametrize("source", ["init", "order", "bootstrap"])
def test_each_source_alone_makes_members_differ(source: str) -> None:
    X, y = blobs(14, 120)
    train = TrainConfig(epochs=3, batch_size=32, lr=1e-2, diversity=[source])
    got = train_stacked([CellData(X, y, {"test": X[:40]}, [41, 42])], ModelConfig(hidden=[16]),
                        train, 2)[0]["test"]
    assert np.abs(got[0] - got[1]).max() > 1e-3


def test_augment_does_nothing_to_table_inputs() -> None:
    X, y = blobs(15, 80)
    train = TrainConfig(epochs=2, batch_size=32, lr=1e-2, diversity=["augment"])
    got = train_stacked([CellData(X, y, {"test": X[:20]}, [51, 52])], ModelConfig(hidden=[8]),
                        train, 2)[0]["test"]
    np.testing.assert_array_equal(got[0], got[1])


def test_the_default_diversity_is_what_members_always_differed_by() -> None:
    assert TrainConfig().diversity == ["init", "order", "augment"]
    streams = member_streams([5, 6], TrainConfig().diversity)
    assert streams[1] == MemberStreams(init=6, order=6, augment=6, bootstrap=None, holdout=6)


def test_a_source_left_out_takes_the_cells_first_seed() -> None:
    init_only = member_streams([5, 6, 7], ["init"])
    assert [s.init for s in init_only] == [5, 6, 7]
    assert {(s.order, s.augment, s.holdout, s.bootstrap) for s in init_only} == {(5, 5, 5, None)}
    # the hold-out is the member's own when its data differ, by order or by bootstrap
    assert member_streams([5, 6], ["bootstrap"])[1] == MemberStreams(5, 5, 5, 6, 6)


def test_bootstrap_resamples_the_rows_left_after_the_holdout() -> None:
    streams = MemberStreams(init=1, order=1, augment=1, bootstrap=9, holdout=9)
    train_idx, val_idx = member_rows(streams, 200, 0.25)
    assert len(val_idx) == 50 and len(train_idx) == 150
    assert not np.isin(train_idx, val_idx).any()
    assert len(np.unique(train_idx)) < 150  # with replacement: about 1 - 1/e of them distinct
    np.testing.assert_array_equal(val_idx, holdout_split(9, 200, 0.25)[1])
    again, _ = member_rows(streams, 200, 0.25)
    np.testing.assert_array_equal(train_idx, again)
    everything, none = member_rows(streams, 200, None)
    assert none is None and len(everything) == 200 and len(np.unique(everything)) < 200


def test_a_bootstrap_member_equals_a_plain_member_trained_on_its_resample() -> None:
    X, y = blobs(16, 150)
    model = ModelConfig(hidden=[16, 8])
    train = TrainConfig(epochs=3, batch_size=32, lr=1e-2, diversity=["init", "order", "bootstrap"])
    got = train_stacked([CellData(X, y, {"test": X[:30]}, [61, 62])], model, train, 2)[0]["test"]
    rows, _ = member_rows(member_streams([61, 62], train.diversity)[1], 150, None)
    want = reference_member(X[rows], y[rows], X[:30], 62, model, train, 2)
    np.testing.assert_allclose(got[1], want, atol=1e-5)


@pytest.mark.parametrize("early", [None, EarlyStopping(patience=2, val_fraction=0.2)],
                         ids=["no-holdout", "holdout"])
def test_a_bootstrap_member_is_the_same_in_a_stack_and_alone(
    early: EarlyStopping | None, monkeypatch
) -> None:
    monkeypatch.setattr(stacked, "CHUNK_FLOATS", 3 * 32 * 16)
    X, y = blobs(17, 100)
    X2, y2 = blobs(18, 100)
    model = ModelConfig(hidden=[16])
    train = TrainConfig(epochs=4, batch_size=32, lr=1e-2, early_stopping=early,
                        diversity=["init", "order", "bootstrap"])
    stack = train_stacked([CellData(X, y, {"test": X[:20]}, [71, 72, 73]),
                           CellData(X2, y2, {"test": X[:20]}, [74, 75, 76, 77])], model, train, 2)
    alone = train_stacked([CellData(X2, y2, {"test": X[:20]}, [76])], model, train, 2)
    np.testing.assert_array_equal(stack[1]["test"][2], alone[0]["test"][0])
    assert np.abs(stack[1]["test"][2] - stack[1]["test"][3]).max() > 1e-3
