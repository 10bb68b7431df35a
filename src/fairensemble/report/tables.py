"""Tables built once as plain cells and rendered twice: for the terminal (rich) and as sortable
HTML. The summary tables a run prints (optima, fairness measures, groups) are here."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from fairensemble.common.text import grid_value, interval, number, share
from fairensemble.report.plots import one_mix

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


def share_cell(x: Any) -> Cell:
    return Cell(share(x), float(x) if isinstance(x, (int, float)) else None)


def value_cell(x: float | None) -> Cell:
    return Cell(number(x), x)


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
            (share_cell(o1["gap_min_ratio"]), share_cell(oE["gap_min_ratio"])),
            (value_cell(o1["gap_min_value"]), value_cell(oE["gap_min_value"])),
            (share_cell(o1["overall_best_ratio"]), share_cell(oE["overall_best_ratio"])),
            (value_cell(o1["overall_best_value"]), value_cell(oE["overall_best_value"])),
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
                (share_cell(fm["k=1"]["min_ratio"]), share_cell(fm[f"k={E}"]["min_ratio"])),
                (value_cell(fm["k=1"]["min_value"]), value_cell(fm[f"k={E}"]["min_value"])),
                effect,
            ])
    if one_mix(summary):  # no mix to choose: the minimising mix's column goes
        at = len(summary["grid_fields"]) + 1
        columns = [c for i, c in enumerate(columns) if i != at]
        rows = [[v for i, v in enumerate(row) if i != at] for row in rows]
    return Tabular(f"fairness measures (lower is fairer; gap = gap in {pm}): k=1 -> k={E}",
                   columns, rows)


def levers_tabular(summary: dict[str, Any]) -> Tabular | None:
    """Per scenario, the cheapest setting that reaches each target gap without lowering the
    overall metric, and the smallest gap reachable so (``evaluation.levers``)."""
    lv = summary.get("levers")
    if not lv or not lv["scenarios"]:
        return None
    settings, pm, xcol = lv["settings"], lv["metric"], lv["mix_column"]
    scenario_fields = list(lv["scenarios"][0]["scenario"])
    columns = [*(Col(f.split(".")[-1]) for f in scenario_fields),
               Col("target", justify="left"), Col("setting: mitigation, mix, k, thresholds",
                                                   justify="left"),
               Col(f"gap in {pm}"), Col(f"overall {pm}"), Col("trainings"), Col("seconds")]
    rows: list[Row] = []
    for sc in lv["scenarios"]:
        where = [Cell(str(grid_value(v))) for v in sc["scenario"].values()]
        base = settings[sc["baseline"]]
        rows.append([*where, Cell("baseline"), _setting_cell(base, xcol), *_lever_cells(base)])
        for c in sc["cheapest"]:
            s = None if c["setting"] is None else settings[c["setting"]]
            target = c["target"] + ("" if c["max_gap"] is None else f" ({c['max_gap']:.3f})")
            if s is None:
                rows.append([*where, Cell(target), Cell("none reaches it"), Cell(""), Cell(""),
                             Cell(""), Cell("")])
            else:
                rows.append([*where, Cell(target), _setting_cell(s, xcol), *_lever_cells(s)])
    tol = lv.get("tolerance") or 0.0
    return Tabular(f"which lever, at what cost: the cheapest setting that reaches each gap "
                   f"without lowering the overall {pm}"
                   + (f" by more than {tol:g}" if tol else "") + " (means over replicates)",
                   columns, rows)


def _setting_cell(s: dict[str, Any], xcol: str) -> Cell:
    post = "" if s["post"] == "none" else f", {s['post']}"
    return Cell(f"{s['mitigation']}, {xcol} {share(s[xcol])}, k={s['k']}{post}")


def _lever_cells(s: dict[str, Any]) -> list[Cell]:
    return [Cell(f"{s['gap']:.3f}{interval(s['gap_ci95'])}", s["gap"]),
            Cell(f"{s['overall']:.3f}{interval(s['overall_ci95'])}", s["overall"]),
            Cell(str(s["trainings"]), s["trainings"]),
            Cell("n/a" if s["seconds"] is None else f"{s['seconds']:.3g}", s["seconds"])]


def summary_table(summary: dict[str, Any]) -> Table:
    return summary_tabular(summary).rich()


def fairness_table(summary: dict[str, Any]) -> Table | None:
    fairness = fairness_tabular(summary)
    return None if fairness is None else fairness.rich()


def signed_cell(x: float | None, ci: list | None = None, digits: int = 4) -> Cell:
    """A change with its interval, sorting on the change."""
    if x is None:
        return Cell("n/a")
    lo, hi = ci if ci is not None else (None, None)
    tail = f" [{lo:+.{digits - 1}f}, {hi:+.{digits - 1}f}]" if lo is not None else ""
    return Cell(f"{x:+.{digits}f}{tail}", x)


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
    xcol = summary["mix_column"]
    for p in summary["grid_points"]:
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
                rows.append([*_grid_cells(summary, p), *([share_cell(x)] if several else []),
                             Cell(label), (value_cell(v1), value_cell(vE)),
                             signed_cell(ch["mean"], ch["ci95"])])
    how = ("bootstrap " if summary.get("intervals") == "bootstrap" else "")
    return Tabular(f"{pm} per group, single model (k=1) -> ensemble (k={E}), with the "
                   f"change's 95% {how}interval", columns, rows)


