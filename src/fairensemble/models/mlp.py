"""A plain multilayer perceptron and the seeded initialisation every MLP member starts from.

``init_mlp_params(seed, ...)`` is the single source of a member's initial weights: the stacked
trainer copies them into its member axis and ``MLP(..., seed=seed)`` loads the same numbers, so
a member trained either way starts from identical parameters. The draws reproduce
``nn.Linear``'s default initialisation exactly: with ``torch.manual_seed(seed)`` followed by
building the layers in order, ``nn.Linear`` produces the same tensors.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from fairensemble.common.errors import ConfigError, InputError

ACTIVATIONS = ("relu", "tanh", "gelu", "leaky_relu")
LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default


def layer_sizes(in_features: int, hidden: list[int], n_classes: int) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of each linear layer, input to output."""
    dims = [in_features, *hidden, n_classes]
    return list(itertools.pairwise(dims))


def init_mlp_params(
    seed: int, in_features: int, hidden: list[int], n_classes: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Initial ``(W [d_in, d_out], b [d_out])`` per layer, drawn from ``torch.Generator(seed)``.

    Per layer, in order: weight then bias, each ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` drawn in
    ``nn.Linear``'s [d_out, d_in] order (kaiming_uniform with a=sqrt(5), then the bias), so the
    numbers equal ``nn.Linear``'s default under ``torch.manual_seed(seed)``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    params = []
    for fan_in, fan_out in layer_sizes(in_features, hidden, n_classes):
        gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))  # init.calculate_gain("leaky_relu", √5)
        w_bound = math.sqrt(3.0) * (gain / math.sqrt(fan_in))
        b_bound = 1 / math.sqrt(fan_in)
        w = torch.empty(fan_out, fan_in).uniform_(-w_bound, w_bound, generator=gen)
        b = torch.empty(fan_out).uniform_(-b_bound, b_bound, generator=gen)
        params.append((w.t().contiguous(), b))
    return params


def activation_module(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    if name == "gelu":
        return nn.GELU()
    if name == "leaky_relu":
        return nn.LeakyReLU(LEAKY_SLOPE)
    raise ConfigError(f"model.activation: expected one of {list(ACTIVATIONS)}, got {name!r}")


class MLP(nn.Module):
    """``in_features -> hidden[0] -> ... -> n_classes`` with an activation (and optional
    dropout) after every hidden layer; outputs logits. Parameters live in ``self.net``, an
    ``nn.Sequential`` of ``Linear`` / activation / ``Dropout`` modules.

    With ``seed`` given, the weights come from ``init_mlp_params(seed, ...)``; otherwise from
    the global torch RNG (nn.Linear's default, the same distribution).
    """

    def __init__(
        self,
        in_features: int,
        hidden: list[int],
        n_classes: int,
        activation: str = "relu",
        dropout: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if in_features < 1 or n_classes < 1 or any(h < 1 for h in hidden):
            raise ConfigError(
                f"model.hidden: expected positive layer sizes, got in_features={in_features},"
                f" hidden={hidden}, n_classes={n_classes}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout: expected a value in [0, 1), got {dropout}")
        self.in_features, self.hidden, self.n_classes = in_features, list(hidden), n_classes
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(layer_sizes(in_features, hidden, n_classes)):
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(hidden):
                layers.append(activation_module(activation))
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)
        if seed is not None:
            self.load_params(init_mlp_params(seed, in_features, hidden, n_classes))

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]

    def load_params(self, params: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Copy ``[(W [d_in, d_out], b [d_out]), ...]`` (``init_mlp_params``' layout) in."""
        linears = self.linears
        if len(params) != len(linears):
            raise InputError(f"params: expected {len(linears)} layers, got {len(params)}")
        with torch.no_grad():
            for lin, (w, b) in zip(linears, params):
                lin.weight.copy_(torch.as_tensor(w).t())
                lin.bias.copy_(torch.as_tensor(b))

    def params(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The current weights as ``[(W [d_in, d_out], b [d_out]), ...]`` (detached copies)."""
        return [(lin.weight.detach().t().clone(), lin.bias.detach().clone())
                for lin in self.linears]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build(num_classes: int, in_features: int, hidden: list[int] | tuple[int, ...] = (64, 64),
          activation: str = "relu", dropout: float = 0.0, seed: int | None = None) -> MLP:
    return MLP(in_features, list(hidden), num_classes, activation=activation, dropout=dropout,
               seed=seed)
