"""The help text of the command line, written once for ``--help`` and the CLI reference page:
each command's docstring with its paragraphs kept and the lines inside a paragraph joined, so
that the terminal (or the web page) wraps them to its own width instead of showing the
source's hard line breaks."""

from __future__ import annotations

import inspect
import re

import typer

_ITEM = re.compile(r"^[-*] ")  # a line that starts a list item keeps its own line


def reflow(text: str) -> str:
    """``text`` with the line breaks inside each paragraph replaced by spaces; blank lines
    still separate paragraphs, and a list item (a line starting ``- `` or ``* ``) keeps its
    own line."""
    paragraphs = []
    for para in inspect.cleandoc(text).split("\n\n"):
        lines = [line.strip() for line in para.splitlines() if line.strip()]
        if not lines:
            continue
        items: list[list[str]] = []
        for line in lines:
            if not items or _ITEM.match(line):
                items.append([line])
            else:
                items[-1].append(line)
        paragraphs.append("\n".join(" ".join(item) for item in items))
    return "\n\n".join(paragraphs)


def flowing(app: typer.Typer) -> typer.Typer:
    """Reflow the help of ``app``, of every command it holds and of its sub-apps (in place;
    call it once every command is registered). Returns ``app``."""
    if isinstance(app.info.help, str):
        app.info.help = reflow(app.info.help)
    for command in app.registered_commands:
        text = command.help if command.help is not None else inspect.getdoc(command.callback)
        if text:
            command.help = reflow(text)
    for group in app.registered_groups:
        if isinstance(group.help, str):
            group.help = reflow(group.help)
        if group.typer_instance is not None:
            flowing(group.typer_instance)
    return app


__all__ = ["flowing", "reflow"]
