"""The group-ratio sampler: exact sizes, exact shares, kept prevalence, clear failures."""

import numpy as np
import pytest

from fairensemble.data.sampling import (
    SamplingError,
    largest_remainder,
    mix_shares,
    plan_counts,
    sample_indices,
)


def _pool(sizes, prevalences, seed=0):
    rng = np.random.default_rng(seed)
    g = np.concatenate([np.full(n, j) for j, n in enumerate(sizes)])
    y = np.concatenate([(rng.random(n) < p).astype(int) for n, p in zip(sizes, prevalences)])
    return y, g


def test_largest_remainder_sums_exactly():
    for total in (0, 1, 7, 2000, 2001):
        counts = largest_remainder(total, np.array([0.3333, 0.3333, 0.3334]))
        assert counts.sum() == total and counts.max() - counts.min() <= 1


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.35, 0.5, 0.9, 1.0])
def test_exact_size_share_and_prevalence(ratio):
    y, g = _pool([5000, 5000], [0.3, 0.6])
    shares = mix_shares(ratio, [1], g, 2)
    counts = plan_counts(2000, shares, y, g, ["M", "F"], 2, "keep")
    idx = sample_indices(counts, y, g, np.random.default_rng(1))
    assert len(idx) == 2000 and len(np.unique(idx)) == 2000
    assert (g[idx] == 1).sum() == round(ratio * 2000)
    for j, _ in ((0, 0.3), (1, 0.6)):
        sel = idx[g[idx] == j]
        if len(sel):
            pool_prev = y[g == j].mean()
            assert abs(y[sel].sum() - pool_prev * len(sel)) <= 1


def test_balanced_labels_within_each_group():
    y, g = _pool([5000, 5000], [0.2, 0.7])
    counts = plan_counts(1000, mix_shares(0.4, [1], g, 2), y, g, ["a", "b"], 2, "balanced")
    assert counts.tolist() == [[300, 300], [200, 200]]


def test_other_groups_keep_their_relative_pool_proportions():
    y, g = _pool([6000, 3000, 1000], [0.5, 0.5, 0.5])
    shares = mix_shares(0.5, [2], g, 3)
    assert np.allclose(shares, [0.5 * 6 / 9, 0.5 * 3 / 9, 0.5])
    counts = plan_counts(900, shares, y, g, ["a", "b", "c"], 2)
    assert counts.sum(1).tolist() == [300, 150, 450]


def test_same_seed_same_draw():
    y, g = _pool([3000, 3000], [0.5, 0.5])
    counts = plan_counts(500, mix_shares(0.3, [1], g, 2), y, g, ["a", "b"], 2)
    a = sample_indices(counts, y, g, np.random.default_rng(5))
    b = sample_indices(counts, y, g, np.random.default_rng(5))
    assert np.array_equal(a, b)


def test_unsatisfiable_request_names_group_and_counts():
    y, g = _pool([5000, 800], [0.5, 0.5])
    with pytest.raises(SamplingError) as err:
        plan_counts(2000, mix_shares(0.9, [1], g, 2), y, g, ["M", "F"], 2)
    assert "needs 1800 samples of that group but the pool holds 800" in str(err.value)
    assert "'F'" in str(err.value)
    y2 = np.r_[np.zeros(990, int), np.ones(10, int)]
    g2 = np.zeros(1000, int)
    with pytest.raises(SamplingError, match="class 1"):
        plan_counts(100, np.array([1.0]), y2, g2, ["only"], 2, "balanced")
