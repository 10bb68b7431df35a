"""The command line (TODO doc)."""

from fairensemble.cli.main import app, main

__all__ = ["app", "main"]
