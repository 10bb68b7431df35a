"""Run directories made without training, for tests of the evaluation side: a plan of a small
ratio sweep and, for every cell, seeded random member probabilities whose skill depends on the
group and its share of the training set (so metrics differ between groups, mixes and
replicates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fairensemble.common.seeds import derive_seed
from fairensemble.config import dump_config, validate
from fairensemble.sweep import CellRecord, PointLayout, RunStore, build_plan

GROUPS = ["M", "F"]


def fake_config(**fields: Any) -> dict[str, Any]:
    cfg = {
        "name": "fake", "seed": 3,
        "dataset": {"kind": "synthetic", "groups": GROUPS, "label_noise": 0.0},
        "ratio_group": "F", "ratios": [0.2, 0.5, 0.8], "replicates": 3,
        "ensemble": {"members": 4, "k": [1, 2, 4], "draws": 6},
        "metrics": ["accuracy", "auc", "tpr", "fpr", "selection_rate", "spd", "eod", "brier"],
        "executor": {"kind": "serial"},
        "analysis": {"ci": "replicates", "n_boot": 40, "post": []},
    }
    cfg.update(fields)
    return cfg


def make_run_dir(root: Path, n_test: int = 240, **fields: Any) -> Path:
    """A finished run directory at ``root`` of ``fake_config(**fields)``."""
    cfg = validate(fake_config(**fields))
    shares = ([[mix.get(g, 0.0) for g in GROUPS] for mix in cfg.mixes] if cfg.mixes
              else [[1 - r, r] for r in cfg.ratios])
    layouts = [PointLayout(GROUPS, ["0", "1"], "F", shares, [[[0, 0], [0, 0]] for _ in shares])
               for _ in cfg.grid_points()]
    plan = build_plan(cfg, layouts)
    store = RunStore(root)
    store.prepare(dump_config(cfg), plan.to_json())
    E = cfg.ensemble.members
    for cell in plan.cells:
        rng = np.random.default_rng(derive_seed(cfg.seed, "fake", cell.id))
        y = rng.integers(0, 2, n_test)
        g = rng.integers(0, 2, n_test)
        share = np.where(g == 1, cell.ratio, 1 - cell.ratio)  # each sample's group share
        margin = (0.5 + 2.0 * share) * (2 * y - 1)
        logits = margin[None] + rng.normal(0.0, 1.5, (E, n_test))
        p1 = 1.0 / (1.0 + np.exp(-logits))
        probs = np.stack([1 - p1, p1], axis=2).astype(np.float32)
        store.write_cell(CellRecord(
            id=cell.id, coords=cell.coords(), groups=GROUPS, classes=["0", "1"],
            ratio_group="F", probs_test=probs, y_test=y, g_test=g,
            seeds={"sample": cell.sample_seed, "members": cell.member_seeds},
        ))
    return Path(root)
