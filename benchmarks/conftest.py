"""Benchmarks are pytest-benchmark tests; `pytest benchmarks --benchmark-enable`."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))


@pytest.fixture
def machine_info():
    """Facts every benchmark records in extra_info: threads, device, BLAS."""
    from kdcore.backends import config

    cfg = config()
    return {"threads": cfg["threads"], "simd": cfg["simd"], "blas": "; ".join(cfg["blas"]), "openmp": cfg["openmp"]}
