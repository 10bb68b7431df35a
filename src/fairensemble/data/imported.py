"""Predictions made elsewhere as a data source (``kind: imported``): what ``fairensemble analyze``
read, recorded in the run's config. There is nothing to train: its loader says so.

The section names the file and the columns the predictions came from (or ``format: arrays``
for arrays handed over in Python), the members in their order, and whether logits were turned
into probabilities. A grid column of the file is a coordinate of the run: its value at a grid
point is held here under the column's name (``grid: {dataset.arch: [a, b]}`` with ``arch`` a
column), as a filter of the file's rows, so the section takes keys beyond its own fields.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict

from fairensemble.common.errors import DataError
from fairensemble.common.schema import Strict
from fairensemble.data.base import Dataset
from fairensemble.data.registry import register


class ImportedData(Strict):
    """Member predictions read by ``fairensemble analyze``."""

    # grid columns' values at a grid point ride along as extra keys
    model_config = ConfigDict(extra="allow")

    kind: Literal["imported"] = "imported"
    """The data source (this section's name)."""
    path: str | None = None
    """The predictions file read (none: arrays handed over in Python)."""
    format: Literal["long", "npz", "arrays"] = "long"
    """What was read: a long-form table, an .npz, or arrays."""
    sha256: str | None = None
    """The file's sha256, when one was read."""
    members: list[str] = []
    """The members' names, in the order of the cells' member axis."""
    group: list[str] = []
    """The group columns read."""
    probs: list[str] = []
    """The probability (or logit) columns read."""
    logits: bool = False
    """A softmax (a sigmoid for one p column) was applied."""
    ratio: Literal["column", "test_share"] = "test_share"
    """Where the mix coordinate comes from: the file's ratio column, or the ratio group's share of
    the test samples."""

    def describe(self) -> str:
        """Where the predictions came from, in words (the report)."""
        where = self.path or "arrays handed to fairensemble.analyze"
        how = ", logits turned into probabilities" if self.logits else ""
        mix = ("" if self.ratio == "column" else "; the training mix is not known: the mix "
               "coordinate is the ratio group's share of the test samples")
        return f"{len(self.members)} members' predictions imported from {where}{how}{mix}"


def load_imported(cfg: ImportedData, seed: int) -> Dataset:
    where = cfg.path or "arrays handed to fairensemble.analyze"
    raise DataError(f"dataset.kind: 'imported': this run holds member predictions imported "
                    f"from {where} by `fairensemble analyze`; there is nothing to train. "
                    "Rebuild its outputs with `fairensemble report RUN_DIR`, or import again "
                    "with `fairensemble analyze`")


register(ImportedData, load_imported)
