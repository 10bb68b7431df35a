"""Members per second of the stacked trainer under each mitigation, against ``none``.

The same members (2-64-64-2 ReLU MLP, Adam lr 1e-3, batch 128) on the same data: the spurious
scenario's pool (``SyntheticData(spurious=0.9)``: the hard group's classes imbalanced, so
reweighting and Group DRO have work to do), 2,000 training rows per cell drawn at the shares
0.2, 0.5 and 0.8 of the hard group, 20 members per cell: one stack of 60 members, trained under
``none``, ``reweight``, ``balanced`` and ``group_dro`` in turn, in this process with the
machine's threads. Each is timed ``--repeats`` times after a warm-up and the best time kept
(the least disturbed by whatever else the machine runs); the order of the mitigations is
rotated between repeats.

    python benchmarks/mitigations.py             # a minute or two on 2 cores
    python benchmarks/mitigations.py --quick     # smoke version, seconds

Prints a table, then one JSON line: ``members_per_s`` per mitigation and ``ratio_vs_none``
(none's members per second over the mitigation's: 1.0 means as fast, 1.3 is 30 % slower).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from fairensemble.config import ModelConfig, TrainConfig
from fairensemble.data.sampling import mix_shares, plan_counts, sample_indices
from fairensemble.data.synthetic import SyntheticData, load
from fairensemble.train import CellData
from fairensemble.train.stacked import train_stacked

MITIGATIONS = ("none", "reweight", "balanced", "group_dro")


def cells(members: int, train_size: int) -> list[CellData]:
    ds = load(SyntheticData(spurious=0.9, pool_size=20000, test_size=2000), seed=0)
    out = []
    for i, share in enumerate((0.2, 0.5, 0.8)):
        shares = mix_shares(share, [1], ds.pool.g, 2)
        counts = plan_counts(train_size, shares, ds.pool.y, ds.pool.g, ds.groups, 2)
        idx = sample_indices(counts, ds.pool.y, ds.pool.g, np.random.default_rng(i))
        out.append(CellData(ds.pool.X[idx], ds.pool.y[idx], {"test": ds.test.X},
                            list(range(i * members, (i + 1) * members)), g_train=ds.pool.g[idx]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke version: few epochs")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    epochs, repeats = (3, 1) if args.quick else (args.epochs, args.repeats)
    data = cells(20, 2000)
    members = sum(len(c.member_seeds) for c in data)
    model = ModelConfig(hidden=[64, 64])
    best = {m: np.inf for m in MITIGATIONS}
    for m in MITIGATIONS:  # warm-up
        train_stacked(data, model, TrainConfig(epochs=1, mitigation=m), 2)
    for r in range(repeats):
        order = MITIGATIONS[r % 4:] + MITIGATIONS[:r % 4]
        for m in order:
            t0 = time.perf_counter()
            train_stacked(data, model, TrainConfig(epochs=epochs, mitigation=m), 2)
            best[m] = min(best[m], time.perf_counter() - t0)
    rate = {m: members / best[m] for m in MITIGATIONS}
    ratio = {m: rate["none"] / rate[m] for m in MITIGATIONS}
    print(f"{members} members x {epochs} epochs, {torch.get_num_threads()} threads, best of "
          f"{repeats}")
    print(f"{'mitigation':12s} {'seconds':>8s} {'members/s':>10s} {'vs none':>8s}")
    for m in MITIGATIONS:
        print(f"{m:12s} {best[m]:8.2f} {rate[m]:10.1f} {ratio[m]:8.2f}x")
    print(json.dumps({"members": members, "epochs": epochs, "threads": torch.get_num_threads(),
                      "members_per_s": rate, "ratio_vs_none": ratio}))


if __name__ == "__main__":
    main()
