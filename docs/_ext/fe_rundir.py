"""The run directory's file formats, generated from a real run the build makes (a tiny
synthetic sweep, a few seconds): which files it wrote, the keys of plan.json, a cell's arrays
and record, the columns of metrics.parquet with their types, the keys of summary.json and the
figures with their captions. What each one means is prose in ``reference/run-directory.yaml``
(the arrays' and the cell record's come from ``CellRecord``'s field docstrings); anything the
run wrote that the prose does not describe is returned as a problem, which the extension
reports as a build warning, so a new output cannot go undocumented.

``rundir_parts(prose)`` returns ({part name: reST}, problems). Nothing here needs Sphinx.
"""

from __future__ import annotations

import ast
import json
import re
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fe_cli import rst_text

# small enough to take seconds, rich enough to write every file a plain run writes: a grid
# field (its column), a val split (post-processing rows), several mixes and replicates
TINY = ["name=formats", "dataset.pool_size=1500", "dataset.test_size=400", "dataset.val_size=300",
        "ratios=[0.0,0.5,1.0]", "train_size=200", "replicates=2",
        "grid.dataset.label_noise=[0.0,0.3]", "model.hidden=[8]", "train.epochs=2",
        "ensemble.members=3", "ensemble.draws=3", "executor.kind=serial",
        "executor.threads=1"]
_ID = re.compile(r"\b[0-9a-f]{16}\b")


def tiny_run(out: Path) -> Path:
    """A tiny synthetic run in ``out``; returns its run directory."""
    import fairensemble as fe

    run_dir = out / "formats"
    fe.run(fe.load_config(None, TINY), str(run_dir))
    return run_dir


def _normal(rel: str) -> str:
    """A file's path with its ids and names replaced by the placeholders the prose uses."""
    parts = rel.split("/")
    if parts[0] == "cells" and len(parts) == 2:
        return "cells/<id>" + parts[1][16:]
    if parts[0] == "evals" and len(parts) == 3:
        return "evals/<hash>/<id>" + parts[2][16:]
    if parts[0] == "figures":
        return "figures/<name>.png"
    return rel


def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass (a string right after a field), read from its
    source."""
    import inspect

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    out = {}
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)):
            out[node.target.id] = " ".join(nxt.value.value.split())
    return out


def _table(header: list[str], rows: list[list[str]], widths: list[int]) -> list[str]:
    """A list-table; every cell is prose, with ``rst_text``'s code and escapes."""
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {' '.join(map(str, widths))}",
             "   :class: fe-formats", ""]
    for row in [header, *rows]:
        for j, cell in enumerate(row):
            lines.append(f"   {'* -' if j == 0 else '  -'} {rst_text(cell) if cell else ' '}")
    return [*lines, ""]


def _json_block(value: Any) -> list[str]:
    text = json.dumps(value, indent=2)
    return [".. code-block:: json", "", *("   " + line for line in text.splitlines()), ""]


def _described(kind: str, seen: list[str], prose: dict[str, str], problems: list[str]) -> None:
    for key in seen:
        if key not in prose:
            problems.append(f"run directory: {kind} {key!r} is written by a run but not "
                            f"described in docs/reference/run-directory.yaml ({kind})")


def rundir_parts(prose: dict[str, dict[str, str]], work: Path | None = None
                 ) -> tuple[dict[str, str], list[str]]:
    from fairensemble.sweep.store import ARRAY_NAMES, CellRecord

    problems: list[str] = []
    parts: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = tiny_run(Path(work or tmp))
        files = sorted({_normal(p.relative_to(run_dir).as_posix())
                        for p in run_dir.rglob("*") if p.is_file()})
        _described("files", files, prose["files"], problems)
        rows = [[f"``{name}``", text] for name, text in prose["files"].items()]
        parts["files"] = "\n".join(_table(["path", "what it holds"], rows, [30, 70]))

        plan = json.loads((run_dir / "plan.json").read_text())
        _described("plan", list(plan), prose["plan"], problems)
        _described("plan_cell", list(plan["cells"][0]), prose["plan_cell"], problems)
        lines = _table(["key", "what it holds"],
                       [[f"``{k}``", v] for k, v in prose["plan"].items()], [25, 75])
        lines += ["Each entry of ``cells``:", ""]
        lines += _table(["key", "what it holds"],
                        [[f"``{k}``", v] for k, v in prose["plan_cell"].items()], [25, 75])
        lines += ["One cell of the run the build made:", "", *_json_block(plan["cells"][0])]
        parts["plan"] = "\n".join(lines)

        docs = field_docs(CellRecord)
        cell_json = sorted((run_dir / "cells").glob("*.json"))[0]
        meta = json.loads(cell_json.read_text())
        arrays = np.load(cell_json.with_suffix(".npz"))
        rows = []
        for name in ARRAY_NAMES:
            got = (f"``{arrays[name].dtype}`` {list(arrays[name].shape)}" if name in arrays.files
                   else "(none in this run)")
            rows.append([f"``{name}``", got, docs.get(name, "")])
        for name in arrays.files:
            if name not in ARRAY_NAMES:
                problems.append(f"run directory: array {name!r} in a cell's .npz is not in "
                                "sweep.store.ARRAY_NAMES")
        lines = ["The arrays of ``cells/<id>.npz`` (``CellRecord``'s fields; the dtype and "
                 "shape are those of one cell of the run the build made: 3 members, 2 classes):",
                 "", *_table(["array", "in the build's run", "what it holds"], rows,
                             [18, 22, 60])]
        coords = set(meta.get("coords", {}))
        keys = [k for k in meta if k not in coords]
        cell_prose = {**{k: docs[k] for k in docs if k not in ARRAY_NAMES},
                      **prose["cell_json"]}
        _described("cell_json", keys, cell_prose, problems)
        rows = [[f"``{k}``", cell_prose[k]] for k in keys if k in cell_prose]
        rows.append(["``<coordinates>``", prose["cell_json"]["<coordinates>"]])
        lines += ["The keys of ``cells/<id>.json``:", "",
                  *_table(["key", "what it holds"], rows, [25, 75]),
                  "One of them, from the build's run:", "", *_json_block(meta)]
        parts["cell"] = "\n".join(lines)

        table = pd.read_parquet(run_dir / "metrics.parquet")
        grid = list(plan["grid_fields"])
        cols = ["<grid field>" if c in grid else c for c in table.columns]
        _described("metrics_columns", list(dict.fromkeys(cols)), prose["metrics_columns"],
                   problems)
        dtypes = {("<grid field>" if c in grid else c): str(t) for c, t in table.dtypes.items()}
        rows = [[f"``{c}``", f"``{dtypes[c]}``" if c in dtypes else "(not in this run)", text]
                for c, text in prose["metrics_columns"].items()]
        sample = table[(table["metric"] == "accuracy") & (table["k"] == 2)].head(6)
        lines = [*_table(["column", "type", "what it holds"], rows, [18, 12, 70]),
                 "A few rows of the build's run (accuracy of 2-member ensembles):", "",
                 ".. code-block:: text", "",
                 *("   " + line for line in sample.to_string(index=False).splitlines()), ""]
        parts["metrics"] = "\n".join(lines)

        summary = json.loads((run_dir / "summary.json").read_text())
        _described("summary", list(summary), prose["summary"], problems)
        _described("summary_point", list(summary["grid_points"][0]), prose["summary_point"],
                   problems)
        lines = _table(["key", "what it holds"],
                       [[f"``{k}``", v] for k, v in prose["summary"].items()], [25, 75])
        lines += ["Each entry of ``grid_points``:", ""]
        lines += _table(["key", "what it holds"],
                        [[f"``{k}``", v] for k, v in prose["summary_point"].items()], [25, 75])
        parts["summary"] = "\n".join(lines)

        import fairensemble as fe
        from fairensemble.report import plots

        _, run_plan = fe.load_run(str(run_dir))
        preview = dict(np.load(run_dir / "preview.npz"))
        rows = []
        for png in sorted((run_dir / "figures").glob("*.png"), key=lambda p: p.stem):
            # each figure is drawn by report.plots.draw_figure under its file's name (not
            # rendered here: only its caption is read)
            if png.stem not in plots.FIGURE_NAMES:
                problems.append(f"run directory: figures/{png.name} is not one of "
                                f"fairensemble.report.plots.FIGURE_NAMES")
                continue
            got = plots.draw_figure(png.stem, summary, run_plan, preview)
            plots.plt.close(got[0])
            rows.append([f"``figures/{png.name}``", " ".join(got[1].split())])
        lines = ["The figures a run with a grid field, several mixes and synthetic data draws "
                 "(``fairensemble.report.plots``), with the caption each carries in the "
                 "report:", "", *_table(["file", "caption"], rows, [25, 75])]
        parts["figures"] = "\n".join(lines)
    return parts, problems


__all__ = ["TINY", "field_docs", "rundir_parts", "tiny_run"]
