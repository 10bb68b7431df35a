"""Per-group learning curves: fits recover known curves, intervals cover the truth, budget
predictions pick the right share, and a real run with a size sweep goes through end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TINY, cli

from fairensemble.advice.curves import (
    MAX_FACTOR,
    CurvesError,
    Form,
    curves_json,
    difficulty,
    fit_curves,
    fit_run,
    identifiable_forms,
    interference,
    measured_points,
    model_error,
    predict,
    run_curves,
    sweeps_sizes,
)
from fairensemble.config import validate
from fairensemble.data.sampling import largest_remainder, mix_shares
from fairensemble.evaluation import load_run, with_coords
from fairensemble.report.plots import (
    budget_share_figure,
    curves_fit_figure,
    learning_curves_figure,
    save_figure,
)
from fairensemble.sweep import PointLayout, build_plan

NO_TOTAL = np.nan  # exponent of an absent term


def generate(truth: dict[str, tuple], sizes: list[int], shares: list[float],
             replicates: int = 3, noise: float = 0.005, seed: int = 0,
             ks: tuple[int, ...] = (1,), extra=None) -> pd.DataFrame:
    """``measured_points`` rows drawn from the model itself: ``truth[g]`` = (floor, a, p, b, q),
    the last group is the moved one, each point gets N(0, noise) replicate noise. ``extra(g,
    share_g)`` adds an error the model does not have. A group with no data scores 0.5."""
    rng = np.random.default_rng(seed)
    groups = list(truth)
    rows = []
    for n in sizes:
        for s in shares:
            moved = int(round(s * n))
            counts = {groups[-1]: moved, groups[0]: n - moved}
            for r in range(replicates):
                for k in ks:
                    for g in groups:
                        ng = counts[g]
                        err = float(model_error(np.array(truth[g]), ng, n)) if ng else 0.5
                        if extra is not None:
                            err += extra(g, ng / n)
                        err += rng.normal(0.0, noise)
                        rows.append(dict(train_size=n, ratio=s, replicate=r, k=k, group=g,
                                         n_group=ng, n_total=n, share=ng / n, value=1.0 - err,
                                         error=err, used=ng > 0))
    return pd.DataFrame(rows)


SIZES = [250, 500, 1000]
SHARES = [0.1, 0.3, 0.5, 0.7, 0.9]


# ----------------------------------------------------------------------------- measured points


def _plan_and_table(grid_sizes: bool = True):
    """A plan built as the sweep builds it (counts by largest remainder) and a metrics table
    whose accuracy of group g in a cell is 0.9 - 0.1 * (replicate) - 0.01 * n_group / 100."""
    data = {"dataset": {"kind": "synthetic"}, "ratio_group": "F", "ratios": [0.0, 0.5, 1.0],
            "replicates": 2, "ensemble": {"members": 3}, "metrics": ["accuracy", "fpr"],
            "train_size": 300}
    if grid_sizes:
        data["grid"] = {"train_size": [100, 300]}
    cfg = validate(data)
    layouts = []
    for point in cfg.grid_points():
        n = cfg.at(point).train_size
        shares = [mix_shares(r, [1], np.array([0, 1]), 2).tolist() for r in cfg.ratios]
        counts = [[largest_remainder(int(c), np.ones(2)).tolist()
                   for c in largest_remainder(n, np.array(s))] for s in shares]
        layouts.append(PointLayout(["M", "F"], ["0", "1"], "F", shares, counts))
    plan = build_plan(cfg, layouts)
    frames = []
    for cell in plan.cells:
        rows = []
        for gi, g in enumerate(["M", "F"]):
            ng = sum(cell.counts[gi])
            for k in (1, 3):
                acc = 0.9 - 0.1 * cell.replicate - 0.0001 * ng
                rows += [dict(k=k, post="none", group=g, metric="accuracy", mean=acc, std=0.0,
                              n_draws=1),
                         dict(k=k, post="none", group=g, metric="fpr", mean=acc / 10, std=0.0,
                              n_draws=1),
                         dict(k=k, post="threshold_eo", group=g, metric="accuracy", mean=0.0,
                              std=0.0, n_draws=1)]
        frames.append(with_coords(pd.DataFrame(rows), cell))
    return plan, pd.concat(frames, ignore_index=True)


def test_measured_points_take_each_groups_count_from_its_cells_draw():
    plan, table = _plan_and_table()
    pts = measured_points(table, plan)
    # 2 sizes x 3 mixes x 2 replicates x 2 k x 2 groups, post-processed rows left out
    assert len(pts) == 48
    for _, row in pts.iterrows():
        assert row["n_total"] == row["train_size"]
        assert row["value"] == pytest.approx(0.9 - 0.1 * row["replicate"]
                                             - 0.0001 * row["n_group"])
        assert row["error"] == pytest.approx(1.0 - row["value"])
    at = pts[(pts["train_size"] == 100) & (pts["ratio"] == 0.5)].set_index("group")["n_group"]
    assert set(at) == {50}
    f_zero = pts[(pts["group"] == "F") & (pts["ratio"] == 0.0)]
    assert (f_zero["n_group"] == 0).all() and not f_zero["used"].any()
    m_all = pts[(pts["group"] == "M") & (pts["ratio"] == 0.0) & (pts["train_size"] == 300)]
    assert (m_all["n_group"] == 300).all() and m_all["used"].all()


def test_a_lower_is_better_metric_is_its_own_error():
    plan, table = _plan_and_table()
    pts = measured_points(table, plan, "fpr")
    assert np.allclose(pts["error"], pts["value"])


def test_learning_curves_need_two_train_sizes_and_say_so():
    plan, table = _plan_and_table(grid_sizes=False)
    assert not sweeps_sizes(plan) and sweeps_sizes(_plan_and_table()[0])
    pts = measured_points(table, plan)
    assert set(pts["train_size"]) == {300}  # taken from the cells' counts
    with pytest.raises(CurvesError, match="learning curves need at least two train sizes"):
        fit_curves(pts, 1)
    with pytest.raises(ValueError, match="train_size"):
        fit_run(table, plan)


@pytest.mark.parametrize("metric, expected", [("selection_rate", "no better direction"),
                                              ("spd", "per-group metric")])
def test_metrics_without_a_per_group_direction_are_refused(metric, expected):
    plan, table = _plan_and_table()
    with pytest.raises(CurvesError, match=expected):
        measured_points(table, plan, metric)


# ----------------------------------------------------------------------------- fits


def test_fitting_points_drawn_from_the_model_recovers_its_parameters():
    truth = {"M": (0.05, 2.0, 0.6, 0.5, 0.5), "F": (0.20, 3.0, 0.5, 0.0, NO_TOTAL)}
    pts = generate(truth, [200, 400, 800, 1600, 3200], [0.1 * i for i in range(1, 10)],
                   noise=0.003)
    c = fit_curves(pts, 1, n_boot=20)
    assert c.fits["M"].floor == pytest.approx(0.05, abs=0.01)
    assert c.fits["F"].floor == pytest.approx(0.20, abs=0.01)
    # M has a total term and enough sizes to see it; F has none and AICc drops it
    assert c.fits["M"].form == "full" and c.fits["F"].form != "full"
    assert c.fits["M"].theta[2] == pytest.approx(0.6, abs=0.1)
    assert c.fits["F"].theta[1] == pytest.approx(3.0, rel=0.1)
    for fit in c.fits.values():
        assert fit.r2 > 0.99 and fit.rmse < 0.005


def test_design_points_decide_which_nested_forms_are_identifiable():
    counts, totals = np.array([50, 150, 100, 300]), np.array([500, 500, 1000, 1000])
    assert identifiable_forms(counts, totals) == ["own_fixed", "floor"]
    assert identifiable_forms(counts[:3], totals[:3]) == ["floor"]
    many = np.repeat([200, 400, 800], 3), np.repeat([200, 400, 800], 3)
    own = np.array([20, 60, 100, 40, 120, 200, 80, 240, 400])
    # three shares (0.1, 0.3, 0.5): the conflict term is identifiable too
    assert identifiable_forms(own, many[1]) == [
        "full", "own", "own_fixed", "floor",
        "full+conflict", "own+conflict", "own_fixed+conflict", "floor+conflict"]
    # one size: the total term cannot be told from the floor
    assert "full" not in identifiable_forms(own, np.full(9, 400))
    # two shares only: nor the conflict term from the own-count term
    two = np.array([50, 150, 100, 300, 200, 600]), np.array([500, 500, 1000, 1000, 2000, 2000])
    assert not any(f.endswith("+conflict") for f in identifiable_forms(*two))


def test_few_design_points_get_the_simpler_form():
    truth = {"M": (0.05, 2.0, 0.6, 0.5, 0.5), "F": (0.10, 2.0, 0.5, 0.5, 0.5)}
    four = generate(truth, [500, 1000], [0.3, 0.5])  # 4 design points per group
    assert {f.form for f in fit_curves(four, 1, n_boot=5).fits.values()} == {"own_fixed"}
    three = four[~((four["train_size"] == 1000) & (four["ratio"] == 0.5))]
    fits = fit_curves(three, 1, n_boot=5).fits
    assert {f.form for f in fits.values()} == {"floor"}
    # the floor alone is the mean error
    m = three[three["group"] == "M"].groupby(["train_size", "ratio"])["error"].mean()
    assert fits["M"].floor == pytest.approx(m.mean(), abs=1e-6)


def test_a_flat_curve_is_reported_as_a_floor():
    truth = {"M": (0.1, 0.0, NO_TOTAL, 0.0, NO_TOTAL), "F": (0.3, 0.0, NO_TOTAL, 0.0, NO_TOTAL)}
    fits = fit_curves(generate(truth, SIZES, SHARES, noise=0.01), 1, n_boot=5).fits
    assert fits["M"].form == "floor" and fits["F"].form == "floor"
    assert fits["F"].floor == pytest.approx(0.3, abs=0.01)


def test_bootstrap_intervals_cover_the_true_floor():
    # five replicates per design point with noise 0.01: refits on resampled replicates should
    # cover the true floors in most of ten independent data sets (a 95 % interval built from
    # five replicates runs a little short, hence 8 of 10)
    truth = {"M": (0.05, 1.5, 0.5, 0.0, NO_TOTAL), "F": (0.15, 2.0, 0.5, 0.0, NO_TOTAL)}
    covered = {"M": 0, "F": 0}
    widths = []
    for seed in range(10):
        pts = generate(truth, SIZES, SHARES, replicates=5, noise=0.01, seed=seed)
        c = fit_curves(pts, 1, n_boot=100, seed=seed)
        for g in truth:
            lo, hi = np.percentile(c.fits[g].boot[:, 0], [2.5, 97.5])
            covered[g] += lo <= truth[g][0] <= hi
            widths.append(hi - lo)
    assert covered["M"] >= 8 and covered["F"] >= 8
    assert 0.0 < np.median(widths) < 0.1  # informative, not vacuous


def test_with_one_replicate_the_residuals_are_resampled():
    truth = {"M": (0.05, 1.5, 0.5, 0.0, NO_TOTAL), "F": (0.15, 2.0, 0.5, 0.0, NO_TOTAL)}
    c = fit_curves(generate(truth, SIZES, SHARES, replicates=1, noise=0.005), 1, n_boot=100)
    assert c.intervals == "residuals"
    for g in truth:
        lo, hi = np.percentile(c.fits[g].boot[:, 0], [2.5, 97.5])
        assert 0.0 < hi - lo < 0.05 and lo - 0.01 <= truth[g][0] <= hi + 0.01


def test_refits_are_seeded_and_paired_across_k():
    truth = {"M": (0.05, 1.5, 0.5, 0.0, NO_TOTAL), "F": (0.15, 2.0, 0.5, 0.0, NO_TOTAL)}
    one = generate(truth, SIZES, SHARES)
    pts = pd.concat([one, one.assign(k=5)], ignore_index=True)
    a, b = fit_curves(pts, 1, n_boot=30, seed=3), fit_curves(pts, 1, n_boot=30, seed=3)
    assert np.array_equal(a.fits["F"].boot, b.fits["F"].boot, equal_nan=True)
    c = fit_curves(pts, 1, n_boot=30, seed=4)
    assert not np.allclose(a.fits["F"].boot[:, 0], c.fits["F"].boot[:, 0])
    # the same replicates are drawn at k = 1 and k = 5 (given the same points here), so
    # single-model and ensemble refits are paired
    e = fit_curves(pts, 5, n_boot=30, seed=3)
    assert np.array_equal(a.fits["M"].boot, e.fits["M"].boot, equal_nan=True)


def test_points_without_own_data_are_left_out_of_that_groups_fit():
    truth = {"M": (0.05, 1.5, 0.5, 0.0, NO_TOTAL), "F": (0.15, 2.0, 0.5, 0.0, NO_TOTAL)}
    pts = generate(truth, SIZES, [0.0, *SHARES, 1.0])
    a = fit_curves(pts, 1, n_boot=10)
    # share 0 of F leaves F without data, share 1 leaves M without: one point per size each
    for g in truth:
        assert a.fits[g].n_zero == len(SIZES)
        assert a.fits[g].n_points == len(SIZES) * (len(SHARES) + 1)
        zero = a.fits[g].design[a.fits[g].design["n_group"] == 0]
        assert zero["fitted"].isna().all() and len(zero) == len(SIZES)
    # whatever a group scores with no data of its own does not move its fit
    moved = pts.copy()
    no_f = (moved["group"] == "F") & (moved["n_group"] == 0)
    moved.loc[no_f, "error"] = 0.95
    b = fit_curves(moved, 1, n_boot=10)
    assert np.array_equal(a.fits["F"].theta, b.fits["F"].theta, equal_nan=True)
    assert np.array_equal(a.fits["F"].boot, b.fits["F"].boot, equal_nan=True)
    # a prediction that leaves a group without data has no value for that group
    p = predict(a, 1000, shares=[0.0, 0.5])
    assert np.isnan(p.values["F"][0]) and np.isfinite(p.values["F"][1])
    assert np.isfinite(p.values["M"]).all()


# ----------------------------------------------------------------------------- predictions


def test_the_predicted_gap_share_is_where_the_true_curves_cross():
    # F (moved) has a high floor (0.15) and a shallow curve; M a low floor (0.03) and a steep
    # curve. However much data F gets, its error stays above 0.15, so the gap closes only
    # where M's error, rising as M's share shrinks, meets F's: 0.15 + 1/sqrt(s N) =
    # 0.03 + 3/sqrt((1 - s) N). At N = 2000 that is s = 0.79: giving F more than that makes
    # M worse than F, less leaves F behind.
    truth = {"M": (0.03, 3.0, 0.5, 0.0, NO_TOTAL), "F": (0.15, 1.0, 0.5, 0.0, NO_TOTAL)}
    N = 2000
    grid = np.round(np.arange(0.1, 0.9001, 0.01), 6)
    true_gap = np.abs(model_error(np.array(truth["F"]), grid * N, N)
                      - model_error(np.array(truth["M"]), (1 - grid) * N, N))
    best = grid[np.argmin(true_gap)]
    assert best == pytest.approx(0.79)
    c = fit_curves(generate(truth, SIZES, SHARES), 1, n_boot=100)
    p = predict(c, N, shares=grid)
    gap = p.recommended["gap"]
    assert gap["share"] == pytest.approx(best, abs=0.02)
    assert gap["interval"][0] - 0.01 <= best <= gap["interval"][1] + 0.01
    # F's metric is the worst at every share up to the crossing, so worst agrees with gap
    assert p.recommended["worst"]["share"] == pytest.approx(best, abs=0.02)
    # overall (equal weights) is best where the marginal gains balance, at s = 1/4 here:
    # d/ds [1/sqrt(s) + 3/sqrt(1-s)] = 0 <=> (1-s)^1.5 / s^1.5 = 3 <=> s = 1 / (1 + 3^(2/3))
    assert p.recommended["overall"]["share"] == pytest.approx(1 / (1 + 3 ** (2 / 3)), abs=0.03)
    # pareto: the smallest gap among shares whose overall cannot be told from the best
    pareto = p.recommended["pareto"]
    lo, hi = p.recommended["overall"]["indistinguishable"]
    assert lo <= pareto["share"] <= hi
    inside = (grid >= lo - 1e-9) & (grid <= hi + 1e-9)
    assert pareto["value"] == pytest.approx(p.values["gap"][inside].min())
    assert p.extrapolation["factor"] == 2.0 and p.extrapolation["supported"]


def test_weights_give_the_natural_overall():
    truth = {"M": (0.03, 3.0, 0.5, 0.0, NO_TOTAL), "F": (0.15, 1.0, 0.5, 0.0, NO_TOTAL)}
    c = fit_curves(generate(truth, SIZES, SHARES), 1, n_boot=10)
    p = predict(c, 1000, shares=[0.5], weights={"M": 3, "F": 1})
    assert p.values["overall"][0] == pytest.approx(0.75 * p.values["M"][0]
                                                   + 0.25 * p.values["F"][0])
    with pytest.raises(CurvesError, match="weights"):
        predict(c, 1000, weights={"M": 1.0})


def test_budgets_far_beyond_the_measured_sizes_are_flagged():
    truth = {"M": (0.05, 1.5, 0.5, 0.0, NO_TOTAL), "F": (0.15, 2.0, 0.5, 0.0, NO_TOTAL)}
    c = fit_curves(generate(truth, SIZES, SHARES), 1, n_boot=30)
    near = predict(c, int(MAX_FACTOR * 1000))
    far = predict(c, int(MAX_FACTOR * 1000) + 1000)
    assert near.extrapolation["supported"]
    assert not far.extrapolation["supported"]
    assert far.extrapolation["factor"] == pytest.approx(5.0)
    assert "5.0 times the largest measured size 1000" in far.extrapolation["reasons"][0]
    # noisy curves: the predicted metric's interval is too wide even inside the measured sizes
    noisy = fit_curves(generate(truth, SIZES, SHARES, noise=0.25), 1, n_boot=30)
    wide = predict(noisy, 1000).extrapolation
    assert not wide["supported"] and "wider than" in wide["reasons"][-1]


def test_three_groups_keep_the_others_proportions_when_the_moved_share_changes():
    from fairensemble.advice.curves.fit import _other_proportions

    pool_g = np.repeat([0, 1, 2], [600, 300, 100])
    shares = [mix_shares(r, [2], pool_g, 3).tolist() for r in (0.0, 0.5, 1.0)]
    others = _other_proportions(["A", "B", "C"], "C", shares)
    assert others == pytest.approx({"A": 2 / 3, "B": 1 / 3})


# ----------------------------------------------------------------------------- difficulty


def test_difficulty_tells_a_high_floor_from_a_steep_curve():
    # F: a floor 0.12 above M's and a nearly flat curve -> floor. G: M's floor and a steep
    # curve -> data-limited.
    floor_case = {"M": (0.05, 1.0, 0.5, 0.0, NO_TOTAL), "F": (0.17, 0.2, 0.5, 0.0, NO_TOTAL)}
    steep_case = {"M": (0.05, 1.0, 0.5, 0.0, NO_TOTAL), "G": (0.05, 4.0, 0.5, 0.0, NO_TOTAL)}
    d_floor = difficulty(fit_curves(generate(floor_case, SIZES, SHARES), 1, n_boot=60))
    d_steep = difficulty(fit_curves(generate(steep_case, SIZES, SHARES), 1, n_boot=60))
    f = d_floor["groups"]["F"]
    assert f["kind"] == "floor" and d_floor["harder"] == "F"
    assert f["floor_excess"] == pytest.approx(0.12, abs=0.02) and f["floor_excess_ci"][0] > 0
    assert "higher floor" in d_floor["statement"]
    g = d_steep["groups"]["G"]
    assert g["kind"] == "data-limited" and d_steep["harder"] == "G"
    assert g["floor_excess_ci"][0] <= 0.0 <= g["floor_excess_ci"][1] + 0.01
    # data term at the balanced mix of the largest size: 4 / sqrt(500)
    assert g["data_term"] == pytest.approx(4 / np.sqrt(500), abs=0.02)
    assert g["at"] == {"train_size": 1000, "share": 0.5, "n_group": 500.0}
    assert "steeper curve" in d_steep["statement"]


def test_a_prediction_that_barely_varies_with_the_share_is_called_flat():
    # both groups on one floor with curves so shallow that shares change the error by far
    # less than the replicate noise: the share picked cannot be trusted, and the JSON says so
    flat = {"M": (0.20, 0.002, 0.5, 0.0, NO_TOTAL), "F": (0.20, 0.002, 0.5, 0.0, NO_TOTAL)}
    curves = fit_curves(generate(flat, SIZES, SHARES, noise=0.01), 1, n_boot=20)
    got = curves_json(curves, budget=2000)
    assert all(got["predicted"][name]["flat"] for name in ("gap", "overall", "worst"))
    assert any(w.startswith("gap: flat") for w in got["warnings"])
    # a real difference between the groups' curves is not flat
    steep = {"M": (0.03, 3.0, 0.5, 0.0, NO_TOTAL), "F": (0.15, 1.0, 0.5, 0.0, NO_TOTAL)}
    got = curves_json(fit_curves(generate(steep, SIZES, SHARES), 1, n_boot=20), budget=2000)
    assert not got["predicted"]["gap"]["flat"]


def test_a_conflict_between_the_groups_is_fitted_by_the_conflict_term():
    # error rising with the other group's share beyond what the own count explains: Rolf's
    # form (b >= 0) cannot express it; the conflict term c (1 - s)^r can, and the floors stay
    truth = {"M": (0.05, 1.0, 0.5, 0.0, NO_TOTAL), "F": (0.10, 2.0, 0.5, 0.0, NO_TOTAL)}
    clean = fit_curves(generate(truth, SIZES, SHARES), 1, n_boot=10)
    hurt = fit_curves(generate(truth, SIZES, SHARES, extra=lambda g, s: 0.2 * (1 - s)), 1,
                      n_boot=20)
    assert not any(Form(f.form).conflict for f in clean.fits.values())
    for g, fit in hurt.fits.items():
        assert Form(fit.form).conflict, g
        assert fit.floor == pytest.approx(truth[g][0], abs=0.02), g
        assert fit.theta[5] == pytest.approx(0.2, abs=0.06), g  # the conflict amplitude c
        assert fit.r2 > 0.95
    diff = difficulty(hurt, train_size=1000, share=0.1)  # F at 10 %: M's data cost it
    assert diff["groups"]["F"]["conflict_term"] == pytest.approx(0.2 * 0.9, abs=0.05)
    assert not any("the error rises" in w for w in curves_json(hurt)["warnings"])


def test_interference_the_chosen_form_cannot_express_is_flagged():
    # residuals that rise with the training-set size at the same own count: the other groups'
    # data hurt, which a form without the conflict term cannot express
    rng = np.random.default_rng(0)
    totals = np.repeat([250.0, 500.0, 1000.0], 4)
    rising = 0.0002 * totals + rng.normal(0, 0.005, 12)
    assert interference(rising, totals)["flagged"]
    flat = np.tile([0.004, -0.004, 0.002, -0.002], 3)  # the same spread at every size
    assert not interference(flat, totals)["flagged"]


# ----------------------------------------------------------------------------- JSON, figures


def test_the_json_holds_what_recommendation_json_needs_and_the_figures_draw_it(tmp_path):
    truth = {"M": (0.05, 1.5, 0.5, 0.2, 0.5), "F": (0.15, 2.0, 0.5, 0.0, NO_TOTAL)}
    pts = generate(truth, SIZES, [0.0, *SHARES, 1.0], ks=(1, 4))
    entry = {"point": {"dataset.label_noise_on": "train"},
             "single": curves_json(fit_curves(pts, 1, n_boot=30), 3000),
             "ensemble": curves_json(fit_curves(pts, 4, n_boot=30), 3000)}
    text = json.dumps(entry, allow_nan=False)  # no NaN anywhere: plain JSON
    part = json.loads(text)["ensemble"]
    for g in ("M", "F"):
        group = part["groups"][g]
        assert group["floor_ci"][0] <= group["floor"] <= group["floor_ci"][1]
        assert group["data_term_ci"][0] <= group["data_term"] <= group["data_term_ci"][1]
        assert group["form"] in ("full", "own", "own_fixed", "floor")
        assert group["fit"]["n_zero"] == 3 and group["fit"]["r2"] > 0.9
    assert part["budget"] == 3000 and part["extrapolation"]["factor"] == 3.0
    for objective in ("gap", "overall", "worst", "pareto"):
        pred = part["predicted"][objective]
        assert pred["interval"][0] <= pred["share"] <= pred["interval"][1]
    assert len(part["per_share"]["share"]) == len(part["per_share"]["gap"]["value"]) == 81
    assert any(b["budget"] == 3000 for b in part["by_budget"])
    made = [save_figure(learning_curves_figure([entry])[0], tmp_path / "curves.png"),
            save_figure(curves_fit_figure([entry])[0], tmp_path / "fit.png"),
            save_figure(budget_share_figure([entry])[0], tmp_path / "budget.png")]
    for path in made:
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_sweeping_train_size_gives_curves_for_each_setting(tmp_path):
    cfg = {**TINY, "grid": {"train_size": [100, 200], "dataset.label_noise": [0.0, 0.3]},
           "ratios": [0.25, 0.5, 0.75], "metrics": ["accuracy"]}
    path = tmp_path / "sizes.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    assert cli("run", str(path), "--out", str(run)).returncode == 0
    _, plan = load_run(run)
    table = pd.read_parquet(run / "metrics.parquet")
    pts = measured_points(table, plan)
    assert set(pts["train_size"]) == {100, 200}
    # a cell's count of F is its share of the size it was drawn at
    f = pts[pts["group"] == "F"]
    assert np.allclose(f["n_group"], f["ratio"] * f["train_size"])
    result = run_curves(table, plan, 400, n_boot=20)
    assert [e["point"] for e in result] == [{"dataset.label_noise": 0.0},
                                             {"dataset.label_noise": 0.3}]
    for entry in result:
        assert entry["single"]["k"] == 1 and entry["ensemble"]["k"] == 4
        assert set(entry["ensemble"]["groups"]) == {"M", "F"}
        assert entry["ensemble"]["extrapolation"]["factor"] == 2.0
    json.dumps(result, allow_nan=False)
    assert Path(run / "metrics.parquet").is_file()
