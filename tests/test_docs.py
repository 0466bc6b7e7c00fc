"""The documentation: the maths page keeps its numbering, every reference to it exists,
the getting-started examples run, and the site builds with no warning."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SECTIONS = ["A.1", "A.2", "A.3", "A.4", "A.5", "B.1", "B.2", "B.3", "B.4", "B.5", "B.6"]

pytestmark = pytest.mark.skipif(not (DOCS / "maths.md").is_file(), reason="docs/ not found next to tests/")


def _maths_sections() -> list[str]:
    text = (DOCS / "maths.md").read_text(encoding="utf-8")
    return re.findall(r"^### ([AB]\.\d) ", text, flags=re.M)


def test_maths_sections_are_numbered_in_order():
    assert _maths_sections() == SECTIONS


def test_every_reference_to_the_maths_page_exists():
    have = set(_maths_sections()) | {"A", "B"}
    pattern = re.compile(r"docs/maths\.md,? (?:§\s*)?([AB](?:\.\d)?)")
    bad = []
    for folder in ("python", "cpp", "tests", "benchmarks", "docs", "tools"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in {".py", ".hpp", ".cpp", ".md", ".pyi", ".sh"} or not path.is_file():
                continue
            for ref in pattern.findall(path.read_text(encoding="utf-8", errors="replace")):
                if ref not in have:
                    bad.append(f"{path.relative_to(ROOT)}: docs/maths.md {ref}")
    assert not bad, bad


def _python_blocks(page: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


@pytest.mark.parametrize("index", range(len(_python_blocks("getting-started.md"))))
def test_getting_started_examples_run(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = _python_blocks("getting-started.md")[index]
    exec(compile(code, f"getting-started.md, example {index + 1}", "exec"), {"__name__": "__docs__"})


@pytest.mark.skipif(shutil.which("mkdocs") is None, reason="mkdocs is in the docs extra: pip install '.[docs]'")
def test_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] is in the docs extra")
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
    )
    assert out.returncode == 0, out.stderr[-4000:]
    assert (tmp_path / "site" / "maths" / "index.html").is_file()
