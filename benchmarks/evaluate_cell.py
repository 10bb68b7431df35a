"""Seconds per ``evaluate_cell`` call on one realistic cell, and fairlearn's MetricFrame beside it.

The cell is the size of one cell of ``configs/label_noise.yaml``: E = 20 members, 10,000 test
samples, two classes, two groups (M 60 %, F 40 %; F's labels noisier, so its task is harder),
ensemble sizes k = 1, 2, 3, 5, 10, 20 with 50 draws each (221 draws in all). Member
probabilities are float32 softmaxes of a shared latent score times a member-specific scale plus
member-specific noise, so members agree more than chance and ensembling helps, as in a trained
ensemble.

* ``evaluate_cell`` with the metrics of the label-noise config (accuracy, balanced_accuracy,
  auc), and, where the registry exists, with every registered metric; best of ``--repeat``.
* fairlearn: ``MetricFrame`` computing accuracy, true/false positive rate and selection rate
  per group on the same draws (same subsets, same averaged probabilities), one frame per draw:
  how the same per-group numbers are usually computed. Timed once (it is slow).

    python benchmarks/evaluate_cell.py
    python benchmarks/evaluate_cell.py --quick      # 3 ks, no fairlearn baseline

Prints a table, then one JSON line with ``three_metrics_s``, ``all_metrics_s`` (null before the
registry), ``n_metrics_all``, ``fairlearn_s``, ``fairlearn_over_all`` (how many times slower
fairlearn is than ``evaluate_cell`` with every metric, which computes more), ``boot_s``
(every metric, with 200 bootstrap resamples at k = 1 and k = E, where supported),
``boot_peak_mib`` (peak memory numpy allocated during that call, from tracemalloc),
``draws_total``.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

import numpy as np

from fairensemble.evaluation.ensemble import average_members, draw_subsets, evaluate_cell

E, N, KS, DRAWS, SEED = 20, 10_000, [1, 2, 3, 5, 10, 20], 50, 0
THREE = ["accuracy", "balanced_accuracy", "auc"]


def cell(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """member_probs float32 [E, N, 2], y [N], g [N] (0 = M, 1 = F)."""
    rng = np.random.default_rng(seed)
    g = (rng.random(N) < 0.4).astype(np.int64)
    z = rng.normal(scale=2.0, size=N)
    flip = rng.random(N) < np.where(g == 1, 0.2, 0.05)
    y = ((rng.random(N) < 1 / (1 + np.exp(-z))) ^ flip).astype(np.int64)
    scale = rng.uniform(0.7, 1.3, size=(E, 1))
    logit = scale * z + rng.normal(scale=0.8, size=(E, N))
    p1 = (1 / (1 + np.exp(-logit))).astype(np.float32)
    return np.stack([1 - p1, p1], axis=2), y, g


def table_of(result):
    """The metric table, whether evaluate_cell returns a DataFrame or an Evaluation."""
    return getattr(result, "table", result)


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def fairlearn_seconds(probs: np.ndarray, y: np.ndarray, g: np.ndarray, ks: list[int]) -> float:
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    metrics = {"accuracy": accuracy_score, "tpr": true_positive_rate,
               "fpr": false_positive_rate, "selection_rate": selection_rate}
    sensitive = np.array(["M", "F"])[g]
    rng = np.random.default_rng(SEED)  # the subsets evaluate_cell draws
    t0 = time.perf_counter()
    for k in ks:
        subsets = draw_subsets(E, k, DRAWS, rng)
        avg = average_members(probs, subsets)
        for d in range(len(subsets)):
            pred = avg[d].argmax(1)
            MetricFrame(metrics=metrics, y_true=y, y_pred=pred, sensitive_features=sensitive)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="3 ensemble sizes, no fairlearn")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    ks = [1, 5, 20] if args.quick else KS
    probs, y, g = cell()
    groups = ["M", "F"]

    try:
        from fairensemble.metrics import names
    except ImportError:  # before the registry
        names = None

    def run(metrics: list[str], **kw):
        return evaluate_cell(probs, y, g, groups, ks, DRAWS, metrics, "balanced", SEED, **kw)

    run(THREE)  # warm-up (imports, first allocations)
    rows = []
    three = best_of(args.repeat, lambda: run(THREE))
    rows.append(("evaluate_cell, 3 metrics", three))
    all_s = n_all = boot_s = boot_mb = None
    if names is not None:
        every = names()
        n_all = len(every)
        all_s = best_of(args.repeat, lambda: run(every))
        rows.append((f"evaluate_cell, all {n_all} metrics", all_s))
        boot_s = best_of(1, lambda: run(every, n_boot=200, boot_seed=0))
        rows.append((f"  with bootstrap, 200 resamples (k=1, k={E})", boot_s))
        tracemalloc.start()
        run(every, n_boot=200, boot_seed=0)
        boot_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    fair = None
    if not args.quick:
        fair = fairlearn_seconds(probs, y, g, ks)
        rows.append(("fairlearn MetricFrame, 4 metrics per group", fair))
    n_draws = int(table_of(run(["accuracy"])).query("group == 'overall'")["n_draws"].sum())

    print(f"cell: E={E}, n_test={N}, C=2, 2 groups, ks={ks}, draws={DRAWS} ({n_draws} in all)")
    for label, s in rows:
        print(f"  {label:<48} {s:8.3f} s")
    if boot_mb is not None:
        print(f"  bootstrap peak memory (numpy, tracemalloc)      {boot_mb:8.1f} MiB")
    ratio = None if fair is None else fair / (all_s if all_s is not None else three)
    if ratio is not None:
        print(f"  fairlearn / evaluate_cell ({'all' if all_s else '3'} metrics): {ratio:.1f}x")
    print(json.dumps({
        "three_metrics_s": round(three, 4),
        "all_metrics_s": None if all_s is None else round(all_s, 4),
        "n_metrics_all": n_all,
        "boot_s": None if boot_s is None else round(boot_s, 4),
        "boot_peak_mib": None if boot_mb is None else round(boot_mb, 1),
        "fairlearn_s": None if fair is None else round(fair, 3),
        "fairlearn_over_all": None if ratio is None else round(ratio, 1),
        "draws_total": n_draws,
    }))


if __name__ == "__main__":
    main()
