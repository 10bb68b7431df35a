"""Images per second of ``train_loop`` against a plain PyTorch training loop, side by side.

Both train one member of the same model on the same random uint8 images for the same epochs
with Adam. The plain loop is what a tutorial writes (a torchvision-style loop): images
converted to normalised floats once, ``DataLoader(TensorDataset, shuffle=True)``,
``model.train()``, forward, backward, step, in float32. ``train_loop`` also builds the model
from its seed and converts uint8 batches on the device; with ``--precision bf16`` it autocasts
to bfloat16 and runs convolutional nets channels-last (``train.precision``). Timings include
model construction for both; the median of ``--repeats`` interleaved runs is reported.

    python benchmarks/train_images.py                       # CPU: cnn and resnet18 at 32 px
    python benchmarks/train_images.py --model resnet50 --image-size 224 --device cuda \
        --precision fp32 --precision bf16

Prints a table, then one JSON line per model (``loop_images_per_s``,
``baseline_images_per_s``, ``ratio``, ``device``, ``model``, ``image_size``...).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from fairensemble import models
from fairensemble.config import ModelConfig, TrainConfig
from fairensemble.train import CellData, Inputs
from fairensemble.train.loop import train_loop

MEAN, STD = 0.5, 0.25


def images(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8), rng.integers(0, 2, n)


def run_loop(X: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> float:
    cell = CellData(X, y, {"test": X[:1]}, [0],
                    inputs=Inputs(kind="image", image_mean=(MEAN,) * 3, image_std=(STD,) * 3))
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=1e-3,
                        device=args.device, precision=args.precision)
    model = ModelConfig(name=args.model, width=args.width)
    _sync(args.device)
    t0 = time.perf_counter()
    train_loop([cell], model, train, n_classes=2)
    _sync(args.device)
    return time.perf_counter() - t0


def run_baseline(X: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> float:
    device = torch.device(args.device)
    x = (torch.from_numpy(X).float() / 255 - MEAN) / STD
    loader = DataLoader(TensorDataset(x, torch.from_numpy(y)), batch_size=args.batch_size,
                        shuffle=True, generator=torch.Generator().manual_seed(0))
    _sync(args.device)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    kw = {"width": args.width} if args.model == "cnn" else {}
    net = models.create(args.model, 2, in_channels=3, image_size=X.shape[-1], **kw).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for _ in range(args.epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():  # the same one-image prediction train_loop makes
        net(x[:1].to(device))
    _sync(args.device)
    return time.perf_counter() - t0


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def bench(args: argparse.Namespace) -> dict:
    X, y = images(args.n, args.image_size)
    warm = argparse.Namespace(**{**vars(args), "epochs": 1})
    Xw, yw = X[: 2 * args.batch_size], y[: 2 * args.batch_size]
    run_loop(Xw, yw, warm)
    run_baseline(Xw, yw, warm)
    loop_s, base_s = [], []
    for _ in range(args.repeats):
        loop_s.append(run_loop(X, y, args))
        base_s.append(run_baseline(X, y, args))
    seen = args.n * args.epochs
    loop_ips = seen / statistics.median(loop_s)
    base_ips = seen / statistics.median(base_s)
    return {
        "loop_images_per_s": round(loop_ips, 1),
        "baseline_images_per_s": round(base_ips, 1),
        "ratio": round(loop_ips / base_ips, 3),
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "model": args.model,
        "precision": args.precision,
        "image_size": args.image_size,
        "n_images": args.n,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", help="cnn, resnet18, ... (repeatable)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--n", type=int, default=384, help="training images")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=int, default=32, help="cnn base width")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--precision", action="append", choices=["fp32", "bf16"],
                   help="train.precision of train_loop (repeatable; default fp32)")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device available")
    rows = []
    for name in args.model or ["cnn", "resnet18"]:
        for precision in args.precision or ["fp32"]:
            rows.append(bench(argparse.Namespace(**{**vars(args), "model": name,
                                                    "precision": precision})))
    print(f"{'model':<10} {'px':>4} {'device':<10} {'precision':<9} {'train_loop img/s':>17} "
          f"{'plain fp32 img/s':>17} {'ratio':>6}")
    for r in rows:
        print(f"{r['model']:<10} {r['image_size']:>4} {r['device'][:10]:<10} "
              f"{r['precision']:<9} {r['loop_images_per_s']:>17.1f} "
              f"{r['baseline_images_per_s']:>17.1f} {r['ratio']:>6.2f}")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
