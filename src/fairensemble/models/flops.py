"""What a model costs: FLOPs of one training sample (forward and backward), counted by torch's
own ``FlopCounterMode`` on the meta device, so nothing is computed and the count is the same
on every machine. Matrix products and convolutions are counted (2 FLOPs per multiply-add), as
the stacked trainer's analytic count of an MLP does."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def training_flops(build: Callable[[], nn.Module], sample_shape: tuple[int, ...],
                   dtype: torch.dtype = torch.float32) -> float | None:
    """FLOPs of one sample of shape ``sample_shape`` through the model ``build()`` makes,
    forward and backward; None where the model cannot run on the meta device (a user's
    factory that reads its own weights, say)."""
    try:
        with torch.device("meta"):
            net = build()
            x = torch.zeros((2, *sample_shape), dtype=dtype)
        with FlopCounterMode(display=False) as counter:
            net(x).float().sum().backward()
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        return None
    return counter.get_total_flops() / 2.0


def forward_flops(build: Callable[[], nn.Module], sample_shape: tuple[int, ...],
                  dtype: torch.dtype = torch.float32) -> float | None:
    """FLOPs of one sample's forward pass (a frozen backbone's cost per image)."""
    try:
        with torch.device("meta"):
            net = build().eval()
            x = torch.zeros((2, *sample_shape), dtype=dtype)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net(x)
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        return None
    return counter.get_total_flops() / 2.0


__all__ = ["forward_flops", "training_flops"]
