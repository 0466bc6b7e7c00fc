"""Parameter checks and small helpers shared by the crowd-more aggregators
(TriangularEstimation, KOS, RatioOfEigenvectors, GLAD, MACE, SpectralEM)."""

from __future__ import annotations

import numpy as np

from .._check import check_float, check_int  # noqa: F401 (re-exported)
from ..backends import check_n_threads


def threads(est) -> int:
    """Validated n_threads of an estimator (0 = kdcore's default policy)."""
    check_n_threads(getattr(est, "n_threads", 0))
    return int(est.n_threads)


def progress_range(n: int, show: bool, desc: str):
    """range(n), wrapped in tqdm when ``show`` and stderr is a terminal."""
    import sys

    if show and sys.stderr.isatty():
        from tqdm.auto import trange

        return trange(n, desc=desc, leave=False)
    return range(n)


def pm_one(labels: np.ndarray) -> np.ndarray:
    """Binary class codes 0/1 as -1/+1 floats."""
    return np.where(np.asarray(labels) == 1, 1.0, -1.0)
