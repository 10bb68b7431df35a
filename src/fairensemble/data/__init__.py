"""Data sources by ``dataset.kind``; each returns a ``Dataset`` of pool / val / test splits.

Every module of this package that registers a source (``registry.register(Config, load)`` at
its bottom) is one: adding a source is one file plus its test. ``sources()`` imports them all
(their heavy imports, pandas, scikit-learn, Pillow, wait inside their functions).
"""

from __future__ import annotations

import pkgutil
from importlib import import_module
from typing import Any

from fairensemble.common.errors import DataError
from fairensemble.data.base import Dataset, Split
from fairensemble.data.registry import SOURCES, Source


def sources() -> dict[str, Source]:
    """Every registered source by kind (importing the package's modules on first use; the
    helper modules among them register nothing)."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            import_module(f"{__name__}.{info.name}")
    return SOURCES


def load_dataset(dataset_cfg: Any, seed: int) -> Dataset:
    """Load the source named by ``dataset_cfg.kind`` with its pool / val / test splits."""
    return sources()[dataset_cfg.kind].load(dataset_cfg, seed)


__all__ = ["DataError", "Dataset", "Split", "load_dataset", "sources"]
