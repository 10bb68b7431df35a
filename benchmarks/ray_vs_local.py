"""Wall time of the demo on ``executor.kind: ray`` against ``kind: local``, on this machine.

Both run the same command a user would (``fairensemble run`` on the built-in demo config,
``src/fairensemble/configs/demo.yaml``), with the same ``executor.workers`` and the same
overrides, one after the other; only ``executor.kind`` differs. Ray here is a private local
instance started by the run (``executor.address: null``), so its start-up is part of what is
measured, as it is part of what a user waits for. The two runs' metrics.parquet must be equal
(the script says so and exits 1 otherwise).

To tell fixed from per-unit costs, the script also times a bare ``ray.init`` + ``shutdown``
with the same CPU count in a fresh interpreter; ``per_unit_overhead_s`` is what is left of
Ray's extra training time after that start-up, per unit of work.

    python benchmarks/ray_vs_local.py                        # the demo as shipped
    python benchmarks/ray_vs_local.py --epochs 10            # shortened (same for both)
    python benchmarks/ray_vs_local.py --repeats 2            # alternate the order, keep the best

Prints a table, then one JSON line with ``local_s``, ``ray_s``, ``ratio`` (ray / local wall
time; goal: at most 1.3), ``local_train_s``, ``ray_train_s`` (the runs' own "training" time,
which includes starting the executor), ``ray_start_s``, ``per_unit_overhead_s``, ``units``,
``cells``, ``workers``, ``epochs``, ``identical``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

DEMO = Path(__file__).resolve().parents[1] / "src" / "fairensemble" / "configs" / "demo.yaml"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=None, help="train.epochs (default: the demo's)")
    p.add_argument("--replicates", type=int, default=None, help="default: the demo's")
    p.add_argument("--workers", type=int, default=2, help="executor.workers for both kinds")
    p.add_argument("--repeats", type=int, default=1,
                   help="run each kind this many times, alternating which goes first; the "
                        "fastest run of each counts")
    return p.parse_args(argv)


def overrides(args: argparse.Namespace) -> list[str]:
    sets = [f"executor.workers={args.workers}"]
    if args.epochs is not None:
        sets.append(f"train.epochs={args.epochs}")
    if args.replicates is not None:
        sets.append(f"replicates={args.replicates}")
    return [a for s in sets for a in ("--set", s)]


def run_demo(kind: str, out: Path, args: argparse.Namespace) -> tuple[float, float]:
    """(wall seconds of the whole command, its own "training N s" figure)."""
    env = {**os.environ, "COLUMNS": "200"}
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "fairensemble", "run", str(DEMO), "--out",
                          str(out), *overrides(args), "--set", f"executor.kind={kind}"],
                         capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"{kind} run failed:\n{res.stderr[-2000:]}")
    found = re.search(r"training ([0-9.]+) s", res.stdout + res.stderr)
    return wall, float(found.group(1)) if found else float("nan")


def ray_start_s(cpus: int) -> float:
    """ray.init + shutdown of a local instance with ``cpus`` CPUs, in a fresh interpreter."""
    code = ("import time, ray; t = time.perf_counter(); "
            f"ray.init(num_cpus={cpus}, include_dashboard=False, log_to_driver=False, "
            "logging_level='ERROR'); ray.shutdown(); print(time.perf_counter() - t)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(res.stdout.strip().splitlines()[-1])


def count_units(args: argparse.Namespace) -> tuple[int, int]:
    cfg = yaml.safe_load(DEMO.read_text())
    points = 1
    for values in cfg.get("grid", {}).values():
        points *= len(values)
    replicates = args.replicates or cfg["replicates"]
    return points * replicates, points * replicates * len(cfg["ratios"])  # stacked: units, cells


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    best: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ray_vs_local-") as tmp:
        for rep in range(args.repeats):
            for kind in (("local", "ray") if rep % 2 == 0 else ("ray", "local")):
                out = Path(tmp) / f"{kind}{rep}"
                wall, train = run_demo(kind, out, args)
                print(f"{kind:>5}: {wall:.1f} s (training {train:.1f} s)", file=sys.stderr)
                if kind not in best or wall < best[kind][0]:
                    best[kind] = (wall, train)
        identical = pd.read_parquet(Path(tmp) / "local0" / "metrics.parquet").equals(
            pd.read_parquet(Path(tmp) / "ray0" / "metrics.parquet"))
    start = ray_start_s(args.workers)
    units, cells = count_units(args)
    epochs = args.epochs or yaml.safe_load(DEMO.read_text())["train"]["epochs"]
    (local_s, local_train), (ray_s, ray_train) = best["local"], best["ray"]
    result = {
        "local_s": local_s, "ray_s": ray_s, "ratio": ray_s / local_s,
        "local_train_s": local_train, "ray_train_s": ray_train, "ray_start_s": start,
        "per_unit_overhead_s": (ray_train - start - local_train) / units,
        "units": units, "cells": cells, "workers": args.workers, "epochs": epochs,
        "identical": identical,
    }
    report(result)
    print(json.dumps(result))
    if not identical:
        sys.exit(1)
    return result


def report(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"demo, {r['cells']} cells in {r['units']} units, {r['epochs']} epochs, "
                    f"{r['workers']} workers")
    for col in ("executor", "wall s", "training s"):
        t.add_column(col, justify="right")
    t.add_row("local", f"{r['local_s']:.1f}", f"{r['local_train_s']:.1f}")
    t.add_row("ray", f"{r['ray_s']:.1f}", f"{r['ray_train_s']:.1f}")
    console = Console(width=max(100, Console().width))
    console.print(t)
    console.print(f"ray / local {r['ratio']:.2f}x (goal <= 1.3); Ray start-up alone "
                  f"{r['ray_start_s']:.1f} s, the rest {r['per_unit_overhead_s']:+.2f} s per "
                  f"unit; metrics identical: {r['identical']}")


if __name__ == "__main__":
    main()
