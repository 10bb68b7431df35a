"""What the command line shows: errors as one line, warnings, and the progress bars of
training and evaluating (``Shown``, the pipeline's hooks drawn with rich)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from fairensemble.common.errors import DataWarning, UserError
from fairensemble.config import RunConfig
from fairensemble.pipeline import Hooks
from fairensemble.sweep.plan import Plan

console = Console(stderr=True)  # progress, warnings, errors
out = Console(width=max(120, Console().width))  # results


def fail(message: str, code: int = 2) -> None:
    """Print ``message`` as one error line and exit with ``code``."""
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(line: str) -> None:
    console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a user error (``UserError``: bad config, data, input files, run directory) into
    one line on stderr and exit code 2. Anything else is a bug: its traceback shows. A
    ``DataWarning`` raised meanwhile is printed as a warning line."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", DataWarning)
        shown = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], *args: Any,
                 **kwargs: Any) -> None:
            if issubclass(category, DataWarning):
                warn(str(message))
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        try:
            yield
        except UserError as err:
            fail(str(err).splitlines()[0] if str(err) else type(err).__name__)
        except KeyboardInterrupt:
            fail("interrupted; finished cells are kept, run the same command again to resume",
                 130)


class MembersPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} members/s" if speed else "- members/s", style="cyan")


class Shown(Hooks):
    """The pipeline's hooks, drawn: a line per warning, a progress bar while stored cells are
    evaluated (only when some need it) and one while cells train."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def warn(self, line: str) -> None:
        warn(line)

    def say(self, line: str) -> None:
        console.print(f"[bold]{self.prefix}[/]: {escape(line)}" if self.prefix else
                      escape(line), highlight=False)

    @contextmanager
    def evaluating(self) -> Iterator[tuple[Callable[[int], None], Callable[[float], None]]]:
        columns = [TextColumn("[progress.description]{task.description}"), BarColumn(),
                   TaskProgressColumn(),
                   TextColumn("{task.completed:.0f}/{task.total:.0f} cells"),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
        with Progress(*columns, console=console, transient=False) as progress:
            task = None

            def on_start(n: int) -> None:
                nonlocal task
                task = progress.add_task("evaluating", total=n)

            def on_progress(amount: float) -> None:
                if task is not None:
                    progress.advance(task, amount)

            try:
                yield on_start, on_progress
            except BaseException:
                if task is not None:  # the error's one line is all that stays on the screen
                    progress.update(task, visible=False)
                raise

    @contextmanager
    def training(self, cfg: RunConfig, plan: Plan, done: int, run_dir: Path
                 ) -> Iterator[Callable[[str, float], None]]:
        total = len(plan.cells)
        todo = total - done
        console.print(f"[bold]{escape(cfg.name)}[/]: {len(plan.points)} grid point(s) x "
                      f"{len(cfg.mixes or cfg.ratios)} mixes x {cfg.replicates} replicates = "
                      f"{total} cells of {cfg.ensemble.members} members; {done} already done "
                      f"-> {escape(str(run_dir))} ({cfg.executor.kind} executor)",
                      highlight=False)
        columns = [TextColumn("[progress.description]{task.description}"), BarColumn(),
                   TaskProgressColumn(), TextColumn("cells {task.fields[cells]}"),
                   MembersPerSecond(), TimeElapsedColumn(), TextColumn("ETA"),
                   TimeRemainingColumn()]
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("training", total=todo * cfg.ensemble.members,
                                     cells=f"{done}/{total}")
            finished = done

            def on_progress(kind: str, amount: float) -> None:
                nonlocal finished
                if kind == "members":
                    progress.advance(task, amount)
                else:
                    finished += int(amount)
                    progress.update(task, cells=f"{finished}/{total}")

            yield on_progress
            progress.update(task, completed=todo * cfg.ensemble.members)


__all__ = ["Shown", "console", "fail", "out", "user_errors", "warn"]
