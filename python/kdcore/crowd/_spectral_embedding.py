"""The label-free spectral embedding of tasks (docs/maths.md B.3): each answer becomes a
value vector (the class's vertex of a regular simplex, centred), and the top eigenpairs
of the hollow task-task matrix G_jl = <F_j, F_l> of those values embed the tasks.

G is never formed: the compiled implicit operator + Lanczos (kdcore/spectral.hpp), or
scipy's ``eigsh`` on a ``LinearOperator`` (the numpy twin in
:mod:`kdcore.crowd._reference_types`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._limits import check_memory
from ..backends import _core, check_n_threads
from . import _reference_types as ref
from ._responses import Responses

__all__ = ["CENTRINGS", "simplex_codes", "answer_values", "spectral_embedding"]

#: how answer values are centred (the TaskTypeClustering docstring says what each does)
CENTRINGS = ("worker", "class", "none")


def simplex_codes(n_classes: int) -> np.ndarray:
    """(K, K-1) vertices of a regular simplex with z_c . z_c = 1 and z_c . z_c' = -1/(K-1).
    For K = 2: [[-1], [+1]] (class code 0 -> -1, class code 1 -> +1)."""
    K = int(n_classes)
    if K == 2:
        return np.array([[-1.0], [1.0]])
    E = np.eye(K) - 1.0 / K
    # orthonormal basis of the sum-zero subspace, signs fixed for reproducibility
    q, _ = np.linalg.qr(E[:, : K - 1])
    Z = E @ q * np.sqrt(K / (K - 1))
    return Z


def answer_values(r: Responses, centring: str = "worker", label_post: np.ndarray | None = None) -> np.ndarray:
    """The value vector z_e (nnz x p) of each answer, centred as documented in the module."""
    Z = simplex_codes(r.n_classes)
    if centring == "worker":
        # z_e - mean_w(z) takes one of W K values: build that (W, K, p) table from the answer
        # counts n[w, l] and gather it once (no answer-length temporaries but the index)
        K = r.n_classes
        code = r.worker * np.int32(K) + r.label if r.n_workers * K < 2**31 else r.worker.astype(np.int64) * K + r.label
        n_wl = np.bincount(code, minlength=r.n_workers * K).reshape(r.n_workers, K).astype(np.float64)
        mean = (n_wl @ Z) / np.maximum(n_wl.sum(1), 1)[:, None]  # (W, p)
        table = (Z[None, :, :] - mean[:, None, :]).reshape(r.n_workers * K, -1)  # (W K, p)
        return np.ascontiguousarray(table[code])
    z = Z[r.label]
    if centring == "none":
        return np.ascontiguousarray(z)
    if centring == "class":
        if label_post is None:
            raise ValueError("centring='class' needs label posteriors")
        wpost = label_post[r.task]  # (N, K)
        K, p = r.n_classes, z.shape[1]
        num = np.zeros((r.n_workers, K, p))
        den = np.zeros((r.n_workers, K))
        for k in range(K):
            for c in range(p):
                num[:, k, c] = np.bincount(r.worker, weights=wpost[:, k] * z[:, c], minlength=r.n_workers)
            den[:, k] = np.bincount(r.worker, weights=wpost[:, k], minlength=r.n_workers)
        mu = num / np.maximum(den, 1e-12)[:, :, None]  # (W, K, p)
        expected = np.einsum("nk,nkp->np", wpost, mu[r.worker])
        return np.ascontiguousarray(z - expected)
    raise ValueError(f"centring must be one of {list(CENTRINGS)}, got {centring!r}")


def spectral_embedding(
    r: Responses,
    values: np.ndarray,
    k: int,
    *,
    backend: str = "cpp",
    operator: str = "auto",
    tol: float = 1e-6,
    ncv: int = 80,
    seed: int = 0,
    n_threads: int = 0,
    n_vec: int | None = None,
    min_gap: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Top-k eigenpairs of the hollow task-task matrix G of ``values``.

    ``backend="cpp"``: compiled implicit operator + Lanczos; ``"numpy"``: scipy ``eigsh``
    on a ``LinearOperator`` (the reference route). ``operator``: "dense" (O(n^2 d),
    binary answers only), "sparse" (O(sum_j c_j^2) = O(n nnz)) or "auto".

    ``n_vec`` (default ``k``): the leading eigenvectors that must reach ``tol``; the others are
    wanted for their eigenvalues (the eigengap after vector ``n_vec``). ``min_gap`` > 0: stop as
    soon as the relative gap (lambda_nv - lambda_nv+1) / lambda_nv is provably below it (the
    Ritz bound of kdcore/lanczos.hpp): those vectors cannot be resolved and the split they would
    give is not supported by the data.

    Returns (eigenvalues (k,), eigenvectors (d, k), info dict): ``converged`` (the wanted pairs
    reached ``tol``), ``unsupported`` (not converged: the vectors are the best Ritz vectors and
    must not be read as a split), ``eigengap`` and ``eigengap_upper`` (relative gap after vector
    ``n_vec`` and its upper bound), ``reason``, ``n_matvec``, ``operator``, ``residual``."""
    task = np.ascontiguousarray(r.task, dtype=np.int32)
    worker = np.ascontiguousarray(r.worker, dtype=np.int32)
    d, n = r.n_tasks, r.n_workers
    nv = int(k) if n_vec is None else int(n_vec)
    if not 1 <= nv <= k:
        raise ValueError(f"n_vec must be in [1, k={k}], got {n_vec!r}")
    if backend == "numpy":
        vals, vecs, nm = ref.spectral_eigs_scipy(task, worker, values, d, n, k, tol=tol, seed=seed)
        gap = float((vals[nv - 1] - vals[nv]) / max(abs(vals[nv - 1]), 1e-300)) if nv < k else float("nan")
        info: dict[str, Any] = {
            "n_matvec": nm,
            "converged": True,
            "unsupported": False,
            "operator": "numpy",
            "residual": float("nan"),
            "eigengap": gap,
            "eigengap_upper": gap,
            "reason": "converged (scipy eigsh)",
        }
        return vals, vecs, info
    cnt = np.diff(r.task_indptr).astype(np.float64)
    if operator == "auto":
        dense = values.shape[1] == 1 and 8.0 * float((cnt**2).sum()) > float(n) ** 2 * d and n * d <= 5e7
    elif operator in ("dense", "sparse"):
        dense = operator == "dense"
        if dense and values.shape[1] != 1:
            raise ValueError("operator='dense' needs binary answers (one value per answer)")
    else:
        raise ValueError(f"operator must be 'auto', 'dense' or 'sparse', got {operator!r}")
    # dense intermediates of the compiled operator: worker x worker M (per thread, plus the
    # transposed copy) and, on the dense path, the padded worker x task answer matrix
    nt = check_n_threads(n_threads)
    need = 8.0 * float(n) ** 2 * ((nt + 2) if dense else 2) + (8.0 * n * d if dense else 0.0)
    check_memory(
        need,
        f"the {'dense' if dense else 'sparse'} task-task operator for {n} workers x {d} tasks",
        "use operator='sparse' (when dense) or backend='numpy' (scipy, sparse matrices)",
    )
    vals, vecs, nm, conv, res, gap, gap_up, gap_limited = _core.spectral_eigs(
        task, worker, values, d, n, int(k), bool(dense), int(ncv), float(tol), int(seed), int(n_threads), nv, min_gap
    )
    if nv == k:
        gap = gap_up = float("nan")
    if conv:
        reason = f"converged to tol={tol} in {nm} products"
    elif gap_limited:
        reason = (
            f"eigengap after vector {nv} is at most {gap_up:.3g} (found {gap:.3g}) < min_gap={min_gap}: "
            f"a near-degenerate spectrum, the vectors cannot be resolved (stopped after {nm} products)"
        )
    else:
        reason = (
            f"Lanczos did not reach tol={tol} in {ncv} vectors (residual {res:.3g}, eigengap found {gap:.3g}): "
            "the vectors are not resolved"
        )
    info = {
        "n_matvec": int(nm),
        "converged": bool(conv),
        "unsupported": not bool(conv),
        "operator": "dense" if dense else "sparse",
        "residual": float(res),
        "eigengap": float(gap),
        "eigengap_upper": float(gap_up),
        "reason": reason,
    }
    return vals, vecs, info
