"""95 % intervals, defined once for everything that reports one: the summary, ``recommend`` and
the figures (which draw exactly the intervals the summary reports).

Two kinds, as ``analysis.ci`` names them:

- ``"replicates"``: the t-interval of the mean of the replicates' values,
  :math:`\\bar x \\pm t_{0.975,\\, n-1}\\, s / \\sqrt n` (none with fewer than two replicates);
- ``"bootstrap"``: the 2.5th and 97.5th percentiles of the values of the bootstrap resamples
  of the test set (each resample's value the mean over replicates), which needs no replicates.

An interval is ``(lo, hi)``, or ``(None, None)`` where there is none (one replicate, an
undefined value). The values an interval rests on are *paired* across keys (mixes, ensemble
sizes): index i is the same replicate, or the same resample, everywhere, so differences can be
taken value by value (``samples``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import stdtrit

from fairensemble.common.errors import InputError

KINDS = ("replicates", "bootstrap")
Interval = tuple[float | None, float | None]
NONE: Interval = (None, None)


def t_interval(values: np.ndarray) -> Interval:
    """The 95 % t-interval of the mean of replicate values (none without two of them)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2 or np.isnan(values).any():
        return NONE
    half = stdtrit(n - 1, 0.975) * values.std(ddof=1) / np.sqrt(n)
    m = values.mean()
    return float(m - half), float(m + half)


def percentile_interval(values: np.ndarray) -> Interval:
    """The 2.5 and 97.5 percentiles of bootstrap values."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2 or np.isnan(values).any():
        return NONE
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def interval95(values: np.ndarray, kind: str) -> Interval:
    """The 95 % interval of ``values`` of one ``kind`` (see the module's docstring)."""
    if kind not in KINDS:
        raise InputError(f"kind: expected one of {KINDS}, got {kind!r}")
    return percentile_interval(values) if kind == "bootstrap" else t_interval(values)


def kind_of(boot: pd.DataFrame | None) -> str:
    """The kind of interval a run's evaluation supports: bootstrap where it has resamples."""
    return "bootstrap" if boot is not None else "replicates"


def boot_columns(boot: pd.DataFrame) -> list[str]:
    """The resample columns (b0, b1, ...) of a bootstrap table."""
    return [c for c in boot.columns if c.startswith("b") and c[1:].isdigit()]


def samples(frame: pd.DataFrame, by: Sequence[str], kind: str) -> dict[Any, np.ndarray]:
    """The values the interval of each ``by`` key rests on, paired across keys. ``kind``
    "replicates": ``frame`` holds metrics rows; the ``mean`` of each of the key's rows in
    replicate order (one per replicate). "bootstrap": ``frame`` holds bootstrap rows; one value
    per resample, the mean over the key's rows (replicates) of that resample's column. Keys
    are tuples of the ``by`` columns' values (scalars for one column)."""
    by = list(by)
    key = by[0] if len(by) == 1 else by
    if kind == "replicates":
        ordered = frame.sort_values("replicate", kind="stable")
        return {k: part["mean"].to_numpy(dtype=float)
                for k, part in ordered.groupby(key, sort=False)}
    cols = boot_columns(frame)
    return {k: part[cols].to_numpy(dtype=float).mean(axis=0)
            for k, part in frame.groupby(key, sort=False)}


def describe(kind: str, replicates: int) -> str:
    """A summary's intervals in words (captions, the report)."""
    if kind == "bootstrap":
        return "95 % bootstrap percentile intervals over resamples of the test set"
    if replicates < 2:
        return "no intervals (one replicate; analysis.ci: bootstrap gives them)"
    return f"95 % t-intervals over {replicates} replicates"
