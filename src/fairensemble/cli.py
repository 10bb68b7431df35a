"""Command line: ``fairensemble run|report|demo``. Errors are one line and exit code 2."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
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

from .cli_init import init_app
from .config import ConfigError, RunConfig, load_config

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Measure how deep ensembles and the group mix of a training set shape "
                       "fairness.")
app.add_typer(init_app, name="init")
console = Console(stderr=True)
out = Console(width=max(120, Console().width))

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


class MembersPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} members/s" if speed else "- members/s", style="cyan")


def fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures into one line on stderr and exit code 2 (no traceback)."""
    from .data.base import DataError
    from .report import MissingCells

    try:
        yield
    except (ConfigError, DataError, MissingCells, ValueError, FileNotFoundError) as err:
        fail(str(err).splitlines()[0] if str(err) else type(err).__name__)
    except KeyboardInterrupt:
        fail("interrupted; finished cells are kept, run the same command again to resume", 130)


def _run(cfg: RunConfig, run_dir: Path, workers: int | None) -> None:
    from .report import build_report, print_summary
    from .sweep import plan_run, run_sweep

    if workers is not None:
        cfg = cfg.model_copy(update={"executor": cfg.executor.model_copy(
            update={"workers": workers, "kind": "local" if workers > 1 else "serial"})})
    t0 = time.perf_counter()
    plan = plan_run(cfg)
    from .store import RunStore

    store = RunStore(run_dir)
    todo = sum(not store.has_cell(c.id) for c in plan.cells)
    total_cells = len(plan.cells)
    console.print(f"[bold]{cfg.name}[/]: {len(plan.points)} grid point(s) x "
                  f"{len(cfg.mixes or cfg.ratios)} mixes x {cfg.replicates} replicates = "
                  f"{total_cells} cells of {cfg.ensemble.members} members; "
                  f"{total_cells - todo} already done -> {run_dir}", highlight=False)
    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(),
               TaskProgressColumn(), TextColumn("cells {task.fields[cells]}"),
               MembersPerSecond(), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        done = total_cells - todo
        task = progress.add_task("training", total=todo * cfg.ensemble.members,
                                 cells=f"{done}/{total_cells}")

        def on_progress(kind: str, amount: float) -> None:
            nonlocal done
            if kind == "members":
                progress.advance(task, amount)
            else:
                done += int(amount)
                progress.update(task, cells=f"{done}/{total_cells}")

        run_sweep(cfg, run_dir, on_progress=on_progress, plan=plan)
        progress.update(task, completed=todo * cfg.ensemble.members)
    t_train = time.perf_counter() - t0
    summary = build_report(cfg, run_dir, plan=plan, workers=cfg.executor.workers)
    print_summary(summary, out)
    console.print(f"trained in {t_train:.1f} s, total {time.perf_counter() - t0:.1f} s; "
                  f"report: {run_dir / 'report.html'}", highlight=False)


@app.command()
def run(
    config: Path = typer.Argument(..., help="YAML config of the run."),
    out_dir: Path | None = typer.Option(None, "--out", help="Run directory "
                                           "(default runs/<name>)."),
    set_: list[str] = typer.Option([], "--set", help="Override a field: --set a.b=value "
                                   "(value parsed as YAML). Repeatable."),
    workers: int | None = typer.Option(None, help="Override executor.workers."),
) -> None:
    """Train every missing cell of CONFIG, then write metrics, summary, figures and report."""
    with user_errors():
        cfg = load_config(config, set_)
        _run(cfg, out_dir or Path("runs") / cfg.name, workers)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run directory.")) -> None:
    """Rebuild metrics.parquet, summary.json, figures and report.html from stored cells."""
    from .report import build_report, print_summary

    with user_errors():
        cfg_path = run_dir / "config.yaml"
        if not cfg_path.is_file():
            raise ConfigError(f"{cfg_path}: not a run directory (no config.yaml)")
        cfg = load_config(cfg_path)
        summary = build_report(cfg, run_dir, workers=cfg.executor.workers)
        print_summary(summary, out)
        console.print(f"report: {run_dir / 'report.html'}", highlight=False)


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("runs/demo"), "--out", help="Run directory."),
    set_: list[str] = typer.Option([], "--set", help="Override a field of the demo config."),
) -> None:
    """Run the built-in demo (configs/demo.yaml): a small label-noise sweep."""
    with user_errors():
        cfg = load_config(DEMO_CONFIG, set_)
        _run(cfg, out_dir, None)


def main() -> None:
    try:
        app()
    except SystemExit as exc:  # typer's own usage errors already exit 2
        sys.exit(exc.code)
