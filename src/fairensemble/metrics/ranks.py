"""Rank arithmetic behind AUC: where each group's positives stand among each group's negatives
in score order, tie groups, and the weighted Mann-Whitney pair counts built from them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from fairensemble.common.errors import InputError


class Ranks:
    """Where class c's positives stand among each group's negatives, per draw, in score order.

    ``running[h]`` int32 [D, n]: group h's negatives at or before each sorted position (at a
    positive: those scoring below it, or tied with it and sorted first). ``is_pos[j]`` bool
    [D, n]: group j's positives. ``tied[j]``: None, or group j's positives in tie groups as
    (flat positions [T], their draw [T], ``below`` [G, T] and ``upto`` [G, T], the negatives
    of each group below the tie group and below or within it).
    """

    def __init__(self, order: np.ndarray, code: np.ndarray, ties: Ties | None, G: int) -> None:
        """``order``, ``code`` and ``ties`` as ``Context.sorted_codes`` gives them for one class;
        ``G`` groups."""
        self.order, self.code, self.D = order, code, code.shape[0]
        self.running = [np.cumsum(code == 2 * h, axis=1, dtype=np.int32) for h in range(G)]
        self.is_pos = [code == 2 * j + 1 for j in range(G)]
        self.tied: list[tuple | None] = [None] * G
        if ties is None:
            return
        for j in range(G):
            tied = self.is_pos[j].ravel()[ties.at]
            at, q = ties.at[tied], ties.group[tied]
            first, last = ties.at[ties.first[q]], ties.at[ties.last[q]]
            first_neg = [code.ravel()[first] == 2 * h for h in range(G)]
            below = np.array([r.ravel()[first] - f for r, f in zip(self.running, first_neg)])
            upto = np.array([r.ravel()[last] for r in self.running])
            self.tied[j] = (at, ties.row[tied], below, upto)

    def twice_unit_pairs(self) -> np.ndarray:
        """Twice the unit-weight pair counts, [G, G, D]: each positive is owed below + upto of
        each group's negatives; untied, both are its running count."""
        G = len(self.running)
        out = np.empty((G, G, self.D))
        for j, h in itertools.product(range(G), range(G)):
            out[j, h] = 2 * np.where(self.is_pos[j], self.running[h], 0).sum(axis=-1,
                                                                           dtype=np.int64)
            if self.tied[j] is not None:
                at, row, below, upto = self.tied[j]
                extra = below[h] + upto[h] - 2 * self.running[h].ravel()[at].astype(np.int64)
                out[j, h] += np.bincount(row, weights=extra, minlength=self.D)
        return out

    @cached_property
    def compact(self) -> tuple[list, list, list, list]:
        """For sample weights (labels the same in every draw, so every draw has the same
        number of each): group j's positives ``pos[j]`` and group h's negatives ``neg[h]`` as
        sample ids in score order, [D, P_j] / [D, N_h]; ``below[j][h]`` / ``upto[j][h]`` int
        [D, P_j], each positive's count of group h's negatives below / through its tie
        group."""
        G, D = len(self.running), self.D
        neg = [self.order[self.code == 2 * h].reshape(D, -1) for h in range(G)]
        pos, below, upto = [], [], []
        for j in range(G):
            is_pos = self.is_pos[j]
            pos.append(self.order[is_pos].reshape(D, -1))
            lo = [r[is_pos].reshape(D, -1) for r in self.running]
            hi = lo
            if self.tied[j] is not None:
                at, row, b, u = self.tied[j]
                rank = (np.cumsum(is_pos, axis=1) - 1).ravel()[at]  # among the row's positives
                hi = [a.copy() for a in lo]
                for h in range(G):
                    lo[h][row, rank], hi[h][row, rank] = b[h], u[h]
            below.append(lo)
            upto.append(hi)
        return pos, neg, below, upto


@dataclass(frozen=True)
class Ties:
    """Tie groups (runs of equal scores) in rows of sorted scores [D, n], in flat positions:
    ``at`` int [T] the tied positions (sorted), ``first`` / ``last`` [Q] the index into ``at``
    of each tie group's first / last position, ``group`` [T] each tied position's tie group,
    ``row`` [T] its draw."""

    at: np.ndarray
    first: np.ndarray
    last: np.ndarray
    group: np.ndarray
    row: np.ndarray

    @classmethod
    def find(cls, s: np.ndarray) -> Ties | None:
        D, n = s.shape
        same_as_prev = np.zeros((D, n), dtype=bool)
        np.equal(s[:, 1:], s[:, :-1], out=same_as_prev[:, 1:])
        if not same_as_prev.any():
            return None
        tied = same_as_prev.copy()
        tied[:, :-1] |= same_as_prev[:, 1:]
        at = np.flatnonzero(tied)
        starts = ~same_as_prev.ravel()[at]
        first = np.flatnonzero(starts)
        last = np.append(first[1:], len(at)) - 1
        return cls(at, first, last, np.cumsum(starts) - 1, at // n)


def pair_counts(ranks: Ranks, w: np.ndarray | None, labels_per_draw: bool) -> np.ndarray:
    """Weighted Mann-Whitney pair counts [R, G, G, D] of one class from its ``ranks``, under
    the R sets of sample weights ``w`` [R, n] (None: unit weights, R = 1)."""
    if w is None:
        return ranks.twice_unit_pairs()[None] / 2.0
    if labels_per_draw:
        raise InputError("weight: labels that differ by draw take no sample weights")
    pos, neg, below, upto = ranks.compact
    R, G, D = len(w), len(ranks.running), ranks.D
    exact = w.dtype.kind in "iu"
    acc = np.int64 if exact else np.float64

    def weights_of(ids: np.ndarray) -> np.ndarray:  # [R, D * m], rows of ids one after another
        return np.take(w, ids.ravel(), axis=1)

    twice = np.empty((R, G, G, D))  # below + upto, weighted
    for h in range(G):
        N = neg[h].shape[1]
        # running weight of group h's negatives, 0 first, per draw: row d at d * (N + 1)
        cum = np.zeros((R, D, N + 1), dtype=acc)
        np.cumsum(weights_of(neg[h]).reshape(R, D, N), axis=-1, dtype=acc, out=cum[:, :, 1:])
        cum = cum.reshape(R, D * (N + 1))
        offset = (np.arange(D) * (N + 1))[:, None]
        for j in range(G):
            lo, hi = below[j][h], upto[j][h]
            owed = np.take(cum, (lo + offset).ravel(), axis=1)
            if hi is lo:  # no ties
                owed *= 2
            else:
                owed += np.take(cum, (hi + offset).ravel(), axis=1)
            u_pos = weights_of(pos[j])
            dot = (u_pos * owed) if exact else u_pos.astype(acc, copy=False) * owed
            twice[:, j, h] = dot.reshape(R, D, -1).sum(axis=-1)
    return twice / 2.0
