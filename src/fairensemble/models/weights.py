"""Pretrained weights for the image models: read a checkpoint and fit it to a fresh model.

A checkpoint is a state dict in torchvision's (ResNet) or timm's (ViT) key layout, either a
``.pth``/``.pt`` file, read with ``torch.load(weights_only=True)`` so that it can hold tensors
and plain containers but never pickled code, or a ``.safetensors`` file. Every key but the
classification head's must match the model by name and shape; the head is kept when it fits
the task's classes and otherwise left at its fresh initialisation, so an ImageNet checkpoint
(1000 classes) fine-tunes on a two-class task. A cell's identity holds the file's sha256
(``plan.file_sha256``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from fairensemble.common.errors import InputError

TORCH_SUFFIXES = (".pth", ".pt")
LISTED = 3  # keys named per kind of mismatch; the rest are counted


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path``: the file's top-level dict, or the one under its
    ``"state_dict"`` or ``"model"`` key (how training scripts often wrap it)."""
    p = Path(path).expanduser()
    where = f"model.weights: {p}"
    if not p.is_file():
        raise InputError(f"{where}: no such file")
    if p.suffix not in (*TORCH_SUFFIXES, ".safetensors"):
        raise InputError(f"{where}: expected a .pth, .pt or .safetensors file")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(p)
        else:
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # any reader failure is the file's problem: say which file
        raise InputError(f"{where}: cannot read it: {_reason(err)}") from None
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict) or not obj:
        raise InputError(f"{where}: expected a state dict (name -> tensor), got {_kind(obj)}")
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise InputError(f"{where}: expected a state dict of tensors, {key!r} holds"
                             f" {_kind(value)}")
    state = dict(obj)
    if all(str(k).startswith("module.") for k in state):  # saved from DataParallel / DDP
        consume_prefix_in_state_dict_if_present(state, "module.")
    return state


def _reason(err: Exception) -> str:
    """torch's weights-only refusal is a page of advice; keep the line that names the culprit."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    culprit = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if culprit:
        return (f"it holds a pickled {culprit[1]} object, which weights-only loading refuses"
                " (a state dict holds tensors only)")
    detail = text.split("WeightsUnpickler error:", 1)[-1]
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _kind(value: object) -> str:
    return f"a {type(value).__name__}"


def head_keys(net: nn.Module) -> list[str]:
    """The state-dict keys of ``net``'s classification head, the module its class names in
    ``head_name`` (``fc`` for ResNet, ``head`` for ViT and the small CNN)."""
    prefix = f"{net.head_name}."
    return [k for k in net.state_dict() if k.startswith(prefix)]


def load_weights(
    net: nn.Module, state: Mapping[str, torch.Tensor], where: str = "model.weights"
) -> bool:
    """Copy ``state`` into ``net``; returns whether the head was taken from it too.

    The head is taken when every head key is in ``state`` with ``net``'s shape; otherwise it
    keeps the initialisation ``net`` was built with. Any other mismatch is an error, one line
    starting with ``where``. A missing ``num_batches_tracked`` is allowed (checkpoints saved
    before torch 0.4.1 lack it, and it only counts batches)."""
    own = net.state_dict()
    head = set(head_keys(net))
    missing = [k for k in own if k not in state and k not in head
               and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and k not in head and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected {_listed(unexpected)}")
        if shapes:
            described = [f"{k}: file {_shape(state[k])}, model {_shape(own[k])}" for k in shapes]
            parts.append(f"shapes differ {_listed(described)}{_channels_hint(shapes, state, own)}")
        raise InputError(f"{where}: does not fit {type(net).__name__}: {'; '.join(parts)}")
    take_head = all(k in state and state[k].shape == own[k].shape for k in head)
    net.load_state_dict(
        {k: state[k] if k in state and (take_head or k not in head) else v for k, v in own.items()},
        strict=True,
    )
    return take_head


def _listed(items: list[str]) -> str:
    more = f" (+{len(items) - LISTED} more)" if len(items) > LISTED else ""
    return ", ".join(items[:LISTED]) + more


def _shape(t: torch.Tensor) -> str:
    return "[" + ",".join(str(d) for d in t.shape) + "]"


def _channels_hint(shapes: list[str], state: Mapping[str, torch.Tensor],
                   own: Mapping[str, torch.Tensor]) -> str:
    """Grey images against RGB weights (CheXpert vs ImageNet) show as the first conv's input
    channels; say so, since the key name alone does not."""
    first = next(iter(own))
    if first not in shapes or state[first].ndim != 4:
        return ""
    f, m = state[first].shape, own[first].shape
    if f[0] != m[0] or f[2:] != m[2:]:
        return ""
    return f" (the file's model takes {f[1]}-channel images, these have {m[1]})"


__all__ = ["head_keys", "load_weights", "read_weights"]
