"""Backends, threads and configuration."""

import os
import subprocess
import sys

import pytest

import kdcore
from kdcore import backends


def test_show_config_prints_every_fact(capsys):
    kdcore.show_config()
    out = capsys.readouterr().out
    for key in ("kdcore", "backends", "OpenMP", "threads", "SIMD", "BLAS", "torch"):
        assert key in out


def test_cpp_and_numpy_always_available():
    assert backends.HAS_CPP
    assert backends.available_backends()[:2] == ["cpp", "numpy"]


def test_resolve_backend():
    assert backends.resolve_backend("auto", ("cpp", "numpy")) == "cpp"
    assert backends.resolve_backend("numpy", ("cpp", "numpy")) == "numpy"
    with pytest.raises(ValueError, match="not supported"):
        backends.resolve_backend("torch", ("cpp", "numpy"), what="X")
    with pytest.raises(TypeError):
        backends.resolve_backend(3, ("cpp",))


def test_thread_policy_and_env_override(monkeypatch):
    if not backends.HAS_OPENMP:
        assert kdcore.get_num_threads() == 1
        pytest.skip("built without OpenMP: every kernel runs on one thread")
    cores = backends._core.available_cores()
    try:
        kdcore.set_num_threads(1)
        assert kdcore.get_num_threads() == 1
        monkeypatch.setenv("KDCORE_NUM_THREADS", "3")
        assert kdcore.get_num_threads() == 3
        monkeypatch.delenv("KDCORE_NUM_THREADS")
        kdcore.set_num_threads(0)
        assert kdcore.get_num_threads() == cores
    finally:
        kdcore.set_num_threads(0)
    with pytest.raises(ValueError, match=">= 0"):
        kdcore.set_num_threads(-1)
    with pytest.raises(TypeError):
        kdcore.set_num_threads(1.5)
    assert backends.check_n_threads(0) == (cores if backends.HAS_OPENMP else 1)
    with pytest.raises(ValueError):
        backends.check_n_threads(-2)


def test_import_without_torch_works():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import kdcore, kdcore.crowd\n"
        "kdcore.show_config()\n"
        "assert 'torch' not in kdcore.available_backends()"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr


def test_cli_info_and_bad_usage():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-m", "kdcore.cli", "info"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "backends" in r.stdout
