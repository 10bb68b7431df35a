"""CheXpert (``CheXpert-v1.0`` or ``-small``) as a two-group binary task (``kind: chexpert``).

``root`` is the published folder holding ``train.csv``, ``valid.csv``, ``train/`` and
``valid/``. ``Path`` values begin with that folder's own name
(``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``); the first component is
dropped and the rest resolved under ``root``, so a renamed folder still works.

Both CSVs together form the universe, split by patient (``patientNNNNN`` in the path) into
pool / val / test with ``val_fraction`` / ``test_fraction`` of the patients (seeded; the
patient is the ``subject``, so no patient is in two splits; stratified by the group x class of
the patient's first row). Rows are kept when ``Frontal/Lateral`` is ``Frontal``
(``frontal_only``) and the ``group`` column's value is one of ``groups``; others (``Unknown``
sex, say) are dropped, counted in ``info["dropped"]`` and logged. The class is ``target``:
1.0 -> 1, 0.0 and blank -> 0, -1.0 (uncertain) -> 0 / 1 / dropped as ``uncertain`` says. A
thin layer: the CSVs become a table with one image per row, and the ``images`` source's
pipeline does the rest (``max_pool`` / ``max_test`` caps, grayscale decoding resized without a
crop, the cache).
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import Field

from fairensemble.common.errors import DataError
from fairensemble.data.base import Dataset
from fairensemble.data.images import ImageOptions, ImagesData, from_frame
from fairensemble.data.registry import register

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

CSV_FILES = ("train.csv", "valid.csv")


class CheXpertData(ImageOptions):
    """CheXpert (``CheXpert-v1.0`` or ``-small``) in its published layout."""

    kind: Literal["chexpert"] = "chexpert"
    """The data source (this section's name)."""
    root: str
    """The published folder holding train.csv, valid.csv, train/ and valid/."""
    target: str = "Lung Opacity"
    """The finding to predict."""
    group: str = "Sex"
    """The column holding the group."""
    groups: list[str] = ["Female", "Male"]
    """The groups kept (other values are dropped)."""
    uncertain: Literal["zeros", "ones", "drop"] = "zeros"
    """Uncertain labels (-1) become 0, 1, or drop the row."""
    frontal_only: bool = True
    """Keep frontal views only."""
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    """Share of patients in the validation split."""
    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    """Share of patients in the test split."""


def read_table(cfg: CheXpertData) -> tuple[pd.DataFrame, dict[str, int]]:
    """Kept rows (``file`` relative to ``root``, ``patient``, the ``target`` finding's class
    name and the ``group`` column's value under their own names, ``csv``) and the number of
    dropped rows per reason (rows of groups not in ``groups`` are kept here and counted: the
    images pipeline leaves them out)."""
    import pandas as pd

    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: CheXpert folder not found (dataset.root)")
    if len(cfg.groups) < 2 or len(set(cfg.groups)) != len(cfg.groups):
        raise DataError(f"dataset.groups: expected at least two distinct values, got {cfg.groups}")
    table = pd.concat([_read_csv(root / name, cfg) for name in CSV_FILES], ignore_index=True)
    dropped: dict[str, int] = {}
    keep = np.ones(len(table), dtype=bool)
    if cfg.frontal_only:
        lateral = table["view"].to_numpy() != "Frontal"
        dropped["not frontal"] = int(lateral.sum())
        keep &= ~lateral
    group_values = table["group"].to_numpy()
    # rows of other groups stay in the table: the images pipeline drops them (`groups`), and
    # its messages then list every value the column holds
    other = keep & ~np.isin(group_values, cfg.groups)
    for value, n in pd.Series(group_values[other]).value_counts(sort=False).items():
        label = value if value != "" else "<blank>"
        dropped[f"{cfg.group}={label}"] = int(n)
        log.info("CheXpert: dropped %d rows with %s=%s", n, cfg.group, label)
    target = table["target"].to_numpy()
    uncertain = keep & ~other & (target == -1)
    if cfg.uncertain == "drop":
        dropped["uncertain"] = int(uncertain.sum())
        keep &= ~uncertain
    y = np.where(target == -1, 1 if cfg.uncertain == "ones" else 0, target).astype(np.int64)
    classes = np.array([f"no {cfg.target}", cfg.target], dtype=object)
    out = pd.DataFrame({
        "file": table["file"].to_numpy(),
        "patient": table["patient"].to_numpy(),
        cfg.target: classes[y],
        cfg.group: group_values,
        "csv": table["csv"].to_numpy(),
    })[keep].reset_index(drop=True)
    return out, dropped


def as_images(cfg: CheXpertData) -> ImagesData:
    """The ``images`` config this source amounts to."""
    root = Path(cfg.root).expanduser().resolve()
    options = cfg.model_dump(include=set(ImageOptions.model_fields))
    return ImagesData(path=str(root / CSV_FILES[0]), image="file", roots=[str(root)],
                      target=cfg.target, positive=cfg.target, group=cfg.group, groups=cfg.groups,
                      subject="patient", val_fraction=cfg.val_fraction,
                      test_fraction=cfg.test_fraction, color="gray", fit="resize", **options)


def load(cfg: CheXpertData, seed: int) -> Dataset:
    """Patient-level pool / val / test splits, images decoded to uint8 [n, 1, s, s]."""
    table, dropped = read_table(cfg)
    root = Path(cfg.root).expanduser()
    return from_frame(table, as_images(cfg), seed, source=str(root / CSV_FILES[0]),
                      info={"root": str(root), "target": cfg.target, "group": cfg.group,
                            "uncertain": cfg.uncertain,
                            "n_rows": int(len(table) + sum(dropped.values())),
                            "dropped": dropped})


# ----------------------------------------------------------------------------- parsing


def _read_csv(path: Path, cfg: CheXpertData) -> pd.DataFrame:
    """Columns file (relative to the folder), patient, view, group, target (1, 0, -1; blank ->
    0), csv."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{path}: CheXpert file not found")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        why = " ".join(str(err).split())
        raise DataError(f"{path}: not a readable CSV ({why})") from None
    needed = {
        "Path": "dataset.root layout", cfg.target: "dataset.target", cfg.group: "dataset.group"
    }
    if cfg.frontal_only:
        needed["Frontal/Lateral"] = "dataset.frontal_only"
    for col, field in needed.items():
        if col not in raw.columns:
            raise DataError(f"{path}: missing column {col!r} ({field})")

    rel = raw["Path"].str.strip()
    files, patients = [], []
    for i, p in enumerate(rel):
        parts = PurePosixPath(p).parts
        if parts and parts[0] not in ("train", "valid"):
            parts = parts[1:]  # the published folder's own name
        files.append(str(PurePosixPath(*parts)) if parts else "")
        pid = next((s for s in parts if s.startswith("patient") and s[7:].isdigit()), None)
        if pid is None:
            raise DataError(f"{path}: line {i + 2}: Path {p!r} has no patientNNNNN component")
        patients.append(pid)

    text = raw[cfg.target].str.strip()
    target = pd.to_numeric(text.where(text != "", "0"), errors="coerce")
    bad = target.isna() | ~target.isin((-1.0, 0.0, 1.0))
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise DataError(
            f"{path}: line {i + 2}: column {cfg.target!r} should be 1.0, 0.0, -1.0 or blank,"
            f" got {raw[cfg.target].iloc[i]!r}"
        )
    return pd.DataFrame(
        {
            "file": files,
            "patient": patients,
            "view": raw["Frontal/Lateral"].str.strip() if "Frontal/Lateral" in raw else "",
            "group": raw[cfg.group].str.strip(),
            "target": target.to_numpy().astype(np.int64),
            "csv": path.name,
        }
    )


register(CheXpertData, load)
