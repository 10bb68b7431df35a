"""The one error hierarchy: everything fairensemble raises on purpose is a ``FairensembleError``.

``UserError`` and its kinds are problems the user can fix, phrased as one line that names the
field, file or column and what was expected; the command line prints that line and exits 2.
They are ``ValueError`` s too, so code that caught ``ValueError`` keeps working. Any other
exception is a bug: the command line lets its traceback show.
"""

from __future__ import annotations


class FairensembleError(Exception):
    """Base of every error fairensemble raises on purpose."""


class UserError(FairensembleError, ValueError):
    """Something the user can fix: bad config, bad data, bad input files, a run directory in
    the wrong state. Its message is one line."""


class ConfigError(UserError):
    """A config field, ``--set`` override or command-line option with a value that cannot
    work; the line names the field and what was expected."""


class DataError(UserError):
    """Bad input data: the line names the file, column or attribute."""


class InputError(UserError):
    """Bad inputs handed over: predictions, weights or arrays of the wrong shape or kind."""


class StoreError(UserError):
    """A run directory problem: the line names the path."""


class ExecutorError(UserError):
    """An executor cannot run the units (Ray missing, a unit no node can hold, a unit lost
    more often than ``executor.max_retries``)."""


class DataWarning(UserWarning):
    """Something in the data worth knowing that does not stop the run (images left out,
    rows dropped): ``warnings.warn(line, DataWarning)``; the command line prints the line."""


__all__ = ["DataWarning", "ConfigError", "DataError", "ExecutorError", "FairensembleError",
           "InputError", "StoreError", "UserError"]
