"""The member-training benchmark runs end to end (loop, vmap recipe, stacked) and reports its
numbers as JSON."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = {
    "baseline_s_per_member", "vmap_s_per_member", "stacked_s_per_member", "speedup",
    "speedup_vs_vmap", "gflops_achieved", "gflops_peak", "peak_fraction", "acc_baseline",
    "acc_vmap", "acc_stacked", "threads", "members_baseline", "members_stacked", "workers",
    "device",
}


def test_quick_benchmark_ends_with_a_json_line_of_positive_numbers() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "train_members.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) == KEYS
    assert result["device"] in ("cpu", "cuda")
    for key in KEYS - {"device"}:
        value = result[key]
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, key
    assert result["members_stacked"] == 220 * result["workers"]
    for trainer in ("baseline", "vmap", "stacked"):
        assert 0.5 < result[f"acc_{trainer}"] <= 1.0, trainer
    assert result["speedup_vs_vmap"] == result["vmap_s_per_member"] / result[
        "stacked_s_per_member"]
