"""Frozen-feature ensembles against full training of the same backbone on the same data.

Both start from the same pretrained backbone: a small CNN (16 base channels) trained once on
a source task, the ten-class digit identity of scikit-learn's digits, and saved as a
safetensors file. The target task is the project's two-group digits task at 32 px (is the
digit >= 5; group B mirrored, ``--pixel-noise`` on the hard group B), swept over the share
of B.

* full: every member fine-tunes the whole network from the pretrained weights
  (``model.weights``), Adam lr 1e-3, ``--epochs`` epochs (15: fewer left the members
  under-trained, one member's accuracy on group A at share 0 was 0.81 after 5 epochs against
  0.88 after 15; SGD with momentum 0.9 at lr 0.02, 5 epochs, reached 0.67);
* frozen: the backbone's features are computed once, every member is a linear head on them
  (``model.freeze: backbone``), trained with the stacked trainer for ``--head-epochs``; once
  with members differing by init and batch order (its time includes computing the features),
  once with bootstrap resamples too (reusing the cached features).

Prints wall time (training the sweep, data loading included), the ratio, and per mode the
overall accuracy of one member and of the ensemble, the gain, and member disagreement at
k = E, then one JSON line.

    python benchmarks/frozen_vs_full.py            # 10 members, 5 mixes, 2 replicates
    python benchmarks/frozen_vs_full.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from scipy import ndimage
from sklearn.datasets import load_digits

import fairensemble as fe
from fairensemble import models
from fairensemble.config import validate


def pretrain(path: Path, size: int, epochs: int, seed: int = 0) -> float:
    """Train the CNN on the ten-class digit identity (the source task) and save its weights;
    returns its training accuracy."""
    bunch = load_digits()
    x = ndimage.zoom(bunch.images / 16.0, (1, size / 8, size / 8), order=1, grid_mode=True,
                     mode="nearest")
    x = (np.clip(x, 0, 1) * 255).round() / 255
    # normalised as the digits source normalises its images: by their own mean and std
    x = torch.from_numpy((x - x.mean()) / x.std()).float()[:, None].contiguous()
    y = torch.from_numpy(bunch.target.astype(np.int64))
    torch.manual_seed(seed)
    net = models.create("cnn", 10, in_channels=1, width=16)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(y), generator=gen).split(64):
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = float((net(x).argmax(1) == y).float().mean())
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return acc


def config(args: argparse.Namespace, weights: Path, mode: str) -> dict:
    cfg = {
        "name": f"frozen-vs-full-{mode}",
        "seed": 0,
        "dataset": {"kind": "digits", "image_size": args.size, "pixel_noise": args.pixel_noise},
        "ratios": [0.0, 0.25, 0.5, 0.75, 1.0] if not args.quick else [0.0, 0.5, 1.0],
        "train_size": 400,
        "replicates": args.replicates,
        "model": {"name": "cnn", "width": 16, "weights": str(weights)},
        "train": {"optimizer": "adam", "lr": 0.001, "epochs": args.epochs, "batch_size": 64},
        "ensemble": {"members": args.members},
        "metrics": ["accuracy", "disagreement"],
        "executor": {"kind": "local", "workers": 2},
        "analysis": {"post": []},
    }
    if mode != "full":
        cfg["model"]["freeze"] = "backbone"
        cfg["train"] = {"optimizer": "adam", "lr": 0.01, "epochs": args.head_epochs,
                        "batch_size": 64,
                        "diversity": ["init", "order"] + (["bootstrap"] if mode.endswith(
                            "bootstrap") else [])}
    return cfg


def measure(cfg: dict, run_dir: Path) -> dict:
    t0 = time.perf_counter()
    fe.run(validate(cfg), str(run_dir))
    wall = time.perf_counter() - t0
    table = pd.read_parquet(run_dir / "metrics.parquet")
    E = int(table["k"].max())

    def mean(k: int, group: str, metric: str) -> float:
        sel = table[(table["k"] == k) & (table["group"] == group) & (table["metric"] == metric)]
        return float(sel["mean"].mean())

    out = {"wall_s": round(wall, 1), "members": E,
           "acc_k1": round(mean(1, "overall", "accuracy"), 4),
           "acc_kE": round(mean(E, "overall", "accuracy"), 4),
           "disagreement_kE": round(mean(E, "overall", "disagreement"), 4)}
    out["gain"] = round(out["acc_kE"] - out["acc_k1"], 4)
    for g in ("A", "B"):
        out[f"gain_{g}"] = round(mean(E, g, "accuracy") - mean(1, g, "accuracy"), 4)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--replicates", type=int, default=2)
    p.add_argument("--epochs", type=int, default=15, help="full fine-tuning epochs")
    p.add_argument("--head-epochs", type=int, default=100, help="epochs of the frozen heads")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--pixel-noise", type=float, default=0.2,
                   help="dataset.pixel_noise of the hard group B")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.members, args.replicates, args.epochs, args.head_epochs = 3, 1, 1, 10
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # a cache of its own: the first frozen run pays for computing the features, the
        # bootstrap variant reuses them (as a second sweep of a user would)
        os.environ["FAIRENSEMBLE_CACHE"] = str(tmp / "cache")
        source_acc = pretrain(tmp / "backbone.safetensors", args.size, 2 if args.quick else 8)
        rows = {mode: measure(config(args, tmp / "backbone.safetensors", mode), tmp / mode)
                for mode in ("full", "frozen", "frozen+bootstrap")}
    print(f"pretrained backbone: source-task training accuracy {source_acc:.3f}")
    print(f"{'mode':<18} {'wall s':>7} {'acc k=1':>8} {'acc k=E':>8} {'gain':>7} "
          f"{'gain A':>7} {'gain B':>7} {'disagree':>9}")
    for mode, r in rows.items():
        print(f"{mode:<18} {r['wall_s']:>7.1f} {r['acc_k1']:>8.4f} {r['acc_kE']:>8.4f} "
              f"{r['gain']:>+7.4f} {r['gain_A']:>+7.4f} {r['gain_B']:>+7.4f} "
              f"{r['disagreement_kE']:>9.4f}")
    speedup = rows["full"]["wall_s"] / rows["frozen"]["wall_s"]
    print(f"frozen features: {speedup:.1f}x faster than full training")
    print(json.dumps({"speedup_frozen_vs_full": round(speedup, 2), "source_accuracy":
                      round(source_acc, 4), **{m.replace("+", "_"): r for m, r in rows.items()}}))


if __name__ == "__main__":
    main()
