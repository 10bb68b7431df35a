"""Checks of imported predictions: probabilities (or logits turned into them) and the groups
the attribute columns make."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fairensemble.common.errors import DataError
from fairensemble.data.frame import JOIN, group_name
from fairensemble.interop.format import MAX_GROUPS, SUM_TOLERANCE, small_int

# ----------------------------------------------------------------------------- probabilities


def _softmax(columns: list[np.ndarray]) -> list[np.ndarray]:
    top = np.maximum.reduce(columns)
    exps = [np.exp(c.astype(np.float64) - top) for c in columns]
    total = np.add.reduce(exps)
    return [(e / total).astype(np.float32) for e in exps]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def check_probabilities(columns: list[np.ndarray], names: list[str], logits: bool,
                        where: Callable[[int], str], source: str | None = None
                        ) -> list[np.ndarray]:
    """Probability columns (one per class, or one ``p`` of the positive class) checked, or
    turned into probabilities when ``logits``: float32, the classes' columns in order (two for
    a single ``p``). ``where(i)`` names the position of the i-th value in an error, ``source``
    (a file) starts it."""
    head = f"{source}: " if source else ""
    for col, name in zip(columns, names):
        bad = np.flatnonzero(~np.isfinite(col))
        if len(bad):
            value = "NaN" if np.isnan(col[bad[0]]) else str(col[bad[0]])
            raise DataError(f"{head}{name}: {value} {where(int(bad[0]))}; expected a "
                            "probability")
    single = len(columns) == 1
    if logits:
        if single:
            p = _sigmoid(columns[0])
            return [1 - p, p]
        return _softmax(columns)
    hint = ("pass --logits (logits=True) to apply a sigmoid" if single else
            "pass --logits (logits=True) to apply a softmax")
    if not single:
        total = np.add.reduce([c.astype(np.float32, copy=False) for c in columns])
        off = np.flatnonzero(np.abs(total - 1) > SUM_TOLERANCE)
        if len(off):
            raise DataError(f"{head}{', '.join(names)}: the probabilities "
                            f"{where(int(off[0]))} sum to {float(total[off[0]]):.4g}, not 1 "
                            f"({len(off):,} such rows): logits or scores? {hint}")
    for col, name in zip(columns, names):
        out = np.flatnonzero((col < 0) | (col > 1))
        if len(out):
            raise DataError(f"{head}{name}: {float(col[out[0]]):g} {where(int(out[0]))} is not "
                            f"a probability (outside [0, 1]): logits? {hint}")
    if single:
        p = columns[0].astype(np.float32, copy=False)
        return [1 - p, p]
    return [c.astype(np.float32, copy=False) for c in columns]


# ----------------------------------------------------------------------------- groups


def name_groups(codes: list[np.ndarray], values: list[list[str]], attributes: list[str],
                order: list[str] | None = None) -> tuple[np.ndarray, list[str], list[list[str]]]:
    """Group codes, names and per-group attribute values from each attribute's codes and
    value names. Several attributes make every combination present a group, named
    ``"a & b"`` (``OTHER`` when every value is ``OTHER``), as the data sources name them.
    Groups are sorted by name, or follow ``order`` where it names them."""
    import pandas as pd

    if len(codes) == 1:
        combined, tuples = codes[0], [(v,) for v in values[0]]
    else:
        key = np.zeros(len(codes[0]), dtype=np.int64)
        for c, v in zip(codes, values):
            key = key * len(v) + c
        combined, uniq = pd.factorize(key)
        tuples = []
        for k in uniq.tolist():
            parts = []
            for v in reversed(values):
                k, r = divmod(k, len(v))
                parts.append(v[r])
            tuples.append(tuple(reversed(parts)))
    names = [group_name(t) for t in tuples]
    present = dict.fromkeys(names)
    if len(present) > MAX_GROUPS:
        raise DataError(f"group column(s) {', '.join(attributes)}: {len(present):,} distinct "
                        f"groups; is that a group? name the group columns with --group")
    if len(present) != len(names):  # two value tuples with one name ("a & b" & "c", say)
        raise DataError(f"group columns {', '.join(attributes)}: values containing "
                        f"{JOIN.strip()!r} make two combinations share a name")
    ranked = [g for g in (order or []) if g in present]
    ranked += sorted(g for g in present if g not in ranked)
    index = {g: i for i, g in enumerate(ranked)}
    lookup = np.array([index[n] for n in names], dtype=np.int64)
    group_values = [list(tuples[names.index(g)]) for g in ranked] if len(codes) > 1 else []
    return lookup.astype(small_int(len(ranked)))[combined], ranked, group_values


# ----------------------------------------------------------------------------- the long form
