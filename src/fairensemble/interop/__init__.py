"""Predictions made elsewhere, in and out: ``fairensemble analyze`` reads members' predictions
(a long-form table, an ``.npz``, arrays) into a run directory as if fairensemble had trained
them, and ``fairensemble export`` writes a run's member predictions in that long form.

By job: ``format`` (the long form's words and what an import holds), ``predictions`` (checks
of probabilities and groups), ``long_form`` and ``arrays`` (the readers), ``build`` (an
import planned as a run), ``export``.
"""

from fairensemble.interop.arrays import from_arrays, read_npz
from fairensemble.interop.build import Prepared, build_run, prepare, read_predictions
from fairensemble.interop.export import export_run
from fairensemble.interop.format import Imported, ImportedCell, Part, cell_digest
from fairensemble.interop.long_form import read_long
from fairensemble.interop.predictions import check_probabilities, name_groups

__all__ = ["Imported", "ImportedCell", "Part", "Prepared", "build_run", "cell_digest",
           "check_probabilities", "export_run", "from_arrays", "name_groups", "prepare",
           "read_long", "read_npz", "read_predictions"]
