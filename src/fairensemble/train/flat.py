"""The flat parameter machinery of the stacked trainer: M members' MLP parameters in one
contiguous buffer with a leading member axis (``Layout``), the activations written as in-place
kernels, the forward pass of every member at once (``logits``), and torch's Adam / AdamW / SGD
run once over the whole buffer (``Optimiser``: element-wise, so one update over the stack is M
independent optimisers)."""

from __future__ import annotations

import torch

from fairensemble.config import TrainConfig
from fairensemble.models.mlp import LEAKY_SLOPE

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
FLAT_ALIGN = 64  # floats; a multiple of every SIMD width and of a cache line
FUSED_OPTIMISER = True  # use torch's fused optimiser kernels where the build has them

_aten = torch.ops.aten


# ----------------------------------------------------------------------------- flat layout


class Layout:
    """Where each stacked parameter lives in a flat buffer: per layer a weight block then a bias
    block, each ``[M, rows, cols]``.

    Orientation is chosen for MKL's batched gemm, several times slower when the output has a
    tiny column count than a tiny row count: a hidden layer's weight is stored [in, out] when
    in <= out, else [out, in]; the output layer's is [C, in] and it computes transposed logits
    [M, C, b], so the narrow class dimension is always a row dimension.
    """

    def __init__(self, sizes: list[tuple[int, int]]) -> None:
        self.sizes = sizes
        last = len(sizes) - 1
        self.io = [fan_in <= fan_out and i < last for i, (fan_in, fan_out) in enumerate(sizes)]
        self.shapes: list[tuple[int, int]] = []
        for i, ((fan_in, fan_out), io) in enumerate(zip(sizes, self.io)):
            self.shapes.append((fan_in, fan_out) if io else (fan_out, fan_in))
            self.shapes.append((fan_out, 1) if i == last else (1, fan_out))

    def blocks(self, flat: torch.Tensor, m: int) -> list[torch.Tensor]:
        """Per layer weight then bias, as stored: views [M, rows, cols] of ``flat``."""
        out, off = [], 0
        for r, c in self.shapes:
            out.append(flat[off : off + m * r * c].view(m, r, c))
            off += m * r * c
        return out

    def weights_io(self, flat: torch.Tensor, m: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer (W as an [M, in, out] view, b as [M, 1, out])."""
        blocks = self.blocks(flat, m)
        return [
            (w if io else w.transpose(1, 2), b.view(m, 1, -1))
            for w, b, io in zip(blocks[::2], blocks[1::2], self.io)
        ]

    def _padded(self, parts: list[torch.Tensor]) -> torch.Tensor:
        # Padding to a multiple of FLAT_ALIGN floats keeps every element on the optimiser
        # kernel's vectorised path (its scalar tail rounds differently), so a member's numbers
        # do not depend on where in the buffer it sits.
        numel = sum(p.numel() for p in parts)
        pad = -numel % FLAT_ALIGN
        return torch.cat([*parts, parts[0].new_zeros(pad)])

    def pack(self, params: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> torch.Tensor:
        """Flat buffer of M members' ``init_mlp_params`` lists."""
        parts = []
        for layer, io in enumerate(self.io):
            w = torch.stack([p[layer][0] if io else p[layer][0].t() for p in params])
            parts += [w.reshape(-1), torch.stack([p[layer][1] for p in params]).reshape(-1)]
        return self._padded(parts)

    def select(self, flat: torch.Tensor, m: int, rows: torch.Tensor) -> torch.Tensor:
        """A flat buffer of the members ``rows`` (indices into the M of ``flat``)."""
        return self._padded(
            [b.reshape(m, -1).index_select(0, rows).reshape(-1) for b in self.blocks(flat, m)]
        )

    def put(self, dst: torch.Tensor, m_dst: int, rows: torch.Tensor, src: torch.Tensor,
            m_src: int, src_rows: torch.Tensor) -> None:
        """``dst[rows] = src[src_rows]`` member-wise, block by block."""
        for bd, bs in zip(self.blocks(dst, m_dst), self.blocks(src, m_src)):
            picked = bs.reshape(m_src, -1).index_select(0, src_rows)
            bd.reshape(m_dst, -1).index_copy_(0, rows, picked)


# ----------------------------------------------------------------------------- activations


def act_(name: str, pre: torch.Tensor, out: torch.Tensor) -> None:
    """out = act(pre); for all but gelu, ``out`` is ``pre`` (in place)."""
    if name == "relu":
        pre.clamp_min_(0.0)
    elif name == "tanh":
        pre.tanh_()
    elif name == "leaky_relu":
        torch.nn.functional.leaky_relu_(pre, LEAKY_SLOPE)
    else:
        _aten.gelu.out(pre, approximate="none", out=out)


def act_backward_(name: str, grad: torch.Tensor, pre: torch.Tensor, out: torch.Tensor) -> None:
    """grad <- grad * act'(pre), in place; relu/tanh/leaky_relu read the output only."""
    if name == "relu":
        _aten.threshold_backward.grad_input(grad, out, 0.0, grad_input=grad)
    elif name == "tanh":
        _aten.tanh_backward.grad_input(grad, out, grad_input=grad)
    elif name == "leaky_relu":
        _aten.leaky_relu_backward.grad_input(grad, out, LEAKY_SLOPE, True, grad_input=grad)
    else:
        _aten.gelu_backward.grad_input(grad, pre, approximate="none", grad_input=grad)


def act(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "relu":
        return x.clamp_min_(0.0)
    if name == "tanh":
        return x.tanh_()
    if name == "leaky_relu":
        return torch.nn.functional.leaky_relu_(x, LEAKY_SLOPE)
    return torch.nn.functional.gelu(x)


def stack_logits(layout: Layout, activation: str, flat: torch.Tensor, m: int,
            x: torch.Tensor) -> torch.Tensor:
    """Logits [M, n, C] (a transposed view) of the M members of ``flat`` on inputs x [M, n, d]."""
    h = x
    weights = layout.weights_io(flat, m)
    for w, b in weights[:-1]:
        h = act(activation, torch.baddbmm(b, h, w))
    w_last, b_last = layout.blocks(flat, m)[-2:]  # [M, C, h], [M, C, 1]
    return torch.baddbmm(b_last, w_last, h.transpose(1, 2)).transpose(1, 2)


# ----------------------------------------------------------------------------- optimisers


class Optimiser:
    """torch.optim's Adam / AdamW / SGD over one flat buffer. Uses torch's fused kernel (one
    element-wise pass per step, ``fused=True`` semantics); where the build lacks it for the
    device, the same update as torch's single-tensor code, op for op, in place."""

    def __init__(self, train: TrainConfig, param: torch.Tensor) -> None:
        self.kind, self.wd, self.momentum = train.optimizer, train.weight_decay, train.momentum
        self.step_t = torch.zeros((), device=param.device)
        self.count = 0
        n_state = 2 if self.kind != "sgd" else int(self.momentum != 0)
        self.state = [torch.zeros_like(param) for _ in range(n_state)]
        self.fused = FUSED_OPTIMISER and has_fused_kernels(param.device)

    def select(self, layout: Layout, m: int, rows: torch.Tensor) -> None:
        self.state = [layout.select(s, m, rows) for s in self.state]

    def step(self, param: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
        self.count += 1
        if not self.fused:
            self._step_unfused(param, grad, lr)
        elif self.kind == "sgd":
            torch._fused_sgd_(
                [param], [grad], self.state, weight_decay=self.wd, momentum=self.momentum,
                lr=lr, dampening=0.0, nesterov=False, maximize=False,
                is_first_step=self.count == 1,
            )
        else:
            self.step_t += 1
            fused = torch._fused_adamw_ if self.kind == "adamw" else torch._fused_adam_
            fused(
                [param], [grad], [self.state[0]], [self.state[1]], [], [self.step_t],
                lr=lr, beta1=ADAM_BETAS[0], beta2=ADAM_BETAS[1], weight_decay=self.wd,
                eps=ADAM_EPS, amsgrad=False, maximize=False,
            )

    def _step_unfused(self, param: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
        if self.kind == "sgd":
            if self.wd != 0:
                grad.add_(param, alpha=self.wd)
            if self.momentum != 0:
                (buf,) = self.state
                if self.count == 1:
                    buf.copy_(grad)
                else:
                    buf.mul_(self.momentum).add_(grad)
                grad = buf
            param.add_(grad, alpha=-lr)
            return
        beta1, beta2 = ADAM_BETAS
        exp_avg, exp_avg_sq = self.state
        if self.wd != 0:
            if self.kind == "adamw":
                param.mul_(1 - lr * self.wd)
            else:
                grad.add_(param, alpha=self.wd)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = lr / (1 - beta1**self.count)
        denom = grad  # the gradient is spent: reuse its buffer
        torch.sqrt(exp_avg_sq, out=denom)
        denom.div_((1 - beta2**self.count) ** 0.5).add_(ADAM_EPS)
        param.addcdiv_(exp_avg, denom, value=-step_size)


def has_fused_kernels(device: torch.device) -> bool:
    """Whether this torch build has the fused Adam/SGD kernels for the device (CPU: >= 2.4)."""
    p = torch.zeros(16, device=device)
    try:
        torch._fused_sgd_([p], [p.clone()], [], weight_decay=0.0, momentum=0.0, lr=0.0,
                          dampening=0.0, nesterov=False, maximize=False, is_first_step=True)
        torch._fused_adam_([p], [p.clone()], [p.clone()], [p.clone()], [],
                           [torch.ones((), device=device)], lr=0.0, beta1=0.9, beta2=0.999,
                           weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
    return True


