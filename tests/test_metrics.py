"""Vectorised metrics agree with scikit-learn and fairlearn, draw by draw."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    log_loss,
    precision_score,
    roc_auc_score,
)

from fairensemble import metrics as fm
from fairensemble.evaluation import average_members, draw_subsets
from fairensemble.metrics import (
    METRICS,
    Members,
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


def test_unknown_metric_is_an_error() -> None:
    probs, y, g = binary_case(0)
    with pytest.raises(ValueError, match="metrics"):
        group_metrics(probs, y, g, ["a", "b"], ["f1"], "natural")


# ----------------------------------------------------------------------------- the registry


def test_registry_lists_each_metric_once_with_its_declaration() -> None:
    assert fm.names() == list(METRICS)
    assert fm.names(scope="between") == ["spd", "eod", "aod", "eq_odds"]
    assert set(fm.names(needs_at_most={"labels"})) == {
        "accuracy", "balanced_accuracy", "tpr", "fpr", "selection_rate", "precision",
        "spd", "eod", "aod", "eq_odds",
    }
    assert "disagreement" not in fm.names(needs_at_most={"labels", "probs"})
    assert fm.get("fpr").direction == "lower" and fm.get("auc").needs == {"probs"}
    assert fm.get("aod").uses == ("tpr", "fpr")
    assert all(m.summary and "\n" not in m.summary for m in METRICS.values())


def test_unknown_name_is_an_error_listing_the_registered_names() -> None:
    with pytest.raises(ValueError) as err:
        fm.get("f1")
    assert str(err.value) == f"metrics: expected names from {fm.names()}, got 'f1'"


def test_labels_follow_scope_and_direction() -> None:
    assert fm.labels("accuracy", ["a", "b"]) == ["a", "b", "overall", "gap", "worst"]
    assert fm.labels("selection_rate", ["a", "b"]) == ["a", "b", "overall", "gap"]
    assert fm.labels("eq_odds", ["a", "b"]) == ["disparity"]


def test_a_group_named_like_a_derived_label_is_an_error() -> None:
    probs, y, g = binary_case(0)
    with pytest.raises(ValueError, match="groups"):
        group_metrics(probs, y, g, ["a", "disparity"], ["accuracy"], "natural")


# ----------------------------------------------------------------------------- references


def soft_probs(rng: np.random.Generator, D: int, n: int, C: int) -> np.ndarray:
    """Continuous probabilities (no ties, no value on an ECE bin edge)."""
    p = np.exp(rng.normal(scale=1.5, size=(D, n, C)))
    return p / p.sum(axis=2, keepdims=True)


def ovr_rates(y: np.ndarray, pred: np.ndarray, C: int, w: np.ndarray | None = None) -> dict:
    """One-vs-rest rates of each scored class (class 1 alone for C = 2) from scikit-learn's
    confusion matrix; 0/0 -> NaN."""
    out: dict[str, list[float]] = {"tpr": [], "fpr": [], "selection_rate": [], "precision": []}
    for c in [1] if C == 2 else range(C):
        tn, fp, fn, tp = confusion_matrix(
            y == c, pred == c, labels=[False, True], sample_weight=w
        ).ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            out["tpr"].append(np.float64(tp) / (tp + fn))
            out["fpr"].append(np.float64(fp) / (fp + tn))
            out["selection_rate"].append(np.float64(tp + fp) / (tp + fp + tn + fn))
            out["precision"].append(np.float64(tp) / (tp + fp))
    return {k: np.array(v) for k, v in out.items()}


def mean_defined(values: np.ndarray) -> float:
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else np.nan


RATES = ["tpr", "fpr", "selection_rate", "precision"]


@pytest.mark.parametrize("name", RATES)
@pytest.mark.parametrize("C", [2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_rates_match_the_confusion_matrix_one_vs_rest(name: str, C: int, weighted: bool) -> None:
    rng = np.random.default_rng(C + 10 * weighted)
    D, n = 4, 300
    probs = tied_probs(rng, D, n, C)
    y = rng.integers(0, C, size=n)
    w = rng.uniform(0.1, 3.0, size=n) if weighted else None
    got = METRICS[name](probs, y, w)
    want = [mean_defined(ovr_rates(y, probs[d].argmax(1), C, w)[name]) for d in range(D)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_binary_rates_match_fairlearn_and_undefined_is_nan_not_zero() -> None:
    rng = np.random.default_rng(5)
    probs = tied_probs(rng, 3, 200, 2)
    y = rng.integers(0, 2, size=200)
    for d in range(3):
        pred = probs[d].argmax(1)
        assert fm.tpr(probs, y)[d] == pytest.approx(true_positive_rate(y, pred), abs=1e-12)
        assert fm.fpr(probs, y)[d] == pytest.approx(false_positive_rate(y, pred), abs=1e-12)
        assert fm.selection_rate(probs, y)[d] == pytest.approx(selection_rate(y, pred), abs=1e-12)
    zeros = np.zeros(200, dtype=int)
    assert np.isnan(fm.tpr(probs, zeros)).all()  # no positives: fairlearn would say 0
    never = np.stack([np.ones((3, 200)), np.zeros((3, 200))], axis=2)  # always predicts 0
    assert np.isnan(fm.precision(never, y)).all()


@pytest.mark.parametrize("test_mix", ["balanced", "natural"])
def test_group_rates_match_fairlearn_metricframe(test_mix: str) -> None:
    rng = np.random.default_rng(8)
    n = 600
    probs = tied_probs(rng, 3, n, 2)
    y = rng.integers(0, 2, size=n)
    g = rng.choice(3, size=n, p=[0.2, 0.3, 0.5])
    groups = ["x", "y", "z"]
    got = group_metrics(probs, y, g, groups, RATES, test_mix)
    counts = np.bincount(g)
    w = 1.0 / (3 * counts[g]) if test_mix == "balanced" else np.ones(n)
    scorers = {
        "tpr": true_positive_rate, "fpr": false_positive_rate, "selection_rate": selection_rate,
        "precision": lambda yt, yp, sample_weight=None: precision_score(
            yt, yp, sample_weight=sample_weight, zero_division=np.nan),
    }
    for d in range(3):
        frame = MetricFrame(
            metrics=scorers, y_true=y, y_pred=probs[d].argmax(1),
            sensitive_features=np.array(groups)[g],
            sample_params={m: {"sample_weight": w} for m in scorers},
        )
        for metric in RATES:
            for name in groups:
                want = frame.by_group.loc[name, metric]
                assert got[(name, metric)][d] == pytest.approx(want, abs=1e-12)
            assert got[("overall", metric)][d] == pytest.approx(frame.overall[metric], abs=1e-12)
            assert got[("gap", metric)][d] == pytest.approx(
                frame.difference()[metric], abs=1e-12)


@pytest.mark.parametrize("G", [2, 3])
def test_disparities_match_fairlearn(G: int) -> None:
    rng = np.random.default_rng(G)
    n = 500
    probs = tied_probs(rng, 4, n, 2)
    y = rng.integers(0, 2, size=n)
    g = rng.integers(0, G, size=n)
    groups = [f"g{j}" for j in range(G)]
    got = group_metrics(probs, y, g, groups, ["spd", "eod", "aod", "eq_odds"], "balanced")
    assert {label for label, _ in got} == {"disparity"}
    for d in range(4):
        kw = {"y_true": y, "y_pred": probs[d].argmax(1), "sensitive_features": g}
        want = {
            "spd": demographic_parity_difference(**kw),
            "eod": equal_opportunity_difference(**kw),
            "aod": equalized_odds_difference(**kw, agg="mean"),
            "eq_odds": equalized_odds_difference(**kw),
        }
        for metric, value in want.items():
            assert got[("disparity", metric)][d] == pytest.approx(value, abs=1e-12)
            assert METRICS[metric](probs, y, g)[d] == pytest.approx(value, abs=1e-12)


def test_multiclass_disparities_average_the_per_class_ranges() -> None:
    rng = np.random.default_rng(21)
    n, C = 600, 3
    probs = tied_probs(rng, 3, n, C)
    y = rng.integers(0, C, size=n)
    g = rng.integers(0, 2, size=n)
    got = group_metrics(probs, y, g, ["a", "b"], ["spd", "eod", "aod", "eq_odds"], "natural")
    for d in range(3):
        pred = probs[d].argmax(1)
        per_class = {m: [] for m in ("spd", "eod", "aod", "eq_odds")}
        for c in range(C):
            kw = {"y_true": y == c, "y_pred": pred == c, "sensitive_features": g}
            per_class["spd"].append(demographic_parity_difference(**kw))
            per_class["eod"].append(equal_opportunity_difference(**kw))
            per_class["aod"].append(equalized_odds_difference(**kw, agg="mean"))
            per_class["eq_odds"].append(equalized_odds_difference(**kw))
        for metric, values in per_class.items():
            assert got[("disparity", metric)][d] == pytest.approx(np.mean(values), abs=1e-12)


# ----------------------------------------------------------------------------- calibration


def naive_ece(correct: np.ndarray, conf: np.ndarray, w: np.ndarray) -> float:
    edges = np.linspace(0, 1, 16)
    total = 0.0
    for b in range(15):
        inside = (conf > edges[b]) & (conf <= edges[b + 1]) | ((b == 0) & (conf == 0))
        total += abs(np.sum(w[inside] * (correct[inside] - conf[inside])))
    return total / w.sum()


@pytest.mark.parametrize("C", [2, 3])
def test_ece_matches_sklearn_calibration_curve(C: int) -> None:
    rng = np.random.default_rng(C)
    D, n = 3, 800
    probs = soft_probs(rng, D, n, C)
    y = rng.integers(0, C, size=n)
    got = fm.ece(probs, y)
    for d in range(D):
        conf = probs[d].max(1)
        correct = (probs[d].argmax(1) == y).astype(int)
        prob_true, prob_pred = calibration_curve(correct, conf, n_bins=15, strategy="uniform")
        counts = np.histogram(conf, bins=np.linspace(0, 1, 16))[0]
        want = np.sum(counts[counts > 0] / n * np.abs(prob_true - prob_pred))
        assert got[d] == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("test_mix", ["balanced", "natural"])
def test_group_ece_sums_weighted_gaps_per_bin(test_mix: str) -> None:
    rng = np.random.default_rng(4)
    n = 700
    probs = soft_probs(rng, 2, n, 3)
    y = rng.integers(0, 3, size=n)
    g = (rng.random(n) < 0.3).astype(int)
    got = group_metrics(probs, y, g, ["a", "b"], ["ece"], test_mix)
    counts = np.bincount(g)
    w = 1.0 / (2 * counts[g]) if test_mix == "balanced" else np.ones(n)
    for d in range(2):
        conf, correct = probs[d].max(1), (probs[d].argmax(1) == y).astype(float)
        for j, name in enumerate(["a", "b"]):
            m = g == j
            want = naive_ece(correct[m], conf[m], np.ones(m.sum()))
            assert got[(name, "ece")][d] == pytest.approx(want, abs=1e-12)
        assert got[("overall", "ece")][d] == pytest.approx(naive_ece(correct, conf, w), abs=1e-12)


def test_ece_bins_equal_calibration_curve_binning_at_the_edges() -> None:
    edges = np.linspace(0, 1, 16)
    near = np.concatenate([edges, np.nextafter(edges, 2), np.nextafter(edges, -1)])
    conf = np.clip(near, 0, 1)
    np.testing.assert_array_equal(fm.ece_bin(conf), np.searchsorted(edges[1:-1], conf))


@pytest.mark.parametrize("C", [2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_brier_matches_sklearn_with_scale_by_half_auto(C: int, weighted: bool) -> None:
    rng = np.random.default_rng(C)
    probs = soft_probs(rng, 3, 300, C)
    y = rng.integers(0, C, size=300)
    w = rng.uniform(0.1, 2.0, size=300) if weighted else None
    got = fm.brier(probs, y, w)
    for d in range(3):
        p = probs[d, :, 1] if C == 2 else probs[d]
        assert got[d] == pytest.approx(brier_score_loss(y, p, sample_weight=w), abs=1e-12)
    if C == 3:  # the multiclass Brier score is not halved
        halved = brier_score_loss(y, probs[0], sample_weight=w, scale_by_half=True)
        assert got[0] == pytest.approx(2 * halved, abs=1e-12)


@pytest.mark.parametrize("C", [2, 3])
def test_nll_matches_sklearn_log_loss_including_clipping(C: int) -> None:
    rng = np.random.default_rng(C)
    probs = soft_probs(rng, 3, 300, C)
    y = rng.integers(0, C, size=300)
    probs[:, 0] = 0.0
    probs[:, 0, (y[0] + 1) % C] = 1.0  # the true class gets probability 0: clipped to eps
    w = rng.uniform(0.1, 2.0, size=300)
    for weight in (None, w):
        got = fm.nll(probs, y, weight)
        for d in range(3):
            want = log_loss(y, probs[d], sample_weight=weight, labels=list(range(C)))
            assert got[d] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("C", [2, 3])
@pytest.mark.parametrize("test_mix", ["balanced", "natural"])
def test_overall_weights_samples_by_test_mix_for_every_metric(C: int, test_mix: str) -> None:
    rng = np.random.default_rng(30 + C)
    n = 600
    probs = soft_probs(rng, 3, n, C)
    y = rng.integers(0, C, size=n)
    g = (rng.random(n) < 0.25).astype(int)
    every = fm.names(scope="group", needs_at_most={"labels", "probs"})
    got = group_metrics(probs, y, g, ["a", "b"], every, test_mix)
    counts = np.bincount(g)
    w = 1.0 / (2 * counts[g]) if test_mix == "balanced" else np.ones(n)
    for d in range(3):
        p, pred = probs[d], probs[d].argmax(1)
        rates = ovr_rates(y, pred, C, w)
        want = {
            "accuracy": accuracy_score(y, pred, sample_weight=w),
            "balanced_accuracy": sk_balanced(y, pred, w),
            "auc": sk_auc(y, p, w),
            **{m: mean_defined(rates[m]) for m in RATES},
            "ece": naive_ece((pred == y).astype(float), p.max(1), w),
            "brier": brier_score_loss(y, p[:, 1] if C == 2 else p, sample_weight=w),
            "nll": log_loss(y, p, sample_weight=w),
        }
        assert set(want) == set(every)
        for metric, value in want.items():
            assert got[("overall", metric)][d] == pytest.approx(value, abs=1e-12), metric


# ----------------------------------------------------------------------------- diversity


def naive_diversity(member_probs, y, subsets, w):
    """{"disagreement": [D], "ambiguity": [D]} by loops over member pairs and members."""
    C = member_probs.shape[2]
    member_probs = member_probs.astype(np.float64)

    def brier(p):
        with warnings.catch_warnings():  # float32 member probabilities sum to 1 +- 1e-7
            warnings.simplefilter("ignore")
            return brier_score_loss(y, p[:, 1] if C == 2 else p, sample_weight=w)

    out: dict[str, list[float]] = {"disagreement": [], "ambiguity": []}
    for s in subsets:
        preds = [member_probs[m].argmax(1) for m in s]
        pairs = [np.average(preds[a] != preds[b], weights=w)
                 for a, b in itertools.combinations(range(len(s)), 2)]
        out["disagreement"].append(np.mean(pairs) if pairs else 0.0)
        ens = member_probs[list(s)].mean(axis=0)
        out["ambiguity"].append(np.mean([brier(member_probs[m]) for m in s]) - brier(ens))
    return out


@pytest.mark.parametrize("C", [2, 3])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("test_mix", ["balanced", "natural"])
def test_diversity_matches_naive_loops_over_members(C: int, k: int, test_mix: str) -> None:
    rng = np.random.default_rng(C * k)
    E, n, D = 6, 400, 5
    member_probs = soft_probs(rng, E, n, C).astype(np.float32)
    y = rng.integers(0, C, size=n)
    g = (rng.random(n) < 0.35).astype(int)
    subsets = draw_subsets(E, k, D, rng)
    probs = average_members(member_probs, subsets)
    members = Members.from_probs(member_probs, y, subsets)
    got = group_metrics(probs, y, g, ["a", "b"], ["disagreement", "ambiguity"], test_mix,
                        members=members)
    counts = np.bincount(g)
    w_all = 1.0 / (2 * counts[g]) if test_mix == "balanced" else np.ones(n)
    for label, w in [("a", (g == 0) * 1.0), ("b", (g == 1) * 1.0), ("overall", w_all)]:
        want = naive_diversity(member_probs, y, subsets, w)
        for metric in ("disagreement", "ambiguity"):
            np.testing.assert_allclose(got[(label, metric)], want[metric], rtol=0, atol=1e-12)
    if k == 1:
        assert (got[("overall", "disagreement")] == 0).all()
        np.testing.assert_allclose(got[("overall", "ambiguity")], 0.0, atol=1e-15)


def test_ambiguity_is_the_mean_variance_of_member_probabilities() -> None:
    rng = np.random.default_rng(3)
    E, n = 5, 300
    member_probs = soft_probs(rng, E, n, 2)
    y = rng.integers(0, 2, size=n)
    subsets = draw_subsets(E, 3, 6, rng)
    probs = average_members(member_probs, subsets)
    got = fm.ambiguity(probs, y, members=Members.from_probs(member_probs, y, subsets))
    want = [member_probs[list(s), :, 1].var(axis=0).mean() for s in subsets]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_hard_predictions_replace_the_argmax_for_label_metrics() -> None:
    probs, y, g = binary_case(3)
    pred = 1 - probs.argmax(axis=2)  # e.g. after post-processing: every prediction flipped
    got = group_metrics(probs, y, g, ["a", "b"], ["accuracy", "eod"], "natural", pred=pred)
    for d in range(probs.shape[0]):
        for j, name in enumerate(["a", "b"]):
            m = g == j
            want = accuracy_score(y[m], pred[d, m])
            assert got[(name, "accuracy")][d] == pytest.approx(want, abs=1e-12)
        want = equal_opportunity_difference(y, pred[d], sensitive_features=g)
        assert got[("disparity", "eod")][d] == pytest.approx(want, abs=1e-12)
    with pytest.raises(ValueError, match="needs probabilities"):
        fm.score(fm.Context(y, fm.Slices.whole(len(y)), pred=pred, n_classes=2), ["auc"], [])


def test_diversity_metrics_need_the_members() -> None:
    probs, y, g = binary_case(0)
    with pytest.raises(ValueError, match="members"):
        group_metrics(probs, y, g, ["a", "b"], ["disagreement"], "natural")


# ----------------------------------------------------------------------------- edge cases


def test_a_group_absent_from_the_split_is_nan_with_a_note() -> None:
    probs, y, g = binary_case(0)
    every = fm.names(needs_at_most={"labels", "probs"})
    got = group_metrics(probs, y, g, ["a", "b", "unseen"], every, "balanced")
    for metric in every:
        if fm.get(metric).scope == "between":
            assert np.isnan(got[("disparity", metric)]).all()
            continue
        assert np.isnan(got[("unseen", metric)]).all()
        assert np.isnan(got[("gap", metric)]).all()
        assert np.isfinite(got[("a", metric)]).all()
        assert np.isfinite(got[("overall", metric)]).all()
    assert "group 'unseen': no test samples" in got.notes
    # the overall slice ignores the empty group: a and b count one half each
    ab = group_metrics(probs, y, g, ["a", "b"], ["accuracy"], "balanced")
    np.testing.assert_allclose(got[("overall", "accuracy")], ab[("overall", "accuracy")])


def test_a_one_class_group_is_nan_where_undefined_with_a_note() -> None:
    probs, y, g = binary_case(5, G=3)
    y[g == 2] = 1
    metrics = ["accuracy", "auc", "tpr", "fpr", "eod", "aod"]
    got = group_metrics(probs, y, g, ["a", "b", "c"], metrics, "natural")
    assert np.isnan(got[("c", "auc")]).all() and np.isnan(got[("c", "fpr")]).all()
    assert np.isfinite(got[("c", "tpr")]).all() and np.isfinite(got[("c", "accuracy")]).all()
    assert np.isnan(got[("worst", "fpr")]).all()
    assert np.isfinite(got[("disparity", "eod")]).all()  # uses TPRs only, all defined
    assert np.isnan(got[("disparity", "aod")]).all()  # needs group c's FPR
    assert got.notes == ["group 'c': one class in the test split, auc/fpr undefined"]


def test_worst_group_is_the_max_for_lower_is_better_metrics() -> None:
    rng = np.random.default_rng(2)
    probs = soft_probs(rng, 4, 500, 2)
    y = rng.integers(0, 2, size=500)
    g = rng.integers(0, 3, size=500)
    groups = ["a", "b", "c"]
    got = group_metrics(probs, y, g, groups, ["fpr", "brier", "accuracy", "selection_rate"],
                        "natural")
    for metric, pick in [("fpr", np.max), ("brier", np.max), ("accuracy", np.min)]:
        per_group = np.stack([got[(name, metric)] for name in groups])
        np.testing.assert_array_equal(got[("worst", metric)], pick(per_group, axis=0))
        assert not np.array_equal(per_group.max(0), per_group.min(0))
    assert ("worst", "selection_rate") not in got  # neither direction is better


def test_labels_may_differ_by_draw() -> None:
    rng = np.random.default_rng(9)
    probs = tied_probs(rng, 4, 120, 2)
    y = rng.integers(0, 2, size=(4, 120))
    want = [roc_auc_score(y[d], probs[d, :, 1]) for d in range(4)]
    np.testing.assert_allclose(auc(probs, y), want, rtol=0, atol=1e-12)
    want = [accuracy_score(y[d], probs[d].argmax(1)) for d in range(4)]
    np.testing.assert_allclose(accuracy(probs, y), want, rtol=0, atol=1e-12)
