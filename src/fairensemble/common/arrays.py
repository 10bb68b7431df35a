"""The checks every array handed to fairensemble passes, written once: what the shape, kind and
values must be, and one line (``InputError``) naming the argument when they are not.

Trainers, the ensemble evaluator, the metrics, post-processing and the importer all check
their inputs with these, so one mistake reads the same wherever it is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fairensemble.common.errors import InputError


def as_array(x: Any, name: str) -> np.ndarray:
    """A numpy array from numpy, a torch tensor (any device, bfloat16 widened) or a sequence."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch, without importing it
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected an array, got {type(x).__name__}") from None


def check_shape(a: np.ndarray, name: str, shapes: Sequence[tuple[int, ...]],
                why: str = "") -> None:
    """``a.shape`` is one of ``shapes`` (``why``: what it must match, e.g. "to match probs")."""
    if tuple(a.shape) not in [tuple(s) for s in shapes]:
        want = " or ".join(str(tuple(s)) for s in shapes)
        raise InputError(f"{name}: expected shape {want}{' ' + why if why else ''}, "
                         f"got {tuple(a.shape)}")


def codes(a: Any, name: str, n: int | None, count: int, what: str = "class codes",
          why: str = "") -> np.ndarray:
    """Integer codes 0..``count``-1, one per sample (``n`` of them when given), as int64."""
    arr = as_array(a, name)
    if n is not None:
        check_shape(arr, name, [(n,)], why)
    elif arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array of {what}, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name}: expected integer {what}, got {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= count):
        raise InputError(f"{name}: expected {what} in 0..{count - 1}, got "
                         f"{arr.min()}..{arr.max()}")
    return arr.astype(np.int64, copy=False)


def member_probs(x: Any, name: str = "member_probs") -> np.ndarray:
    """Members' probabilities [members, n, classes] (not copied)."""
    arr = as_array(x, name)
    if arr.ndim != 3:
        raise InputError(f"{name}: expected an array [members, n, classes], got shape "
                         f"{arr.shape}")
    return arr


def features(X: Any, name: str, d: int | None = None) -> np.ndarray:
    """A float feature matrix [n, d] as contiguous float32 (``d`` features when given)."""
    arr = as_array(X, name)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{name}: expected a float array [n, d], got {arr.dtype} of shape "
                         f"{arr.shape}")
    if d is not None and arr.shape[1] != d:
        raise InputError(f"{name}: expected {d} features, got {arr.shape[1]}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def images(X: Any, name: str, shape: tuple[int, ...] | None = None) -> None:
    """uint8 images [n, C, H, W] (rows of ``shape`` [C, H, W] when given); not copied."""
    dtype, ndim = getattr(X, "dtype", None), np.ndim(X)
    if dtype != np.uint8 or ndim != 4:
        raise InputError(f"{name}: expected uint8 images [n, C, H, W], got {dtype} with {ndim} "
                         "dimensions")
    if shape is not None and tuple(X.shape[1:]) != tuple(shape):
        raise InputError(f"{name}: expected rows of shape {tuple(shape)}, got "
                         f"{tuple(X.shape[1:])}")


def count(value: Any, name: str, low: int = 1) -> int:
    """An integer >= ``low`` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise InputError(f"{name}: expected an int >= {low}, got {value!r}")
    return int(value)


__all__ = ["as_array", "check_shape", "codes", "count", "features", "images", "member_probs"]
