"""Evaluating one stored cell: the evaluation spec a config implies, its hash, and the tidy
table of k-of-E metrics per group (plus post-processed and bootstrap rows where asked).

The spec holds everything that changes a cell's evaluation but not its training (ensemble
sizes, draws, metrics, test mix, post-processing, bootstrap), so evaluations are cached per
spec in the run directory and a changed metric list re-evaluates without retraining.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from .config import RunConfig
from .ensemble import evaluate_cell
from .plan import derive_seed, stable_hash
from .store import CellRecord

EVAL_FORMAT = 1


@dataclass(frozen=True)
class EvalSpec:
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


def _point_key(record: CellRecord) -> dict[str, Any]:
    """The cell's grid point and replicate: cells that share them share a test set, so their
    bootstrap resamples are the same (paired comparisons between mixes)."""
    drop = {"ratio", "mix_index", "mix"}
    return {k: v for k, v in record.coords.items() if k not in drop}


def evaluate_record(record: CellRecord, spec: EvalSpec
                    ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(table, boot) of one cell: ``table`` has columns k, post, group, metric, mean, std,
    n_draws; ``boot`` (bootstrap only) one row per (k, post, group, metric) at k = 1 and E."""
    table = evaluate_cell(
        record.probs_test, record.y_test, record.g_test, record.groups,
        [k for k in spec.ks if k <= record.members], spec.draws, list(spec.metrics),
        spec.test_mix, derive_seed(spec.seed, "draws"),
    )
    if "post" not in table.columns:
        table.insert(1, "post", "none")
    return table, None


def boot_seed(spec: EvalSpec, record: CellRecord) -> int:
    return derive_seed(spec.seed, "boot", _point_key(record))
