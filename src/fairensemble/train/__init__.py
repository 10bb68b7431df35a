"""Member trainers (TODO doc)."""

from fairensemble.train.streams import *  # noqa: F403
from fairensemble.train.streams import __all__  # noqa: F401
