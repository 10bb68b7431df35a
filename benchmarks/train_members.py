"""Seconds per ensemble member: ``train_stacked`` against a plain loop and PyTorch's vmap recipe.

Both train the same members (2-64-64-2 ReLU MLP, Adam lr 1e-3, batch 128, 100 epochs) on the
same data: the synthetic label-noise scenario (``SyntheticData(label_noise=0.2)``), 2,000
training samples per cell drawn by the group-ratio sampler at the 11 ratios 0.0..1.0 of the
hard group.

* baseline: what research code writes: one ``nn.Sequential`` per seed built after
  ``torch.manual_seed(seed)``, ``DataLoader(TensorDataset, shuffle=True)`` with a
  ``torch.Generator`` seeded per member, ``torch.optim.Adam``, members one after another. It
  trains ``--baseline-members`` members of the middle (0.5) cell.
* vmap: PyTorch's own model-ensembling recipe, what a skilled user writes: one
  ``nn.Sequential`` per member (built as the baseline's), ``torch.func.stack_module_state``,
  ``vmap(functional_call)`` over the stacked parameters, one ``torch.optim.Adam`` over them,
  each member with its own batch order (a ``torch.randperm`` per member and epoch from a
  generator seeded with the member's seed) and the mean cross-entropy of each member summed,
  so that every member gets its own gradient. Same members, same data and same processes as
  the stacked trainer below.
* stacked: ``train_stacked`` on all 11 cells x 20 members at once (220 members), one stack,
  run the way a sweep runs it: ``--workers`` processes (default 2 on CPU, the sweep's default
  ``executor: {kind: local, workers: 2}``), each training its own 220-member stack (another
  grid point's worth of seeds) with ``threads / workers`` torch threads. Seconds per member is
  the wall time from the first worker's start to the last one's end over all their members.

The baseline members use the seeds of the stacked members of the same cell, so both start from
the same initialisation (``init_mlp_params`` equals ``nn.Linear``'s default under
``torch.manual_seed``); only the mini-batch order differs. Both are warmed up before timing.

    python benchmarks/train_members.py             # full run (a few minutes on 2 cores)
    python benchmarks/train_members.py --quick     # smoke version, < 30 s
    python benchmarks/train_members.py --device cuda

Prints a table, then one JSON line with ``baseline_s_per_member``, ``vmap_s_per_member``,
``stacked_s_per_member``, ``speedup`` (over the loop), ``speedup_vs_vmap``, ``gflops_achieved``
(forward + backward matmul FLOPs of the stacked training over its time), ``gflops_peak`` (best
of repeated large fp32 matmuls, same threads) and ``peak_fraction`` (information only: the peak
differs between machines of one kind while these small matmuls do not follow it),
``acc_baseline``, ``acc_vmap``, ``acc_stacked`` (mean test accuracy of the members with the
baseline's seeds and data), ``threads``, ``members_baseline``, ``members_stacked`` (also the
vmap recipe's), ``workers``, ``device``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fairensemble.config import ModelConfig, TrainConfig
from fairensemble.data.sampling import mix_shares, plan_counts, sample_indices
from fairensemble.data.synthetic import SyntheticData, load
from fairensemble.train import CellData
from fairensemble.train.stacked import flops_per_step, train_stacked

HIDDEN = [64, 64]
RATIOS = [round(0.1 * i, 1) for i in range(11)]
TARGET_MEMBERS, TARGET_S = 3960, 120.0  # issue 4: 18 stacks of 220 members in 2 minutes


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke version: few epochs, < 30 s")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--baseline-members", type=int, default=None)
    p.add_argument("--members", type=int, default=20, help="members per cell (stacked)")
    p.add_argument("--train-size", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None,
                   help="stacked: processes, each with its own 220-member stack "
                        "(default 2 on cpu, 1 on cuda)")
    args = p.parse_args(argv)
    if args.workers is None:
        args.workers = 1 if args.device == "cuda" else 2
    if args.epochs is None:
        args.epochs = 3 if args.quick else 100
    if args.baseline_members is None:
        args.baseline_members = 1 if args.quick else 3
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device visible to torch; running on cpu instead",
              file=sys.stderr)
        args.device = "cpu"
    return args


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def make_cells(args: argparse.Namespace, offset: int = 0
               ) -> tuple[list[CellData], np.ndarray, np.ndarray]:
    """11 ratio cells of one grid point (label noise 0.2 on the hard group) and the test set;
    ``offset`` shifts the member seeds (another grid point's stack on the same data)."""
    cfg = SyntheticData(label_noise=0.2)
    ds = load(cfg, args.seed)
    hard = ds.groups.index(cfg.hard)
    cells = []
    for i, ratio in enumerate(RATIOS):
        shares = mix_shares(ratio, [hard], ds.pool.g, len(ds.groups))
        counts = plan_counts(args.train_size, shares, ds.pool.y, ds.pool.g, ds.groups,
                             ds.n_classes)
        idx = sample_indices(counts, ds.pool.y, ds.pool.g, np.random.default_rng([args.seed, i]))
        train = ds.pool.take(idx)
        seeds = [1000 * i + j + 100_000 * offset for j in range(args.members)]
        cells.append(CellData(np.asarray(train.X, np.float32), train.y,
                              {"test": np.asarray(ds.test.X, np.float32)}, seeds))
    return cells, np.asarray(ds.test.X, np.float32), ds.test.y


def member_net(d: int, seed: int, device: torch.device) -> nn.Sequential:
    """One member as research code builds it: ``nn.Sequential`` after ``torch.manual_seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, HIDDEN[0]), nn.ReLU(), nn.Linear(HIDDEN[0], HIDDEN[1]),
                         nn.ReLU(), nn.Linear(HIDDEN[1], 2)).to(device)


def baseline_member(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, seed: int,
                    args: argparse.Namespace, epochs: int) -> np.ndarray:
    """The plain loop: one model, DataLoader, Adam; returns test probabilities."""
    device = torch.device(args.device)
    net = member_net(X.shape[1], seed, device)
    loader = DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
                        batch_size=args.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        return torch.softmax(net(torch.from_numpy(X_test).to(device)), -1).cpu().numpy()


def train_vmap(cells: list[CellData], X_test: np.ndarray, args: argparse.Namespace,
               epochs: int) -> list[np.ndarray]:
    """PyTorch's model-ensembling recipe (torch.func) on every member of ``cells`` at once;
    returns each cell's test probabilities [E, n_test, 2]."""
    from torch.func import functional_call, stack_module_state, vmap

    device = torch.device(args.device)
    seeds = [s for c in cells for s in c.member_seeds]
    cell_of = torch.tensor([i for i, c in enumerate(cells) for _ in c.member_seeds],
                           device=device)
    X = torch.stack([torch.from_numpy(c.X_train) for c in cells]).to(device)  # [cells, n, d]
    Y = torch.stack([torch.from_numpy(c.y_train) for c in cells]).to(device)
    n, d = X.shape[1], X.shape[2]
    models = [member_net(d, s, device) for s in seeds]
    params, buffers = stack_module_state(models)
    base = models[0].to("meta")

    def logits(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(base, (p, b), (x,))

    def member_loss(p: dict, b: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits(p, b, x), y)

    losses = vmap(member_loss)
    opt = torch.optim.Adam(params.values(), lr=1e-3)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    rows = cell_of[:, None]
    for _ in range(epochs):
        order = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)
        for start in range(0, n, args.batch_size):
            idx = order[:, start : start + args.batch_size]  # [M, b]: each member's own batch
            opt.zero_grad()
            losses(params, buffers, X[rows, idx], Y[rows, idx]).sum().backward()
            opt.step()
    with torch.no_grad():
        x = torch.from_numpy(X_test).to(device).expand(len(seeds), -1, -1)
        probs = torch.softmax(vmap(logits)(params, buffers, x), -1).cpu().numpy()
    bounds = np.cumsum([0] + [len(c.member_seeds) for c in cells])
    return [probs[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def stacked_flops(n: int, d: int, batch: int, epochs: int, members: int) -> float:
    per_epoch = (n // batch) * flops_per_step(d, HIDDEN, 2, batch)
    if n % batch:
        per_epoch += flops_per_step(d, HIDDEN, 2, n % batch)
    return float(per_epoch) * epochs * members


def matmul_peak(device: str, quick: bool) -> float:
    """GFLOP/s of the best of repeated large fp32 matmuls (4096^2; 2048^2 when quick)."""
    n, reps = (2048, 3) if quick else (4096, 4)
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    c = torch.empty(n, n, device=device)
    torch.mm(a, b, out=c)
    best = float("inf")
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean over members of test accuracy; probs [E, n, C]."""
    return float((probs.argmax(-1) == y[None]).mean())


def stacked_worker(trainer: str, args: argparse.Namespace, offset: int, threads: int, barrier
                   ) -> tuple[float, float, list[np.ndarray]]:
    """One worker process: build its members, warm up, wait for the others, train, time.
    ``trainer``: "stacked" (``train_stacked``) or "vmap" (the torch.func recipe)."""
    torch.set_num_threads(threads)
    cells, X_test, _ = make_cells(args, offset)
    model = ModelConfig(hidden=HIDDEN)
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=1e-3,
                        device=args.device)
    if trainer == "vmap":
        train_vmap(cells[:1], X_test[:10], args, 1)
    else:
        train_stacked(cells[:1], model, train.model_copy(update={"epochs": 1}), 2)
    barrier.wait()
    t0 = time.time()
    if trainer == "vmap":
        tests = train_vmap(cells, X_test, args, args.epochs)
    else:
        tests = [o["test"] for o in train_stacked(cells, model, train, 2)]
    sync(args.device)
    return t0, time.time(), tests


def run_stacked(args: argparse.Namespace, threads: int, trainers: tuple[str, ...]
                ) -> dict[str, tuple[float, list[np.ndarray]]]:
    """Per trainer, one after the other in the same worker processes: wall seconds of
    ``args.workers`` concurrent stacks, and worker 0's test probabilities."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    per = max(1, threads // args.workers)
    if args.workers == 1:
        class _NoBarrier:
            def wait(self) -> None:
                pass
        out = {}
        for trainer in trainers:
            t0, t1, probs = stacked_worker(trainer, args, 0, per, _NoBarrier())
            out[trainer] = (t1 - t0, probs)
        return out
    ctx = mp.get_context("spawn")
    out = {}
    with ctx.Manager() as manager, ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
        barrier = manager.Barrier(args.workers)  # each worker blocks on it: one task a process
        for trainer in trainers:
            futures = [pool.submit(stacked_worker, trainer, args, w, per, barrier)
                       for w in range(args.workers)]
            results = [f.result() for f in futures]
            out[trainer] = (max(r[1] for r in results) - min(r[0] for r in results),
                            results[0][2])
    return out


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    cells, X_test, y_test = make_cells(args)
    base_cell = cells[len(cells) // 2]  # ratio 0.5
    n, d = base_cell.X_train.shape

    # warm-up (allocator, thread pools, MKL), then timing
    baseline_member(base_cell.X_train, base_cell.y_train, X_test[:10], 0, args, 1)

    seeds = base_cell.member_seeds[: args.baseline_members]
    sync(args.device)
    t0 = time.perf_counter()
    base_probs = np.stack([baseline_member(base_cell.X_train, base_cell.y_train, X_test, s,
                                           args, args.epochs) for s in seeds])
    sync(args.device)
    t_base = time.perf_counter() - t0

    timed = run_stacked(args, threads, ("vmap", "stacked"))
    (t_vmap, vmap_probs), (t_stack, test_probs) = timed["vmap"], timed["stacked"]
    outputs = [{"test": p} for p in test_probs]

    peak = matmul_peak(args.device, args.quick)
    m_stacked = sum(len(c.member_seeds) for c in cells) * args.workers
    flops = stacked_flops(n, d, args.batch_size, args.epochs, m_stacked)
    base_s = t_base / len(seeds)
    vmap_s = t_vmap / m_stacked
    stack_s = t_stack / m_stacked
    achieved = flops / t_stack / 1e9
    same = outputs[len(cells) // 2]["test"][: len(seeds)]
    result = {
        "baseline_s_per_member": base_s,
        "vmap_s_per_member": vmap_s,
        "stacked_s_per_member": stack_s,
        "speedup": base_s / stack_s,
        "speedup_vs_vmap": vmap_s / stack_s,
        "gflops_achieved": achieved,
        "gflops_peak": peak,
        "peak_fraction": achieved / peak,
        "acc_baseline": accuracy(base_probs, y_test),
        "acc_vmap": accuracy(vmap_probs[len(cells) // 2][: len(seeds)], y_test),
        "acc_stacked": accuracy(same, y_test),
        "threads": threads,
        "members_baseline": len(seeds),
        "members_stacked": m_stacked,
        "workers": args.workers,
        "device": args.device,
    }
    all_acc = float(np.mean([accuracy(o["test"], y_test) for o in outputs]))
    vmap_acc = float(np.mean([accuracy(p, y_test) for p in vmap_probs]))
    report(result, args, all_acc, vmap_acc, flops / m_stacked)
    print(json.dumps(result))
    return result


def report(r: dict, args: argparse.Namespace, all_acc: float, vmap_acc: float,
           flops_member: float) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"train_members: {args.epochs} epochs, {args.train_size} samples/cell, "
                    f"batch {args.batch_size}, {r['threads']} threads, {r['device']}; "
                    f"stacked: {r['workers']} worker(s) x {r['threads'] // r['workers'] or 1} "
                    "thread(s)")
    for col in ("trainer", "members", "s / member", "test accuracy"):
        t.add_column(col, justify="right")
    t.add_row("baseline loop", str(r["members_baseline"]), f"{r['baseline_s_per_member']:.3f}",
              f"{r['acc_baseline']:.4f}")
    t.add_row("vmap recipe (same seeds)", str(r["members_baseline"]), "",
              f"{r['acc_vmap']:.4f}")
    t.add_row("vmap recipe (all)", str(r["members_stacked"]), f"{r['vmap_s_per_member']:.4f}",
              f"{vmap_acc:.4f}")
    t.add_row("stacked (same seeds)", str(r["members_baseline"]), "",
              f"{r['acc_stacked']:.4f}")
    t.add_row("stacked (all)", str(r["members_stacked"]), f"{r['stacked_s_per_member']:.4f}",
              f"{all_acc:.4f}")
    console = Console()
    console.print(t)
    console.print(f"speedup {r['speedup']:.1f}x over the loop, {r['speedup_vs_vmap']:.1f}x over "
                  f"the vmap recipe; stacked matmuls {r['gflops_achieved']:.1f} GFLOP/s = "
                  f"{r['peak_fraction']:.0%} of the measured peak {r['gflops_peak']:.1f} GFLOP/s "
                  "(information only)")
    total = TARGET_MEMBERS * r["stacked_s_per_member"] * (100 / args.epochs)
    need = TARGET_MEMBERS * flops_member * (100 / args.epochs) / TARGET_S / 1e9
    console.print(f"{TARGET_MEMBERS} members x 100 epochs at this rate: {total:.0f} s "
                  f"(target {TARGET_S:.0f} s needs {need:.0f} GFLOP/s = "
                  f"{need / r['gflops_peak']:.0%} of peak)")


if __name__ == "__main__":
    main()
