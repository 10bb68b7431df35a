"""End to end through the CLI on image data: the shipped CelebA and CheXpert configs run on tiny
folders in the official layouts, and malformed data fails with one line and exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import make_celeba, make_chexpert
from conftest import ROOT, cli, rows_per_k, run_cli
from sklearn.metrics import roc_auc_score

from fairensemble import metrics as M
from fairensemble.config import load_config
from fairensemble.data import chexpert
from fairensemble.data.images import layout_rows
from fairensemble.sweep.runner import data_seed

N_CELEBA = 72  # 24 images per split; every split holds every group x label pair
# 40 patients: with the configs' seed 0 each sex's test split holds both classes (AUC defined)
N_PATIENTS = 40
CELEBA_YAML = ROOT / "configs" / "celeba.yaml"
CHEXPERT_YAML = ROOT / "configs" / "chexpert.yaml"


def tiny(root: Path, cache: Path, **extra: str) -> list[str]:
    """--set overrides that shrink a paper config to 2 cells of 2 resnet18 members at 32 px
    (one torch thread: on a busy machine two threads can wait on each other for seconds)."""
    values = {
        "dataset.root": str(root), "dataset.cache_dir": str(cache), "dataset.num_workers": "0",
        "dataset.image_size": "32", "model.name": "resnet18", "ratios": "[0.0, 1.0]",
        "train_size": "8", "replicates": "1", "ensemble.members": "2", "ensemble.k": "[1, 2]",
        "ensemble.draws": "2", "train.epochs": "1", "train.batch_size": "8",
        "executor.kind": "serial", "executor.workers": "1", "executor.threads": "1", **extra,
    }
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


def run_tiny(config: Path, root: Path, cache: Path, out: Path, runner=run_cli, **extra: str):
    return runner("run", str(config), "--out", str(out), *tiny(root, cache, **extra))


def one_line_error(res) -> str:
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


def cells_of(run: Path) -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in (run / "cells").glob("*.json")),
                  key=lambda m: m["ratio"])


def load_cell(run: Path, cell_id: str) -> dict[str, np.ndarray]:
    with np.load(run / "cells" / f"{cell_id}.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def ensemble_value(arrays: dict[str, np.ndarray], code: int, metric: str) -> float:
    """The metric of the whole ensemble (mean of all member probabilities) on one group."""
    probs = arrays["probs_test"].astype(np.float64).mean(0)
    mask = arrays["g_test"] == code
    y = arrays["y_test"][mask]
    if metric == "accuracy":
        return float((probs[mask].argmax(1) == y).mean())
    return float(roc_auc_score(y, probs[mask, 1]))


def stored(table: pd.DataFrame, ratio: float, k: int, group: str, metric: str) -> float:
    row = table[(table.ratio == ratio) & (table.k == k) & (table.group == group)
                & (table.metric == metric) & (table.post == "none")]
    assert len(row) == 1
    return float(row["mean"].iloc[0])


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory) -> Path:
    return make_celeba(tmp_path_factory.mktemp("celeba"), n=N_CELEBA, seed=0)


@pytest.fixture(scope="module")
def chexpert_root(tmp_path_factory) -> Path:
    return make_chexpert(tmp_path_factory.mktemp("chex"), n_patients=N_PATIENTS, seed=0)


def _finished_run(config: Path, root: Path, tmp: Path) -> Path:
    res = run_tiny(config, root, tmp / "cache", tmp / "run")
    assert res.returncode == 0, res.stderr
    return tmp / "run"


@pytest.fixture(scope="module")
def celeba_run(celeba_root, tmp_path_factory) -> Path:
    return _finished_run(CELEBA_YAML, celeba_root, tmp_path_factory.mktemp("celeba_run"))


@pytest.fixture(scope="module")
def chexpert_run(chexpert_root, tmp_path_factory) -> Path:
    return _finished_run(CHEXPERT_YAML, chexpert_root, tmp_path_factory.mktemp("chexpert_run"))


# ----------------------------------------------------------------------------- good runs


def test_celeba_run_writes_cells_metrics_summary_figures_and_report(celeba_run):
    run = celeba_run
    assert len(list((run / "cells").glob("*.npz"))) == 2
    assert (run / "report.html").stat().st_size > 10_000
    assert len(list((run / "figures").glob("*.png"))) >= 3
    cfg = load_config(run / "config.yaml")
    assert cfg.model.name == "resnet18" and cfg.dataset.image_size == 32
    assert cfg.dataset.target == "Blond_Hair" and cfg.train.schedule == "cosine"

    table = pd.read_parquet(run / "metrics.parquet")
    assert set(table["group"]) == {"female", "male", "overall", "gap", "worst",
                                    "disparity"}
    assert set(table["metric"]) == set(M.names())  # every registered metric by default
    plain = table[table["post"] == "none"]
    assert len(plain) == 2 * 2 * rows_per_k(["female", "male"])  # cells x ks {1, 2} x rows
    # the official val split lets Hardt thresholds run at k = 1 and k = E
    assert set(table["post"]) == {"none", "threshold_eo", "threshold_dp"}

    summary = json.loads((run / "summary.json").read_text())
    assert summary["ratio_group"] == "male" and summary["primary_metric"] == "accuracy"
    assert summary["members"] == 2
    [point] = summary["grid_points"]
    assert point["groups"] == ["female", "male"]
    assert set(point["optimal"]) == {"k=1", "k=2"}
    assert point["optimal"]["k=2"]["gap_min_ratio"] in (0.0, 1.0)


def test_celeba_cells_hold_the_official_test_split_and_the_requested_mix(celeba_run):
    metas = cells_of(celeba_run)
    assert [m["ratio"] for m in metas] == [0.0, 1.0]
    # [group][class] counts: ratio 0 -> only female, ratio 1 -> only male (1/3 blond in both)
    assert [sum(c) for c in metas[0]["train_counts"]] == [8, 0]
    assert [sum(c) for c in metas[1]["train_counts"]] == [0, 8]
    arrays = load_cell(celeba_run, metas[0]["id"])
    # builder: image i is in split i % 3 (2 = test), Male = (i // 3) odd, Blond = (i // 6) odd
    test = np.arange(N_CELEBA)[np.arange(N_CELEBA) % 3 == 2]
    np.testing.assert_array_equal(arrays["y_test"], (test // 6) % 2)
    np.testing.assert_array_equal(arrays["g_test"], (test // 3) % 2)
    assert arrays["probs_test"].shape == (2, 24, 2) and arrays["probs_val"].shape == (2, 24, 2)
    assert np.allclose(arrays["probs_test"].sum(-1), 1.0, atol=1e-5)
    assert not np.allclose(arrays["probs_test"][0], arrays["probs_test"][1])  # seeds differ


def test_celeba_stored_metrics_equal_a_recomputation_from_member_probabilities(celeba_run):
    table = pd.read_parquet(celeba_run / "metrics.parquet")
    for meta in cells_of(celeba_run):
        arrays = load_cell(celeba_run, meta["id"])
        for code, group in enumerate(["female", "male"]):
            expected = ensemble_value(arrays, code, "accuracy")
            assert stored(table, meta["ratio"], 2, group, "accuracy") == pytest.approx(
                expected, abs=1e-12)


def test_report_rebuilds_an_image_run_identically_without_training(celeba_run):
    table = pd.read_parquet(celeba_run / "metrics.parquet")
    cells = {p.name: p.stat().st_mtime_ns for p in (celeba_run / "cells").iterdir()}
    (celeba_run / "metrics.parquet").unlink()
    res = run_cli("report", str(celeba_run))
    assert res.returncode == 0, res.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(celeba_run / "metrics.parquet"), table)
    assert {p.name: p.stat().st_mtime_ns for p in (celeba_run / "cells").iterdir()} == cells


def test_chexpert_run_scores_auc_per_sex_on_the_patient_level_test_split(chexpert_run):
    run = chexpert_run
    assert (run / "report.html").stat().st_size > 10_000
    assert len(list((run / "figures").glob("*.png"))) >= 3
    table = pd.read_parquet(run / "metrics.parquet")
    assert set(table["group"]) == {"Female", "Male", "overall", "gap", "worst",
                                    "disparity"}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["ratio_group"] == "Female" and summary["primary_metric"] == "auc"
    assert summary["grid_points"][0]["groups"] == ["Female", "Male"]

    cfg = load_config(run / "config.yaml")
    table_rows, _ = chexpert.read_table(cfg.dataset)
    rows = layout_rows(table_rows, chexpert.as_images(cfg.dataset), data_seed(cfg), "chexpert")
    test = rows.parts["test"]  # frontal, Female/Male only, in CSV order
    for meta in cells_of(run):
        arrays = load_cell(run, meta["id"])
        np.testing.assert_array_equal(arrays["y_test"], rows.y[test])
        np.testing.assert_array_equal(arrays["g_test"], rows.g[test])
        for code, group in enumerate(["Female", "Male"]):
            expected = ensemble_value(arrays, code, "auc")
            assert stored(table, meta["ratio"], 2, group, "auc") == pytest.approx(
                expected, abs=1e-12)
    assert [sum(c) for c in cells_of(run)[1]["train_counts"]] == [8, 0]  # ratio 1: all female


# ----------------------------------------------------------------------------- bad data


def _drop_csv_column(folder: Path, column: str) -> None:
    path = folder / "train.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.drop(columns=[column]).to_csv(path, index=False)


CASES = {
    "missing column": (
        "chexpert", lambda root: _drop_csv_column(root, "Lung Opacity"), {},
        "train.csv: missing column 'Lung Opacity' (dataset.target)"),
    "unknown attribute": (
        "celeba", lambda root: None, {"dataset.target": "Nope"},
        "list_attr_celeba.txt: unknown attribute 'Nope' (dataset.target)"),
    "listed image missing": (
        "celeba", lambda root: (root / "img_align_celeba" / "000005.jpg").unlink(), {},
        "list_attr_celeba.txt: 1 of 72 images in column 'file' not found: '000005.jpg'; "
        "looked in "),
    "unreadable image": (
        "celeba", lambda root: (root / "img_align_celeba" / "000007.jpg").write_bytes(b"GIF"),
        {}, "000007.jpg: unreadable image"),
    "group with no samples": (
        "chexpert", lambda root: None, {"dataset.groups": "[Female, Other]"},
        "train.csv: group 'Other' not found in column 'Sex' (values: Female, Male, Unknown)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_data_exits_2_with_one_line_naming_the_problem(
    case, celeba_root, chexpert_root, tmp_path
):
    source, breaks, extra, expected = CASES[case]
    original = celeba_root if source == "celeba" else chexpert_root
    root = Path(shutil.copytree(original, tmp_path / original.name))
    breaks(root)
    config = CELEBA_YAML if source == "celeba" else CHEXPERT_YAML
    res = run_tiny(config, root, tmp_path / "cache", tmp_path / "run", runner=cli, **extra)
    line = one_line_error(res)
    assert expected in line, line
    assert str(root) in line  # the full path of the file at fault
    assert not (tmp_path / "run" / "cells").exists()  # failed before anything was written


def test_a_broken_image_on_rerun_with_a_changed_config_loses_nothing_stored(
    celeba_root, tmp_path
):
    root = Path(shutil.copytree(celeba_root, tmp_path / "celeba"))
    run, cache = tmp_path / "run", tmp_path / "cache"
    res = run_tiny(CELEBA_YAML, root, cache, run, ratios="[0.0]")
    assert res.returncode == 0, res.stderr
    before = {p.relative_to(run): (p.stat().st_mtime_ns, p.read_bytes())
              for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert len([p for p in before if p.parent.name == "cells"]) == 2

    (root / "img_align_celeba" / "000010.jpg").write_bytes(b"\xff\xd8 truncated")
    res = run_tiny(CELEBA_YAML, root, cache, run, ratios="[0.0, 1.0]", train_size="9")
    assert "000010.jpg: unreadable image" in one_line_error(res)
    after = {p.relative_to(run): (p.stat().st_mtime_ns, p.read_bytes())
             for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before  # cells, config.yaml, metrics, summary, figures, report untouched
