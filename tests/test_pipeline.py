"""End to end through the CLI: run, rerun, report, executors, and one-line errors (killed runs:
test_scale.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TINY, cli, run_cli

from fairensemble import metrics as M


def _write(tmp_path: Path, name: str, cfg: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def _cells(run: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in (run / "cells").glob("*.*")}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    cfg = _write(tmp, "tiny.yaml", TINY)
    run = tmp / "run"
    res = run_cli("run", str(cfg), "--out", str(run))
    assert res.returncode == 0, res.stderr
    return run


def test_run_writes_cells_metrics_summary_figures_and_report(finished_run):
    run = finished_run
    n_cells = 2 * 3 * 2  # grid points x ratios x replicates
    assert len(list((run / "cells").glob("*.npz"))) == n_cells
    assert len(list((run / "cells").glob("*.json"))) == n_cells
    assert (run / "config.yaml").is_file() and (run / "report.html").stat().st_size > 10_000
    assert len(list((run / "figures").glob("*.png"))) >= 4

    table = pd.read_parquet(run / "metrics.parquet")
    assert list(table.columns) == ["dataset.label_noise", "ratio", "replicate", "k", "post",
                                   "group", "metric", "mean", "std", "n_draws"]
    assert set(table["post"]) == {"none"}  # no validation split: nothing to post-process
    # ks {1,2,4} x (labels of each metric: groups, overall, gap, worst where a direction
    # exists; "disparity" for between-group metrics) per cell
    per_k = sum(len(M.labels(m, ["M", "F"])) for m in M.names())
    assert len(table) == n_cells * 3 * per_k
    assert set(table["group"]) == {"M", "F", "overall", "gap", "worst", "disparity"}
    assert set(table["metric"]) == set(M.names())
    one = table[(table.k == 4)]
    assert (one["n_draws"] == 1).all() and (one["std"] == 0).all()
    acc = table[(table.metric == "accuracy") & (table.k == 1)]
    gaps = acc[acc.group == "gap"].set_index(["dataset.label_noise", "ratio", "replicate"])["mean"]
    per = acc[acc.group.isin(["M", "F"])].pivot_table(
        index=["dataset.label_noise", "ratio", "replicate"], columns="group", values="mean")
    # gap of the per-draw means can only exceed the gap of the means averaged per draw
    assert (gaps >= (per["M"] - per["F"]).abs() - 1e-12).all()

    summary = json.loads((run / "summary.json").read_text())
    assert summary["members"] == 4 and len(summary["grid_points"]) == 2
    for point in summary["grid_points"]:
        assert set(point["optimal"]) == {"k=1", "k=4"}
        assert point["optimal"]["k=4"]["gap_min_ratio"] in (0.0, 0.5, 1.0)
        assert {v["verdict"] for v in point["verdicts"]} <= {"positive-sum", "leveling-down",
                                                             "mixed"}
        assert len(point["verdicts"]) == 3


def test_cell_files_hold_member_probabilities_and_coordinates(finished_run):
    metas = [json.loads(p.read_text()) for p in (finished_run / "cells").glob("*.json")]
    meta = metas[0]
    for key in ("dataset.label_noise", "ratio", "replicate", "seeds", "timings", "id"):
        assert key in meta
    assert len(meta["seeds"]["members"]) == 4
    with np.load(finished_run / "cells" / f"{meta['id']}.npz", allow_pickle=False) as npz:
        probs = npz["probs_test"]
        assert probs.dtype == np.float32 and probs.shape == (4, 600, 2)
        assert np.allclose(probs.sum(-1), 1.0, atol=1e-5)
        assert set(np.unique(npz["g_test"])) == {0, 1}
        assert npz["y_test"].shape == (600,)
    # members differ by seed only: different seeds, different predictions
    assert len(set(meta["seeds"]["members"])) == 4
    assert not np.allclose(probs[0], probs[1])
    # cells at ratio 0 were trained on group M only
    zero = [m for m in metas if m["ratio"] == 0.0][0]
    assert zero["train_counts"][1] == [0, 0] and sum(zero["train_counts"][0]) == 200


def test_rerun_trains_nothing_and_report_rebuilds_identically(finished_run, tmp_path):
    before = _cells(finished_run)
    table = pd.read_parquet(finished_run / "metrics.parquet")
    res = run_cli("run", str(finished_run / "config.yaml"), "--out", str(finished_run))
    assert res.returncode == 0, res.stderr
    assert "12 already done" in res.stderr
    assert _cells(finished_run) == before
    (finished_run / "metrics.parquet").unlink()
    res = run_cli("report", str(finished_run))
    assert res.returncode == 0, res.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(finished_run / "metrics.parquet"), table)
    assert _cells(finished_run) == before


def test_local_process_pool_gives_the_same_numbers_as_serial(finished_run, tmp_path):
    cfg = dict(TINY, executor={"kind": "local", "workers": 2})
    path = _write(tmp_path, "local.yaml", cfg)
    res = run_cli("run", str(path), "--out", str(tmp_path / "local"))
    assert res.returncode == 0, res.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "local" / "metrics.parquet"),
                                  pd.read_parquet(finished_run / "metrics.parquet"))


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c.update(bogus=1), "bogus: unknown key"),
        (lambda c: c.update(ratios=[0.2, 1.3]), "ratios[1]"),
        (lambda c: c.update(train_size=0), "train_size"),
        (lambda c: c.update(train_size=-3), "train_size"),
        (lambda c: c["dataset"].update(pool_size=0), "dataset.pool_size"),
        (lambda c: c["dataset"].update(label_noise=0.7), "dataset.label_noise"),
        (lambda c: c.update(train_size=5000), "needs 5000 samples of that group but the pool "
                                              "holds 1000"),
    ],
)
def test_bad_configs_exit_2_with_one_line(tmp_path, mutate, expected):
    cfg = json.loads(json.dumps(TINY))
    mutate(cfg)
    res = cli("run", str(_write(tmp_path, "bad.yaml", cfg)), "--out", str(tmp_path / "r"))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and expected in lines[0], res.stderr
    assert not (tmp_path / "r" / "cells").exists() or not any((tmp_path / "r" / "cells").iterdir())


def test_unparsable_yaml_and_missing_file_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("ratios: [0.1,\n  oops: }\n")
    for target, expected in ((bad, "not valid YAML"), (tmp_path / "nope.yaml", "not found")):
        res = run_cli("run", str(target))
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert expected in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_a_list_valued_grid_field_runs_end_to_end_with_readable_labels(tmp_path):
    cfg = dict(TINY, ratios=[0.0, 0.5, 1.0], replicates=1,
               grid={"dataset.label_noise": [0.3],
                     "train.diversity": [["init"], [], ["init", "order", "bootstrap"]]})
    run = tmp_path / "run"
    res = run_cli("run", str(_write(tmp_path, "div.yaml", cfg)), "--out", str(run))
    assert res.returncode == 0, res.stderr
    table = pd.read_parquet(run / "metrics.parquet")
    assert list(table.columns[:2]) == ["dataset.label_noise", "train.diversity"]
    assert set(table["train.diversity"]) == {"[init]", "[]", "[init, order, bootstrap]"}
    # members that share every random stream are one model: k=1 equals k=E exactly
    same = table[(table["train.diversity"] == "[]") & (table["metric"] == "accuracy")
                 & (table["post"] == "none")]
    wide = same.pivot_table(index=["ratio", "group"], columns="k",
                            values="mean")
    assert (wide[1] == wide[4]).all()
    assert (same["std"] < 1e-12).all()  # every draw of k members scores the same
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["grid_points"]) == 3
    assert (run / "figures" / "optimal_ratio.png").is_file()
    assert "diversity=[init, order, bootstrap]" in (run / "report.html").read_text()


def test_a_rerun_reads_each_cached_evaluation_once(finished_run, tmp_path, monkeypatch):
    import shutil

    import fairensemble as fe
    from fairensemble.config import load_config
    from fairensemble.sweep import RunStore

    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    reads: list[str] = []
    original = RunStore.read_evaluation

    def counted(self, spec_hash, cell_id, with_boot):
        reads.append(cell_id)
        return original(self, spec_hash, cell_id, with_boot)

    monkeypatch.setattr(RunStore, "read_evaluation", counted)
    table = pd.read_parquet(run / "metrics.parquet")
    fe.run(load_config(run / "config.yaml"), str(run))
    # the check before training read them; the report took them from there
    assert sorted(reads) == sorted(set(reads)) and len(reads) == 12
    pd.testing.assert_frame_equal(pd.read_parquet(run / "metrics.parquet"), table)


def test_a_serial_train_size_sweep_loads_its_data_once(tmp_path, monkeypatch):
    import fairensemble as fe
    from fairensemble.config import validate
    from fairensemble.sweep import runner as sweep

    loads: list[float] = []
    original = sweep.load_for

    def counted(pcfg):
        loads.append(pcfg.train_size)
        return original(pcfg)

    monkeypatch.setattr(sweep, "load_for", counted)
    cfg = dict(TINY, grid={"train_size": [100, 200]}, replicates=1)
    fe.run(validate(cfg), str(tmp_path / "run"))
    # planning loads the first point; the second shares its data; training reuses both
    assert loads == [100]
    table = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    assert sorted(table["train_size"].unique()) == [100, 200]


def test_run_files_and_caches_get_the_permissions_a_plain_open_gives(finished_run, tmp_path):
    """Files are written to a temporary name and renamed, yet readable by whoever may read a
    file opened plainly (a colleague opening report.html on a shared machine): not 0600."""
    from fairensemble.common.files import atomic_path, atomic_write_bytes, build_once

    plain = tmp_path / "plain"
    plain.write_text("")
    expected = plain.stat().st_mode & 0o777
    for name in ("report.html", "metrics.parquet", "summary.json", "config.yaml", "plan.json"):
        assert (finished_run / name).stat().st_mode & 0o777 == expected, name
    cell = next((finished_run / "cells").glob("*.npz"))
    assert cell.stat().st_mode & 0o777 == expected

    previous = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        with atomic_path(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"y")
        build_once(tmp_path / "c.npy", lambda tmp: tmp.write_bytes(b"z"),
                   lambda p: p.read_bytes() if p.exists() else None, "test cache")
    finally:
        os.umask(previous)
    for name in ("a.bin", "b.bin", "c.npy"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin", "c.lock", "c.npy",
                                                          "plain"]
