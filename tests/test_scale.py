"""Scale-out and faults, with real processes: Ray gives the local executor's numbers; a killed
Ray worker, progress actor or driver and a lost Ray node lose nothing; a unit that dies more
often than ``max_retries`` stops the run with one line, keeping what finished; a table travels
to Ray units in memory and an unreadable image folder is named with its node; damaged cells
are set aside and retrained; a live run locks its directory; and ``report`` needs nothing but
the run directory."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import yaml
from builders import make_celeba
from conftest import ROOT, TINY, cli, run_cli

from fairensemble import ExecutorError
from fairensemble.config import validate
from fairensemble.evaluation import evaluate_run
from fairensemble.sweep import RunStore, plan_with_preview, run_sweep
from fairensemble.sweep.executors import RAY_PROGRESS_NAME, RAY_TASK_NAME

# a unit trains for about a second (at 40 epochs all 12 cells landed within 0.1 s of each
# other, and a kill could miss the middle of the run)
SLOW = dict(TINY, train=dict(TINY["train"], epochs=1000))


def _write(folder: Path, name: str, cfg: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def _start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "fairensemble", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finished(run: Path) -> dict[str, tuple[int, int, bytes]]:
    """The files of finished cells (those whose JSON, written last, exists): (mtime, inode,
    bytes). An .npz a kill left without its JSON is an unfinished cell, rightly trained again.
    Cells are written to a temporary name and renamed, so a rewritten cell has a new inode
    even within the clock's resolution."""
    done = {p.stem for p in (run / "cells").glob("*.json")}
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino, p.read_bytes())
            for p in (run / "cells").glob("*.*")
            if p.suffix in (".npz", ".json") and p.stem in done}


def _assert_untouched(run: Path, survivors: dict[str, tuple[int, int, bytes]]) -> None:
    now = _finished(run)
    for name, before in survivors.items():
        assert now.get(name) == before, f"{name} retrained"


def _title(proc: psutil.Process) -> str:
    """A process's title ("ray::fairensemble-unit" for a Ray worker running a unit)."""
    try:
        cmdline = proc.cmdline()
    except psutil.Error:
        return ""
    return cmdline[0] if cmdline else ""


UNIT, PROGRESS = f"ray::{RAY_TASK_NAME}", f"ray::{RAY_PROGRESS_NAME}"


def _running(root: psutil.Process, title: str) -> list[psutil.Process]:
    """The processes below ``root`` (started by it) whose title starts with ``title``."""
    return [c for c in root.children(recursive=True) if _title(c).startswith(title)]


def _await_process(root: psutil.Process, title: str, ready=lambda: True) -> psutil.Process:
    """Wait until a process below ``root`` has ``title`` while ``ready()``; return it."""
    found: list[psutil.Process] = []

    def seen() -> bool:
        found[:] = _running(root, title)[:1]
        return bool(found) and ready()

    _wait_for(seen, every=0.02)
    return found[0]


def _start_slow_ray(tmp_path: Path, **executor) -> tuple[subprocess.Popen, Path, Path]:
    """The SLOW run on Ray, started in a process of its own: (process, config, run dir)."""
    cfg = _write(tmp_path, "slow.yaml", dict(SLOW, executor={"kind": "ray", "workers": 2,
                                                             **executor}))
    run = tmp_path / "run"
    return _start("run", str(cfg), "--out", str(run)), cfg, run


def _n_cells(run: Path) -> int:
    return len(list((run / "cells").glob("*.json")))


def _wait_for(predicate, timeout: float = 120.0, every: float = 0.05) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError("timed out waiting")


def _kill_tree(procs: list[psutil.Process]) -> None:
    """SIGKILL processes this test started (directly or through the run it started)."""
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)


def _metrics(run: Path) -> pd.DataFrame:
    return pd.read_parquet(run / "metrics.parquet")


def _kill_mid_run_then_resume(proc: subprocess.Popen, cfg: Path, run: Path,
                              reference: Path) -> None:
    """SIGKILL the run ``proc`` (and what it started) once some cells are written, then run
    the same command again: no finished cell is retrained, the result equals ``reference``."""
    driver = psutil.Process(proc.pid)
    started: list[psutil.Process] = []

    def some_cells_done() -> bool:
        started[:] = driver.children(recursive=True)  # what the run started, before the kill
        return len(list((run / "cells").glob("*.json"))) >= 3

    _wait_for(some_cells_done)
    driver.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    _kill_tree(started)  # a dead driver's pool workers or Ray instance
    survivors = _finished(run)
    n_done = len([n for n in survivors if n.endswith(".json")])
    assert 3 <= n_done < 12, "the kill should land mid-run"
    assert not (run / "metrics.parquet").exists()

    res = run_cli("run", str(cfg), "--out", str(run))
    assert res.returncode == 0, res.stderr
    assert f"{n_done} already done" in res.stderr
    _assert_untouched(run, survivors)
    pd.testing.assert_frame_equal(_metrics(run), _metrics(reference))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """SLOW trained undisturbed by the local pool: what every fault case must reproduce."""
    tmp = tmp_path_factory.mktemp("reference")
    cfg = _write(tmp, "slow.yaml", dict(SLOW, executor={"kind": "local", "workers": 2}))
    res = run_cli("run", str(cfg), "--out", str(tmp / "run"))
    assert res.returncode == 0, res.stderr
    return tmp / "run"


def test_demo_config_on_ray_gives_the_local_executors_metrics(tmp_path):
    short = ["--set", "train.epochs=4", "--set", "replicates=1", "--set", "ensemble.members=3",
             "--set", "grid.dataset.label_noise=[0.4]", "--set", "ratios=[0.0, 0.5, 1.0]"]
    demo = str(ROOT / "configs" / "demo.yaml")
    local = run_cli("run", demo, "--out", str(tmp_path / "local"), *short,
                    "--set", "executor.kind=local")
    assert local.returncode == 0, local.stderr
    ray = run_cli("run", demo, "--out", str(tmp_path / "ray"), *short,
                  "--set", "executor.kind=ray")
    assert ray.returncode == 0, ray.stderr
    assert "(ray executor)" in ray.stderr and "members/s" in ray.stderr
    pd.testing.assert_frame_equal(_metrics(tmp_path / "ray"), _metrics(tmp_path / "local"))


def test_a_ray_worker_killed_mid_unit_is_retried_and_the_run_matches(reference, tmp_path):
    proc, _, run = _start_slow_ray(tmp_path)
    victim = _await_process(psutil.Process(proc.pid), UNIT)
    victim.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=240) == 0, proc.stderr.read()
    assert not victim.is_running()
    pd.testing.assert_frame_equal(_metrics(run), _metrics(reference))


def test_a_killed_ray_progress_actor_is_restarted_and_the_run_matches(reference, tmp_path):
    proc, _, run = _start_slow_ray(tmp_path)
    driver = psutil.Process(proc.pid)
    victim = _await_process(driver, PROGRESS, ready=lambda: bool(_running(driver, UNIT)))
    assert _n_cells(run) < 12
    victim.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=240) == 0, proc.stderr.read()
    stderr = proc.stderr.read()
    assert not victim.is_running()
    assert "Traceback" not in stderr and "warning:" not in stderr, stderr  # restarted quietly
    pd.testing.assert_frame_equal(_metrics(run), _metrics(reference))


@pytest.fixture
def cluster():
    """A Ray cluster on this machine: a head without CPUs and two 1-CPU worker nodes. It keeps
    its sessions and address file in a temporary folder of its own (RAY_TMPDIR), so no other
    ``ray.init()`` on the machine joins it. A node is declared dead ~0.1 s after it goes (health
checks every 50 ms instead of 3 s), well before the run can end."""
    from ray.cluster_utils import Cluster

    folder = tempfile.mkdtemp(prefix="fe-ray-", dir="/tmp")  # short: Ray's socket paths
    before = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = folder
    cluster = None
    try:
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "_system_config": {"health_check_initial_delay_ms": 0,
                                              "health_check_period_ms": 50,
                                              "health_check_failure_threshold": 2}})
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        if cluster is not None:
            cluster.shutdown()
        if before is None:
            del os.environ["RAY_TMPDIR"]
        else:
            os.environ["RAY_TMPDIR"] = before
        shutil.rmtree(folder, ignore_errors=True)


def test_a_ray_node_lost_mid_run_is_named_once_and_the_run_matches_without_retraining(
        reference, tmp_path, cluster):
    proc, _, run = _start_slow_ray(tmp_path, address=cluster.address)
    victim = []

    def busy(node) -> bool:
        return bool(_running(psutil.Process(node.all_processes["raylet"][0].process.pid), UNIT))

    def some_cells_done_and_both_nodes_busy() -> bool:
        # then the lost node's unit reruns after the other node's: the run outlasts the loss
        victim[:] = [n for n in cluster.worker_nodes if busy(n)][:1]
        return _n_cells(run) >= 3 and len(victim) == 1 and all(map(busy, cluster.worker_nodes))

    _wait_for(some_cells_done_and_both_nodes_busy, every=0.02)
    survivors = _finished(run)
    assert len(survivors) < 24, "the node should go mid-run"
    cluster.remove_node(victim[0], allow_graceful=False)
    assert proc.wait(timeout=240) == 0, proc.stderr.read()
    stderr = proc.stderr.read()
    warnings = [ln for ln in stderr.splitlines() if "warning:" in ln]
    assert len(warnings) == 1 and victim[0].node_id in warnings[0], stderr
    assert "Traceback" not in stderr
    _assert_untouched(run, survivors)
    pd.testing.assert_frame_equal(_metrics(run), _metrics(reference))


def test_a_unit_dying_more_often_than_max_retries_stops_the_run_with_one_line_keeping_cells(
        reference, tmp_path):
    proc, cfg, run = _start_slow_ray(tmp_path, max_retries=0)
    victim = _await_process(psutil.Process(proc.pid), UNIT, ready=lambda: _n_cells(run) >= 3)
    victim.send_signal(signal.SIGKILL)
    survivors = _finished(run)
    assert proc.wait(timeout=120) == 2
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr
    errors = [ln for ln in stderr.splitlines() if "error:" in ln]
    assert len(errors) == 1 and "executor.max_retries (0)" in errors[0], stderr
    _assert_untouched(run, survivors)
    kept = _n_cells(run)
    assert 3 <= kept < 12

    # what was kept is whole: the same config, run in-process, trains only the rest
    res = run_cli("run", str(cfg), "--out", str(run), "--set", "executor.kind=serial",
                  "--set", "executor.threads=1")
    assert res.returncode == 0, res.stderr
    assert f"{kept} already done" in res.stderr
    pd.testing.assert_frame_equal(_metrics(run), _metrics(reference))


def test_a_killed_ray_driver_resumes_without_retraining_and_matches(reference, tmp_path):
    cfg = _write(tmp_path, "slow.yaml", dict(SLOW, executor={"kind": "ray", "workers": 2}))
    run = tmp_path / "run"
    _kill_mid_run_then_resume(_start("run", str(cfg), "--out", str(run)), cfg, run, reference)


def test_a_truncated_cell_stops_report_and_is_set_aside_and_retrained_by_run(reference, tmp_path):
    run = Path(shutil.copytree(reference, tmp_path / "run"))
    victim = sorted((run / "cells").glob("*.npz"))[0]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    shutil.rmtree(run / "evals")  # no cached evaluation to lean on

    res = run_cli("report", str(run))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and victim.name in lines[0] and "checksum" in lines[0], res.stderr

    res = run_cli("run", str(run / "config.yaml"), "--out", str(run))
    assert res.returncode == 0, res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if "warning:" in ln]
    assert len(warnings) == 1 and victim.name in warnings[0] and "corrupt" in warnings[0]
    assert (run / "cells" / "corrupt" / victim.name).is_file()
    assert "11 already done" in res.stderr.replace("\n", " ")
    pd.testing.assert_frame_equal(_metrics(run), _metrics(reference))


def test_a_killed_local_run_keeps_its_lock_only_while_alive_and_resumes_identically(
        reference, tmp_path):
    cfg = _write(tmp_path, "slow.yaml", dict(SLOW, executor={"kind": "local", "workers": 2}))
    run = tmp_path / "run"
    first = _start("run", str(cfg), "--out", str(run))
    _wait_for(lambda: (run / "cells").is_dir())

    # the first run is paused (SIGSTOP, alive and holding its lock) while the second one is
    # tried, so a fast machine cannot finish every cell before the kill below
    driver = psutil.Process(first.pid)
    driver.suspend()
    workers = driver.children(recursive=True)
    for p in workers:
        p.suspend()
    try:
        second = cli("run", str(cfg), "--out", str(run))  # while the first one lives
    finally:
        for p in [*workers, driver]:
            p.resume()
    assert second.returncode == 2
    lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "another fairensemble run" in lines[0], second.stderr
    assert f"pid {first.pid}" in lines[0]

    # the dead run's lock does not block; the same command resumes and retrains nothing done
    _kill_mid_run_then_resume(first, cfg, run, reference)


def _write_table(folder: Path) -> Path:
    """A 600-row CSV (two features, a categorical column, groups a/b) under ``folder``."""
    rng = np.random.default_rng(0)
    n = 600
    table = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                          "color": rng.choice(["red", "blue"], size=n),
                          "grp": rng.choice(["a", "b"], size=n)})
    table["label"] = (table.x1 + (table.grp == "a") * table.x2 > 0).astype(int)
    folder.mkdir(parents=True)
    table.to_csv(folder / "table.csv", index=False)
    return folder / "table.csv"


def _table_config(csv: Path, executor: dict) -> dict:
    return {
        "name": "table", "seed": 1,
        "dataset": {"kind": "table", "path": str(csv), "target": "label", "group": "grp",
                    "val_fraction": 0.2},
        "ratio_group": "a", "ratios": [0.2, 0.8], "train_size": 120, "replicates": 2,
        "model": {"hidden": [8]}, "train": {"epochs": 3, "batch_size": 32},
        "ensemble": {"members": 3, "draws": 4}, "executor": executor,
    }


def test_report_rebuilds_everything_after_the_dataset_is_deleted(tmp_path):
    csv = _write_table(tmp_path / "data")
    cfg = _table_config(csv, {"kind": "serial"})
    run = tmp_path / "run"
    res = run_cli("run", str(_write(tmp_path, "table.yaml", cfg)), "--out", str(run))
    assert res.returncode == 0, res.stderr
    assert "evaluating" not in res.stderr  # evaluated in the workers that trained them
    before = {p: (run / p).read_bytes() for p in ("metrics.parquet", "summary.json")}
    figures = sorted(p.name for p in (run / "figures").glob("*.png"))
    shutil.rmtree(csv.parent)
    for p in ["metrics.parquet", "summary.json", "report.html", "evals", "figures"]:
        shutil.rmtree(run / p) if (run / p).is_dir() else (run / p).unlink()

    res = run_cli("report", str(run))
    assert res.returncode == 0, res.stderr
    assert "evaluating" in res.stderr and "4/4 cells" in res.stderr  # under a progress bar
    pd.testing.assert_frame_equal(pd.read_parquet(run / "metrics.parquet"),
                                  pd.read_parquet(pd.io.common.BytesIO(before["metrics.parquet"])))
    assert json.loads((run / "summary.json").read_bytes()) == json.loads(before["summary.json"])
    assert sorted(p.name for p in (run / "figures").glob("*.png")) == figures
    assert (run / "report.html").stat().st_size > 10_000

    # a report elsewhere with a changed evaluation, the run directory untouched
    cached = sorted(p.name for p in (run / "evals").iterdir())
    res = run_cli("report", str(run), "--out", str(tmp_path / "other"),
                  "--set", "ensemble.k=[1,3]")
    assert res.returncode == 0, res.stderr
    assert set(pd.read_parquet(tmp_path / "other" / "metrics.parquet")["k"]) == {1, 3}
    assert set(cached) <= {p.name for p in (run / "evals").iterdir()}  # nothing pruned
    pd.testing.assert_frame_equal(pd.read_parquet(run / "metrics.parquet"),
                                  pd.read_parquet(pd.io.common.BytesIO(before["metrics.parquet"])))
    res = run_cli("report", str(run), "--set", "train.epochs=9")
    assert res.returncode == 2 and "train.epochs" in res.stderr and "Traceback" not in res.stderr


def test_workers_sets_the_worker_count_and_never_the_executor_kind(tmp_path):
    cfg = _write(tmp_path, "tiny.yaml", dict(TINY, ratios=[0.5], replicates=1, grid={},
                                             executor={"kind": "serial", "workers": 1}))
    res = run_cli("run", str(cfg), "--out", str(tmp_path / "run"), "--workers", "2")
    assert res.returncode == 0, res.stderr
    assert "(serial executor)" in res.stderr
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert stored["executor"]["kind"] == "serial" and stored["executor"]["workers"] == 2


def test_kind_ray_without_ray_installed_exits_2_with_a_hint(tmp_path):
    blocker = tmp_path / "no_ray"
    blocker.mkdir()
    # a sitecustomize that makes `import ray` fail as it does where Ray is not installed
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoRay:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ray' or name.startswith('ray.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'ray'\")\n"
        "sys.meta_path.insert(0, _NoRay())\n"
    )
    cfg = _write(tmp_path, "tiny.yaml", dict(TINY, executor={"kind": "ray"}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(blocker), *filter(None, [os.environ.get("PYTHONPATH")])])}
    res = subprocess.run([sys.executable, "-m", "fairensemble", "run", str(cfg), "--out",
                          str(tmp_path / "run")], capture_output=True, text=True, cwd=ROOT,
                         env=env, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "pip install 'fairensemble[ray]'" in lines[0], res.stderr
    assert not (tmp_path / "run").exists()  # nothing planned, nothing written


def test_an_error_in_our_code_on_a_ray_worker_is_reported_once_and_not_retried(tmp_path):
    # dropout passes config validation but the stacked trainer refuses it, in the worker
    cfg = _write(tmp_path, "bad.yaml", dict(TINY, model=dict(TINY["model"], dropout=0.2),
                                            executor={"kind": "ray", "workers": 2}))
    t0 = time.time()
    res = run_cli("run", str(cfg), "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "model.dropout" in errors[0], res.stderr
    assert time.time() - t0 < 90  # reported at once, not after max_retries attempts
    assert not list((tmp_path / "run" / "cells").glob("*.json"))


def test_units_no_ray_node_can_hold_exit_2_instead_of_waiting_forever(tmp_path):
    import torch

    more_than_here = torch.cuda.device_count() + 1
    cfg = _write(tmp_path, "gpu.yaml", dict(TINY, executor={
        "kind": "ray", "gpus_per_unit": more_than_here}))
    t0 = time.time()
    res = run_cli("run", str(cfg), "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "executor.gpus_per_unit" in errors[0], res.stderr
    assert time.time() - t0 < 90


def test_fractional_cpus_per_unit_fit_the_local_ray_instance():
    # one worker of 1.5 CPUs needs a 2-CPU instance; rounding down left every unit waiting
    from fairensemble.config import ExecutorConfig
    from fairensemble.sweep import make_executor

    with make_executor(ExecutorConfig(kind="ray", workers=1, cpus_per_unit=1.5)) as executor:
        got = dict(executor.run(lambda unit, progress: unit * 2, [1, 2, 3], lambda m: None))
    assert got == {0: 2, 1: 4, 2: 6}


# ----------------------------------------------------------------------------- data on other nodes


def test_ray_units_train_on_the_planned_table_without_reading_its_file(tmp_path):
    csv = _write_table(tmp_path / "data")
    local = validate(_table_config(csv, {"kind": "serial", "threads": 1}))
    run_sweep(local, tmp_path / "local")

    cfg = validate(_table_config(csv, {"kind": "ray", "workers": 2}))
    plan, preview = plan_with_preview(cfg)
    csv.unlink()  # the file exists only until planning, as on a disk only the driver sees
    result = run_sweep(cfg, tmp_path / "ray", plan=plan, preview=preview)
    assert len(result.trained) == len(plan.cells) == 4
    evaluated = [evaluate_run(plan, RunStore(tmp_path / kind)).table for kind in ("ray", "local")]
    pd.testing.assert_frame_equal(*evaluated)


def test_a_ray_worker_that_cannot_read_the_image_folder_stops_with_one_line_naming_it_and_the_node(
        tmp_path):
    import ray

    root = make_celeba(tmp_path / "celeba", n=48)
    cfg = validate({
        "name": "faces", "seed": 1,
        "dataset": {"kind": "celeba", "root": str(root), "image_size": 8,
                    "cache_dir": str(tmp_path / "cache")},
        "ratios": [0.0, 1.0], "train_size": 8, "replicates": 1,
        "model": {"hidden": [8]}, "train": {"epochs": 1, "batch_size": 8},
        "ensemble": {"members": 2, "k": [1, 2], "draws": 2},
        "executor": {"kind": "ray", "workers": 1},
    })
    plan, preview = plan_with_preview(cfg)  # decodes the images into the cache
    folder = root / "img_align_celeba"
    shutil.rmtree(folder)  # gone from this "node"; the decoded cache is still there
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        node = ray.get_runtime_context().get_node_id()
        with pytest.raises(ExecutorError) as err:
            run_sweep(cfg, tmp_path / "run", plan=plan, preview=preview)
    finally:
        ray.shutdown()
    message = str(err.value)
    assert "\n" not in message and str(folder) in message and node in message, message
    assert not list((tmp_path / "run" / "cells").glob("*.json"))
