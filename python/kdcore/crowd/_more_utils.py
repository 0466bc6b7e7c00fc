"""Parameter checks and small helpers shared by the crowd-more aggregators
(TriangularEstimation, KOS, RatioOfEigenvectors, GLAD, MACE, SpectralEM)."""

from __future__ import annotations

import numbers

import numpy as np

from ..backends import check_n_threads


def check_int(value, name: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_float(
    value, name: str, *, minimum: float | None = None, maximum: float | None = None, strict_min: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value < minimum or (strict_min and value == minimum)):
        raise ValueError(f"{name} must be {'>' if strict_min else '>='} {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


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
