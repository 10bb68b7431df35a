"""Every lever against its cost: which setting of mix, ensemble size, mitigation and
group-specific thresholds closes the gap, and what it costs to train.

A *setting* is one scenario's (a grid point without its lever fields, ``LEVER_FIELDS``)
training mix, ``train.mitigation``, ensemble size k and post-processing. Its value is the
primary metric's gap between groups, its worst group and its overall value, each the mean over
replicates with a 95 % interval (``intervals.py``), at the ensemble's k. Its cost, on one axis:

* an ensemble of k members costs k *trainings* (k times a member's seconds and FLOPs, as the
  cells measured them: a mitigation's trainings cost what its members took);
* group-specific thresholds cost no training: a pass over the validation split;
* a mix costs no training either, but data to collect: the moved group's rows in the training
  set (``data``).

The *baseline* of a scenario is what a team has before pulling a lever: one member, no
mitigation (``none`` when the run has it, else the config's), no thresholds, at the mix closest
to balanced. ``cheapest`` answers "the cheapest setting whose gap is at most X without lowering
the overall metric" (by more than ``analysis.tolerance``) for X a fraction of the baseline's
gap, and the smallest gap reachable under that condition. The Pareto fronts hold the settings
no cheaper setting beats on the gap (``front_gap``) or on the worst group (``front_worst``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fairensemble.common.text import grid_value, json_number
from fairensemble.evaluation.intervals import interval95, kind_of, samples
from fairensemble.evaluation.tables import coord_value, direction, grid_fields, mix_column
from fairensemble.sweep.plan import Cell, Plan
from fairensemble.sweep.store import RunStore

LEVER_FIELDS = ("train.mitigation", "train.dro_step", "train.dro_adjust")
LABELS = ("gap", "worst", "overall")
TARGETS = (0.75, 0.5, 0.25)  # the gaps asked about, as fractions of the baseline's


def cell_costs(plan: Plan, store: RunStore) -> pd.DataFrame:
    """One row per cell: its coordinates (as metrics.parquet holds them), its training-set
    size and what one of its members cost on average (seconds, FLOPs, epochs; NaN where the
    cell did not record it, as cells trained before costs were recorded, or predictions
    imported without them), and the grid point's shared cost (a frozen backbone's pass)."""
    fields = grid_fields(plan)
    rows = []
    for cell in plan.cells:
        meta = store.read_meta(cell.id)
        cost = meta.get("cost") or {}
        trained = int(cost.get("trainings") or len(cell.member_seeds))  # imported: from cost
        E = max(1, trained)

        def per_member(key: str, cost: dict = cost, E: int = E) -> float:
            value = cost.get(key)
            return np.nan if value is None else float(value) / E

        rows.append({**{f: grid_value(cell.point[f]) for f in fields},
                     "x": _coordinate(cell), "replicate": cell.replicate,
                     "n_train": float(meta.get("n_train") or np.nan), "trainings": trained,
                     "member_seconds": per_member("train_seconds"),
                     "member_flops": per_member("train_flops"),
                     "member_epochs": per_member("member_epochs"),
                     "shared_flops": np.nan if cost.get("shared_flops") is None
                     else float(cost["shared_flops"])})
    return pd.DataFrame(rows)


def run_cost(costs: pd.DataFrame, plan: Plan) -> dict[str, Any]:
    """What the whole run's training cost (summary.json's ``cost``): trainings, member-epochs,
    seconds and FLOPs over every cell, and the frozen backbone's shared pass once per grid
    point (None where no cell recorded it)."""
    E = costs["trainings"].to_numpy(dtype=float)

    def total(column: str) -> float | None:
        values = costs[column].to_numpy(dtype=float) * E
        return None if np.isnan(values).all() else float(np.nansum(values))

    shared = costs.groupby(grid_fields(plan) or (lambda _: 0), sort=False)["shared_flops"].first()
    return {"cells": len(plan.cells), "trainings": int(E.sum()),
            "member_epochs": total("member_epochs"), "train_seconds": total("member_seconds"),
            "train_flops": total("member_flops"),
            "shared_flops": None if shared.isna().all() else float(shared.sum())}


def _coordinate(cell: Cell) -> Any:
    if cell.mix is not None:
        return ",".join(f"{g}={s:g}" for g, s in cell.mix.items())
    return cell.ratio


def levers(table: pd.DataFrame, boot: pd.DataFrame | None, plan: Plan, costs: pd.DataFrame,
           tolerance: float = 0.0) -> dict[str, Any]:
    """summary.json's ``levers``: every setting with its value and cost, per scenario the
    baseline, the Pareto fronts and the cheapest settings per target gap."""
    cfg = plan.cfg
    pm = cfg.primary
    higher = direction(pm) != "lower"
    fields = grid_fields(plan)
    xcol = mix_column(table)
    scenario_fields = [f for f in fields if f not in LEVER_FIELDS]
    lever_fields = [f for f in fields if f in LEVER_FIELDS]
    sel = table[(table["metric"] == pm) & table["group"].isin(LABELS)]
    key = [*fields, xcol, "k", "post"]
    means = sel.groupby([*key, "group"], sort=False)["mean"].mean()
    kind = kind_of(boot)
    if boot is None:
        spread = samples(sel, [*key, "group"], kind)
    else:  # resamples exist at k = 1 and k = E only: other sizes have no interval
        spread = samples(boot[(boot["metric"] == pm) & boot["group"].isin(LABELS)],
                         [*key, "group"], kind)
    cost = costs.rename(columns={"x": xcol}).groupby([*fields, xcol], sort=False)[
        ["member_seconds", "member_flops", "member_epochs", "shared_flops", "n_train"]].mean()

    settings: list[dict[str, Any]] = []
    for combo in sel[key].drop_duplicates().itertuples(index=False):
        values = dict(zip(key, combo))
        k = int(values["k"])
        at_cell = tuple(values[f] for f in [*fields, xcol])
        c = cost.loc[at_cell if len(at_cell) > 1 else at_cell[0]]
        entry: dict[str, Any] = {
            "scenario": {f: values[f] for f in scenario_fields},
            "mitigation": (values["train.mitigation"] if "train.mitigation" in lever_fields
                           else cfg.train.mitigation),
            **{f: values[f] for f in lever_fields if f != "train.mitigation"},
            xcol: coord_value(values[xcol]), "k": k, "post": values["post"],
        }
        for label in LABELS:
            at = (*combo, label)
            entry[label] = json_number(means.get(at, np.nan))
            lo, hi = interval95(spread[at], kind) if at in spread else (None, None)
            entry[f"{label}_ci95"] = [lo, hi]
        entry.update(
            trainings=k,
            seconds=json_number(k * c["member_seconds"]),
            flops=json_number(k * c["member_flops"]),
            shared_flops=json_number(c["shared_flops"]),
            data=_data(values[xcol], c["n_train"]) if xcol == "ratio" else None,
        )
        settings.append(entry)

    scenarios = []
    for scenario in _unique([s["scenario"] for s in settings]):
        idx = [i for i, s in enumerate(settings) if s["scenario"] == scenario]
        mine = [settings[i] for i in idx]
        base = _baseline(mine, xcol, cfg)
        for s, front in zip(mine, _front(mine, "gap", lower=True)):
            s["front_gap"] = front
        for s, front in zip(mine, _front(mine, "worst", lower=not higher)):
            s["front_worst"] = front
        scenarios.append({"scenario": scenario, "baseline": idx[mine.index(base)],
                          "cheapest": _cheapest(mine, idx, base, higher, tolerance)})
    return {"metric": pm, "direction": direction(pm), "mix_column": xcol,
            "intervals": kind, "tolerance": tolerance, "settings": settings,
            "scenarios": scenarios}


def _data(ratio: Any, n_train: float) -> int | None:
    """The ratio group's rows in a training set of ``n_train`` rows (None: size unknown)."""
    return None if np.isnan(n_train) else int(round(float(ratio) * n_train))


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _baseline(settings: list[dict[str, Any]], xcol: str, cfg: Any) -> dict[str, Any]:
    """One member, no mitigation, no thresholds, the mix closest to balanced."""
    plain = [s for s in settings if s["k"] == 1 and s["post"] == "none"]
    none = [s for s in plain if s["mitigation"] == "none"] or plain
    if xcol == "ratio":
        return min(none, key=lambda s: (abs(float(s["ratio"]) - 0.5), float(s["ratio"])))
    return none[0]


def _front(settings: list[dict[str, Any]], label: str, lower: bool) -> list[bool]:
    """Whether each setting is on the Pareto front of trainings (fewer is better) and
    ``label`` (lower or higher is better)."""
    def better(a: float, b: float) -> bool:
        return a <= b if lower else a >= b

    out = []
    for s in settings:
        v = s[label]
        if v is None:
            out.append(False)
            continue
        dominated = any(
            o is not s and o[label] is not None and o["trainings"] <= s["trainings"]
            and better(o[label], v) and (o["trainings"] < s["trainings"] or o[label] != v)
            for o in settings)
        out.append(not dominated)
    return out


def _order(s: dict[str, Any]) -> tuple:
    """Cheaper first: trainings, then seconds, then the data to collect."""
    return (s["trainings"], s["seconds"] if s["seconds"] is not None else np.inf,
            s["data"] if s["data"] is not None else 0)


def _cheapest(settings: list[dict[str, Any]], idx: list[int], base: dict[str, Any],
              higher: bool, tolerance: float) -> list[dict[str, Any]]:
    """Per target gap (fractions of the baseline's), the cheapest setting that reaches it
    without lowering the overall metric by more than ``tolerance``; and the smallest gap
    under that condition."""
    floor = base["overall"]
    ok = [s for s in settings if s["gap"] is not None and s["overall"] is not None and (
        floor is None or (s["overall"] >= floor - tolerance if higher
                          else s["overall"] <= floor + tolerance))]
    out = []
    g0 = base["gap"]
    for frac in TARGETS:
        target = None if g0 is None else g0 * frac
        hits = [s for s in ok if target is not None and s["gap"] <= target]
        best = min(hits, key=_order) if hits else None
        out.append({"target": f"gap <= {frac:g} x baseline", "max_gap": target,
                    "setting": None if best is None else idx[settings.index(best)]})
    smallest = min(ok, key=lambda s: (s["gap"], _order(s))) if ok else None
    out.append({"target": "smallest gap", "max_gap": None if smallest is None
                else smallest["gap"],
                "setting": None if smallest is None else idx[settings.index(smallest)]})
    return out


__all__ = ["LEVER_FIELDS", "TARGETS", "cell_costs", "levers", "run_cost"]
