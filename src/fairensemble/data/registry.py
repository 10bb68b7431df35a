"""The registry of data sources: each source module registers its config class (whose ``kind``
names it) and its loader, and ``config.py`` builds the dataset union from what is here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
