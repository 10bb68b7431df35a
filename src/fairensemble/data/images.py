"""Images as a data source (``dataset.kind: images``): a table with one image per row.

The table is any file the shared reader takes (CSV/TSV/text, Parquet, a folder of Parquet
shards). ``image`` names the column that holds each row's image: a file path, a file name or
id looked up under ``roots`` in order (``suffix`` appended when the name has no image
extension), or the encoded image itself (a binary column, or a struct with ``bytes`` and
``path`` as Hugging Face ``datasets`` writes its Image feature). Labels, groups (one column or
several), the ``split`` column or ``subject``-level splits work as for tables
(``frame.py``). Every used image is found and decoded before anything trains: a missing file
stops the run with one line naming the row's id and the folders searched; images that do not
decode are all found in one pass and stop the run with one line that counts them, names the
first few and the file listing every one (``decode.py``: ``images-<key>.unreadable.csv`` in
the cache folder).

``skip_unreadable: true`` leaves them out instead, with a warning that counts them per group
and names that file. The rule: rows are labelled, split and capped as if every image were
readable (the splits depend on the table and the seed only), then the unreadable images are
removed from the split they fell in. So leaving an image out never moves another one, a
repaired image returns to its own split, and a capped split is short by the images it lost.
The decoded cache is keyed by the used images (path, mtime, size) and the decoding settings; it
holds the readable images and its sidecar lists the unreadable ones, so the same config on the
same files always gives the same rows and a second run decodes nothing. A group left without
pool or test images once they are out stops the run with a line that says so.

CelebA and CheXpert are thin layers over ``from_frame``: they turn their label files into
such a table.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import field_validator

from fairensemble.common.errors import DataError, DataWarning
from fairensemble.common.schema import NonNegativeInt, PositiveInt, Strict, column_name
from fairensemble.common.seeds import rng_for
from fairensemble.common.text import preview_names
from fairensemble.data.base import Dataset, Split
from fairensemble.data.decode import (
    GRAY_MEAN,
    GRAY_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Decoded,
    decode_images,
)
from fairensemble.data.frame import (
    LabelledRows,
    check_subjects,
    counts_by_split,
    draw_splits,
    label_rows,
)
from fairensemble.data.reader import read_table
from fairensemble.data.registry import register
from fairensemble.data.sampling import stratified_subsample

if TYPE_CHECKING:
    import pandas as pd

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm", ".dcm")
SPLITS = ("pool", "val", "test")
SHOWN_MISSING = 3  # missing images named in the error line


class ImageOptions(Strict):
    """How images are decoded, cached, augmented and capped (every image source has these)."""

    image_size: PositiveInt = 224
    """Images are decoded to squares of this many pixels."""
    cache_dir: str | None = None
    """Where decoded images are cached (default: $FAIRENSEMBLE_CACHE, else
    ~/.cache/fairensemble)."""
    num_workers: NonNegativeInt = 0
    """Processes that decode images and read their batches (0: this one)."""
    hflip: bool = False
    """Flip training images left-right at random."""
    max_pool: PositiveInt | None = None
    """At most this many pool images, a seeded subsample stratified by group x class."""
    max_test: PositiveInt | None = None
    """At most this many test (and val) images, subsampled the same way."""
    skip_unreadable: bool = False
    """Leave out images that cannot be decoded, with a warning that counts them per group (false:
    stop, listing them all); each stays out of the split it was drawn into."""


class ImagesData(LabelledRows, ImageOptions):
    """A table of images (see the module docstring)."""

    kind: Literal["images"] = "images"
    """The data source (this section's name)."""
    path: str
    """The table with one image per row, or a folder of Parquet shards."""
    image: str
    """The column holding each row's image: a path, a file name or id looked up under roots, or the
    encoded image."""
    roots: list[str] = []
    """Folders searched for image names, in order, relative to the table's folder (default: the
    table's folder)."""
    suffix: str | None = None
    """Appended to names without an image extension, e.g. '.jpg'."""
    color: Literal["rgb", "gray"] = "rgb"
    """Decode to RGB or grayscale."""
    fit: Literal["crop", "resize"] = "crop"
    """Centre-crop to a square, or squash the whole image."""

    @field_validator("image", mode="before")
    @classmethod
    def _numbered(cls, v: Any) -> Any:
        return column_name(v)

    @field_validator("suffix")
    @classmethod
    def _dotted(cls, v: str | None) -> str | None:
        if v is not None and v and not v.startswith("."):
            return f".{v}"
        return v or None


def load(cfg: ImagesData, seed: int) -> Dataset:
    """Read the table, resolve and decode its images, split it into pool / val / test."""
    frame = read_table(cfg.path, cfg.na_values, cfg.header, cfg.columns)
    return from_frame(frame, cfg, seed, source=str(Path(cfg.path).expanduser()))


# ----------------------------------------------------------------------------- finding images


@dataclass
class Found:
    """Each row's image: a path (str) or encoded bytes, or None where it was not found."""

    sources: list[str | bytes | None]
    ids: list[str]  # how a row's image is named in messages
    roots: list[Path]  # the folders searched, in order
    suffix: str | None

    @property
    def missing(self) -> list[int]:
        return [i for i, s in enumerate(self.sources) if s is None]

    def missing_line(self, source: str, column: str) -> str:
        miss = self.missing
        shown = ", ".join(repr(self.ids[i]) for i in miss[:SHOWN_MISSING])
        more = f" and {len(miss) - SHOWN_MISSING:,} more" if len(miss) > SHOWN_MISSING else ""
        where = ", ".join(str(r) for r in self.roots) or "(no folder)"
        suffix = f" with suffix {self.suffix!r}" if self.suffix else ""
        return (f"{source}: {len(miss):,} of {len(self.sources):,} images in column {column!r} "
                f"not found: {shown}{more}; looked in {where}{suffix} (dataset.roots, "
                f"dataset.suffix)")


def table_folder(path: str | Path) -> Path:
    p = _absolute(path)
    return p if p.is_dir() else p.parent


def _absolute(path: str | Path) -> Path:
    """An absolute, normalised path that keeps the user's symlinks (messages show the folders
    as the user named them)."""
    return Path(os.path.abspath(Path(path).expanduser()))


def search_roots(roots: list[str], table: str | Path) -> list[Path]:
    """``roots`` resolved against the table's folder (absolute ones as they are); the table's
    folder itself when none are given."""
    base = table_folder(table)
    if not roots:
        return [base]
    return [_absolute(base / Path(r).expanduser()) for r in roots]


def find_images(values: pd.Series, roots: list[Path], suffix: str | None) -> Found:
    """Each value's image (see the module docstring); None where no file matches."""
    sources: list[str | bytes | None] = []
    ids: list[str] = []
    for row, value in enumerate(values.tolist()):
        path_text: str | None = None
        if isinstance(value, dict):  # Hugging Face's Image feature: {"bytes", "path"}
            data = value.get("bytes")
            path_text = value.get("path")
            if data is not None:
                sources.append(bytes(data))
                ids.append(str(path_text) if path_text else f"data row {row + 1}")
                continue
        elif isinstance(value, (bytes, bytearray, memoryview)):
            sources.append(bytes(value))
            ids.append(f"data row {row + 1}")
            continue
        elif isinstance(value, str) and value.strip():
            path_text = value.strip()
        ids.append(path_text if path_text else f"data row {row + 1} (empty)")
        sources.append(None if not path_text else _locate(path_text, roots, suffix))
    return Found(sources, ids, roots, suffix)


def _locate(name: str, roots: list[Path], suffix: str | None) -> str | None:
    names = [name]
    if suffix and Path(name).suffix.lower() not in IMAGE_EXTENSIONS \
            and not name.lower().endswith(suffix.lower()):
        names = [name + suffix]
    for candidate in names:
        p = Path(candidate).expanduser()
        if p.is_absolute():
            if os.path.isfile(p):
                return str(p)
            continue
        for root in roots:
            full = root / p
            if os.path.isfile(full):
                return str(full)
    return None


# ----------------------------------------------------------------------------- the pipeline


@dataclass
class Rows:
    """An image table's used rows before decoding: labels and groups per kept row, where each
    row's image is, and the pool / val / test row indices (into the kept rows)."""

    rows: np.ndarray  # the kept rows' positions in the table
    y: np.ndarray
    g: np.ndarray
    groups: list[str]
    classes: list[str]
    found: Found
    parts: dict[str, np.ndarray]
    subjects: np.ndarray | None
    attributes: list[str]
    group_values: list[list[str]]
    info: dict[str, Any]
    votes: np.ndarray | None = None  # the raters' votes per kept row (data.raters)


def layout_rows(frame: pd.DataFrame, cfg: ImagesData, seed: int, source: str,
                missing_ok: bool = False) -> Rows:
    """Label, find, split and cap the rows (no image is opened). A missing image is a one-line
    error unless ``missing_ok`` (``init`` reports them instead)."""
    frame = frame.reset_index(drop=True)
    if cfg.image not in frame.columns:
        raise DataError(f"{source}: image column {cfg.image!r} not found "
                        f"(columns: {preview_names([str(c) for c in frame.columns])})")
    labelled = label_rows(frame, cfg, source)
    rows = np.flatnonzero(labelled.keep)
    y, g = labelled.y[rows], labelled.g[rows]
    roots = search_roots(cfg.roots, cfg.path)
    found = find_images(frame[cfg.image].iloc[rows], roots, cfg.suffix)
    if found.missing and not missing_ok:
        raise DataError(found.missing_line(source, cfg.image))
    parts, subjects = draw_splits(frame, cfg, rows, g * len(labelled.classes) + y,
                                  rng_for(seed, "images", "split"), source)
    for name in SPLITS:  # caps: a seeded subsample stratified by group x class
        cap = cfg.max_pool if name == "pool" else cfg.max_test
        idx = parts[name]
        parts[name] = idx[stratified_subsample(y[idx], g[idx], cap,
                                               rng_for(seed, "images", name))]
    if subjects is not None:
        check_subjects(subjects, parts, source, str(cfg.subject))
    return Rows(rows, y, g, labelled.groups, labelled.classes, found, parts, subjects,
                labelled.attributes, labelled.group_values,
                {"source": source, **labelled.info, "rows_used": len(rows)},
                None if labelled.votes is None else labelled.votes[rows])


def from_frame(frame: pd.DataFrame, cfg: ImagesData, seed: int, source: str,
               info: dict[str, Any] | None = None) -> Dataset:
    """Rows -> labelled, split, capped, decoded images [n, C, s, s] uint8 (CelebA and CheXpert
    call this with the table they read from their own files)."""
    r = layout_rows(frame, cfg, seed, source)
    y, g, parts, groups, classes = r.y, r.g, r.parts, r.groups, r.classes
    _require_groups(g, parts, groups, source)
    X, parts, skipped = decode_rows(r, cfg, source)
    used = np.concatenate([parts[s] for s in SPLITS])
    splits: dict[str, Split] = {}
    start = 0
    for name in SPLITS:
        idx = parts[name]
        splits[name] = Split(X[start:start + len(idx)], y[idx], g[idx],
                             None if r.votes is None else r.votes[idx])
        start += len(idx)
    embedded = sum(isinstance(r.found.sources[i], bytes) for i in used)
    out_info: dict[str, Any] = {
        **r.info,
        "n_used": len(used),
        "counts": counts_by_split({n: (y[i], g[i]) for n, i in parts.items()}, groups, classes),
        "embedded_images": int(embedded),
        "cache": str(X.filename),
        # what a worker must be able to read: the table's folder and every searched root
        "image_roots": sorted({str(table_folder(cfg.path)), *(str(p) for p in r.found.roots)}),
    }
    if skipped:
        out_info["unreadable"] = skipped
    if r.subjects is not None:
        out_info["subjects"] = {n: int(len(np.unique(r.subjects[i]))) for n, i in parts.items()}
    out_info.update(info or {})
    rgb = cfg.color == "rgb"
    return Dataset(
        groups=groups,
        classes=classes,
        pool=splits["pool"],
        val=splits["val"] if len(parts["val"]) else None,
        test=splits["test"],
        input_kind="image",
        image_mean=IMAGENET_MEAN if rgb else GRAY_MEAN,
        image_std=IMAGENET_STD if rgb else GRAY_STD,
        info=out_info,
        attributes=r.attributes,
        group_values=r.group_values,
        hflip=cfg.hflip,
        loader_workers=cfg.num_workers,
        cache_folder=str(Path(X.filename).parent),
    )


def decode_rows(r: Rows, cfg: ImagesData, source: str
                ) -> tuple[np.memmap, dict[str, np.ndarray], dict[str, Any]]:
    """Decode the used images of ``r`` (pool, val, test in order; see the module docstring):
    the images, the splits without the unreadable ones (``skip_unreadable``; a
    ``DataWarning`` counts them per group) and what was left out (empty when nothing)."""
    used = np.concatenate([r.parts[s] for s in SPLITS])
    decoded = decode_images(
        [r.found.sources[i] for i in used], size=cfg.image_size,
        mode="RGB" if cfg.color == "rgb" else "L", fit=cfg.fit, cache_dir=cfg.cache_dir,
        num_workers=cfg.num_workers, listed_in=source, names=[r.found.ids[i] for i in used],
        skip_unreadable=cfg.skip_unreadable,
    )
    if not decoded.unreadable:
        return decoded.images, r.parts, {}
    parts, skipped = _leave_out(decoded, r.parts, r.g, r.groups, source)
    _require_groups(r.g, parts, r.groups, source, skipped)
    return decoded.images, parts, skipped


def _require_groups(g: np.ndarray, parts: dict[str, np.ndarray], groups: list[str],
                    source: str, skipped: dict[str, Any] | None = None) -> None:
    """Every group has images in the pool and the test split (once the unreadable images in
    ``skipped`` are out, which the line then says)."""
    for name in ("pool", "test"):
        counts = np.bincount(g[parts[name]], minlength=len(groups))
        for code, grp in enumerate(groups):
            if counts[code] > 0:
                continue
            if skipped:
                lost = skipped["by_split"][name].get(grp, 0)
                raise DataError(f"{source}: group {grp!r} has no images left in the {name} "
                                f"split once its {lost:,} unreadable one"
                                f"{'' if lost == 1 else 's'} there are left out "
                                f"(dataset.skip_unreadable; listed in {skipped['list']})")
            raise DataError(f"{source}: group {grp!r} has no images in the {name} split")


def _leave_out(decoded: Decoded, parts: dict[str, np.ndarray], g: np.ndarray,
               groups: list[str], source: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The splits without the unreadable images (each image keeps its split; ``decoded``
    follows the order pool, val, test), what was left out, and the warning saying so."""
    keep = np.zeros(sum(len(parts[s]) for s in SPLITS), dtype=bool)
    keep[decoded.kept] = True
    kept, by_split, start = {}, {}, 0
    for name in SPLITS:
        idx = parts[name]
        mask = keep[start:start + len(idx)]
        kept[name] = idx[mask]
        lost = np.bincount(g[idx[~mask]], minlength=len(groups))
        by_split[name] = {grp: int(n) for grp, n in zip(groups, lost) if n}
        start += len(idx)
    by_group = {grp: sum(by_split[s].get(grp, 0) for s in SPLITS) for grp in groups}
    n_bad = len(decoded.unreadable)
    skipped = {"count": n_bad, "by_group": {k: v for k, v in by_group.items() if v},
               "by_split": by_split, "list": str(decoded.list_file)}
    per_group = ", ".join(f"{grp!r} {n:,}" for grp, n in by_group.items() if n)
    warnings.warn(f"{source}: {n_bad:,} of {len(keep):,} images cannot be decoded and are left "
                  f"out (dataset.skip_unreadable), by group: {per_group}; listed in "
                  f"{decoded.list_file}", DataWarning, stacklevel=2)
    return kept, skipped


register(ImagesData, load)

__all__ = ["Found", "ImageOptions", "ImagesData", "Rows", "decode_rows", "find_images",
           "from_frame", "layout_rows", "load", "search_roots"]
