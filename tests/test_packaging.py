"""Packaging: one version source, Python versions that agree across the metadata and the wheel
matrix, the release-file checks of tools/check_dist.py, the sdist's contents, and kdcore's
parallel kernels beside torch's OpenMP runtime in either import order."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import kdcore
from kdcore import backends as bk

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"


def _pyproject() -> dict:
    path = ROOT / "pyproject.toml"
    if not path.is_file():
        pytest.skip("pyproject.toml not found next to tests/ (installed-package run)")
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads(path.read_text())


def _tool(name: str):
    path = TOOLS / f"{name}.py"
    if not path.is_file():
        pytest.skip(f"tools/{name}.py not found next to tests/ (sdist or installed-package run)")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_version_has_one_source():
    meta = _pyproject()
    assert "version" not in meta["project"] and "version" in meta["project"]["dynamic"]
    provider = meta["tool"]["scikit-build"]["metadata"]["version"]
    assert provider["provider"] == "scikit_build_core.metadata.regex"
    source = ROOT / provider["input"]
    # scikit-build-core's default pattern for the regex provider
    m = re.search(r"""(?im)^(__version__|VERSION)(?: ?\: ?str)? *= *(['"])v?(?P<value>.+?)\2""", source.read_text())
    assert m is not None, f"no __version__ = '...' line in {source}"
    assert m.group("value") == kdcore.__version__


def test_python_versions_agree_across_metadata_and_wheel_matrix():
    meta = _pyproject()
    lowest = re.fullmatch(r">=\s*3\.(\d+)", meta["project"]["requires-python"])
    assert lowest is not None, meta["project"]["requires-python"]
    classified = sorted(
        int(c.rsplit(".", 1)[1])
        for c in meta["project"]["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    )
    built = sorted(int(re.fullmatch(r"cp3(\d+)-\*", b).group(1)) for b in meta["tool"]["cibuildwheel"]["build"])  # type: ignore[union-attr]
    assert classified == built == list(range(int(lowest.group(1)), built[-1] + 1))
    linux = meta["tool"]["cibuildwheel"]["linux"]
    assert sorted(linux["archs"]) == ["aarch64", "x86_64"]
    assert linux["manylinux-x86_64-image"] == linux["manylinux-aarch64-image"] == "manylinux_2_28"
    assert "tools/smoke_test.py" in meta["tool"]["cibuildwheel"]["test-command"]


# -- tools/check_dist.py: each check fails on the file it is meant to refuse ----------------

_GOOD_SDIST = [
    "kdcore-0.1.0/" + n
    for n in [
        "pyproject.toml",
        "PKG-INFO",
        "CMakeLists.txt",
        "LICENSE",
        "README.md",
        "cpp/bindings/module.cpp",
        "cpp/include/kdcore/parallel.hpp",
        "cpp/src/crowd.cpp",
        "python/kdcore/__init__.py",
        "python/kdcore/_version.py",
        "python/kdcore/_core.pyi",
        "python/kdcore/py.typed",
        "tests/test_packaging.py",
    ]
]


def test_check_dist_sdist_rules():
    cd = _tool("check_dist")
    assert cd.sdist_problems(_GOOD_SDIST) == []
    assert cd.sdist_problems([n for n in _GOOD_SDIST if not n.endswith("LICENSE")]) == ["missing LICENSE"]
    assert cd.sdist_problems([n for n in _GOOD_SDIST if "/cpp/src/" not in n]) == [
        "missing the C++ sources cpp/src/*.cpp"
    ]
    extra = cd.sdist_problems([*_GOOD_SDIST, "kdcore-0.1.0/docs/results/x.csv", "kdcore-0.1.0/benchmarks/b.py"])
    assert extra == ["holds what the build does not need: ['benchmarks', 'docs']"]
    so = cd.sdist_problems([*_GOOD_SDIST, "kdcore-0.1.0/python/kdcore/_core.cpython-311-x86_64-linux-gnu.so"])
    assert len(so) == 1 and so[0].startswith("holds compiled files")


def test_check_dist_wheel_rules():
    cd = _tool("check_dist")
    name = "kdcore-0.1.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    members = [
        "kdcore/__init__.py",
        "kdcore/_core.pyi",
        "kdcore/py.typed",
        "kdcore/_core.cpython-311-x86_64-linux-gnu.so",
    ]
    members.append("kdcore.libs/libgomp-a34b3233.so.1.0.0")
    audit = {"overall_tag": "manylinux_2_28_x86_64", "external_libs": {}}
    assert cd.wheel_problems(name, members, audit) == []
    assert cd.wheel_problems(
        name.replace("manylinux_2_28", "linux"), members, {**audit, "overall_tag": "linux_x86_64"}
    ) == ["auditwheel reports 'linux_x86_64', expected a manylinux_ tag"]
    assert cd.wheel_problems(name, members, {**audit, "overall_tag": "manylinux_2_34_x86_64"}) == [
        f"auditwheel reports manylinux_2_34_x86_64 but the file name is {name}"
    ]
    unvendored = cd.wheel_problems(
        name, members[:-1], {**audit, "external_libs": {"libgomp.so.1": "/lib/libgomp.so.1"}}
    )
    assert unvendored == [
        "libraries outside the policy and not vendored: ['libgomp.so.1']",
        "libgomp not vendored (kdcore.libs/ holds [])",
    ]
    assert cd.wheel_problems(name, [m for m in members if m != "kdcore/py.typed"], audit) == ["missing kdcore/py.typed"]


def test_sdist_holds_what_the_build_needs(tmp_path, monkeypatch):
    """The sdist as scikit-build-core makes it from this tree (no compile: seconds)."""
    skb = pytest.importorskip("scikit_build_core.build", reason="scikit-build-core not installed (build-time only)")
    cd = _tool("check_dist")
    _pyproject()
    monkeypatch.chdir(ROOT)
    name = skb.build_sdist(str(tmp_path))
    cd.check_sdist(tmp_path / name)  # raises on a problem
    with tarfile.open(tmp_path / name) as tf:
        names = tf.getnames()
    inner = {n.split("/", 1)[1] for n in names if "/" in n}
    assert {"tests/_tol.py", "tests/conftest.py"} <= inner  # the sdist's tests can run
    assert not any(n.startswith(("docs/", "benchmarks/", ".ci/", "tools/")) for n in inner)


# -- OpenMP: kdcore's runtime beside torch's, in either import order -----------------------


@pytest.mark.parametrize("order", ["first", "last"])
def test_parallel_fits_beside_torch(order):
    """`import torch; import kdcore` and the reverse: DawidSkene and train_many with 2 threads,
    a torch fit with 2 threads between them, each compared with the numpy twin; a crash or a
    hang (timeout) fails. Each order runs in its own process, as a user's script would."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch not installed")
    if not bk.HAS_OPENMP:
        pytest.skip("compiled core without OpenMP: no runtime to collide with torch's")
    smoke = TOOLS / "smoke_test.py"
    if not smoke.is_file():
        pytest.skip("tools/smoke_test.py not found next to tests/")
    out = subprocess.run(
        [sys.executable, str(smoke), "--torch", order, "--source-tree"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "smoke test passed" in out.stdout
    loaded = [line for line in out.stdout.splitlines() if line.startswith("OpenMP runtime loaded")]
    assert loaded, out.stdout
