"""Command line: ``fairensemble run|report|recommend|analyze|export|demo``. Errors are one line
and exit code 2."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

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

from fairensemble.cli.init import init_app
from fairensemble.common.errors import ConfigError, UserError
from fairensemble.config import (
    EVALUATION_FIELDS,
    RUNTIME_FIELDS,
    RunConfig,
    load_config,
    parse_override,
    set_path,
    validate,
)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Measure how deep ensembles and the group mix of a training set shape "
                       "fairness.")
app.add_typer(init_app, name="init")
console = Console(stderr=True)
out = Console(width=max(120, Console().width))

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"  # package data


class MembersPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} members/s" if speed else "- members/s", style="cyan")


def fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a user error (``UserError``: bad config, data, input files, run directory) into
    one line on stderr and exit code 2. Anything else is a bug: its traceback shows."""
    try:
        yield
    except UserError as err:
        fail(str(err).splitlines()[0] if str(err) else type(err).__name__)
    except KeyboardInterrupt:
        fail("interrupted; finished cells are kept, run the same command again to resume", 130)


# what `report --set` may change: anything but what was trained (config.py declares which)
REPORT_FIELDS = (*EVALUATION_FIELDS, *RUNTIME_FIELDS)


def check_evaluation_overrides(overrides: list[str]) -> None:
    for text in overrides:
        key = parse_override(text)[0]
        if not any(key == f or key.startswith(f + ".") for f in REPORT_FIELDS):
            raise ConfigError(
                f"--set {key}: changes what was trained; `report` takes only evaluation "
                f"fields ({', '.join(REPORT_FIELDS)}); use `run` to train a changed config"
            )


def with_workers(cfg: RunConfig, workers: int | None) -> RunConfig:
    """``--workers N`` sets the worker count and nothing else (never the executor kind)."""
    if workers is None:
        return cfg
    data = cfg.model_dump(mode="json")
    set_path(data, "executor.workers", workers)
    return validate(data)


def progress_bar() -> Progress:
    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(),
               TaskProgressColumn(), TextColumn("cells {task.fields[cells]}"),
               MembersPerSecond(), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn()]
    return Progress(*columns, console=console, transient=False)


@contextmanager
def evaluation_progress() -> Iterator[tuple[Callable[[int], None], Callable[[float], None]]]:
    """(on_start, on_progress) for evaluating stored cells: a progress bar that appears only
    when cells need evaluating (a changed metric list, k or interval method; cells trained by
    an older version)."""
    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(),
               TaskProgressColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} cells"),
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


def report_with_progress(run_dir: Path, **kwargs) -> dict:
    """build_report, evaluating under a progress bar the cells that need it."""
    from fairensemble.report.build import build_report

    with evaluation_progress() as (on_start, on_progress):
        return build_report(run_dir, on_start=on_start, on_progress=on_progress, **kwargs)


def warn(line: str) -> None:
    console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)


def train_with_progress(cfg: RunConfig, run_dir: Path, plan, preview
                        ) -> tuple[float, float, dict]:
    """Check the plan's stored cells (evaluating those that need it), then train the missing
    ones under a progress bar; returns (seconds, worker seconds spent evaluating the new
    cells, the stored cells' evaluations for the report's ``known``). Call it holding the run
    directory, so that the report reads no cell again."""
    from fairensemble.pipeline import check_stored, train_missing

    with evaluation_progress() as (on_start, on_progress):
        stored = check_stored(cfg, run_dir, plan, on_warning=warn, on_start=on_start,
                              on_progress=on_progress)
    total = len(plan.cells)
    todo = total - len(stored)
    console.print(f"[bold]{cfg.name}[/]: {len(plan.points)} grid point(s) x "
                  f"{len(cfg.mixes or cfg.ratios)} mixes x {cfg.replicates} replicates = "
                  f"{total} cells of {cfg.ensemble.members} members; "
                  f"{total - todo} already done -> {run_dir} ({cfg.executor.kind} executor)",
                  highlight=False)
    t0 = time.perf_counter()
    with progress_bar() as progress:
        done = total - todo
        task = progress.add_task("training", total=todo * cfg.ensemble.members,
                                 cells=f"{done}/{total}")

        def on_progress(kind: str, amount: float) -> None:
            nonlocal done
            if kind == "members":
                progress.advance(task, amount)
            else:
                done += int(amount)
                progress.update(task, cells=f"{done}/{total}")

        result = train_missing(cfg, run_dir, plan, preview, done=set(stored),
                               on_progress=on_progress, on_warning=warn)
        progress.update(task, completed=todo * cfg.ensemble.members)
    return time.perf_counter() - t0, result.eval_s, stored


def _run(cfg: RunConfig, run_dir: Path) -> None:
    from fairensemble.report.build import print_summary
    from fairensemble.sweep.executors import check_available
    from fairensemble.sweep.runner import plan_with_preview
    from fairensemble.sweep.store import RunStore

    check_available(cfg.executor)
    t0 = time.perf_counter()
    with RunStore(run_dir).locked():
        plan, preview = plan_with_preview(cfg)
        t_train, eval_s, stored = train_with_progress(cfg, run_dir, plan, preview)
        summary = report_with_progress(run_dir, plan=plan, known=stored)
    print_summary(summary, out)
    console.print(f"training {t_train:.1f} s (new cells evaluated in the workers: "
                  f"{eval_s:.1f} s of worker time), total {time.perf_counter() - t0:.1f} s; "
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
    from fairensemble.evaluation.analysis import load_run
    from fairensemble.report.build import print_summary
    from fairensemble.sweep.store import RunStore

    with user_errors():
        check_evaluation_overrides(set_)
        _, plan = load_run(run_dir, set_)
        target = out_dir or run_dir
        with RunStore(run_dir).locked():
            summary = report_with_progress(run_dir, out_dir=target, plan=plan)
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
) -> None:
    """Which mix should I collect? A recommended share, with its interval.

    Measures each group's difficulty at the balanced mix, sweeps the share of the harder group
    coarsely then finely (reusing stored cells), and reports every objective's best share.
    With --budget N: measures learning curves at a few sizes and predicts the best share for
    a training set of N (how much of which group to collect)."""
    from fairensemble.advice.recommend import (
        check_objective,
        parse_sizes,
        run_budget,
        run_recommend,
    )
    from fairensemble.common.files import write_json
    from fairensemble.report.build import print_budget, print_recommendation
    from fairensemble.sweep.executors import check_available
    from fairensemble.sweep.store import RunStore

    with user_errors():
        check_objective(objective)
        measured = parse_sizes(sizes)
        if measured is not None and budget is None:
            fail("--sizes: goes with --budget N (the training-set size to plan for)")
        cfg = load_config(config, set_)
        check_available(cfg.executor)
        run_dir = out_dir or Path("runs") / f"{cfg.name}-recommend"
        t0 = time.perf_counter()
        trained = 0

        def train(step_cfg: RunConfig, plan, preview) -> None:
            nonlocal trained
            store = RunStore(run_dir)
            before = sum(store.has_cell(c.id) for c in plan.cells)
            train_with_progress(step_cfg, run_dir, plan, preview)
            trained += len(plan.cells) - before

        def say(line: str) -> None:
            console.print(f"[bold]recommend[/]: {escape(line)}", highlight=False)

        with RunStore(run_dir).locked():
            if budget is not None:
                rec = run_budget(cfg, run_dir, budget, measured, group, train, say)
            else:
                rec = run_recommend(cfg, run_dir, objective, group, train, say)
            plan = rec.pop("plan")
            known = rec.pop("known", None)  # the budget's evaluations, under the report's spec
            write_json(run_dir / "recommendation.json", rec)
            report_with_progress(run_dir, plan=plan, known=known)
        (print_budget if budget is not None else print_recommendation)(rec, out)
        console.print(f"{trained} cells trained, total {time.perf_counter() - t0:.1f} s; "
                      f"{run_dir / 'recommendation.json'}, report: {run_dir / 'report.html'}",
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
    from fairensemble.interop.importer import prepare, write_run
    from fairensemble.report.build import print_summary

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
        with evaluation_progress() as (on_start, on_progress):
            summary = write_run(prepared, on_start, on_progress)
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
    from fairensemble.interop.export import export_run

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


def main() -> None:
    try:
        app()
    except SystemExit as exc:  # typer's own usage errors already exit 2
        sys.exit(exc.code)
