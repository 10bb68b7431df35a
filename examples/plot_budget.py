"""
How much data of which group: learning curves
=============================================

``fairensemble recommend CONFIG --budget N`` (:doc:`/guide/how-much-data`) measures the mix
sweep at a few training-set sizes, fits each group's learning curve (a floor, a data term and
a conflict term) for the single model and the ensemble, and predicts the best share of the
moved group for a training set of N.

**Checked at full size** on the synthetic label-noise task, 30 % of F's labels flipped, sizes
250, 500, 1,000, shares 0–1 of F, 3 replicates, 5 members (``tests/test_budget.py`` runs
it). The generator's truth: each group's own Bayes rule errs on 0.067 of its samples; with
F's test labels flipped too, F's best possible error is 0.327.

.. list-table::
   :header-rows: 1

   * - noise on
     - group
     - floor
     - data term at 1,000 (50/50)
     - conflict term at 50/50
     - kind
   * - training labels
     - F
     - 0.068 [0.051, 0.087]
     - 0.022 [0.009, 0.032]
     - 0.111 [0.092, 0.131]
     - conflict
   * - every label
     - F
     - 0.335 [0.328, 0.341]
     - 0.009 [0.005, 0.014]
     - 0.047 [0.040, 0.053]
     - **floor**

With noise only in the training labels, F's floor is M's (0.068, the Bayes error): what F
pays at 50/50 is mostly M's data, which is why over-representing F lowers the gap. With noise
on every label, F's floor is 0.267 above M's (truth: 0.260) and no allocation of data removes
it: collect cleaner labels instead. Fitted on sizes up to 1,000, the best share predicted at
4,000 matched a direct sweep at 4,000 (``benchmarks/curves_extrapolation.py``: 0.71
[0.68, 0.74] predicted against 0.70 measured for the gap, noise on the training labels).

Below, the noise on every label at a CPU size (sizes 200, 400 and 800, 2 replicates, 2
members, 8 epochs, a 16×16 MLP), planned for 1,500 rows, run while these pages were built.
"""

# %%
# Measure, fit and predict
# ------------------------
# ``pipeline.recommend`` with ``budget=`` is what ``fairensemble recommend --budget`` runs;
# ``print_recommendation`` prints what the command prints: per group the floor, data term and
# conflict term, then each objective's best share at the budget.
import tempfile
from pathlib import Path

import fairensemble as fe
from fairensemble import pipeline
from fairensemble.report import plots, print_recommendation

cfg = fe.load_config(None, [
    "name=noise-everywhere", "dataset.label_noise=0.3", "dataset.label_noise_on=all",
    "dataset.pool_size=3000", "dataset.test_size=1000", "replicates=2",
    "ensemble.members=2", "train.epochs=8", "train.lr=0.01", "model.hidden=[16,16]",
    "analysis.n_boot=20", "executor.kind=serial", "executor.threads=1",
])
run_dir = Path(tempfile.mkdtemp()) / cfg.name
rec, trained = pipeline.recommend(cfg, str(run_dir), budget=1500, sizes=[200, 400, 800])
print_recommendation(rec)

# %%
# The floors
# ----------
# ``recommendation.json`` holds the same per group: the floor is what more data cannot
# remove.
ensemble = rec["curves"]["ensemble"]
for group, fit in ensemble["groups"].items():
    lo, hi = fit["floor_ci"]
    print(f"{group}: floor {fit['floor']:.3f} [{lo:.3f}, {hi:.3f}], kind: {fit['kind']}")

# %%
# The learning curves
# -------------------
# Each group's error against its own count: the measured points, the fitted curve at each
# measured size and its band.
fig, caption = plots.learning_curves_figure(rec["curves_by_point"])
plots.lay_out(fig)  # as the run's own figures are laid out
print(caption)

# %%
# The best share against the budget
# ---------------------------------
fig, caption = plots.budget_share_figure(rec["curves_by_point"])
plots.lay_out(fig)  # as the run's own figures are laid out
print(caption)
