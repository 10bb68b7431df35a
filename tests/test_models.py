"""Pure-torch image models: torchvision/timm state-dict compatibility, forward shapes, registry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from fairensemble import models

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
# The fixture generator lives in tests/fixtures, importable only after the sys.path tweak above.
from make_model_fixtures import FORWARD_CASES, pattern_input, pattern_state  # noqa: E402

REFERENCE = json.loads((FIXTURES / "model_keys.json").read_text())


@pytest.mark.parametrize("key", sorted(REFERENCE["keys"]))
def test_state_dict_keys_and_shapes_equal_torchvision_and_timm(key: str) -> None:
    name, num_classes = key.split("/")
    net = models.create(name, int(num_classes))
    ours = [[k, list(v.shape)] for k, v in net.state_dict().items()]
    assert ours == REFERENCE["keys"][key]


@pytest.mark.parametrize("case", FORWARD_CASES, ids=[c[0] for c in FORWARD_CASES])
def test_forward_equals_reference_logits_under_the_same_weights(case: tuple) -> None:
    key, name, num_classes, shape = case
    net = models.create(name, num_classes, image_size=shape[-1])
    net.load_state_dict(pattern_state(net.state_dict()), strict=True)
    with torch.no_grad():
        logits = net.eval()(pattern_input(shape))
    torch.testing.assert_close(logits, torch.tensor(REFERENCE["logits"][key]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("name", "channels", "size"),
    [("cnn", 1, 8), ("cnn", 3, 32), ("resnet18", 1, 32), ("resnet50", 3, 32), ("vit_tiny", 1, 32)],
)
def test_forward_gives_one_logit_per_class(name: str, channels: int, size: int) -> None:
    net = models.create(name, 3, in_channels=channels, image_size=size)
    out = net.eval()(torch.zeros(2, channels, size, size))
    assert out.shape == (2, 3)


def test_vit_position_embedding_follows_image_size() -> None:
    net = models.create("vit_small", 2, in_channels=1, image_size=48)
    assert net.state_dict()["pos_embed"].shape == (1, 3 * 3 + 1, 384)
    assert net.state_dict()["patch_embed.proj.weight"].shape == (384, 1, 16, 16)


def test_cnn_width_sets_channels() -> None:
    net = models.create("cnn", 2, in_channels=1, width=8)
    assert net.state_dict()["head.weight"].shape == (2, 32)
    assert sum(p.numel() for p in net.parameters()) == 6010


@pytest.mark.parametrize("name", ["cnn", "resnet18", "vit_tiny"])
def test_state_dict_round_trips_strictly(name: str) -> None:
    torch.manual_seed(0)
    a = models.create(name, 2, in_channels=3, image_size=32)
    torch.manual_seed(1)
    b = models.create(name, 2, in_channels=3, image_size=32)
    x = torch.linspace(-1, 1, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.equal(a.eval()(x), b.eval()(x))
        b.load_state_dict(a.state_dict(), strict=True)
        assert torch.equal(a(x), b.eval()(x))


def test_same_global_seed_builds_the_same_model() -> None:
    torch.manual_seed(7)
    a = models.create("resnet18", 2)
    torch.manual_seed(7)
    b = models.create("resnet18", 2)
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


def test_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="resnet50.*vit_small") as err:
        models.create("resnet101", 2)
    assert "\n" not in str(err.value)


def test_vit_rejects_image_size_not_divisible_by_patch() -> None:
    with pytest.raises(ValueError, match="image_size: expected a positive multiple of 16, got 30"):
        models.create("vit_tiny", 2, image_size=30)


def test_resnet_rejects_keywords_it_does_not_use() -> None:
    with pytest.raises(ValueError, match="unexpected arguments \\['width'\\]"):
        models.create("resnet18", 2, width=16)
