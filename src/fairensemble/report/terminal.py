"""What the command line prints: the summary tables of a run and what ``recommend`` found,
from the same tables and parts report.html renders."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from fairensemble.report.parts import any_recommendation_parts, difficulty_parts, raters_parts
from fairensemble.report.plots import one_mix
from fairensemble.report.tables import (
    Tabular,
    fairness_table,
    groups_tabular,
    levers_tabular,
    summary_table,
)


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=120)
    console.print(summary_table(summary))
    fairness = fairness_table(summary)
    if fairness is not None:
        console.print(fairness)
    levers = levers_tabular(summary)
    if levers is not None:
        console.print(levers.rich())
    for part in parts_rich(difficulty_parts(summary) + raters_parts(summary)):
        console.print(part)
    if one_mix(summary):  # the tables above say little about the groups themselves
        console.print(groups_tabular(summary).rich())


def parts_rich(parts: list[str | Tabular]) -> list[Any]:
    """Headlines (Text) and tables for the terminal (``_parts_html``'s twin)."""
    return [part.rich() if isinstance(part, Tabular) else Text(part) for part in parts]


def print_parts(parts: list[str | Tabular], console: Console | None) -> None:
    console = console or Console(width=120)
    for part in parts_rich(parts):
        console.print(part)


def print_recommendation(rec: dict[str, Any], console: Console | None = None) -> None:
    """What ``recommend`` found (a mix, a budget, the levers), for the terminal."""
    print_parts(any_recommendation_parts(rec), console)
