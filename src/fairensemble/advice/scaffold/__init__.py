"""Propose a ready-to-run config for a user's own data (``fairensemble init``): count it, size
the sweep, write commented YAML.

By job: ``decide`` (the pure rules on counts: positive class, tiny groups, ratio group, train
size), ``tables`` and ``images`` (one proposal per kind of data; a folder of images without a
table also gets the table it was read into, which ``place`` puts beside the config),
``assemble`` (fields and their comments, sized for the machine), ``render`` (the YAML).
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
    place,
    propose_celeba,
    propose_chexpert,
    propose_image_folder,
    propose_images,
)
from fairensemble.advice.scaffold.render import render_yaml
from fairensemble.advice.scaffold.tables import propose_adult, propose_table
from fairensemble.advice.scaffold.text import propose_text

__all__ = ["Counts", "GroupPlan", "Proposal", "TrainSize", "missing_markers", "pick_positive",
           "pick_ratio_group", "place", "plan_groups", "propose_adult", "propose_celeba",
           "propose_chexpert", "propose_image_folder", "propose_images", "propose_table",
           "propose_text", "propose_train_size", "readable_between", "render_yaml"]
