"""CelebA in its official layout as a two-group binary task (``dataset.kind: celeba``).

``root`` holds ``img_align_celeba/*.jpg`` (the Kaggle copy's nested
``img_align_celeba/img_align_celeba/`` also works), ``list_attr_celeba.txt`` (line 1: the image
count; line 2: the 40 attribute names; then ``file v1 ... v40`` with -1/1 values in
space-aligned columns) and ``list_eval_partition.txt`` (``file split``, 0/1/2 = train / val /
test, used as pool / val / test). The class is ``target`` (-1 -> 0 "no <target>", 1 -> 1
"<target>") and the group is ``group``, whose -1 and 1 take the names in ``groups`` (default
female, male for Male, else not_<group>, <group>). A thin layer: the two label files become a
table with one image per row, and the ``images`` source's pipeline does the rest (``max_pool``
and ``max_test`` caps, decoding with a centre crop to a square, the cache).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from fairensemble.common.errors import DataError
from fairensemble.data.base import Dataset
from fairensemble.data.images import ImageOptions, ImagesData, from_frame
from fairensemble.data.registry import register

if TYPE_CHECKING:
    import pandas as pd

ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
SPLIT_NAMES = ("train", "val", "test")  # list_eval_partition.txt's 0 / 1 / 2


class CelebAData(ImageOptions):
    """CelebA in its official layout (see the module docstring)."""

    kind: Literal["celeba"] = "celeba"
    """The data source (this section's name)."""
    root: str
    """The folder with img_align_celeba/, list_attr_celeba.txt and list_eval_partition.txt."""
    target: str = "Blond_Hair"
    """The attribute to predict."""
    group: str = "Male"
    """The attribute whose -1 / 1 are the two groups."""
    groups: list[str] | None = None
    """Names of the group attribute's -1 and 1 (default: female, male for Male)."""

    @property
    def group_names(self) -> list[str]:
        if self.groups is not None:
            return list(self.groups)
        return ["female", "male"] if self.group == "Male" else [f"not_{self.group}", self.group]


def read_table(cfg: CelebAData) -> pd.DataFrame:
    """One row per image: ``file`` (its name under the image folder), the ``target`` attribute's
    class name, the ``group`` attribute's group name and ``split`` (train / val / test), in
    the order of the attribute file (columns named after the attributes, so messages do)."""
    import pandas as pd

    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: CelebA root folder not found (dataset.root)")
    if len(cfg.group_names) != 2 or len(set(cfg.group_names)) != 2:
        raise DataError(f"dataset.groups: expected two distinct names, got {cfg.group_names}")
    if cfg.target == cfg.group:
        raise DataError(f"dataset.target and dataset.group are both {cfg.target!r}")
    attrs = _read_attributes(root / ATTR_FILE, [cfg.target, cfg.group])
    split = _read_partition(root / PARTITION_FILE, attrs["file"])
    classes = np.array(_classes(cfg), dtype=object)
    return pd.DataFrame(
        {
            "file": attrs["file"].to_numpy(),
            cfg.target: classes[(attrs[cfg.target].to_numpy() == 1).astype(np.int64)],
            cfg.group: np.array(cfg.group_names, dtype=object)[
                (attrs[cfg.group].to_numpy() == 1).astype(np.int64)],
            "split": np.asarray(SPLIT_NAMES, dtype=object)[split],
        }
    )


def image_folder(root: Path) -> Path:
    """``img_align_celeba``, or the Kaggle copy's nested ``img_align_celeba/img_align_celeba``."""
    folder = root / "img_align_celeba"
    return folder / "img_align_celeba" if (folder / "img_align_celeba").is_dir() else folder


def as_images(cfg: CelebAData) -> ImagesData:
    """The ``images`` config this source amounts to."""
    root = Path(cfg.root).expanduser().resolve()
    options = cfg.model_dump(include=set(ImageOptions.model_fields))
    return ImagesData(path=str(root / ATTR_FILE), image="file", roots=[str(image_folder(root))],
                      target=cfg.target, positive=cfg.target, group=cfg.group,
                      groups=cfg.group_names, split="split", color="rgb", fit="crop",
                      **options)


def load(cfg: CelebAData, seed: int) -> Dataset:
    """CelebA's official pool / val / test splits, images decoded to uint8 [n, 3, s, s]."""
    table = read_table(cfg)
    root = Path(cfg.root).expanduser()
    return from_frame(table, as_images(cfg), seed, source=str(root / ATTR_FILE),
                      info={"root": str(root), "target": cfg.target, "group": cfg.group,
                            "n_images": len(table), "dropped": {}})


# ----------------------------------------------------------------------------- parsing


def _read_attributes(path: Path, wanted: list[str]) -> pd.DataFrame:
    import pandas as pd

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
    import pandas as pd

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


register(CelebAData, load)
