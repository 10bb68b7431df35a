"""Shared fixtures: a tiny synthetic run config and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "name": "tiny",
    "seed": 7,
    "dataset": {"kind": "synthetic", "pool_size": 2000, "test_size": 600},
    "ratio_group": "F",
    "ratios": [0.0, 0.5, 1.0],
    "train_size": 200,
    "replicates": 2,
    "grid": {"dataset.label_noise": [0.0, 0.3]},
    "model": {"name": "mlp", "hidden": [16, 16]},
    "train": {"epochs": 4, "batch_size": 64, "lr": 0.01},
    "ensemble": {"members": 4, "k": [1, 2, 4], "draws": 5},
    "executor": {"kind": "serial", "workers": 1},
}


def rows_per_k(groups: list[str]) -> int:
    """metrics.parquet rows per cell and ensemble size with the default metric list: each
    metric's labels (groups, overall, gap, worst where it has a direction; "disparity")."""
    from fairensemble import metrics as M

    return sum(len(M.labels(m, groups)) for m in M.names())


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI in this process (no interpreter start): for checks of exit codes and messages.
    ``run_cli`` runs it in a real process, which is what proves there is no traceback."""
    from typer.testing import CliRunner

    from fairensemble.cli import app

    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout,
                                       result.stderr)


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fairensemble", *args],
        capture_output=True, text=True, cwd=cwd or ROOT, env=env, timeout=timeout,
    )
