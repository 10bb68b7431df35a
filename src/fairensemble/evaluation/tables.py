"""The tidy tables every analysis reads: a cell's rows with its coordinates, the mix column,
a grid point's rows, coordinates as JSON holds them, which way a metric is better."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fairensemble import metrics as M
from fairensemble.common.text import grid_value
from fairensemble.sweep.plan import Cell, Plan


def with_coords(table: pd.DataFrame, cell: Cell) -> pd.DataFrame:
    df = table.copy()
    for key, value in reversed(cell.point.items()):
        df.insert(0, key, grid_value(value))
    pos = len(cell.point)
    df.insert(pos, "ratio", cell.ratio)
    df.insert(pos + 1, "replicate", cell.replicate)
    if cell.mix is not None:
        df.insert(pos, "mix", _mix_label(cell.mix))
    return df


def _mix_label(mix: dict[str, float]) -> str:
    return ",".join(f"{g}={s:g}" for g, s in mix.items())


def grid_fields(plan: Plan) -> list[str]:
    return list(plan.cfg.grid)


def mix_column(table: pd.DataFrame) -> str:
    return "mix" if "mix" in table.columns else "ratio"


def direction(metric: str) -> str:
    """"higher", "lower" or "neither": which way a metric is better (the registry's word)."""
    return M.get(metric).direction


def point_rows(table: pd.DataFrame, fields: list[str], point: dict[str, Any]) -> pd.DataFrame:
    """The rows of ``table`` at grid point ``point`` (its ``fields`` as tables hold them)."""
    mask = np.ones(len(table), dtype=bool)
    for f in fields:
        mask &= (table[f] == grid_value(point[f])).to_numpy()
    return table[mask]


def coord_value(x: Any) -> Any:
    """A mix coordinate as JSON and dict keys hold it: numbers as float, labels as they are."""
    return float(x) if isinstance(x, (int, float, np.floating, np.integer)) else x
