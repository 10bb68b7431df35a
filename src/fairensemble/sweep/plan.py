"""What a run will train: cells, the plan, seed derivation and cell identity (no torch, no data).

A cell is (grid point, mix, replicate). Its id is a stable hash of everything that determines
its training, so a re-run skips finished cells and a changed config never reuses a stale one.
The data-dependent facts of a grid point (its groups, classes, the ratio group, each mix's
shares and (group, class) counts) are computed by the training side, which reads the data,
and handed in as a ``PointLayout``; everything here is plain values, so ``plan.json`` in the
run directory is enough to re-analyse a run on a machine that has never seen its data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fairensemble import models
from fairensemble.common.errors import ConfigError, StoreError
from fairensemble.common.files import file_sha256
from fairensemble.common.seeds import derive_seed, stable_hash
from fairensemble.common.text import close_matches, preview_names
from fairensemble.config import RUNTIME_FIELDS, RunConfig

# Bump when a change makes stored cells of the same config mean something else.
# 3: splits drawn by one apportionment rule (tables, digits, CheXpert's patients), images
#    through one pipeline (EXIF orientation applied), member streams in one place
CELL_FORMAT = 3
PLAN_FORMAT = 1


@dataclass
class Cell:
    id: str
    point_index: int
    point: dict[str, Any]
    mix_index: int
    mix: dict[str, float] | None  # explicit mix, or None for a ratio of ratio_group
    ratio: float  # share of ratio_group in the training set
    replicate: int
    sample_seed: int
    member_seeds: list[int]
    counts: list[list[int]]  # samples per (group, class) the training draw takes

    def coords(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.point)
        out.update(ratio=self.ratio, replicate=self.replicate, mix_index=self.mix_index)
        if self.mix is not None:
            out["mix"] = self.mix
        return out


@dataclass
class PointLayout:
    """What the data of one grid point says: its groups and classes, the group whose share is
    swept, and for every mix the share of each group and the (group, class) counts drawn;
    with raters, what their votes are (source, counts or shares, what members are scored and
    trained on; the votes themselves are in each cell, ``votes_test``)."""

    groups: list[str]
    classes: list[str]
    ratio_group: str  # a group, or a value of the first attribute (intersectional groups)
    shares: list[list[float]]  # [mix][group]
    counts: list[list[list[int]]]  # [mix][group][class]
    attributes: list[str] = field(default_factory=list)  # group columns, when several
    group_values: list[list[str]] = field(default_factory=list)  # per group, each column's value
    test_counts: list[list[int]] = field(default_factory=list)  # [group][class] of the test split
    raters: dict[str, Any] = field(default_factory=dict)  # the test split's raters (runner)


def moved_indices(name: str, groups: list[str], group_values: list[list[str]]) -> list[int]:
    """The groups whose share a sweep of ``name`` moves: that group, or with intersectional
    groups every combination holding that value of the first attribute (empty: neither)."""
    if name in groups:
        return [groups.index(name)]
    return [i for i, values in enumerate(group_values) if values and values[0] == name]


def check_ratio_group(name: str, groups: Sequence[str], group_values: Sequence[Sequence[str]] = (),
                      attributes: Sequence[str] = (), field: str = "ratio_group",
                      source: str = "") -> list[int]:
    """The groups a sweep of ``name`` moves (``moved_indices``): a group, or with
    intersectional groups a value of the first attribute. A name that moves nothing is one
    line naming ``field`` (``ratio_group``, ``--ratio-group``, ``--group``), the choices and
    the close matches."""
    hits = moved_indices(name, list(groups), [list(v) for v in group_values])
    if hits:
        return hits
    firsts = sorted({v[0] for v in group_values if v})
    also = (f" or a value of {attributes[0]!r} ({preview_names(firsts)})"
            if firsts and attributes else "")
    where = f"{source}: " if source else ""
    raise ConfigError(f"{where}{field}: expected one of the groups ({preview_names(list(groups))})"
                      f"{also}, got {name!r}{close_matches(name, [*groups, *firsts])}")


@dataclass
class Plan:
    cfg: RunConfig
    points: list[dict[str, Any]]
    cells: list[Cell]
    layouts: list[PointLayout] = field(default_factory=list)  # one per grid point

    @property
    def groups(self) -> dict[int, list[str]]:
        return {i: lay.groups for i, lay in enumerate(self.layouts)}

    @property
    def classes(self) -> dict[int, list[str]]:
        return {i: lay.classes for i, lay in enumerate(self.layouts)}

    @property
    def ratio_group(self) -> dict[int, str]:
        return {i: lay.ratio_group for i, lay in enumerate(self.layouts)}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "cell_format": CELL_FORMAT,
            "name": self.cfg.name,
            "grid_fields": list(self.cfg.grid),
            "points": self.points,
            "layouts": [asdict(lay) for lay in self.layouts],
            "cells": [asdict(c) for c in self.cells],
        }

    @classmethod
    def from_json(cls, cfg: RunConfig, data: dict[str, Any]) -> Plan:
        if data.get("format") != PLAN_FORMAT:
            raise StoreError(
                f"plan.json: expected format {PLAN_FORMAT}, got {data.get('format')!r}")
        return cls(
            cfg=cfg,
            points=list(data["points"]),
            cells=[Cell(**c) for c in data["cells"]],
            layouts=[PointLayout(**lay) for lay in data["layouts"]],
        )

    def cells_of(self, ids: set[str]) -> list[Cell]:
        return [c for c in self.cells if c.id in ids]


def n_mixes(cfg: RunConfig) -> int:
    return len(cfg.mixes) if cfg.mixes is not None else len(cfg.ratios)


def model_identity(pcfg: RunConfig) -> dict[str, Any]:
    """The model section as it determines training: a weights file and a factory's source
    file count by their content (editing the factory never reuses stale cells)."""
    model = pcfg.model.model_dump(mode="json")
    weights = model.get("weights")
    if weights:
        model["weights"] = {"sha256": file_sha256(weights, "model.weights")}
    if models.is_factory(pcfg.model.name):
        source = models.factory_file(pcfg.model.name)
        model["factory"] = {"sha256": file_sha256(source, "model.name")}
    return model


def _runtime(section: str) -> set[str]:
    """The fields of ``section`` that change no number (config.RUNTIME_FIELDS): left out of
    the identity, so a cell is the same cell wherever and however it was trained."""
    return {f[len(section) + 1:] for f in RUNTIME_FIELDS if f.startswith(section + ".")}


# dataset fields added after cells were first stored, with the value that means "as before":
# left out of the identity at that value, so stored cells keep their ids
LATER_DATASET_FIELDS = {"annotations": [], "soft_label": None, "raters": None,
                        "train_on": "majority", "rater_noise": 0.0}


def dataset_identity(pcfg: RunConfig) -> dict[str, Any]:
    data = pcfg.dataset.model_dump(mode="json", exclude=_runtime("dataset"))
    return {k: v for k, v in data.items()
            if not (k in LATER_DATASET_FIELDS and v == LATER_DATASET_FIELDS[k])}


def cell_identity(pcfg: RunConfig, layout: PointLayout, mix_index: int, replicate: int
                  ) -> dict[str, Any]:
    """Everything that determines a cell's training. Where the decoded image cache lives, how
    many loader processes decode it and which device trains do not change a cell's numbers
    on the same device kind, so they are left out; so is the ratio group, which only names
    whose share a sweep moves (the shares say what is drawn), so a 50/50 cell is the same cell
    whichever group a sweep moves."""
    return {
        "format": CELL_FORMAT,
        "seed": pcfg.seed,
        "dataset": dataset_identity(pcfg),
        "shares": _shares_key(layout.shares[mix_index]),
        "train_size": pcfg.train_size,
        "label_balance": pcfg.label_balance,
        "model": model_identity(pcfg),
        "train": train_identity(pcfg),
        "members": pcfg.ensemble.members,
        "replicate": replicate,
    }


def train_identity(pcfg: RunConfig) -> dict[str, Any]:
    """The train section as it determines training: a mitigation's own fields count only when
    it is on, and without one the section reads as it did before mitigations existed, so
    stored cells keep their ids."""
    train = pcfg.train.model_dump(mode="json", exclude=_runtime("train"))
    if train["mitigation"] != "group_dro":
        del train["dro_step"], train["dro_adjust"]
    if train["mitigation"] == "none":
        del train["mitigation"]
    return train


def _shares_key(shares: list[float]) -> list[float]:
    return [round(float(s), 12) for s in shares]


def sample_seed(run_seed: int, shares: list[float], replicate: int) -> int:
    """The seed of a cell's training draw: a function of its shares (not of where the mix sits
    in a list), so the same mix planned by another sweep is the same cell, draw included."""
    return derive_seed(run_seed, "sample", _shares_key(shares), replicate)


def build_plan(cfg: RunConfig, layouts: list[PointLayout]) -> Plan:
    """Every cell of the run with its id and seeds, from one layout per grid point.

    Member seeds depend on the replicate only and sample seeds on (shares, replicate): common
    random numbers across difficulty levels, so differences between grid points are the
    effect of the knob, not of the draw."""
    points = cfg.grid_points()
    if len(layouts) != len(points):
        raise ValueError(
            f"layouts: expected one per grid point ({len(points)}), got {len(layouts)}")
    E = cfg.ensemble.members
    member_seeds = {
        r: [derive_seed(cfg.seed, "member", r, m) for m in range(E)] for r in range(cfg.replicates)
    }
    plan = Plan(cfg, points, [], list(layouts))
    for pi, (point, layout) in enumerate(zip(points, layouts)):
        pcfg = cfg.at(point)
        moved = moved_indices(layout.ratio_group, layout.groups, layout.group_values)
        for mi in range(n_mixes(cfg)):
            mix = cfg.mixes[mi] if cfg.mixes is not None else None
            for r in range(cfg.replicates):
                plan.cells.append(Cell(
                    id=stable_hash(cell_identity(pcfg, layout, mi, r)),
                    point_index=pi,
                    point=point,
                    mix_index=mi,
                    mix=mix,
                    ratio=float(sum(layout.shares[mi][j] for j in moved)),
                    replicate=r,
                    sample_seed=sample_seed(cfg.seed, layout.shares[mi], r),
                    member_seeds=member_seeds[r],
                    counts=layout.counts[mi],
                ))
    return plan


__all__ = ["CELL_FORMAT", "Cell", "Plan", "PointLayout", "build_plan", "cell_identity",
           "file_sha256"]
