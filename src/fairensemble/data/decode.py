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


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The folder that holds decoded-image caches."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("FAIRENSEMBLE_CACHE"):
        return Path(os.environ["FAIRENSEMBLE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fairensemble"


def decode_image(source: ImageSource | Path, size: int, mode: Mode, fit: Fit,
                 name: str | None = None) -> np.ndarray:
    """One image as uint8 [C, size, size]; an unreadable one raises ``DataError`` naming it
    (``name``, else the path)."""
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
        raise DataError(f"{label}: image not found") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError
            ) as err:
        why = " ".join(str(err).split()) or type(err).__name__
        raise DataError(f"{label}: unreadable image ({why})") from None
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
    ``listed_in``, when given) before anything is decoded; an image that does not decode is
    named by ``names[i]`` when given (a row's id), else by its path."""
    paths = [p if isinstance(p, bytes) else str(p) for p in sources]
    if not paths:
        raise DataError(f"{listed_in or 'image list'}: no images to decode")
    channels = 3 if mode == "RGB" else 1
    shape = (len(paths), channels, size, size)
    key = cache_key(paths, size, mode, fit, listed_in)
    root = cache_root(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"images-{key}.npy"

    def build(tmp: Path) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        del out  # header written; workers and the serial path reopen it
        log.info("decoding %d images at %dx%d into %s", len(paths), size, size, final)
        _decode_all(paths, tmp, size, mode, fit, num_workers,
                    list(names) if names is not None else None)
        _write_sidecar(final, paths, size, mode, fit)

    return build_once(final, build, lambda path: _open_if_valid(path, shape),
                      "decoded-image cache")


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


def _open_if_valid(path: Path, shape: tuple[int, ...]) -> np.memmap | None:
    arr = load_cached(path, "image cache", mmap_mode="c")
    if arr is not None and (arr.shape != shape or arr.dtype != np.uint8):
        log.warning("ignoring image cache %s with shape %s, expected %s", path, arr.shape, shape)
        return None
    return arr


def _decode_range(
    paths: list[ImageSource], target: str, start: int, size: int, mode: Mode, fit: Fit,
    names: list[str] | None = None,
) -> int:
    """Decode ``paths`` into rows start.. of the .npy file ``target`` (runs in a worker too)."""
    out = np.load(target, mmap_mode="r+", allow_pickle=False)
    for i, p in enumerate(paths):
        out[start + i] = decode_image(p, size, mode, fit, None if names is None else names[i])
    out.flush()
    return len(paths)


def _decode_all(
    paths: list[ImageSource], target: Path, size: int, mode: Mode, fit: Fit, num_workers: int,
    names: list[str] | None = None,
) -> None:
    n = len(paths)
    if num_workers <= 0 or n < 2:
        _decode_range(paths, str(target), 0, size, mode, fit, names)
        return
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


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork where it is safe (POSIX, no other Python thread that could hold a lock the child
    needs; the child runs Pillow and numpy only, never torch), else spawn. Spawn re-imports the
    caller's main module, which a script without an ``if __name__ == "__main__"`` guard (or
    code read from stdin) does not survive, so it is the fallback, not the default."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _write_sidecar(final: Path, paths: list[ImageSource], size: int, mode: str, fit: str
                   ) -> None:
    def shown(p: ImageSource) -> str:
        return p if isinstance(p, str) else f"<{len(p)} bytes>"

    meta = {
        "version": CACHE_VERSION,
        "n": len(paths),
        "size": size,
        "mode": mode,
        "fit": fit,
        "first": shown(paths[0]) if paths else None,
        "last": shown(paths[-1]) if paths else None,
    }
    atomic_write_text(final.with_suffix(".json"), json.dumps(meta, indent=1))
