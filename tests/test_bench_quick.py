"""The evaluation and frozen-feature benchmarks run end to end in their --quick forms and end
with one JSON line of the numbers the README reports."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _last_json(script: str) -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_evaluate_cell_quick_times_every_metric_and_skips_fairlearn() -> None:
    r = _last_json("evaluate_cell.py")
    assert r["n_metrics_all"] == 16
    assert 0 < r["three_metrics_s"] and 0 < r["all_metrics_s"] and 0 < r["boot_s"]
    assert r["fairlearn_s"] is None and r["fairlearn_over_all"] is None
    assert r["draws_total"] > 0 and r["boot_peak_mib"] > 0


def test_frozen_vs_full_quick_reports_both_regimes_and_heads_disagree_less() -> None:
    r = _last_json("frozen_vs_full.py")
    assert set(r) == {"speedup_frozen_vs_full", "source_accuracy", "full", "frozen",
                      "frozen_bootstrap"}
    for mode in ("full", "frozen", "frozen_bootstrap"):
        row = r[mode]
        assert row["members"] == 3
        assert 0.0 < row["acc_k1"] <= 1.0 and 0.0 < row["acc_kE"] <= 1.0
        assert math.isclose(row["gain"], row["acc_kE"] - row["acc_k1"], abs_tol=1e-3)
        assert row["wall_s"] > 0
    # heads over one set of features disagree less than fully trained members, and bootstrap
    # resamples make them disagree more
    assert r["frozen"]["disagreement_kE"] < r["frozen_bootstrap"]["disagreement_kE"]
    assert r["frozen"]["disagreement_kE"] < r["full"]["disagreement_kE"]
    assert math.isclose(r["speedup_frozen_vs_full"],
                        r["full"]["wall_s"] / r["frozen"]["wall_s"], rel_tol=0.02)
