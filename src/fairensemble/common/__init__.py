"""The ground floor every other package stands on, importing nothing of fairensemble: the error
hierarchy (``errors``), seeds and stable hashes (``seeds``), the pydantic base of config
sections (``schema``), safe file writes and content digests (``files``), the checks every array
passes (``arrays``) and the words and numbers messages and tables are written with
(``text``)."""

from fairensemble.common.errors import (
    ConfigError,
    DataError,
    DataWarning,
    ExecutorError,
    FairensembleError,
    InputError,
    StoreError,
    UserError,
)

__all__ = ["ConfigError", "DataError", "DataWarning", "ExecutorError", "FairensembleError",
           "InputError", "StoreError", "UserError"]
