"""CelebA in its official layout as a two-group binary task (``dataset.kind: celeba``).

``root`` holds ``img_align_celeba/*.jpg`` (the Kaggle copy's nested
``img_align_celeba/img_align_celeba/`` also works), ``list_attr_celeba.txt`` (line 1: the image
count; line 2: the 40 attribute names; then ``file v1 ... v40`` with -1/1 values in
space-aligned columns) and ``list_eval_partition.txt`` (``file split``, 0/1/2 = train / val /
test, used as pool / val / test). The class is ``target`` (-1 -> 0 "no <target>", 1 -> 1
"<target>") and the group is ``group``, whose -1 and 1 take the names in ``groups`` (default
female, male for Male, else not_<group>, <group>). ``max_pool`` and ``max_test`` (also
applied to val) cap the splits by a seeded subsample stratified by group x label. Images
are centre-cropped to a square, resized to ``image_size`` and cached decoded (see
``images.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import CelebAData
from .base import DataError, Dataset, Split
from .images import IMAGENET_MEAN, IMAGENET_STD, decode_cached, rng_for, stratified_subsample

ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
SPLITS = ("pool", "val", "test")


def read_table(cfg: CelebAData) -> pd.DataFrame:
    """One row per image: ``file`` (path), ``y`` (class code), ``g`` (group code) and
    ``split`` (pool / val / test), in the order of the attribute file."""
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: CelebA root folder not found (dataset.root)")
    if len(cfg.group_names) != 2 or len(set(cfg.group_names)) != 2:
        raise DataError(f"dataset.groups: expected two distinct names, got {cfg.group_names}")
    if cfg.target == cfg.group:
        raise DataError(f"dataset.target and dataset.group are both {cfg.target!r}")
    attrs = _read_attributes(root / ATTR_FILE, [cfg.target, cfg.group])
    split = _read_partition(root / PARTITION_FILE, attrs["file"])
    img_dir = root / "img_align_celeba"
    if (img_dir / "img_align_celeba").is_dir():
        img_dir = img_dir / "img_align_celeba"
    return pd.DataFrame(
        {
            "file": [str(img_dir / f) for f in attrs["file"]],
            "y": (attrs[cfg.target].to_numpy() == 1).astype(np.int64),
            "g": (attrs[cfg.group].to_numpy() == 1).astype(np.int64),
            "split": np.asarray(SPLITS)[split],
        }
    )


def load(cfg: CelebAData, seed: int) -> Dataset:
    """CelebA's official pool / val / test splits, images decoded to uint8 [n, 3, s, s]."""
    table = read_table(cfg)
    parts: dict[str, pd.DataFrame] = {}
    for name in SPLITS:
        part = table[table["split"] == name]
        cap = cfg.max_pool if name == "pool" else cfg.max_test
        keep = stratified_subsample(
            part["y"].to_numpy(), part["g"].to_numpy(), cap, rng_for(seed, "celeba", name)
        )
        parts[name] = part.iloc[keep]
        _check_groups(parts[name], name, cfg.group_names, Path(cfg.root) / PARTITION_FILE)
    used = pd.concat(parts.values())
    X = decode_cached(
        used["file"].tolist(),
        size=cfg.image_size,
        mode="RGB",
        fit="crop",
        cache_dir=cfg.cache_dir,
        num_workers=cfg.num_workers,
        listed_in=ATTR_FILE,
    )
    splits: dict[str, Split] = {}
    start = 0
    for name, part in parts.items():
        stop = start + len(part)
        splits[name] = Split(X[start:stop], part["y"].to_numpy(), part["g"].to_numpy())
        start = stop
    return Dataset(
        groups=list(cfg.group_names),
        classes=_classes(cfg),
        pool=splits["pool"],
        val=splits["val"],
        test=splits["test"],
        input_kind="image",
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
        info=_info(cfg, table, parts, str(X.filename)),
    )


# ----------------------------------------------------------------------------- parsing


def _read_attributes(path: Path, wanted: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: CelebA attribute file not found")
    with open(path) as fh:
        first, second = fh.readline(), fh.readline()
    try:
        count = int(first.strip())
    except ValueError:
        got = first.strip()
        raise DataError(f"{path}: line 1 should be the image count, got {got!r}") from None
    names = second.split()
    if not names:
        raise DataError(f"{path}: line 2 should list the attribute names, got an empty line")
    for attr, field in zip(wanted, ("target", "group")):
        if attr not in names:
            some = ", ".join(n for n in ("Blond_Hair", "Male", "Smiling", "Young") if n in names)
            raise DataError(
                f"{path}: unknown attribute {attr!r} (dataset.{field}); valid names include "
                f"{some or ', '.join(names[:4])} ({len(names)} in all)"
            )
    table = pd.read_csv(
        path, sep=r"\s+", skiprows=2, header=None, names=["file", *names], dtype={"file": str},
        engine="c",
    )
    if len(table) != count:
        raise DataError(f"{path}: line 1 says {count} images but {len(table)} rows follow")
    values = table[names]
    bad_rows = values.isna().any(axis=1).to_numpy()
    if bad_rows.any():
        line = int(np.argmax(bad_rows)) + 3
        raise DataError(f"{path}: line {line}: expected a file name and {len(names)} values")
    for attr in wanted:
        col = table[attr].to_numpy()
        if not np.isin(col, (-1, 1)).all():
            line = int(np.argmax(~np.isin(col, (-1, 1)))) + 3
            raise DataError(f"{path}: line {line}: attribute {attr!r} should be -1 or 1")
    if table["file"].duplicated().any():
        dup = table["file"][table["file"].duplicated()].iloc[0]
        raise DataError(f"{path}: image {dup} is listed twice")
    return table[["file", *wanted]]


def _read_partition(path: Path, files: pd.Series) -> np.ndarray:
    """Split codes (0 / 1 / 2) for ``files``, from the partition file."""
    if not path.is_file():
        raise DataError(f"{path}: CelebA partition file not found")
    part = pd.read_csv(
        path, sep=r"\s+", header=None, names=["file", "split"], dtype={"file": str}, engine="c"
    )
    if part["split"].isna().any() or not part["split"].isin((0, 1, 2)).all():
        bad = part.index[part["split"].isna() | ~part["split"].isin((0, 1, 2))][0]
        raise DataError(f"{path}: line {bad + 1}: expected 'file split' with split 0, 1 or 2")
    codes = pd.Series(part["split"].to_numpy(), index=part["file"].to_numpy())
    codes = codes[~codes.index.duplicated()]
    aligned = codes.reindex(files.to_numpy())
    if aligned.isna().any():
        missing = files.to_numpy()[aligned.isna().to_numpy()][0]
        raise DataError(f"{path}: no split for image {missing} (listed in {ATTR_FILE})")
    return aligned.to_numpy().astype(np.int64)


def _classes(cfg: CelebAData) -> list[str]:
    return [f"no {cfg.target}", cfg.target]


def _check_groups(part: pd.DataFrame, split: str, groups: list[str], source: Path) -> None:
    counts = np.bincount(part["g"].to_numpy(), minlength=2)
    for code, name in enumerate(groups):
        if counts[code] == 0:
            raise DataError(f"{source}: group {name!r} has no samples in the {split} split")


def _info(
    cfg: CelebAData, table: pd.DataFrame, parts: dict[str, pd.DataFrame], cache: str
) -> dict:
    counts = {
        name: {
            grp: {
                cls: int(((part["g"] == gi) & (part["y"] == ci)).sum())
                for ci, cls in enumerate(_classes(cfg))
            }
            for gi, grp in enumerate(cfg.group_names)
        }
        for name, part in parts.items()
    }
    return {
        "source": "celeba",
        "root": str(Path(cfg.root).expanduser()),
        "target": cfg.target,
        "group": cfg.group,
        "n_images": len(table),
        "n_used": int(sum(len(p) for p in parts.values())),
        "counts": counts,
        "dropped": {},
        "cache": cache,
        "image_roots": [str(Path(table["file"].iloc[0]).parent)],  # read by every unit
    }
