"""What the documentation shows works, and its references are complete.

Every fenced ``python`` block of a user-guide page (``docs/guide/*.md``) runs, the page's
blocks in order in one namespace, in a fresh folder; ``shell`` blocks run too, each line with
bash, where ``fairensemble`` and ``python`` are this environment's own. A block that cannot
run here starts with ``# not run:`` and says why. Other fences (``bash``, ``text``, ``yaml``)
are illustrations and are not run.

The generated references (``docs/_ext``) are checked without Sphinx: the configuration
reference names every field of every section, the CLI reference every command and option.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from fairensemble.sweep import executors

GUIDE = ROOT / "docs" / "guide"
PAGES = sorted(GUIDE.glob("*.md"))
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,})(?P<info>[^`\n]*)$")
NOT_RUN = "# not run:"


def blocks(text: str) -> list[tuple[str, int, str]]:
    """(language, line number, code) of each fenced block of a Markdown page."""
    found, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang = (m["info"].strip().split() or [""])[0]
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(m["fence"]):
            body.append(lines[i][len(m["indent"]):])
            i += 1
        found.append((lang, start + 1, "\n".join(body) + "\n"))
        i += 1
    return found


def test_blocks_are_read_as_markdown_fences():
    text = ("x\n```python\na = 1\n```\n\n````text\n```python\nnot code\n```\n````\n"
            "```shell\nls\n```\n")
    assert blocks(text) == [("python", 3, "a = 1\n"), ("text", 7, "```python\nnot code\n```\n"),
                            ("shell", 12, "ls\n")]


def _tools(folder: Path) -> dict[str, str]:
    """An environment whose ``fairensemble`` and ``python`` are this interpreter's."""
    folder.mkdir()
    for name, command in (("fairensemble", f'"{sys.executable}" -m fairensemble "$@"'),
                          ("python", f'"{sys.executable}" "$@"')):
        path = folder / name
        path.write_text(f"#!/bin/sh\nexec {command}\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    pythonpath = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH"))
                                 if p)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": pythonpath, "MPLBACKEND": "Agg", "COLUMNS": "120"}


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_every_code_block_of_a_guide_page_runs(page, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    env = _tools(tmp_path / "bin")
    monkeypatch.chdir(work)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the suite runs in two processes on two cores: a unit trains on one thread here (two
    # threads per process oversubscribe the machine several times over)
    monkeypatch.setattr(executors, "default_threads", lambda cfg: cfg.threads or 1)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for lang, line, code in blocks(page.read_text()):
        if code.lstrip().startswith(NOT_RUN) or lang not in ("python", "shell"):
            continue
        where = f"{page.relative_to(ROOT)}:{line}"
        if lang == "python":
            exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the page's own code
            continue
        res = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=work, env=env,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, f"{where}: shell block failed\n{res.stdout}\n{res.stderr}"


def test_every_guide_page_is_in_the_guide_toctree():
    index = (GUIDE / "index.md").read_text()
    missing = [p.stem for p in PAGES if p.stem != "index" and f"\n{p.stem}\n" not in index]
    assert not missing, f"guide pages missing from docs/guide/index.md's toctree: {missing}"


# ----------------------------------------------------------------------------- references


@pytest.fixture(scope="module")
def ext(request):
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    request.addfinalizer(lambda: sys.path.remove(str(ROOT / "docs" / "_ext")))
    import fe_cli
    import fe_config

    return fe_config, fe_cli


def test_the_configuration_reference_names_every_field_of_every_section(ext):
    fe_config, _ = ext
    from fairensemble.config import RunConfig, TrainConfig
    from fairensemble.data import sources

    text = fe_config.config_rst()
    for name in TrainConfig.model_fields:
        assert f"``train.{name}``" in text, f"train.{name} is not in the reference"
    for name in RunConfig.model_fields:
        assert f"``{name}``" in text
    for kind, source in sources().items():
        assert f"``dataset`` with ``kind: {kind}``" in text
        for name in source.config.model_fields:
            assert f"``dataset.{name}``" in text
    assert "train.early_stopping.patience" in fe_config.field_paths()


def test_the_configuration_reference_shows_type_default_and_description(ext):
    fe_config, _ = ext
    text = fe_config.config_rst()
    row = text[text.index("``train.epochs``"):].split("   * - ")[0]
    assert "integer (> 0)" in row and "``100``" in row
    assert "Passes over each member's training rows." in row


def test_the_cli_reference_has_every_command_and_option(ext):
    _, fe_cli = ext
    text = fe_cli.cli_rst()
    for command, ctx in fe_cli.commands():
        assert f"``{ctx.command_path}``" in text
        for param in command.get_params(ctx):
            if param.param_type_name == "option":
                assert f"``{param.get_help_record(ctx)[0]}``" in text
    # the same flowing text --help prints
    assert "from a run directory alone (no training, no data set needed)." in text


def test_help_text_becomes_safe_rest(ext):
    _, fe_cli = ext
    assert fe_cli.rst_text("the long form `analyze` reads") == "the long form ``analyze`` reads"
    assert fe_cli.rst_text("a*b set_ x|y :doc:`page`") == r"a\*b set\_ x\|y :doc:`page`"
