"""fairensemble: how deep ensembles and the group mix of a training set shape fairness.

The handful of names a notebook needs; the rest lives in the subpackages::

    from fairensemble import load_config, run, analyze
    cfg = load_config("configs/demo.yaml", ["train.epochs=10"])
    summary = run(cfg, "runs/demo")
    summary = analyze("predictions.parquet", out="runs/mine")   # an ensemble made elsewhere

The packages, top to bottom; imports only point down (``tests/test_layers.py`` checks it):

    cli          the command line (main, console, init)
    pipeline     the sequences of the commands, shared by the CLI and this module
    interop      predictions made elsewhere, in (analyze) and out (export)
    report       rendering: files, figures, tables, report.html; computes nothing
    advice       recommend, budget, learning curves, levers, config proposals (init)
    evaluation   reading a run directory: ensembles, metrics tables, summaries, costs
    sweep        planning, executors, the sweep runner and the run directory (store)
    train        member trainers (stacked, loop, frozen) and mitigations
    config       the validated run config
    data         data sources, one module each, and the group-ratio sampler
    models, metrics   model families and the metric registry
    common       errors, seeds, schema, files, array checks, text

Training (plan, data, train, executors, sweep) writes cells into the run directory;
evaluation reads them. Neither half imports the other's internals: the pipeline hands the
sweep an evaluator as a plain callable.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_config": "config",
    "RunConfig": "config",
    "FairensembleError": "common",
    "UserError": "common",
    "ConfigError": "common",
    "DataError": "common",
    "InputError": "common",
    "StoreError": "common",
    "ExecutorError": "common",
    "load_dataset": "data",
    "Dataset": "data",
    "Split": "data",
    "plan_run": "sweep",
    "run_sweep": "sweep",
    "RunStore": "sweep",
    "CellRecord": "sweep",
    "load_run": "evaluation",
    "evaluate_cell": "evaluation",
    "group_metrics": "metrics",
    "build_report": "pipeline",
    "train_stacked": "train",
    "train_loop": "train",
}


def run(cfg: Any, run_dir: str) -> dict:
    """Train every missing cell of ``cfg`` into ``run_dir`` and build its outputs; returns
    the summary (what ``fairensemble run`` does, without the progress bar)."""
    from fairensemble.pipeline import run as run_pipeline

    return run_pipeline(cfg, run_dir).summary


def analyze(predictions: Any = None, **kwargs: Any) -> dict:
    """Analyze member predictions made elsewhere (a long-form table, an .npz, or arrays:
    ``probs=``, ``y=``, ``groups=``) into a run directory (``out=``) with every output of
    ``report``; returns the summary (what ``fairensemble analyze`` does)."""
    from fairensemble.pipeline import analyze as analyze_predictions

    return analyze_predictions(predictions, **kwargs)


def __getattr__(name: str) -> Any:  # imports on first use keep `import fairensemble` light
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["analyze", "run", "__version__", *_EXPORTS]
