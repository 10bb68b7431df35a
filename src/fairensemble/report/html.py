"""report.html: one self-contained page (figures inlined, tables sortable) rendered from the
summary, the figures and what ``recommend`` found."""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from fairensemble.common.text import point_label
from fairensemble.config import RunConfig, dump_config
from fairensemble.evaluation.intervals import describe
from fairensemble.report.parts import (
    budget_parts,
    difficulty_parts,
    levers_parts,
    raters_parts,
    recommendation_parts,
)
from fairensemble.report.plots import Drawn, one_mix
from fairensemble.report.tables import (
    Cell,
    Tabular,
    fairness_tabular,
    groups_tabular,
    html_table,
    levers_tabular,
    share_cell,
    signed_cell,
    summary_tabular,
    value_cell,
)


def _summary_html(summary: dict[str, Any]) -> str:
    fairness = fairness_tabular(summary)
    return summary_tabular(summary).html() + ("" if fairness is None else fairness.html())


def _benefits_html(summary: dict[str, Any]) -> str:
    """Who benefits from the ensemble: per-group gain beside per-group member diversity."""
    parts = []
    E, pm = summary["members"], summary["primary_metric"]
    for p in summary["grid_points"]:
        items = p.get("benefits") or []
        if not items:
            continue
        title = point_label(p["point"], empty="all cells")
        div = [m for m in ("disagreement", "ambiguity") if m in items[0]]
        rows = [[share_cell(it[summary["mix_column"]]), Cell(it["group"]),
                 signed_cell(it["gain"], it["gain_ci95"], 4),
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
        title = point_label(p["point"], empty="all cells")
        keys = sorted({key for name, by_k in post.items() if isinstance(by_k, dict)
                       and "k=1" in by_k for key in by_k["k=1"]})
        rows = []
        for name, by_k in post.items():
            if not (isinstance(by_k, dict) and "k=1" in by_k):
                continue
            for k in sorted({1, E}):
                vals = by_k.get(f"k={k}", {})
                rows.append([Cell(name), Cell(str(k), k), *[value_cell(vals.get(key))
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
        title = point_label(p["point"], empty="all cells")
        labels = [*p["groups"], "overall", "gap"]
        rows = [[share_cell(v[summary["mix_column"]]),
                 Cell(v["verdict"], cls=v["verdict"]), Cell(v["verdict_95"], cls=v["verdict_95"]),
                 *[signed_cell(v["change"][g]["mean"], v["change"][g]["ci95"], 4) for g in labels]]
                for v in p["verdicts"]]
        headers = ["mix", "verdict (means)", "verdict (95% CI)", *[f"\u0394 {g}" for g in labels]]
        parts.append(f"<h3>{html.escape(title)}: k=1 &rarr; k={E}</h3>"
                     f"{html_table(headers, rows)}")
    return "\n".join(parts)


def parts_html(parts: list[str | Tabular]) -> str:
    return "".join(part.html() if isinstance(part, Tabular) else
                   "".join(f"<p>{html.escape(line)}</p>" for line in part.splitlines())
                   for part in parts)


def _difficulty_html(summary: dict[str, Any]) -> str:
    parts = difficulty_parts(summary)
    if not parts:
        return ""
    return ("<h2>Which kind of difficulty?</h2><p>From per-group learning curves fitted to the "
            "sizes this run swept: error = floor + a data term (what more of the group's own "
            "data, and of all data, would remove) + a conflict term (what the other groups' "
            "share of the training set costs the group at that mix). A higher floor calls for "
            "better labels or features, a large data term for more of that group's data, a "
            "large conflict term for a larger share of it.</p>" + parts_html(parts))


def _raters_html(summary: dict[str, Any]) -> str:
    parts = raters_parts(summary)
    if not parts:
        return ""
    return ("<h2>Three measures of difficulty</h2><p>How hard each group's task is, measured "
            "three ways. The raters' floor: from how often two of a group's raters disagree on "
            "a test sample, the label noise that implies (every rater flipping a label at that "
            "rate, independently), and the error a model that knew the true labels would still "
            "make against the raters' majority it is scored on. The learning curves' floor: the "
            "error more training data would not remove, fitted to the training-set sizes this "
            "run swept. The balanced mix: each group's error, and the gap, when the training "
            "set holds the groups in equal shares. The floors are the part of a gap no training "
            "mix can close; a gap at the balanced mix larger than the difference in floors is "
            "what data and the mix can still act on.</p>" + parts_html(parts))


def _recommendation_html(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return ""
    if rec.get("kind") == "levers":
        return ("<h2>Which lever, for a given cost?</h2><p>From <code>fairensemble recommend "
                "--cost</code>: every mix under every mitigation, ensembles of every size up "
                "to the cost, with and without group thresholds; the smallest gap that keeps "
                "the overall metric, and the cheapest setting as good.</p>"
                + parts_html(levers_parts(rec)))
    if rec.get("curves_by_point"):
        return ("<h2>How much data of which group?</h2><p>From <code>fairensemble recommend "
                "--budget</code>: the mix sweep measured at a few training-set sizes, each "
                "group's learning curve fitted, and the best share predicted for the budget."
                "</p>" + parts_html(budget_parts(rec)))
    body = parts_html(recommendation_parts(rec))
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


def _levers_html(summary: dict[str, Any]) -> str:
    table = levers_tabular(summary)
    if table is None:
        return ""
    cost = summary.get("cost") or {}
    spent = (f" This run trained {cost['trainings']:,} members"
             + (f" in {cost['train_seconds']:.1f} s" if cost.get("train_seconds") else "")
             + (f" ({cost['train_flops']:.3g} training FLOPs)" if cost.get("train_flops")
                else "") + "." if cost else "")
    return ("<h2>Which lever, at what cost?</h2><p>Every setting of the training mix, the "
            "ensemble size, the mitigation and group-specific thresholds, against what it costs "
            "to train: an ensemble of k costs k trainings, thresholds cost none (a validation "
            "pass), a mix costs no training but data to collect." + html.escape(spent)
            + " The figure 'Every lever at its cost' draws them all with the Pareto front.</p>"
            + table.html())


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
{_raters_html(summary)}
<h2>Figures</h2>
{''.join(imgs)}
{_benefits_html(summary)}
{_post_html(summary)}
{_levers_html(summary)}
<h2>Positive-sum verdicts</h2>
{_verdicts_html(summary)}
<h2>Configuration</h2>
<pre>{html.escape(dump_config(cfg))}</pre>
<details><summary>summary.json</summary><pre>{html.escape(json.dumps(summary, indent=1))}</pre>
</details>
<script>{SORT_SCRIPT}</script>
</body></html>
"""

