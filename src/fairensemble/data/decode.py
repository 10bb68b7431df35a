"""Image decoding for the image sources, with a decoded-uint8 cache on disk shared across runs.

``decode_cached(sources, size=..., mode=...)`` returns a copy-on-write ``np.memmap`` [n, C,
size, size] of uint8 (writes stay in memory; the file never changes). A source is a file path
or the encoded image's bytes (a Parquet column, as Hugging Face ``datasets`` writes images).
The cache file is keyed by a hash of every source (a path with its mtime and byte size, bytes
by their sha256), ``size``, colour mode, fit and the cache format version, so a sweep decodes
each image once and later runs reuse it, while an edited or replaced image gives a new key. It
lives under ``cache_dir`` (else ``$FAIRENSEMBLE_CACHE``, else ``$XDG_CACHE_HOME/fairensemble``,
else ``~/.cache/fairensemble``), is written to a temporary name and renamed, and is built
under a file lock so that processes loading the same data at once decode it only once.

Decoding (Pillow): the EXIF orientation is applied first (a phone photo stored sideways comes
out upright); ``mode="RGB"`` -> 3 channels, ``mode="L"`` -> 1 channel; ``fit="crop"``
centre-crops to a square before resizing, ``fit="resize"`` resizes the whole image. Resizing
is bilinear with Pillow's antialiasing; JPEGs are first reduced in the DCT domain
(``Image.draft``) to the smallest scale that is still at least ``size`` on each side.

Unreadable images: every source is tried, so one pass finds them all. ``decode_images``
returns the readable ones and the list of the others (``Unreadable``: position, name, why),
and writes that list to ``images-<key>.unreadable.csv`` beside the cache file (the cache key,
so the same images and settings always name the same file). ``skip_unreadable=False`` (and
``decode_cached``) stops with one line: the count, the first names and the list file; nothing
is cached then, since the next step is to repair the images, which changes the key. With
``skip_unreadable=True`` the cache file holds the readable images only, in order, and its
sidecar (``images-<key>.json``) lists the unreadable positions: a later call reads both and
decodes nothing.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from fairensemble.common.errors import DataError
from fairensemble.common.files import (
    atomic_write_text,
    build_once,
    load_cached,
)

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: EXIF orientation applied, sources may be bytes
ImageSource = str | bytes
Mode = Literal["RGB", "L"]
Fit = Literal["crop", "resize"]

# Channel statistics used to normalise inputs after scaling to [0, 1]: ImageNet's, so that a
# torchvision-pretrained checkpoint sees what it was trained on; grayscale uses their mean.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRAY_MEAN = (0.449,)
GRAY_STD = (0.226,)
SHOWN_UNREADABLE = 3  # unreadable images named in the error line
COPY_ROWS = 256  # rows copied at a time when the readable images are packed together


@dataclass(frozen=True)
class Unreadable:
    """An image that did not decode: its position among the sources, its name in messages,
    its file (or ``<N bytes>``) and why (Pillow's reason)."""

    index: int
    name: str
    file: str
    why: str


@dataclass
class Decoded:
    """What ``decode_images`` returns: the readable images in source order, the unreadable
    ones, and the file that lists those (None when every image decoded)."""

    images: np.memmap
    unreadable: list[Unreadable]
    list_file: Path | None

    @property
    def kept(self) -> np.ndarray:
        """Positions of the sources whose image is in ``images``."""
        keep = np.ones(len(self.images) + len(self.unreadable), dtype=bool)
        keep[[u.index for u in self.unreadable]] = False
        return np.flatnonzero(keep)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The folder that holds decoded-image caches."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("FAIRENSEMBLE_CACHE"):
        return Path(os.environ["FAIRENSEMBLE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fairensemble"


class ImageDecodeError(DataError):
    """An image that does not decode; ``why`` is the reason alone (Pillow's words)."""

    def __init__(self, line: str, why: str) -> None:
        super().__init__(line)
        self.why = why


def decode_image(source: ImageSource | Path, size: int, mode: Mode, fit: Fit,
                 name: str | None = None) -> np.ndarray:
    """One image as uint8 [C, size, size]; an unreadable one raises ``ImageDecodeError`` (a
    ``DataError``) naming it (``name``, else the path)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    label = name or (str(source) if not isinstance(source, bytes) else "image bytes")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            im.draft(mode, (size, size))
            im = ImageOps.exif_transpose(im)
            im = im.convert(mode)
            if fit == "crop":
                w, h = im.size
                s = min(w, h)
                left, top = (w - s) // 2, (h - s) // 2
                im = im.crop((left, top, left + s, top + s))
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageDecodeError(f"{label}: image not found", "file not found") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError
            ) as err:
        why = " ".join(str(err).split()) or type(err).__name__
        raise ImageDecodeError(f"{label}: unreadable image ({why})", why) from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def decode_cached(
    sources: Sequence[ImageSource | Path],
    *,
    size: int,
    mode: Mode,
    fit: Fit = "resize",
    cache_dir: str | Path | None = None,
    num_workers: int = 0,
    listed_in: str = "",
    names: Sequence[str] | None = None,
) -> np.memmap:
    """Decoded images [n, C, size, size] uint8 in the order of ``sources`` (paths or encoded
    bytes), as a copy-on-write memmap (writable for consumers such as ``torch.from_numpy``;
    the file never changes).

    Decodes (in ``num_workers`` processes when > 0) only when no cache file matches the
    sources. A missing path raises ``DataError`` naming it (and the listing file
    ``listed_in``, when given) before anything is decoded; images that do not decode raise
    one ``DataError`` that counts them, names the first by ``names[i]`` when given (a row's
    id), else by path, and names the file listing them all."""
    return decode_images(sources, size=size, mode=mode, fit=fit, cache_dir=cache_dir,
                         num_workers=num_workers, listed_in=listed_in, names=names).images


def decode_images(
    sources: Sequence[ImageSource | Path],
    *,
    size: int,
    mode: Mode,
    fit: Fit = "resize",
    cache_dir: str | Path | None = None,
    num_workers: int = 0,
    listed_in: str = "",
    names: Sequence[str] | None = None,
    skip_unreadable: bool = False,
) -> Decoded:
    """``decode_cached``, and with ``skip_unreadable`` the images that do not decode are left
    out instead: ``Decoded.images`` holds the others in order, ``Decoded.unreadable`` says
    which (see the module docstring)."""
    paths = [p if isinstance(p, bytes) else str(p) for p in sources]
    if not paths:
        raise DataError(f"{listed_in or 'image list'}: no images to decode")
    shown = list(names) if names is not None else [_shown(p) for p in paths]
    channels = 3 if mode == "RGB" else 1
    key = cache_key(paths, size, mode, fit, listed_in)
    root = cache_root(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"images-{key}.npy"
    list_file = root / f"images-{key}.unreadable.csv"

    def build(tmp: Path) -> None:
        log.info("decoding %d images at %dx%d into %s", len(paths), size, size, final)
        failed = _decode_packed(paths, tmp, (channels, size, size), mode, fit, num_workers,
                                names=list(names) if names is not None else None)
        bad = [Unreadable(i, shown[i], _shown(paths[i]), why) for i, why in failed]
        if bad:
            _write_list(list_file, bad)
            if not skip_unreadable or len(bad) == len(paths):
                raise DataError(unreadable_line(bad, len(paths), list_file, listed_in))
        _write_sidecar(final, paths, size, mode, fit, failed)

    def opened(path: Path) -> tuple[np.memmap, list[tuple[int, str]]] | None:
        return _open_if_valid(path, len(paths), (channels, size, size))

    images, failed = build_once(final, build, opened, "decoded-image cache")
    bad = [Unreadable(i, shown[i], _shown(paths[i]), why) for i, why in failed]
    if bad and not list_file.exists():  # removed since: the line names it, so it is there
        _write_list(list_file, bad)
    if bad and not skip_unreadable:
        raise DataError(unreadable_line(bad, len(paths), list_file, listed_in))
    return Decoded(images, bad, list_file if bad else None)


def unreadable_line(bad: list[Unreadable], total: int, list_file: Path, listed_in: str = ""
                    ) -> str:
    """The one line that stops a run on unreadable images: how many, the first few by name
    with Pillow's reason, the file listing them all and what to do."""
    bad = sorted(bad, key=lambda u: (u.file, u.name, u.index))  # as the list file has them
    first = "; ".join(f"{u.name}: unreadable image ({u.why})" for u in bad[:SHOWN_UNREADABLE])
    more = f"; and {len(bad) - SHOWN_UNREADABLE:,} more" if len(bad) > SHOWN_UNREADABLE else ""
    them = "it" if len(bad) == 1 else "them"
    where = f"{listed_in}: " if listed_in else ""
    if len(bad) == total:
        return (f"{where}none of the {total:,} images can be decoded: {first}{more}; "
                f"{'all ' if len(bad) > 1 else ''}listed in {list_file}")
    return (f"{where}{len(bad):,} of {total:,} images cannot be decoded: {first}{more}; "
            f"{'all ' if len(bad) > 1 else ''}listed in {list_file}; repair or remove {them}, "
            f"or set dataset.skip_unreadable: true to leave {them} out")


# ----------------------------------------------------------------------------- internals


def cache_key(paths: list[ImageSource], size: int, mode: str, fit: str,
              listed_in: str = "") -> str:
    """The cache file's key: every source (a path with its mtime and size, bytes by their
    hash) and the decoding settings."""
    digest = hashlib.sha256(f"v{CACHE_VERSION}|{size}|{mode}|{fit}\n".encode())
    where = f" (listed in {listed_in})" if listed_in else ""
    for p in paths:
        if isinstance(p, bytes):
            digest.update(b"bytes\t" + hashlib.sha256(p).digest() + b"\n")
            continue
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise DataError(f"{p}: image not found{where}") from None
        except OSError as err:
            raise DataError(f"{p}: image cannot be read ({err.strerror}){where}") from None
        digest.update(f"{os.path.abspath(p)}\t{st.st_mtime_ns}\t{st.st_size}\n".encode())
    return digest.hexdigest()[:24]


def _open_if_valid(path: Path, n: int, shape: tuple[int, ...]
                   ) -> tuple[np.memmap, list[tuple[int, str]]] | None:
    """The cache file and the unreadable positions its sidecar lists, when both are there and
    agree with ``n`` sources of ``shape``; else None (decoded again)."""
    arr = load_cached(path, "image cache", mmap_mode="c")
    if arr is None:
        return None
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        failed = [(int(i), str(why)) for i, why in meta.get("unreadable", [])]
    except (OSError, ValueError, TypeError):
        log.warning("ignoring image cache %s: its sidecar %s is missing or damaged", path,
                    path.with_suffix(".json").name)
        return None
    expected = (n - len(failed), *shape)
    if arr.shape != expected or arr.dtype != np.uint8:
        log.warning("ignoring image cache %s with shape %s, expected %s", path, arr.shape,
                    expected)
        return None
    return arr, failed


def _shown(p: ImageSource) -> str:
    return p if isinstance(p, str) else f"<{len(p)} bytes>"


def _write_list(path: Path, bad: list[Unreadable]) -> None:
    """The unreadable images as CSV (image, file, why), in the order of their files."""
    import csv

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image", "file", "why"])
    for u in sorted(bad, key=lambda u: (u.file, u.name, u.index)):
        writer.writerow([u.name, u.file, u.why])
    atomic_write_text(path, buf.getvalue())


def _decode_range(
    paths: list[ImageSource], target: str, start: int, size: int, mode: Mode, fit: Fit,
    names: list[str] | None = None,
) -> list[tuple[int, str]]:
    """Decode ``paths`` into rows start.. of the .npy file ``target`` (runs in a worker too);
    returns the (row, why) of each image that did not decode (its row stays zero)."""
    out = np.load(target, mmap_mode="r+", allow_pickle=False)
    failed = []
    for i, p in enumerate(paths):
        name = None if names is None else names[i]
        try:
            out[start + i] = decode_image(p, size, mode, fit, name)
        except ImageDecodeError as err:
            failed.append((start + i, err.why))
    out.flush()
    return failed


def _decode_packed(paths: list[ImageSource], tmp: Path, shape: tuple[int, ...], mode: Mode,
                   fit: Fit, num_workers: int, names: list[str] | None = None
                   ) -> list[tuple[int, str]]:
    """Decode every source into the .npy file ``tmp``, the readable images packed together
    in order; returns the (position, why) of the others."""
    full = tmp.with_name(tmp.name + ".all")
    try:
        out = np.lib.format.open_memmap(full, mode="w+", dtype=np.uint8,
                                        shape=(len(paths), *shape))
        del out  # header written; workers and the serial path reopen it
        failed = _decode_all(paths, full, shape[-1], mode, fit, num_workers, names)
        if not failed:
            os.replace(full, tmp)
            return failed
        if len(failed) == len(paths):  # nothing to keep: the caller stops
            return failed
        src = np.load(full, mmap_mode="r", allow_pickle=False)
        keep = np.ones(len(paths), dtype=bool)
        keep[[i for i, _ in failed]] = False
        rows = np.flatnonzero(keep)
        packed = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                           shape=(len(rows), *shape))
        for a in range(0, len(rows), COPY_ROWS):
            packed[a:a + COPY_ROWS] = src[rows[a:a + COPY_ROWS]]
        packed.flush()
        del packed, src
        return failed
    finally:
        full.unlink(missing_ok=True)


def _decode_all(
    paths: list[ImageSource], target: Path, size: int, mode: Mode, fit: Fit, num_workers: int,
    names: list[str] | None = None,
) -> list[tuple[int, str]]:
    n = len(paths)
    if num_workers <= 0 or n < 2:
        return _decode_range(paths, str(target), 0, size, mode, fit, names)
    n_chunks = min(n, num_workers * 8)
    bounds = np.linspace(0, n, n_chunks + 1).astype(int)
    with ProcessPoolExecutor(max_workers=num_workers, mp_context=_pool_context()) as pool:
        futures = [
            pool.submit(_decode_range, paths[a:b], str(target), int(a), size, mode, fit,
                        None if names is None else names[a:b])
            for a, b in itertools.pairwise(bounds)
            if b > a
        ]
        _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in pending:
            f.cancel()
        for f in futures:
            if f.done() and not f.cancelled() and f.exception() is not None:
                raise f.exception()
        return sorted(x for f in futures for x in f.result())


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork where it is safe (POSIX, no other Python thread that could hold a lock the child
    needs; the child runs Pillow and numpy only, never torch), else spawn. Spawn re-imports the
    caller's main module, which a script without an ``if __name__ == "__main__"`` guard (or
    code read from stdin) does not survive, so it is the fallback, not the default."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _write_sidecar(final: Path, paths: list[ImageSource], size: int, mode: str, fit: str,
                   failed: list[tuple[int, str]] | None = None) -> None:
    meta = {
        "version": CACHE_VERSION,
        "n": len(paths),
        "size": size,
        "mode": mode,
        "fit": fit,
        "first": _shown(paths[0]) if paths else None,
        "last": _shown(paths[-1]) if paths else None,
        "unreadable": [[i, why] for i, why in failed or []],  # positions left out of the file
    }
    atomic_write_text(final.with_suffix(".json"), json.dumps(meta, indent=1))
