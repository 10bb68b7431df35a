"""Rebuild a run's outputs from its stored cells: metrics.parquet, summary.json, figures,
report.html and the terminal summary table. No training happens here."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fairensemble.common.files import atomic_write_text, write_json, write_parquet
from fairensemble.config import RunConfig, dump_config
from fairensemble.evaluation.analysis import (
    Evaluations,
    MissingCells,
    evaluate_run,
    load_run,
    summarize,
)
from fairensemble.evaluation.intervals import describe
from fairensemble.report.plots import (
    Drawn,
    all_figures,
    budget_share_figure,
    curves_fit_figure,
    learning_curves_figure,
    one_mix,
    pareto_figure,
    save_figure,
)
from fairensemble.sweep.plan import Plan, grid_value
from fairensemble.sweep.store import RunStore

__all__ = ["MissingCells", "build_report", "groups_tabular", "print_summary", "summary_table"]


def build_report(run_dir: str | Path, out_dir: str | Path | None = None,
                 plan: Plan | None = None,
                 on_progress: Callable[[float], None] | None = None,
                 on_start: Callable[[int], None] | None = None,
                 known: Evaluations | None = None) -> dict[str, Any]:
    """Evaluate every stored cell of a run and write its outputs (into ``out_dir``, default the
    run directory). Reads only the run directory; ``plan`` (from ``load_run`` with evaluation
    overrides, say) defaults to the run's own; ``known``: evaluations ``check_stored`` returned
    under the same lock (not read again)."""
    store = RunStore(run_dir)
    if plan is None:
        _, plan = load_run(store.root)
    cfg = plan.cfg
    out = Path(out_dir) if out_dir is not None else store.root
    # the run directory's own outputs follow the latest evaluation spec; a report written
    # elsewhere leaves the run's cached evaluations as they are
    ev = evaluate_run(plan, store, on_progress=on_progress, on_start=on_start,
                      prune=out.resolve() == store.root.resolve(), known=known)
    table = ev.table
    write_parquet(out / "metrics.parquet", table)
    summary = summarize(table, plan, ev.boot)
    recommendation = read_recommendation(store.root)
    curves = learning_curves(table, plan, recommendation)
    if curves:
        from fairensemble.advice.curves import difficulty_summary

        summary["difficulty"] = difficulty_summary(curves)
    write_json(out / "summary.json", summary)
    figures = all_figures(summary, plan, out / "figures", store.read_preview())
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
    atomic_write_text(out / "report.html", render_html(cfg, summary, figures, recommendation))
    return summary


def read_recommendation(root: Path) -> dict[str, Any] | None:
    path = Path(root) / "recommendation.json"
    return json.loads(path.read_text()) if path.is_file() else None


def learning_curves(table: Any, plan: Plan, recommendation: dict[str, Any] | None
                    ) -> list[dict[str, Any]] | None:
    """The learning curves a run supports: those ``recommend --budget`` fitted, else, for a run
    that sweeps ``train_size``, fitted here; None for a run of one size."""
    if recommendation is not None and recommendation.get("curves_by_point"):
        return recommendation["curves_by_point"]
    from fairensemble.advice.curves import run_curves, sweeps_sizes

    if not sweeps_sizes(plan) or plan.cfg.mixes is not None:
        return None
    return run_curves(table, plan, n_boot=plan.cfg.analysis.n_boot, seed=plan.cfg.seed)


# ----------------------------------------------------------------------------- tables
# Each table is built once as plain cells and rendered twice: for the terminal (rich) and as
# a sortable HTML <table>. A column that compares several values (k=1 -> k=E, means | 95% CI,
# one value per group) is one terminal column and one HTML column per part, so every HTML
# column sorts on one number.


@dataclass(frozen=True)
class Cell:
    text: str
    key: float | None = None  # what the HTML table sorts on (None: the text)
    cls: str | None = None  # the HTML cell's class (a verdict's colour)


@dataclass(frozen=True)
class Col:
    name: str  # the terminal's header
    parts: tuple[str, ...] = ()  # one HTML column per part, headed "<stem> (<part>)"
    sep: str = " -> "  # joins the parts in the terminal
    stem: str | None = None  # the HTML header's stem (default: name)
    justify: str = "center"
    named_parts: bool = False  # the terminal writes each part's name before its value

    def terminal(self, value: Cell | tuple[Cell, ...]) -> str:
        if isinstance(value, Cell):
            return value.text
        if self.named_parts:
            return self.sep.join(f"{p} {c.text}" for p, c in zip(self.parts, value))
        return self.sep.join(c.text for c in value)

    def headers(self) -> list[str]:
        stem = self.stem or self.name
        return [f"{stem} ({p})" for p in self.parts] if self.parts else [stem]

    def cells(self, value: Cell | tuple[Cell, ...]) -> list[Cell]:
        if isinstance(value, Cell):  # one value standing for every part (n/a)
            return [value] * max(1, len(self.parts))
        return list(value)


Row = list[Cell | tuple[Cell, ...]]


@dataclass(frozen=True)
class Tabular:
    title: str
    columns: list[Col]
    rows: list[Row]

    def rich(self) -> Table:
        table = Table(title=self.title or None, title_justify="left")
        for col in self.columns:
            table.add_column(col.name, justify=col.justify)
        for row in self.rows:
            table.add_row(*[col.terminal(v) for col, v in zip(self.columns, row)])
        return table

    def html(self) -> str:
        headers = [h for col in self.columns for h in col.headers()]
        rows = [[c for col, v in zip(self.columns, row) for c in col.cells(v)]
                for row in self.rows]
        return html_table(headers, rows, self.title)


def html_table(headers: list[str], rows: list[list[Cell]], caption: str = "") -> str:
    """A sortable <table>: click a header to sort by its column (numbers as numbers)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    lines = []
    for row in rows:
        tds = []
        for c in row:
            sort = f" data-sort='{c.key:.12g}'" if c.key is not None and c.key == c.key else ""
            cls = f" class='{c.cls}'" if c.cls else ""
            tds.append(f"<td{sort}{cls}>{html.escape(c.text)}</td>")
        lines.append(f"<tr>{''.join(tds)}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f"<div class='wide'><table class='sortable'>{cap}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(lines)}</tbody></table></div>")


def _share(x: Any) -> Cell:
    return Cell(_fmt(x), float(x) if isinstance(x, (int, float)) else None)


def _value(x: float | None) -> Cell:
    return Cell(_num(x), x)


def _grid_cells(summary: dict[str, Any], p: dict[str, Any]) -> list[Cell]:
    values = [p["point"][f] for f in summary["grid_fields"]]
    return [Cell(str(grid_value(v)), v if isinstance(v, (int, float)) else None)
            for v in values]


def _grid_cols(summary: dict[str, Any]) -> list[Col]:
    return [Col(f.split(".")[-1], justify="right") for f in summary["grid_fields"]]


def _count(counts: dict[str, int], key: str, n: int) -> Cell:
    got = counts.get(key, 0)
    return Cell(f"{got}/{n}", got / n if n else None)


def summary_tabular(summary: dict[str, Any]) -> Tabular:
    """One row per grid point: optimal mixes and values for k=1 -> k=E, verdict counts."""
    E = summary["members"]
    pm = summary["primary_metric"]
    how = "95% bootstrap CI" if summary.get("intervals") == "bootstrap" else "95% CI"
    best = "min" if summary.get("direction") == "lower" else "max"
    ks = ("k=1", f"k={E}")
    columns = [
        *_grid_cols(summary),
        Col("min-gap mix", ks), Col("min gap", ks), Col(f"{best}-overall mix", ks),
        Col(f"{best} overall {pm}", ks),
        Col(f"positive-sum mixes\n(means | {how})", ("means", how), " | ",
            stem="positive-sum mixes"),
    ]
    rows = []
    for p in summary["grid_points"]:
        o1, oE = p["optimal"]["k=1"], p["optimal"][f"k={E}"]
        n = sum(p["verdict_counts"].values())
        c95 = p["verdict_95_counts"]
        rows.append([
            *_grid_cells(summary, p),
            (_share(o1["gap_min_ratio"]), _share(oE["gap_min_ratio"])),
            (_value(o1["gap_min_value"]), _value(oE["gap_min_value"])),
            (_share(o1["overall_best_ratio"]), _share(oE["overall_best_ratio"])),
            (_value(o1["overall_best_value"]), _value(oE["overall_best_value"])),
            (_count(p["verdict_counts"], "positive-sum", n),
             _count(c95, "positive-sum", n) if "n/a" not in c95 else Cell("n/a")),
        ])
    if one_mix(summary):  # no mix to choose: the optimal mixes' columns go
        mixes = {len(summary["grid_fields"]), len(summary["grid_fields"]) + 2}
        columns = [c for i, c in enumerate(columns) if i not in mixes]
        rows = [[v for i, v in enumerate(row) if i not in mixes] for row in rows]
    by = "" if one_mix(summary) else f" by share of {summary['ratio_group']}"
    title = (f"{summary['name']}: {pm}{by}, single model "
             f"(k=1) -> ensemble (k={E}); {summary['replicates']} replicate(s), "
             f"{summary['test_mix']} test mix")
    return Tabular(title, columns, rows)


def fairness_tabular(summary: dict[str, Any]) -> Tabular | None:
    """One row per grid point and fairness measure (lower is fairer): the mix that minimises
    it for k=1 -> k=E, and over mixes how often the ensemble narrowed or widened it."""
    measures = summary.get("fairness_measures") or []
    if not summary["grid_points"] or not measures:
        return None
    E, pm = summary["members"], summary["primary_metric"]
    ks = ("k=1", f"k={E}")
    columns = [*_grid_cols(summary), Col("measure"), Col("min mix", ks), Col("min value", ks),
               Col("ensemble narrowed | widened | no change",
                   ("narrowed", "widened", "no change"), " | ", stem="mixes where the ensemble")]
    rows = []
    for p in summary["grid_points"]:
        n = len(p["verdicts"])
        for m in measures:
            fm = p["fairness"][m]
            c = fm["counts"]
            effect = (Cell("n/a (no intervals)") if "n/a" in c else
                      tuple(Cell(str(c.get(key, 0)), c.get(key, 0) / n if n else None)
                            for key in ("narrowed", "widened", "no detectable change")))
            rows.append([
                *_grid_cells(summary, p), Cell(m),
                (_share(fm["k=1"]["min_ratio"]), _share(fm[f"k={E}"]["min_ratio"])),
                (_value(fm["k=1"]["min_value"]), _value(fm[f"k={E}"]["min_value"])),
                effect,
            ])
    if one_mix(summary):  # no mix to choose: the minimising mix's column goes
        at = len(summary["grid_fields"]) + 1
        columns = [c for i, c in enumerate(columns) if i != at]
        rows = [[v for i, v in enumerate(row) if i != at] for row in rows]
    return Tabular(f"fairness measures (lower is fairer; gap = gap in {pm}): k=1 -> k={E}",
                   columns, rows)


def summary_table(summary: dict[str, Any]) -> Table:
    return summary_tabular(summary).rich()


def fairness_table(summary: dict[str, Any]) -> Table | None:
    fairness = fairness_tabular(summary)
    return None if fairness is None else fairness.rich()


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
    for part in _parts_rich(_difficulty_parts(summary)):
        console.print(part)
    if one_mix(summary):  # the tables above say little about the groups themselves
        console.print(groups_tabular(summary).rich())


def _summary_html(summary: dict[str, Any]) -> str:
    fairness = fairness_tabular(summary)
    return summary_tabular(summary).html() + ("" if fairness is None else fairness.html())


def _signed(x: float | None, ci: list | None = None, digits: int = 4) -> Cell:
    """A change with its interval, sorting on the change."""
    if x is None:
        return Cell("n/a")
    lo, hi = ci if ci is not None else (None, None)
    tail = f" [{lo:+.{digits - 1}f}, {hi:+.{digits - 1}f}]" if lo is not None else ""
    return Cell(f"{x:+.{digits}f}{tail}", x)


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
        rows = [[_share(it.get("ratio", it.get("mix"))), Cell(it["group"]),
                 _signed(it["gain"], it["gain_ci95"], 4),
                 *[Cell("n/a") if it[m] is None else Cell(f"{it[m]:.4f}", it[m]) for m in div]]
                for it in items]
        headers = ["mix", "group", f"gain in {pm}, k=1 \u2192 {E}",
                   *[f"{m} (k={E})" for m in div]]
        parts.append(f"<h3>{html.escape(title)}</h3>{html_table(headers, rows)}")
    if not parts:
        return ""
    return ("<h2>Who benefits from the ensemble</h2><p>Per group, the gain from one member "
            f"to {E} beside how much the members differ on that group: disagreement (the "
            "share of member pairs that predict different labels) and ambiguity (mean member "
            "Brier score minus the ensemble's: what averaging removes).</p>" + "".join(parts))


def groups_tabular(summary: dict[str, Any]) -> Tabular:
    """Per grid point and mix, each group's primary metric at k=1 and k=E and its change with
    its interval, the per-attribute margins of intersectional groups beside them, then
    overall and the gap."""
    E, pm = summary["members"], summary["primary_metric"]
    several = not one_mix(summary)
    ks = ("k=1", f"k={E}")
    columns = [*_grid_cols(summary), *([Col("mix")] if several else []),
               Col("group", justify="left"), Col(pm, ks), Col("change (95% CI)")]
    rows: list[Row] = []
    for p in summary["grid_points"]:
        xcol = "mix" if p["verdicts"] and "mix" in p["verdicts"][0] else "ratio"
        level = {(str(lv[xcol]), lv["group"], lv["k"]): lv["mean"] for lv in p["levels"]}
        margins = p.get("margins") or []
        for v in p["verdicts"]:
            x = v[xcol]
            here = [m for m in margins if str(m[xcol]) == str(x)]
            values = {label: (level.get((str(x), label, 1)), level.get((str(x), label, E)),
                              v["change"][label])
                      for label in [*p["groups"], "overall", "gap"]}
            values.update({m["group"]: (m["k=1"], m[f"k={E}"],
                                        {"mean": m["change"], "ci95": m["ci95"]})
                           for m in here})
            order = [*p["groups"], *[m["group"] for m in here], "overall", "gap"]
            for label in order:
                v1, vE, ch = values[label]
                rows.append([*_grid_cells(summary, p), *([_share(x)] if several else []),
                             Cell(label), (_value(v1), _value(vE)),
                             _signed(ch["mean"], ch["ci95"])])
    how = ("bootstrap " if summary.get("intervals") == "bootstrap" else "")
    return Tabular(f"{pm} per group, single model (k=1) -> ensemble (k={E}), with the "
                   f"change's 95% {how}interval", columns, rows)


def _groups_html(summary: dict[str, Any]) -> str:
    """The per-group table, where the summary table says little about groups (one mix) or
    groups are intersectional (their margins)."""
    margins = any(p.get("margins") for p in summary["grid_points"])
    if not (margins or one_mix(summary)):
        return ""
    words = ("Each group is a combination of several attributes' values; a margin "
             "(<code>attribute=value</code>) pools the combinations holding that value, as a "
             "one-attribute analysis would see it. Gaps, worst groups and verdicts are over the "
             "combinations." if margins else "")
    return (f"<h2>Per group{' (intersectional, with margins)' if margins else ''}</h2>"
            f"<p>{words}</p>{groups_tabular(summary).html()}")


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
        rows = []
        for name, by_k in post.items():
            if not (isinstance(by_k, dict) and "k=1" in by_k):
                continue
            for k in sorted({1, E}):
                vals = by_k.get(f"k={k}", {})
                rows.append([Cell(name), Cell(str(k), k), *[_value(vals.get(key))
                                                             for key in keys]])
        lowered = post.get("eq_odds_lowered_by_threshold_eo_at_k=E")
        note = (f"<p>Equalized-odds thresholds lowered the equalized-odds difference at k={E} "
                f"in {lowered['cells']} of {lowered['of']} cells.</p>" if lowered else "")
        parts.append(f"<h3>{html.escape(title)}</h3>"
                     f"{html_table(['post', 'k', *keys], rows)}{note}")
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
        labels = [*p["groups"], "overall", "gap"]
        rows = [[_share(v.get("ratio", v.get("mix"))),
                 Cell(v["verdict"], cls=v["verdict"]), Cell(v["verdict_95"], cls=v["verdict_95"]),
                 *[_signed(v["change"][g]["mean"], v["change"][g]["ci95"], 4) for g in labels]]
                for v in p["verdicts"]]
        headers = ["mix", "verdict (means)", "verdict (95% CI)", *[f"\u0394 {g}" for g in labels]]
        parts.append(f"<h3>{html.escape(title)}: k=1 &rarr; k={E}</h3>"
                     f"{html_table(headers, rows)}")
    return "\n".join(parts)


def _ci(lo: float | None, hi: float | None) -> str:
    return "" if lo is None else f" [{lo:.3f}, {hi:.3f}]"


def _recommendation_parts(rec: dict[str, Any]) -> list[str | Tabular]:
    """What ``recommend`` found, per grid point: a headline, a table of objectives and, where
    the data cannot separate the candidates, a line saying so."""
    out: list[str | Tabular] = []
    E, metric = rec["members"], rec["metric"]
    how = ("95 % t-intervals over replicates" if rec["intervals"] == "replicates"
           else "95 % bootstrap intervals over test samples")
    for entry in rec["points"]:
        where = _point_label(entry["point"])
        b = entry["balanced"]
        groups = tuple(entry["groups"])
        per = ", ".join(f"{g} {b[g]['k=E']:.3f}{_ci(*b[g]['ci95'])}" for g in groups)
        out.append(
            f"{rec['name']}{' at ' + where if where else ''}: {metric} of the {E}-member "
            f"ensemble, {rec['replicates']} replicate(s), {how}.\n"
            f"Balanced mix: {per}; gap {b['gap']['k=E']:.3f}{_ci(*b['gap']['ci95'])}; "
            f"harder group: {b['harder_group']}. Moving the share of {entry['moved_group']}.")
        columns = [Col("objective", justify="left"), Col("recommended", justify="left"),
                   Col("indistinguishable (95 %)", justify="left"),
                   Col("value", justify="left"),
                   Col(f"per group at k={E}", groups, ", ", named_parts=True, justify="left"),
                   Col("gain from the ensemble (k=1 -> E)", groups, ", ", named_parts=True,
                       stem="gain from the ensemble", justify="left")]
        rows: list[Row] = []
        for name, o in entry["objectives"].items():
            at = o["at_recommended"]
            same = o["range"]
            rows.append([
                Cell(name + (" (chosen)" if name == entry["chosen_by"] else "")),
                _share(o["recommended"]),
                Cell((f"{same[0]:g} - {same[1]:g}" if same else str(o["indistinguishable"]))
                     + ("  flat valley" if o["flat_valley"] else ""),
                     same[0] if same else None),
                Cell(f"{o['value']:.3f}", o["value"]),
                tuple(Cell(f"{at[g]['k=E']:.3f}", at[g]["k=E"]) for g in groups),
                tuple(Cell(f"{at[g]['gain_from_1']:+.3f}{_ci(*at[g]['gain_ci95'])}",
                           at[g]["gain_from_1"]) for g in groups),
            ])
        out.append(Tabular("", columns, rows))
        flat = [n for n, o in entry["objectives"].items() if o["flat_valley"]]
        if flat:
            out.append(
                f"Flat valley ({', '.join(flat)}): the data cannot separate the shares listed "
                "as indistinguishable; any of them is as good as the recommended one.")
    return out


def _parts_rich(parts: list[str | Tabular]) -> list[Any]:
    """Headlines (Text) and tables for the terminal (``_parts_html``'s twin)."""
    return [part.rich() if isinstance(part, Tabular) else Text(part) for part in parts]


def _print_parts(parts: list[str | Tabular], console: Console | None) -> None:
    console = console or Console(width=120)
    for part in _parts_rich(parts):
        console.print(part)


def print_recommendation(rec: dict[str, Any], console: Console | None = None) -> None:
    """What ``recommend`` found, for the terminal."""
    _print_parts(_recommendation_parts(rec), console)


def _curve_parts(entry: dict[str, Any], budget: int | None = None) -> list[str | Tabular]:
    """One setting's learning curves: per ensemble size a table of each group's floor, data
    term and conflict term with their kind, a table of predicted shares at the budget, and
    the statements and warnings that go with them."""
    out: list[str | Tabular] = []
    where = _point_label(entry["point"])
    for key, label in (("single", "single model"), ("ensemble", "ensemble")):
        part = entry.get(key)
        if not part:
            continue
        at = next(iter(part["groups"].values()))["data_term_at"]
        title = (f"{where + ': ' if where else ''}{label} (k={part['k']}): errors "
                 f"(1 - {part.get('metric', 'metric')}) at {at['train_size']:,} "
                 f"with the moved group at the balanced share; 95 % intervals from refits on "
                 "resampled replicates")
        columns = [Col("group", justify="left"), Col("floor"), Col("data term"),
                   Col("conflict term"), Col("kind", justify="left"), Col("form", justify="left"),
                   Col("fit R2")]
        rows: list[Row] = []
        for g, v in part["groups"].items():
            rows.append([Cell(g), Cell(f"{v['floor']:.3f}{_ci(*v['floor_ci'])}", v["floor"]),
                         Cell(f"{v['data_term']:.3f}{_ci(*v['data_term_ci'])}", v["data_term"]),
                         Cell(f"{v['conflict_term']:.3f}{_ci(*v['conflict_term_ci'])}",
                              v["conflict_term"]),
                         Cell(v["kind"]), Cell(v["form"]),
                         _value(v["fit"]["r2"] if "fit" in v else v.get("r2"))])
        out.append(Tabular(title, columns, rows))
        out.append(part["difficulty"] if "difficulty" in part else part["statement"])
        if budget is not None and "predicted" in part:
            ext = part["extrapolation"]
            trust = ("within what the fits support" if ext["supported"] else
                     "NOT supported by the fits: " + "; ".join(ext["reasons"]))
            cols = [Col("objective", justify="left"), Col(f"best share of {part['moved_group']}",
                                                          justify="left"),
                    Col("interval (95 %)", justify="left"), Col("predicted value"),
                    Col("indistinguishable shares", justify="left")]
            prow: list[Row] = []
            for name, c in part["predicted"].items():
                lo, hi = c["interval"]
                prow.append([Cell(name + ("  (flat)" if c.get("flat") else "")),
                             _share(c["share"]),
                             Cell("n/a" if lo is None else f"{lo:g} - {hi:g}", lo),
                             Cell(f"{c['value']:.3f}{_ci(*c['value_ci'])}", c["value"]),
                             Cell("{:g} - {:g}".format(*c["indistinguishable"]),
                                  c["indistinguishable"][0])])
            out.append(Tabular(f"predicted at a training set of {budget:,} "
                               f"({ext['factor']:.1f} x the largest measured size, {trust})",
                               cols, prow))
        out += [f"warning: {w}" for w in part["warnings"]]
    return out


def _budget_parts(rec: dict[str, Any]) -> list[str | Tabular]:
    head = (f"{rec['name']}: {rec['metric']} measured at train sizes "
            f"{', '.join(f'{n:,}' for n in rec['sizes'])} x shares "
            f"{', '.join(f'{s:g}' for s in rec['shares'])} of {rec['moved_group']}, "
            f"{rec['replicates']} replicate(s), {rec['members']} members; planning for a "
            f"training set of {rec['budget']:,} ({rec['extrapolation_factor']:.1f} x the largest "
            "measured size).")
    parts: list[str | Tabular] = [head]
    for entry in rec["curves_by_point"]:
        parts += _curve_parts(entry, rec["budget"])
    return parts


def print_budget(rec: dict[str, Any], console: Console | None = None) -> None:
    """What ``recommend --budget`` found, for the terminal."""
    _print_parts(_budget_parts(rec), console)


def _difficulty_parts(summary: dict[str, Any]) -> list[str | Tabular]:
    """A run that swept ``train_size``: which kind of difficulty each group has."""
    return [p for entry in summary.get("difficulty") or [] for p in _curve_parts(entry)]


def _parts_html(parts: list[str | Tabular]) -> str:
    return "".join(part.html() if isinstance(part, Tabular) else
                   "".join(f"<p>{html.escape(line)}</p>" for line in part.splitlines())
                   for part in parts)


def _difficulty_html(summary: dict[str, Any]) -> str:
    parts = _difficulty_parts(summary)
    if not parts:
        return ""
    return ("<h2>Which kind of difficulty?</h2><p>From per-group learning curves fitted to the "
            "sizes this run swept: error = floor + a data term (what more of the group's own "
            "data, and of all data, would remove) + a conflict term (what the other groups' "
            "share of the training set costs the group at that mix). A higher floor calls for "
            "better labels or features, a large data term for more of that group's data, a "
            "large conflict term for a larger share of it.</p>" + _parts_html(parts))


def _recommendation_html(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return ""
    if rec.get("curves_by_point"):
        return ("<h2>How much data of which group?</h2><p>From <code>fairensemble recommend "
                "--budget</code>: the mix sweep measured at a few training-set sizes, each "
                "group's learning curve fitted, and the best share predicted for the budget."
                "</p>" + _parts_html(_budget_parts(rec)))
    body = _parts_html(_recommendation_parts(rec))
    return ("<h2>Which mix should I collect?</h2><p>From <code>fairensemble recommend</code>: "
            "the balanced mix measures which group is harder; the share of the moved group "
            f"is then swept coarsely and refined around the best share.</p>{body}")


# clicking a header sorts its table by that column: numbers (a cell's data-sort, else its
# leading number) before text, a second click reverses
SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(th => th.addEventListener("click", () => {
  const table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
  const up = th.dataset.order !== "up";
  table.querySelectorAll("th").forEach(h => delete h.dataset.order);
  th.dataset.order = up ? "up" : "down";
  const key = td => {
    const s = td.dataset.sort ?? td.textContent.trim(), n = parseFloat(s);
    return isNaN(n) ? [1, s] : [0, n];
  };
  const rows = [...body.rows].sort((a, b) => {
    const [p, x] = key(a.cells[col]), [q, y] = key(b.cells[col]);
    const c = p - q || (x < y ? -1 : x > y ? 1 : 0);
    return up ? c : -c;
  });
  body.append(...rows);
}));
"""

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1240px; margin: 2em auto; padding: 0 1em;
       color: #222; }
.wide { overflow-x: auto; margin-bottom: 1.5em; }
table { border-collapse: collapse; font-size: 0.85em; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
td, th { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
td { white-space: nowrap; }
th { background: #f3f3f3; cursor: pointer; user-select: none; position: sticky; top: 0; }
th[data-order="up"]::after { content: " \\25B2"; }
th[data-order="down"]::after { content: " \\25BC"; }
tbody tr:nth-child(even) { background: #fafafa; }
.positive-sum { color: #176317; } .leveling-down { color: #a11; } .mixed { color: #a60; }
figure { margin: 1.5em 0; } img { max-width: 100%; }
figcaption { font-size: 0.9em; color: #444; max-width: 60em; }
pre { font-size: 0.8em; }
"""


def _imported_html(cfg: RunConfig) -> str:
    """Where an imported run's predictions came from (nothing for a trained run)."""
    if cfg.dataset.kind != "imported":
        return ""
    return (f"<p>{html.escape(cfg.dataset.describe())} by <code>fairensemble analyze</code>."
            "</p>")


def render_html(cfg: RunConfig, summary: dict[str, Any], figures: list[Drawn],
                recommendation: dict[str, Any] | None = None) -> str:
    imgs = []
    for i, fig in enumerate(figures, 1):
        data = base64.b64encode(fig.path.read_bytes()).decode()
        imgs.append(f"<figure><img src='data:image/png;base64,{data}' "
                    f"alt='{html.escape(fig.caption)}'><figcaption><b>Figure {i}.</b> "
                    f"{html.escape(fig.caption)}</figcaption></figure>")
    intervals = describe(summary["intervals"], summary["replicates"])
    return f"""<!doctype html>
<html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fairensemble: {html.escape(cfg.name)}</title>
<style>{STYLE}</style></head><body>
<h1>fairensemble report: {html.escape(cfg.name)}</h1>
<p>Does a homogeneous ensemble of {cfg.ensemble.members} members lift every group
(positive-sum) or trade one for another, and which training mix minimises the gap or maximises
overall {html.escape(cfg.primary)}? Overall metrics use the <b>{cfg.test_mix}</b> test
mix. Intervals: {html.escape(intervals)}. Click a column's header to sort a table by it.</p>
{_recommendation_html(recommendation)}
<h2>Summary</h2>
{_imported_html(cfg)}{_summary_html(summary)}
{_groups_html(summary)}
{_difficulty_html(summary) if not (recommendation or {}).get("curves_by_point") else ""}
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
<script>{SORT_SCRIPT}</script>
</body></html>
"""
