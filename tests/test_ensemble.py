"""k-of-E draws, member averaging and per-cell evaluation against naive loops."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from fairensemble import metrics as fm
from fairensemble.evaluation import average_members, draw_subsets, evaluate_cell
from fairensemble.evaluation.ensemble import _boot_counts


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
    df = evaluate_cell(probs, y, g, groups, [1, 3], 10, metrics, test_mix, seed=9).table
    assert list(df.columns) == ["k", "post", "group", "metric", "mean", "std", "n_draws"]
    assert (df.post == "none").all()
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
    df = evaluate_cell(probs, y, g, ["a", "b"], [5], 50, ["accuracy"], "natural", seed=0).table
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
    a = evaluate_cell(*args, seed=1).table
    b = evaluate_cell(*args, seed=1).table
    c = evaluate_cell(*args, seed=2).table
    assert a.equals(b)
    assert not np.allclose(a["mean"], c["mean"])


def test_evaluate_cell_chunks_draws_without_changing_numbers(monkeypatch) -> None:
    rng = np.random.default_rng(6)
    probs = member_probs(6, E=10, n=300)
    y = rng.integers(0, 2, size=300)
    g = rng.integers(0, 2, size=300)
    args = (probs, y, g, ["a", "b"], [3], 20, ["accuracy", "auc"], "balanced", 0)
    whole = evaluate_cell(*args).table
    # 3 draws per block
    monkeypatch.setattr("fairensemble.evaluation.ensemble._BLOCK_ELEMENTS", 600 * 3)
    chunked = evaluate_cell(*args).table
    np.testing.assert_allclose(chunked["mean"], whole["mean"], rtol=0, atol=1e-14)
    np.testing.assert_allclose(chunked["std"], whole["std"], rtol=0, atol=1e-14)


def test_ensemble_size_above_members_is_an_error() -> None:
    probs = member_probs(0, E=3, n=10)
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match="ks"):
        evaluate_cell(probs, y, y, ["a", "b"], [4], 5, ["accuracy"], "natural", seed=0)


def cell_inputs(seed: int, E: int = 6, n: int = 300, C: int = 2):
    rng = np.random.default_rng(seed)
    probs = member_probs(seed, E=E, n=n, C=C)
    y = rng.integers(0, C, size=n)
    g = (rng.random(n) < 0.4).astype(int)
    return probs, y, g


def test_table_has_a_row_per_k_label_and_metric_and_one_disparity_row() -> None:
    probs, y, g = cell_inputs(0)
    every = fm.names()
    table = evaluate_cell(probs, y, g, ["a", "b"], [1, 2], 5, every, "balanced", 0).table
    per_k = table[table.k == 2]
    for metric in every:
        got = per_k[per_k.metric == metric].group.tolist()
        assert got == fm.labels(metric, ["a", "b"])
    assert per_k.set_index(["group", "metric"]).loc[("disparity", "eq_odds"), "mean"] >= 0
    assert len(per_k) == sum(len(fm.labels(m, ["a", "b"])) for m in every)


def test_diversity_of_a_cell_matches_naive_member_loops() -> None:
    probs, y, g = cell_inputs(1, E=7)
    table = evaluate_cell(probs, y, g, ["a", "b"], [1, 3], 8,
                          ["disagreement", "ambiguity"], "natural", seed=4).table
    gen = np.random.default_rng(4)
    draw_subsets(7, 1, 8, gen)
    subsets = draw_subsets(7, 3, 8, gen)
    p64 = probs.astype(np.float64)
    for j, name in enumerate(["a", "b"]):
        m = g == j
        dis, amb = [], []
        for s in subsets:
            preds = [p64[e, m].argmax(1) for e in s]
            dis.append(np.mean([np.mean(preds[a] != preds[b]) for a, b in
                                itertools.combinations(range(3), 2)]))
            ens = p64[list(s)][:, m].mean(axis=0)
            member_brier = np.mean([np.mean((p64[e, m, 1] - y[m]) ** 2) for e in s])
            amb.append(member_brier - np.mean((ens[:, 1] - y[m]) ** 2))
        row = table[(table.k == 3) & (table.group == name)].set_index("metric")
        assert row.loc["disagreement", "mean"] == pytest.approx(np.mean(dis), abs=1e-12)
        assert row.loc["ambiguity", "mean"] == pytest.approx(np.mean(amb), abs=1e-12)
        assert row.loc["ambiguity", "std"] == pytest.approx(np.std(amb), abs=1e-12)
    k1 = table[table.k == 1]
    assert (k1["mean"] == 0).all()  # a single member neither disagrees nor varies


def test_bootstrap_is_reproducible_from_its_seed() -> None:
    probs, y, g = cell_inputs(2)
    args = (probs, y, g, ["a", "b"], [1, 3, 6], 5, ["accuracy", "auc", "eod"], "balanced", 0)
    a = evaluate_cell(*args, n_boot=20, boot_seed=1).boot
    b = evaluate_cell(*args, n_boot=20, boot_seed=1).boot
    c = evaluate_cell(*args, n_boot=20, boot_seed=2).boot
    assert a.equals(b)
    cols = [f"b{i}" for i in range(20)]
    assert not np.allclose(a[cols].to_numpy(), c[cols].to_numpy())
    assert list(a.columns) == ["k", "post", "group", "metric", *cols]
    assert (a[cols].dtypes == np.float64).all()
    assert sorted(a.k.unique()) == [1, 6]  # k = 1 and k = E only
    assert len(a) == 2 * (5 + 5 + 1)  # k x (labels of accuracy, of auc, disparity of eod)


def test_bootstrap_mean_of_accuracy_is_within_a_few_standard_errors_of_the_table() -> None:
    probs, y, g = cell_inputs(3, n=400)
    n_boot = 200
    ev = evaluate_cell(probs, y, g, ["a", "b"], [1, 6], 10, ["accuracy"], "balanced", 0,
                       n_boot=n_boot, boot_seed=0)
    cols = [f"b{i}" for i in range(n_boot)]
    table = ev.table.set_index(["k", "group", "metric"])["mean"]
    # gap and worst are extremes over groups, which the bootstrap biases: not compared
    for _, row in ev.boot[ev.boot.group.isin(["a", "b", "overall"])].iterrows():
        values = row[cols].to_numpy(dtype=float)
        se = values.std(ddof=1) / np.sqrt(n_boot)
        assert se > 0
        assert abs(values.mean() - table[(row.k, row.group, row.metric)]) < 4 * se


@pytest.mark.parametrize("C, G, tied", [(2, 2, False), (3, 3, True)])
def test_a_bootstrap_resample_scores_like_the_copied_test_set(C: int, G: int,
                                                              tied: bool) -> None:
    rng = np.random.default_rng(4)
    n = 250
    probs = member_probs(4, E=5, n=n, C=C)
    if tied:  # probabilities on a coarse grid: ties within and across groups and classes
        probs = np.round(probs * 4) + 1
        probs = (probs / probs.sum(axis=2, keepdims=True)).astype(np.float32)
    y = rng.integers(0, C, size=n)
    g = rng.integers(0, G, size=n)
    groups = [f"g{j}" for j in range(G)]
    metrics = ["accuracy", "auc", "ece", "nll", "tpr", "spd", "disagreement", "ambiguity"]
    args = (groups, [1, 3, 5], 4, metrics, "balanced", 3)
    boot = evaluate_cell(probs, y, g, *args, n_boot=3, boot_seed=7).boot
    order = np.argsort(g, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(g))])
    counts = _boot_counts(list(zip(bounds[:-1], bounds[1:])), n, 3, 7)
    for a, b in zip(bounds[:-1], bounds[1:]):
        assert (counts[:, a:b].sum(axis=1) == b - a).all()  # stratified: group sizes kept
    for b in range(3):
        copies = np.repeat(order, counts[b])
        table = evaluate_cell(probs[:, copies], y[copies], g[copies], *args).table
        want = table.set_index(["k", "group", "metric"])["mean"]
        got = boot.set_index(["k", "group", "metric"])[f"b{b}"]
        np.testing.assert_allclose(got.to_numpy(), want.loc[got.index].to_numpy(),
                                   rtol=0, atol=1e-12)


def test_bootstrap_chunks_resamples_without_changing_numbers(monkeypatch) -> None:
    probs, y, g = cell_inputs(5)
    args = (probs, y, g, ["a", "b"], [1, 6], 6, ["auc", "ece", "balanced_accuracy"],
            "natural", 0)
    whole = evaluate_cell(*args, n_boot=10, boot_seed=0).boot
    # 3 at a time
    monkeypatch.setattr("fairensemble.evaluation.ensemble._BOOT_ELEMENTS", 3 * 6 * 300)
    chunked = evaluate_cell(*args, n_boot=10, boot_seed=0).boot
    cols = [f"b{i}" for i in range(10)]
    np.testing.assert_allclose(chunked[cols], whole[cols], rtol=0, atol=1e-13)


def test_a_group_absent_from_the_test_split_is_nan_with_a_note() -> None:
    probs, y, g = cell_inputs(6)
    ev = evaluate_cell(probs, y, g, ["a", "b", "c"], [1, 3], 4, fm.names(), "balanced", 0,
                       n_boot=5)
    rows = ev.table.set_index(["k", "group", "metric"])["mean"].sort_index()
    assert rows.loc[(3, "c")].isna().all() and rows.loc[(3, "gap")].isna().all()
    assert rows.loc[(3, "disparity")].isna().all()
    assert rows.loc[(3, "a")].notna().all() and rows.loc[(3, "overall")].notna().all()
    assert "group 'c': no test samples" in ev.notes
    boot = ev.boot.set_index(["k", "group", "metric"]).drop(columns="post").sort_index()
    assert boot.loc[(1, "c")].isna().all().all() and boot.loc[(1, "a")].notna().all().all()
