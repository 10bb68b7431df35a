"""The command line reads like the docs: ``--version``, and help text whose paragraphs flow to
the terminal's width instead of keeping the docstrings' hard line breaks."""

from __future__ import annotations

import tomllib

import typer
from conftest import ROOT
from typer.testing import CliRunner

import fairensemble
from fairensemble.cli import app
from fairensemble.cli.help import reflow
from fairensemble.cli.main import installed_version


def _commands(command, path: str = "fairensemble"):
    """Every command under ``command`` (Typer's own command objects: it carries its own copy
    of click, so they are walked by their attributes)."""
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _commands(sub, f"{path} {name}")


def test_version_prints_the_installed_version_and_exits():
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0, res.output
    assert res.stdout == f"fairensemble {installed_version()}\n"


def test_the_package_version_is_the_distribution_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert fairensemble.__version__ == project["version"]


def test_help_flows_a_docstring_line_break_into_one_line():
    # report's docstring breaks "from a run directory" / "alone (no training, ..." in the source
    res = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert res.exit_code == 0, res.output
    line = next(x for x in res.stdout.splitlines() if "Rebuild metrics.parquet" in x)
    assert "from a run directory alone (no training, no data set needed)." in line
    res = CliRunner().invoke(app, ["recommend", "--help"],
                             env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert "sweeps the share of the harder group coarsely then finely" in res.stdout


def test_every_command_help_keeps_paragraphs_and_has_no_hard_line_break():
    root = typer.main.get_command(app)
    seen = 0
    for path, command in _commands(root):
        text = command.help or ""
        assert text, f"{path}: no help text"
        for para in text.split("\n\n"):
            lines = para.split("\n")
            assert all(x.startswith(("- ", "* ")) for x in lines[1:]), \
                f"{path}: a hard line break inside a paragraph: {para!r}"
        seen += 1
    assert seen >= 12  # 6 commands, init and its 5 sub-commands, the app itself


def test_reflow_keeps_paragraphs_and_list_items():
    text = """First line
        goes on.

        Second paragraph
        also flows.
        - an item
          that wraps
        - another"""
    assert reflow(text) == ("First line goes on.\n\nSecond paragraph also flows.\n"
                            "- an item that wraps\n- another")
