"""The registry of data sources: each source module registers its config class (whose ``kind``
names it) and its loader, and ``config.py`` builds the dataset union from what is here."""

from __future__ import annotations

import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from fairensemble.data.base import Dataset


@dataclass(frozen=True)
class Source:
    """A data source: ``config`` is its pydantic section (a ``kind`` literal names it) and
    ``load(cfg, seed)`` returns its ``Dataset``."""

    config: type
    load: Callable[[Any, int], Dataset]

    @property
    def kind(self) -> str:
        return self.config.model_fields["kind"].default


# every registered data source by its ``kind``
SOURCES: dict[str, Source] = {}


def register(config: type, load: Callable[[Any, int], Dataset]) -> None:
    """Declare a source; called once at the bottom of its module (a module run as a script,
    ``python -m fairensemble.data.adult``, leaves it to the package's own import)."""
    if config.__module__ == "__main__":
        return
    source = Source(config, load)
    if source.kind in SOURCES and SOURCES[source.kind] != source:
        raise ValueError(f"dataset.kind {source.kind!r} is registered twice")
    SOURCES[source.kind] = source


def sources() -> dict[str, Source]:
    """Every registered source by kind (importing the data package's modules on first use; the
    helper modules among them register nothing)."""
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if not info.name.startswith("_"):
            import_module(f"{__package__}.{info.name}")
    return SOURCES


def load_dataset(dataset_cfg: Any, seed: int) -> Dataset:
    """Load the source named by ``dataset_cfg.kind`` with its pool / val / test splits."""
    return sources()[dataset_cfg.kind].load(dataset_cfg, seed)
