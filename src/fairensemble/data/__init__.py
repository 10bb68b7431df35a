"""Data sources by ``dataset.kind``; each returns a ``Dataset`` of pool / val / test splits.

Every module of this package that registers a source (``registry.register(Config, load)`` at
its bottom) is one: adding a source is one file plus its test. ``sources()`` imports them all
(their heavy imports, pandas, scikit-learn, Pillow, wait inside their functions). The helper
modules: ``base`` (the ``Dataset`` a source returns), ``reader`` (tables from files),
``frame`` (labels, groups and splits of a table's rows), ``sampling`` (shares to counts, the
group-ratio sampler), ``decode`` (images and their cache).
"""

from fairensemble.common.errors import DataError
from fairensemble.data.base import Dataset, Split
from fairensemble.data.registry import SOURCES, Source, load_dataset, sources

__all__ = ["SOURCES", "DataError", "Dataset", "Source", "Split", "load_dataset", "sources"]
