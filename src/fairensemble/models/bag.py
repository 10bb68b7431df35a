"""The hashed n-gram bag model (fastText-style) for texts: a text's features (hashed word and
character n-grams, ``data/tokens.py``) are embedded and averaged, and a linear or small MLP
head reads the average.

    h = (1 / |t|) sum_{f in t} E[f]          E: [buckets, dim], row 0 (padding) never read
    logits = head(h)                         head: an MLP with ``hidden`` layers (none: linear)

Inputs are padded id bags int [n, L] (0 = padding); an empty bag averages to zeros. The mean
is written as a weighted sum (weights 1 / |t| on a text's ids, 0 on padding), the form the
stacked trainer uses for many members at once, so one member computes the same here as
there. The embedding's gradient is sparse (only the rows a batch touched), as fastText's is.
A member starts from ``init_bag_params(seed, ...)``: the embedding uniform in
[-1 / dim, 1 / dim] (fastText's) from its own generator, the head as ``init_mlp_params``.
"""

from __future__ import annotations

import torch
from torch import nn

from fairensemble.common.errors import ConfigError
from fairensemble.models.mlp import MLP, init_mlp_params

EMBED_STREAM = 0x5BD1E995  # the embedding's generator is the seed's, xor this


def mean_weights(ids: torch.Tensor) -> torch.Tensor:
    """Weights [n, L] that make a sum over each bag its mean: 1 / |t| on ids, 0 on padding."""
    real = (ids != 0).to(torch.float32)
    return real / real.sum(dim=1, keepdim=True).clamp_min(1.0)


def init_bag_params(seed: int, vocab: int, dim: int, hidden: list[int], n_classes: int
                    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """A member's starting embedding [vocab, dim] and head parameters (``init_mlp_params``
    layout: per layer W [in, out] and b [out])."""
    gen = torch.Generator().manual_seed(int(seed) ^ EMBED_STREAM)
    emb = torch.empty(vocab, dim).uniform_(-1.0 / dim, 1.0 / dim, generator=gen)
    emb[0] = 0.0
    return emb, init_mlp_params(seed, dim, hidden, n_classes)


class HashedBag(nn.Module):
    """One member: embedding bag of hashed n-grams, then a head."""

    def __init__(self, num_classes: int, vocab: int, dim: int = 32,
                 hidden: list[int] | tuple[int, ...] = (), activation: str = "relu",
                 seed: int | None = None) -> None:
        super().__init__()
        if vocab < 2 or dim < 1:
            raise ConfigError(f"model: the bag model needs >= 2 buckets and a positive width, "
                              f"got {vocab} and {dim}")
        self.embedding = nn.EmbeddingBag(vocab, dim, mode="sum", sparse=True)
        self.head = MLP(dim, list(hidden), num_classes, activation)
        if seed is not None:
            emb, head = init_bag_params(seed, vocab, dim, list(hidden), num_classes)
            with torch.no_grad():
                self.embedding.weight.copy_(emb)
            self.head.load_params(head)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()
        h = self.embedding(ids, per_sample_weights=mean_weights(ids))
        return self.head(h)


def build(num_classes: int, vocab: int, dim: int = 32, hidden: list[int] | tuple[int, ...] = (),
          activation: str = "relu", seed: int | None = None) -> HashedBag:
    return HashedBag(num_classes, vocab, dim, hidden, activation, seed)


__all__ = ["HashedBag", "build", "init_bag_params", "mean_weights"]
