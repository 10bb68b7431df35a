"""Evaluating one stored cell: the evaluation spec a config implies, its hash, and the tidy
table of k-of-E metrics per group, with post-processed and bootstrap rows where asked.

The spec holds everything that changes a cell's evaluation but not its training (ensemble
sizes, draws, metrics, test mix, post-processing, bootstrap), so evaluations are cached per
spec in the run directory and a changed metric list re-evaluates without retraining.

Post-processing (Hardt et al.): for k = 1 and k = E, group-specific thresholds are fitted on
the cell's validation probabilities (the same member subsets as the table's draws) and applied
to its test probabilities; the rows carry ``post`` = ``threshold_eo`` (equalized odds) or
``threshold_dp`` (demographic parity) and hold the metrics that need only predicted labels.
Binary tasks with a validation split only.

Intersectional groups (several group columns) are also scored per attribute value over the
combinations holding it (a margin, labelled ``"sex=Female"``): rows of per-group metrics beside
the combinations' (``margins_of``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairensemble import metrics as M
from fairensemble.common.seeds import derive_seed, stable_hash
from fairensemble.config import RunConfig
from fairensemble.data.frame import OTHER
from fairensemble.evaluation.ensemble import average_members, evaluate_cell, subsets_by_k
from fairensemble.evaluation.postprocess import CONSTRAINTS, fit_thresholds, predict
from fairensemble.evaluation.raters import rater_rows
from fairensemble.sweep.plan import PointLayout
from fairensemble.sweep.store import CellRecord

EVAL_FORMAT = 2


@dataclass(frozen=True)
class EvalSpec:
    """What a cell's evaluation depends on besides the cell: the config's EVALUATION_FIELDS
    that change a cell's numbers (``primary_metric`` only chooses what the summary ranks by),
    the run seed the draws derive from, and the ensemble sizes resolved against the members.
    Its hash names the evaluation's cache in the run directory."""

    seed: int
    ks: tuple[int, ...]
    draws: int
    metrics: tuple[str, ...]
    test_mix: str
    post: tuple[str, ...]
    n_boot: int  # 0: no bootstrap

    @classmethod
    def of(cls, cfg: RunConfig) -> EvalSpec:
        E = cfg.ensemble.members
        return cls(
            seed=cfg.seed,
            ks=tuple(k for k in cfg.ks() if k <= E),
            draws=cfg.ensemble.draws,
            metrics=tuple(cfg.metrics),
            test_mix=cfg.test_mix,
            post=tuple(cfg.analysis.post),
            n_boot=cfg.analysis.n_boot if cfg.analysis.ci == "bootstrap" else 0,
        )

    @property
    def hash(self) -> str:
        return stable_hash({"format": EVAL_FORMAT, **asdict(self)})

    @property
    def draw_seed(self) -> int:
        return derive_seed(self.seed, "draws")


Margin = tuple[str, tuple[int, ...]]  # (label, the groups it unites)


def margins_of(layout: PointLayout) -> list[Margin]:
    """Per-attribute margins of a grid point's intersectional groups: for each attribute and
    each of its values (in the order the groups first hold them), ``("<attribute>=<value>",
    the groups holding that value)``; none with one group column. Groups merged into
    ``other`` belong to no margin. A label that names a group is left out."""
    out: list[Margin] = []
    if len(layout.attributes) < 2:
        return out
    for a, attribute in enumerate(layout.attributes):
        values: dict[str, list[int]] = {}
        for j, group_values in enumerate(layout.group_values):
            if layout.groups[j] != OTHER and group_values[a] != OTHER:
                values.setdefault(group_values[a], []).append(j)
        out += [(f"{attribute}={v}", tuple(js)) for v, js in values.items()
                if f"{attribute}={v}" not in layout.groups]
    return out


@dataclass(frozen=True)
class Evaluator:
    """A cell's evaluation under one spec as a plain picklable callable: what the sweep hands
    its workers (cells are evaluated where they are trained) and ``key`` what the run
    directory files the evaluation under. ``margins``: per list of groups (a grid point's),
    the per-attribute margins scored beside them (intersectional groups only)."""

    spec: EvalSpec
    margins: tuple[tuple[tuple[str, ...], tuple[Margin, ...]], ...] = ()

    @classmethod
    def of(cls, cfg: RunConfig, layouts: list[PointLayout] | tuple = ()) -> Evaluator:
        found = {tuple(lay.groups): tuple(margins_of(lay)) for lay in layouts}
        return cls(EvalSpec.of(cfg), tuple((g, m) for g, m in found.items() if m))

    @property
    def key(self) -> str:
        # margins add rows: their evaluations are filed apart from those without them
        if not self.margins:
            return self.spec.hash
        return stable_hash({"spec": self.spec.hash, "margins": self.margins})

    def __call__(self, record: CellRecord) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        return evaluate_record(record, self.spec, dict(self.margins).get(tuple(record.groups),
                                                                        ()))


def _point_key(record: CellRecord) -> dict[str, Any]:
    """The cell's grid point and replicate: cells that share them share a test set, so their
    bootstrap resamples are the same (paired comparisons between mixes)."""
    drop = {"ratio", "mix_index", "mix"}
    return {k: v for k, v in record.coords.items() if k not in drop}


def boot_seed(spec: EvalSpec, record: CellRecord) -> int:
    return derive_seed(spec.seed, "boot", _point_key(record))


def evaluate_record(record: CellRecord, spec: EvalSpec, margins: tuple[Margin, ...] = ()
                    ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(table, boot) of one cell: ``table`` has columns k, post, group, metric, mean, std,
    n_draws; ``boot`` (bootstrap only) one row per (k, post, group, metric) at k = 1 and E
    with one column per resample. ``margins`` (``margins_of``) add rows of per-group
    metrics; a cell with raters' votes adds their rows (``evaluation.raters``)."""
    ks = [k for k in spec.ks if k <= record.members]
    ev = evaluate_cell(
        record.probs_test, record.y_test, record.g_test, record.groups, ks, spec.draws,
        list(spec.metrics), spec.test_mix, spec.draw_seed, n_boot=spec.n_boot,
        boot_seed=boot_seed(spec, record), margins=margins,
    )
    table = ev.table
    post = post_processed(record, spec, ks, margins)
    raters = rater_rows(record, ks, spec.test_mix)  # cells with raters' votes
    extra = [t for t in (post, raters) if t is not None]
    if extra:
        table = pd.concat([table, *extra], ignore_index=True)
    return table, ev.boot


def post_processed(record: CellRecord, spec: EvalSpec, ks: list[int],
                   margins: tuple[Margin, ...] = ()) -> pd.DataFrame | None:
    """Rows of the post-processed ensembles at k = 1 and k = E (None when there is nothing to
    post-process: no validation split, more than two classes, no label metric asked)."""
    label_metrics = [m for m in spec.metrics if M.get(m).needs <= {"labels"}]
    if not spec.post or not record.has_val or record.probs_test.shape[2] != 2 \
            or not label_metrics:
        return None
    E = record.members
    drawn = subsets_by_k(E, ks, spec.draws, spec.draw_seed)  # the table's own draws
    subsets = {k: drawn[k] for k in ks if k in (1, E)}
    predict_rng = np.random.default_rng(derive_seed(spec.seed, "post", record.id))
    G = len(record.groups)
    rows: dict[str, list] = {c: [] for c in ("k", "post", "group", "metric", "mean", "std",
                                             "n_draws")}
    for k, sub in subsets.items():
        test = average_members(record.probs_test, sub)
        val_scores = average_members(record.probs_val, sub)[:, :, 1]
        for name in spec.post:
            rule = fit_thresholds(val_scores, record.y_val, record.g_val, G, CONSTRAINTS[name])
            pred = predict(rule, test[:, :, 1], record.g_test, predict_rng)
            usable = (pred >= 0).all(axis=1)  # draws whose rule is defined for every group
            if not usable.any():
                continue
            scores = M.group_metrics(test[usable], record.y_test, record.g_test,
                                     record.groups, label_metrics, spec.test_mix,
                                     pred=pred[usable].astype(np.int64), margins=margins)
            for (label, metric), values in scores.items():
                rows["k"].append(k)
                rows["post"].append(name)
                rows["group"].append(label)
                rows["metric"].append(metric)
                rows["mean"].append(float(np.mean(values)))
                rows["std"].append(float(np.std(values)))
                rows["n_draws"].append(int(usable.sum()))
    if not rows["k"]:
        return None
    return pd.DataFrame(rows).astype({"k": np.int64, "n_draws": np.int64})
