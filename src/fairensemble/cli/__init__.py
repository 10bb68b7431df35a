"""The command line: the Typer ``app`` (``main``: the commands run, report, recommend,
analyze, export and demo; ``init``: configs for your own data; ``console``: errors as one line,
warnings and progress bars; ``help``: help text that flows) and ``main``, the console script's
entry point."""

from fairensemble.cli.main import app, main

__all__ = ["app", "main"]
