"""CheXpert (``CheXpert-v1.0`` or ``-small``) as a two-group binary task (``kind: chexpert``).

``root`` is the published folder holding ``train.csv``, ``valid.csv``, ``train/`` and
``valid/``. ``Path`` values begin with that folder's own name
(``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``); the first component is
dropped and the rest resolved under ``root``, so a renamed folder still works.

Both CSVs together form the universe, split by patient (``patientNNNNN`` in the path) into
pool / val / test with ``val_fraction`` / ``test_fraction`` of the patients (seeded, so no
patient is in two splits; stratified by the patient's ``group`` value). Rows are kept when
``Frontal/Lateral`` is ``Frontal`` (``frontal_only``) and the ``group`` column's value is one
of ``groups``; others (``Unknown`` sex, say) are dropped, counted in ``info["dropped"]`` and
logged. The class is ``target``: 1.0 -> 1, 0.0 and blank -> 0, -1.0 (uncertain) -> 0 / 1 /
dropped as ``uncertain`` says. ``max_pool`` and ``max_test`` (also applied to val) cap the
splits by a seeded subsample stratified by group x label. Images are decoded grayscale,
resized to ``image_size`` (no crop) and cached (see ``images.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ..config import CheXpertData
from .base import DataError, Dataset, Split
from .images import GRAY_MEAN, GRAY_STD, decode_cached, rng_for, stratified_subsample

log = logging.getLogger(__name__)

CSV_FILES = ("train.csv", "valid.csv")
SPLITS = ("pool", "val", "test")


def read_table(cfg: CheXpertData, seed: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """Kept rows (``file``, ``patient``, ``y``, ``g``, ``split``, ``csv``) and the number of
    dropped rows per reason."""
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: CheXpert folder not found (dataset.root)")
    if len(cfg.groups) < 2 or len(set(cfg.groups)) != len(cfg.groups):
        raise DataError(f"dataset.groups: expected at least two distinct values, got {cfg.groups}")
    if cfg.val_fraction + cfg.test_fraction >= 1.0:
        raise DataError(
            "dataset.val_fraction + dataset.test_fraction: expected < 1, got "
            f"{cfg.val_fraction + cfg.test_fraction:g}"
        )
    table = pd.concat([_read_csv(root / name, cfg) for name in CSV_FILES], ignore_index=True)
    split = _patient_split(table["patient"].to_numpy(), table["group"].to_numpy(), cfg, seed)

    dropped: dict[str, int] = {}
    keep = np.ones(len(table), dtype=bool)
    if cfg.frontal_only:
        lateral = table["view"].to_numpy() != "Frontal"
        dropped["not frontal"] = int(lateral.sum())
        keep &= ~lateral
    group_values = table["group"].to_numpy()
    other = keep & ~np.isin(group_values, cfg.groups)
    for value, n in pd.Series(group_values[other]).value_counts(sort=False).items():
        label = value if value != "" else "<blank>"
        dropped[f"{cfg.group}={label}"] = int(n)
        log.info("CheXpert: dropped %d rows with %s=%s", n, cfg.group, label)
    keep &= ~other
    target = table["target"].to_numpy()
    uncertain = keep & (target == -1)
    if cfg.uncertain == "drop":
        dropped["uncertain"] = int(uncertain.sum())
        keep &= ~uncertain
    y = np.where(target == -1, 1 if cfg.uncertain == "ones" else 0, target).astype(np.int64)
    code_of = {name: code for code, name in enumerate(cfg.groups)}
    g = np.array([code_of.get(v, -1) for v in group_values], dtype=np.int64)
    out = pd.DataFrame(
        {
            "file": table["file"].to_numpy(),
            "patient": table["patient"].to_numpy(),
            "y": y,
            "g": g,
            "split": np.asarray(SPLITS)[split],
            "csv": table["csv"].to_numpy(),
        }
    )[keep].reset_index(drop=True)
    return out, dropped


def load(cfg: CheXpertData, seed: int) -> Dataset:
    """Patient-level pool / val / test splits, images decoded to uint8 [n, 1, s, s]."""
    table, dropped = read_table(cfg, seed)
    parts: dict[str, pd.DataFrame] = {}
    for name in SPLITS:
        part = table[table["split"] == name]
        cap = cfg.max_pool if name == "pool" else cfg.max_test
        keep = stratified_subsample(
            part["y"].to_numpy(), part["g"].to_numpy(), cap, rng_for(seed, "chexpert", name)
        )
        parts[name] = part.iloc[keep]
        counts = np.bincount(parts[name]["g"].to_numpy(), minlength=len(cfg.groups))
        for code, grp in enumerate(cfg.groups):
            if counts[code] == 0:
                raise DataError(
                    f"{Path(cfg.root) / CSV_FILES[0]}: group {grp!r} ({cfg.group}) has no"
                    f" samples in the {name} split"
                )
    used = pd.concat(parts.values())
    X = decode_cached(
        used["file"].tolist(),
        size=cfg.image_size,
        mode="L",
        fit="resize",
        cache_dir=cfg.cache_dir,
        num_workers=cfg.num_workers,
        listed_in=" / ".join(CSV_FILES),
    )
    splits: dict[str, Split] = {}
    start = 0
    for name, part in parts.items():
        stop = start + len(part)
        splits[name] = Split(X[start:stop], part["y"].to_numpy(), part["g"].to_numpy())
        start = stop
    classes = [f"no {cfg.target}", cfg.target]
    info = {
        "source": "chexpert",
        "root": str(Path(cfg.root).expanduser()),
        "target": cfg.target,
        "group": cfg.group,
        "uncertain": cfg.uncertain,
        "n_rows": int(len(table) + sum(dropped.values())),
        "n_used": len(used),
        "patients": {name: int(part["patient"].nunique()) for name, part in parts.items()},
        "counts": {
            name: {
                grp: {
                    cls: int(((part["g"] == gi) & (part["y"] == ci)).sum())
                    for ci, cls in enumerate(classes)
                }
                for gi, grp in enumerate(cfg.groups)
            }
            for name, part in parts.items()
        },
        "dropped": dropped,
        "cache": str(X.filename),
        "image_roots": [str(Path(cfg.root).expanduser())],  # read by every unit
    }
    return Dataset(
        groups=list(cfg.groups),
        classes=classes,
        pool=splits["pool"],
        val=splits["val"],
        test=splits["test"],
        input_kind="image",
        image_mean=GRAY_MEAN,
        image_std=GRAY_STD,
        info=info,
    )


# ----------------------------------------------------------------------------- parsing


def _read_csv(path: Path, cfg: CheXpertData) -> pd.DataFrame:
    """Columns file, patient, view, group, target (float: 1, 0, -1; blank -> 0), csv."""
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

    root = path.parent
    rel = raw["Path"].str.strip()
    files, patients = [], []
    for i, p in enumerate(rel):
        parts = PurePosixPath(p).parts
        if parts and parts[0] not in ("train", "valid"):
            parts = parts[1:]  # the published folder's own name
        files.append(str(root.joinpath(*parts)))
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


def _patient_split(
    patients: np.ndarray, group_values: np.ndarray, cfg: CheXpertData, seed: int
) -> np.ndarray:
    """Split code per row (0 pool, 1 val, 2 test), drawn per patient over all rows, stratified
    by the patient's group value (that of its first row): each stratum gives round(fraction x
    its patients) to test and to val, at least one each when it has three or more."""
    unique, first, inverse = np.unique(patients, return_index=True, return_inverse=True)
    stratum = group_values[first]
    rng = rng_for(seed, "chexpert", "patients")
    code = np.zeros(len(unique), dtype=np.int64)
    for value in sorted(set(stratum)):
        members = rng.permutation(np.flatnonzero(stratum == value))
        n = len(members)
        n_test = round(cfg.test_fraction * n)
        n_val = round(cfg.val_fraction * n)
        if n >= 3:
            n_test, n_val = max(1, n_test), max(1, n_val)
            while n_test + n_val >= n:
                if n_test >= n_val:
                    n_test -= 1
                else:
                    n_val -= 1
        code[members[:n_test]] = 2
        code[members[n_test : n_test + n_val]] = 1
    return code[inverse]
