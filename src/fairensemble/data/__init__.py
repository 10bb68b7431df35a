"""Data sources by ``dataset.kind``; each returns a ``Dataset`` of pool / val / test splits."""

from __future__ import annotations

from importlib import import_module

from .base import DataError, Dataset, Split

_SOURCES = {
    "synthetic": ("synthetic", "load"),
    "table": ("tabular", "load_table"),
    "adult": ("adult", "load"),
    "celeba": ("celeba", "load"),
    "chexpert": ("chexpert", "load"),
    "digits": ("digits", "load"),
}


def load_dataset(dataset_cfg, seed: int) -> Dataset:
    """Load the source named by ``dataset_cfg.kind`` with its pool / val / test splits."""
    module, func = _SOURCES[dataset_cfg.kind]
    loader = getattr(import_module(f"{__name__}.{module}"), func)
    return loader(dataset_cfg, seed)


__all__ = ["DataError", "Dataset", "Split", "load_dataset"]
