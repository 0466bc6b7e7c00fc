"""The README's two set-up commands stay true: CI runs exactly the second one."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


def test_readme_starts_with_two_setup_commands():
    if not (ROOT / "README.md").is_file():
        pytest.skip("README.md not found next to tests/ (installed-package run)")
    text = (ROOT / "README.md").read_text()
    assert text.index("```bash") < text.index("\n## ")  # before any section
    cmds = readme_commands()
    assert len(cmds) == 2
    assert cmds[0].startswith("pip install torch==2.13.0") and "pip install" in cmds[1]


def test_ci_runs_the_readme_test_command():
    if not (ROOT / ".ci" / "run").is_file():
        pytest.skip(".ci/run not found next to tests/")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in [line.strip() for line in ci]


def _readme_python_blocks() -> list[str]:
    if not (ROOT / "README.md").is_file():
        return []
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


@pytest.mark.parametrize("index", range(len(_readme_python_blocks())))
def test_readme_examples_run(index, request, tmp_path, monkeypatch):
    """Each Python example of the README runs as printed, reading the data from KDCORE_DATA."""
    code = _readme_python_blocks()[index]
    if "datasets.load" in code:
        monkeypatch.setenv("KDCORE_DATA", str(request.getfixturevalue("data_home")))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md, example {index + 1}", "exec"), {"__name__": "__readme__"})
