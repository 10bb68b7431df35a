"""Threshold post-processing equals fairlearn's ThresholdOptimizer row by row, and is fair."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.base import BaseEstimator, ClassifierMixin

from fairensemble.evaluation import fit_thresholds, predict
from fairensemble.evaluation.postprocess import CONSTRAINTS, predict_proba

BOTH = sorted(CONSTRAINTS.values())


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


def fairlearn_pmf(
    s_fit: np.ndarray,
    y: np.ndarray,
    g: np.ndarray,
    s_test: np.ndarray,
    g_test: np.ndarray,
    constraint: str,
    grid_size: int = 1000,
) -> np.ndarray:
    """fairlearn's P(predict 1) on the held-out scores after fitting on one score vector."""
    everything = np.concatenate([s_fit, s_test])
    X = np.arange(everything.size, dtype=float)[:, None]
    opt = ThresholdOptimizer(
        estimator=StoredScores(everything),
        constraints=constraint,
        prefit=True,
        predict_method="predict_proba",
        grid_size=grid_size,
    )
    opt.fit(X[: s_fit.size], y, sensitive_features=g)
    return opt._pmf_predict(X[s_fit.size :], sensitive_features=g_test)[:, 1]


@dataclass
class Split:
    s_fit: np.ndarray  # [D, n]
    y: np.ndarray
    g: np.ndarray
    s_test: np.ndarray  # [D, m]
    y_test: np.ndarray
    g_test: np.ndarray


def make_split(
    seed: int,
    n: int,
    shares: tuple[float, ...],
    prevalence: tuple[float, ...],
    decimals: int | None,
    separation: tuple[float, ...] | None = None,
    D: int = 3,
    m: int = 400,
) -> Split:
    """Logistic scores whose quality differs by group; rounded to ``decimals`` for ties.

    Rows differ by noise and by a per-row shift, so every row has its own thresholds.
    """
    rng = np.random.default_rng(seed)
    G = len(shares)
    sep = np.asarray(separation if separation is not None else np.linspace(2.5, 0.8, G))
    g = rng.choice(G, size=n + m, p=np.asarray(shares))
    y = (rng.random(n + m) < np.asarray(prevalence)[g]).astype(np.int64)
    z = sep[g] * (y - 0.5) + 0.3 * g + rng.normal(size=(D, n + m)) + rng.normal(size=(D, 1))
    s = 1 / (1 + np.exp(-z))
    if decimals is not None:
        s = np.round(s, decimals)
    for j in range(G):  # the fit split must hold both classes of every group
        assert set(y[:n][g[:n] == j]) == {0, 1}, (seed, j)
    return Split(s[:, :n], y[:n], g[:n], s[:, n:], y[n:], g[n:])


# (seed, n, shares, prevalence, decimals): ties, group counts, sizes and imbalance vary
CASES = [
    (0, 60, (0.5, 0.5), (0.4, 0.6), None),
    (1, 400, (0.7, 0.3), (0.5, 0.3), 2),
    (2, 1500, (0.85, 0.15), (0.2, 0.7), None),
    (3, 3000, (0.6, 0.4), (0.5, 0.5), 2),
    (4, 900, (0.5, 0.3, 0.2), (0.3, 0.5, 0.8), 1),
    (5, 2500, (0.2, 0.3, 0.5), (0.6, 0.2, 0.4), None),
    (6, 700, (0.45, 0.45, 0.1), (0.5, 0.5, 0.5), 3),
    (7, 250, (0.6, 0.4), (0.15, 0.85), 2),
]


@pytest.mark.parametrize("constraint", BOTH)
@pytest.mark.parametrize("case", CASES, ids=[f"seed{c[0]}-n{c[1]}-G{len(c[2])}" for c in CASES])
def test_every_row_matches_fairlearn_fitted_on_that_row_alone(case: tuple, constraint: str) -> None:
    split = make_split(*case)
    rule = fit_thresholds(split.s_fit, split.y, split.g, len(case[2]), constraint)
    # held-out scores, the fit scores themselves and the fitted thresholds (s > t is strict)
    s_test = np.concatenate([split.s_test, split.s_fit, rule.threshold0, rule.threshold1], axis=1)
    groups = np.arange(len(case[2]))
    g_test = np.concatenate([split.g_test, split.g, groups, groups])
    s_test = np.where(np.isfinite(s_test), s_test, 0.5)
    q = predict_proba(rule, s_test, g_test)
    assert rule.defined.all()
    for d in range(split.s_fit.shape[0]):
        expected = fairlearn_pmf(split.s_fit[d], split.y, split.g, s_test[d], g_test, constraint)
        np.testing.assert_allclose(q[d], expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("constraint", BOTH)
@pytest.mark.parametrize(
    "scores",
    ["separable", "three_values", "one_value"],
)
def test_degenerate_score_shapes_match_fairlearn(constraint: str, scores: str) -> None:
    """Perfect separation (long collinear hull runs), hard 0/0.5/1 scores, one tied score."""
    split = make_split(11, 600, (0.6, 0.4), (0.4, 0.6), None, separation=(9.0, 6.0))
    if scores == "three_values":
        split.s_fit, split.s_test = (np.round(s * 2) / 2 for s in (split.s_fit, split.s_test))
    elif scores == "one_value":
        split.s_fit = np.full_like(split.s_fit, 0.3)
    rule = fit_thresholds(split.s_fit, split.y, split.g, 2, constraint)
    q = predict_proba(rule, split.s_test, split.g_test)
    for d in range(split.s_fit.shape[0]):
        expected = fairlearn_pmf(
            split.s_fit[d], split.y, split.g, split.s_test[d], split.g_test, constraint
        )
        np.testing.assert_allclose(q[d], expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("constraint", BOTH)
def test_flat_objectives_break_ties_as_fairlearn(constraint: str) -> None:
    """Separable scores in two equal-size groups with prevalences 0.3 and 0.6: the summed
    accuracy is exactly flat for selection rates in [0.3, 0.6], so only float rounding and
    the first-maximum rule pick the grid point."""
    rng = np.random.default_rng(19)
    y = np.concatenate([rng.permutation(np.repeat([1, 0], [60, 140])),
                        rng.permutation(np.repeat([1, 0], [120, 80]))])
    g = np.repeat([0, 1], 200)
    s = np.where(y == 1, rng.uniform(0.6, 1, size=(3, 400)), rng.uniform(0, 0.4, size=(3, 400)))
    s_test = rng.uniform(0, 1, size=(3, 300))
    g_test = rng.integers(0, 2, size=300)
    q = predict_proba(fit_thresholds(s, y, g, 2, constraint), s_test, g_test)
    for d in range(3):
        expected = fairlearn_pmf(s[d], y, g, s_test[d], g_test, constraint)
        np.testing.assert_allclose(q[d], expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("constraint", BOTH)
def test_grid_size_is_fairlearns_grid_size(constraint: str) -> None:
    split = make_split(12, 800, (0.5, 0.5), (0.3, 0.6), None)
    coarse = predict_proba(
        fit_thresholds(split.s_fit, split.y, split.g, 2, constraint, grid_size=7),
        split.s_test,
        split.g_test,
    )
    fine = predict_proba(
        fit_thresholds(split.s_fit, split.y, split.g, 2, constraint), split.s_test, split.g_test
    )
    assert np.abs(coarse - fine).max() > 1e-3  # the grid matters on this data
    for d in range(split.s_fit.shape[0]):
        expected = fairlearn_pmf(
            split.s_fit[d], split.y, split.g, split.s_test[d], split.g_test, constraint, 7
        )
        np.testing.assert_allclose(coarse[d], expected, rtol=0, atol=1e-9)


def test_each_row_of_a_batch_is_fitted_as_if_alone() -> None:
    """Rows with very different tie structures and sizes of hull share one batch."""
    split = make_split(13, 1000, (0.7, 0.3), (0.5, 0.4), None, D=5)
    s = split.s_fit.copy()
    s[1] = np.round(s[1], 1)
    s[2] = np.round(s[2], 2)
    s[3] = 1 / (1 + np.exp(-8 * (split.y - 0.5) - np.random.default_rng(0).normal(size=s.shape[1])))
    for constraint in BOTH:
        batch = fit_thresholds(s, split.y, split.g, 2, constraint)
        for d in range(s.shape[0]):
            alone = fit_thresholds(s[d : d + 1], split.y, split.g, 2, constraint)
            for name in ("threshold0", "threshold1", "p0", "p1", "p_ignore", "x_best"):
                np.testing.assert_array_equal(getattr(batch, name)[d], getattr(alone, name)[0])


def expected_rates(q: np.ndarray, y: np.ndarray, g: np.ndarray, G: int) -> dict[str, np.ndarray]:
    """Per draw and group: expected TPR, FPR and selection rate of a randomised rule, [D, G]."""
    out = {name: np.zeros((q.shape[0], G)) for name in ("tpr", "fpr", "selection")}
    for j in range(G):
        out["tpr"][:, j] = q[:, (g == j) & (y == 1)].mean(axis=1)
        out["fpr"][:, j] = q[:, (g == j) & (y == 0)].mean(axis=1)
        out["selection"][:, j] = q[:, g == j].mean(axis=1)
    return out


def gap(rates: np.ndarray) -> np.ndarray:
    return rates.max(axis=1) - rates.min(axis=1)


@pytest.mark.parametrize("case", [CASES[2], CASES[4]], ids=["G2", "G3"])
def test_equalized_odds_equalises_tpr_and_fpr_on_the_fit_data(case: tuple) -> None:
    split = make_split(*case)
    G = len(case[2])
    rule = fit_thresholds(split.s_fit, split.y, split.g, G, "equalized_odds")
    before = expected_rates((split.s_fit > 0.5).astype(float), split.y, split.g, G)
    after = expected_rates(predict_proba(rule, split.s_fit, split.g), split.y, split.g, G)
    assert (gap(before["tpr"]) > 0.05).all() and (gap(before["fpr"]) > 0.02).all()
    assert gap(after["tpr"]).max() < 1e-9
    assert gap(after["fpr"]).max() < 1e-9
    np.testing.assert_allclose(after["fpr"][:, 0], rule.x_best, atol=1e-12)
    assert np.allclose(rule.x_best * rule.grid_size, np.round(rule.x_best * rule.grid_size))


@pytest.mark.parametrize("case", [CASES[2], CASES[4]], ids=["G2", "G3"])
def test_demographic_parity_equalises_selection_rates_on_the_fit_data(case: tuple) -> None:
    split = make_split(*case)
    G = len(case[2])
    rule = fit_thresholds(split.s_fit, split.y, split.g, G, "demographic_parity")
    before = expected_rates((split.s_fit > 0.5).astype(float), split.y, split.g, G)
    after = expected_rates(predict_proba(rule, split.s_fit, split.g), split.y, split.g, G)
    assert (gap(before["selection"]) > 0.05).all()
    assert gap(after["selection"]).max() < 1e-9
    np.testing.assert_allclose(after["selection"][:, 0], rule.x_best, atol=1e-12)


def test_post_processing_keeps_the_most_accurate_fair_rule_on_the_grid() -> None:
    """Demographic parity: no grid selection rate reachable by the group hulls beats x_best.

    Checked against a brute force over grid points, each group taking the best threshold mix
    with that selection rate (its accuracy hull at x).
    """
    split = make_split(14, 500, (0.6, 0.4), (0.4, 0.6), 2, D=2)
    rule = fit_thresholds(split.s_fit, split.y, split.g, 2, "demographic_parity", grid_size=50)
    q = predict_proba(rule, split.s_fit, split.g)
    fitted_accuracy = (q * split.y + (1 - q) * (1 - split.y)).mean(axis=1)
    for d in range(2):
        best = -np.inf
        for x in np.linspace(0, 1, 51):
            total = 0.0
            for j in range(2):
                s, y = split.s_fit[d, split.g == j], split.y[split.g == j]
                thresholds = np.concatenate([[np.inf], np.unique(s)[::-1], [-np.inf]])
                sel = np.array([(s >= t).mean() for t in thresholds])
                acc = np.array([((s >= t) == y).mean() for t in thresholds])
                # accuracy hull at selection rate x: best mix of two thresholds around x
                lo, hi = sel[:, None], sel[None, :]
                ok = (lo <= x) & (x <= hi) & (hi > lo)
                w = np.where(ok, (hi - x) / np.where(hi > lo, hi - lo, 1), 0)
                mix = np.where(ok, w * acc[:, None] + (1 - w) * acc[None, :], -np.inf)
                exact = np.where(np.isclose(sel, x), acc, -np.inf)
                total += len(y) / len(split.y) * max(mix.max(), exact.max())
            best = max(best, total)
        assert fitted_accuracy[d] == pytest.approx(best, abs=1e-9)


def test_same_seed_gives_the_same_predictions() -> None:
    split = make_split(15, 300, (0.5, 0.5), (0.5, 0.5), 2)
    rule = fit_thresholds(split.s_fit, split.y, split.g, 2, "equalized_odds")
    a = predict(rule, split.s_test, split.g_test, np.random.default_rng(3))
    b = predict(rule, split.s_test, split.g_test, np.random.default_rng(3))
    c = predict(rule, split.s_test, split.g_test, np.random.default_rng(4))
    assert a.dtype == np.int8 and a.shape == split.s_test.shape
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


@pytest.mark.parametrize("constraint", BOTH)
def test_prediction_frequencies_match_predict_proba(constraint: str) -> None:
    split = make_split(16, 800, (0.5, 0.5), (0.3, 0.6), None)
    rule = fit_thresholds(split.s_fit, split.y, split.g, 2, constraint)
    q = predict_proba(rule, split.s_test, split.g_test)
    rng = np.random.default_rng(0)
    draws = np.stack([predict(rule, split.s_test, split.g_test, rng) for _ in range(300)])
    assert set(np.unique(draws)) <= {0, 1}
    assert (draws[:, q == 0] == 0).all() and (draws[:, q == 1] == 1).all()
    mixed = (q > 0) & (q < 1)
    assert mixed.sum() > 20  # the rule is randomised somewhere
    # per draw: the number of 1s among mixed samples over 300 repetitions, as a z-score
    for d in range(q.shape[0]):
        qd = q[d, mixed[d]]
        ones = draws[:, d, mixed[d]].sum()
        z = (ones - 300 * qd.sum()) / np.sqrt(300 * (qd * (1 - qd)).sum())
        assert abs(z) < 5


@pytest.mark.parametrize("constraint", BOTH)
def test_group_absent_from_fit_data_is_undefined(constraint: str) -> None:
    split = make_split(17, 600, (0.5, 0.3, 0.2), (0.4, 0.5, 0.6), 2)
    fit = split.g != 2
    rule = fit_thresholds(split.s_fit[:, fit], split.y[fit], split.g[fit], 3, constraint)
    assert rule.defined[:, :2].all() and not rule.defined[:, 2].any()
    assert np.isnan(rule.threshold0[:, 2]).all()
    q = predict_proba(rule, split.s_test, split.g_test)
    unseen = split.g_test == 2
    assert np.isnan(q[:, unseen]).all() and not np.isnan(q[:, ~unseen]).any()
    drawn = predict(rule, split.s_test, split.g_test, np.random.default_rng(0))
    assert (drawn[:, unseen] == -1).all()
    for d in range(split.s_fit.shape[0]):
        expected = fairlearn_pmf(
            split.s_fit[d, fit], split.y[fit], split.g[fit], split.s_test[d, ~unseen],
            split.g_test[~unseen], constraint,
        )
        np.testing.assert_allclose(q[d, ~unseen], expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("constraint", BOTH)
def test_single_class_group_is_undefined_and_the_others_fitted_without_it(
    constraint: str,
) -> None:
    split = make_split(18, 900, (0.4, 0.3, 0.3), (0.4, 0.5, 0.6), None)
    split.y[split.g == 1] = 1  # group 1 holds positives only
    with pytest.raises(ValueError, match="Degenerate labels"):
        fairlearn_pmf(split.s_fit[0], split.y, split.g, split.s_test[0], split.g_test, constraint)
    rule = fit_thresholds(split.s_fit, split.y, split.g, 3, constraint)
    np.testing.assert_array_equal(rule.defined, np.tile([True, False, True], (3, 1)))
    q = predict_proba(rule, split.s_test, split.g_test)
    degenerate = split.g_test == 1
    assert np.isnan(q[:, degenerate]).all()
    rest, test_rest = split.g != 1, ~degenerate
    for d in range(split.s_fit.shape[0]):
        expected = fairlearn_pmf(
            split.s_fit[d, rest], split.y[rest], split.g[rest], split.s_test[d, test_rest],
            split.g_test[test_rest], constraint,
        )
        np.testing.assert_allclose(q[d, test_rest], expected, rtol=0, atol=1e-9)


def test_no_fittable_group_leaves_everything_undefined() -> None:
    y = np.array([1, 1, 0, 0])
    g = np.array([0, 0, 1, 1])
    rule = fit_thresholds(np.full((2, 4), 0.5), y, g, 2, "demographic_parity")
    assert not rule.defined.any()
    assert np.isnan(predict_proba(rule, np.full((2, 3), 0.5), np.array([0, 1, 1]))).all()


def test_empty_batches_give_empty_results() -> None:
    y, g = np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])
    no_draws = fit_thresholds(np.zeros((0, 4)), y, g, 2, "equalized_odds")
    assert no_draws.defined.shape == (0, 2)
    assert predict_proba(no_draws, np.zeros((0, 3)), np.array([0, 1, 1])).shape == (0, 3)
    rule = fit_thresholds(np.array([[0.2, 0.8, 0.3, 0.9]]), y, g, 2, "equalized_odds")
    assert predict(rule, np.zeros((1, 0)), np.zeros(0, int), np.random.default_rng(0)).shape == (
        1,
        0,
    )


GOOD = dict(scores=np.full((2, 4), 0.5), y=np.array([0, 1, 0, 1]), g=np.array([0, 0, 1, 1]))


@pytest.mark.parametrize(
    ("change", "argument"),
    [
        ({"scores": np.full(4, 0.5)}, "scores"),
        ({"scores": np.array([[0.1, np.nan, 0.2, 0.3]])}, "scores"),
        ({"y": np.array([0, 1, 0])}, "y"),
        ({"y": np.array([0, 1, 2, 1])}, "y"),
        ({"g": np.array([0, 0, 2, 1])}, "g"),
        ({"g": np.array([0.0, 0.0, 1.0, 1.0])}, "g"),
        ({"g": np.array([0, 1, 1])}, "g"),
        ({"constraint": "equal_opportunity"}, "constraint"),
        ({"grid_size": 0}, "grid_size"),
        ({"n_groups": 0}, "n_groups"),
    ],
)
def test_bad_fit_arguments_raise_one_line_naming_the_argument(change: dict, argument: str) -> None:
    kwargs = {**GOOD, "n_groups": 2, "constraint": "equalized_odds", **change}
    with pytest.raises(ValueError) as err:
        fit_thresholds(**kwargs)
    message = str(err.value)
    assert message.startswith(f"{argument}:") and "\n" not in message


@pytest.mark.parametrize(
    ("scores", "g", "argument"),
    [
        (np.full((3, 2), 0.5), np.array([0, 1]), "scores"),
        (np.full(2, 0.5), np.array([0, 1]), "scores"),
        (np.full((2, 2), 0.5), np.array([0, 5]), "g"),
        (np.full((2, 2), 0.5), np.array([0]), "g"),
    ],
)
def test_bad_apply_arguments_raise_one_line_naming_the_argument(
    scores: np.ndarray, g: np.ndarray, argument: str
) -> None:
    rule = fit_thresholds(**GOOD, n_groups=2, constraint="demographic_parity")
    for apply in (predict_proba, lambda *a: predict(*a, np.random.default_rng(0))):
        with pytest.raises(ValueError) as err:
            apply(rule, scores, g)
        assert str(err.value).startswith(f"{argument}:") and "\n" not in str(err.value)


def test_quick_benchmark_agrees_with_fairlearn_and_ends_with_json() -> None:
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "postprocess.py"), "--quick"],
        cwd=root, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["draws"] == 3
    for short in ("eo", "dp"):
        assert result[short]["max_abs_diff"] <= 1e-9
        assert result[short]["fairlearn_s"] > 0 and result[short]["batch_s"] > 0
