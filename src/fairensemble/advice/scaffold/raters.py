"""Raters in a proposal (``init ... --annotation COL``, once per rater): the columns checked,
the label they make (their majority, or the target when one is given too), and a line per
group saying how much the raters disagree, so the user sees the difficulty they measure
before anything trains."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fairensemble.advice.scaffold.decide import require_column
from fairensemble.common.errors import ConfigError, DataError
from fairensemble.metrics.raters import group_rater_measures


def check_annotations(frame: pd.DataFrame, target: str | None, groups: list[str],
                      annotations: list[str], source: str) -> list[str]:
    """The rater columns, each found and none a target or group column; without a target
    there must be raters (one line otherwise, naming the flags)."""
    annotations = list(dict.fromkeys(annotations))
    if target is None and not annotations:
        raise ConfigError("--target: expected the column holding the class label (or "
                          "--annotation COL, once per rater: the label is then their majority)")
    columns = [str(c) for c in frame.columns]
    for col in annotations:
        require_column(col, columns, "annotation", source)
        if col == target or col in groups:
            role = "target" if col == target else "group"
            raise DataError(f"--annotation {col!r} is also the {role} column; a rater's column "
                            "holds that rater's label only")
    return annotations


def label_words(target: str | None) -> str:
    """How messages name what the members learn: the target, or the raters' majority."""
    return f"target {target!r}" if target is not None else "the raters' majority"


def label_rows(frame: pd.DataFrame, target: str | None, annotations: list[str]) -> pd.Series:
    """Whether each row has a label: its target, or without one a rater's vote."""
    if target is not None:
        return frame[target].notna()
    return frame[annotations].notna().any(axis=1)


def label_values(frame: pd.DataFrame, rows: pd.Series, target: str | None,
                 annotations: list[str]) -> pd.Series:
    """The label values of ``rows``: the target's, or every rater's (stacked)."""
    if target is not None:
        return frame.loc[rows, target]
    return pd.concat([frame.loc[rows, c] for c in annotations], ignore_index=True).dropna()


def rater_notes(ds: Any, annotations: list[str], target: str | None, comments: dict[str, str],
                facts: list[str]) -> None:
    """What the proposal says about its raters: the comment on ``dataset.annotations`` and a
    fact per group (raters per row, pairwise disagreement, the noise it implies)."""
    if not annotations:
        return
    splits = [s for s in (ds.pool, ds.val, ds.test) if s is not None and s.votes is not None]
    votes = np.concatenate([s.votes for s in splits])
    g = np.concatenate([s.g for s in splits])
    per = group_rater_measures(votes, g, len(ds.groups), len(ds.classes))
    shown = "; ".join(
        f"{grp}: {per['rater_count'][j]:.1f} raters per row, disagreement "
        f"{per['rater_disagreement'][j]:.3f} (noise {per['rater_noise'][j]:.3f}, floor "
        f"{per['rater_floor'][j]:.3f})" for j, grp in enumerate(ds.groups))
    facts.append(f"raters ({len(annotations)} columns: {', '.join(annotations)}): {shown}")
    comments["dataset.annotations"] = (
        f"one column per rater ({len(annotations)}): "
        + ("the target is their majority label (a tie: a fair coin per row, the same on every "
           "run); " if target is None else
           "the target column wins (members train and are scored on it); ")
        + "how often two raters disagree measures each group's label noise and the error "
          "floor it implies (report: three measures of difficulty)")


__all__ = ["check_annotations", "label_rows", "label_values", "label_words", "rater_notes"]
