"""The import graph of python/kdcore: no cycle, and no private name taken from another module.

Every module of the package is parsed (not imported) and every import statement in it is
read, at module level and inside functions, with relative imports resolved. Rules:

1. No cycle among kdcore modules. An import of ``a.b.c`` depends on ``a.b.c`` itself
   (its parent packages' ``__init__`` run too, but a module needing only a sibling is not
   said to need the whole package); ``from P import x`` depends on ``P.x`` when that is a
   module, else on ``P``.
2. A name starting with ``_`` is imported from another kdcore module only when it is a
   module itself (``from . import _em``): private modules are shared inside the package,
   private functions and constants are not. The one handle that is not a module file is
   ``kdcore.backends._core``, the compiled core or None when it is not built: every user
   takes it from ``backends`` so the "missing core" decision is made in one place.
"""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import pytest

import kdcore

ROOT = Path(kdcore.__file__).parent
#: private names that are shared by design (see rule 2)
SHARED_PRIVATE = {("kdcore.backends", "_core")}


def _modules() -> tuple[dict[str, Path], set[str]]:
    """(every Python module of the package by dotted name -> its source file, the compiled
    extension modules: found built, or declared by a ``.pyi`` stub when not built)."""
    out = {"kdcore": ROOT / "__init__.py"}
    extensions = {f"kdcore.{p.stem}" for p in ROOT.glob("*.pyi")}
    for info in pkgutil.walk_packages([str(ROOT)], prefix="kdcore."):
        spec = info.module_finder.find_spec(info.name, None)  # type: ignore[call-arg]
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        if origin is not None and origin.suffix == ".py":
            out[info.name] = origin
        else:
            extensions.add(info.name)
    return out, extensions


MODULES, EXTENSIONS = _modules()


def _package(name: str) -> str:
    return name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]


def _resolve(module: str, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = _package(module).split(".")
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(name: str, source: str | None = None) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) of every import statement of ``name``."""
    tree = ast.parse(MODULES[name].read_text() if source is None else source)
    out: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            src = _resolve(name, node.level, node.module)
            out += [(src, alias.name, node.lineno) for alias in node.names]
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m in MODULES:
        for src, name, _ in _imports(m):
            if not (src == "kdcore" or src.startswith("kdcore.")):
                continue
            full = f"{src}.{name}"
            if name is not None and full in EXTENSIONS:
                continue  # a compiled extension imports nothing of the package
            dep = full if name is not None and full in MODULES else src
            if dep in MODULES and dep != m:
                graph[m].add(dep)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_walk_sees_the_package():
    for name in ("kdcore.backends", "kdcore.crowd._dawid_skene", "kdcore.crowd._spectral_em", "kdcore.distill"):
        assert name in MODULES
    graph = _graph()
    assert "kdcore.crowd._spectral_init" in graph["kdcore.crowd._dawid_skene"]
    assert "kdcore.crowd._dawid_skene" in graph["kdcore.crowd._spectral_em"]


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles among kdcore modules: " + "; ".join(" <-> ".join(c) for c in cycles)


def _private_imports(module: str, source: str | None = None) -> list[str]:
    bad = []
    for src, name, line in _imports(module, source):
        if name is None or not name.startswith("_") or name == "__version__":
            continue
        if not (src == "kdcore" or src.startswith("kdcore.")):
            continue
        full = f"{src}.{name}"
        if full in MODULES or full in EXTENSIONS or (src, name) in SHARED_PRIVATE:
            continue
        bad.append(f"{module}:{line} imports {name} from {src}")
    return bad


def test_private_rule_flags_a_planted_import():
    planted = "from ._em import _float_array, log_clip\nfrom . import _em\nfrom ..backends import _core\n"
    assert _private_imports("kdcore.crowd._types", planted) == [
        "kdcore.crowd._types:1 imports _float_array from kdcore.crowd._em"
    ]
    inner = "def f():\n    from .._check import _x\n"
    assert _private_imports("kdcore.crowd._types", inner) == ["kdcore.crowd._types:2 imports _x from kdcore._check"]


def test_no_private_name_imported_across_modules():
    bad = [line for m in MODULES for line in _private_imports(m)]
    assert not bad, "private names imported from another module:\n" + "\n".join(bad)


@pytest.mark.parametrize("module", ["kdcore.crowd", "kdcore.crowd._types", "kdcore.crowd._type_aware"])
def test_crowd_modules_import_on_their_own(module):
    import importlib

    assert importlib.import_module(module) is not None
