"""Raters' votes per row and the label they elect: what ``dataset.annotations`` (one column per
rater), ``dataset.soft_label`` (the share of raters who gave the positive class, with
``dataset.raters`` counting them) and the synthetic source's simulated raters turn into.

A row's votes are its counts per class, float32 [n, C] (shares summing to 1 where a soft label
has no rater count: ``counts`` False). The **majority** label is the class with the most votes;
a tie is broken by a fair coin among the tied classes, drawn once per row from a fixed stream
(``tie_coins``: row i of a table as read always gets the same coin), so the same file gives the
same labels on every run and machine. ``metrics.raters`` computes the floor under the same
rule. Rows without a vote have no majority (-1).

With a ``target`` column as well, the target wins: members train and are scored on it, and the
votes only measure disagreement (the floor stays the majority's, shown beside). The votes
travel with the splits (``Split.votes``) into each cell's record (``votes_test``), so
evaluation reads them from the run directory alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fairensemble.common.errors import DataError
from fairensemble.common.seeds import rng_for
from fairensemble.common.text import preview_names

if TYPE_CHECKING:
    import pandas as pd

TIE_STREAM = ("raters", "ties")  # the fixed stream of tie-breaking coins


def tie_coins(n: int, seed: int = 0) -> np.ndarray:
    """One uniform [0, 1) coin per row, the same for the same row position and ``seed``."""
    return rng_for(seed, *TIE_STREAM).random(n)


def majority(votes: np.ndarray, coins: np.ndarray) -> np.ndarray:
    """The class with the most votes per row (int64 [n]; -1 where a row has none); a tie goes
    to tied class number floor(coin x number tied), counting the tied classes in class
    order: a fair coin among them."""
    v = np.asarray(votes, dtype=np.float64)
    top = v.max(axis=1, keepdims=True)
    tied = (v == top) & (top > 0)
    n_tied = tied.sum(axis=1)
    pick = np.minimum(np.floor(np.asarray(coins) * np.maximum(n_tied, 1)), n_tied - 1)
    rank = np.cumsum(tied, axis=1) - 1
    out = np.argmax(tied & (rank == pick[:, None]), axis=1).astype(np.int64)
    out[n_tied == 0] = -1
    return out


def count_votes(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Votes float32 [n, C] from rater codes int [n, R] (-1: that rater did not label the
    row)."""
    out = np.zeros((len(codes), n_classes), dtype=np.float32)
    for c in range(n_classes):
        out[:, c] = (codes == c).sum(axis=1)
    return out


def soft_votes(frame: pd.DataFrame, column: str, raters: str | int | None, rows: np.ndarray,
               source: str) -> tuple[np.ndarray, bool]:
    """Votes [n, 2] of a soft-label column (the share of raters who gave the positive class)
    for every row of ``frame``: counts [R - k, k] with k = round(share x R) where ``raters``
    gives R (a column, or one number for every row), else the shares [1 - p, p] (``counts``
    False). Only ``rows`` (bool [n]) are checked and filled; a share outside [0, 1], text, or a
    rater count that is not a whole number >= 1 is a one-line ``DataError``."""
    import pandas as pd

    share = _numbers(frame[column], rows, f"soft label column {column!r}", source,
                     "the share of raters who gave the positive class, 0 to 1")
    bad = rows & ((share < 0) | (share > 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        values = pd.unique(share[bad])
        raise DataError(f"{source}: soft label column {column!r} holds {_shown(values)} outside "
                        f"[0, 1] (first in data row {i + 1}); expected the share of raters "
                        "who gave the positive class")
    votes = np.zeros((len(frame), 2), dtype=np.float32)
    if raters is None:
        votes[rows, 1] = share[rows]
        votes[rows, 0] = 1.0 - share[rows]
        return votes, False
    if isinstance(raters, str):
        R = _numbers(frame[raters], rows, f"raters column {raters!r}", source,
                     "how many raters labelled the row, a whole number >= 1")
        wrong = rows & ~((R >= 1) & (R == np.round(R)))
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            raise DataError(f"{source}: raters column {raters!r} holds {_shown(R[wrong])} (first"
                            f" in data row {i + 1}); expected how many raters labelled the row, "
                            "a whole number >= 1")
    else:
        R = np.full(len(frame), float(raters))
    k = np.round(share * R)
    votes[rows, 1] = k[rows]
    votes[rows, 0] = (R - k)[rows]
    return votes, True


def _numbers(values: pd.Series, rows: np.ndarray, what: str, source: str, expected: str
             ) -> np.ndarray:
    """A column as float64 (NaN where missing); a missing value or text among ``rows`` is one
    line."""
    import pandas as pd

    out = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    text = rows & values.notna().to_numpy() & np.isnan(out)
    if text.any():
        i = int(np.flatnonzero(text)[0])
        raise DataError(f"{source}: {what} holds text {values.iloc[i]!r} (data row {i + 1}); "
                        f"expected {expected}")
    empty = rows & np.isnan(out)
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise DataError(f"{source}: {what} is empty in data row {i + 1}; expected {expected}")
    return out


def _shown(values: Any) -> str:
    vals = list(dict.fromkeys(np.asarray(values).tolist()))
    return preview_names([f"{v:g}" if isinstance(v, float) else repr(v) for v in vals], 5)


def describe(cfg: Any, votes: np.ndarray, counts: bool, rows: np.ndarray) -> dict[str, Any]:
    """What a report says about the raters: where the votes come from, whether they are counts,
    what the members are scored on and train on, and how many raters a used row had."""
    R = votes[rows].sum(axis=1)
    rated = R > 0
    source = "annotations" if cfg.annotations else "soft_label"
    out: dict[str, Any] = {
        "source": source,
        "columns": list(cfg.annotations) if cfg.annotations else [cfg.soft_label],
        "counts": bool(counts),
        "scored_on": "target" if cfg.target is not None else "majority",
        "train_on": cfg.train_on,
        "rated_rows": int(rated.sum()),
    }
    if counts and rated.any():
        out["raters_per_row"] = {"mean": float(R[rated].mean()), "min": int(R[rated].min()),
                                 "max": int(R[rated].max())}
    return out


__all__ = ["count_votes", "describe", "majority", "soft_votes", "tie_coins"]
