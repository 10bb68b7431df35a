"""The report's figures and report.html: the figures draw exactly the summary's intervals, the
summary is real sortable HTML tables, every figure says what it shows. Runs made without
training (``fake_runs``)."""

from __future__ import annotations

import itertools
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_runs import make_run_dir
from scipy import stats

from fairensemble import build_report
from fairensemble.evaluation import evaluate_run, load_run, summarize
from fairensemble.evaluation.intervals import boot_columns
from fairensemble.report import plots
from fairensemble.sweep import RunStore


def _summary(run: Path) -> tuple[dict, object, pd.DataFrame, pd.DataFrame | None]:
    _, plan = load_run(run)
    ev = evaluate_run(plan, RunStore(run))
    return summarize(ev.table, plan, ev.boot), plan, ev.table, ev.boot


def _drawn_intervals(fig) -> dict[str, dict[float, tuple[float, float]]]:
    """What a figure drew as intervals, read back from its artists: per collection id, the
    segments' x -> (lower end, upper end)."""
    out: dict[str, dict[float, tuple[float, float]]] = {}
    for ax in fig.axes:
        for coll in ax.collections:
            gid = coll.get_gid()
            if gid and gid.startswith("interval "):
                assert gid not in out, f"{gid} drawn twice"
                out[gid] = {float(seg[0, 0]): (float(seg[0, 1]), float(seg[1, 1]))
                            for seg in coll.get_segments()}
    return out


def _expected(levels: list[dict], x: str, **where) -> dict[float, tuple[float, float]]:
    """The summary's intervals of the levels matching ``where``, by ``x``."""
    rows = [r for r in levels if all(r[k] == v for k, v in where.items())]
    return {float(r[x]): tuple(r["ci95"]) for r in rows if r["ci95"][0] is not None}


@pytest.mark.parametrize("ci, replicates", [("replicates", 3), ("bootstrap", 1),
                                            ("replicates", 1)])
def test_the_figures_error_bars_are_exactly_the_summarys_intervals(tmp_path, ci, replicates):
    run = make_run_dir(tmp_path / "run", replicates=replicates,
                       analysis={"ci": ci, "n_boot": 40, "post": []})
    summary, plan, table, boot = _summary(run)
    E = summary["members"]
    point = summary["grid_points"][0]
    levels = point["levels"]

    # the summary's own intervals are the t-interval over replicates (scipy's) or the
    # bootstrap percentiles of the resamples, and none at all from one replicate alone
    at = table[(table["metric"] == "accuracy") & (table["group"] == "F") & (table["k"] == E)
               & (table["ratio"] == 0.5)]
    got = _expected(levels, "k", ratio=0.5, group="F").get(E)
    if ci == "bootstrap":
        b = boot[(boot["metric"] == "accuracy") & (boot["group"] == "F") & (boot["k"] == E)
                 & (boot["ratio"] == 0.5)]
        want = tuple(np.percentile(b[boot_columns(b)].to_numpy()[0], [2.5, 97.5]))
        assert got == pytest.approx(want, abs=1e-12)
        assert _expected(levels, "k", ratio=0.5, group="F").keys() == {1, E}  # k=2: no resamples
    elif replicates == 3:
        want = stats.t.interval(0.95, 2, loc=at["mean"].mean(), scale=stats.sem(at["mean"]))
        assert got == pytest.approx(want, abs=1e-12)
    else:
        assert got is None and all(r["ci95"] == [None, None] for r in levels)

    fig, _ = plots.metric_vs_k(summary, plan)
    drawn = _drawn_intervals(fig)
    for label in ["M", "F", "overall"]:
        want = _expected(levels, "k", ratio=0.5, group=label)
        assert drawn.get(f"interval {label}", {}) == want, label
    fig, _ = plots.metric_vs_ratio(summary, plan)
    drawn = _drawn_intervals(fig)
    for label in ["M", "F", "overall"]:
        assert drawn.get(f"interval {label} k={E}", {}) == _expected(levels, "ratio", k=E,
                                                                      group=label)
        assert f"interval {label} k=1" not in drawn  # the ensemble's bars only
    fig, _ = plots.gap_vs_ratio(summary, plan)
    drawn = _drawn_intervals(fig)
    for k in (1, E):
        assert drawn.get(f"interval gap k={k} all cells", {}) == _expected(levels, "ratio", k=k,
                                                                           group="gap")
    if replicates == 1 and ci == "replicates":
        assert not drawn


class _Report(HTMLParser):
    """Tables (caption, header cells, rows of (text, data-sort)), figures (caption, whether
    an image is inside) and what sits inside <pre> or pulls an external asset."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self.figures: list[dict] = []
        self.stack: list[str] = []
        self.external: list[str] = []
        self.scripts = 0
        self._cell: list | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "link", "img") and any(
                (attrs.get(a) or "").startswith(("http", "//")) for a in ("src", "href")):
            self.external.append(tag)
        self.scripts += tag == "script"
        if tag == "table":
            self.tables.append({"caption": "", "headers": [], "rows": [],
                                "in_pre": "pre" in self.stack,
                                "sortable": "sortable" in (attrs.get("class") or "")})
        elif tag == "tr" and self.stack and "tbody" in self.stack:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th", "caption", "figcaption"):
            self._cell = [tag, "", attrs.get("data-sort")]
        elif tag == "figure":
            self.figures.append({"caption": "", "img": False})
        elif tag == "img" and self.figures:
            self.figures[-1]["img"] = True
        if tag not in ("img", "meta", "br"):
            self.stack.append(tag)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if self._cell is not None and tag == self._cell[0]:
            kind, text, sort = self._cell
            text = " ".join(text.split())
            if kind == "th":
                self.tables[-1]["headers"].append(text)
            elif kind == "td":
                self.tables[-1]["rows"][-1].append((text, sort))
            elif kind == "caption":
                self.tables[-1]["caption"] = text
            else:
                self.figures[-1]["caption"] = text
            self._cell = None
        while self.stack and self.stack.pop() != tag:
            pass


def test_report_html_has_the_summary_as_sortable_tables_and_every_figure_captioned(tmp_path):
    run = make_run_dir(tmp_path / "run", grid={"dataset.label_noise": [0.0, 0.2]})
    build_report(run)
    text = (run / "report.html").read_text()
    summary = json.loads((run / "summary.json").read_text())
    page = _Report()
    page.feed(text)
    E, pm = summary["members"], summary["primary_metric"]

    assert not page.external and "┃" not in text  # one self-contained file, no terminal art
    assert page.tables and not any(t["in_pre"] for t in page.tables)
    assert all(t["sortable"] for t in page.tables) and "cellIndex" in text

    main = next(t for t in page.tables if t["caption"].startswith(f"fake: {pm} by share of F"))
    assert main["headers"] == [
        "label_noise", "min-gap mix (k=1)", f"min-gap mix (k={E})", "min gap (k=1)",
        f"min gap (k={E})", "max-overall mix (k=1)", f"max-overall mix (k={E})",
        f"max overall {pm} (k=1)", f"max overall {pm} (k={E})", "positive-sum mixes (means)",
        "positive-sum mixes (95% CI)"]
    assert len(main["rows"]) == 2
    for row, point in zip(main["rows"], summary["grid_points"]):
        cell = dict(zip(main["headers"], row))
        best = point["optimal"][f"k={E}"]
        assert cell[f"min gap (k={E})"] == (f"{best['gap_min_value']:.3f}",
                                            f"{best['gap_min_value']:.12g}")
        assert float(cell[f"max-overall mix (k={E})"][0]) == best["overall_best_ratio"]
        assert cell["label_noise"][0] == str(point["point"]["dataset.label_noise"])

    fairness = next(t for t in page.tables if t["caption"].startswith("fairness measures"))
    assert fairness["headers"][:4] == ["label_noise", "measure", "min mix (k=1)",
                                       f"min mix (k={E})"]
    assert len(fairness["rows"]) == 2 * len(summary["fairness_measures"])
    assert [r[1][0] for r in fairness["rows"][:3]] == ["gap", "spd", "eod"]

    pngs = sorted((run / "figures").glob("*.png"))
    assert len(page.figures) == len(pngs) >= 5
    for fig in page.figures:
        caption = fig["caption"]
        assert fig["img"] and caption.startswith("Figure ")
        assert len(caption.split()) >= 15, caption  # says what it shows, not a file name
        assert not any(p.stem.replace("_", " ") == caption for p in pngs)
    k_figure = next(f["caption"] for f in page.figures if "ensemble size k (log scale)" in
                    f["caption"])
    assert "95 % t-intervals over 3 replicates" in k_figure


def test_every_figure_title_fits_the_figure_and_clears_its_panels(tmp_path):
    """The long titles ("Who benefits from the ensemble: ...") stay inside the figure, and a
    figure's title does not overlap the titles of its panels."""
    metrics = ["accuracy", "auc", "spd", "disagreement"]
    runs = [make_run_dir(tmp_path / "one", metrics=metrics),
            make_run_dir(tmp_path / "two", grid={"dataset.label_noise": [0.0, 0.2]},
                         metrics=metrics)]
    drawers = [plots.metric_vs_k, plots.gap_vs_k, plots.metric_vs_ratio, plots.gap_vs_ratio,
               plots.optimal_ratio, plots.gain_vs_diversity]
    checked = 0
    for draw, run in itertools.product(drawers, runs):
        summary, plan, _, _ = _summary(run)
        drawn = draw(summary, plan)
        if drawn is None:
            continue
        fig = plots.lay_out(drawn[0])
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        width, height = fig.bbox.width, fig.bbox.height

        def inside(box, width=width, height=height) -> bool:
            return box.x0 >= 0 and box.x1 <= width and box.y0 >= 0 and box.y1 <= height

        titles = [ax.title.get_window_extent(renderer) for ax in fig.axes
                  if ax.get_visible() and ax.get_title()]
        assert all(inside(t) for t in titles), draw.__name__
        if fig.get_suptitle():
            box = fig._suptitle.get_window_extent(renderer)
            assert inside(box), (draw.__name__, box, width)
            assert not any(box.overlaps(t) for t in titles), draw.__name__
        plots.plt.close(fig)
        checked += 1
    assert checked == 2 * len(drawers) - 1  # the optimal mix needs a difficulty axis
