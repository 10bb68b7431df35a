"""Write a run's outputs from what the analysis computed: metrics.parquet, summary.json, the
figures and report.html. Nothing is evaluated or fitted here (``pipeline.outputs`` does that
first); this module renders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairensemble.common.files import atomic_write_text, write_json, write_parquet
from fairensemble.report.html import render_html
from fairensemble.report.plots import (
    Drawn,
    all_figures,
    budget_share_figure,
    curves_fit_figure,
    learning_curves_figure,
    pareto_figure,
    save_figure,
)
from fairensemble.sweep.plan import Plan

# the file in a run directory that holds what `recommend` found
RECOMMENDATION = "recommendation.json"


def write_report(out: str | Path, table: pd.DataFrame, summary: dict[str, Any], plan: Plan, *,
                 preview: dict[str, np.ndarray] | None = None,
                 recommendation: dict[str, Any] | None = None,
                 curves: list[dict[str, Any]] | None = None) -> list[Drawn]:
    """Write metrics.parquet (``table``), summary.json, the figures and report.html into
    ``out``; ``preview``: the data sample the data figure draws; ``recommendation``: what
    ``recommend`` found; ``curves``: the learning curves fitted to the run. Returns the
    figures drawn."""
    out = Path(out)
    write_parquet(out / "metrics.parquet", table)
    write_json(out / "summary.json", summary)
    figures = all_figures(summary, plan, out / "figures", preview)
    if recommendation is not None and recommendation.get("points"):
        fig, caption = pareto_figure(recommendation)
        figures.append(Drawn(save_figure(fig, out / "figures" / "pareto.png"), caption))
    if curves:
        drawers = [("learning_curves", learning_curves_figure),
                   ("learning_curves_fit", curves_fit_figure)]
        if recommendation is not None and recommendation.get("curves"):
            drawers.append(("budget_share", budget_share_figure))
        for name, draw in drawers:
            fig, caption = draw(curves)
            figures.append(Drawn(save_figure(fig, out / "figures" / f"{name}.png"), caption))
    atomic_write_text(out / "report.html",
                      render_html(plan.cfg, summary, figures, recommendation))
    return figures


def read_recommendation(root: str | Path) -> dict[str, Any] | None:
    """What ``recommend`` wrote into a run directory, if anything."""
    path = Path(root) / RECOMMENDATION
    return json.loads(path.read_text()) if path.is_file() else None


__all__ = ["RECOMMENDATION", "read_recommendation", "write_report"]
