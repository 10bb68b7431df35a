"""Verdicts and optima: the definitions of positive-sum / leveling-down / mixed."""

import numpy as np
import pandas as pd

from fairensemble.evaluation import direction, t_interval, verdict
from fairensemble.evaluation.summary import _arg, _verdict_95


def test_positive_sum_needs_every_group_to_hold_and_the_gap_not_to_widen():
    assert verdict({"a": 0.01, "b": 0.02}, -0.01) == "positive-sum"
    assert verdict({"a": 0.0, "b": 0.02}, 0.0) == "positive-sum"
    assert verdict({"a": 0.01, "b": 0.03}, 0.02) == "mixed"  # both better, gap wider


def test_leveling_down_is_a_narrower_gap_bought_with_a_worse_group():
    assert verdict({"a": -0.02, "b": 0.0}, -0.02) == "leveling-down"
    assert verdict({"a": -0.02, "b": 0.01}, 0.03) == "mixed"


def test_ci95_is_a_t_interval_and_undefined_for_one_replicate():
    lo, hi = t_interval(np.array([1.0, 2.0, 3.0]))
    assert np.isclose(hi - 2.0, 4.302652729911275 * 1.0 / np.sqrt(3))
    assert np.isclose(lo + hi, 4.0)
    assert t_interval(np.array([1.0])) == (None, None)


def test_verdict_95_ignores_changes_whose_interval_covers_zero():
    change = {
        "a": {"mean": -0.001, "ci95": [-0.01, 0.008]},  # not significant: counts as 0
        "b": {"mean": 0.02, "ci95": [0.01, 0.03]},
        "gap": {"mean": -0.02, "ci95": [-0.03, -0.01]},
    }
    assert verdict({"a": -0.001, "b": 0.02}, 0.021) == "mixed"
    assert _verdict_95(change, ["a", "b"], "accuracy") == "positive-sum"
    change["a"]["ci95"] = [None, None]
    assert _verdict_95(change, ["a", "b"], "accuracy") == "n/a"


def test_for_a_lower_is_better_metric_a_falling_value_is_an_improvement():
    # Brier score falls for both groups and the gap narrows: positive-sum, not leveling-down
    change = {
        "a": {"mean": -0.02, "ci95": [-0.03, -0.01]},
        "b": {"mean": -0.01, "ci95": [-0.02, -0.005]},
        "gap": {"mean": -0.01, "ci95": [-0.02, -0.005]},
    }
    assert _verdict_95(change, ["a", "b"], "brier") == "positive-sum"
    assert _verdict_95(change, ["a", "b"], "accuracy") == "leveling-down"
    assert direction("ece") == "lower" and direction("auc") == "higher"


def test_optimum_ignores_undefined_values():
    s = pd.Series([np.nan, 0.3, 0.1, np.nan], index=[0.0, 0.3, 0.6, 1.0])
    assert _arg(s, "min") == 0.6 and _arg(s, "max") == 0.3
    assert _arg(pd.Series([np.nan, np.nan], index=[0.0, 1.0]), "min") is None


def test_the_package_exports_what_a_notebook_needs(tmp_path):
    import fairensemble as fe

    cfg = fe.load_config(None, [
        "dataset.pool_size=1000", "dataset.test_size=400", "ratios=[0.5]", "train_size=100",
        "replicates=1", "model.hidden=[8]", "train.epochs=2", "ensemble.members=2",
        "ensemble.k=[1, 2]", "ensemble.draws=2", "executor.kind=serial",
    ])
    summary = fe.run(cfg, str(tmp_path / "run"))
    assert summary["members"] == 2 and len(summary["grid_points"]) == 1
    assert (tmp_path / "run" / "metrics.parquet").is_file()
    for name in fe.__all__:
        assert getattr(fe, name) is not None
