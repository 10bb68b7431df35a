"""Learning curves checked, not assumed: fit on small training sets, predict the best share at a
larger one, and compare with a direct sweep at that size.

The synthetic label-noise task (``--noise`` of the hard group F's training labels flipped):
the mix sweep (shares 0, 0.1, 0.3, 0.5, 0.7, 0.9, 1 of F) is trained at ``--sizes`` (default
250, 500, 1000), every group's learning curve is fitted for the single model and the ensemble,
and each objective's best share is predicted at ``--target`` (default 4000, 4 times the largest
fitted size). Then the shares 0, 0.1, ..., 1 are trained directly at ``--target`` and the
measured best share of each objective is read off the same way (the mean over replicates).
Prints both, side by side, and a final JSON line.

    python benchmarks/curves_extrapolation.py
    python benchmarks/curves_extrapolation.py --noise 0.3 --noise-on all
    python benchmarks/curves_extrapolation.py --quick
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fairensemble.advice.curves import run_curves
from fairensemble.config import validate
from fairensemble.evaluation.analysis import evaluate_run
from fairensemble.evaluation.cell import Evaluator
from fairensemble.sweep.runner import run_sweep
from fairensemble.sweep.store import RunStore

FIT_SHARES = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]


def config(args: argparse.Namespace, sizes: list[int], ratios: list[float], name: str) -> dict:
    return {
        "name": name, "seed": 0,
        "dataset": {"kind": "synthetic", "groups": ["M", "F"], "hard_group": "F",
                    "label_noise": args.noise, "label_noise_on": args.noise_on,
                    "pool_size": 20000, "test_size": 10000},
        "ratio_group": "F", "ratios": ratios, "replicates": args.replicates,
        "grid": {"train_size": sizes},
        "model": {"name": "mlp", "hidden": [64, 64]},
        "train": {"lr": 0.003, "epochs": args.epochs, "batch_size": 128},
        "ensemble": {"members": args.members, "draws": 10}, "metrics": ["accuracy"],
        "executor": {"kind": "local", "workers": 2},
    }


def sweep(cfg: dict, run: Path) -> tuple[pd.DataFrame, object, float]:
    cfg = validate(cfg)
    t0 = time.perf_counter()
    result = run_sweep(cfg, run, evaluate=Evaluator.of(cfg))
    table = evaluate_run(result.plan, RunStore(run)).table
    return table, result.plan, time.perf_counter() - t0


def measured_best(table: pd.DataFrame, k: int) -> dict[str, float]:
    """Each objective's best share at one size, from the means over replicates."""
    rows = table[(table["metric"] == "accuracy") & (table["post"] == "none") & (table["k"] == k)]
    mean = rows.groupby(["ratio", "group"])["mean"].mean().unstack()
    return {"gap": float(mean["gap"].idxmin()), "overall": float(mean["overall"].idxmax()),
            "worst": float(mean["worst"].idxmax())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--noise", type=float, default=0.3)
    p.add_argument("--noise-on", default="train", choices=["train", "all"])
    p.add_argument("--sizes", default="250,500,1000")
    p.add_argument("--target", type=int, default=4000)
    p.add_argument("--members", type=int, default=5)
    p.add_argument("--replicates", type=int, default=3)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    if args.quick:
        sizes, args.target, args.members, args.replicates, args.epochs = [100, 200], 400, 2, 2, 5
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        table, plan, fit_s = sweep(config(args, sizes, FIT_SHARES, "fit"), tmp / "fit")
        curves = run_curves(table, plan, args.target, seed=0)[0]
        direct_ratios = [round(0.1 * i, 1) for i in range(11)]
        direct, _, direct_s = sweep(config(args, [args.target], direct_ratios, "direct"),
                                    tmp / "direct")
    rows = {}
    E = args.members
    for part, k in (("single", 1), ("ensemble", E)):
        got = curves[part]
        measured = measured_best(direct, k)
        rows[part] = {name: {"predicted": got["predicted"][name]["share"],
                             "interval": got["predicted"][name]["interval"],
                             "measured": measured[name]}
                      for name in ("gap", "overall", "worst")}
        rows[part]["supported"] = got["extrapolation"]["supported"]
        rows[part]["warnings"] = got["warnings"]
    print(f"noise {args.noise} on {args.noise_on} labels of F; fitted on sizes {sizes} "
          f"({fit_s:.0f} s), predicted and measured at {args.target} ({direct_s:.0f} s)")
    print(f"{'part':<9} {'objective':<9} {'predicted share':>16} {'95 % interval':>15} "
          f"{'measured share':>15}")
    for part, objectives in rows.items():
        for name in ("gap", "overall", "worst"):
            r = objectives[name]
            lo, hi = r["interval"]
            interval = "n/a" if lo is None else f"{lo:.2f}-{hi:.2f}"
            print(f"{part:<9} {name:<9} {r['predicted']:>16.2f} {interval:>15} "
                  f"{r['measured']:>15.2f}")
        print(f"{part:<9} extrapolation supported by the fits: {objectives['supported']}")
    print(json.dumps({"noise": args.noise, "noise_on": args.noise_on, "sizes": sizes,
                      "target": args.target, **rows}, default=lambda x: None))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
