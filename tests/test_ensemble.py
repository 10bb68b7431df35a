"""k-of-E draws, member averaging and per-cell evaluation against naive loops."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from fairensemble.ensemble import average_members, draw_subsets, evaluate_cell


def member_probs(seed: int, E: int = 6, n: int = 300, C: int = 2) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(size=(E, n, C))
    p = np.exp(logits)
    return (p / p.sum(axis=2, keepdims=True)).astype(np.float32)


def test_all_combinations_when_few_exist() -> None:
    subsets = draw_subsets(4, 2, 50, np.random.default_rng(0))
    assert subsets.tolist() == [list(c) for c in itertools.combinations(range(4), 2)]
    assert subsets.shape == (6, 2)


def test_random_subsets_have_distinct_members_and_are_distinct_draws() -> None:
    subsets = draw_subsets(20, 5, 50, np.random.default_rng(1))
    assert subsets.shape == (50, 5)
    assert all(len(set(row)) == 5 for row in subsets.tolist())
    assert (np.diff(subsets, axis=1) > 0).all()  # sorted within a draw
    assert len({tuple(row) for row in subsets.tolist()}) == 50
    assert subsets.min() >= 0 and subsets.max() <= 19


def test_draws_fill_up_when_just_above_the_number_of_combinations() -> None:
    # C(7, 3) = 35 subsets, 34 requested: random, all distinct
    subsets = draw_subsets(7, 3, 34, np.random.default_rng(2))
    assert len({tuple(row) for row in subsets.tolist()}) == 34


def test_draw_subsets_is_seeded() -> None:
    a = draw_subsets(20, 3, 50, np.random.default_rng(5))
    b = draw_subsets(20, 3, 50, np.random.default_rng(5))
    c = draw_subsets(20, 3, 50, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_k_larger_than_members_is_an_error() -> None:
    with pytest.raises(ValueError, match="k:"):
        draw_subsets(4, 5, 10, np.random.default_rng(0))


def test_averaging_equals_a_naive_loop() -> None:
    probs = member_probs(0, C=3)
    subsets = draw_subsets(6, 4, 7, np.random.default_rng(0))
    got = average_members(probs, subsets)
    want = np.stack([probs[list(s)].astype(np.float64).mean(axis=0) for s in subsets])
    assert got.dtype == np.float64 and got.shape == (7, 300, 3)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)


def test_equal_member_probabilities_average_to_exact_ties() -> None:
    probs = member_probs(1, E=5, n=4)
    probs[:, 1] = probs[:, 0]
    avg = average_members(probs, np.array([[0, 2, 3, 4]]))
    assert avg[0, 0, 1] == avg[0, 1, 1]


def naive_cell(probs, y, g, groups, subsets, test_mix):
    """Per-draw loop over scikit-learn: {(group, metric): [D]}."""
    sk = {
        "accuracy": lambda yy, p, w: accuracy_score(yy, p.argmax(1), sample_weight=w),
        "balanced_accuracy": lambda yy, p, w: balanced_accuracy_score(
            yy, p.argmax(1), sample_weight=w
        ),
        "auc": lambda yy, p, w: roc_auc_score(yy, p[:, 1], sample_weight=w),
    }
    counts = np.bincount(g)
    w_all = 1.0 / (len(groups) * counts[g]) if test_mix == "balanced" else None
    out: dict = {}
    for s in subsets:
        p = probs[list(s)].astype(np.float64).mean(axis=0)
        for metric, f in sk.items():
            per = [f(y[g == j], p[g == j], None) for j in range(len(groups))]
            for name, v in zip(groups, per):
                out.setdefault((name, metric), []).append(v)
            out.setdefault(("overall", metric), []).append(f(y, p, w_all))
            out.setdefault(("gap", metric), []).append(max(per) - min(per))
            out.setdefault(("worst", metric), []).append(min(per))
    return out


@pytest.mark.parametrize("test_mix", ["balanced", "natural"])
def test_evaluate_cell_matches_a_naive_loop_over_sklearn(test_mix: str) -> None:
    rng = np.random.default_rng(4)
    E, n = 8, 400
    probs = member_probs(4, E=E, n=n)
    y = rng.integers(0, 2, size=n)
    g = (rng.random(n) < 0.3).astype(int)
    groups = ["a", "b"]
    metrics = ["accuracy", "balanced_accuracy", "auc"]
    df = evaluate_cell(probs, y, g, groups, [1, 3], 10, metrics, test_mix, seed=9)
    assert list(df.columns) == ["k", "group", "metric", "mean", "std", "n_draws"]
    assert len(df) == 2 * 5 * 3
    # the subsets evaluate_cell used: one generator from the seed, consumed in order of ks
    gen = np.random.default_rng(9)
    draw_subsets(E, 1, 10, gen)
    subsets = draw_subsets(E, 3, 10, gen)
    want = naive_cell(probs, y, g, groups, subsets, test_mix)
    k3 = df[df.k == 3].set_index(["group", "metric"])
    for key, values in want.items():
        row = k3.loc[key]
        assert row["n_draws"] == 10
        assert row["mean"] == pytest.approx(np.mean(values), abs=1e-10)
        assert row["std"] == pytest.approx(np.std(values), abs=1e-10)
    k1 = df[df.k == 1]
    assert (k1.n_draws == 8).all()  # C(8, 1) = 8 <= 10 draws: every member once


def test_k_equal_members_is_the_full_ensemble_once() -> None:
    rng = np.random.default_rng(2)
    probs = member_probs(2, E=5, n=200)
    y = rng.integers(0, 2, size=200)
    g = rng.integers(0, 2, size=200)
    df = evaluate_cell(probs, y, g, ["a", "b"], [5], 50, ["accuracy"], "natural", seed=0)
    full = probs.astype(np.float64).mean(axis=0).argmax(1)
    row = df.set_index("group").loc["overall"]
    assert row["n_draws"] == 1 and row["std"] == 0.0
    assert row["mean"] == pytest.approx((full == y).mean(), abs=1e-12)


def test_evaluate_cell_is_reproducible_from_its_seed() -> None:
    rng = np.random.default_rng(3)
    probs = member_probs(3, E=10, n=200)
    y = rng.integers(0, 2, size=200)
    g = rng.integers(0, 2, size=200)
    args = (probs, y, g, ["a", "b"], [2, 4], 5, ["auc"], "balanced")
    a = evaluate_cell(*args, seed=1)
    b = evaluate_cell(*args, seed=1)
    c = evaluate_cell(*args, seed=2)
    assert a.equals(b)
    assert not np.allclose(a["mean"], c["mean"])


def test_evaluate_cell_chunks_draws_without_changing_numbers(monkeypatch) -> None:
    rng = np.random.default_rng(6)
    probs = member_probs(6, E=10, n=300)
    y = rng.integers(0, 2, size=300)
    g = rng.integers(0, 2, size=300)
    args = (probs, y, g, ["a", "b"], [3], 20, ["accuracy", "auc"], "balanced", 0)
    whole = evaluate_cell(*args)
    monkeypatch.setattr("fairensemble.ensemble._BLOCK_ELEMENTS", 600 * 3)  # 3 draws per block
    np.testing.assert_allclose(evaluate_cell(*args)["mean"], whole["mean"], rtol=0, atol=1e-14)
    np.testing.assert_allclose(evaluate_cell(*args)["std"], whole["std"], rtol=0, atol=1e-14)


def test_ensemble_size_above_members_is_an_error() -> None:
    probs = member_probs(0, E=3, n=10)
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match="ks"):
        evaluate_cell(probs, y, y, ["a", "b"], [4], 5, ["accuracy"], "natural", seed=0)
