"""Seconds and peak memory of ``fairensemble analyze`` on a large ensemble, beside fairlearn's
``MetricFrame`` computing per-group metrics for a single member.

The data: a binary task, E = 50 members, n = 1,000,000 test samples in two groups (60 / 40,
the second group's task harder), written as a long-form Parquet file (E x n = 50 million rows:
member, sample, y, group, p_0, p_1 float32, one row group per member). Member probabilities
are sigmoids of a shared latent score plus member-specific noise, so members agree more than
chance and ensembling helps.

* analyze: ``fairensemble.analyze`` on that file with its defaults (every registered metric,
  k = 1, 2, 3, 5, 10, 20, 50 with 50 draws each, one replicate, so 95 % intervals from 200
  bootstrap resamples of the test set at k = 1 and k = 50), writing metrics.parquet,
  summary.json, the figures and report.html: what a user running
  ``fairensemble analyze predictions.parquet`` gets.
* fairlearn: member 0's rows read from the same file (a filtered Parquet read), then one
  ``MetricFrame`` of accuracy, balanced accuracy, true and false positive rate and selection
  rate by group: the same per-group numbers for one member, the usual way.

Each side runs in a fresh process of its own, so its peak resident memory (``ru_maxrss``:
everything the process held at its peak, the interpreter and libraries included, about
150 MiB) is its own. As a check, fairlearn's per-group accuracy of the 50-member average is
compared with analyze's at k = 50.

    python benchmarks/analyze.py              # 50 members x 1,000,000 samples (minutes)
    python benchmarks/analyze.py --quick      # 4 members x 10,000 samples (seconds)

Prints a table, then one JSON line with ``members``, ``samples``, ``rows``, ``write_s`` (the
file, not timed against anyone), ``analyze_s``, ``analyze_peak_mib``, ``fairlearn_s``,
``fairlearn_peak_mib``, ``time_ratio`` and ``memory_ratio`` (analyze over fairlearn) and
``accuracy_matches_fairlearn``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEED = 0


def write_predictions(path: Path, E: int, n: int) -> None:
    """The long-form file, one row group per member."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED)
    g = (rng.random(n) < 0.4).astype(np.int32)
    z = rng.normal(scale=2.0, size=n)
    flip = rng.random(n) < np.where(g == 1, 0.2, 0.05)
    y = ((rng.random(n) < 1 / (1 + np.exp(-z))) ^ flip).astype(np.int8)
    group = pa.DictionaryArray.from_arrays(pa.array(g), ["M", "F"])
    schema = pa.schema([("member", pa.int16()), ("sample", pa.int32()), ("y", pa.int8()),
                        ("group", group.type), ("p_0", pa.float32()), ("p_1", pa.float32())])
    with pq.ParquetWriter(path, schema) as writer:
        for e in range(E):
            scale = rng.uniform(0.7, 1.3)
            p1 = (1 / (1 + np.exp(-(scale * z + rng.normal(scale=0.8, size=n))))).astype(
                np.float32)
            writer.write_table(pa.table([pa.array(np.full(n, e, np.int16)),
                                         pa.array(np.arange(n, dtype=np.int32)), pa.array(y),
                                         group, pa.array(1 - p1), pa.array(p1)],
                                        schema=schema))


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_analyze(path: Path, out: Path) -> dict:
    import fairensemble as fe

    t0 = time.perf_counter()
    fe.analyze(path, out=out)
    return {"seconds": time.perf_counter() - t0, "peak_mib": peak_mib()}


def run_fairlearn(path: Path) -> dict:
    import pyarrow.parquet as pq
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    metrics = {"accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score,
               "tpr": true_positive_rate, "fpr": false_positive_rate,
               "selection_rate": selection_rate}
    t0 = time.perf_counter()
    rows = pq.read_table(path, filters=[("member", "==", 0)]).to_pandas()
    pred = (rows["p_1"] > rows["p_0"]).astype(int)
    frame = MetricFrame(metrics=metrics, y_true=rows["y"], y_pred=pred,
                        sensitive_features=rows["group"].astype(str))
    seconds = time.perf_counter() - t0
    by_group = frame.by_group["accuracy"].to_dict()
    return {"seconds": seconds, "peak_mib": peak_mib(), "member0_accuracy": by_group}


def ensemble_accuracy(path: Path) -> dict[str, float]:
    """fairlearn's per-group accuracy of the average of every member (the check)."""
    import pyarrow.parquet as pq
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import accuracy_score

    table = pq.read_table(path, columns=["member", "sample", "y", "group", "p_0", "p_1"])
    E = len(np.unique(table.column("member").to_numpy()))
    n = table.num_rows // E
    p0 = table.column("p_0").to_numpy().reshape(E, n).astype(np.float64)
    p1 = table.column("p_1").to_numpy().reshape(E, n).astype(np.float64)
    first = table.slice(0, n)
    pred = (p1.mean(axis=0) > p0.mean(axis=0)).astype(int)
    frame = MetricFrame(metrics=accuracy_score, y_true=first.column("y").to_numpy(),
                        y_pred=pred,
                        sensitive_features=first.column("group").to_pandas().astype(str))
    return frame.by_group.to_dict()


def in_child(*args: str) -> dict:
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 members x 10,000 samples")
    ap.add_argument("--members", type=int, default=None)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--worker", choices=["analyze", "fairlearn"], help=argparse.SUPPRESS)
    ap.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "analyze":
        print(json.dumps(run_analyze(args.path, args.out)))
        return
    if args.worker == "fairlearn":
        print(json.dumps(run_fairlearn(args.path)))
        return
    E = args.members or (4 if args.quick else 50)
    n = args.samples or (10_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "predictions.parquet"
        t0 = time.perf_counter()
        write_predictions(path, E, n)
        write_s = time.perf_counter() - t0
        ours = in_child("--worker", "analyze", "--path", str(path), "--out", str(Path(tmp) / "run"))
        theirs = in_child("--worker", "fairlearn", "--path", str(path))
        import pandas as pd

        table = pd.read_parquet(Path(tmp) / "run" / "metrics.parquet")
        at_E = table[(table["k"] == E) & (table["metric"] == "accuracy")
                     & (table["post"] == "none")].set_index("group")["mean"]
        check = ensemble_accuracy(path)
        matches = all(abs(at_E[g] - v) < 1e-12 for g, v in check.items())
    print(f"{E} members x {n:,} test samples = {E * n:,} rows (file written in {write_s:.1f} s)")
    print(f"{'':<34}{'seconds':>10}{'peak MiB':>12}")
    print(f"{'fairensemble analyze (everything)':<34}{ours['seconds']:>10.1f}"
          f"{ours['peak_mib']:>12.0f}")
    print(f"{'fairlearn MetricFrame (member 0)':<34}{theirs['seconds']:>10.1f}"
          f"{theirs['peak_mib']:>12.0f}")
    print(f"ratio (analyze / fairlearn): time {ours['seconds'] / theirs['seconds']:.1f}x, "
          f"memory {ours['peak_mib'] / theirs['peak_mib']:.2f}x; k={E} accuracy per group "
          f"matches fairlearn on the averaged members: {matches}")
    print(json.dumps({
        "members": E, "samples": n, "rows": E * n, "write_s": round(write_s, 2),
        "analyze_s": round(ours["seconds"], 2), "analyze_peak_mib": round(ours["peak_mib"]),
        "fairlearn_s": round(theirs["seconds"], 3),
        "fairlearn_peak_mib": round(theirs["peak_mib"]),
        "time_ratio": round(ours["seconds"] / theirs["seconds"], 2),
        "memory_ratio": round(ours["peak_mib"] / theirs["peak_mib"], 2),
        "accuracy_matches_fairlearn": bool(matches),
    }))


if __name__ == "__main__":
    main()
