"""The command line: ``fairensemble run|report|recommend|analyze|export|demo|init``. A user error
is one line and exit code 2; anything else is a bug and shows its traceback."""

from __future__ import annotations

import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import typer

from fairensemble import pipeline
from fairensemble.advice.budget import parse_sizes
from fairensemble.cli.console import Shown, console, out, user_errors
from fairensemble.cli.help import flowing
from fairensemble.cli.init import init_app
from fairensemble.config import CONFIGS, RunConfig, load_config, set_path, validate
from fairensemble.interop import export_run, prepare
from fairensemble.report import (
    RECOMMENDATION,
    print_recommendation,
    print_summary,
)

# the command line (the console script `fairensemble` runs it through `main`)
app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Measure how deep ensembles and the group mix of a training set shape "
                       "fairness.")
app.add_typer(init_app, name="init")

DEMO_CONFIG = CONFIGS / "demo.yaml"


def installed_version() -> str:
    """The version of the installed distribution (``pip show fairensemble``)."""
    try:
        return version("fairensemble")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"fairensemble {installed_version()}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: bool = typer.Option(False, "--version", callback=_print_version,
                                      is_eager=True, help="Show the version and exit."),
) -> None:
    """The options every command shares (the app's own help is set on ``app``)."""


def with_workers(cfg: RunConfig, workers: int | None) -> RunConfig:
    """``--workers N`` sets the worker count and nothing else (never the executor kind)."""
    if workers is None:
        return cfg
    data = cfg.model_dump(mode="json")
    set_path(data, "executor.workers", workers)
    return validate(data)


def _run(cfg: RunConfig, run_dir: Path) -> None:
    done = pipeline.run(cfg, run_dir, Shown())
    print_summary(done.summary, out)
    console.print(f"training {done.train_s:.1f} s (new cells evaluated in the workers: "
                  f"{done.eval_s:.1f} s of worker time), total {done.total_s:.1f} s; "
                  f"report: {run_dir / 'report.html'}", highlight=False)


OUT_HELP = "Run directory (default runs/<name>)."
SET_HELP = "Override a field: --set a.b=value (value parsed as YAML). Repeatable."


@app.command()
def run(
    config: Path = typer.Argument(..., help="YAML config of the run."),
    out_dir: Path | None = typer.Option(None, "--out", help=OUT_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    workers: int | None = typer.Option(None, help="Override executor.workers (the worker "
                                                  "count only, never executor.kind)."),
) -> None:
    """Train every missing cell of CONFIG, then write metrics, summary, figures and report."""
    with user_errors():
        cfg = with_workers(load_config(config, set_), workers)
        _run(cfg, out_dir or Path("runs") / cfg.name)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    out_dir: Path | None = typer.Option(None, "--out", help="Where to write metrics, summary, "
                                        "figures and report (default: the run directory)."),
    set_: list[str] = typer.Option([], "--set", help="Override an evaluation field (metrics, "
                                   "ensemble.k, analysis.ci, ...). Repeatable."),
) -> None:
    """Rebuild metrics.parquet, summary.json, figures and report.html from a run directory
    alone (no training, no data set needed)."""
    with user_errors():
        target = out_dir or run_dir
        summary = pipeline.report(run_dir, target, set_, Shown())
        print_summary(summary, out)
        console.print(f"report: {Path(target) / 'report.html'}", highlight=False)


@app.command()
def recommend(
    config: Path = typer.Argument(..., help="YAML config of the data, model and training."),
    out_dir: Path | None = typer.Option(None, "--out", help="Run directory (default "
                                        "runs/<name>-recommend); cells already there are reused."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    objective: str = typer.Option("gap", help="What the refinement aims at: gap, overall, "
                                  "worst or pareto (all four are reported)."),
    group: str | None = typer.Option(None, "--group", help="The group whose share moves "
                                     "(default: ratio_group, else the harder group)."),
    budget: int | None = typer.Option(None, "--budget", help="Plan for a training set of this "
                                      "size: fit per-group learning curves and predict the best "
                                      "share at it (it may exceed what exists today)."),
    sizes: str | None = typer.Option(None, "--sizes", help="With --budget: the training-set "
                                     "sizes to measure, e.g. 1000,2000,4000 (default: a "
                                     "quarter, a half and all of the largest the pool draws)."),
    cost: int | None = typer.Option(None, "--cost", help="Weigh every lever (mix, ensemble "
                                    "size, mitigation, thresholds) for a training cost of at "
                                    "most this many trainings: the smallest gap it buys."),
    tolerance: float | None = typer.Option(None, "--tolerance", help="With --cost: how much "
                                           "the overall metric may drop (default: "
                                           "analysis.tolerance, 0)."),
) -> None:
    """Which mix should I collect? A recommended share, with its interval.

    Measures each group's difficulty at the balanced mix, sweeps the share of the harder group
    coarsely then finely (reusing stored cells), and reports every objective's best share.
    With --budget N: measures learning curves at a few sizes and predicts the best share for
    a training set of N (how much of which group to collect)."""
    with user_errors():
        measured = parse_sizes(sizes)
        cfg = load_config(config, set_)
        run_dir = out_dir or Path("runs") / f"{cfg.name}-recommend"
        t0 = time.perf_counter()
        rec, trained = pipeline.recommend(cfg, run_dir, objective=objective, group=group,
                                          budget=budget, sizes=measured, cost=cost,
                                          tolerance=tolerance, hooks=Shown("recommend"))
        print_recommendation(rec, out)
        console.print(f"{trained} cells trained, total {time.perf_counter() - t0:.1f} s; "
                      f"{run_dir / RECOMMENDATION}, report: {run_dir / 'report.html'}",
                      highlight=False)


@app.command()
def analyze(
    predictions: Path = typer.Argument(..., help="Member predictions: a long-form table "
                                       "(Parquet, CSV) or an .npz."),
    out_dir: Path | None = typer.Option(None, "--out", help=OUT_HELP),
    set_: list[str] = typer.Option([], "--set", help="Override an evaluation field (metrics, "
                                   "ensemble.k, analysis.n_boot, ratio_group, ...). "
                                   "Repeatable."),
    group: list[str] = typer.Option([], "--group", help="A group column (repeat for "
                                    "intersectional groups; default: every column that is "
                                    "not reserved)."),
    grid: list[str] = typer.Option([], "--grid", help="A grid column: one cell per value "
                                   "(repeatable)."),
    logits: bool = typer.Option(False, "--logits", help="The p_<class> columns hold logits "
                                "(softmax applied; a sigmoid for one p column)."),
    name: str | None = typer.Option(None, "--name", help="The run's name (default: the "
                                    "file's name)."),
) -> None:
    """Analyze an ensemble you already have: member predictions made elsewhere in, a run
    directory out (metrics, summary, figures, report.html), as if fairensemble trained it."""
    with user_errors():
        t0 = time.perf_counter()
        prepared = prepare(predictions, out=out_dir, overrides=set_, group=group or None,
                           grid=grid or None, logits=logits, name=name)
        imp = prepared.imported
        n_test = sum(c.test.y.size for c in imp.cells)
        n_val = sum(c.val.y.size for c in imp.cells if c.val is not None)
        rows = f"{imp.rows:,} rows: " if imp.rows else ""
        console.print(f"[bold]{prepared.cfg.name}[/]: {rows}{len(imp.members)} members, "
                      f"{len(imp.cells)} cell(s), {n_test:,} test and {n_val:,} val samples, "
                      f"{len(imp.groups)} groups, {len(imp.classes)} classes -> "
                      f"{prepared.run_dir}", highlight=False)
        summary = pipeline.write_imported(prepared, Shown())
        print_summary(summary, out)
        console.print(f"total {time.perf_counter() - t0:.1f} s; report: "
                      f"{prepared.run_dir / 'report.html'}", highlight=False)


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    out_file: Path | None = typer.Option(None, "--out", help="The file to write: .parquet "
                                         "(default RUN_DIR/predictions.parquet) or .csv."),
) -> None:
    """Write a run's member predictions in the long form `analyze` reads (one row per
    sample and member)."""
    with user_errors():
        path = export_run(run_dir, out_file)
        console.print(f"wrote {path}", highlight=False)


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("runs/demo"), "--out", help="Run directory."),
    set_: list[str] = typer.Option([], "--set", help="Override a field of the demo config."),
) -> None:
    """Run the built-in demo (configs/demo.yaml): a small label-noise sweep."""
    with user_errors():
        cfg = load_config(DEMO_CONFIG, set_)
        _run(cfg, out_dir)


flowing(app)  # every command is registered: reflow their help (cli/help.py)


def main() -> None:
    try:
        app()
    except SystemExit as exc:  # typer's own usage errors already exit 2
        sys.exit(exc.code)
