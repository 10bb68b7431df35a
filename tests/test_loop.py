"""The generic member trainer: shapes, determinism per member seed, early stopping, saving."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fairensemble import models
from fairensemble.config import EarlyStopping, ModelConfig, TrainConfig
from fairensemble.train import CellData, Inputs, train_loop, train_stacked
from fairensemble.train.loop import _batch_bounds, _Inputs

CNN = ModelConfig(name="cnn", width=4)


def stripes(n: int, seed: int, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 images are bright on the top half, class 0 on the bottom half; noise elsewhere."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.integers(0, 80, (n, 1, size, size)).astype(np.uint8)
    half = size // 2
    X[y == 1, :, :half, :] += 150
    X[y == 0, :, half:, :] += 150
    return X, y


def image_cell(n: int = 48, seeds: tuple[int, ...] = (11, 12), **inputs: object) -> CellData:
    X, y = stripes(n, 0)
    X_test, _ = stripes(30, 1)
    return CellData(X, y, {"test": X_test}, list(seeds), inputs=Inputs(kind="image", **inputs))


def fast(**kw: object) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 16, "lr": 1e-2, **kw})


def test_returns_member_probabilities_per_cell_and_eval() -> None:
    X_val, y_val = stripes(10, 2)
    cells = [image_cell(seeds=(1, 2, 3)), image_cell(n=20, seeds=(4,))]
    cells[0].evals["val"] = X_val
    cells[0].val = (X_val, y_val)
    out = train_loop(cells, CNN, fast(early_stopping=EarlyStopping(patience=3)), n_classes=2)
    assert len(out) == 2
    assert sorted(out[0]) == ["test", "val"]
    assert out[0]["test"].shape == (3, 30, 2) and out[0]["val"].shape == (3, 10, 2)
    assert out[1]["test"].shape == (1, 30, 2)
    assert out[0]["test"].dtype == np.float32
    np.testing.assert_allclose(out[0]["test"].sum(axis=2), 1.0, atol=1e-6)


def test_same_seeds_give_identical_probabilities_and_global_rng_is_untouched() -> None:
    train = fast(early_stopping=EarlyStopping(patience=5, val_fraction=0.25), optimizer="adamw")
    model = ModelConfig(name="cnn", width=4, dropout=0.3)
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    a = train_loop([image_cell(hflip=True)], model, train, 2)[0]["test"]
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(123)  # the global stream has no say
    b = train_loop([image_cell(hflip=True)], model, train, 2)[0]["test"]
    assert np.array_equal(a, b)


def test_a_member_depends_on_its_own_seed_only() -> None:
    both = train_loop([image_cell(seeds=(11, 12), hflip=True)], CNN, fast(), 2)[0]["test"]
    alone = train_loop([image_cell(seeds=(12,), hflip=True)], CNN, fast(), 2)[0]["test"]
    assert np.array_equal(both[1], alone[0])
    assert np.abs(both[0] - both[1]).max() > 1e-3


def test_memmap_and_worker_loading_give_the_same_members(tmp_path) -> None:
    cell = image_cell(hflip=True)
    path = tmp_path / "x.u8"
    mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=cell.X_train.shape)
    mm[:] = cell.X_train
    mm.flush()
    in_memory = train_loop([cell], CNN, fast(), 2)[0]["test"]
    cell.X_train = np.memmap(path, dtype=np.uint8, mode="r", shape=mm.shape)
    mapped = train_loop([cell], CNN, fast(), 2)[0]["test"]
    cell.inputs = replace(cell.inputs, num_workers=1)
    workers = train_loop([cell], CNN, fast(), 2)[0]["test"]
    assert np.array_equal(in_memory, mapped)
    assert np.array_equal(in_memory, workers)


def test_early_stopping_restores_the_best_epoch() -> None:
    # validation labels are the training labels flipped: every epoch of learning raises the
    # validation loss, so the best weights are those after the first epoch
    cell = image_cell(seeds=(5,))
    cell.val = (cell.X_train, 1 - cell.y_train)
    steps: list[float] = []
    stopped = train_loop(
        [cell], CNN, fast(epochs=8, early_stopping=EarlyStopping(patience=1)), 2, steps.append
    )[0]["test"]
    one_epoch = train_loop([cell], CNN, fast(epochs=1), 2)[0]["test"]
    eight_epochs = train_loop([cell], CNN, fast(epochs=8), 2)[0]["test"]
    assert np.array_equal(stopped, one_epoch)
    assert np.abs(stopped - eight_epochs).max() > 1e-2
    assert sum(steps) == pytest.approx(1.0)


@pytest.mark.parametrize("metric", ["accuracy", "auc"])
def test_early_stopping_metrics_pick_an_epoch(metric: str) -> None:
    cell = image_cell(seeds=(5,))
    cell.val = (cell.X_train, 1 - cell.y_train)
    stop = EarlyStopping(patience=1, metric=metric)
    probs = train_loop([cell], CNN, fast(epochs=6, early_stopping=stop), 2)[0]["test"]
    assert probs.shape == (1, 30, 2)


def test_saved_members_load_strictly_and_reproduce_the_predictions(tmp_path) -> None:
    cell = image_cell(image_mean=[0.5], image_std=[0.25])
    probs = train_loop([cell], CNN, fast(save_models=True), 2, save_dir=tmp_path)[0]["test"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "member-0.safetensors", "member-1.safetensors"
    ]
    net = models.create("cnn", 2, in_channels=1, width=4)
    net.load_state_dict(load_file(tmp_path / "member-1.safetensors"), strict=True)
    x = (torch.from_numpy(cell.evals["test"]).float() / 255 - 0.5) / 0.25
    with torch.no_grad():
        again = torch.softmax(net.eval()(x), dim=1).numpy()
    np.testing.assert_allclose(again, probs[1], atol=1e-5)


def test_several_cells_save_into_one_folder_each(tmp_path) -> None:
    cells = [image_cell(seeds=(1,)), image_cell(seeds=(2,))]
    train_loop(cells, CNN, fast(epochs=1, save_models=True), 2, save_dir=tmp_path)
    assert (tmp_path / "cell-0" / "member-0.safetensors").is_file()
    assert (tmp_path / "cell-1" / "member-0.safetensors").is_file()


def test_a_cnn_learns_a_separable_image_task() -> None:
    X, y = stripes(240, 3)
    X_test, y_test = stripes(200, 4)
    cell = CellData(X, y, {"test": X_test}, [0], inputs=Inputs(kind="image"))
    probs = train_loop([cell], CNN, fast(epochs=4, batch_size=32), 2)[0]["test"]
    assert (probs[0].argmax(1) == y_test).mean() > 0.9


def test_resnet18_trains_on_32px_rgb_images_with_sgd_and_cosine() -> None:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (12, 3, 32, 32)).astype(np.uint8)
    cell = CellData(
        X, rng.integers(0, 3, 12), {"test": X[:5]}, [1],
        inputs=Inputs(kind="image", hflip=True, image_mean=(0.5,) * 3, image_std=(0.2,) * 3),
    )
    train = fast(epochs=1, batch_size=6, optimizer="sgd", schedule="cosine")
    probs = train_loop([cell], ModelConfig(name="resnet18"), train, 3)[0]["test"]
    assert probs.shape == (1, 5, 3)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0, atol=1e-6)


def test_vit_trains_on_16px_grey_images() -> None:
    X, y = stripes(8, 0, size=16)
    cell = CellData(X, y, {"test": X[:3]}, [2], inputs=Inputs(kind="image"))
    probs = train_loop([cell], ModelConfig(name="vit_tiny"), fast(epochs=1, batch_size=4), 2)
    assert probs[0]["test"].shape == (1, 3, 2)
    np.testing.assert_allclose(probs[0]["test"].sum(axis=2), 1.0, atol=1e-6)


def test_table_inputs_train_the_mlp() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    cell = CellData(X, y, {"test": X[:100]}, [0, 1], inputs=Inputs(kind="table"))
    model = ModelConfig(name="mlp", hidden=[16])
    probs = train_loop([cell], model, fast(epochs=15, batch_size=32), 2)[0]["test"]
    assert probs.shape == (2, 100, 2)
    assert (probs.mean(0).argmax(1) == y[:100]).mean() > 0.9


@pytest.mark.parametrize(
    "train",
    [
        TrainConfig(epochs=4, batch_size=32, lr=1e-2, optimizer="sgd", schedule="cosine"),
        TrainConfig(epochs=30, batch_size=32, lr=3e-2, optimizer="adamw", weight_decay=0.1,
                    early_stopping=EarlyStopping(patience=2)),
    ],
    ids=["sgd-cosine", "adamw-early-stopping"],
)
def test_an_mlp_member_equals_the_stacked_trainers_member(train: TrainConfig) -> None:
    # same init, batch order and holdout streams: the two trainers agree to float rounding
    rng = np.random.default_rng(0)
    X = rng.normal(size=(203, 3)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    cell = CellData(X, y, {"test": X[:50]}, [3, 4], inputs=Inputs(kind="table"))
    model = ModelConfig(name="mlp", hidden=[16, 8])
    looped = train_loop([cell], model, train, 2)[0]["test"]
    stacked = train_stacked([cell], model, train, 2)[0]["test"]
    np.testing.assert_allclose(looped, stacked, atol=2e-6)
    assert np.abs(looped[0] - looped[1]).max() > 1e-3


def test_progress_adds_up_to_one_per_member() -> None:
    steps: list[float] = []
    train_loop(
        [image_cell(n=100, seeds=(1, 2))], CNN, fast(epochs=2, batch_size=8), 2, steps.append
    )
    assert len(steps) > 4
    assert sum(steps) == pytest.approx(2.0)


def test_images_are_scaled_normalised_and_flipped_per_row() -> None:
    raw = np.arange(2 * 2 * 1 * 3, dtype=np.uint8).reshape(2, 2, 1, 3) * 20
    cell = CellData(raw, np.array([0, 1]), {}, [0],
                    inputs=Inputs(kind="image", image_mean=(0.1, 0.2), image_std=(0.5, 0.25)))
    inputs = _Inputs(cell, CNN, 2, torch.device("cpu"))
    x = inputs.to_input(torch.from_numpy(raw), flip=np.array([False, True]))
    expect = raw.astype(np.float32) / 255
    expect[1] = expect[1, :, :, ::-1]
    expect = (expect - np.array([0.1, 0.2]).reshape(1, 2, 1, 1)) / np.array([0.5, 0.25]).reshape(
        1, 2, 1, 1
    )
    np.testing.assert_allclose(x.numpy(), expect, rtol=1e-6, atol=1e-6)


def test_a_lone_last_sample_joins_the_previous_batch_for_batch_norm_models() -> None:
    assert _batch_bounds(33, 16) == [(0, 16), (16, 33)]
    assert _batch_bounds(34, 16) == [(0, 16), (16, 32), (32, 34)]
    assert _batch_bounds(33, 16, merge_single=False) == [(0, 16), (16, 32), (32, 33)]


def test_float_images_are_rejected_naming_the_field() -> None:
    cell = image_cell()
    cell.X_train = cell.X_train.astype(np.float32)
    with pytest.raises(ValueError, match="^X_train: expected uint8 images"):
        train_loop([cell], CNN, fast(), 2)


def test_labels_outside_the_classes_are_rejected() -> None:
    cell = image_cell()
    cell.y_train = cell.y_train + 1
    with pytest.raises(ValueError, match=r"^y_train: expected class codes in 0\.\.1"):
        train_loop([cell], CNN, fast(), 2)


# ----------------------------------------------------------------------------- diversity


def test_without_diversity_every_member_is_member_0_bitwise() -> None:
    # dropout, flips and a per-member hold-out: every stream a member could differ by
    model = ModelConfig(name="cnn", width=4, dropout=0.3)
    train = fast(diversity=[], early_stopping=EarlyStopping(patience=2, val_fraction=0.25))
    got = train_loop([image_cell(seeds=(11, 12, 13), hflip=True)], model, train, 2)[0]["test"]
    first = train_loop([image_cell(seeds=(11,), hflip=True)], model, train, 2)[0]["test"]
    for member in got:
        np.testing.assert_array_equal(member, first[0])


@pytest.mark.parametrize("source", ["init", "order", "bootstrap", "augment"])
def test_each_source_alone_makes_members_differ(source: str) -> None:
    got = train_loop([image_cell(hflip=True)], CNN, fast(diversity=[source]), 2)[0]["test"]
    assert np.abs(got[0] - got[1]).max() > 1e-3


def test_augment_without_hflip_leaves_members_identical() -> None:
    got = train_loop([image_cell(hflip=False)], CNN, fast(diversity=["augment"]), 2)[0]["test"]
    np.testing.assert_array_equal(got[0], got[1])


def test_bootstrap_mlp_member_equals_the_stacked_trainers_member() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 3)).astype(np.float32)
    y = (X[:, 0] - X[:, 2] > 0).astype(np.int64)
    cell = CellData(X, y, {"test": X[:40]}, [8, 9], inputs=Inputs(kind="table"))
    model = ModelConfig(name="mlp", hidden=[16])
    train = TrainConfig(epochs=10, batch_size=32, lr=1e-2, diversity=["bootstrap"],
                        early_stopping=EarlyStopping(patience=2))
    looped = train_loop([cell], model, train, 2)[0]["test"]
    stacked = train_stacked([cell], model, train, 2)[0]["test"]
    np.testing.assert_allclose(looped, stacked, atol=2e-6)
    assert np.abs(looped[0] - looped[1]).max() > 1e-3
