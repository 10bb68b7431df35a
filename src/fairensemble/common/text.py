"""The words and numbers messages, tables and figures are written with, one way each: numbers
with their intervals, shares as written, a grid point's label, a grid value as a table holds
it, a list cut short, and close matches for a misspelt name."""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any

NA = "n/a"


def json_number(x: Any) -> float | None:
    """A number as JSON holds it: None where it is missing, NaN or infinite."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def number(x: float | None, digits: int = 3, signed: bool = False) -> str:
    """``x`` with ``digits`` decimals (``+`` in front of a positive one when ``signed``);
    ``n/a`` where it is missing or NaN."""
    if json_number(x) is None:
        return NA
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def interval(ci: Sequence[float | None] | None, digits: int = 3) -> str:
    """`` [lo, hi]`` of a 95 % interval, or nothing where there is none."""
    if ci is None or ci[0] is None or ci[1] is None:
        return ""
    return f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def with_interval(x: float | None, ci: Sequence[float | None] | None, digits: int = 3,
                  signed: bool = False) -> str:
    """``0.812 [0.801, 0.823]``: a value and its interval."""
    return number(x, digits, signed) + ("" if json_number(x) is None else interval(ci, digits))


def share(x: Any) -> str:
    """A share (or another coordinate) as written: 0.75 stays 0.75, 0.3 is not
    0.30000000000000004, labels stay as they are."""
    return f"{round(x, 6):g}" if isinstance(x, float) else str(x)


def grid_value(value: Any) -> Any:
    """A grid field's value as a table holds it: scalars as they are, lists and mappings as a
    compact label (``[init, order]``), so tables can compare and group by it."""
    if isinstance(value, list):
        return "[" + ", ".join(str(grid_value(v)) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {grid_value(v)}" for k, v in value.items()) + "}"
    return value


def point_label(point: dict[str, Any], short: bool = False, empty: str = "") -> str:
    """A grid point in words, ``dataset.label_noise=0.2, train.mitigation=reweight``;
    ``short`` keeps each field's last name (``label_noise=0.2``, for figure titles);
    ``empty`` stands for the one point of a run without a grid."""
    text = ", ".join(f"{k.split('.')[-1] if short else k}={grid_value(v)}"
                     for k, v in point.items())
    return text or empty


def point_title(point: dict[str, Any]) -> str:
    """A grid point as a figure's title holds it (short names; "all cells" without a grid)."""
    return point_label(point, short=True, empty="all cells")


def preview_names(names: Sequence[Any], limit: int = 12) -> str:
    """The first ``limit`` names, comma-separated, with how many there are in all beyond it."""
    shown = ", ".join(str(n) for n in list(names)[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def close_matches(name: str, choices: Sequence[str]) -> str:
    """``"; did you mean 'a' or 'b'?"`` for names like ``name`` (case-insensitive first)."""
    choices = list(choices)
    same = [c for c in choices if c.lower() == name.lower()]
    within = [c for c in choices if name.lower() in c.lower()][:3] if len(name) >= 3 else []
    near = same or within or difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if not near:
        lowered = {c.lower(): c for c in choices}
        near = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), 3)]
    return f"; did you mean {' or '.join(repr(c) for c in near)}?" if near else ""


__all__ = ["NA", "close_matches", "grid_value", "interval", "json_number", "number", "point_label",
           "point_title", "preview_names", "share", "with_interval"]
