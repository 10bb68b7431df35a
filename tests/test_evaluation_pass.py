"""One evaluation pass: `run` and `report` read each cell file at most once, the training side
takes its evaluator as a plain callable and never imports the evaluation side."""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import yaml
from conftest import TINY, cli
from fake_runs import make_run_dir

from fairensemble.evaluation import Evaluator
from fairensemble.sweep import RunStore

_OPENED: list[Path] | None = None  # where the audit hook records opened files, while counting


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, Path)):
        _OPENED.append(Path(args[0]))


sys.addaudithook(_audit)  # audit hooks stay for the process: it records only while counting


@contextmanager
def cell_reads() -> Iterator[Counter]:
    """How often each cell's .npz is opened in this process (serial executor: workers too)."""
    global _OPENED
    counts: Counter = Counter()
    _OPENED = []
    try:
        yield counts
    finally:
        opened, _OPENED = _OPENED, None
        counts.update(p.stem for p in opened if p.suffix == ".npz" and p.parent.name == "cells")


def _cell_ids(run: Path) -> set[str]:
    return {p.stem for p in (run / "cells").glob("*.json")}


def test_report_reads_each_cell_once_with_or_without_cached_evaluations(tmp_path):
    run = make_run_dir(tmp_path / "run")
    ids = _cell_ids(run)
    assert not (run / "evals").exists()
    with cell_reads() as reads:  # nothing cached: every cell read to be evaluated
        res = cli("report", str(run))
    assert res.returncode == 0, res.stderr
    assert set(reads) == ids and set(reads.values()) == {1}
    with cell_reads() as reads:  # all cached: every cell read once, to check its checksum
        res = cli("report", str(run))
    assert res.returncode == 0, res.stderr
    assert set(reads) == ids and set(reads.values()) == {1}
    with cell_reads() as reads:  # another metric list: evaluated again, each read once
        res = cli("report", str(run), "--set", "metrics=[accuracy, brier]")
    assert res.returncode == 0, res.stderr
    assert set(reads) == ids and set(reads.values()) == {1}
    assert set(pd.read_parquet(run / "metrics.parquet")["metric"]) == {"accuracy", "brier"}


def test_report_still_stops_at_a_damaged_cell_with_a_cached_evaluation(tmp_path):
    run = make_run_dir(tmp_path / "run")
    assert cli("report", str(run)).returncode == 0  # evaluations cached
    victim = sorted((run / "cells").glob("*.npz"))[1]
    victim.write_bytes(victim.read_bytes()[:-10])
    res = cli("report", str(run))
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and victim.name in lines[0] and "checksum" in lines[0], res.stderr


SMALL = dict(TINY, ratios=[0.0, 1.0], replicates=1, grid={},
             train=dict(TINY["train"], epochs=2), ensemble={"members": 3, "k": [1, 3],
                                                           "draws": 3})


def test_run_reads_each_stored_cell_once_and_still_retrains_a_damaged_one(tmp_path):
    cfg = tmp_path / "small.yaml"
    cfg.write_text(yaml.safe_dump(SMALL))
    run = tmp_path / "run"
    with cell_reads() as reads:  # trained, evaluated in the worker, reported: never read
        res = cli("run", str(cfg), "--out", str(run))
    assert res.returncode == 0, res.stderr
    assert not reads and len(_cell_ids(run)) == 2
    reference = pd.read_parquet(run / "metrics.parquet")

    with cell_reads() as reads:  # resumed: each stored cell checked once, nothing trained
        res = cli("run", str(cfg), "--out", str(run))
    assert res.returncode == 0, res.stderr
    assert "2 already done" in " ".join(res.stderr.split())
    assert set(reads) == _cell_ids(run) and set(reads.values()) == {1}

    victim = sorted((run / "cells").glob("*.npz"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    with cell_reads() as reads:  # another metric list: evaluated before training, read once
        res = cli("run", str(cfg), "--out", str(run), "--set", "metrics=[accuracy, auc]")
    assert res.returncode == 0, res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if "warning:" in ln]
    assert len(warnings) == 1 and victim.name in warnings[0] and "corrupt" in warnings[0]
    assert "1 already done" in " ".join(res.stderr.split())
    assert (run / "cells" / "corrupt" / victim.name).is_file()
    # the damaged cell read once to find the damage, its retrained successor never
    assert set(reads) == _cell_ids(run) and set(reads.values()) == {1}
    table = pd.read_parquet(run / "metrics.parquet")
    assert set(table["metric"]) == {"accuracy", "auc"}
    # the retrained cell is the cell it was: same numbers as the first run
    pd.testing.assert_frame_equal(
        table.reset_index(drop=True),
        reference[reference["metric"].isin(["accuracy", "auc"])].reset_index(drop=True))


def test_the_training_side_never_imports_the_evaluation_side():
    code = ("import sys, fairensemble.sweep.runner; "
            "print(sorted(m for m in sys.modules if m.startswith('fairensemble')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert "fairensemble.sweep.runner" in loaded
    for module in ("evaluation", "analysis", "ensemble", "report", "plots", "intervals"):
        assert f"'fairensemble.{module}'" not in loaded, module


def test_the_evaluator_travels_to_workers_and_evaluates_there_as_here(tmp_path):
    run = make_run_dir(tmp_path / "run", replicates=1, ratios=[0.5])
    record = RunStore(run).read_cell(next(iter(_cell_ids(run))))
    from fairensemble.config import load_config

    evaluate = Evaluator.of(load_config(run / "config.yaml"))
    shipped = pickle.loads(pickle.dumps(evaluate))
    assert shipped.key == evaluate.key
    pd.testing.assert_frame_equal(shipped(record)[0], evaluate(record)[0])
