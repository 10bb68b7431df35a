"""Predictions handed over in Python (numpy or torch arrays) or in an ``.npz``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fairensemble.common.arrays import as_array
from fairensemble.common.errors import DataError
from fairensemble.common.text import close_matches, preview_names
from fairensemble.data.frame import text_of
from fairensemble.interop.format import Imported, ImportedCell, Part
from fairensemble.interop.long_form import check_groups
from fairensemble.interop.predictions import check_probabilities, name_groups


def _attribute_columns(groups: Any, n: int, names: Sequence[str] | None,
                       attributes: Sequence[str] | None, what: str
                       ) -> tuple[list[str], list[np.ndarray]]:
    """(attribute names, per attribute the values [n]) of the groups handed over: an array
    [n] (names, or codes named by ``names``), an array [n, A], or a mapping / DataFrame of
    attribute -> values [n]."""
    if hasattr(groups, "columns") and hasattr(groups, "__getitem__") and not isinstance(
            groups, np.ndarray):  # a DataFrame
        groups = {str(c): groups[c] for c in groups.columns}
    if isinstance(groups, dict):
        attrs = [str(a) for a in groups]
        cols = [as_array(v, f"{what}[{a!r}]") for a, v in groups.items()]
    else:
        arr = as_array(groups, what)
        if arr.ndim == 1:
            cols = [arr]
        elif arr.ndim == 2:
            cols = [arr[:, a] for a in range(arr.shape[1])]
        else:
            raise DataError(f"{what}: expected group values [samples] or [samples, "
                            f"attributes], got shape {arr.shape}")
        attrs = list(attributes) if attributes is not None else (
            ["group"] if len(cols) == 1 else [f"attribute{a + 1}" for a in range(len(cols))])
        if len(attrs) != len(cols):
            raise DataError(f"attributes: {len(attrs)} names for {len(cols)} group columns")
    for a, col in zip(attrs, cols):
        if col.shape != (n,):
            raise DataError(f"{what}: expected {n} values (one per sample) for {a!r}, got "
                            f"shape {col.shape}")
    if names is not None:
        if len(cols) != 1 or not np.issubdtype(cols[0].dtype, np.integer):
            raise DataError(f"{what}: group names are for integer codes of one group column")
        names = [str(v) for v in names]
        bad = cols[0][(cols[0] < 0) | (cols[0] >= len(names))]
        if len(bad):
            raise DataError(f"{what}: code {bad[0]} outside the groups' names 0..{len(names) - 1}")
        cols = [np.array(names, dtype=object)[cols[0]]]
    return attrs, cols


def from_arrays(probs: Any, y: Any, groups: Any, *, probs_val: Any = None, y_val: Any = None,
                groups_val: Any = None, classes: Sequence[str] | None = None,
                group_names: Sequence[str] | None = None,
                attributes: Sequence[str] | None = None, members: Sequence[str] | None = None,
                logits: bool = False, source: str | None = None,
                format: str = "arrays") -> Imported:
    """Member predictions handed over as arrays, checked: ``probs`` [E, n, C] (or [E, n]: the
    positive class of a binary task), ``y`` [n] (class codes, or names in ``classes``),
    ``groups`` (see ``_attribute_columns``); the ``*_val`` arrays a validation split (for
    post-processing)."""
    import pandas as pd

    parts, attrs, raw = [], None, []
    for tag, p_, y_, g_ in (("", probs, y, groups), ("_val", probs_val, y_val, groups_val)):
        if p_ is None:
            if y_ is not None or g_ is not None:
                raise DataError(f"probs{tag}: missing, while y{tag} / groups{tag} are given")
            continue
        p = as_array(p_, f"probs{tag}")
        if p.ndim not in (2, 3) or not np.issubdtype(p.dtype, np.number):
            raise DataError(f"probs{tag}: expected numbers [members, samples, classes] (or "
                            f"[members, samples]: the positive class), got {p.dtype} of shape "
                            f"{p.shape}")
        E, n = p.shape[:2]
        if y_ is None or g_ is None:
            raise DataError(f"y{tag} and groups{tag}: both are needed with probs{tag}")
        labels = as_array(y_, f"y{tag}")
        if labels.shape != (n,):
            raise DataError(f"y{tag}: expected {n} labels (one per sample of probs{tag}), got "
                            f"shape {labels.shape}")
        a, cols = _attribute_columns(g_, n, group_names, attributes, f"groups{tag}")
        if attrs is not None and a != attrs:
            raise DataError(f"groups{tag}: attributes {a}, but the test split's are {attrs}")
        attrs = a
        columns = [p[..., c].ravel() for c in range(p.shape[2])] if p.ndim == 3 else [p.ravel()]
        names = ([f"probs{tag}[..., {c}]" for c in range(p.shape[2])] if p.ndim == 3
                 else [f"probs{tag}"])

        def at(i: int, E: int = E, n: int = n) -> str:
            return f"at member {i // n}, sample {i % n}"

        columns = check_probabilities(columns, names, logits, at, source)
        raw.append((tag, np.stack(columns, axis=-1).reshape(E, n, len(columns)), labels, cols))
    E, C = raw[0][1].shape[0], raw[0][1].shape[2]
    if len(raw) > 1 and raw[1][1].shape[::2] != (E, C):
        raise DataError(f"probs_val: expected {E} members and {C} classes as probs, got shape "
                        f"{raw[1][1].shape}")
    classes = [str(c) for c in classes] if classes is not None else [str(c) for c in range(C)]
    if len(classes) != C:
        raise DataError(f"classes: {len(classes)} names for {C} classes")
    n_test = len(raw[0][2])
    # groups named over both splits at once, so codes agree
    codes, values = [], []
    for a in range(len(attrs)):
        both = np.concatenate([np.asarray(r[3][a]) for r in raw])
        if pd.isna(pd.Series(both)).any():
            raise DataError(f"groups: a missing group value for {attrs[a]!r}")
        c, u = pd.factorize(both)
        codes.append(c)
        values.append([text_of(v) for v in u])
    g_all, group_list, group_values = name_groups(codes, values, attrs)
    for (tag, p, labels, _), g in zip(raw, np.split(g_all, [n_test])):
        if np.issubdtype(labels.dtype, np.integer) or (
                np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels))):
            y_codes = labels.astype(np.int64)
            bad = y_codes[(y_codes < 0) | (y_codes >= C)]
            if len(bad):
                raise DataError(f"y{tag}: label {bad[0]} outside the classes 0..{C - 1}")
        else:
            index = {c: i for i, c in enumerate(classes)}
            unknown = [v for v in pd.unique(labels.astype(str)) if v not in index]
            if unknown:
                raise DataError(f"y{tag}: label {unknown[0]!r} is not one of the classes "
                                f"{classes}")
            y_codes = np.array([index[v] for v in labels.astype(str)], dtype=np.int64)
        parts.append(Part(p, y_codes, g.astype(np.int64)))
    names = [str(m) for m in members] if members is not None else [str(e) for e in range(E)]
    if len(names) != E:
        raise DataError(f"members: {len(names)} names for {E} members")
    imp = Imported(source, format, names, classes, group_list, attrs,
                   group_values, [], logits, [],
                   [ImportedCell({}, parts[0], parts[1] if len(parts) > 1 else None)])
    check_groups(imp)
    return imp


def read_npz(path: str | Path, logits: bool = False) -> Imported:
    """Member predictions from an .npz: ``probs`` [E, n, C], ``y``, ``g`` (+ ``groups``:
    names of g's codes, ``classes``, ``attributes``, ``members``, ``probs_val``, ``y_val``,
    ``g_val``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as err:
        what = "object arrays (pickled)" if "pickle" in str(err) else str(err)
        raise DataError(f"{path}: cannot read {what}; save names as strings "
                        "(np.array(names, dtype=str))") from None
    except OSError as err:
        raise DataError(f"{path}: not a readable .npz ({err})") from None
    known = ("probs", "y", "g", "groups", "classes", "attributes", "members", "probs_val",
             "y_val", "g_val")
    for name in ("probs", "y", "g"):
        if name not in arrays:
            raise DataError(f"{path}: array {name!r} not found{close_matches(name, list(arrays))} "
                            f"(arrays: {preview_names(list(arrays))})")
    unknown = [k for k in arrays if k not in known]
    if unknown:
        raise DataError(f"{path}: unknown array {unknown[0]!r}: expected "
                        f"{', '.join(known)}{close_matches(unknown[0], list(known))}")

    def names(key: str) -> list[str] | None:
        return None if key not in arrays else [str(v) for v in arrays[key].tolist()]

    return from_arrays(arrays["probs"], arrays["y"], arrays["g"],
                       probs_val=arrays.get("probs_val"), y_val=arrays.get("y_val"),
                       groups_val=arrays.get("g_val"), classes=names("classes"),
                       group_names=names("groups"), attributes=names("attributes"),
                       members=names("members"), logits=logits, source=str(path),
                       format="npz")


