"""M-MSR worker skills (Ma & Olshevsky, NeurIPS 2020) as crowd-kit 1.4.2 computes them, sparse.

For every pair of workers sharing tasks, the covariance estimate
C_ab = (agree_ab / common_ab) L / (L - 1) - 1 / (L - 1) (L labels; -1 / (L - 1) for pairs
that share nothing and on the diagonal). The robust rank-one fit |C| ≈ u v^T
alternates trimmed means over the stored pairs (the compiled ``mmsr_iterate``); the
signs come from the eigenvector of the smallest eigenvalue of the normalised
adjacency of crowd-kit's sign graph (worker nodes joined where C < 0, one extra node
per positive pair), found by Lanczos on an implicit operator: the graph is nearly
complete, and is never formed. Skills are the log-odds of the implied accuracies,
clipped as in crowd-kit.

Memory is O(answers + worker pairs sharing a task); crowd-kit's dense workers x tasks
matrix needs ~800 GiB at a million answers.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.stats as sps
from scipy.sparse.linalg import LinearOperator, eigsh

from ..backends import _core
from ._responses import Responses

__all__ = ["mmsr_skills"]


def _dense_row_sums(cov: np.ndarray, indptr: np.ndarray, idx: np.ndarray, W: int, off: float) -> np.ndarray:
    """Row sums of the dense covariation matrix (``off`` off the stored pairs and on the
    diagonal) summed as numpy sums a dense row, so that a sum that is zero in crowd-kit is
    zero here (whether a worker's sign is determined hangs on it). Rows in blocks: O(W) memory."""
    out = np.empty(W)
    block = max(1, min(W, 4_000_000 // max(W, 1)))
    for start in range(0, W, block):
        stop = min(W, start + block)
        dense = np.full((stop - start, W), off)
        lo, hi = indptr[start], indptr[stop]
        r = np.repeat(np.arange(stop - start), np.diff(indptr[start : stop + 1]))
        dense[r, idx[lo:hi]] = cov[lo:hi]
        out[start:stop] = np.sum(dense, axis=1)
    return out


def _sign_vector(cov: np.ndarray, indptr: np.ndarray, idx: np.ndarray, W: int, L: int) -> tuple[np.ndarray, np.ndarray]:
    """(valid workers, sign of each valid worker) from crowd-kit's _sign_determination_valid."""
    rows = np.repeat(np.arange(W), np.diff(indptr))
    off = 0.0 * (L / (L - 1)) - 1 / (L - 1)
    rowsum = _dense_row_sums(cov, indptr, idx, W, off)
    valid = np.flatnonzero(rowsum != 0)
    k = len(valid)
    pos_in = np.full(W, -1, dtype=np.int64)
    pos_in[valid] = np.arange(k)
    vi, vj = pos_in[rows], pos_in[idx]
    both = (vi >= 0) & (vj >= 0)
    nonneg = both & (cov >= 0)  # pairs that are not edges of the negative graph
    P = sp.csr_matrix((np.ones(int(nonneg.sum())), (vi[nonneg], vj[nonneg])), shape=(k, k))
    pos = both & (cov > 0) & (vi < vj)  # the extra nodes: positive pairs, upper triangle
    pi, pj = vi[pos], vj[pos]
    m = len(pi)
    S = sp.csr_matrix(
        (np.ones(2 * m), (np.r_[np.arange(m), np.arange(m)], np.r_[pi, pj])), shape=(m, k)
    )  # rows e_I + e_J
    d = np.empty(k + m)
    d[:k] = k - np.asarray(P.sum(axis=1)).ravel() + np.asarray(S.sum(axis=0)).ravel()
    d[k:] = 2.0
    if (d <= 0).any():
        raise FloatingPointError("MMSR: a node of the sign graph has no edge")
    s = 1.0 / np.sqrt(d)

    def matvec(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x).ravel()
        y = x * s
        xw, xp = y[:k], y[k:]
        out = np.empty(k + m)
        out[:k] = xw.sum() - P @ xw + S.T @ xp
        out[k:] = S @ xw
        return out * s

    op = LinearOperator((k + m, k + m), matvec=matvec, dtype=np.float64)
    if k + m <= 2:
        dense = np.column_stack([matvec(e) for e in np.eye(k + m)])
        _, vecs = np.linalg.eigh(dense)
        vec = vecs[:, 0]
    else:
        _, vecs = eigsh(op, k=1, which="SA", tol=1e-12, v0=np.ones(k + m), maxiter=100 * (k + m) + 1000)
        vec = vecs[:, 0]
    sign = np.sign(vec[:k])
    return valid, np.sign(np.sum(sign)) * sign


def mmsr_skills(
    r: Responses, n_tasks: int, n_labels: int, n_iter: int, tol: float, random_state, n_threads: int = 0
) -> tuple[np.ndarray, list[float]]:
    """Skills (log-odds, one per worker of ``r``) and the loss of each round.

    ``r`` must hold at most one answer per (task, worker); its worker codes give the
    order of the random start (crowd-kit: order of first appearance).
    """
    W = r.n_workers
    L = int(n_labels)
    if L < 2:
        raise ValueError(f"MMSR needs at least two distinct labels, got {L}")
    indptr, idx, common, agree = _core.mmsr_pairs(
        r.task_indptr, r.task_worker, r.task_label, r.worker_indptr, r.worker_task, r.worker_label, r.n_tasks, W
    )
    cov = agree / common
    cov = cov * (L / (L - 1))
    cov = cov - 1 / (L - 1)
    deg = np.diff(indptr)
    F = int(np.floor(deg.min() / 2)) - 1
    u = np.ascontiguousarray(sps.uniform.rvs(size=(W, 1), random_state=random_state).ravel())
    v = np.ascontiguousarray(sps.uniform.rvs(size=(W, 1), random_state=random_state).ravel())
    _, history = _core.mmsr_iterate(
        indptr, idx, np.abs(cov), u, v, F, int(n_tasks), int(n_iter), float(tol), int(n_threads)
    )
    k = np.sqrt(np.linalg.norm(u) / np.linalg.norm(v))
    x1 = u / k
    x2 = np.zeros(W)
    valid, sign = _sign_vector(cov, indptr, idx, W, L)
    x2[valid] = x1[valid] * sign
    x3 = np.minimum(x2, 1 - 1.0 / np.sqrt(n_tasks))
    x = np.maximum(x3, -1 / (L - 1) + 1.0 / np.sqrt(n_tasks))
    p = x * (L - 1) / L + 1 / L
    return np.log(p * (L - 1) / (1 - p)), [float(h) for h in history]
