"""A proposal as commented YAML, readable and ready to run."""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from fairensemble.advice.scaffold.decide import Proposal

# ----------------------------------------------------------------------------- YAML


def render_yaml(p: Proposal, out_name: str, command: str | None = None) -> str:
    """The proposal as YAML: a header (what was read, the counts, what was inferred, the next
    command), then every field with a comment above it saying why it has its value."""
    head: list[str] = [f"fairensemble run config for {p.name}, written by `fairensemble init`"]
    if command:
        head.append(f"  {command}")
    head += ["", *p.facts, "", "rows by group and class, all splits (before any merge or drop):",
             *(f"  {line}" for line in p.counts.lines("group")), "",
             "the pool, which training sets are drawn from:",
             *(f"  {line}" for line in p.pool.lines("group")), ""]
    head += [*(f"- {n}" for n in p.notes), "", f"Run:  {p.run_command(out_name)}"]
    cpu = p.cpu_command(out_name)
    if cpu:
        head += ["A GPU is expected. Try it on a CPU first (small images and pool, ResNet-18, "
                 "4 members):", f"  {cpu}"]
    lines = [_comment(text, 0) for text in head]
    for key, value in p.config.items():
        if key == "dataset":
            lines.append("dataset:")
            for sub, v in value.items():
                if f"dataset.{sub}" in p.comments:
                    lines.append(_comment(p.comments[f"dataset.{sub}"], 2))
                lines.append(f"  {sub}: {_scalar(v)}")
            continue
        if key in p.comments:
            lines.append(_comment(p.comments[key], 0))
        lines.append(_flow(key, value))
    return "\n".join(lines) + "\n"


def _flow(key: str, value: Any, width: int = 98) -> str:
    """``key: value`` in flow style; a mapping too wide for one line continues on the next
    lines, aligned after its brace (as the shipped configs are written)."""
    line = f"{key}: {_scalar(value)}"
    if len(line) <= width or not isinstance(value, dict):
        return line
    pad = " " * (len(key) + 3)
    items = [f"{_scalar(k)}: {_scalar(v)}" for k, v in value.items()]
    rows, current = [], f"{key}: {{"
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "}")
        if len(current) + len(piece) + 1 > width and current.strip() not in (f"{key}: {{", ""):
            rows.append(current.rstrip())
            current = pad
        current += piece if current.endswith(("{", " ")) else " " + piece
    rows.append(current)
    return "\n".join(rows)


def _comment(text: str, indent: int) -> str:
    pad = " " * indent
    if not text:
        return f"{pad}#"
    if text.startswith(" "):  # preformatted (a table row, a command): never wrapped
        return f"{pad}# {text}".rstrip()
    hang = "  " if text.startswith("- ") else ""  # a bullet's continuation lines line up
    wrapped = textwrap.wrap(text, width=98 - indent, subsequent_indent=hang,
                            break_on_hyphens=False)
    return "\n".join(f"{pad}# {w}" for w in wrapped)


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()

