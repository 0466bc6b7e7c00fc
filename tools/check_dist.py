"""Check kdcore's release files: a repaired wheel and an sdist.

    python tools/check_dist.py wheel dist/kdcore-0.1.0-cp311-cp311-manylinux_2_34_x86_64.whl
    python tools/check_dist.py sdist dist/kdcore-0.1.0.tar.gz

wheel: ``auditwheel show --json`` must report a ``manylinux_`` tag that the file name
carries, no library left outside the policy (``external_libs`` empty: everything else
vendored), and libgomp vendored under ``kdcore.libs/``; the stubs and ``py.typed`` ship.
sdist: it holds what the build needs (CMake, C++ sources and headers, the package with
its stubs, LICENSE, README, PKG-INFO) and at the top level nothing but that and the tests;
no compiled files. Prints one line per file checked; a failed check exits with status 1
and says what was expected and what was found.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

SDIST_NEEDS = (
    "pyproject.toml",
    "PKG-INFO",
    "CMakeLists.txt",
    "LICENSE",
    "README.md",
    "cpp/bindings/module.cpp",
    "cpp/include/kdcore/parallel.hpp",
    "python/kdcore/__init__.py",
    "python/kdcore/_version.py",
    "python/kdcore/_core.pyi",
    "python/kdcore/py.typed",
)
SDIST_TOP_LEVEL = frozenset(
    {"pyproject.toml", "PKG-INFO", "CMakeLists.txt", "LICENSE", "README.md", "cpp", "python", "tests"}
)
WHEEL_NEEDS = ("kdcore/__init__.py", "kdcore/_core.pyi", "kdcore/py.typed")


class DistError(Exception):
    """A release file that fails a check."""


def sdist_problems(names: list[str]) -> list[str]:
    """What is wrong with an sdist whose members are ``names`` (each under one ``kdcore-X/`` folder)."""
    roots = {n.split("/", 1)[0] for n in names}
    if len(roots) != 1:
        return [f"expected every member under one kdcore-VERSION/ folder, found {sorted(roots)}"]
    inner = {n.split("/", 1)[1] for n in names if "/" in n and n.split("/", 1)[1]}
    problems = [f"missing {n}" for n in SDIST_NEEDS if n not in inner]
    if not any(n.startswith("cpp/src/") and n.endswith(".cpp") for n in inner):
        problems.append("missing the C++ sources cpp/src/*.cpp")
    extra = {n.split("/", 1)[0] for n in inner} - SDIST_TOP_LEVEL
    if extra:
        problems.append(f"holds what the build does not need: {sorted(extra)}")
    compiled = sorted(n for n in inner if n.endswith((".so", ".pyc", ".o", ".a")))
    if compiled:
        problems.append(f"holds compiled files: {compiled[:5]}")
    return problems


def check_sdist(path: Path) -> str:
    with tarfile.open(path) as tf:
        names = tf.getnames()
    problems = sdist_problems(names)
    if problems:
        raise DistError(f"{path}: " + "; ".join(problems))
    top = sorted({n.split("/")[1] for n in names if n.count("/") >= 1 and n.split("/")[1]})
    return f"{path}: {len(names)} members, top level {top}"


def wheel_problems(name: str, members: list[str], audit: dict) -> list[str]:
    """What is wrong with a repaired wheel, from its file name, members and ``auditwheel show --json``."""
    problems = []
    tag = str(audit.get("overall_tag", ""))
    if not tag.startswith("manylinux_"):
        problems.append(f"auditwheel reports {tag!r}, expected a manylinux_ tag")
    elif tag not in name:
        problems.append(f"auditwheel reports {tag} but the file name is {name}")
    if audit.get("external_libs"):
        problems.append(f"libraries outside the policy and not vendored: {sorted(audit['external_libs'])}")
    libs = [m for m in members if m.startswith("kdcore.libs/") and not m.endswith("/")]
    if not any("libgomp" in m for m in libs):
        problems.append(f"libgomp not vendored (kdcore.libs/ holds {libs})")
    problems += [f"missing {m}" for m in WHEEL_NEEDS if m not in members]
    if not any(m.startswith("kdcore/_core.") and m.endswith(".so") for m in members):
        problems.append("missing the compiled core kdcore/_core*.so")
    return problems


def check_wheel(path: Path) -> str:
    out = subprocess.run(["auditwheel", "show", "--json", str(path)], capture_output=True, text=True, check=True)
    audit = json.loads(out.stdout)
    with zipfile.ZipFile(path) as zf:
        members = zf.namelist()
    problems = wheel_problems(path.name, members, audit)
    if problems:
        raise DistError(f"{path}: " + "; ".join(problems))
    libs = sorted(m.split("/", 1)[1] for m in members if m.startswith("kdcore.libs/") and not m.endswith("/"))
    return f"{path}: consistent with {audit['overall_tag']}, vendored {libs}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] not in ("wheel", "sdist"):
        print("usage: check_dist.py {wheel,sdist} FILE [FILE ...]", file=sys.stderr)
        return 2
    check = check_wheel if args[0] == "wheel" else check_sdist
    try:
        for f in args[1:]:
            print(check(Path(f)))
    except DistError as exc:
        print(f"check_dist: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
