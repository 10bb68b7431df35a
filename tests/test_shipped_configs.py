"""Every shipped config runs with ``--set ensemble.members=3`` and nothing else changed about
k: defaults that depend on another field (ensemble sizes on members) follow it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from builders import make_celeba, make_chexpert
from conftest import ROOT

from fairensemble.config import load_config
from fairensemble.evaluation import Evaluator
from fairensemble.sweep import RunStore, run_sweep

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))

# only what makes a run tiny: data sizes, epochs, one mix, one replicate
TINY_SYNTHETIC = ["dataset.pool_size=1200", "dataset.val_size=200", "dataset.test_size=300",
                  "train_size=100"]
TINY_RUN = ["ratios=[0.5]", "replicates=1", "train.epochs=1", "executor.kind=serial"]


@pytest.fixture(scope="module")
def image_roots(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("images")
    return {"celeba": make_celeba(tmp / "celeba", n=48),
            "chexpert": make_chexpert(tmp / "chexpert", n_patients=20)}


def tiny(kind: str, image_roots: dict[str, Path], cache: Path) -> list[str]:
    if kind == "synthetic":
        return TINY_SYNTHETIC
    if kind == "adult":
        return ["train_size=200"]  # the bundled copy
    if kind == "digits":
        return ["train_size=100"]
    if kind == "templates":
        return ["dataset.pool_size=400", "dataset.val_size=100", "dataset.test_size=200",
                "train_size=60"]
    return [f"dataset.root={image_roots[kind]}", f"dataset.cache_dir={cache}",
            "dataset.image_size=16", "dataset.num_workers=0", "train_size=4",
            "model.name=cnn", "model.width=4", "train.batch_size=4", "train.device=cpu"]


def test_every_shipped_config_is_here():
    names = {p.stem for p in CONFIGS}
    assert {"demo", "label_noise", "rotation", "rotation_hard", "adult", "adult_race", "digits",
            "celeba", "chexpert", "ensemble_effect", "diversity", "mitigations", "spurious",
            "celeba_mitigations", "text_noise", "raters"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_a_shipped_config_runs_with_three_members_and_k_follows(path, image_roots, tmp_path):
    shipped = load_config(path)
    kind = shipped.dataset.kind
    # a sweep of train_size (learning curves) at sizes the tiny data can draw
    sizes = ["grid.train_size=[50, 100]"] if "train_size" in shipped.grid else []
    cfg = load_config(path, ["ensemble.members=3", *TINY_RUN,
                             *tiny(kind, image_roots, tmp_path / "cache"), *sizes])
    assert cfg.ks() == [1, 2, 3]
    evaluate = Evaluator.of(cfg)
    result = run_sweep(cfg, tmp_path / "run", evaluate=evaluate)
    store = RunStore(tmp_path / "run")
    assert len(result.trained) == len(result.plan.cells) > 0
    for cell in result.plan.cells:
        table, _ = store.read_evaluation(evaluate.key, cell.id, False)
        assert set(table["k"]) == {1, 2, 3}
        assert isinstance(table, pd.DataFrame) and table["mean"].notna().any()
