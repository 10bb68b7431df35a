"""Seconds per cell for group threshold post-processing: fairlearn row by row vs one batch.

One cell's worth of work: D = 21 score vectors (20 single-member draws and the full ensemble)
on the same validation split, n_val = 2,000 samples in two groups (70 / 30, prevalences 0.5 /
0.3, the small group's scores less separable), scores continuous in (0, 1); the fitted rule is
applied to n_test = 10,000 test samples. For each constraint (equalized odds, demographic
parity):

* fairlearn: per row, ``ThresholdOptimizer(prefit=True, predict_method="predict_proba")``
  around a prefit estimator that returns the stored scores, ``fit`` on the validation row,
  then ``_pmf_predict`` on the test row; 21 times.
* batch: ``fit_thresholds`` on the [21, 2000] matrix, then ``predict_proba`` on [21, 10000].

Each is timed ``--repeats`` times (best kept), alternating, in one process; the two outputs
are compared (largest absolute difference of P(predict 1)).

    python benchmarks/postprocess.py              # full run (~20 s on 2 busy cores)
    python benchmarks/postprocess.py --quick      # smoke version: D = 3, n_val = 300

Prints a table, then one JSON line with, per constraint (``eo``, ``dp``), ``fairlearn_s``,
``batch_s``, ``speedup`` and ``max_abs_diff``, plus ``draws``, ``n_val``, ``n_test`` and
``repeats``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.base import BaseEstimator, ClassifierMixin

from fairensemble.evaluation.postprocess import CONSTRAINTS, fit_thresholds, predict_proba


class StoredScores(ClassifierMixin, BaseEstimator):
    """A prefit 'model' whose P(class 1) for row X[i] is scores[int(X[i, 0])]."""

    def __init__(self, scores: np.ndarray | None = None) -> None:
        self.scores = scores

    def fit(self, X: np.ndarray, y: np.ndarray) -> StoredScores:
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        s = self.scores[np.asarray(X)[:, 0].astype(int)]
        return np.column_stack([1 - s, s])


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke version: D = 3, n_val = 300")
    p.add_argument("--draws", type=int, default=21)
    p.add_argument("--n-val", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.draws, args.n_val, args.n_test, args.repeats = 3, 300, 1000, 1
    return args


def make_cell(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Validation and test scores of D draws: logistic, the small group less separable."""
    rng = np.random.default_rng(args.seed)
    n = args.n_val + args.n_test
    g = (rng.random(n) < 0.3).astype(np.int64)
    y = (rng.random(n) < np.where(g == 1, 0.3, 0.5)).astype(np.int64)
    separation = np.where(g == 1, 1.0, 2.0)
    z = separation * (y - 0.5) + rng.normal(size=(args.draws, n)) + 0.2 * rng.normal(
        size=(args.draws, 1)
    )
    s = 1 / (1 + np.exp(-z))
    v = args.n_val
    return {"s_val": s[:, :v], "y_val": y[:v], "g_val": g[:v], "s_test": s[:, v:], "g_test": g[v:]}


def fairlearn_rows(cell: dict[str, np.ndarray], constraint: str) -> np.ndarray:
    D, v = cell["s_val"].shape
    X = np.arange(v + cell["s_test"].shape[1], dtype=float)[:, None]
    out = []
    for d in range(D):
        est = StoredScores(np.concatenate([cell["s_val"][d], cell["s_test"][d]]))
        opt = ThresholdOptimizer(
            estimator=est, constraints=constraint, prefit=True, predict_method="predict_proba"
        )
        opt.fit(X[:v], cell["y_val"], sensitive_features=cell["g_val"])
        out.append(opt._pmf_predict(X[v:], sensitive_features=cell["g_test"])[:, 1])
    return np.stack(out)


def batch_rows(cell: dict[str, np.ndarray], constraint: str) -> np.ndarray:
    rule = fit_thresholds(cell["s_val"], cell["y_val"], cell["g_val"], 2, constraint)
    return predict_proba(rule, cell["s_test"], cell["g_test"])


def best_time(fn, *args, repeats: int) -> tuple[float, np.ndarray]:
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    cell = make_cell(args)
    batch_rows(cell, "equalized_odds")  # warm-up: imports, first-call allocations
    fairlearn_rows({k: v[:1] if v.ndim == 2 else v for k, v in cell.items()}, "equalized_odds")
    result: dict = {}
    for short, constraint in (("eo", "equalized_odds"), ("dp", "demographic_parity")):
        t_fl = t_b = np.inf
        for _ in range(args.repeats):  # alternate, so background load hits both alike
            t, ref = best_time(fairlearn_rows, cell, constraint, repeats=1)
            t_fl = min(t_fl, t)
            t, ours = best_time(batch_rows, cell, constraint, repeats=1)
            t_b = min(t_b, t)
        result[short] = {
            "fairlearn_s": t_fl,
            "batch_s": t_b,
            "speedup": t_fl / t_b,
            "max_abs_diff": float(np.abs(ref - ours).max()),
        }
        assert CONSTRAINTS[f"threshold_{short}"] == constraint
    result.update(draws=args.draws, n_val=args.n_val, n_test=args.n_test, repeats=args.repeats)
    report(result)
    print(json.dumps(result))
    return result


def report(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(
        title=f"threshold post-processing: {r['draws']} draws, n_val {r['n_val']}, "
        f"n_test {r['n_test']}, best of {r['repeats']}"
    )
    for col in ("constraint", "fairlearn s", "batch s", "speedup", "max |diff|"):
        t.add_column(col, justify="right")
    for short, name in (("eo", "equalized odds"), ("dp", "demographic parity")):
        x = r[short]
        t.add_row(
            name,
            f"{x['fairlearn_s']:.3f}",
            f"{x['batch_s']:.4f}",
            f"{x['speedup']:.0f}x",
            f"{x['max_abs_diff']:.1e}",
        )
    Console().print(t)


if __name__ == "__main__":
    main()
