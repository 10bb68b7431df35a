"""The command-line reference, generated from the Typer app: every command and sub-command
with its help text, usage line, arguments and options, read from the very objects ``--help``
prints (``typer.main.get_command(app)``; ``get_help_record`` is the line ``--help`` shows for
a parameter), so the page and the terminal say the same thing.

Typer now carries its own copy of click, so the objects are read by their attributes rather
than checked against click's classes (sphinx-click cannot read them). Nothing here needs
Sphinx.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_PROTECTED = re.compile(r"(``.+?``|:[\w:-]+:`[^`]+`)")  # code, and roles such as :doc:`x`
_SINGLE = re.compile(r"(?<!`)`([^`]+)`(?!`)")


def rst_text(text: str) -> str:
    """Help text as reST: a single-backticked word is code, as on the terminal, and the
    characters reST would read as markup are escaped outside code and roles."""
    parts = _PROTECTED.split(text)
    parts[::2] = [_SINGLE.sub(r"``\1``", p) for p in parts[::2]]
    parts = _PROTECTED.split("".join(parts))
    for i in range(0, len(parts), 2):  # the even parts are outside code
        p = parts[i].replace("\\", "\\\\").replace("*", "\\*").replace("|", "\\|")
        parts[i] = re.sub(r"(\w)_(?=\W|$)", r"\1\\_", p)
    return "".join(parts)


def commands(app: Any = None) -> Iterator[tuple[Any, Any]]:
    """(command, context) for the app and every command under it, depth first in the order
    ``--help`` lists them."""
    import typer

    if app is None:
        from fairensemble.cli import app
    root = typer.main.get_command(app)
    yield from _walk(root, root.make_context("fairensemble", [], resilient_parsing=True))


def _walk(command: Any, ctx: Any) -> Iterator[tuple[Any, Any]]:
    yield command, ctx
    subs = getattr(command, "commands", None) or {}
    for name in command.list_commands(ctx) if subs else []:
        sub = subs[name]
        if getattr(sub, "hidden", False):
            continue
        yield from _walk(sub, sub.make_context(name, [], parent=ctx, resilient_parsing=True))


def _label(path: str) -> str:
    return "cli-" + path.replace(" ", "-")


def _table(title: str, records: list[tuple[str, str]]) -> list[str]:
    lines = [f".. list-table:: {title}", "   :header-rows: 0", "   :widths: 30 70",
             "   :class: fe-cli", ""]
    for names, text in records:
        lines += [f"   * - ``{names}``", f"     - {rst_text(text) or ' '}"]
    return [*lines, ""]


def cli_rst(heading: str = "-") -> str:
    """Every command as a section: its help, usage, arguments and options."""
    lines: list[str] = []
    for command, ctx in commands():
        path = ctx.command_path
        title = f"``{path}``"
        lines += [f".. _{_label(path)}:", "", title, heading * len(title), ""]
        for para in (command.help or "").split("\n\n"):
            lines += [rst_text(para), ""]
        lines += [".. code-block:: text", "", "   " + command.get_usage(ctx), ""]
        params = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
        args = [p.get_help_record(ctx) for p in params if p.param_type_name == "argument"]
        opts = [p.get_help_record(ctx) for p in params if p.param_type_name == "option"]
        if args:
            lines += _table("Arguments", [r for r in args if r])
        if opts:
            lines += _table("Options", [r for r in opts if r])
        subs = getattr(command, "commands", None) or {}
        if subs:
            lines += ["Commands:", ""]
            for name in command.list_commands(ctx):
                short = (subs[name].help or "").split("\n\n")[0]
                lines += [f"* :ref:`{path} {name} <{_label(f'{path} {name}')}>`: "
                          f"{rst_text(short)}"]
            lines.append("")
    return "\n".join(lines) + "\n"


__all__ = ["cli_rst", "commands", "rst_text"]
