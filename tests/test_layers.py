"""The house's rules, read off the source: imports point down the layers (function-local and
TYPE_CHECKING imports included), no import cycle, thin package ``__init__`` files, few
top-level modules and no module over 700 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "fairensemble"

# bottom to top; a module may import its own package and anything on a lower line. Packages on
# one line are independent of each other.
LAYERS = [
    ("common",),
    ("metrics", "models"),
    ("data",),
    ("config",),
    ("train",),
    ("sweep",),
    ("evaluation",),
    ("advice",),
    ("report",),
    ("interop",),
    ("pipeline",),
    ("cli",),
    ("__main__",),
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}
MAX_TOP_LEVEL = 6
MAX_LINES = 700


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every fairensemble module ``name`` imports, wherever the import statement stands."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != name and target.startswith("fairensemble"):
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _part(module: str) -> str | None:
    """The layer a module belongs to: its top-level package or module (None: the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_belongs_to_a_layer():
    unknown = sorted({_part(m) for m in MODULES} - set(RANK) - {None})
    assert not unknown, f"top-level names with no layer in this test's LAYERS: {unknown}"


def test_imports_point_down_the_layers():
    upward = []
    for module, targets in GRAPH.items():
        here = _part(module)
        if here is None:
            continue  # the package root names the public API of every layer
        for target in targets:
            there = _part(target)
            if there is None:
                upward.append(f"{module} -> {target} (the package root)")
            elif there != here and RANK[there] >= RANK[here]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that do not point down the layers:\n" + "\n".join(upward)


def test_the_module_graph_has_no_cycle():
    # iterative depth-first search; a back edge closes a cycle
    state: dict[str, int] = {}
    cycles = []
    for start in sorted(GRAPH):
        if start in state:
            continue
        stack = [(start, iter(sorted(GRAPH[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
                continue
            if state.get(child) == 1:
                cycles.append(" -> ".join(path[path.index(child):] + [child]))
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(GRAPH[child]))))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_a_cycle_or_an_upward_import_would_be_found(tmp_path):
    """The reader itself: relative, aliased and function-local imports are all seen."""
    src = "def f():\n    from ..sweep import runner\n    import fairensemble.cli.main as m\n"
    path = tmp_path / "x.py"
    path.write_text(src)
    assert _imports("fairensemble.train.x", path) == {"fairensemble.sweep.runner",
                                                      "fairensemble.cli.main"}


@pytest.mark.parametrize("package", sorted({m.split(".")[1] for m in MODULES
                                            if m.count(".") >= 2}))
def test_a_package_init_only_names_its_public_api(package):
    tree = ast.parse((PACKAGE / package / "__init__.py").read_text())
    defined = [n.name for n in tree.body
               if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
               and n.name != "__getattr__"]  # a lazy re-export names the API too
    assert not defined, f"{package}/__init__.py defines {defined}; keep it to imports"
    assert ast.get_docstring(tree), f"{package}/__init__.py needs a docstring saying its job"


def test_few_top_level_modules_and_none_over_700_lines():
    top = sorted(p.name for p in PACKAGE.glob("*.py")
                 if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= MAX_TOP_LEVEL, top
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long
