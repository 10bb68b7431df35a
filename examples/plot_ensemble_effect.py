"""
Ensemble effect: every group gains, the gap does not narrow
===========================================================

The label-noise sweep in a regime where ensemble members disagree
(``configs/ensemble_effect.yaml``): 50 features of which 2 are informative, 500 training rows
and a narrow 16×16 MLP trained 200 epochs without regularisation. Members fit different noise,
disagree on 6–36 % of a group's test samples, and 20 of them beat one by 1–6 accuracy
points. The settings were tuned for that disagreement, not for a conclusion: narrower
networks made members disagree more (256×256: gains up to 1.7 points; 16×16: up to 5.6 at
mixes 0.5/0.8), learning rate and batch size did not.

**At full size** (noise 0–0.4 × 11 mixes × 3 replicates × 20 members = 3,300 members,
94.7 s end to end on 2 CPU cores)::

    fairensemble run configs/ensemble_effect.yaml

.. code-block:: text

    label_noise  min-gap     min gap         max-overall  max overall     positive-sum
                 mix                         mix          accuracy        (means | 95% CI)
            0.0  0.5 -> 0.5  0.018 -> 0.015  0.5 -> 0.6   0.804 -> 0.823  2/11 | 9/11
            0.1  0.6 -> 0.6  0.028 -> 0.028  0.5 -> 0.5   0.777 -> 0.808  1/11 | 8/11
            0.2  0.7 -> 0.7  0.032 -> 0.033  0.2 -> 0.5   0.749 -> 0.775  0/11 | 5/11
            0.3  0.8 -> 0.8  0.062 -> 0.080  0.1 -> 0.4   0.718 -> 0.740  0/11 | 3/11
            0.4  0.9 -> 0.9  0.038 -> 0.051  0.2 -> 0.2   0.709 -> 0.727  0/11 | 1/11

Gain from 1 to 20 members in accuracy points, mean [95 % t-interval over 3 replicates], and
the member disagreement on each group at mix 0.5:

.. list-table::
   :header-rows: 1

   * - noise
     - mix 0.2: M / F / gap
     - mix 0.5: M / F / gap
     - mix 0.8: M / F / gap
     - gap widened (of 11)
     - disagreement M / F
   * - 0.0
     - +1.5 / +1.2 / +0.2 [−0.2, +0.6]
     - +1.9 / +1.9 / −0.3 [−0.8, +0.2]
     - +1.4 / +1.8 / +0.4 [−0.9, +1.7]
     - 2
     - 0.130 / 0.124
   * - 0.1
     - +2.6 / +1.7 / +1.0 [−0.2, +2.1]
     - +3.0 / +3.0 / +0.0 [−0.5, +0.6]
     - +3.6 / +4.6 / +1.0 [−0.1, +2.0]
     - 3
     - 0.152 / 0.182
   * - 0.2
     - +2.4 / +1.2 / +1.3 [+0.0, +2.5]
     - +4.4 / +3.4 / +1.0 [−0.3, +2.2]
     - +4.3 / +4.9 / +0.6 [−0.8, +2.0]
     - 6
     - 0.183 / 0.235
   * - 0.3
     - +2.9 / +0.8 / +2.1 [+1.0, +3.1]
     - +4.6 / +2.5 / +2.0 [+0.0, +4.0]
     - +5.7 / +3.9 / +1.8 [−0.7, +4.3]
     - 8
     - 0.198 / 0.269
   * - 0.4
     - +2.9 / +0.8 / +2.1 [+1.3, +2.9]
     - +4.8 / +2.2 / +2.6 [+1.1, +4.1]
     - +5.9 / +4.4 / +1.5 [−1.9, +4.8]
     - 10
     - 0.204 / 0.284

* **Every group gains** wherever it is in the training set: the per-group gains are positive
  at every mix from 0.1 to 0.9 (80 of the 90 with intervals above zero), and overall accuracy
  at the best mix rises by 1.8–3.1 points.
* **But the gap does not narrow: it widens as the noise rises** ("disparate benefits"). The
  ensemble never narrows the gap detectably at any noise level; it widens it at 2, 3, 6, 8
  and 10 of the 11 mixes at noise 0, 0.1, 0.2, 0.3 and 0.4. The group that is ahead (the
  clean group M, except where F dominates the training set) gains more, so the positive-sum
  verdicts (which require a non-widening gap) fall from 9/11 to 1/11.
* **Members disagree more on the noisy group, yet it gains less.** At mix 0.5 and noise 0.4
  members disagree on 28 % of F's test samples against 20 % of M's, but F gains 2.2 points
  against M's 4.8: the disagreement on F is members fitting different wrong labels, which
  averaging cannot turn into accuracy.
* **The min-gap mix still moves towards the hard group** (0.5 → 0.9 as the noise goes from
  0 to 0.4), for one model and for the ensemble alike. **The mix that maximises overall
  accuracy does not**: it moves away from F, because in this regime F's noisy rows cost the
  shared model more than they teach it; the two goals pull apart.

Below, the same regime at a CPU size (noise 0 and 0.4, mixes 0.2, 0.5 and 0.8, 3 replicates,
8 members, 100 epochs), run while these pages were built.
"""

# %%
# Run the study
# -------------
import tempfile
from pathlib import Path

import fairensemble as fe
from fairensemble.config import CONFIGS
from fairensemble.report import plots, print_summary

cfg = fe.load_config(CONFIGS / "ensemble_effect.yaml", [
    "grid.dataset.label_noise=[0.0,0.4]", "ratios=[0.2,0.5,0.8]",
    "replicates=3", "ensemble.members=8", "train.epochs=100",
    "dataset.pool_size=5000", "dataset.val_size=1000", "dataset.test_size=3000",
    "executor.kind=serial", "executor.threads=1",
])
run_dir = Path(tempfile.mkdtemp()) / cfg.name
summary = fe.run(cfg, str(run_dir))
print_summary(summary)

# %%
# Who gains, and how much the members disagree
# --------------------------------------------
# ``metrics.parquet`` holds every metric per group and ensemble size; here the gain in
# accuracy from one member to eight, per group and mix, beside the members' disagreement on
# that group (the share of member pairs that predict different labels).
import pandas as pd

table = pd.read_parquet(run_dir / "metrics.parquet")
E = cfg.ensemble.members
rows = table[(table["post"] == "none") & table["group"].isin(["M", "F"])]
acc = rows[rows["metric"] == "accuracy"].pivot_table(
    index=["dataset.label_noise", "ratio", "group"], columns="k", values="mean")
disagreement = rows[(rows["metric"] == "disagreement") & (rows["k"] == E)].groupby(
    ["dataset.label_noise", "ratio", "group"])["mean"].mean()
gains = pd.DataFrame({"accuracy k=1": acc[1], f"accuracy k={E}": acc[E],
                      "gain (points)": 100 * (acc[E] - acc[1]),
                      f"disagreement k={E}": disagreement}).round(3)
gains

# %%
# The figure of who benefits
# --------------------------
_, plan = fe.load_run(str(run_dir))
fig, caption = plots.gain_vs_diversity(summary, plan)
plots.lay_out(fig)  # as the run's own figures are laid out
print(caption)

# %%
fig, caption = plots.metric_vs_ratio(summary, plan)
plots.lay_out(fig)  # as the run's own figures are laid out
print(caption)
