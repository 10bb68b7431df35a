"""The configuration reference, generated from the pydantic models: every field of every
section of ``RunConfig`` (nested sections found by walking the models, so a new section or
field documents itself) and one section per data source by ``kind`` (from the source
registry), each field with its type, default and description (the field's docstring).

``config_rst()`` returns the reST; the ``fe_docs`` extension writes it where
``reference/configuration.rst`` includes it. Nothing here needs Sphinx.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

_CONSTRAINTS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"), ("min_length", "min length"),
                ("max_length", "max length"))


@dataclass
class Section:
    """One table of the reference: the fields of ``model`` under ``path`` (``train``,
    ``train.early_stopping``; ``""`` for the top level); ``kind`` names a data source."""

    path: str
    model: type[BaseModel]
    kind: str | None = None

    @property
    def label(self) -> str:
        name = self.path or "top-level"
        return "config-" + (name + (f"-{self.kind}" if self.kind else "")).replace(".", "-")

    @property
    def title(self) -> str:
        if self.kind:
            return f"``{self.path}`` with ``kind: {self.kind}``"
        return f"``{self.path}``" if self.path else "The run (top level)"

    def dotted(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The config sections an annotation holds (a section, an optional one, a union of them)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    if typing.get_origin(annotation) is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    return []


def sections(root: type[BaseModel] | None = None, path: str = "") -> list[Section]:
    """Every section under ``root`` (default ``RunConfig``), depth first in field order; a
    union of sections told apart by ``kind`` (the data sources) gives one section per kind."""
    if root is None:
        from fairensemble.config import RunConfig

        root = RunConfig
    found = [Section(path, root)] if not path else []
    kinds: list[Section] = []
    for name, field in root.model_fields.items():
        sub = _models(field.annotation)
        dotted = f"{path}.{name}" if path else name
        if len(sub) > 1:  # a union of sections: one per kind, in kind order, after the rest
            for model in sorted(sub, key=lambda m: _kind(m) or ""):
                kinds.append(Section(dotted, model, _kind(model)))
                kinds += sections(model, dotted)
        elif sub:
            found.append(Section(dotted, sub[0]))
            found += sections(sub[0], dotted)
    return found + kinds


def _kind(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    return field.default if field is not None and isinstance(field.default, str) else None


def field_paths() -> list[str]:
    """Every field's dotted path (``train.epochs``; ``dataset.label_noise`` once per kind)."""
    return [s.dotted(n) for s in sections() for n in s.model.model_fields]


# ----------------------------------------------------------------------------- rendering


def _constraints(meta: list[Any]) -> list[str]:
    out = []
    for m in meta:
        if isinstance(m, FieldInfo):
            out += _constraints(m.metadata)
            continue
        for attr, sign in _CONSTRAINTS:
            value = getattr(m, attr, None)
            if value is not None:
                out.append(f"{sign} {value:g}" if isinstance(value, float) else f"{sign} {value}")
    return out


def _group(text: str) -> str:
    return f"({text})" if " | " in text or " or " in text else text


def type_text(annotation: Any, meta: list[Any] | None = None, links: dict | None = None) -> str:
    """A type as a reader says it: ``int > 0``, ``list of float (≥ 0, ≤ 1)``, ``'a' | 'b'``,
    a section as a link to its table."""
    links = links or {}
    constraints = _constraints(meta or [])
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0], [*args[1:], *(meta or [])], links)
    if annotation is type(None):
        text = "null"
    elif origin is typing.Literal:
        text = " | ".join(f"``{a}``" for a in args)
    elif origin in (typing.Union, types.UnionType):
        parts = [a for a in args if a is not type(None)]
        sections_ = [a for a in parts if _models(a)]
        if len(sections_) > 1:
            text = "a section by ``kind`` (below)"
        else:
            text = " or ".join(type_text(a, None, links) for a in parts)
        if len(parts) < len(args):
            text += " or null"
    elif origin in (list, tuple, set):
        text = f"list of {_group(type_text(args[0], None, links) if args else 'any')}"
    elif origin is dict:
        key, value = (_group(type_text(a, None, links)) for a in args)
        text = f"mapping of {key} to {value}"
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        label = links.get(annotation)
        text = f":ref:`section <{label}>`" if label else "section"
    elif annotation is typing.Any:
        text = "any"
    elif annotation is Path:
        text = "path"
    elif isinstance(annotation, type):
        text = {"str": "text", "int": "integer", "float": "number", "bool": "true/false"}.get(
            annotation.__name__, annotation.__name__)
    else:
        text = str(annotation).replace("typing.", "")
    if constraints:
        text += " (" + ", ".join(constraints) + ")"
    return text


def default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        kind = _kind(type(value)) if field.discriminator else None
        return f"a ``{kind}`` section" if kind else "the section's defaults"
    if value is None:
        return "``null``"
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return f"``{text.removesuffix('...').strip()}``"


def _flow(text: str) -> str:
    """A docstring as one line of reST (its paragraphs joined: a table cell holds one)."""
    return " ".join(text.split())


def _cell(lines: list[str], first: str, text: str) -> None:
    lines.append(f"     {first} {text}" if first else f"       {text}")


def config_rst(heading: str = "-", sub: str = "~") -> str:
    """The reference's sections as reST: a heading, the section's docstring and a table of its
    fields (field, type, default, description) per section; ``heading`` underlines the
    top-level sections, ``sub`` the data sources' kinds."""
    all_sections = sections()
    links = {s.model: s.label for s in all_sections if not s.kind}
    lines: list[str] = []
    dataset_intro = False
    for s in all_sections:
        if s.kind and not dataset_intro:
            title = f"``{s.path}``: the data sources"
            lines += [f".. _config-{s.path}:", "", title, heading * len(title), "",
                      "One section per data source, told apart by ``kind``. Every source "
                      "registers itself (``fairensemble.data.sources()``), so a new source "
                      "appears here on its own.", ""]
            dataset_intro = True
        underline = sub if s.kind else heading
        doc = (s.model.__doc__ or "").strip()
        lines += [f".. _{s.label}:", "", s.title, underline * len(s.title), ""]
        if doc:
            lines += [_flow(doc), ""]
        lines += [".. list-table::", "   :header-rows: 1", "   :widths: 24 22 18 36",
                  "   :class: fe-config", "",
                  "   * - field", "     - type", "     - default", "     - description"]
        fields = s.model.model_fields
        for name in sorted(fields, key=lambda n: n != "kind"):  # a source's kind first
            field = fields[name]
            lines.append(f"   * - ``{s.dotted(name)}``")
            lines.append(f"     - {type_text(field.annotation, field.metadata, links)}")
            lines.append(f"     - {default_text(field)}")
            lines.append(f"     - {_flow(field.description or '')}")
        lines.append("")
    return "\n".join(lines) + "\n"


def field_kinds_rst() -> str:
    """Which fields change what, from ``config.EVALUATION_FIELDS`` and ``RUNTIME_FIELDS``
    (the lists the cell identity, the evaluation cache and ``report --set`` derive from)."""
    from fairensemble.config import EVALUATION_FIELDS, RUNTIME_FIELDS

    def names(fields: tuple[str, ...]) -> str:
        return ", ".join(f"``{f}``" for f in fields)

    return (f"* **Evaluation fields** change how stored cells are scored and summarised, never "
            f"what was trained: {names(EVALUATION_FIELDS)} (a section name stands for every "
            f"field in it). ``fairensemble report --set`` takes these, and the run's cells are "
            f"re-evaluated, not retrained.\n"
            f"* **Runtime fields** change no number at all: {names(RUNTIME_FIELDS)}. They are "
            f"not part of a cell's identity, so changing them reuses every stored cell.\n"
            f"* **Every other field** changes what is trained: it is part of the id of every "
            f"cell it affects, so a changed value trains new cells and never reuses a stale "
            f"one.\n")


__all__ = ["Section", "config_rst", "default_text", "field_kinds_rst", "field_paths", "sections",
           "type_text"]
