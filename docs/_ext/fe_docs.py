"""The Sphinx extension that generates the reference pages from the code when a build starts
(``builder-inited``, before Sphinx looks for source files):

* ``reference/api/*.rst``: the Python API (``fe_api``), one page per public package;
* ``_generated/config.rst``: the configuration reference (``fe_config``);
* ``_generated/cli.rst``: the command-line reference (``fe_cli``);
* ``_generated/metrics.rst``: the table of metrics on the metrics guide (``fe_metrics``);
* ``_generated/packages.rst``: the developer guide's map of the packages (``fe_api``);
* ``_generated/rundir_*.rst``: the run directory's formats, from a real tiny run (``fe_rundir``).

The ``_generated`` parts are included by hand-written pages (``reference/*.rst``) that carry
the prose around them. A file is rewritten only when its text changed, so an incremental build
rereads only what changed. What the generators report (an undocumented output, say) becomes a
build warning: with ``-W`` the build fails.
"""

from __future__ import annotations

import time
from pathlib import Path

import fe_api
import fe_cli
import fe_config
import fe_metrics
import fe_rundir
import yaml
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def generate(app: Sphinx) -> None:
    src = Path(app.srcdir)
    t0 = time.perf_counter()
    api = src / "reference" / "api"
    pages = fe_api.api_pages()
    for stale in api.glob("*.rst"):
        if stale.name not in pages:
            stale.unlink()
    for name, text in pages.items():
        _write(api / name, text)
    gen = src / "_generated"
    _write(gen / "config.rst", fe_config.config_rst())
    _write(gen / "config_kinds.rst", fe_config.field_kinds_rst())
    _write(gen / "cli.rst", fe_cli.cli_rst())
    _write(gen / "metrics.rst", fe_metrics.metrics_rst())
    _write(gen / "packages.rst", fe_api.packages_rst())
    prose = yaml.safe_load((src / "reference" / "run-directory.yaml").read_text())
    parts, problems = fe_rundir.rundir_parts(prose)
    for name, text in parts.items():
        _write(gen / f"rundir_{name}.rst", text)
    for problem in problems:
        logger.warning(problem, location="reference/run-directory.yaml")
    logger.info(f"fe_docs: reference pages generated in {time.perf_counter() - t0:.1f} s")


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", generate)
    app.add_config_value("fe_docs_generated", "_generated", "env")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
