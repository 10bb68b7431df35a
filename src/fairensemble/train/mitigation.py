"""Mitigations: changes to how a member trains that target the gap between groups, written once
for every trainer (``train.mitigation``).

The unit is the group x class *cell* of a training set (Sagawa et al.'s groups for Waterbirds
and CelebA are such cells): ``Cells.of(y, g)`` numbers the cells the training set holds.
A cell with no training rows (a group at a share of 0, a class a group lacks) is not one of
them: it gets no weight, no batch slots and no DRO weight, and the others share what it would
have had. Every trainer treats it the same way because every trainer calls these functions.

* ``none``: plain empirical risk, the mean cross-entropy of each mini-batch.
* ``reweight`` (Kamiran & Calders 2012, AIF360's Reweighing): sample i of cell c weighs
  ``w_c = n / (K n_c)`` in the batch's mean loss, with n the training set's rows, n_c the
  cell's and K the cells present: inverse cell frequency, normalised to mean 1 over the
  training set (the cell's training draw; a member's early-stopping hold-out or bootstrap
  resample keeps the draw's weights).
* ``balanced``: each mini-batch holds equal counts of every cell (largest remainder when the
  batch size is not a multiple of K, ties at random), rows drawn uniformly with replacement
  within a cell from the member's own training rows; an epoch has as many batches of the
  same sizes as without it, so it costs the same number of steps.
* ``group_dro`` (Sagawa et al., ICLR 2020, Algorithm 1, online): each member keeps weights
  q over the cells, uniform at first. At every step, with l_c the batch's mean loss over the
  rows of cell c (0 for a cell absent from the batch) and C / sqrt(n_c) the optional
  generalization adjustment (``train.dro_adjust``), q_c <- q_c exp(eta (l_c + C / sqrt(n_c)))
  normalised (eta: ``train.dro_step``); the loss is sum_c q_c l_c. As mean-loss weights:
  sample i of cell c weighs ``b q_c / b_c`` (b the batch size, b_c the cell's rows in it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fairensemble.common.errors import ConfigError

if TYPE_CHECKING:
    import torch

MITIGATIONS = ("none", "reweight", "balanced", "group_dro")


@dataclass(frozen=True)
class Cells:
    """The group x class cells a training set holds. ``code[i]``: row i's cell, 0..K-1;
    ``pairs[c]``: cell c's (group code, class code); ``counts[c]``: its rows."""

    code: np.ndarray
    pairs: list[tuple[int, int]]
    counts: np.ndarray

    @classmethod
    def of(cls, y: np.ndarray, g: np.ndarray, n_classes: int) -> Cells:
        key = np.asarray(g, dtype=np.int64) * n_classes + np.asarray(y, dtype=np.int64)
        present, code, counts = np.unique(key, return_inverse=True, return_counts=True)
        return cls(code.astype(np.int64), [(int(k) // n_classes, int(k) % n_classes)
                                            for k in present], counts.astype(np.int64))

    @property
    def K(self) -> int:
        return len(self.pairs)

    def names(self, groups: list[str], classes: list[str]) -> list[str]:
        return [f"{groups[g]} / {classes[c]}" for g, c in self.pairs]


def check(mitigation: str, cells: Cells, where: str = "the training set") -> None:
    """Group DRO weighs cells against each other: it needs at least two."""
    if mitigation == "group_dro" and cells.K < 2:
        raise ConfigError(f"train.mitigation: 'group_dro' needs at least two group x class "
                          f"cells in every training set; {where} holds one")


def reweight(cells: Cells) -> np.ndarray:
    """Per-row weights float32 [n]: inverse cell frequency, mean 1 over the training set."""
    n = len(cells.code)
    per_cell = n / (cells.K * cells.counts.astype(np.float64))
    return per_cell[cells.code].astype(np.float32)


class BalancedBatches:
    """Balanced mini-batches over a member's training rows whose cells are ``code`` [n]
    (``epoch`` draws one epoch's; the rows of each cell are found once)."""

    def __init__(self, code: np.ndarray) -> None:
        present, local = np.unique(code, return_inverse=True)
        self.n, self.K = len(code), len(present)
        self.rows = [np.flatnonzero(local == c) for c in range(self.K)]

    def epoch(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Positions into the member's rows, batch after batch, ``n`` in all, in batches of
        ``batch_size`` (the last one partial) as a plain epoch has. Each batch gives every
        cell present floor(size / K) rows and one more to size mod K cells chosen at random
        (the largest-remainder apportionment of equal shares); rows are drawn uniformly with
        replacement within a cell, and shuffled within the batch."""
        n, K = self.n, self.K
        sizes = np.full(-(-n // batch_size), batch_size)
        sizes[-1] = n - batch_size * (len(sizes) - 1)
        rank = np.argsort(np.argsort(rng.random((len(sizes), K)), axis=1), axis=1)
        counts = sizes[:, None] // K + (rank < (sizes % K)[:, None])  # [batches, K]
        slot_cell = np.repeat(np.tile(np.arange(K), len(sizes)), counts.ravel())
        out = np.empty(n, dtype=np.int64)
        for c, rows in enumerate(self.rows):  # each cell's draws, in slot order
            at = slot_cell == c
            out[at] = rows[rng.integers(0, len(rows), int(counts[:, c].sum()))]
        key = np.repeat(np.arange(len(sizes), dtype=float), sizes) + rng.random(n)
        return out[np.argsort(key, kind="stable")]  # shuffled within each batch


def balanced_order(code: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """One epoch of balanced mini-batches over rows of cells ``code`` (``BalancedBatches``)."""
    return BalancedBatches(code).epoch(batch_size, rng)


def dro_step(ce: torch.Tensor, cell: torch.Tensor, q: torch.Tensor, adjust: torch.Tensor,
             eta: float) -> torch.Tensor:
    """One online Group DRO step for m members at once: updates their weights ``q`` [m, K]
    in place from the batch's per-sample losses ``ce`` [m, b] of cells ``cell`` [m, b], and
    returns each sample's weight in the batch's mean loss [m, b] (see the module docstring).
    ``adjust`` [K]: the generalization adjustment C / sqrt(n_c) (zeros without it)."""
    import torch

    m, b = ce.shape
    K = q.shape[1]
    sums = torch.zeros((m, K), dtype=ce.dtype, device=ce.device).scatter_add_(1, cell, ce)
    counts = torch.zeros((m, K), dtype=ce.dtype, device=ce.device).scatter_add_(
        1, cell, torch.ones_like(ce))
    loss = sums / counts.clamp_min(1.0)
    q.mul_(torch.exp(eta * (loss + adjust))).div_(q.sum(dim=1, keepdim=True))
    return b * (q / counts.clamp_min(1.0)).gather(1, cell)


def dro_adjustment(cells: Cells, strength: float) -> np.ndarray:
    """Sagawa et al.'s generalization adjustment per cell, C / sqrt(n_c)."""
    return (strength / np.sqrt(cells.counts.astype(np.float64))).astype(np.float32)


__all__ = ["MITIGATIONS", "BalancedBatches", "Cells", "balanced_order", "check", "dro_adjustment",
           "dro_step", "reweight"]
