"""Every docstring example in the package runs, against the ``kdcore`` that Python imports.

The modules are found by walking the imported package, not the files under ``python/``:
after ``pip install .`` that is the installed copy with its compiled core, with
``PYTHONPATH=python`` it is the source tree, and the two never meet in one run. A module
that needs an optional dependency (torch, matplotlib) is skipped, with the reason, when
that dependency is missing.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import io
import pkgutil

import pytest

import kdcore

# Optional dependencies: a module whose import fails for want of one of these is skipped.
OPTIONAL = {"torch", "torchvision", "matplotlib", "PIL", "pyarrow", "dask", "distributed", "crowdkit"}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(kdcore.__path__, "kdcore.", onerror=lambda _name: None):
        spec = importlib.util.find_spec(info.name)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        with open(spec.origin, encoding="utf-8") as f:
            if ">>> " in f.read():
                names.append(info.name)
    return sorted(names)


MODULES = _modules_with_examples()


def test_examples_found():
    # the package documents its public surface with examples; an empty list means the walk broke
    assert "kdcore.crowd" in MODULES and len(MODULES) >= 10, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] in OPTIONAL:
            pytest.skip(f"{name} needs the optional dependency {e.name}")
        raise
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out = io.StringIO()
    tests = [t for t in finder.find(module, name) if t.examples]
    for t in tests:
        runner.run(t, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0 or all(all(ex.options.get(doctest.SKIP) for ex in t.examples) for t in tests)
    assert result.failed == 0, out.getvalue()
