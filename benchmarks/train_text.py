"""Text members per second: the stacked bag trainer against a plain per-member loop.

Both train the same members (hashed n-gram bags, 32,768 buckets, width 32, linear head; Adam
lr 0.01, sparse on the embedding; batch 32) on the same data: the template scenario
(``TemplateData(label_noise=0.2)``), 1,000 training sentences per cell at the shares 0.2, 0.5
and 0.8 of the noisy group, 10 members per cell.

* loop: ``train_loop`` with the bag model (``models.HashedBag``: ``nn.EmbeddingBag`` with
  sparse gradients, torch's SparseAdam and Adam), one member after another: what research code
  writes for an ensemble.
* stacked: ``train_bags``, all 30 members as one program (one embedding lookup for every
  member, the embedding's sparse Adam step by hand).

The two give the same members (the same init, batch order and optimiser): the script checks
their test probabilities agree before it reports the speed. Best of ``--repeats`` after a
warm-up.

    python benchmarks/train_text.py             # a few minutes on 2 cores
    python benchmarks/train_text.py --quick     # smoke version

Prints a table, then one JSON line with ``loop_members_per_s``, ``stacked_members_per_s``,
``speedup``, ``max_prob_diff`` and ``accuracy`` (mean test accuracy of the stacked members).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from fairensemble.config import ModelConfig, TrainConfig
from fairensemble.data import load_dataset
from fairensemble.data.sampling import mix_shares, plan_counts, sample_indices
from fairensemble.data.templates import TemplateData
from fairensemble.train import CellData, Inputs, train_loop
from fairensemble.train.bags import train_bags


def cells(members: int, train_size: int) -> tuple[list[CellData], np.ndarray]:
    cfg = TemplateData(label_noise=0.2, pool_size=6000, val_size=0, test_size=2000)
    ds = load_dataset(cfg, 0)
    out = []
    for i, share in enumerate((0.2, 0.5, 0.8)):
        shares = mix_shares(share, [1], ds.pool.g, 2)
        counts = plan_counts(train_size, shares, ds.pool.y, ds.pool.g, ds.groups, 2)
        idx = sample_indices(counts, ds.pool.y, ds.pool.g, np.random.default_rng(i))
        X_train, X_test = ds.prepare(ds.pool.take(idx), [ds.test])
        out.append(CellData(X_train, ds.pool.y[idx], {"test": X_test},
                            list(range(i * members, (i + 1) * members)),
                            inputs=Inputs(kind="tokens", vocab=ds.vocab)))
    return out, ds.test.y


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke version: one epoch")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    epochs, repeats = (1, 1) if args.quick else (args.epochs, args.repeats)
    data, y_test = cells(10, 1000)
    members = sum(len(c.member_seeds) for c in data)
    model = ModelConfig(name="bag", width=32)
    train = TrainConfig(optimizer="adam", lr=0.01, epochs=epochs, batch_size=32)
    warm = TrainConfig(optimizer="adam", lr=0.01, epochs=1, batch_size=32)
    train_bags(data[:1], model, warm, 2)
    train_loop([CellData(c.X_train, c.y_train, c.evals, c.member_seeds[:1], inputs=c.inputs)
                for c in data[:1]], model, warm, 2)
    best = {"loop": np.inf, "stacked": np.inf}
    for _ in range(repeats):
        t0 = time.perf_counter()
        stacked = train_bags(data, model, train, 2)
        best["stacked"] = min(best["stacked"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        loop = [train_loop([c], model, train, 2)[0] for c in data]
        best["loop"] = min(best["loop"], time.perf_counter() - t0)
    diff = max(float(np.abs(a["test"] - b["test"]).max()) for a, b in zip(stacked, loop))
    acc = float(np.mean([(s["test"].argmax(-1) == y_test).mean() for s in stacked]))
    rate = {k: members / v for k, v in best.items()}
    print(f"{members} members x {epochs} epochs, {torch.get_num_threads()} threads, best of "
          f"{repeats}; stacked and loop members agree to {diff:.1e}")
    for k in ("loop", "stacked"):
        print(f"{k:8s} {best[k]:8.2f} s {rate[k]:8.2f} members/s")
    print(json.dumps({"members": members, "epochs": epochs, "threads": torch.get_num_threads(),
                      "loop_members_per_s": rate["loop"],
                      "stacked_members_per_s": rate["stacked"],
                      "speedup": rate["stacked"] / rate["loop"], "max_prob_diff": diff,
                      "accuracy": acc}))


if __name__ == "__main__":
    main()
