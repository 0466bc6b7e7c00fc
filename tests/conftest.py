"""Shared fixtures: the data folder (tests that need it skip with the reason) and seeds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


def _find_data() -> Path | None:
    env = os.environ.get("KDCORE_DATA")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent.parent
    # the checkout's own shared/ or the nearest ancestor's (../shared/data for a clone, higher for a worktree)
    candidates += [p / "shared" / "data" for p in [here, *here.parents]]
    for c in candidates:
        if (c / "crowd").is_dir():
            return c
    return None


DATA_HOME = _find_data()


@pytest.fixture(scope="session")
def data_home() -> Path:
    if DATA_HOME is None:
        pytest.skip("shared data folder not found: set KDCORE_DATA to the folder holding crowd/, mnist/, cifar10/")
    return DATA_HOME


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
