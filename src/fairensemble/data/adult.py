"""UCI Adult (Census Income) as a two-class table (``dataset.kind: adult``), bundled with the
package.

``adult.data`` is the pool (a validation split is carved from it when ``val_fraction`` > 0) and
``adult.test`` the test split: UCI's own split. Target: income > 50K (classes ``<=50K``,
``>50K``); group: ``sex`` or ``race``. The sampling weight ``fnlwgt`` is not a feature; ``?``
is read as missing. The test file's first line (``|1x3 Cross validator``) and its labels ending
in a dot (``<=50K.``) are handled.

Without ``root`` the copy shipped inside the package is read: both files gzip-compressed
(``data/bundled/``, licence CC BY 4.0, Becker & Kohavi 1996, see ``ADULT-LICENSE.txt``), each
checked against its sha256 before use. With ``root`` the folder's ``adult.data`` and
``adult.test`` are read (plain or ``.gz``).

``python -m fairensemble.data.adult --csv census.csv`` writes the rows as a plain CSV with a
header, the starting point of the README's "your own data" example.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import Field

from fairensemble.common.errors import DataError
from fairensemble.common.schema import NonNegativeInt, Strict
from fairensemble.data.base import Dataset
from fairensemble.data.registry import register

if TYPE_CHECKING:
    import pandas as pd

BUNDLED = Path(__file__).resolve().parent / "bundled"
# sha256 of the bundled files' bytes: a changed or truncated copy stops with one line
BUNDLED_SHA256 = {
    "adult.data.gz": "c7a2b4716a97f930123e0baf879188d701e798172631a654fc703d4b082907f3",
    "adult.test.gz": "8a2c1bffa6e7ce5abfa43881ae5e87c4311ebc2b3cd526c9c40a43f19f06f799",
}
FILES = ("adult.data", "adult.test")
COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
]
GROUPS = {
    "sex": ["Male", "Female"],
    "race": ["White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"],
}
CLASSES = ("<=50K", ">50K")


class AdultData(Strict):
    """UCI Adult (``adult.data`` + ``adult.test``): the copy bundled with the package, or the
    files in ``root``."""

    kind: Literal["adult"] = "adult"
    """The data source (this section's name)."""
    root: str | None = None
    """A folder with adult.data and adult.test (default: the copy bundled with fairensemble)."""
    group: Literal["sex", "race"] | list[Literal["sex", "race"]] = "sex"
    """The group attribute: sex or race, or both (intersectional groups)."""
    groups: list[str] | None = None
    """Keep only these groups, in this order."""
    min_group_size: NonNegativeInt = 0
    """Groups with fewer rows are merged into 'other'."""
    group_as_feature: bool = False
    """Give the model the group column(s) as features too."""
    impute: Literal["median", "drop"] = "median"
    """Missing feature values: imputed from the training draw, or the row dropped."""
    val_fraction: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """Share of adult.data carved out as a validation split (0: none)."""


def files(root: str | Path | None) -> list[Path]:
    """The paths of ``adult.data`` and ``adult.test``: the bundled copy (checksums verified)
    when ``root`` is None, else the folder's own (``.gz`` accepted)."""
    if root is None:
        paths = [BUNDLED / f"{name}.gz" for name in FILES]
        for path in paths:
            _verify(path)
        return paths
    folder = Path(root).expanduser()
    out = []
    for name in FILES:
        candidates = [folder / name, folder / f"{name}.gz"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise DataError(f"{folder / name}: file not found (UCI Adult needs adult.data and "
                            f"adult.test in dataset.root)")
        out.append(found)
    return out


def _verify(path: Path) -> None:
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as err:
        raise DataError(f"{path}: bundled UCI Adult file cannot be read ({err.strerror}); "
                        "reinstall fairensemble") from None
    if digest != BUNDLED_SHA256[path.name]:
        raise DataError(f"{path}: bundled UCI Adult file does not match its checksum (changed "
                        "or truncated); reinstall fairensemble")


def read_file(path: Path) -> pd.DataFrame:
    """One of the two files as a frame with ``COLUMNS``; ``income`` without the test file's
    trailing dot."""
    import pandas as pd

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        first = fh.readline()
    frame = pd.read_csv(
        path, header=None, skiprows=1 if first.startswith("|") else 0, skipinitialspace=True,
        na_values="?", keep_default_na=False,
    )
    if frame.shape[1] != len(COLUMNS):
        raise DataError(f"{path}: expected {len(COLUMNS)} comma-separated columns, "
                        f"got {frame.shape[1]}")
    frame.columns = COLUMNS
    income = frame["income"].astype(str).str.rstrip(".")
    bad = ~income.isin(CLASSES)
    if bad.any():
        raise DataError(
            f"{path}: column 'income' expected '<=50K' or '>50K', got {income[bad].iloc[0]!r}")
    frame["income"] = income.astype(object)
    return frame


def load(cfg: AdultData, seed: int) -> Dataset:
    """Pool (adult.data), optional val carved from it, and test (adult.test)."""
    import pandas as pd

    from fairensemble.data.tabular import TableData, assemble

    data_path, test_path = files(cfg.root)
    data, test = read_file(data_path), read_file(test_path)
    frame = pd.concat([data, test], ignore_index=True)
    fixed = np.array(["train"] * len(data) + ["test"] * len(test), dtype=object)
    default_groups = GROUPS[cfg.group] if isinstance(cfg.group, str) else None
    spec = TableData(
        path=str(data_path), target="income", group=cfg.group,
        groups=cfg.groups if cfg.groups is not None else default_groups,
        min_group_size=cfg.min_group_size, drop=["fnlwgt"], group_as_feature=cfg.group_as_feature,
        impute=cfg.impute, val_fraction=cfg.val_fraction,
    )
    source = "the bundled UCI Adult" if cfg.root is None else str(Path(cfg.root).expanduser())
    dataset = assemble(frame, spec, seed, source=source, fixed=fixed)
    dataset.info["files"] = [str(data_path), str(test_path)]
    return dataset


def main(argv: list[str] | None = None) -> int:
    """Write the bundled rows as a CSV with a header (``--split``: data, test or all)."""
    parser = argparse.ArgumentParser(
        prog="python -m fairensemble.data.adult",
        description="Write the bundled UCI Adult rows as a plain CSV with a header.")
    parser.add_argument("--csv", required=True, type=Path, help="CSV file to write")
    parser.add_argument("--split", choices=("data", "test", "all"), default="data",
                        help="adult.data (default), adult.test, or both")
    args = parser.parse_args(argv)
    import pandas as pd

    data_path, test_path = files(None)
    chosen = {"data": [data_path], "test": [test_path], "all": [data_path, test_path]}
    frame = pd.concat([read_file(p) for p in chosen[args.split]], ignore_index=True)
    frame.to_csv(args.csv, index=False)
    print(f"wrote {args.csv}: {len(frame):,} rows, {frame.shape[1]} columns", file=sys.stderr)
    return 0


register(AdultData, load)

if __name__ == "__main__":
    sys.exit(main())
