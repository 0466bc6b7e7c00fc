"""Readable numpy twins of the compiled worker-model kernels: Triangular Estimation's
pairwise agreement moments, KOS message passing, GLAD's E-step and M-step objective,
MACE's E-step and expected counts (cpp/src/crowd_more.cpp).

Written for clarity, not speed: they are the test oracle (equal to the C++
kernels to 1e-10 in float64) and the ``numpy`` backend of TriangularEstimation,
KOS, GLAD and MACE. Each takes the same views of :class:`Responses` as the C++
kernel: task-major ``(t_indptr, t_worker, t_label)`` and worker-major
``(w_indptr, w_task, w_label)``. The equations are in
cpp/include/kdcore/crowd_more.hpp.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logsumexp


def _task_of_edge(t_indptr: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(t_indptr) - 1), np.diff(t_indptr))


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


# ---------------------------------------------------------------- Triangular Estimation
def te_pairwise_agreement(t_indptr, t_worker, t_label, n_workers):
    """(sum, count) W x W: sum over co-answered tasks of X_a X_b (X = 2 label - 1) and how many."""
    x = np.where(t_label == 1, 1.0, -1.0)
    task = _task_of_edge(t_indptr)
    # one sparse tasks x workers matrix with entries +-1 (and its 0/1 pattern): X^T X gives both at once
    from scipy import sparse

    n_tasks = len(t_indptr) - 1
    X = sparse.csr_matrix((x, (task, t_worker)), shape=(n_tasks, n_workers))
    A = sparse.csr_matrix((np.ones_like(x), (task, t_worker)), shape=(n_tasks, n_workers))
    s = (X.T @ X).toarray()
    c = (A.T @ A).toarray()
    np.fill_diagonal(s, 0.0)
    np.fill_diagonal(c, 0.0)
    return s, c


# ---------------------------------------------------------------- KOS
def kos_messages(t_indptr, t_worker, t_label, n_workers, y0, n_iter):
    """KOS iterations with RMS-normalised messages; returns (task scores, final y in task-major order)."""
    a = np.where(t_label == 1, 1.0, -1.0)
    task = _task_of_edge(t_indptr)
    n_tasks = len(t_indptr) - 1
    worker_of_tmajor = t_worker
    y = np.array(y0, dtype=np.float64, copy=True)

    def _normalise(v):
        r = np.sqrt(np.mean(v * v)) if len(v) else 0.0
        return v / r if r > 0 else v

    for _ in range(n_iter):
        task_sum = np.bincount(task, weights=a * y, minlength=n_tasks)
        x = _normalise(task_sum[task] - a * y)
        worker_sum = np.bincount(worker_of_tmajor, weights=a * x, minlength=n_workers)
        y = _normalise(worker_sum[worker_of_tmajor] - a * x)
    score = np.bincount(task, weights=a * y, minlength=n_tasks)
    return score, y


# ---------------------------------------------------------------- GLAD
def glad_e_step(t_indptr, t_worker, t_label, n_classes, alpha, logbeta, log_prior):
    """Posteriors (n_tasks x K) and log-likelihood of GLAD's E-step."""
    K = n_classes
    task = _task_of_edge(t_indptr)
    s = alpha[t_worker] * np.exp(logbeta[task])
    right = _log_sigmoid(s)
    wrong = _log_sigmoid(-s) - np.log(K - 1)
    logp = np.tile(np.asarray(log_prior, dtype=np.float64), (len(t_indptr) - 1, 1))
    logp += np.bincount(task, weights=wrong, minlength=len(t_indptr) - 1)[:, None]
    np.add.at(logp, (task, t_label), right - wrong)
    ll = logsumexp(logp, axis=1)
    return np.exp(logp - ll[:, None]), float(ll.sum())


def glad_objective(t_indptr, t_worker, t_label, n_classes, post, alpha, logbeta, mu_alpha, mu_logbeta):
    """GLAD's M-step objective Q and its gradient (dQ/dalpha, dQ/dlogbeta)."""
    K = n_classes
    task = _task_of_edge(t_indptr)
    n_tasks, n_workers = len(t_indptr) - 1, len(alpha)
    beta = np.exp(logbeta)
    s = alpha[t_worker] * beta[task]
    pe = post[task, t_label]
    q = np.sum(pe * _log_sigmoid(s) + (1 - pe) * (_log_sigmoid(-s) - np.log(K - 1)))
    resid = pe - expit(s)
    g_beta = np.bincount(task, weights=resid * s, minlength=n_tasks) - (logbeta - mu_logbeta)
    g_alpha = np.bincount(t_worker, weights=resid * beta[task], minlength=n_workers) - (alpha - mu_alpha)
    q -= 0.5 * np.sum((alpha - mu_alpha) ** 2) + 0.5 * np.sum((logbeta - mu_logbeta) ** 2)
    q -= 0.5 * np.log(2 * np.pi) * (n_workers + n_tasks)
    return float(q), g_alpha, g_beta


# ---------------------------------------------------------------- MACE
def mace_e_step(t_indptr, t_worker, t_label, n_classes, spam, strat):
    """MACE posteriors (n_tasks x K) and log marginal likelihood."""
    K = n_classes
    task = _task_of_edge(t_indptr)
    n_tasks = len(t_indptr) - 1
    g = spam[t_worker, 0] * strat[t_worker, t_label]
    d = g + spam[t_worker, 1]
    lg = np.log(np.maximum(g, 1e-300))
    logm = np.full((n_tasks, K), -np.log(K))
    logm += np.bincount(task, weights=lg, minlength=n_tasks)[:, None]
    np.add.at(logm, (task, t_label), np.log(np.maximum(d, 1e-300)) - lg)
    ll = logsumexp(logm, axis=1)
    return np.exp(logm - ll[:, None]), float(ll.sum())


def mace_counts(w_indptr, w_task, w_label, n_classes, post, spam, strat):
    """MACE expected counts: know_counts (W x 2: spam, know) and strategy counts (W x K)."""
    K = n_classes
    worker = _task_of_edge(w_indptr)
    n_workers = len(w_indptr) - 1
    q = post[w_task, w_label]
    g = spam[worker, 0] * strat[worker, w_label]
    d = g + spam[worker, 1]
    ok = d > 0
    dd = np.where(ok, d, 1.0)
    p_spam = np.where(ok, (1 - q) + q * g / dd, 1.0)
    p_know = np.where(ok, q * spam[worker, 1] / dd, 0.0)
    know = np.stack(
        [
            np.bincount(worker, weights=p_spam, minlength=n_workers),
            np.bincount(worker, weights=p_know, minlength=n_workers),
        ],
        axis=1,
    )
    sc = np.zeros((n_workers, K))
    np.add.at(sc, (worker, w_label), p_spam)
    return know, sc
