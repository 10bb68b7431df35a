"""Models built by name: ``create("resnet50", num_classes=2)`` (pure torch, no torchvision/timm).

Names: cnn, resnet18, resnet34, resnet50, vit_tiny, vit_small, mlp. Each builder takes only the
arguments that concern it; ``create`` passes ``in_channels`` and ``image_size`` where they mean
something and forwards the remaining keywords (``width`` for cnn; ``in_features``, ``hidden``,
``activation``, ``dropout``, ``seed`` for mlp). Pretrained weights for the image models are
read and fitted by ``models.weights``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

# the one list of model names (config reads it); builders import torch only when called
NAMES = ("cnn", "resnet18", "resnet34", "resnet50", "vit_tiny", "vit_small", "mlp")


def create(
    name: str, num_classes: int, in_channels: int = 3, image_size: int = 224, **kw: Any
) -> nn.Module:
    """Build model ``name`` with ``num_classes`` outputs, initialised from torch's global RNG
    (wrap the call in ``torch.random.fork_rng`` + ``torch.manual_seed`` to seed it)."""
    if num_classes < 1:
        raise ValueError(f"num_classes: expected a positive integer, got {num_classes}")
    from fairensemble.models.cnn import SmallCNN
    from fairensemble.models.resnet import resnet18, resnet34, resnet50
    from fairensemble.models.vit import vit_small, vit_tiny

    if name == "cnn":
        return SmallCNN(num_classes, in_channels, **kw)
    if name in ("resnet18", "resnet34", "resnet50"):
        _no_extra(name, kw)
        return {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}[name](
            num_classes, in_channels
        )
    if name in ("vit_tiny", "vit_small"):
        _no_extra(name, kw)
        return {"vit_tiny": vit_tiny, "vit_small": vit_small}[name](
            num_classes, in_channels, image_size
        )
    if name == "mlp":
        from fairensemble.models.mlp import MLP

        return MLP(n_classes=num_classes, **kw)
    raise ValueError(f"model.name: expected one of {list(NAMES)}, got {name!r}")


def _no_extra(name: str, kw: dict[str, Any]) -> None:
    if kw:
        raise ValueError(f"model {name!r}: unexpected arguments {sorted(kw)}")


__all__ = ["NAMES", "create"]
