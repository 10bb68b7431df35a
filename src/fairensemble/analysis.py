"""From stored member predictions to tidy metrics, optimal mixes and positive-sum verdicts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .ensemble import evaluate_cell
from .store import RunStore
from .sweep import Plan, derive_seed

TOL = 1e-12  # a change this small counts as no change


def _evaluate_one(args: tuple) -> pd.DataFrame:
    run_dir, cell, groups, ks, draws, metrics, test_mix, seed = args
    arrays, _ = RunStore(run_dir).read_cell(cell.id)
    return evaluate_cell(arrays["probs_test"], arrays["y_test"], arrays["g_test"], groups, ks,
                         draws, metrics, test_mix, seed).table


def evaluate_run(plan: Plan, store: RunStore, workers: int = 1) -> pd.DataFrame:
    """metrics.parquet's table: one row per (grid point, ratio, replicate, k, group, metric)."""
    cfg = plan.cfg
    ks = [k for k in cfg.ks() if k <= cfg.ensemble.members]
    seed = derive_seed(cfg.seed, "draws")
    jobs = [
        (str(store.root), c, plan.groups[c.point_index], ks, cfg.ensemble.draws, list(cfg.metrics),
         cfg.test_mix, seed)
        for c in plan.cells
    ]
    if workers > 1 and len(jobs) > 8:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            frames = list(pool.map(_evaluate_one, jobs, chunksize=4))
    else:
        frames = [_evaluate_one(job) for job in jobs]
    out = []
    for cell, df in zip(plan.cells, frames):
        df = df.copy()
        for key, value in cell.point.items():
            df.insert(0, key, value)
        pos = len(cell.point)
        df.insert(pos, "ratio", cell.ratio)
        df.insert(pos + 1, "replicate", cell.replicate)
        if cell.mix is not None:
            df.insert(pos, "mix", _mix_label(cell.mix))
        out.append(df)
    table = pd.concat(out, ignore_index=True)
    table["k"] = table["k"].astype("int64")
    table["n_draws"] = table["n_draws"].astype("int64")
    return table


def _mix_label(mix: dict[str, float]) -> str:
    return ",".join(f"{g}={s:g}" for g, s in mix.items())


def grid_fields(plan: Plan) -> list[str]:
    return list(plan.cfg.grid)


def mix_column(table: pd.DataFrame) -> str:
    return "mix" if "mix" in table.columns else "ratio"


def _ci95(values: np.ndarray) -> tuple[float | None, float | None]:
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2 or np.isnan(values).any():
        return None, None
    half = stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n)
    m = values.mean()
    return float(m - half), float(m + half)


def _significant(change: dict[str, Any]) -> float:
    """The mean change where its 95 % interval excludes 0, else 0 (no detectable change)."""
    lo, hi = change["ci95"]
    if lo is None or (lo <= 0.0 <= hi):
        return 0.0
    return change["mean"]


def _verdict_95(changes: dict[str, dict], groups: list[str]) -> str:
    if any(changes[g]["ci95"][0] is None for g in [*groups, "gap"]):
        return "n/a"  # fewer than 2 replicates (or an undefined metric): no interval
    return verdict({g: _significant(changes[g]) for g in groups}, _significant(changes["gap"]))


def verdict(group_changes: dict[str, float], gap_change: float) -> str:
    """positive-sum: every group improves (or holds) and the gap does not widen;
    leveling-down: the gap narrows while some group got worse; mixed: anything else.

    ``verdict`` in summary.json applies this to the mean changes over replicates;
    ``verdict_95`` counts a change only where its 95 % interval excludes zero."""
    worse = [g for g, d in group_changes.items() if d < -TOL]
    if not worse and gap_change <= TOL:
        return "positive-sum"
    if worse and gap_change < -TOL:
        return "leveling-down"
    return "mixed"


def _point_rows(table: pd.DataFrame, fields: list[str], point: dict[str, Any]) -> pd.DataFrame:
    mask = np.ones(len(table), dtype=bool)
    for f in fields:
        mask &= (table[f] == point[f]).to_numpy()
    return table[mask]


def summarize(table: pd.DataFrame, plan: Plan) -> dict[str, Any]:
    """summary.json: optimal mixes per grid point for k=1 and k=E, verdicts per mix."""
    cfg = plan.cfg
    E = cfg.ensemble.members
    pm = cfg.primary_metric
    fields = grid_fields(plan)
    xcol = mix_column(table)
    points = []
    for pi, point in enumerate(plan.points):
        rows = _point_rows(table, fields, point)
        rows = rows[rows["metric"] == pm]
        groups = plan.groups[pi]
        entry: dict[str, Any] = {"point": point, "groups": groups, "optimal": {}, "verdicts": []}
        for k in sorted({1, E}):
            at_k = rows[rows["k"] == k]
            gap = at_k[at_k["group"] == "gap"].groupby(xcol, sort=False)["mean"].mean()
            overall = at_k[at_k["group"] == "overall"].groupby(xcol, sort=False)["mean"].mean()
            entry["optimal"][f"k={k}"] = {
                "gap_min_ratio": _arg(gap, "min"),
                "gap_min_value": _none_if_nan(gap.min()),
                "overall_max_ratio": _arg(overall, "max"),
                "overall_max_value": _none_if_nan(overall.max()),
                "gap_by_ratio": {str(_x(x)): float(v) for x, v in gap.items()},
                "overall_by_ratio": {str(_x(x)): float(v) for x, v in overall.items()},
            }
        wide = rows[rows["k"].isin([1, E])].pivot_table(
            index=[xcol, "replicate", "group"], columns="k", values="mean"
        )
        change = (wide[E] - wide[1]) if E != 1 else wide[1] * 0.0
        for x in rows[xcol].drop_duplicates():
            per = change.loc[x]  # index: (replicate, group)
            changes = {}
            for label in [*groups, "overall", "gap", "worst"]:
                vals = per.xs(label, level="group").to_numpy()
                lo, hi = _ci95(vals)
                changes[label] = {"mean": _none_if_nan(vals.mean()), "ci95": [lo, hi],
                                  "n_replicates": len(vals)}
            means = [changes[g]["mean"] for g in [*groups, "gap"]]
            v = "n/a" if None in means else verdict(
                {g: changes[g]["mean"] for g in groups}, changes["gap"]["mean"])
            v95 = _verdict_95(changes, groups)
            entry["verdicts"].append({xcol: _x(x), "verdict": v, "verdict_95": v95,
                                      "change": changes})
        for key in ("verdict", "verdict_95"):
            counts = pd.Series([e[key] for e in entry["verdicts"]]).value_counts()
            entry[f"{key}_counts"] = {k: int(v) for k, v in counts.items()}
        points.append(entry)
    return {
        "name": cfg.name,
        "primary_metric": pm,
        "ratio_group": plan.ratio_group.get(0),
        "members": E,
        "replicates": cfg.replicates,
        "test_mix": cfg.test_mix,
        "grid_fields": fields,
        "grid_points": points,
    }


def _arg(series: pd.Series, which: str) -> Any:
    """The mix at the series' min or max, ignoring NaN (None where every value is NaN, e.g.
    AUC on a group whose test split holds one class)."""
    clean = series.dropna()
    if clean.empty:
        return None
    return _x(clean.idxmin() if which == "min" else clean.idxmax())


def _none_if_nan(value: float) -> float | None:
    return None if pd.isna(value) else float(value)


def _x(x: Any) -> Any:
    return float(x) if isinstance(x, (int, float, np.floating, np.integer)) else x
