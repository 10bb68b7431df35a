"""The synthetic generator: its stated generative model, exchangeability and difficulty knobs."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from fairensemble.data.synthetic import SyntheticData, load


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = load(SyntheticData(), 1), load(SyntheticData(), 1), load(SyntheticData(), 2)
    assert np.array_equal(a.pool.X, b.pool.X) and np.array_equal(a.test.y, b.test.y)
    assert not np.array_equal(a.pool.X, c.pool.X)


def test_class_means_follow_the_formula():
    cfg = SyntheticData(pool_size=40000)
    ds = load(cfg, 0)
    s = {0: -1.0, 1: 1.0}
    for j in (0, 1):
        angle = np.radians(45.0) * s[j]
        v = np.array([-np.sin(angle), np.cos(angle)])
        mu = np.array([s[j] * cfg.group_sep / 2, 0.0])
        for y in (0, 1):
            X = ds.pool.X[(ds.pool.g == j) & (ds.pool.y == y)]
            expected = mu + (2 * y - 1) * cfg.class_sep / 2 * v
            assert np.allclose(X.mean(0), expected, atol=0.05)
            assert np.allclose(np.cov(X.T), np.eye(2), atol=0.06)


def test_groups_are_exchangeable_up_to_reflection_when_knobs_are_zero():
    ds = load(SyntheticData(pool_size=40000), 3)
    X, y, g = ds.pool.X, ds.pool.y, ds.pool.g
    reflected = X[g == 1] * np.array([-1.0, 1.0])
    for c in (0, 1):
        a = X[(g == 0) & (y == c)]
        b = reflected[y[g == 1] == c]
        assert np.allclose(a.mean(0), b.mean(0), atol=0.05)
    assert abs(y[g == 0].mean() - y[g == 1].mean()) < 0.02


def test_each_group_needs_its_own_data():
    ds = load(SyntheticData(), 0)
    X, y, g = ds.pool.X, ds.pool.y, ds.pool.g
    lr = LogisticRegression().fit(X[g == 0], y[g == 0])
    own = lr.score(ds.test.X[ds.test.g == 0], ds.test.y[ds.test.g == 0])
    other = lr.score(ds.test.X[ds.test.g == 1], ds.test.y[ds.test.g == 1])
    assert own > 0.9
    assert other < 0.65


def test_label_noise_flips_exactly_that_fraction_of_the_hard_group_in_training_splits():
    clean = load(SyntheticData(val_size=2000), 0)
    noisy = load(SyntheticData(val_size=2000, label_noise=0.3), 0)
    hard = 1  # groups [M, F], hard_group F
    for split in ("pool", "val"):
        a, b = getattr(clean, split), getattr(noisy, split)
        assert np.array_equal(a.X, b.X)
        flipped = a.y != b.y
        assert not flipped[a.g != hard].any()
        assert flipped[a.g == hard].sum() == round(0.3 * (a.g == hard).sum())
    assert np.array_equal(clean.test.y, noisy.test.y)
    everywhere = load(SyntheticData(label_noise=0.3, label_noise_on="all"), 0)
    assert (everywhere.test.y != clean.test.y).sum() == round(0.3 * (clean.test.g == hard).sum())


def test_rotation_moves_only_the_hard_group():
    base = load(SyntheticData(), 0)
    rot = load(SyntheticData(rotation_deg=30.0), 0)
    easy = base.pool.g == 0
    assert np.array_equal(base.pool.X[easy], rot.pool.X[easy])
    assert not np.allclose(base.pool.X[~easy], rot.pool.X[~easy])
    # the hard group's class-1 mean turned by 30 degrees about its centre
    cfg = SyntheticData()
    mu = np.array([cfg.group_sep / 2, 0.0])
    m = rot.pool.X[(~easy) & (rot.pool.y == 1)].mean(0) - mu
    assert abs(np.degrees(np.arctan2(m[1], m[0])) - (90 + 45 + 30)) < 2.0


def test_group_feature_appends_the_group_code():
    ds = load(SyntheticData(group_feature=True, n_features=3), 0)
    assert ds.pool.X.shape[1] == 4
    assert np.array_equal(ds.pool.X[:, -1], ds.pool.g.astype(np.float32))


def _own_rule_accuracy(ds, cfg, j: int, mahalanobis: bool = True) -> float:
    """Accuracy on group j's test rows of group j's own Bayes rule: the side of the boundary
    with normal Sigma_j^-1 v_j (the Mahalanobis rule); or, without ``mahalanobis``, normal v_j
    (the rule that ignores the noise's shape)."""
    from fairensemble.data.synthetic import _directions

    mus, vs, us = _directions(cfg)
    u = us[j]
    across = np.array([-u[1], u[0]])
    precision = np.outer(u, u) + np.outer(across, across) / cfg.anisotropy ** 2
    normal = precision @ vs[j] if mahalanobis else vs[j]
    rows = ds.test.g == j
    X = np.asarray(ds.test.X)[rows, :2]
    pred = ((X - mus[j]) @ normal > 0).astype(int)
    return float((pred == ds.test.y[rows]).mean())


@pytest.mark.parametrize("angle", [0.0, 30.0])
def test_anisotropic_noise_makes_a_rotated_group_genuinely_harder_and_leaves_the_other(angle):
    from fairensemble.data.synthetic import bayes_error

    cfg = SyntheticData(rotation_deg=angle, anisotropy=3.0, test_size=40000)
    ds = load(cfg, seed=0)
    hard, easy = cfg.groups.index(cfg.hard), 1 - cfg.groups.index(cfg.hard)
    # F's own Bayes rule errs as the formula says: its classes moved into its noisier direction
    for j, is_hard in ((hard, True), (easy, False)):
        assert 1 - _own_rule_accuracy(ds, cfg, j) == pytest.approx(bayes_error(cfg, is_hard),
                                                                   abs=0.008)
    assert bayes_error(cfg, False) == pytest.approx(0.0668, abs=1e-3)  # M: as without rotation
    if angle:
        # Phi(-1.5 * sqrt(cos^2 30 + sin^2 30 / 9)) = 0.093, and ignoring the noise's shape
        # (the boundary normal to v) errs more: Phi(-1.5 / sqrt(cos^2 30 + 9 sin^2 30)) = 0.19
        assert bayes_error(cfg, True) == pytest.approx(0.093, abs=0.001)
        assert 1 - _own_rule_accuracy(ds, cfg, hard, mahalanobis=False) == pytest.approx(
            0.193, abs=0.008)
    # the easy group's data do not depend on the rotation (common random numbers)
    base = load(SyntheticData(anisotropy=3.0, test_size=40000), seed=0)
    rows = ds.pool.g == easy
    np.testing.assert_array_equal(np.asarray(ds.pool.X)[rows], np.asarray(base.pool.X)[rows])


def test_isotropic_noise_is_the_default_and_rotation_then_keeps_each_task_as_easy():
    from fairensemble.data.synthetic import bayes_error

    cfg = SyntheticData(rotation_deg=45.0)
    assert cfg.anisotropy == 1.0
    assert bayes_error(cfg, True) == pytest.approx(bayes_error(cfg, False))
    explicit = load(SyntheticData(rotation_deg=45.0, anisotropy=1.0), seed=0)
    np.testing.assert_array_equal(np.asarray(load(cfg, seed=0).pool.X),
                                  np.asarray(explicit.pool.X))
