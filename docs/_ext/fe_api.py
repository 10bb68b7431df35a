"""The Python API reference, generated from the packages' public names: one page per public
package or top-level module (every one with ``__all__``, found by walking ``fairensemble``,
so a new package gets its page), each listing its ``__all__`` and documenting every name
whose home it is with autodoc; a name re-exported from another public package links there
instead of being documented twice. The top-level page documents ``fairensemble.run`` and
``fairensemble.analyze`` and points each other top-level name at its home.

``api_pages()`` returns {file name: reST}; the ``fe_docs`` extension writes them. Nothing here
needs Sphinx.
"""

from __future__ import annotations

import ast
import inspect
import pkgutil
from importlib import import_module
from types import ModuleType
from typing import Any

import fairensemble

# top of the stack first, as the package docstring draws the layers; a package not listed
# here still gets its page, after these
ORDER = ("cli", "pipeline", "interop", "report", "advice", "evaluation", "sweep", "train", "config",
         "data", "models", "metrics", "common")


def public_modules() -> list[str]:
    """``fairensemble.<name>`` for every subpackage and top-level module with ``__all__``."""
    found = []
    for info in pkgutil.iter_modules(fairensemble.__path__):
        if info.name.startswith("_"):
            continue
        module = import_module(f"fairensemble.{info.name}")
        if _names(module):
            found.append(info.name)
    rank = {n: i for i, n in enumerate(ORDER)}
    return [f"fairensemble.{n}" for n in sorted(found, key=lambda n: (rank.get(n, 99), n))]


def _names(module: ModuleType) -> list[str]:
    """A module's public names: its ``__all__``, else what it defines without a leading
    underscore."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [n for n, v in vars(module).items() if not n.startswith("_")
            and getattr(v, "__module__", None) == module.__name__
            and (inspect.isclass(v) or inspect.isfunction(v))]


def _home(obj: Any, modules: list[str]) -> str | None:
    """The public module an object is defined under (the longest matching prefix)."""
    where = getattr(obj, "__module__", None) if (inspect.isclass(obj) or callable(obj)) else None
    if not isinstance(where, str):
        return None
    best = None
    for m in modules:
        if (where == m or where.startswith(m + ".")) and (best is None or len(m) > len(best)):
            best = m
    return best


def _is_config(obj: Any) -> bool:
    from pydantic import BaseModel

    return inspect.isclass(obj) and issubclass(obj, BaseModel)


def _directive(obj: Any) -> str:
    if inspect.isclass(obj):
        return "autoclass"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "autofunction"
    return "autodata"


def _source_doc(home: str, name: str) -> str | None:
    """The description of a module-level value ``name`` defined somewhere under ``home``: the
    string right after its assignment, else the comment lines right above it, else the comment
    at the end of its line."""
    module = import_module(home)
    paths = [module.__file__]
    if hasattr(module, "__path__"):
        paths += [f"{info.module_finder.path}/{info.name}.py"
                  for info in pkgutil.iter_modules(module.__path__)]
    for path in paths:
        try:
            source = open(path).read()  # noqa: SIM115
        except OSError:
            continue
        lines = source.splitlines()
        body = ast.parse(source).body
        for node, nxt in zip(body, [*body[1:], None]):
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if isinstance(node, ast.AnnAssign) else [])
            if not any(isinstance(t, ast.Name) and t.id == name for t in targets):
                continue
            if (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                return " ".join(nxt.value.value.split())
            above, i = [], node.lineno - 2
            while i >= 0 and lines[i].lstrip().startswith("#"):
                above.insert(0, lines[i].lstrip()[1:].strip())
                i -= 1
            if above:
                return " ".join(above)
            line = lines[node.end_lineno - 1]
            if "#" in line:
                return line.split("#", 1)[1].strip()
            return None
    return None


def _data_block(module: str, name: str, obj: Any, home: str) -> list[str]:
    """A value as ``py:data``: its description from the source, its value when short."""
    lines = [f".. py:data:: {module}.{name}"]
    text = repr(obj)
    if isinstance(obj, (set, frozenset)):  # in a stable order: the page is the same each build
        text = f"{type(obj).__name__}({sorted(obj)!r})"
    if len(text) <= 80 and "<" not in text:
        lines.append(f"   :value: {text}")
    else:
        lines.append(f"   :type: {type(obj).__name__}")
    doc = _source_doc(home, name)
    return [*lines, "", f"   {doc}" if doc else "   (not described in the code)", ""]


def homes() -> dict[int, str]:
    """Where each exported object is documented, by ``id``: its defining package, or for a
    value without one (a constant) the first package, bottom layer first, that exports it."""
    modules = public_modules()
    out: dict[int, str] = {}
    for m in reversed(modules):  # bottom layers first: a constant is documented lowest
        module = import_module(m)
        for name in _names(module):
            obj = getattr(module, name)
            home = _home(obj, modules)
            if home is not None:
                out[id(obj)] = home
            else:
                out.setdefault(id(obj), m)
    return out


def _title(text: str, char: str = "=") -> list[str]:
    return [text, char * len(text), ""]


def module_page(name: str, where: dict[int, str]) -> str:
    module = import_module(name)
    names = _names(module)
    own = [n for n in names if where.get(id(getattr(module, n))) == name]
    elsewhere = [n for n in names if n not in own]
    lines = [f".. _api-{name}:", "", *_title(f"``{name}``"),
             f".. automodule:: {name}", "   :no-members:", "",
             f".. currentmodule:: {name}", ""]
    code = [n for n in own if _directive(getattr(module, n)) != "autodata"]
    values = [n for n in own if n not in code]
    if code:
        lines += [".. autosummary::", "   :nosignatures:", "", *(f"   {n}" for n in code), ""]
    if values:  # autosummary would describe a value by its type's docstring (dict's, say)
        lines += ["Values:", "", *(f"* :py:data:`{name}.{n}`" for n in values), ""]
    if elsewhere:
        lines += ["Also importable from here, documented where they are defined:", ""]
        for n in elsewhere:
            obj = getattr(module, n)
            home = where.get(id(obj))
            role = "class" if inspect.isclass(obj) else "func" if callable(obj) else "data"
            lines.append(f"* ``{n}``: :py:{role}:`{home}.{n}`")
        lines.append("")
    for n in own:
        obj = getattr(module, n)
        directive = _directive(obj)
        lines.append(f".. {directive}:: {name}.{n}")
        if directive == "autoclass":
            lines += ["   :members:", "   :show-inheritance:"]
            if _is_config(obj):
                lines += ["   :exclude-members: model_config", "",
                          "   A config section: its fields (type, default, description) are "
                          "in :ref:`configuration`."]
        elif directive == "autodata":
            lines = lines[:-1] + _data_block(name, n, obj, name)
            continue
        lines.append("")
    return "\n".join(lines) + "\n"


def top_page(where: dict[int, str]) -> str:
    lines = [".. _api-fairensemble:", "", *_title("``fairensemble``: the notebook API"),
             ".. automodule:: fairensemble", "   :no-members:", "",
             ".. autofunction:: fairensemble.run", "", ".. autofunction:: fairensemble.analyze",
             "", ".. autodata:: fairensemble.__version__", "   :no-value:", "",
             "Every other top-level name is imported on first use from the package that "
             "defines it, where it is documented:", "",
             ".. list-table::", "   :header-rows: 1", "   :widths: 30 70", "",
             "   * - ``fairensemble.<name>``", "     - documented as"]
    for n in fairensemble.__all__:
        if n in ("run", "analyze", "__version__"):
            continue
        obj = getattr(fairensemble, n)
        home = where.get(id(obj))
        role = "class" if inspect.isclass(obj) else "func"
        lines += [f"   * - ``{n}``", f"     - :py:{role}:`{home}.{n}`" if home else "     - "]
    return "\n".join(lines) + "\n"


def packages_rst() -> str:
    """The public packages, top of the stack first, each with the first paragraph of its
    docstring (the developer guide's map of the code)."""
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 22 78", "   :class: fe-formats",
             "", "   * - package", "     - its job (from its docstring)"]
    for m in public_modules():
        doc = (import_module(m).__doc__ or "").strip().split("\n\n")[0]
        lines += [f"   * - :ref:`{m.split('.', 1)[1]} <api-{m}>`",
                  f"     - {' '.join(doc.split())}"]
    return "\n".join(lines) + "\n"


def api_pages() -> dict[str, str]:
    """{file name: reST} of every page of the API reference, ``index.rst`` among them."""
    where = homes()
    modules = public_modules()
    pages = {"fairensemble.rst": top_page(where)}
    for m in modules:
        pages[f"{m}.rst"] = module_page(m, where)
    index = [*_title("Python API"),
             "Generated from the code: the top-level names a notebook needs, then one page "
             "per package, top of the stack first (imports only point down; see "
             ":doc:`/development/index`). Each page lists the package's ``__all__``.", "",
             ".. toctree::", "   :maxdepth: 1", "", "   fairensemble",
             *(f"   {m}" for m in modules), ""]
    pages["index.rst"] = "\n".join(index) + "\n"
    return pages


__all__ = ["api_pages", "homes", "packages_rst", "public_modules"]
