"""Input checks shared by the distill modules (ValueError for bad values, TypeError for bad types)."""

from __future__ import annotations

import numpy as np

from .._check import check_float, check_int

_FLOATS = (np.float32, np.float64)


def check_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def from_torch(a):
    """A torch tensor (any device) as a numpy array; anything else unchanged. torch is not imported."""
    if type(a).__module__.split(".")[0] == "torch" and hasattr(a, "detach") and hasattr(a, "cpu"):
        return a.detach().cpu().numpy()
    return a


def check_X(X, name: str = "X", *, d: int | None = None, dtype=None, allow_zero_rows: bool = False) -> np.ndarray:
    """A finite 2-d float array with no zero-norm rows, as C-contiguous ``dtype`` (numpy or torch input)."""
    X = from_torch(X)
    if not isinstance(X, np.ndarray):
        if hasattr(X, "to_numpy"):
            X = X.to_numpy()
        elif isinstance(X, (list, tuple)):
            X = np.asarray(X)
        else:
            raise TypeError(f"{name} must be a numpy array, got {type(X).__name__}")
    if X.dtype.kind not in "fiu" or X.dtype == bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-d (n_samples, n_features), got {X.ndim}-d with shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {X.shape}")
    if d is not None and X.shape[1] != d:
        raise ValueError(f"{name} has {X.shape[1]} features but the model expects d = {d}")
    dt = (
        X.dtype
        if dtype is None and X.dtype in _FLOATS
        else (np.dtype(dtype) if dtype is not None else np.dtype(np.float64))
    )
    X = np.ascontiguousarray(X, dtype=dt)
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if not allow_zero_rows:
        with np.errstate(over="ignore"):
            sq = np.einsum("ij,ij->i", X, X, dtype=np.float64)
        big = np.flatnonzero(~np.isfinite(sq))
        if big.size:
            raise ValueError(
                f"{name} has {big.size} row(s) whose squared norm overflows float64 (first: row "
                f"{big[0]}, max |x| = {np.abs(X[big[0]]).max():.3g}); scale X so that ||x|| <= 1"
            )
        bad = np.flatnonzero(~np.any(X != 0, axis=1))
        if bad.size:
            raise ValueError(
                f"{name} has {bad.size} zero-norm row(s) (first: row {bad[0]}); the model needs c <= ||x|| <= 1 with c > 0"
            )
    return X


def check_labels(y, n: int, name: str = "y") -> np.ndarray:
    """Labels in {-1, +1} of length n, returned as float64."""
    y = np.asarray(from_torch(y))
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"{name} has length {y.shape[0]} but X has {n} rows")
    if y.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be numeric labels in {{-1, +1}}, got dtype {y.dtype}")
    yf = y.astype(np.float64)
    if not np.all(np.isfinite(yf)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if not np.all((yf == 1.0) | (yf == -1.0)):
        bad = np.unique(yf[(yf != 1.0) & (yf != -1.0)])[:5]
        raise ValueError(f"{name} must hold labels in {{-1, +1}}; found {bad.tolist()}")
    return yf


def check_soft(p, n: int, name: str = "targets") -> np.ndarray:
    """Soft labels in [0, 1], length n, as float64.

    The soft loss KL(p || sigmoid f) is finite at p = 0 and p = 1 (0 ln 0 = 0 in its entropy
    term, on every backend), so exact 0 and 1 (posteriors of a confident aggregator) are kept.
    """
    p = np.asarray(from_torch(p))
    if p.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {p.shape}")
    if p.shape[0] != n:
        raise ValueError(f"{name} has length {p.shape[0]} but X has {n} rows")
    if p.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be soft labels (floats in [0, 1]), got dtype {p.dtype}")
    pf = p.astype(np.float64)
    if not np.all(np.isfinite(pf)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.any(pf < 0.0) or np.any(pf > 1.0):
        raise ValueError(f"soft {name} must lie in [0, 1]; got min {pf.min():.6g}, max {pf.max():.6g}")
    return pf


def check_loss(loss) -> str:
    if not isinstance(loss, str):
        raise TypeError(f"loss must be 'soft' or 'hard', got {type(loss).__name__}")
    if loss not in ("soft", "hard"):
        raise ValueError(f"loss must be 'soft' or 'hard', got {loss!r}")
    return loss


def check_positive_int(v, name: str, minimum: int = 1) -> int:
    """``v`` as an int >= ``minimum`` (bools refused): :func:`kdcore._check.check_int`."""
    return check_int(v, name, minimum=minimum)


def check_nonneg_float(v, name: str) -> float:
    """``v`` as a finite float >= 0 (bools refused): :func:`kdcore._check.check_float`."""
    return check_float(v, name, minimum=0.0)


def check_radius(v) -> float | None:
    """The projection radius: None (no projection; so is +inf) or a finite number > 0."""
    if v is None:
        return None
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) and np.isposinf(v):
        return None
    return check_float(v, "radius", minimum=0.0, strict_min=True)
