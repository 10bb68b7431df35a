"""Propose a ready-to-run config for a user's own data (``fairensemble init``): count it, size
the sweep, write commented YAML.

By job: ``decide`` (the pure rules on counts: positive class, tiny groups, ratio group, train
size), ``tables`` and ``images`` (one proposal per kind of data), ``assemble`` (fields and
their comments, sized for the machine), ``render`` (the YAML).
"""

from fairensemble.advice.scaffold.decide import (
    Counts,
    GroupPlan,
    Proposal,
    TrainSize,
    missing_markers,
    pick_positive,
    pick_ratio_group,
    plan_groups,
    propose_train_size,
    readable_between,
)
from fairensemble.advice.scaffold.images import (
    propose_celeba,
    propose_chexpert,
    propose_images,
)
from fairensemble.advice.scaffold.render import render_yaml
from fairensemble.advice.scaffold.tables import propose_adult, propose_table

__all__ = ["Counts", "GroupPlan", "Proposal", "TrainSize", "missing_markers", "pick_positive",
           "pick_ratio_group", "plan_groups", "propose_adult", "propose_celeba", "propose_chexpert",
           "propose_images", "propose_table", "propose_train_size", "readable_between",
           "render_yaml"]
