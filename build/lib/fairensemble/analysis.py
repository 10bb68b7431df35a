"""From a run directory to tidy metrics, optimal mixes and positive-sum verdicts.

Reads only the run directory (config.yaml, plan.json, the cells and their cached
evaluations): a run trained on a cluster can be re-analysed on a laptop without its data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .config import ExecutorConfig, RunConfig, load_config
from .evaluation import EvalSpec, evaluate_record
from .executors import make_executor
from .plan import Cell, Plan, grid_value
from .store import CellRecord, RunStore, StoreError

TOL = 1e-12  # a change this small counts as no change
EVAL_BATCH = 6  # cells per evaluation unit when re-evaluating


class MissingCells(StoreError):
    pass


def load_run(run_dir: str | Path, overrides: list[str] | None = None) -> tuple[RunConfig, Plan]:
    """The config and plan of a run directory (``overrides`` as ``--set`` gives them)."""
    store = RunStore(run_dir)
    cfg_path = store.root / "config.yaml"
    if not cfg_path.is_file():
        raise StoreError(f"{cfg_path}: not a run directory (no config.yaml)")
    cfg = load_config(cfg_path, overrides)
    return cfg, Plan.from_json(cfg, store.read_plan_json())


def check_complete(plan: Plan, store: RunStore) -> None:
    missing = [c for c in plan.cells if not store.has_cell(c.id)]
    if missing:
        raise MissingCells(
            f"{store.root}: {len(missing)} of {len(plan.cells)} cells are not trained yet; "
            f"run `fairensemble run {store.root / 'config.yaml'} --out {store.root}` to finish"
        )


@dataclass
class EvalUnit:
    spec: EvalSpec
    cell_ids: list[str]
    run_dir: str | None = None  # workers on this machine read the cells themselves
    records: list[CellRecord] | None = None  # shipped to workers elsewhere (Ray)


def evaluate_unit(unit: EvalUnit, progress: Callable[[float], None] | None = None
                  ) -> list[tuple[str, pd.DataFrame, pd.DataFrame | None]]:
    records = unit.records or [RunStore(unit.run_dir).read_cell(i) for i in unit.cell_ids]
    out = []
    for record in records:
        table, boot = evaluate_record(record, unit.spec)
        out.append((record.id, table, boot))
        if progress is not None:
            progress(1.0)
    return out


@dataclass
class Evaluated:
    table: pd.DataFrame  # metrics.parquet
    boot: pd.DataFrame | None  # bootstrap resamples (analysis.ci: bootstrap), with coordinates


def evaluate_run(plan: Plan, store: RunStore, executor: ExecutorConfig | None = None,
                 on_progress: Callable[[float], None] | None = None) -> Evaluated:
    """metrics.parquet's table: one row per (grid point, mix, replicate, k, post, group,
    metric), and the bootstrap resamples where asked. Cells evaluated where they were trained
    are read from the run directory; the others (a changed metric list, say) are evaluated on
    the executor and cached."""
    check_complete(plan, store)
    spec = EvalSpec.of(plan.cfg)
    want_boot = spec.n_boot > 0
    for cell in plan.cells:  # a damaged cell stops the report, naming its file
        store.read_cell(cell.id)
    cached = {c.id: store.read_evaluation(spec.hash, c.id, want_boot) for c in plan.cells}
    todo = [cid for cid, got in cached.items() if got is None]
    if todo:
        executor = executor or plan.cfg.executor
        ship = executor.kind == "ray"
        units = [EvalUnit(spec, todo[i : i + EVAL_BATCH],
                          None if ship else str(store.root),
                          [store.read_cell(c) for c in todo[i : i + EVAL_BATCH]] if ship else None)
                 for i in range(0, len(todo), EVAL_BATCH)]
        with make_executor(executor) as ex:
            for _, results in ex.run(evaluate_unit, units, on_progress or (lambda m: None)):
                for cell_id, table, boot in results:
                    store.write_evaluation(spec.hash, cell_id, table, boot)
                    cached[cell_id] = (table, boot)
    store.prune_evaluations(keep=spec.hash)
    table = pd.concat([with_coords(cached[c.id][0], c) for c in plan.cells], ignore_index=True)
    table["k"] = table["k"].astype("int64")
    table["n_draws"] = table["n_draws"].astype("int64")
    boot = None
    if want_boot:
        boot = pd.concat([with_coords(cached[c.id][1], c) for c in plan.cells],
                         ignore_index=True)
    return Evaluated(table, boot)


def with_coords(table: pd.DataFrame, cell: Cell) -> pd.DataFrame:
    df = table.copy()
    for key, value in reversed(cell.point.items()):
        df.insert(0, key, grid_value(value))
    pos = len(cell.point)
    df.insert(pos, "ratio", cell.ratio)
    df.insert(pos + 1, "replicate", cell.replicate)
    if cell.mix is not None:
        df.insert(pos, "mix", _mix_label(cell.mix))
    return df


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
        mask &= (table[f] == grid_value(point[f])).to_numpy()
    return table[mask]


def summarize(table: pd.DataFrame, plan: Plan) -> dict[str, Any]:
    """summary.json: optimal mixes per grid point for k=1 and k=E, verdicts per mix."""
    cfg = plan.cfg
    E = cfg.ensemble.members
    pm = cfg.primary
    if "post" in table.columns:
        table = table[table["post"] == "none"]
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
