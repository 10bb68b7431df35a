"""Figures of a run: metric vs k, metric vs ratio, gap vs ratio, optimal ratio vs difficulty."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .analysis import _point_rows, grid_fields, mix_column
from .plan import Plan, grid_value

MAX_PANELS = 6


def _point_title(point: dict[str, Any]) -> str:
    return ", ".join(f"{k.split('.')[-1]}={grid_value(v)}" for k, v in point.items()) \
        or "all cells"


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


def _mean_band(df: pd.DataFrame, x: str) -> pd.DataFrame:
    agg = df.groupby(x)["mean"].agg(["mean", "std", "count"]).reset_index()
    agg["sem"] = agg["std"].fillna(0.0) / np.sqrt(agg["count"])
    return agg


def _colors(groups: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    out = {g: cmap(i) for i, g in enumerate(groups)}
    out["overall"] = "black"
    return out


def metric_vs_k(table: pd.DataFrame, plan: Plan, path: Path) -> Path:
    cfg = plan.cfg
    xcol = mix_column(table)
    shown = _shown_points(plan)
    fig, axes = _panels(len(shown))
    for ax, pi in zip(axes, shown):
        rows = _point_rows(table, grid_fields(plan), plan.points[pi])
        rows = rows[rows["metric"] == cfg.primary]
        xs = rows[xcol].drop_duplicates().to_numpy()
        # the mix closest to balanced (or the middle explicit mix)
        x0 = xs[np.argmin(np.abs(xs.astype(float) - 0.5))] if xcol == "ratio" else xs[len(xs) // 2]
        rows = rows[rows[xcol] == x0]
        colors = _colors(plan.groups[pi])
        for label in [*plan.groups[pi], "overall"]:
            agg = _mean_band(rows[rows["group"] == label], "k")
            ax.errorbar(agg["k"], agg["mean"], yerr=1.96 * agg["sem"], marker="o", ms=3,
                        capsize=2, label=label, color=colors[label],
                        ls="--" if label == "overall" else "-")
        ax.set_xscale("log")
        ax.set_xticks(sorted(rows["k"].unique()))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(f"{_point_title(plan.points[pi])}\n{xcol}={x0}", fontsize=9)
        ax.set_xlabel("ensemble size k")
        ax.set_ylabel(cfg.primary)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{cfg.primary} per group vs ensemble size")
    return _save(fig, path)


def gap_vs_k(table: pd.DataFrame, plan: Plan, path: Path) -> Path:
    """The gap against ensemble size, one line per training mix: does ensembling close it?"""
    cfg = plan.cfg
    xcol = mix_column(table)
    shown = _shown_points(plan)
    fig, axes = _panels(len(shown))
    cmap = plt.get_cmap("coolwarm")
    for ax, pi in zip(axes, shown):
        rows = _point_rows(table, grid_fields(plan), plan.points[pi])
        rows = rows[(rows["metric"] == cfg.primary) & (rows["group"] == "gap")]
        xs = list(rows[xcol].drop_duplicates())
        for i, x in enumerate(xs):
            agg = _mean_band(rows[rows[xcol] == x], "k")
            ax.plot(agg["k"], agg["mean"], marker="o", ms=3, color=cmap(i / max(1, len(xs) - 1)),
                    label=f"{x}")
        ax.set_xscale("log")
        ax.set_xticks(sorted(rows["k"].unique()))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(_point_title(plan.points[pi]), fontsize=9)
        ax.set_xlabel("ensemble size k")
        ax.set_ylabel(f"gap in {cfg.primary}")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=6, ncol=2, title=xcol, title_fontsize=7)
    fig.suptitle("Gap vs ensemble size, one line per training mix")
    return _save(fig, path)


def metric_vs_ratio(table: pd.DataFrame, plan: Plan, path: Path) -> Path:
    cfg = plan.cfg
    E = cfg.ensemble.members
    xcol = mix_column(table)
    shown = _shown_points(plan)
    fig, axes = _panels(len(shown))
    for ax, pi in zip(axes, shown):
        rows = _point_rows(table, grid_fields(plan), plan.points[pi])
        rows = rows[rows["metric"] == cfg.primary]
        colors = _colors(plan.groups[pi])
        for label in [*plan.groups[pi], "overall"]:
            for k, ls in ((1, ":"), (E, "-")):
                agg = _mean_band(rows[(rows["group"] == label) & (rows["k"] == k)], xcol)
                ax.plot(agg[xcol], agg["mean"], ls=ls, marker="o", ms=3, color=colors[label],
                        label=f"{label} (k={k})")
        ax.set_title(_point_title(plan.points[pi]), fontsize=9)
        ax.set_xlabel(_xlabel(plan, xcol))
        ax.set_ylabel(cfg.primary)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"{cfg.primary} per group vs training mix (dotted: 1 member, "
                 f"solid: {E} members)")
    return _save(fig, path)


def _xlabel(plan: Plan, xcol: str) -> str:
    if xcol == "ratio":
        return f"share of {plan.ratio_group.get(0)} in the training set"
    return "mix"


def gap_vs_ratio(table: pd.DataFrame, summary: dict, plan: Plan, path: Path) -> Path:
    cfg = plan.cfg
    E = cfg.ensemble.members
    xcol = mix_column(table)
    fig, axes = _panels(2 if E != 1 else 1, width=5.0, height=3.6)
    cmap = plt.get_cmap("viridis")
    n = len(plan.points)
    for ax, k in zip(axes, sorted({1, E})):
        for pi, point in enumerate(plan.points):
            rows = _point_rows(table, grid_fields(plan), point)
            rows = rows[(rows["metric"] == cfg.primary) & (rows["group"] == "gap")
                        & (rows["k"] == k)]
            agg = _mean_band(rows, xcol)
            color = cmap(pi / max(1, n - 1))
            ax.plot(agg[xcol], agg["mean"], marker="o", ms=3, color=color,
                    label=_point_title(point))
            best = summary["grid_points"][pi]["optimal"][f"k={k}"]
            if best["gap_min_ratio"] is not None:
                ax.plot([best["gap_min_ratio"]], [best["gap_min_value"]], marker="*", ms=14,
                        color=color, markeredgecolor="black")
        ax.set_title(f"k={k}" + (" (single model)" if k == 1 else " (ensemble)"))
        ax.set_xlabel(_xlabel(plan, xcol))
        ax.set_ylabel(f"gap in {cfg.primary} (max - min over groups)")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7)
    fig.suptitle("Gap vs training mix; star = gap-minimising mix")
    return _save(fig, path)


def optimal_ratio(summary: dict, plan: Plan, path: Path) -> Path | None:
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
        fig.suptitle("Optimal training mix vs difficulty")
    return _save(fig, path)


def data_figure(plan: Plan, path: Path, preview: dict[str, np.ndarray] | None) -> Path | None:
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
            ax.set_title(f"group {name}  ({_point_title(plan.points[pi])})", fontsize=9)
            ax.set_xlim(-7, 7)
            ax.set_ylim(-6, 6)
            ax.set_aspect("equal")
        axes[row, 0].legend(fontsize=7, markerscale=3)
    fig.suptitle("Synthetic pool per group (labels as trained on)")
    return _save(fig, path)


def pareto_figure(recommendation: dict[str, Any], path: Path) -> Path:
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
        ax.set_title(f"{_point_title(entry['point'])}: share of {entry['moved_group']}",
                     fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Candidate training mixes: overall metric vs gap")
    return _save(fig, path)


def gain_vs_diversity(summary: dict[str, Any], plan: Plan, path: Path) -> Path | None:
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
        ax.set_title(_point_title(p["point"]), fontsize=9)
        ax.set_xlabel(f"member disagreement on the group (k={E})")
        ax.set_ylabel(f"gain in {pm}, k=1 -> {E}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Who benefits from the ensemble: per-group gain vs member diversity "
                 "(one point per mix)")
    return _save(fig, path)


def _nan(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def all_figures(table: pd.DataFrame, summary: dict, plan: Plan, fig_dir: Path,
                preview: dict[str, np.ndarray] | None = None) -> list[Path]:
    made = [
        metric_vs_k(table, plan, fig_dir / "metric_vs_k.png"),
        metric_vs_ratio(table, plan, fig_dir / "metric_vs_ratio.png"),
        gap_vs_k(table, plan, fig_dir / "gap_vs_k.png"),
        gap_vs_ratio(table, summary, plan, fig_dir / "gap_vs_ratio.png"),
        optimal_ratio(summary, plan, fig_dir / "optimal_ratio.png"),
        gain_vs_diversity(summary, plan, fig_dir / "gain_vs_diversity.png"),
        data_figure(plan, fig_dir / "data.png", preview),
    ]
    return [p for p in made if p is not None]


# ----------------------------------------------------------------------------- learning curves
# Figures of ``curves.run_curves``'s result (recommendation.json's ``curves`` entries: one per
# setting, each with ``point``, ``single`` and ``ensemble``); they need nothing else.

CURVE_PARTS = (("single", "single model (k=1)"), ("ensemble", "ensemble"))


def _curve_parts(entry: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(label, entry[key]) for key, label in CURVE_PARTS if entry.get(key)]


def learning_curves_figure(curves: list[dict[str, Any]], path: Path) -> Path:
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
            ax.set_title(f"{_point_title(entry['point'])}: {g}, {label}\n{fit['form']}, "
                         f"floor {fit['floor']:.3f}, R2 {_fmt_num(fit['fit']['r2'])}{zero}",
                         fontsize=8)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, title="train size", title_fontsize=7)
    fig.suptitle("Learning curves per group: measured (bars: replicates), fit and 95 % band; "
                 "dashed: floor")
    return _save(fig, path)


def curves_fit_figure(curves: list[dict[str, Any]], path: Path) -> Path:
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
                           label=f"{g}, {label}: R2 {_fmt_num(fit['fit']['r2'])}")
            quality.append(f"{label.split(' ')[0]}: RMSE {part['fit']['rmse']:.3f}")
        if lims:
            lo, hi = min(lims), max(lims)
            ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        ax.set_xlabel("measured error (mean over replicates)")
        ax.set_ylabel("fitted error")
        ax.set_title(f"{_point_title(entry['point'])}\n" + "; ".join(quality), fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle("Learning-curve fits: fitted against measured error per design point")
    return _save(fig, path)


def budget_share_figure(curves: list[dict[str, Any]], path: Path) -> Path:
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
            ax.set_xscale("log")
            ax.set_xticks(sorted({*sizes, part["budget"], max(budgets)}))
            ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel("training-set size (budget)")
            ax.set_ylabel(f"recommended share of {part['moved_group']}")
            ax.set_title(f"{_point_title(entry['point'])}, {label}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        for c in range(len(_curve_parts(entry)), 2):
            axes[r, c].set_visible(False)
    fig.suptitle("Predicted best share against budget (bands: 95 % interval of the refits' "
                 "optima; dotted: the budget asked for)")
    return _save(fig, path)


def _fmt_num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
