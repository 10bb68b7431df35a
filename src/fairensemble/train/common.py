"""What every torch trainer shares, written once: the device a config asks for, the
early-stopping score, image normalisation, and the precision / memory-layout policy."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

from fairensemble.common.errors import ConfigError, InputError
from fairensemble.config import TrainConfig
from fairensemble.metrics import auc


def choose_device(name: str) -> torch.device:
    """``train.device``: ``auto`` is CUDA when available, else the CPU; ``cuda`` without a CUDA
    device is an error naming the field."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' requested but no CUDA device is available")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def early_stopping_score(metric: str, logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Per-member validation score, higher is better (``loss`` is negated), from logits
    [M, n, C] and labels [M, n]. AUC is the metric registry's (each member's rows a draw);
    where it is undefined (one class in a member's hold-out) the member's epochs are ranked
    by the negated loss instead."""
    if metric == "loss":
        log_p = torch.log_softmax(logits, dim=-1)
        return log_p.gather(2, y.unsqueeze(2)).squeeze(2).mean(1).double().cpu().numpy()
    if metric == "accuracy":
        return (logits.argmax(2) == y).double().mean(1).cpu().numpy()
    probs = torch.softmax(logits.double(), dim=-1).cpu().numpy()
    score = np.asarray(auc(probs, y.cpu().numpy()), dtype=float)
    undefined = np.isnan(score)
    if undefined.any():
        score[undefined] = early_stopping_score("loss", logits, y)[undefined]
    return score


class Normaliser:
    """uint8 images -> float: ``(u8 / 255 - mean) / std`` per channel, folded into one
    multiply-add (``image_mean`` / ``image_std`` default to 0 and 1)."""

    def __init__(self, channels: int, mean: Sequence[float] | None,
                 std: Sequence[float] | None, device: torch.device | str = "cpu") -> None:
        m = np.asarray(mean if mean is not None else [0.0] * channels, dtype=np.float32)
        s = np.asarray(std if std is not None else [1.0] * channels, dtype=np.float32)
        if m.shape != (channels,) or s.shape != (channels,) or (s <= 0).any():
            raise InputError(f"image_mean/image_std: expected {channels} values (std > 0), got "
                             f"{m.tolist()}, {s.tolist()}")
        self.scale = torch.from_numpy(1.0 / (255.0 * s)).view(1, channels, 1, 1).to(device)
        self.shift = torch.from_numpy(-m / s).view(1, channels, 1, 1).to(device)

    def __call__(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, raw.float(), self.scale)


def normalised_rows(X: Any, mean: Sequence[float] | None, std: Sequence[float] | None
                    ) -> np.ndarray:
    """uint8 images [n, C, H, W] -> normalised float32 rows [n, C*H*W] (an MLP's inputs)."""
    arr = torch.from_numpy(np.ascontiguousarray(X, dtype=np.uint8))
    return Normaliser(arr.shape[1], mean, std)(arr).reshape(len(arr), -1).numpy()


def autocast(device: torch.device, precision: str) -> Any:
    """bf16 autocast on the device's type when ``train.precision`` is bf16 (CPU included)."""
    if precision != "bf16":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def channels_last(net: nn.Module, device: torch.device, precision: str) -> bool:
    """Whether a net runs in channels-last memory: convolutional nets on CUDA, and on the CPU
    under bf16 (fp32 on the CPU keeps the default layout, which its bitwise-reproducible runs
    were measured with)."""
    conv = any(isinstance(m, nn.Conv2d) for m in net.modules())
    return conv and (device.type == "cuda" or precision == "bf16")



def lr_schedule(train: TrainConfig) -> list[float]:
    """The learning rate of each epoch, taken from torch's own schedulers (exact semantics)."""
    dummy = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([dummy], lr=train.lr)
    if train.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=train.epochs)
    elif train.schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=train.step_size, gamma=train.gamma)
    else:
        sched = None
    lrs = []
    for _ in range(train.epochs):
        lrs.append(float(opt.param_groups[0]["lr"]))
        if sched is not None:
            opt.step()  # a no-op (no grad); keeps the scheduler's call-order check quiet
            sched.step()
    return lrs



class Optimizers:
    """torch's optimiser over dense parameters, and for parameters with sparse gradients (an
    embedding's rows a batch touched) its sparse counterpart: SparseAdam for adam and adamw
    (element-wise on the touched rows; it takes no weight decay), plain SGD for sgd (no
    momentum: torch's sparse SGD has none). Steps, zeroes and takes learning rates as one."""

    def __init__(self, dense: list[torch.Tensor], sparse: list[torch.Tensor],
                 train: TrainConfig, device: torch.device) -> None:
        self.parts: list[torch.optim.Optimizer] = []
        if dense:
            if train.optimizer == "sgd":
                self.parts.append(torch.optim.SGD(dense, lr=train.lr, momentum=train.momentum,
                                                  weight_decay=train.weight_decay))
            else:
                cls = torch.optim.AdamW if train.optimizer == "adamw" else torch.optim.Adam
                fused = True if device.type == "cuda" else None
                self.parts.append(cls(dense, lr=train.lr, weight_decay=train.weight_decay,
                                      fused=fused))
        if sparse:
            self.parts.append(torch.optim.SGD(sparse, lr=train.lr)
                              if train.optimizer == "sgd"
                              else torch.optim.SparseAdam(sparse, lr=train.lr))

    @property
    def param_groups(self) -> list[dict]:
        return [g for opt in self.parts for g in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.parts:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.parts:
            opt.step()


def optimizers(net: nn.Module, train: TrainConfig, device: torch.device) -> Optimizers:
    """The optimiser of a member's parameters, embeddings with sparse gradients apart."""
    sparse = [p for m in net.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))
              and m.sparse for p in m.parameters()]
    ids = {id(p) for p in sparse}
    return Optimizers([p for p in net.parameters() if id(p) not in ids], sparse, train, device)


__all__ = ["Optimizers", "optimizers", "Normaliser", "autocast", "lr_schedule", "channels_last",
           "choose_device", "early_stopping_score", "normalised_rows"]
