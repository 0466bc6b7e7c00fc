"""Clustering of an embedding into task types: Lloyd's k-means with k-means++ seeding, the
soft assignment of a spherical Gaussian mixture started from its labels, and the
separation of a soft assignment (1 - mean normalised entropy)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backends import HAS_CPP, _core

__all__ = ["kmeans", "gmm_proba", "separation"]


def _nearest(d2: np.ndarray) -> np.ndarray:
    """``d2.argmin(1)`` (the first minimum on ties) by k column sweeps: a row-wise argmin over a
    few columns is a strided reduction, several times slower than k contiguous comparisons."""
    k = d2.shape[1]
    if k == 1:
        return np.zeros(d2.shape[0], dtype=np.int64)
    if not np.isfinite(d2).all():  # NaN ordering as argmin has it
        return d2.argmin(1)
    cols = np.ascontiguousarray(d2.T)
    best = cols[0].copy()
    lab = np.zeros(d2.shape[0], dtype=np.int64)
    for q in range(1, k):
        closer = cols[q] < best  # strict: a tie keeps the earlier centre, as argmin does
        lab[closer] = q
        np.minimum(best, cols[q], out=best)
    return lab


def _lloyd(X: np.ndarray, C: np.ndarray, k: int, n_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's iterations from the centres C (the numpy twin of kdcore/crowd.hpp lloyd_kmeans)."""
    n = X.shape[0]
    lab = np.zeros(n, dtype=np.int64)
    sq = (X * X).sum(1)
    for it in range(n_iter):
        d2 = sq[:, None] - 2.0 * X @ C.T + (C * C).sum(1)[None]
        new = _nearest(d2)
        if it > 0 and np.array_equal(new, lab):
            break
        lab = new
        # centres: per-cluster sums by bincount (one pass per coordinate, no boolean copies)
        cnt = np.bincount(lab, minlength=k)
        for q in range(X.shape[1]):
            col = np.bincount(lab, weights=X[:, q], minlength=k)
            C[cnt > 0, q] = col[cnt > 0] / cnt[cnt > 0]
    return lab, C


def kmeans(
    X: np.ndarray,
    k: int,
    rng: np.random.Generator,
    n_init: int = 10,
    n_iter: int = 100,
    backend: str = "auto",
    n_threads: int = 1,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd's k-means with k-means++ seeding, best of ``n_init`` (three above 50,000 points):
    (labels, centres, inertia); the first seeding with the least inertia wins.

    Every seeding is drawn from ``rng`` first (Lloyd's iterations draw nothing, so the draws are
    those of seeding and iterating in turn); the iterations then run compiled (``backend`` "auto"
    or "cpp" with the core built: kdcore/crowd.hpp lloyd_kmeans_runs, the seedings side by side on
    up to ``n_threads`` threads, each run serial, so the result does not depend on the count) or in
    numpy (:func:`_lloyd`)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    n = X.shape[0]
    compiled = HAS_CPP and backend in ("auto", "cpp") and n > 0
    runs = int(n_init) if n <= 50_000 else min(int(n_init), 3)  # large inputs: three seedings are plenty
    seeds = []
    for _ in range(runs):
        c = [X[rng.integers(n)]]
        for _ in range(1, k):
            d2 = np.min(((X[:, None, :] - np.array(c)[None]) ** 2).sum(-1), axis=1)
            tot = d2.sum()
            c.append(X[rng.choice(n, p=d2 / tot)] if tot > 0 else X[rng.integers(n)])
        seeds.append(np.array(c, dtype=np.float64))
    if not seeds:
        raise ValueError(f"kmeans needs at least one seeding, got n_init={n_init}")
    if compiled:
        labs, cents, _ = _core.lloyd_kmeans_runs(X, np.stack(seeds), int(n_iter), int(n_threads))
        fits = list(zip(labs, cents))
    else:
        fits = [_lloyd(X, C, k, int(n_iter)) for C in seeds]
    best: tuple[Any, Any, float] = (None, None, np.inf)
    for lab, C in fits:
        inertia = float(((X - C[lab]) ** 2).sum())
        if inertia < best[2]:
            best = (lab.copy(), C.copy(), inertia)
    return best


def gmm_proba(X: np.ndarray, labels: np.ndarray, k: int, n_iter: int = 30, tol: float = 1e-6) -> np.ndarray:
    """Soft assignment of a spherical Gaussian mixture (one variance per component) started from ``labels``."""
    n, p = X.shape
    R = np.eye(k)[labels]
    floor = 1e-12 * max(float(X.var()), 1e-300)
    sq = (X * X).sum(1)
    prev = None
    for _ in range(n_iter):
        nk = R.sum(0) + 1e-12
        mu = (R.T @ X) / nk[:, None]
        d2 = np.maximum(sq[:, None] - 2.0 * X @ mu.T + (mu * mu).sum(1)[None], 0.0)
        var = np.maximum((R * d2).sum(0) / (nk * p), floor)
        logp = np.log(nk / n) - 0.5 * p * np.log(var) - 0.5 * d2 / var
        logp -= logp.max(1, keepdims=True)
        R = np.exp(logp)
        R /= R.sum(1, keepdims=True)
        if prev is not None and np.abs(R - prev).max() < tol:
            break
        prev = R
    return R


def separation(proba: np.ndarray) -> float:
    """1 - mean normalised entropy of the rows of ``proba`` (0 for a single column), in [0, 1]."""
    k = proba.shape[1]
    if k < 2:
        return 0.0
    p = np.clip(proba, 1e-300, 1.0)
    ent = -(p * np.log(p)).sum(1) / np.log(k)
    return float(np.clip(1.0 - ent.mean(), 0.0, 1.0))
