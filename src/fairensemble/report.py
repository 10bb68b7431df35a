"""Rebuild a run's outputs from its stored cells: metrics.parquet, summary.json, figures,
report.html and the terminal summary table. No training happens here."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .analysis import MissingCells, evaluate_run, load_run, summarize
from .config import RunConfig, dump_config
from .plan import Plan, grid_value
from .plots import all_figures, pareto_figure
from .store import RunStore, atomic_write_text, write_json, write_parquet

__all__ = ["MissingCells", "build_report", "print_summary", "summary_table"]


def build_report(run_dir: str | Path, out_dir: str | Path | None = None,
                 plan: Plan | None = None,
                 on_progress: Callable[[float], None] | None = None,
                 on_start: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Evaluate every stored cell of a run and write its outputs (into ``out_dir``, default the
    run directory). Reads only the run directory; ``plan`` (from ``load_run`` with evaluation
    overrides, say) defaults to the run's own."""
    store = RunStore(run_dir)
    if plan is None:
        _, plan = load_run(store.root)
    cfg = plan.cfg
    out = Path(out_dir) if out_dir is not None else store.root
    # the run directory's own outputs follow the latest evaluation spec; a report written
    # elsewhere leaves the run's cached evaluations as they are
    ev = evaluate_run(plan, store, on_progress=on_progress, on_start=on_start,
                      prune=out.resolve() == store.root.resolve())
    table = ev.table
    write_parquet(out / "metrics.parquet", table)
    summary = summarize(table, plan, ev.boot)
    write_json(out / "summary.json", summary)
    plain = table[table["post"] == "none"]  # figures draw the ensembles as trained
    figures = all_figures(plain, summary, plan, out / "figures", store.read_preview())
    recommendation = read_recommendation(store.root)
    if recommendation is not None:
        figures.append(pareto_figure(recommendation, out / "figures" / "pareto.png"))
    atomic_write_text(out / "report.html", render_html(cfg, summary, figures, recommendation))
    return summary


def read_recommendation(root: Path) -> dict[str, Any] | None:
    path = Path(root) / "recommendation.json"
    return json.loads(path.read_text()) if path.is_file() else None


def summary_table(summary: dict[str, Any]) -> Table:
    """One row per grid point: optimal mixes and values for k=1 -> k=E, verdict counts."""
    E = summary["members"]
    pm = summary["primary_metric"]
    how = "95% bootstrap CI" if summary.get("intervals") == "bootstrap" else "95% CI"
    best = "min" if summary.get("direction") == "lower" else "max"
    table = Table(
        title=f"{summary['name']}: {pm} by share of {summary['ratio_group']}, single model "
              f"(k=1) -> ensemble (k={E}); {summary['replicates']} replicate(s), "
              f"{summary['test_mix']} test mix",
        title_justify="left",
    )
    fields = summary["grid_fields"]
    for f in fields:
        table.add_column(f.split(".")[-1], justify="right")
    table.add_column("min-gap mix", justify="center")
    table.add_column("min gap", justify="center")
    table.add_column(f"{best}-overall mix", justify="center")
    table.add_column(f"{best} overall {pm}", justify="center")
    table.add_column(f"positive-sum mixes\n(means | {how})", justify="center")
    for p in summary["grid_points"]:
        o1, oE = p["optimal"]["k=1"], p["optimal"][f"k={E}"]
        n = sum(p["verdict_counts"].values())
        table.add_row(
            *[str(grid_value(p["point"][f])) for f in fields],
            f"{_fmt(o1['gap_min_ratio'])} -> {_fmt(oE['gap_min_ratio'])}",
            f"{_num(o1['gap_min_value'])} -> {_num(oE['gap_min_value'])}",
            f"{_fmt(o1['overall_best_ratio'])} -> {_fmt(oE['overall_best_ratio'])}",
            f"{_num(o1['overall_best_value'])} -> {_num(oE['overall_best_value'])}",
            f"{p['verdict_counts'].get('positive-sum', 0)}/{n} | "
            + (f"{p['verdict_95_counts'].get('positive-sum', 0)}/{n}"
               if "n/a" not in p["verdict_95_counts"] else "n/a"),
        )
    return table


def fairness_table(summary: dict[str, Any]) -> Table | None:
    """One row per grid point and fairness measure (lower is fairer): the mix that minimises
    it for k=1 -> k=E, and over mixes how often the ensemble narrowed or widened it."""
    measures = summary.get("fairness_measures") or []
    if not summary["grid_points"] or not measures:
        return None
    E, pm = summary["members"], summary["primary_metric"]
    table = Table(title=f"fairness measures (lower is fairer; gap = gap in {pm}): "
                        f"k=1 -> k={E}", title_justify="left")
    fields = summary["grid_fields"]
    for f in fields:
        table.add_column(f.split(".")[-1], justify="right")
    for col in ("measure", "min mix", "min value", "ensemble narrowed | widened | no change"):
        table.add_column(col, justify="center")
    for p in summary["grid_points"]:
        for m in measures:
            fm = p["fairness"][m]
            c = fm["counts"]
            verdicts = ("n/a (no intervals)" if "n/a" in c else
                        f"{c.get('narrowed', 0)} | {c.get('widened', 0)} | "
                        f"{c.get('no detectable change', 0)}")
            table.add_row(
                *[str(grid_value(p["point"][f])) for f in fields], m,
                f"{_fmt(fm['k=1']['min_ratio'])} -> {_fmt(fm[f'k={E}']['min_ratio'])}",
                f"{_num(fm['k=1']['min_value'])} -> {_num(fm[f'k={E}']['min_value'])}",
                verdicts,
            )
    return table


def _point_label(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={grid_value(v)}" for k, v in point.items())


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _fmt(x: Any) -> str:
    """A share as written (0.75 stays 0.75; 0.3 is not 0.30000000000000004)."""
    return f"{round(x, 6):g}" if isinstance(x, float) else str(x)


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=120)
    console.print(summary_table(summary))
    fairness = fairness_table(summary)
    if fairness is not None:
        console.print(fairness)


def _table_html(summary: dict[str, Any]) -> str:
    console = Console(record=True, width=160, file=io.StringIO())
    print_summary(summary, console)
    return f"<pre>{html.escape(console.export_text())}</pre>"


def _benefits_html(summary: dict[str, Any]) -> str:
    """Who benefits from the ensemble: per-group gain beside per-group member diversity."""
    parts = []
    E, pm = summary["members"], summary["primary_metric"]
    for p in summary["grid_points"]:
        items = p.get("benefits") or []
        if not items:
            continue
        title = _point_label(p["point"]) or "all cells"
        div = [m for m in ("disagreement", "ambiguity") if m in items[0]]
        head = "".join(f"<th>{m} (k={E})</th>" for m in div)
        rows = []
        for it in items:
            x = it.get("ratio", it.get("mix"))
            lo, hi = it["gain_ci95"]
            ci = f" [{lo:+.4f}, {hi:+.4f}]" if lo is not None else ""
            gain = "n/a" if it["gain"] is None else f"{it['gain']:+.4f}"
            cells = "".join("<td>n/a</td>" if it[m] is None else f"<td>{it[m]:.4f}</td>"
                            for m in div)
            rows.append(f"<tr><td>{_fmt(x)}</td><td>{html.escape(it['group'])}</td>"
                        f"<td>{gain}{ci}</td>{cells}</tr>")
        parts.append(f"<h3>{html.escape(title)}</h3><table><tr><th>mix</th><th>group</th>"
                     f"<th>gain in {html.escape(pm)}, k=1 &rarr; {E}</th>{head}</tr>"
                     f"{''.join(rows)}</table>")
    if not parts:
        return ""
    return ("<h2>Who benefits from the ensemble</h2><p>Per group, the gain from one member "
            f"to {E} beside how much the members differ on that group: disagreement (the "
            "share of member pairs that predict different labels) and ambiguity (mean member "
            "Brier score minus the ensemble's: what averaging removes).</p>" + "".join(parts))


def _post_html(summary: dict[str, Any]) -> str:
    parts = []
    E = summary["members"]
    for p in summary["grid_points"]:
        post = p.get("post")
        if not post:
            continue
        title = _point_label(p["point"]) or "all cells"
        keys = sorted({key for name, by_k in post.items() if isinstance(by_k, dict)
                       and "k=1" in by_k for key in by_k["k=1"]})
        head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        rows = []
        for name, by_k in post.items():
            if not (isinstance(by_k, dict) and "k=1" in by_k):
                continue
            for k in sorted({1, E}):
                vals = by_k.get(f"k={k}", {})
                cells = "".join(f"<td>{_num(vals.get(key))}</td>" for key in keys)
                rows.append(f"<tr><td>{html.escape(name)}</td><td>{k}</td>{cells}</tr>")
        lowered = post.get("eq_odds_lowered_by_threshold_eo_at_k=E")
        note = (f"<p>Equalized-odds thresholds lowered the equalized-odds difference at k={E} "
                f"in {lowered['cells']} of {lowered['of']} cells.</p>" if lowered else "")
        parts.append(f"<h3>{html.escape(title)}</h3><table><tr><th>post</th><th>k</th>{head}"
                     f"</tr>{''.join(rows)}</table>{note}")
    if not parts:
        return ""
    return ("<h2>Post-processing</h2><p>Group-specific thresholds fitted on the validation "
            "split (Hardt et al.; <code>threshold_eo</code>: equalized odds, "
            "<code>threshold_dp</code>: demographic parity), means over mixes.</p>"
            + "".join(parts))


def _verdicts_html(summary: dict[str, Any]) -> str:
    parts = []
    E = summary["members"]
    for p in summary["grid_points"]:
        title = _point_label(p["point"]) or "all cells"
        groups = p["groups"]
        head = "".join(f"<th>&Delta; {html.escape(g)}</th>" for g in [*groups, "overall", "gap"])
        rows = []
        for v in p["verdicts"]:
            x = v.get("ratio", v.get("mix"))
            cells = []
            for g in [*groups, "overall", "gap"]:
                ch = v["change"][g]
                lo, hi = ch["ci95"]
                ci = f" [{lo:+.3f}, {hi:+.3f}]" if lo is not None else ""
                mean = "n/a" if ch["mean"] is None else f"{ch['mean']:+.4f}"
                cells.append(f"<td>{mean}{ci}</td>")
            rows.append(f"<tr><td>{x}</td><td class='{v['verdict']}'>{v['verdict']}</td>"
                        f"<td class='{v['verdict_95']}'>{v['verdict_95']}</td>"
                        f"{''.join(cells)}</tr>")
        parts.append(
            f"<h3>{html.escape(title)}: k=1 &rarr; k={E}</h3><table><tr><th>mix</th>"
            f"<th>verdict (means)</th><th>verdict (95% CI)</th>{head}</tr>{''.join(rows)}"
            "</table>"
        )
    return "\n".join(parts)


def _ci(lo: float | None, hi: float | None) -> str:
    return "" if lo is None else f" [{lo:.3f}, {hi:.3f}]"


def recommendation_tables(rec: dict[str, Any]) -> list[Any]:
    """What ``recommend`` found, per grid point: a headline and a table of objectives."""
    out: list[Any] = []
    E, metric = rec["members"], rec["metric"]
    how = ("95 % t-intervals over replicates" if rec["intervals"] == "replicates"
           else "95 % bootstrap intervals over test samples")
    for entry in rec["points"]:
        where = _point_label(entry["point"])
        b = entry["balanced"]
        per = ", ".join(f"{g} {b[g]['k=E']:.3f}{_ci(*b[g]['ci95'])}" for g in entry["groups"])
        out.append(Text(
            f"{rec['name']}{' at ' + where if where else ''}: {metric} of the {E}-member "
            f"ensemble, {rec['replicates']} replicate(s), {how}.\n"
            f"Balanced mix: {per}; gap {b['gap']['k=E']:.3f}{_ci(*b['gap']['ci95'])}; "
            f"harder group: {b['harder_group']}. Moving the share of {entry['moved_group']}."))
        table = Table(title_justify="left")
        for col in ("objective", "recommended", "indistinguishable (95 %)", "value",
                    f"per group at k={E}", "gain from the ensemble (k=1 -> E)"):
            table.add_column(col, justify="left")
        for name, o in entry["objectives"].items():
            at = o["at_recommended"]
            same = o["range"]
            table.add_row(
                name + (" (chosen)" if name == entry["chosen_by"] else ""),
                _fmt(o["recommended"]),
                (f"{same[0]:g} - {same[1]:g}" if same else str(o["indistinguishable"]))
                + ("  flat valley" if o["flat_valley"] else ""),
                f"{o['value']:.3f}",
                ", ".join(f"{g} {at[g]['k=E']:.3f}" for g in entry["groups"]),
                ", ".join(f"{g} {at[g]['gain_from_1']:+.3f}{_ci(*at[g]['gain_ci95'])}"
                          for g in entry["groups"]),
            )
        out.append(table)
        flat = [n for n, o in entry["objectives"].items() if o["flat_valley"]]
        if flat:
            out.append(Text(
                f"Flat valley ({', '.join(flat)}): the data cannot separate the shares listed "
                "as indistinguishable; any of them is as good as the recommended one."))
    return out


def print_recommendation(rec: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=120)
    for part in recommendation_tables(rec):
        console.print(part)


def _recommendation_html(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return ""
    console = Console(record=True, width=160, file=io.StringIO())
    print_recommendation(rec, console)
    return ("<h2>Which mix should I collect?</h2><p>From <code>fairensemble recommend</code>: "
            "the balanced mix measures which group is harder; the share of the moved group "
            "is then swept coarsely and refined around the best share.</p>"
            f"<pre>{html.escape(console.export_text())}</pre>")


def render_html(cfg: RunConfig, summary: dict[str, Any], figures: list[Path],
                recommendation: dict[str, Any] | None = None) -> str:
    imgs = []
    for fig in figures:
        data = base64.b64encode(fig.read_bytes()).decode()
        imgs.append(f"<figure><img src='data:image/png;base64,{data}' alt='{fig.stem}'>"
                    f"<figcaption>{fig.stem.replace('_', ' ')}</figcaption></figure>")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>fairensemble: {html.escape(cfg.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
.positive-sum {{ color: #176317; }} .leveling-down {{ color: #a11; }} .mixed {{ color: #a60; }}
img {{ max-width: 100%; }} pre {{ font-size: 0.8em; }}
</style></head><body>
<h1>fairensemble report: {html.escape(cfg.name)}</h1>
<p>Does a homogeneous ensemble of {cfg.ensemble.members} members lift every group
(positive-sum) or trade one for another, and which training mix minimises the gap or maximises
overall {html.escape(cfg.primary)}? Overall metrics use the <b>{cfg.test_mix}</b> test
mix. Intervals are 95 % t-intervals over {cfg.replicates} replicates.</p>
{_recommendation_html(recommendation)}
<h2>Summary</h2>
{_table_html(summary)}
<h2>Figures</h2>
{''.join(imgs)}
{_benefits_html(summary)}
{_post_html(summary)}
<h2>Positive-sum verdicts</h2>
{_verdicts_html(summary)}
<h2>Configuration</h2>
<pre>{html.escape(dump_config(cfg))}</pre>
<details><summary>summary.json</summary><pre>{html.escape(json.dumps(summary, indent=1))}</pre>
</details>
</body></html>
"""
