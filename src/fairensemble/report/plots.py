"""Figures of a run, each with a caption saying what it shows: metric vs k, metric vs mix, gap
vs k, gap vs mix, optimal mix vs difficulty, gain vs diversity, the synthetic data, and the
candidates of ``recommend``.

The curves are drawn from summary.json's ``levels`` (the primary metric per mix, label and k,
mean over replicates) and their intervals are exactly the summary's (``intervals.py``): each a
vertical segment from its lower to its upper end, none where the summary has none.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fairensemble.common.files import atomic_path
from fairensemble.common.text import grid_value, number, point_title
from fairensemble.evaluation.intervals import describe
from fairensemble.evaluation.tables import grid_fields
from fairensemble.sweep.plan import Plan

MAX_PANELS = 6
CHARS_PER_INCH = 11  # of an 11 pt title: where it wraps


@dataclass(frozen=True)
class Drawn:
    """A saved figure and its caption."""

    path: Path
    caption: str


def _panels(n: int, width: float = 4.0, height: float = 3.2):
    n = max(1, min(n, MAX_PANELS))
    cols = min(n, 3)
    width = max(width, 7.0 / cols)  # room for the title over a single panel
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _shown_points(plan: Plan) -> list[int]:
    n = len(plan.points)
    if n <= MAX_PANELS:
        return list(range(n))
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, MAX_PANELS)})


def _shown_note(plan: Plan) -> str:
    n = len(plan.points)
    return f" ({MAX_PANELS} of {n} grid points shown)" if n > MAX_PANELS else ""


def _colors(groups: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    out = {g: cmap(i) for i, g in enumerate(groups)}
    out["overall"] = "black"
    return out


def levels(point: dict[str, Any]) -> pd.DataFrame:
    """A grid point's ``levels`` from summary.json as a table: the mix column, group, k, mean,
    lo and hi (NaN where there is no interval)."""
    df = pd.DataFrame(point["levels"])
    ci = df.pop("ci95")
    df["lo"] = [np.nan if c[0] is None else c[0] for c in ci]
    df["hi"] = [np.nan if c[1] is None else c[1] for c in ci]
    df["mean"] = df["mean"].astype(float)
    return df


def _curve(ax, rows: pd.DataFrame, x: str, name: str, color: Any, intervals: bool = True,
           **style: Any) -> pd.DataFrame:
    """The means joined, and (``intervals``) each interval drawn exactly as the summary has
    it: a vertical segment from lo to hi at its x (collection id ``interval <name>``).
    Returns the rows drawn."""
    rows = rows.sort_values(x) if x == "k" or rows[x].dtype.kind in "fi" else rows
    ax.plot(rows[x], rows["mean"], color=color, marker="o", ms=3, **style)
    has = rows["lo"].notna() & rows["hi"].notna()
    if intervals and has.any():
        bars = ax.vlines(rows.loc[has, x], rows.loc[has, "lo"], rows.loc[has, "hi"],
                         color=color, lw=1.0, alpha=0.6)
        bars.set_gid(f"interval {name}")
        return rows
    return rows.assign(lo=np.nan, hi=np.nan)


def _fit_y(ax, drawn: list[pd.DataFrame]) -> bool:
    """Y limits that keep the curves readable: every mean, and intervals as far as one span of
    the means (at least 0.05) beyond them; True when an interval runs past the panel's edge
    (few replicates give wide t-intervals)."""
    both = pd.concat(drawn)
    means = both["mean"].dropna()
    if means.empty:
        return False
    lo, hi = means.min(), means.max()
    reach = max(hi - lo, 0.05)
    low = min(lo, both["lo"].min(skipna=True)) if both["lo"].notna().any() else lo
    high = max(hi, both["hi"].max(skipna=True)) if both["hi"].notna().any() else hi
    bottom, top = max(low, lo - reach), min(high, hi + reach)
    margin = 0.05 * (top - bottom or reach)
    ax.set_ylim(bottom - margin, top + margin)
    return bool(low < bottom or high > top)


def _cut_note(cut: bool) -> str:
    return " Bars that leave a panel are cut at its edge." if cut else ""


def _mix_closest_to_balanced(xs: list[Any], xcol: str) -> Any:
    """The ratio closest to 0.5, or the middle explicit mix."""
    if xcol == "ratio":
        return xs[int(np.argmin(np.abs(np.asarray(xs, dtype=float) - 0.5)))]
    return xs[len(xs) // 2]


def _log_k_axis(ax, ks: list[int]) -> None:
    ax.set_xscale("log")
    ax.set_xticks(ks)
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())


def one_mix(summary: dict[str, Any]) -> bool:
    """Every grid point has one training mix (an import without a ratio column, say): nothing
    to plot or tabulate against the mix."""
    return all(len(p["verdicts"]) <= 1 for p in summary["grid_points"])


def metric_vs_k(summary: dict[str, Any], plan: Plan) -> tuple[Figure, str]:
    """The primary metric per group and overall against k, at the mix closest to balanced."""
    pm, xcol = summary["primary_metric"], summary["mix_column"]
    shown = _shown_points(plan)
    fig, axes = _panels(len(shown))
    cut = False
    for ax, pi in zip(axes, shown):
        point = summary["grid_points"][pi]
        df = levels(point)
        x0 = _mix_closest_to_balanced(list(dict.fromkeys(df[xcol])), xcol)
        df = df[df[xcol] == x0]
        colors = _colors(point["groups"])
        drawn = [_curve(ax, df[df["group"] == label], "k", label, colors[label], label=label,
                        ls="--" if label == "overall" else "-")
                 for label in [*point["groups"], "overall"]]
        cut |= _fit_y(ax, drawn)
        _log_k_axis(ax, sorted(df["k"].unique()))
        ax.set_title(f"{point_title(point['point'])}\n{xcol}={x0}", fontsize=9)
        ax.set_xlabel("ensemble size k")
        ax.set_ylabel(pm)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    _suptitle(fig, f"{pm} per group vs ensemble size")
    caption = (f"{pm} of each group and overall against the ensemble size k (log scale), at "
               f"the training mix closest to balanced (in each panel's title), one panel per "
               f"grid point{_shown_note(plan)}. Bars: {_intervals(summary)}.{_cut_note(cut)}")
    return fig, caption


def _intervals(summary: dict[str, Any]) -> str:
    words = describe(summary["intervals"], summary["replicates"])
    if summary["intervals"] == "bootstrap":
        words += f" (k=1 and k={summary['members']} only)"
    return words


def gap_vs_k(summary: dict[str, Any], plan: Plan) -> tuple[Figure, str]:
    """The gap against ensemble size, one line per training mix: does ensembling close it?"""
    pm, xcol = summary["primary_metric"], summary["mix_column"]
    shown = _shown_points(plan)
    fig, axes = _panels(len(shown))
    cmap = plt.get_cmap("coolwarm")
    for ax, pi in zip(axes, shown):
        point = summary["grid_points"][pi]
        df = levels(point)
        df = df[df["group"] == "gap"]
        xs = list(dict.fromkeys(df[xcol]))
        for i, x in enumerate(xs):
            rows = df[df[xcol] == x].sort_values("k")
            ax.plot(rows["k"], rows["mean"], marker="o", ms=3,
                    color=cmap(i / max(1, len(xs) - 1)), label=f"{x}")
        _log_k_axis(ax, sorted(df["k"].unique()))
        ax.set_title(point_title(point["point"]), fontsize=9)
        ax.set_xlabel("ensemble size k")
        ax.set_ylabel(f"gap in {pm}")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=6, ncol=2, title=xcol, title_fontsize=7)
    _suptitle(fig, "Gap vs ensemble size, one line per training mix")
    caption = (f"The gap in {pm} (best minus worst group) against the ensemble size k, one "
               f"line per training mix ({_xlabel(plan, xcol)}), one panel per grid point"
               f"{_shown_note(plan)}: does ensembling close the gap, and at which mixes?")
    return fig, caption


def metric_vs_ratio(summary: dict[str, Any], plan: Plan) -> tuple[Figure, str]:
    pm, xcol, E = summary["primary_metric"], summary["mix_column"], summary["members"]
    shown = _shown_points(plan)
    fig, axes = _panels(len(shown))
    cut = False
    for ax, pi in zip(axes, shown):
        point = summary["grid_points"][pi]
        df = levels(point)
        colors = _colors(point["groups"])
        # intervals of the ensemble only: the single model's would sit on top of them
        drawn = [_curve(ax, df[(df["group"] == label) & (df["k"] == k)], xcol,
                        f"{label} k={k}", colors[label], intervals=k == E, ls=ls,
                        label=f"{label} (k={k})")
                 for label in [*point["groups"], "overall"] for k, ls in ((1, ":"), (E, "-"))]
        cut |= _fit_y(ax, drawn)
        ax.set_title(point_title(point["point"]), fontsize=9)
        ax.set_xlabel(_xlabel(plan, xcol))
        ax.set_ylabel(pm)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    _suptitle(fig, f"{pm} per group vs training mix (dotted: 1 member, solid: {E} members)")
    caption = (f"{pm} of each group and overall against the training mix "
               f"({_xlabel(plan, xcol)}), for a single model (k=1, dotted) and the {E}-member "
               f"ensemble (solid), one panel per grid point{_shown_note(plan)}. "
               f"Bars (the ensemble's): {_intervals(summary)}.{_cut_note(cut)}")
    return fig, caption


def _xlabel(plan: Plan, xcol: str) -> str:
    if xcol == "ratio":
        return f"share of {plan.ratio_group.get(0)} in the training set"
    return "mix"


def gap_vs_ratio(summary: dict[str, Any], plan: Plan) -> tuple[Figure, str]:
    pm, xcol, E = summary["primary_metric"], summary["mix_column"], summary["members"]
    fig, axes = _panels(2 if E != 1 else 1, width=5.0, height=3.6)
    cmap = plt.get_cmap("viridis")
    n = len(plan.points)
    cut = False
    for ax, k in zip(axes, sorted({1, E})):
        drawn = []
        for pi, point in enumerate(summary["grid_points"]):
            df = levels(point)
            rows = df[(df["group"] == "gap") & (df["k"] == k)]
            color = cmap(pi / max(1, n - 1))
            drawn.append(_curve(ax, rows, xcol, f"gap k={k} {point_title(point['point'])}",
                                color, label=point_title(point["point"])))
            best = point["optimal"][f"k={k}"]
            if best["gap_min_ratio"] is not None:
                ax.plot([best["gap_min_ratio"]], [best["gap_min_value"]], marker="*", ms=14,
                        color=color, markeredgecolor="black")
        cut |= _fit_y(ax, drawn)
        ax.set_title(f"k={k}" + (" (single model)" if k == 1 else " (ensemble)"))
        ax.set_xlabel(_xlabel(plan, xcol))
        ax.set_ylabel(f"gap in {pm} (max - min over groups)")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7)
    _suptitle(fig, "Gap vs training mix; star = gap-minimising mix")
    caption = (f"The gap in {pm} (max minus min over groups) against the training mix "
               f"({_xlabel(plan, xcol)}), single model (k=1) and {E}-member ensemble, one line "
               f"per grid point; the star marks the gap-minimising mix. "
               f"Bars: {_intervals(summary)}.{_cut_note(cut)}")
    return fig, caption


def optimal_ratio(summary: dict, plan: Plan) -> tuple[Figure, str] | None:
    """The gap-minimising and best-overall share against the first numeric grid field (the
    difficulty), for k=1 and k=E; one panel per value of any other grid field."""
    fields = grid_fields(plan)
    pts = summary["grid_points"]
    numeric = [f for f in fields
               if all(isinstance(p["point"][f], (int, float)) for p in pts)]
    if not numeric or pts and not isinstance(pts[0]["optimal"]["k=1"]["gap_min_ratio"],
                                                 (int, float, type(None))):
        return None
    field = numeric[0]
    others = [f for f in fields if f != field]
    panels: dict[str, list[dict]] = {}
    for p in pts:
        key = ", ".join(f"{f.split('.')[-1]}={grid_value(p['point'][f])}" for f in others)
        panels.setdefault(key, []).append(p)
    E = plan.cfg.ensemble.members
    fig, axes = _panels(len(panels), width=5.0, height=3.8)
    for ax, (key, group) in zip(axes, list(panels.items())[:MAX_PANELS]):
        xs = [p["point"][field] for p in group]
        for k, ls in ((1, ":"), (E, "-")):
            opt = [p["optimal"][f"k={k}"] for p in group]
            ax.plot(xs, _nan([o["gap_min_ratio"] for o in opt]), ls=ls, marker="o",
                    color="tab:red", label=f"min gap, k={k}")
            ax.plot(xs, _nan([o["overall_best_ratio"] for o in opt]), ls=ls, marker="s",
                    color="tab:blue", label=f"best overall {plan.cfg.primary}, k={k}")
        ax.axhline(0.5, color="grey", lw=0.8)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel(field)
        ax.set_ylabel(f"optimal share of {plan.ratio_group.get(0)}")
        ax.set_title(key or "Optimal training mix vs difficulty", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    if others:
        _suptitle(fig, "Optimal training mix vs difficulty")
    caption = (f"The share of {plan.ratio_group.get(0)} that minimises the gap (red) and the "
               f"one with the best overall {plan.cfg.primary} (blue) against {field}, for a "
               f"single model (dotted) and the {E}-member ensemble (solid)"
               + (", one panel per value of the other grid fields" if others else "")
               + "; the grey line marks the balanced 50/50 mix.")
    return fig, caption


def data_figure(plan: Plan, preview: dict[str, np.ndarray] | None) -> tuple[Figure, str] | None:
    """The synthetic data per group (first two features), at the first and last grid point,
    from the sample the run stored in ``preview.npz``."""
    if plan.cfg.dataset.kind != "synthetic" or not preview:
        return None
    shown = sorted({0, len(plan.points) - 1})
    groups = plan.groups[0]
    fig, axes = plt.subplots(len(shown), len(groups), figsize=(4 * len(groups), 3.6 * len(shown)),
                             squeeze=False)
    for row, pi in enumerate(shown):
        if f"p{pi}_X" not in preview:
            continue
        X, y, g = preview[f"p{pi}_X"], preview[f"p{pi}_y"], preview[f"p{pi}_g"]
        for j, name in enumerate(groups):
            ax = axes[row, j]
            for c, color in ((0, "tab:blue"), (1, "tab:orange")):
                sel = (g == j) & (y == c)
                ax.scatter(X[sel, 0], X[sel, 1], s=4, alpha=0.6, color=color, label=f"y={c}")
            ax.set_title(f"group {name}  ({point_title(plan.points[pi])})", fontsize=9)
            ax.set_xlim(-7, 7)
            ax.set_ylim(-6, 6)
            ax.set_aspect("equal")
        axes[row, 0].legend(fontsize=7, markerscale=3)
    _suptitle(fig, "Synthetic pool per group (labels as trained on)")
    caption = ("A sample of the synthetic training pool of each group (its first two features, "
               "coloured by the label as trained on) at the first and last grid point.")
    return fig, caption


def pareto_figure(recommendation: dict[str, Any]) -> tuple[Figure, str]:
    """Overall metric against gap for every candidate share, single model and ensemble; the
    Pareto front of the ensemble joined, each objective's recommendation marked."""
    points = recommendation["points"]
    fig, axes = _panels(len(points), width=5.0, height=4.0)
    metric, E = recommendation["metric"], recommendation["members"]
    marks = {"gap": "*", "overall": "s", "worst": "D", "pareto": "P"}
    for ax, entry in zip(axes, points):
        cands = entry["candidates"]
        by_share = {c["share"]: c for c in cands}
        for k, style in ((1, dict(color="grey", alpha=0.5)), (E, dict(color="tab:blue"))):
            ax.scatter([c[f"gap_k{k}"] for c in cands], [c[f"overall_k{k}"] for c in cands],
                       s=18, label=f"k={k}", **style)
        for c in cands:
            ax.annotate(f"{c['share']:g}", (c[f"gap_k{E}"], c[f"overall_k{E}"]), fontsize=6,
                        xytext=(3, 2), textcoords="offset points")
        front = sorted(entry["pareto_front"], key=lambda x: by_share[x][f"gap_k{E}"])
        ax.plot([by_share[x][f"gap_k{E}"] for x in front],
                [by_share[x][f"overall_k{E}"] for x in front], color="tab:blue", lw=1,
                label="Pareto front (k=E)")
        for name, o in entry["objectives"].items():
            c = by_share.get(o["recommended"])
            if c is not None:
                ax.scatter([c[f"gap_k{E}"]], [c[f"overall_k{E}"]], marker=marks[name], s=90,
                           facecolors="none", edgecolors="tab:red", label=f"best {name}")
        ax.set_xlabel(f"gap in {metric} (max - min over groups)")
        ax.set_ylabel(f"overall {metric}")
        ax.set_title(f"{point_title(entry['point'])}: share of {entry['moved_group']}",
                     fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    _suptitle(fig, "Candidate training mixes: overall metric vs gap")
    caption = (f"Every candidate share of `recommend`: overall {metric} against the gap, for a "
               f"single model (grey) and the {E}-member ensemble (blue), the ensemble's Pareto "
               "front joined and each objective's recommended share marked in red.")
    return fig, caption


def gain_vs_diversity(summary: dict[str, Any], plan: Plan) -> tuple[Figure, str] | None:
    """Per group, the gain from 1 to E members against the members' diversity on that group
    (disagreement), one point per mix: is the ensemble helping the groups its members
    disagree on?"""
    points = [p for p in summary["grid_points"] if p.get("benefits")
              and "disagreement" in p["benefits"][0]]
    if not points:
        return None
    shown = points[:MAX_PANELS]
    fig, axes = _panels(len(shown))
    E, pm = summary["members"], summary["primary_metric"]
    for ax, p in zip(axes, shown):
        colors = _colors(p["groups"])
        for g in p["groups"]:
            items = [b for b in p["benefits"] if b["group"] == g
                     and b["gain"] is not None and b["disagreement"] is not None]
            ax.scatter([b["disagreement"] for b in items], [b["gain"] for b in items], s=16,
                       color=colors[g], label=g)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_title(point_title(p["point"]), fontsize=9)
        ax.set_xlabel(f"member disagreement on the group (k={E})")
        ax.set_ylabel(f"gain in {pm}, k=1 -> {E}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    _suptitle(fig, "Who benefits from the ensemble: per-group gain vs member diversity "
                 "(one point per mix)")
    caption = (f"Per group, the gain in {pm} from one member to {E} against how often the "
               f"members disagree on that group's samples (k={E}), one point per training mix"
               f"{' and one panel per grid point' if len(shown) > 1 else ''}: does the ensemble "
               "help most the groups its members disagree on?")
    return fig, caption


POST_MARKERS = {"none": "o", "threshold_eo": "^", "threshold_dp": "s"}


def levers_figure(summary: dict[str, Any]) -> tuple[Figure, str] | None:
    """Per scenario, the gap and the worst group of every setting (mix, k, mitigation,
    thresholds) against what it costs to train, with the Pareto fronts."""
    lv = summary.get("levers")
    if not lv or not lv["settings"]:
        return None
    settings, pm = lv["settings"], lv["metric"]
    scenarios = lv["scenarios"][:MAX_PANELS // 2 or 1]
    fig, axes = plt.subplots(len(scenarios), 2, figsize=(10.0, 3.6 * len(scenarios)),
                             squeeze=False)
    mitigations = list(dict.fromkeys(s["mitigation"] for s in settings))
    colors = {m: plt.get_cmap("tab10")(i) for i, m in enumerate(mitigations)}
    offset = {m: 1.0 + 0.06 * (i - (len(mitigations) - 1) / 2) for i, m in
              enumerate(mitigations)}
    for row, sc in zip(axes, scenarios):
        mine = [s for s in settings if s["scenario"] == sc["scenario"]]
        base = settings[sc["baseline"]]
        for ax, label, front in ((row[0], "gap", "front_gap"), (row[1], "worst", "front_worst")):
            for s in mine:
                if s[label] is None:
                    continue
                ax.scatter([s["trainings"] * offset[s["mitigation"]]], [s[label]], s=14,
                           color=colors[s["mitigation"]], marker=POST_MARKERS.get(s["post"], "o"),
                           alpha=0.45 if not s[front] else 1.0, linewidths=0)
            on = sorted((s for s in mine if s[front]), key=lambda s: s["trainings"])
            ax.step([s["trainings"] for s in on], [s[label] for s in on], where="post",
                    color="black", lw=1.0, label="Pareto front")
            ax.scatter([base["trainings"]], [base[label]], s=90, facecolors="none",
                       edgecolors="black", label="baseline (1 member, no lever)")
            _log_k_axis(ax, sorted({s["trainings"] for s in mine}))
            ax.set_xlabel("cost: trainings (an ensemble of k costs k; thresholds cost none)")
            ax.set_ylabel(f"{label} {'in ' + pm if label == 'gap' else 'group ' + pm}")
            ax.set_title(point_title(sc["scenario"]), fontsize=9)
            ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], ls="", marker="o", color=colors[m], label=m)
               for m in mitigations]
    handles += [plt.Line2D([], [], ls="", marker=mk, color="grey", label=f"thresholds: {p}")
                for p, mk in POST_MARKERS.items() if any(s["post"] == p for s in settings)]
    axes[0][1].legend(handles=handles + axes[0][1].get_legend_handles_labels()[0],
                      fontsize=6, loc="best")
    _suptitle(fig, "Every lever at its cost: gap and worst group against trainings")
    caption = (f"Each point is a setting: a training mix, a mitigation (colour), an ensemble "
               f"of k members (x: k trainings) and optional group thresholds (marker), at its "
               f"mean over replicates. The line is the Pareto front (no cheaper setting is "
               f"better); the circle is the baseline, one member without any lever. Left: "
               f"the gap in {pm} (lower is fairer); right: the worst group's {pm}.")
    return fig, caption


def _nan(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _suptitle(fig: Figure, text: str) -> None:
    """The figure's title, wrapped to its width: a title never runs past the edges, and the
    constrained layout (``lay_out``) keeps the panels' titles clear of it."""
    width_in = fig.get_size_inches()[0]
    fig.suptitle(textwrap.fill(text, max(20, int(width_in * CHARS_PER_INCH))), fontsize=11)


def lay_out(fig: Figure) -> Figure:
    """Place everything so that nothing overlaps: the constrained layout reserves room for
    the title, the panels' titles and the axis labels."""
    fig.set_layout_engine("constrained")
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    lay_out(fig)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return path


FIGURE_NAMES = ("metric_vs_k", "metric_vs_ratio", "gap_vs_k", "gap_vs_ratio", "optimal_ratio",
                "gain_vs_diversity", "levers", "data")
"""The run's figures, in the report's order (each saved as ``figures/<name>.png``)."""


def draw_figure(name: str, summary: dict[str, Any], plan: Plan,
                preview: dict[str, np.ndarray] | None = None) -> tuple[Figure, str] | None:
    """The figure saved as ``<name>.png`` (one of ``FIGURE_NAMES``) with its caption, or None
    where the run does not support it (against the mix only when there is more than one: a
    curve would be a dot)."""
    by_mix = not one_mix(summary)
    drawers: dict[str, Callable[[], tuple[Figure, str] | None]] = {
        "metric_vs_k": lambda: metric_vs_k(summary, plan),
        "metric_vs_ratio": lambda: metric_vs_ratio(summary, plan) if by_mix else None,
        "gap_vs_k": lambda: gap_vs_k(summary, plan),
        "gap_vs_ratio": lambda: gap_vs_ratio(summary, plan) if by_mix else None,
        "optimal_ratio": lambda: optimal_ratio(summary, plan) if by_mix else None,
        "gain_vs_diversity": lambda: gain_vs_diversity(summary, plan),
        "levers": lambda: levers_figure(summary),
        "data": lambda: data_figure(plan, preview),
    }
    return drawers[name]()


def all_figures(summary: dict[str, Any], plan: Plan, fig_dir: Path,
                preview: dict[str, np.ndarray] | None = None) -> list[Drawn]:
    """Every figure the run supports, saved as ``fig_dir/<name>.png``, with its caption."""
    made = {name: draw_figure(name, summary, plan, preview) for name in FIGURE_NAMES}
    return [Drawn(save_figure(fig, fig_dir / f"{name}.png"), caption)
            for name, got in made.items() if got is not None for fig, caption in [got]]


# ----------------------------------------------------------------------------- learning curves
# Figures of ``curves.run_curves``'s result (recommendation.json's ``curves`` entries: one per
# setting, each with ``point``, ``single`` and ``ensemble``); they need nothing else.

CURVE_PARTS = (("single", "single model (k=1)"), ("ensemble", "ensemble"))


def _curve_parts(entry: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(label, entry[key]) for key, label in CURVE_PARTS if entry.get(key)]


def learning_curves_figure(curves: list[dict[str, Any]]) -> tuple[Figure, str]:
    """Per setting and group, the error against the group's own count: measured design points
    (the mean, bars spanning the replicates), the fitted curve at each measured size and its
    bootstrap band; single model and ensemble side by side."""
    shown = curves[:MAX_PANELS]
    rows = [(entry, g) for entry in shown for g in entry["single"]["groups"]]
    parts = max(len(_curve_parts(e)) for e in shown)
    fig, axes = plt.subplots(len(rows), parts, figsize=(4.6 * parts, 3.4 * len(rows)),
                             squeeze=False)
    for r, (entry, g) in enumerate(rows):
        for c, (label, part) in enumerate(_curve_parts(entry)):
            ax = axes[r, c]
            fit = part["groups"][g]
            sizes = part["measured_sizes"]
            cmap = plt.get_cmap("viridis")
            color = {n: cmap(i / max(1, len(sizes) - 1)) for i, n in enumerate(sizes)}
            for line in fit["curve"]:
                n = line["train_size"]
                ax.plot(line["n_group"], _nan(line["error"]), color=color[n], lw=1.2)
                ax.fill_between(line["n_group"], _nan(line["lo"]), _nan(line["hi"]),
                                color=color[n], alpha=0.18, lw=0)
            for n in sizes:
                pts = [p for p in fit["residuals"] if p["train_size"] == n and p["n_group"] > 0]
                if not pts:
                    continue
                spread = np.array([[p["measured"] - min(p["replicates"]),
                                    max(p["replicates"]) - p["measured"]] for p in pts]).T
                ax.errorbar([p["n_group"] for p in pts], [p["measured"] for p in pts],
                            yerr=spread, fmt="o", ms=4, capsize=2, color=color[n],
                            label=f"n={n}")
            ax.axhline(fit["floor"], color="grey", ls="--", lw=0.8)
            ax.set_xscale("log")
            ax.set_xlabel(f"training samples of {g}")
            ax.set_ylabel(f"error (1 - {part['metric']})" if part["direction"] == "higher"
                          else part["metric"])
            zero = f", {fit['fit']['n_zero']} point(s) without {g} left out" \
                if fit["fit"]["n_zero"] else ""
            ax.set_title(f"{point_title(entry['point'])}: {g}, {label}\n{fit['form']}, "
                         f"floor {fit['floor']:.3f}, R2 {number(fit['fit']['r2'], 2)}{zero}",
                         fontsize=8)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, title="train size", title_fontsize=7)
    _suptitle(fig, "Learning curves per group: measured (bars: replicates), fit and 95 % band; "
                 "dashed: floor")
    return fig, ("Per-group learning curves: each group's error against its own count in the "
                 "training set, one colour per training-set size; points are the measured means "
                 "(bars: the spread over replicates), lines the fitted model, bands its 95 % "
                 "bootstrap interval over refits on resampled replicates, the dashed line the "
                 "fitted floor (the error more data cannot remove).")


def curves_fit_figure(curves: list[dict[str, Any]]) -> tuple[Figure, str]:
    """Goodness of fit: the fitted error against the measured one at every design point, per
    setting; one colour per group, circles for the single model and squares for the
    ensemble."""
    shown = curves[:MAX_PANELS]
    n = len(shown)
    cols = min(n, 3)
    fig, axes = plt.subplots(int(np.ceil(n / cols)), cols, figsize=(4.4 * cols,
                             4.0 * int(np.ceil(n / cols))), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, entry in zip(axes.flat, shown):
        lims = []
        quality = []
        for (label, part), marker in zip(_curve_parts(entry), ("o", "s")):
            cmap = plt.get_cmap("tab10")
            for i, (g, fit) in enumerate(part["groups"].items()):
                pts = [p for p in fit["residuals"] if p["fitted"] is not None]
                x = [p["measured"] for p in pts]
                y = [p["fitted"] for p in pts]
                lims += x + y
                ax.scatter(x, y, s=16, marker=marker, color=cmap(i), alpha=0.8,
                           facecolors="none" if marker == "s" else cmap(i),
                           label=f"{g}, {label}: R2 {number(fit['fit']['r2'], 2)}")
            quality.append(f"{label.split(' ')[0]}: RMSE {part['fit']['rmse']:.3f}")
        if lims:
            lo, hi = min(lims), max(lims)
            ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        ax.set_xlabel("measured error (mean over replicates)")
        ax.set_ylabel("fitted error")
        ax.set_title(f"{point_title(entry['point'])}\n" + "; ".join(quality), fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    _suptitle(fig, "Learning-curve fits: fitted against measured error per design point")
    return fig, ("Goodness of fit of the learning curves: the fitted error against the measured "
                 "one at every (train size, mix), one colour per group, circles for the single "
                 "model and squares for the ensemble; points off the diagonal are what the "
                 "model does not explain (R2 and RMSE in the legend and titles).")


def budget_share_figure(curves: list[dict[str, Any]]) -> tuple[Figure, str]:
    """The recommended share of the moved group against the training-set size, per objective,
    with the 95 % interval of the refits' optima; the measured sizes shaded and the sizes
    beyond what the fits support marked."""
    shown = curves[:MAX_PANELS]
    fig, axes = plt.subplots(len(shown), 2, figsize=(10.0, 3.8 * len(shown)), squeeze=False)
    colors = {"gap": "tab:red", "overall": "tab:blue", "worst": "tab:green",
              "pareto": "tab:purple"}
    for r, entry in enumerate(shown):
        for c, (label, part) in enumerate(_curve_parts(entry)):
            ax = axes[r, c]
            budgets = [b["budget"] for b in part["by_budget"]]
            for name, color in colors.items():
                share = [b[name]["share"] for b in part["by_budget"]]
                lo = _nan([b[name]["interval"][0] for b in part["by_budget"]])
                hi = _nan([b[name]["interval"][1] for b in part["by_budget"]])
                ax.plot(budgets, share, marker="o", ms=3, color=color, label=name)
                ax.fill_between(budgets, lo, hi, color=color, alpha=0.12, lw=0)
            sizes = part["measured_sizes"]
            ax.axvspan(min(sizes), max(sizes), color="grey", alpha=0.12, lw=0,
                       label="measured sizes")
            limit = part["extrapolation"]["max_factor"] * max(sizes)
            if limit < max(budgets):
                ax.axvspan(limit, max(budgets), color="tab:orange", alpha=0.08, lw=0,
                           label="beyond what the fits support")
            ax.axvline(part["budget"], color="black", lw=0.8, ls=":")
            _log_k_axis(ax, sorted({*sizes, part["budget"], max(budgets)}))
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel("training-set size (budget)")
            ax.set_ylabel(f"recommended share of {part['moved_group']}")
            ax.set_title(f"{point_title(entry['point'])}, {label}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        for c in range(len(_curve_parts(entry)), 2):
            axes[r, c].set_visible(False)
    _suptitle(fig, "Predicted best share against budget (bands: 95 % interval of the refits' "
                 "optima; dotted: the budget asked for)")
    return fig, ("The recommended share of the moved group against the training-set size (the "
                 "budget), per objective, predicted from the learning curves; bands are the 95 % "
                 "interval of the bootstrap refits' own optima, grey the measured sizes, orange "
                 "the sizes beyond what the fits support, the dotted line the budget asked for.")
