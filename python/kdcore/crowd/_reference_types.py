"""Readable numpy twins of the task-type kernels (cpp/src/spectral.cpp).

Written for clarity, not speed: the test oracle and the ``numpy`` backend of
:class:`~kdcore.crowd.TaskTypeClustering` (and the scipy baseline of
benchmarks/bench_types.py). Notation of kdcore/spectral.hpp and docs/maths.md B.3:
each answer e = (task j, worker i) has a value vector z_e in R^p; the hollow
outer product of task j is F_j = sum_{a != b in j} (z_a . z_b) e_{i_a} e_{i_b}^T
and G_jl = <F_j, F_l> (j != l), G_jj = 0.
"""

from __future__ import annotations

import numpy as np


def pair_values(task, worker, values, n_tasks, n_workers):
    """The n x n x d tensor of pairwise products P[i, i', j] = z_ij . z_i'j (0 when either is missing).

    Tiny inputs only (it is the definition, O(n^2 d) memory)."""
    p = values.shape[1]
    Z = np.zeros((n_workers, n_tasks, p))
    Z[worker, task] = values
    return np.einsum("ijp,kjp->ikj", Z, Z)


def hollow_gram_dense(task, worker, values, n_tasks, n_workers):
    """G formed densely from its definition: G_jl = sum_{i != i'} P[i,i',j] P[i,i',l], zero diagonal."""
    P = pair_values(task, worker, values, n_tasks, n_workers)
    n = n_workers
    off = ~np.eye(n, dtype=bool)
    W = P[off]  # (n (n - 1), d): the pairwise-product rows, i != i'
    G = W.T @ W
    np.fill_diagonal(G, 0.0)
    return G


def hollow_gram_matvec(task, worker, values, n_tasks, n_workers, u):
    """G u without forming G (the M(u) contraction of spectral.hpp), with dense numpy products (p = 1)
    or per-task loops (p > 1)."""
    p = values.shape[1]
    if p == 1:
        X = np.zeros((n_workers, n_tasks))
        X[worker, task] = values[:, 0]
        M = (X * u) @ X.T  # M = X diag(u) X^T
        q = np.einsum("ij,ij->j", X, M @ X)  # q_j = x_j^T M x_j
        S = X * X
        corr = S.T @ (S @ u)  # sum_l (s_j . s_l) u_l
        gdiag = (S.sum(axis=0)) ** 2 - (S * S).sum(axis=0)
        return q - corr - gdiag * u
    G = hollow_gram_dense(task, worker, values, n_tasks, n_workers)
    return G @ u


def spectral_eigs_scipy(task, worker, values, n_tasks, n_workers, k, tol=1e-6, seed=0):
    """Top-k eigenpairs of G through ``scipy.sparse.linalg.eigsh`` on a ``LinearOperator`` whose
    matvec is :func:`hollow_gram_matvec` (the oracle and benchmark baseline of the compiled route).
    Returns (values descending, vectors (d, k), n_matvec)."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    count = [0]
    p = values.shape[1]
    if p == 1:  # precompute the dense pieces once, as a careful scipy user would
        X = np.zeros((n_workers, n_tasks))
        X[worker, task] = values[:, 0]
        S = X * X
        gdiag = S.sum(axis=0) ** 2 - (S * S).sum(axis=0)

        def mv(u):
            count[0] += 1
            u = np.asarray(u).ravel()
            M = (X * u) @ X.T
            return np.einsum("ij,ij->j", X, M @ X) - S.T @ (S @ u) - gdiag * u
    else:
        G = hollow_gram_dense(task, worker, values, n_tasks, n_workers)

        def mv(u):
            count[0] += 1
            return G @ np.asarray(u).ravel()

    op = LinearOperator((n_tasks, n_tasks), matvec=mv, dtype=np.float64)
    v0 = np.random.default_rng(seed).uniform(-1, 1, n_tasks)
    vals, vecs = eigsh(op, k=k, which="LA", tol=tol, v0=v0)
    order = np.argsort(vals)[::-1]
    return vals[order], vecs[:, order], count[0]


def two_type_simulate(n_tasks, n_workers, alpha, rel, rng, class_share=0.5, class_bias=None):
    """Small two-type simulator for the tests (binary labels {-1, +1}).

    ``rel`` (n_workers, 2): P(right | type). ``class_bias`` (n_workers, 2), optional:
    P(right | true class -1), P(right | true class +1) (one type, class-dependent workers);
    it replaces ``rel``. Returns (task, worker, label codes 0/1, y in {-1,+1}, types)."""
    y = np.where(rng.random(n_tasks) < class_share, 1, -1)
    t = (rng.random(n_tasks) >= 0.5).astype(int)
    mask = rng.random((n_workers, n_tasks)) < alpha
    mask[rng.integers(0, n_workers, n_tasks), np.arange(n_tasks)] = True
    w, j = np.nonzero(mask)
    if class_bias is not None:
        p_right = class_bias[w, (y[j] > 0).astype(int)]
    else:
        p_right = rel[w, t[j]]
    right = rng.random(w.size) < p_right
    ans = np.where(right, y[j], -y[j])
    return j, w, (ans > 0).astype(int), y, t
