"""What ``recommend`` and the learning curves found, as headlines and tables: printed to the
terminal and rendered into report.html from the same parts."""

from __future__ import annotations

from typing import Any

from fairensemble.common.text import interval, number, point_label, share
from fairensemble.report.tables import Cell, Col, Row, Tabular, share_cell, value_cell


def recommendation_parts(rec: dict[str, Any]) -> list[str | Tabular]:
    """What ``recommend`` found, per grid point: a headline, a table of objectives and, where
    the data cannot separate the candidates, a line saying so."""
    out: list[str | Tabular] = []
    E, metric = rec["members"], rec["metric"]
    how = ("95 % t-intervals over replicates" if rec["intervals"] == "replicates"
           else "95 % bootstrap intervals over test samples")
    for entry in rec["points"]:
        where = point_label(entry["point"])
        b = entry["balanced"]
        groups = tuple(entry["groups"])
        per = ", ".join(f"{g} {b[g]['k=E']:.3f}{interval(b[g]['ci95'])}" for g in groups)
        out.append(
            f"{rec['name']}{' at ' + where if where else ''}: {metric} of the {E}-member "
            f"ensemble, {rec['replicates']} replicate(s), {how}.\n"
            f"Balanced mix: {per}; gap {b['gap']['k=E']:.3f}{interval(b['gap']['ci95'])}; "
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
                share_cell(o["recommended"]),
                Cell((f"{same[0]:g} - {same[1]:g}" if same else str(o["indistinguishable"]))
                     + ("  flat valley" if o["flat_valley"] else ""),
                     same[0] if same else None),
                Cell(f"{o['value']:.3f}", o["value"]),
                tuple(Cell(f"{at[g]['k=E']:.3f}", at[g]["k=E"]) for g in groups),
                tuple(Cell(f"{at[g]['gain_from_1']:+.3f}{interval(at[g]['gain_ci95'])}",
                           at[g]["gain_from_1"]) for g in groups),
            ])
        out.append(Tabular("", columns, rows))
        flat = [n for n, o in entry["objectives"].items() if o["flat_valley"]]
        if flat:
            out.append(
                f"Flat valley ({', '.join(flat)}): the data cannot separate the shares listed "
                "as indistinguishable; any of them is as good as the recommended one.")
    return out


def curve_parts(entry: dict[str, Any], budget: int | None = None) -> list[str | Tabular]:
    """One setting's learning curves: per ensemble size a table of each group's floor, data
    term and conflict term with their kind, a table of predicted shares at the budget, and
    the statements and warnings that go with them."""
    out: list[str | Tabular] = []
    where = point_label(entry["point"])
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
            rows.append([Cell(g), Cell(f"{v['floor']:.3f}{interval(v['floor_ci'])}", v["floor"]),
                         Cell(f"{v['data_term']:.3f}{interval(v['data_term_ci'])}", v["data_term"]),
                         Cell(f"{v['conflict_term']:.3f}{interval(v['conflict_term_ci'])}",
                              v["conflict_term"]),
                         Cell(v["kind"]), Cell(v["form"]),
                         value_cell(v["fit"]["r2"] if "fit" in v else v.get("r2"))])
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
                             share_cell(c["share"]),
                             Cell("n/a" if lo is None else f"{lo:g} - {hi:g}", lo),
                             Cell(f"{c['value']:.3f}{interval(c['value_ci'])}", c["value"]),
                             Cell("{:g} - {:g}".format(*c["indistinguishable"]),
                                  c["indistinguishable"][0])])
            out.append(Tabular(f"predicted at a training set of {budget:,} "
                               f"({ext['factor']:.1f} x the largest measured size, {trust})",
                               cols, prow))
        out += [f"warning: {w}" for w in part["warnings"]]
    return out


def budget_parts(rec: dict[str, Any]) -> list[str | Tabular]:
    head = (f"{rec['name']}: {rec['metric']} measured at train sizes "
            f"{', '.join(f'{n:,}' for n in rec['sizes'])} x shares "
            f"{', '.join(f'{s:g}' for s in rec['shares'])} of {rec['moved_group']}, "
            f"{rec['replicates']} replicate(s), {rec['members']} members; planning for a "
            f"training set of {rec['budget']:,} ({rec['extrapolation_factor']:.1f} x the largest "
            "measured size).")
    parts: list[str | Tabular] = [head]
    for entry in rec["curves_by_point"]:
        parts += curve_parts(entry, rec["budget"])
    return parts


def difficulty_parts(summary: dict[str, Any]) -> list[str | Tabular]:
    """A run that swept ``train_size``: which kind of difficulty each group has."""
    return [p for entry in summary.get("difficulty") or [] for p in curve_parts(entry)]


def raters_parts(summary: dict[str, Any]) -> list[str | Tabular]:
    """A run with raters: per setting, the three measures of each group's difficulty side by
    side (the raters' floor, the learning curves' floor, the error at the balanced mix) and
    which group each calls harder (``evaluation.raters.difficulty_measures``)."""
    out: list[str | Tabular] = []
    E, pm, xcol = summary["members"], summary["primary_metric"], summary["mix_column"]
    ks = ("k=1", f"k={E}")
    for m in summary.get("difficulty_measures") or []:
        where = point_label(m["point"])
        x = m["balanced_mix"][xcol]
        title = (f"{where + ': ' if where else ''}three measures of difficulty at train size "
                 f"{m['train_size']:,}, as errors (1 - {pm}"
                 + (")" if summary.get("direction") != "lower" else f", or {pm} itself)")
                 + f"; balanced mix: {xcol} {share(x) if x is not None else 'n/a'}")
        columns = [Col("group", justify="left"), Col("raters per sample"),
                   Col("rater disagreement"), Col("rater noise"), Col("rater floor"),
                   Col("learning-curve floor", ks), Col("error at the balanced mix", ks)]
        rows: list[Row] = []
        groups = m["groups"]
        for g, v in groups.items():
            curve = v["curve_floor"]
            rows.append([
                Cell(g), value_cell(v["rater_count"]), value_cell(v["rater_disagreement"]),
                value_cell(v["rater_noise"]), value_cell(v["rater_floor"]),
                Cell("n/a") if curve is None else tuple(
                    Cell(f"{number(curve.get(k))}{interval(curve.get(f'{k}_ci'))}", curve.get(k))
                    for k in ks),
                tuple(value_cell(v["balanced_error"].get(k)) for k in ks)])
        rows.append([Cell("gap (max - min)"), Cell(""), _spread(groups, "rater_disagreement"),
                     _spread(groups, "rater_noise"), _spread(groups, "rater_floor"),
                     tuple(_spread(groups, "curve_floor", k) for k in ks),
                     tuple(value_cell(m["balanced_mix"]["gap"].get(k)) for k in ks)])
        out.append(Tabular(title, columns, rows))
        h = m["harder"]
        said = (f"harder group by the raters' floor: {h['raters'] or 'none'}; by the learning "
                f"curves' floor: "
                + (h["learning_curves"] or "none" if any(v["curve_floor"] for v in
                                                          groups.values())
                   else "n/a (sweep train_size to fit them)")
                + f"; by the error at the balanced mix: {h['balanced_mix'] or 'none'} "
                f"(k={E})")
        agree = {True: "the measures agree", False: "the measures DISAGREE",
                 None: "too few measures to compare"}[m["agree"]]
        out.append(f"{said}: {agree}."
                   + (" Members are scored on the target column; the raters' floor is that of "
                      "their majority." if m.get("scored_on") == "target" else ""))
    return out


def _spread(groups: dict[str, Any], key: str, k: str | None = None) -> Cell:
    """The largest minus the smallest group's value (a floor's gap), or n/a."""
    vals = [v[key] if k is None else (v[key] or {}).get(k) for v in groups.values()]
    vals = [x for x in vals if x is not None]
    return value_cell(max(vals) - min(vals)) if len(vals) >= 2 else Cell("n/a")


def levers_parts(rec: dict[str, Any]) -> list[str | Tabular]:
    """What ``recommend --cost`` found, per scenario: the baseline, the smallest gap the cost
    buys without lowering the overall metric, and the cheapest setting the intervals cannot
    tell apart from it."""
    metric, cost, tol = rec["metric"], rec["cost"], rec["tolerance"]
    how = ("95 % t-intervals over replicates" if rec["intervals"] == "replicates"
           else "95 % bootstrap intervals over test samples")
    head = (f"{rec['name']}: the smallest gap in {metric} for at most {cost} trainings "
            f"(mixes x mitigations x ensembles of 1..{cost} members x group thresholds), "
            f"the overall {metric} allowed to drop by {tol:g}; {rec['replicates']} "
            f"replicate(s), {how}.")
    out: list[str | Tabular] = [head]
    columns = [Col("", justify="left"), Col("mitigation", justify="left"),
               Col("mix", justify="left"), Col("k"), Col("thresholds", justify="left"),
               Col(f"gap in {metric}"), Col("change vs baseline (95 %)"),
               Col(f"overall {metric}"), Col("trainings")]
    for entry in rec["levers"]:
        xcol = "ratio" if "ratio" in entry["baseline"] else "mix"
        rows: list[Row] = []
        for label, key in (("baseline", "baseline"), ("smallest gap", "recommended"),
                           ("cheapest as good", "cheapest_indistinguishable")):
            c = entry[key]
            change = c["gap_change_vs_baseline_ci95"]
            rows.append([Cell(label), Cell(c["mitigation"]), share_cell(c[xcol]),
                         Cell(str(c["k"]), c["k"]), Cell(c["post"]),
                         Cell(f"{c['gap']:.3f}{interval(c['gap_ci95'])}", c["gap"]),
                         Cell("" if key == "baseline" else interval(change).strip() or "n/a",
                              change[0]),
                         value_cell(c["overall"]), Cell(str(c["trainings"]), c["trainings"])])
        where = point_label(entry["scenario"])
        out.append(Tabular(f"{where + ': ' if where else ''}{entry['eligible']} of "
                           f"{entry['candidates']} settings keep the overall {metric}; "
                           f"{entry['indistinguishable']} cannot be told apart from the "
                           "smallest gap", columns, rows))
    return out


def any_recommendation_parts(rec: dict[str, Any]) -> list[str | Tabular]:
    """The parts of whichever recommendation ``rec`` is: a mix, a budget, the levers."""
    if rec.get("kind") == "levers":
        return levers_parts(rec)
    if rec.get("curves_by_point"):
        return budget_parts(rec)
    return recommendation_parts(rec)
