"""The documentation: the maths page keeps its numbering, every reference to it exists,
every guide's examples run, the command-line reference matches ``kdcore --help``, and the
site builds with no warning."""

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


#: the pages whose ``python`` blocks are examples a reader runs
GUIDES = [
    "getting-started.md",
    "install.md",
    "choosing.md",
    "crowdkit.md",
    "task-types.md",
    "soft-labels.md",
    "learning-from-crowds.md",
    "cluster.md",
]
#: modules an example may need beyond the core install: the example is skipped without them
OPTIONAL = {
    "torch": "torch",
    "dask": "dask",
    "distributed": "distributed",
    "pyarrow": "pyarrow",
    "crowdkit": "crowdkit",
}


def _examples() -> list[tuple[str, int]]:
    return [(page, i) for page in GUIDES if (DOCS / page).is_file() for i in range(len(_python_blocks(page)))]


@pytest.mark.parametrize(("page", "index"), _examples(), ids=lambda v: str(v))
def test_guide_examples_run(page, index, request, tmp_path, monkeypatch):
    """Every python block of every guide runs as printed (real data from the data_home fixture)."""
    code = _python_blocks(page)[index]
    for word, module in OPTIONAL.items():
        if re.search(rf"\b(import|from) {word}\b", code) or f"{word}." in code.split("#")[0]:
            pytest.importorskip(module, reason=f"{page} example {index + 1} needs {module}")
    if "tcp://scheduler" in code:
        pytest.skip(f"{page} example {index + 1} connects to a running Dask scheduler (tcp://scheduler:8786)")
    if any(w in code for w in ("datasets.load", "data_home", "KDCORE_DATA", "mnist", "cifar", "crowd_students")):
        monkeypatch.setenv("KDCORE_DATA", str(request.getfixturevalue("data_home")))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{page}, example {index + 1}", "exec"), {"__name__": "__docs__"})


def cli_reference() -> str:
    """The command-line reference page, rebuilt from the parser's own help texts."""
    import argparse

    from kdcore.cli import build_parser

    parser = build_parser()
    parser.prog = "kdcore"
    parts = [
        "# Command-line reference\n",
        "Every subcommand of `kdcore`, with the help it prints. Bad input ends with one line on",
        "stderr and exit status 2. This page is checked against `kdcore --help` by the test suite.\n",
    ]

    def walk(p: argparse.ArgumentParser, name: str, level: int) -> None:
        parts.append(f"{'#' * level} `{name}`\n")
        parts.append("```text\n" + p.format_help().rstrip() + "\n```\n")
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    sub.prog = f"{name} {sub_name}"
                    walk(sub, f"{name} {sub_name}", min(level + 1, 4))

    walk(parser, "kdcore", 2)
    return "\n".join(parts)


def test_cli_reference_matches_the_help(monkeypatch):
    """docs/cli.md is the parser's help; regenerate it with ``python tests/test_docs.py`` after a change."""
    if not (3, 10) <= sys.version_info[:2] <= (3, 12):
        pytest.skip("argparse lays help out differently before 3.10 and from 3.13; the page is made with 3.11")
    monkeypatch.setenv("COLUMNS", "100")
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == cli_reference()


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


if __name__ == "__main__":  # regenerate the command-line reference
    os.environ["COLUMNS"] = "100"
    (DOCS / "cli.md").write_text(cli_reference(), encoding="utf-8")
