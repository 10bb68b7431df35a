"""Pretrained weights: checkpoints in torchvision's layout load into every loop-trainer member,
the head is kept or replaced by its shape, anything else that does not fit is a one-line error."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from fairensemble import models
from fairensemble.common.files import file_sha256
from fairensemble.config import ModelConfig, TrainConfig
from fairensemble.models.weights import head_keys, load_weights, read_weights
from fairensemble.train import CellData, Inputs, train_loop

SIZE = 16


class NotATensor:
    """A pickled Python object, which weights-only loading must refuse."""


def resnet18_state(num_classes: int, in_channels: int = 3) -> dict[str, torch.Tensor]:
    """A project resnet18 (torchvision's keys) whose batch-norm statistics are not the fresh
    0 / 1, so that a run that updated or ignored them would predict differently."""
    torch.manual_seed(num_classes)
    state = models.create("resnet18", num_classes, in_channels=in_channels).state_dict()
    gen = torch.Generator().manual_seed(0)
    for key, value in state.items():
        if key.endswith("running_mean"):
            value.copy_(0.2 * torch.randn(value.shape, generator=gen))
        elif key.endswith("running_var"):
            value.copy_(0.5 + torch.rand(value.shape, generator=gen))
    return state


def save(state: dict[str, torch.Tensor], path: Path) -> Path:
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save(state, path)
    return path


def rgb_cell(seeds: tuple[int, ...] = (1, 2)) -> CellData:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (8, 3, SIZE, SIZE)).astype(np.uint8)
    X_test = rng.integers(0, 255, (6, 3, SIZE, SIZE)).astype(np.uint8)
    return CellData(X, rng.integers(0, 2, 8), {"test": X_test}, list(seeds),
                    inputs=Inputs(kind="image"))


def eval_probs(state: dict[str, torch.Tensor], X: np.ndarray) -> np.ndarray:
    net = models.create("resnet18", 2)
    net.load_state_dict(state, strict=True)
    with torch.no_grad():
        return torch.softmax(net.eval()(torch.from_numpy(X).float() / 255), dim=1).numpy()


# a learning rate of 0 is not a valid config; 1e-12 moves no weight by more than ~1e-12
STILL = TrainConfig(epochs=1, batch_size=4, lr=1e-12, optimizer="sgd")


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".safetensors"])
def test_both_file_formats_read_back_the_state_dict_as_saved(suffix: str, tmp_path) -> None:
    state = resnet18_state(2)
    got = read_weights(save(state, tmp_path / f"resnet18{suffix}"))
    assert sorted(got) == sorted(state)  # safetensors stores keys sorted
    assert all(torch.equal(got[k], v) for k, v in state.items())


def test_every_member_starts_from_the_file_and_frozen_norms_keep_its_predictions(
    tmp_path,
) -> None:
    state = resnet18_state(2)
    path = save(state, tmp_path / "resnet18.pth")
    cell = rgb_cell()
    frozen = ModelConfig(name="resnet18", weights=str(path), freeze_norm=True)
    got = train_loop([cell], frozen, STILL, 2)[0]["test"]
    want = eval_probs(state, cell.evals["test"])
    for member in got:
        np.testing.assert_allclose(member, want, atol=1e-5)
    # without freezing, training batches move the running statistics: the test can tell
    moving = train_loop([rgb_cell(seeds=(1,))], frozen.model_copy(update={"freeze_norm": False}),
                        STILL, 2)[0]["test"]
    assert np.abs(moving[0] - want).max() > 1e-3


def test_a_1000_class_checkpoint_loads_with_a_fresh_head(tmp_path) -> None:
    file_state = resnet18_state(1000)
    state = read_weights(save(file_state, tmp_path / "imagenet.pth"))
    torch.manual_seed(5)
    net = models.create("resnet18", 2)
    fresh_head = {k: net.state_dict()[k].clone() for k in head_keys(net)}
    assert load_weights(net, state) is False
    loaded = net.state_dict()
    assert sorted(fresh_head) == ["fc.bias", "fc.weight"]
    for key, value in loaded.items():
        want = fresh_head[key] if key in fresh_head else file_state[key]
        assert torch.equal(value, want), key


def test_replaced_heads_differ_between_members_under_init_diversity(tmp_path) -> None:
    torch.manual_seed(0)
    ten_classes = models.create("cnn", 10, width=4).state_dict()
    path = save(ten_classes, tmp_path / "cnn10.safetensors")
    model = ModelConfig(name="cnn", width=4, weights=str(path), freeze_norm=True)
    cell = rgb_cell()
    differ = train_loop([cell], model, STILL.model_copy(update={"diversity": ["init"]}),
                        2)[0]["test"]
    assert np.abs(differ[0] - differ[1]).max() > 1e-3
    same = train_loop([cell], model, STILL.model_copy(update={"diversity": []}), 2)[0]["test"]
    np.testing.assert_array_equal(same[0], same[1])


def _drop(state: dict[str, torch.Tensor]) -> None:
    del state["layer1.0.bn1.weight"]


def _extra(state: dict[str, torch.Tensor]) -> None:
    state["layer5.0.conv1.weight"] = torch.zeros(1)


def _reshape(state: dict[str, torch.Tensor]) -> None:
    state["layer2.0.conv1.weight"] = torch.zeros(128, 64, 1, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_drop, "missing layer1.0.bn1.weight"),
        (_extra, "unexpected layer5.0.conv1.weight"),
        (_reshape, "layer2.0.conv1.weight: file [128,64,1,1], model [128,64,3,3]"),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_a_key_that_does_not_fit_is_named_in_one_line(change, message: str, tmp_path) -> None:
    state = resnet18_state(2)
    change(state)
    path = save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError) as err:
        train_loop([rgb_cell()], ModelConfig(name="resnet18", weights=str(path)), STILL, 2)
    text = str(err.value)
    assert text.startswith(f"model.weights: {path}: does not fit ResNet")
    assert message in text and "\n" not in text


def test_rgb_weights_on_grey_images_say_the_channels_differ(tmp_path) -> None:
    state = read_weights(save(resnet18_state(2), tmp_path / "rgb.pth"))
    grey = models.create("resnet18", 2, in_channels=1)
    with pytest.raises(ValueError, match=r"conv1\.weight: file \[64,3,7,7\], model \[64,1,7,7\]"
                       r" \(the file's model takes 3-channel images, these have 1\)$"):
        load_weights(grey, state)


def test_a_pickled_object_is_refused_in_one_line(tmp_path) -> None:
    path = tmp_path / "pickled.pth"
    torch.save({"conv1.weight": torch.zeros(1), "note": NotATensor()}, path)
    with pytest.raises(ValueError) as err:
        read_weights(path)
    text = str(err.value)
    assert text.startswith(f"model.weights: {path}: cannot read it: it holds a pickled")
    assert "NotATensor" in text and "\n" not in text


def test_a_state_dict_wrapped_under_state_dict_or_model_is_unwrapped(tmp_path) -> None:
    state = {"a": torch.ones(2)}
    for wrapper in ("state_dict", "model"):
        path = tmp_path / f"{wrapper}.pt"
        torch.save({"epoch": 3, wrapper: state}, path)
        assert torch.equal(read_weights(path)["a"], state["a"])


def test_a_checkpoint_saved_from_data_parallel_loads_without_its_module_prefix(tmp_path):
    state = resnet18_state(2)
    path = save({f"module.{k}": v for k, v in state.items()}, tmp_path / "ddp.pth")
    got = read_weights(path)
    assert list(got) == list(state) and all(torch.equal(got[k], state[k]) for k in state)
    assert load_weights(models.create("resnet18", 2), got)  # the head too: same shapes


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("absent.pth", None, "no such file"),
        ("weights.npz", b"x", "expected a .pth, .pt or .safetensors file"),
        ("garbage.safetensors", b"not a safetensors file", "cannot read it: "),
        ("numbers.pth", {"a": torch.ones(1), "b": 3}, "expected a state dict of tensors, 'b'"),
    ],
)
def test_an_unreadable_file_is_named_in_one_line(name: str, content, message: str,
                                                 tmp_path) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(ValueError) as err:
        read_weights(path)
    assert str(err.value).startswith(f"model.weights: {path}: {message}")
    assert "\n" not in str(err.value)


def test_weights_sha256_is_the_files_sha256(tmp_path) -> None:
    path = save(resnet18_state(2), tmp_path / "r.pth")
    assert file_sha256(path, "model.weights") == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="^model.weights: .*absent.pth: cannot read it"):
        file_sha256(tmp_path / "absent.pth", "model.weights")


@pytest.mark.parametrize(("name", "head"), [("cnn", "head"), ("resnet18", "fc"),
                                            ("vit_tiny", "head")])
def test_each_image_model_names_its_head_and_round_trips(name: str, head: str) -> None:
    torch.manual_seed(0)
    a = models.create(name, 3, image_size=SIZE)
    torch.manual_seed(1)
    b = models.create(name, 3, image_size=SIZE)
    assert head_keys(a) == [f"{head}.weight", f"{head}.bias"]
    assert load_weights(b, a.state_dict()) is True
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_a_checkpoint_without_batch_counters_loads(tmp_path) -> None:
    # torchvision's older ImageNet files predate num_batches_tracked
    state = {k: v for k, v in resnet18_state(2).items() if not k.endswith("num_batches_tracked")}
    net = models.create("resnet18", 2)
    assert load_weights(net, state) is True
    assert torch.equal(net.state_dict()["bn1.running_var"], state["bn1.running_var"])
