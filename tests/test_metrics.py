"""Vectorised metrics agree with scikit-learn and fairlearn, draw by draw."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fairlearn.metrics import MetricFrame
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from fairensemble.metrics import (
    METRICS,
    accuracy,
    auc,
    balanced_accuracy,
    group_metrics,
)

ALL = ["accuracy", "balanced_accuracy", "auc"]


def tied_probs(rng: np.random.Generator, D: int, n: int, C: int) -> np.ndarray:
    """Probabilities on a coarse grid: many tied scores across samples and tied argmaxes."""
    if C == 2:
        p1 = rng.integers(0, 11, size=(D, n)) / 10
        return np.stack([1 - p1, p1], axis=2)
    counts = rng.integers(1, 4, size=(D, n, C)).astype(float)
    return counts / counts.sum(axis=2, keepdims=True)


def sk_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    if p.shape[1] == 2:
        return roc_auc_score(y, p[:, 1], sample_weight=w)
    return roc_auc_score(y, p, multi_class="ovr", average="macro", sample_weight=w)


def sk_balanced(y: np.ndarray, pred: np.ndarray, w: np.ndarray | None = None) -> float:
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true"
        warnings.simplefilter("ignore")
        return balanced_accuracy_score(y, pred, sample_weight=w)


SK = {
    "accuracy": lambda y, p, w=None: accuracy_score(y, p.argmax(1), sample_weight=w),
    "balanced_accuracy": lambda y, p, w=None: sk_balanced(y, p.argmax(1), w),
    "auc": sk_auc,
}


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("C", [2, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metric_matches_sklearn_per_draw(name: str, C: int, weighted: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    D, n = 5, 300
    probs = tied_probs(rng, D, n, C)
    y = rng.integers(0, C, size=n)
    w = rng.uniform(0.1, 3.0, size=n) if weighted else None
    got = METRICS[name](probs, y, w)
    assert got.shape == (D,)
    want = [SK[name](y, probs[d], w) for d in range(D)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_argmax_ties_go_to_the_lowest_class() -> None:
    probs = np.array([[[0.5, 0.5], [0.2, 0.8]]])
    assert accuracy(probs, np.array([0, 1]))[0] == 1.0
    assert accuracy(probs, np.array([1, 1]))[0] == 0.5


def test_auc_counts_tied_scores_as_one_half() -> None:
    # positives scored 0.5, 0.9; negatives 0.5, 0.1 -> pairs: tie 1/2, 1, 1, 1 -> 3.5 / 4
    p1 = np.array([[0.5, 0.9, 0.5, 0.1]])
    probs = np.stack([1 - p1, p1], axis=2)
    assert auc(probs, np.array([1, 1, 0, 0]))[0] == pytest.approx(0.875, abs=1e-15)


def test_auc_is_nan_with_a_single_class() -> None:
    probs = tied_probs(np.random.default_rng(0), 3, 20, 2)
    assert np.isnan(auc(probs, np.ones(20, dtype=int))).all()


def test_multiclass_auc_averages_over_the_classes_present() -> None:
    rng = np.random.default_rng(3)
    probs = tied_probs(rng, 4, 200, 3)
    y = rng.choice([0, 2], size=200)  # class 1 absent
    want = [
        np.mean([roc_auc_score(y == c, probs[d, :, c]) for c in (0, 2)]) for d in range(4)
    ]
    np.testing.assert_allclose(auc(probs, y), want, rtol=0, atol=1e-10)


def test_balanced_accuracy_ignores_classes_absent_from_y() -> None:
    probs = np.array([[[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]]])
    # class 0: 1 of 2 right; class 1 absent although predicted; class 2: 1 of 1 right
    assert balanced_accuracy(probs, np.array([0, 0, 2]))[0] == pytest.approx(0.75)


def binary_case(seed: int, n: int = 400, G: int = 2):
    rng = np.random.default_rng(seed)
    probs = tied_probs(rng, 4, n, 2)
    y = rng.integers(0, 2, size=n)
    g = rng.choice(G, size=n, p=np.linspace(1, 2, G) / np.linspace(1, 2, G).sum())
    return probs, y, g


@pytest.mark.parametrize("seed", [0, 1])
def test_group_metrics_match_fairlearn_metricframe(seed: int) -> None:
    probs, y, g = binary_case(seed)
    groups = ["female", "male"]
    got = group_metrics(probs, y, g, groups, ALL, test_mix="natural")
    sensitive = np.array(groups)[g]
    for d in range(probs.shape[0]):
        pred, score = probs[d].argmax(1), probs[d, :, 1]
        frames = {
            "accuracy": MetricFrame(
                metrics=accuracy_score, y_true=y, y_pred=pred, sensitive_features=sensitive
            ),
            "balanced_accuracy": MetricFrame(
                metrics=balanced_accuracy_score, y_true=y, y_pred=pred,
                sensitive_features=sensitive,
            ),
            "auc": MetricFrame(
                metrics=roc_auc_score, y_true=y, y_pred=score, sensitive_features=sensitive
            ),
        }
        for metric, frame in frames.items():
            for name in groups:
                assert got[(name, metric)][d] == pytest.approx(frame.by_group[name], abs=1e-10)
            assert got[("overall", metric)][d] == pytest.approx(frame.overall, abs=1e-10)
            assert got[("gap", metric)][d] == pytest.approx(frame.difference(), abs=1e-10)
            assert got[("worst", metric)][d] == pytest.approx(frame.group_min(), abs=1e-10)


@pytest.mark.parametrize("C", [2, 3])
def test_balanced_overall_weights_every_group_equally(C: int) -> None:
    rng = np.random.default_rng(7)
    n = 500
    probs = tied_probs(rng, 3, n, C)
    y = rng.integers(0, C, size=n)
    g = (rng.random(n) < 0.8).astype(int)  # 20% / 80%
    got = group_metrics(probs, y, g, ["a", "b"], ALL, test_mix="balanced")
    counts = np.bincount(g)
    w = 1.0 / (2 * counts[g])
    for metric in ALL:
        want = [SK[metric](y, probs[d], w) for d in range(3)]
        np.testing.assert_allclose(got[("overall", metric)], want, rtol=0, atol=1e-10)


def test_three_groups_three_classes() -> None:
    rng = np.random.default_rng(11)
    n, D = 600, 3
    probs = tied_probs(rng, D, n, 3)
    y = rng.integers(0, 3, size=n)
    g = rng.choice(3, size=n, p=[0.2, 0.3, 0.5])
    groups = ["young", "middle", "old"]
    got = group_metrics(probs, y, g, groups, ALL, test_mix="balanced")
    assert len(got) == (3 + 3) * 3
    counts = np.bincount(g)
    w = 1.0 / (3 * counts[g])
    for metric in ALL:
        per_group = np.array(
            [[SK[metric](y[g == j], probs[d, g == j]) for d in range(D)] for j in range(3)]
        )
        for j, name in enumerate(groups):
            np.testing.assert_allclose(got[(name, metric)], per_group[j], rtol=0, atol=1e-10)
        np.testing.assert_allclose(
            got[("gap", metric)], per_group.max(0) - per_group.min(0), rtol=0, atol=1e-10
        )
        np.testing.assert_allclose(got[("worst", metric)], per_group.min(0), rtol=0, atol=1e-10)
        overall = [SK[metric](y, probs[d], w) for d in range(D)]
        np.testing.assert_allclose(got[("overall", metric)], overall, rtol=0, atol=1e-10)


def test_group_missing_a_class_gets_nan_auc_and_nan_gap() -> None:
    probs, y, g = binary_case(5, G=3)
    y[g == 2] = 1
    got = group_metrics(probs, y, g, ["a", "b", "c"], ["auc", "balanced_accuracy"], "natural")
    assert np.isnan(got[("c", "auc")]).all()
    assert np.isnan(got[("gap", "auc")]).all() and np.isnan(got[("worst", "auc")]).all()
    assert np.isfinite(got[("overall", "auc")]).all()
    # balanced accuracy of a one-class group is its recall of that class
    recall = (probs[:, g == 2].argmax(2) == 1).mean(1)
    np.testing.assert_allclose(got[("c", "balanced_accuracy")], recall, rtol=0, atol=1e-12)


def test_group_without_test_samples_is_an_error_naming_it() -> None:
    probs, y, g = binary_case(0)
    with pytest.raises(ValueError, match="'unseen'"):
        group_metrics(probs, y, g, ["a", "b", "unseen"], ["accuracy"], "natural")


def test_unknown_metric_is_an_error() -> None:
    probs, y, g = binary_case(0)
    with pytest.raises(ValueError, match="metrics"):
        group_metrics(probs, y, g, ["a", "b"], ["f1"], "natural")
