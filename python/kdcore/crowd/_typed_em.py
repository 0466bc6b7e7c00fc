"""The EM fits of typed Dawid-Skene models that task typing and type-aware aggregation share.

- :func:`em_fit`: EM of the typed Dawid-Skene model (a type and a class per task, a
  confusion matrix or a skill per worker and type) from initial posteriors, optionally
  with each task's type held (one Dawid-Skene per type); :func:`vote_post` is its
  smoothed vote start and :func:`align_types` pairs the types across classes.
- :func:`degraded_em`: the two-type mixture whose hard type is a degraded copy of the
  easy one, and :func:`mixture_heldout_loglik`, its score on hidden answers.

Every E-step runs in the typed core of :mod:`kdcore.crowd._em` (compiled or numpy).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import permutations

import numpy as np
from scipy.sparse import csr_matrix

from ..backends import _core
from . import _em
from ._responses import Responses

__all__ = [
    "vote_post",
    "em_fit",
    "align_types",
    "answer_incidence",
    "answer_counts",
    "degraded_em",
    "mixture_heldout_loglik",
]


def vote_post(r: Responses) -> np.ndarray:
    """Vote shares of each task (n_tasks, K), every class given 1e-3 of a vote (no zero start)."""
    counts = np.zeros((r.n_tasks, r.n_classes))
    np.add.at(counts, (r.task, r.label), 1.0)
    counts += 1e-3
    return counts / counts.sum(1, keepdims=True)


def em_fit(
    r: Responses,
    post: np.ndarray,
    *,
    n_iter: int,
    tol: float,
    smoothing: float,
    backend: str,
    n_threads: int,
    onecoin: bool = False,
    fixed_types: np.ndarray | None = None,
):
    """EM of the typed Dawid-Skene model from an initial post (n_tasks, T, K).

    With ``fixed_types`` the type of each task is held (post masked to it): that is
    one independent Dawid-Skene per type. Returns (post, log_conf, log_prior, history)
    where history holds the penalised log-likelihood (loglik + smoothing * sum of log
    parameters, the MAP objective that EM never decreases)."""
    T, K = post.shape[1], post.shape[2]
    if backend == "cpp" and not onecoin and fixed_types is None:  # the same loop, compiled (_core.em_run)
        post, conf, prior, history, _, _ = _em.run(r, post, smoothing, n_iter, tol, None, n_threads, penalised=True)
        return post, _em.log_clip(conf), _em.log_clip(prior), history
    mask = None
    if fixed_types is not None:
        mask = np.zeros((r.n_tasks, T, 1))
        mask[np.arange(r.n_tasks), fixed_types] = 1.0
    history = []
    log_conf = log_prior = None
    for _ in range(n_iter):
        if onecoin:
            skill, prior = _em.onecoin_m_step(r, post, smoothing=smoothing, backend=backend, n_threads=n_threads)
            log_conf = _em.onecoin_log_conf(skill, K)
            penalty = smoothing * (
                np.log(np.clip(skill, 1e-300, 1)).sum() + np.log(np.clip(1 - skill, 1e-300, 1)).sum()
            )
        else:
            conf, prior = _em.m_step(r, post, smoothing=smoothing, backend=backend, n_threads=n_threads)
            log_conf = _em.log_clip(conf)
            penalty = smoothing * log_conf.sum()
        log_prior = _em.log_clip(prior)
        if mask is not None:
            # per-type DS: the type of each task is known, so only its own prior row counts
            log_prior_t = log_prior - np.log(np.clip(prior.sum(1, keepdims=True), 1e-300, None))
            post, ll = _em.e_step(r, log_conf, log_prior_t, backend=backend, n_threads=n_threads)
            post = post * mask
            post /= np.clip(post.sum((1, 2), keepdims=True), 1e-300, None)
        else:
            post, ll = _em.e_step(r, log_conf, log_prior, backend=backend, n_threads=n_threads)
        history.append(ll + penalty + smoothing * log_prior.sum())
        if len(history) > 1 and abs(history[-1] - history[-2]) <= tol * max(1.0, abs(history[-1])):
            break
    return post, log_conf, log_prior, history


def align_types(r: Responses, full: np.ndarray, log_conf: np.ndarray, log_prior: np.ndarray):
    """Pair the types across classes.

    With a skill (or confusion row) per (type, worker, class), the likelihood does not
    change when the type labels are permuted *within one class*: (type 0, class +1) and
    (type 1, class +1) can swap while class -1 stays. EM from a random start can land on
    such a crossed labelling, where "type 0" means different worker profiles for the two
    classes. Fix it: for each class c > 0, permute its types so that the worker skill
    profiles s[t, :, c] = C[t, w, c, c] are closest (answer-count weighted squared
    distance) to those of class 0. Likelihood unchanged."""
    T, K = full.shape[1], full.shape[2]
    if T < 2:
        return full, log_conf, log_prior
    skill = np.exp(np.einsum("twkk->twk", log_conf))
    wts = np.bincount(r.worker, minlength=r.n_workers).astype(np.float64)
    perms = list(permutations(range(T))) if T <= 6 else [tuple(range(T))]
    full, log_conf, log_prior = full.copy(), log_conf.copy(), log_prior.copy()
    for c in range(1, K):
        cost = [
            sum(float((wts * (skill[t, :, 0] - skill[pt, :, c]) ** 2).sum()) for t, pt in enumerate(P)) for P in perms
        ]
        P = np.asarray(perms[int(np.argmin(cost))])
        full[:, :, c] = full[:, P, c]
        log_conf[:, :, c, :] = log_conf[P, :, c, :]
        log_prior[:, c] = log_prior[P, c]
    return full, log_conf, log_prior


def answer_incidence(r: Responses) -> csr_matrix:
    """Sparse (W K) x n_tasks matrix A with A[w K + l, j] = 1 when worker w answered l on task j."""
    K = r.n_classes
    rows = r.worker.astype(np.int64) * K + r.label
    return csr_matrix((np.ones(r.n_responses), (rows, r.task.astype(np.int64))), shape=(r.n_workers * K, r.n_tasks))


def answer_counts(r: Responses, post: np.ndarray, incidence=None) -> np.ndarray:
    """Expected answer counts c[t, w, k, l] = sum over answers (j, w, l) of post[j, t, k]
    (one sparse product A @ post, A from :func:`answer_incidence`)."""
    n, T, K = post.shape
    A = answer_incidence(r) if incidence is None else incidence
    c = np.asarray(A @ post.reshape(n, T * K)).reshape(r.n_workers, K, T, K)  # [w, l, t, k]
    return np.ascontiguousarray(c.transpose(2, 0, 3, 1))  # [t, w, k, l]


def degraded_em(
    r: Responses,
    conf0: np.ndarray,
    prior0: np.ndarray,
    *,
    one_coin: bool = False,
    smoothing: float = 0.01,
    n_iter: int = 200,
    tol: float = 1e-7,
    backend: str = "cpp",
    n_threads: int = 1,
    gold: tuple[np.ndarray, np.ndarray] | None = None,
):
    """EM of the two-type Dawid-Skene mixture whose second type is a *degraded* copy of the first.

    Model: task j has a type t in {0 (easy), 1 (hard)} and a class k, joint prior pi[t, k].
    On easy tasks worker w answers by its confusion C0[w]; on hard tasks it answers by
    C0[w] with probability lambda_w and uniformly at random otherwise:
    C1[w] = lambda_w C0[w] + (1 - lambda_w) / K. (docs/maths.md B.1 with r_{i2} pulled toward
    chance by a worker-specific share: the easy/hard model; it cannot express specialists.)
    One parameter per worker more than Dawid-Skene (the free mixture has W K (K-1) more),
    and the hard type's confusions inherit the easy type's orientation, so no class can swap
    inside one type (the free mixture did exactly that on few answers per task).

    EM with a latent "answered from C0" indicator on hard tasks: its responsibility for an
    answer (w, l) of a task in (hard, k) is rho = lambda_w C0[w, k, l] / C1[w, k, l];
    M-step C0[w, k, :] ∝ c0[w, k, :] + rho c1[w, k, :] + s (one-coin: the skill is the
    share of these counts on the diagonal), lambda_w = (sum rho c1[w] + s) / (sum c1[w] + 2 s),
    pi ∝ sum_j post[j] + s. E-step in the typed core (log space with the max shift); compiled,
    each round's E-step and the counts of its posterior are one fused sweep over the answers
    (em_partition_stats). The likelihood never decreases (up to the smoothing).

    ``gold`` (task codes, class codes): tasks whose class is known. Every E-step clamps them:
    P(t, k | answers, y = k*) is P(t, k* | answers) renormalised over the types, 0 for k != k*;
    their expected counts and log-likelihood terms are those of the clamped posterior.

    Starts from a fitted Dawid-Skene (``conf0`` (W, K, K), ``prior0`` (K,)) with lambda = 1/2
    and equal type priors. Returns (post (n_tasks, 2, K), log_conf (2, W, K, K),
    log_prior (2, K), lam (W,), history of the log-likelihood)."""
    K, W = r.n_classes, r.n_workers
    s = float(smoothing)
    C0 = np.clip(np.asarray(conf0, dtype=np.float64), 0.0, None)
    C0 = C0 / np.clip(C0.sum(-1, keepdims=True), 1e-300, None)
    lam = np.full(W, 0.5)
    prior = np.stack([np.asarray(prior0, dtype=np.float64) * 0.5] * 2)
    prior = np.clip(prior, 1e-12, None)
    prior /= prior.sum()
    history: list[float] = []
    post = log_conf = None
    if backend == "cpp":
        # the compiled fused pass (kdcore/crowd.hpp em_partition_stats): each round's E-step and the
        # expected counts of its posterior in one sweep over the answers (codes w K + l in task order,
        # built once), into one posterior buffer; no incidence matrix in memory
        code = np.ascontiguousarray(r.task_worker.astype(np.int64) * K + r.task_label, dtype=np.int32)
        buf = np.zeros((r.n_tasks, 2, K))
        nt = int(n_threads)

        def e_step_counts(log_conf: np.ndarray, log_prior: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
            c, _, ll = _core.em_partition_stats(r.task_indptr, code, W, log_conf, log_prior, buf, True, nt)
            assert c is not None  # count=True returns the counts
            return buf, float(ll), c

    else:
        incidence = answer_incidence(r)

        def e_step_counts(log_conf: np.ndarray, log_prior: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
            post, ll = _em.e_step(r, log_conf, log_prior, backend=backend, n_threads=n_threads)
            return post, ll, answer_counts(r, post, incidence)

    clamp_gold: Callable[[np.ndarray, float, np.ndarray], tuple[np.ndarray, float, np.ndarray]] | None = None
    if gold is not None and len(gold[0]):
        gold_t = np.asarray(gold[0], dtype=np.int64)
        gold_k = np.asarray(gold[1], dtype=np.int64)
        # the gold tasks' answers (worker, label) and the row of their task among the gold tasks
        starts, ends = r.task_indptr[gold_t], r.task_indptr[gold_t + 1]
        lens = (ends - starts).astype(np.int64)
        at = np.repeat(starts - np.concatenate(([0], np.cumsum(lens)[:-1])), lens) + np.arange(lens.sum())
        g_row = np.repeat(np.arange(len(gold_t)), lens)
        g_w, g_l = r.task_worker[at].astype(np.int64), r.task_label[at].astype(np.int64)

        def _clamp(post: np.ndarray, ll: float, c: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
            before = post[gold_t].copy()  # (G, 2, K)
            keep = before[np.arange(len(gold_t)), :, gold_k]  # (G, 2): P(t, k* | answers)
            z = keep.sum(1)
            after = np.zeros_like(before)
            after[np.arange(len(gold_t)), :, gold_k] = np.where(
                z[:, None] > 0, keep / np.where(z > 0, z, 1.0)[:, None], 0.5
            )
            post[gold_t] = after
            diff = (after - before)[g_row]  # (A_gold, 2, K)
            c = c.copy()
            for t in range(2):
                np.add.at(c[t].transpose(0, 2, 1), (g_w, g_l), diff[:, t, :])  # c[t, w, :, l]
            return post, ll + float(np.log(np.clip(z, 1e-300, None)).sum()), c

        clamp_gold = _clamp

    for _ in range(int(n_iter)):
        C1 = lam[:, None, None] * C0 + (1.0 - lam[:, None, None]) / K
        log_conf = _em.log_clip(np.stack([C0, C1]))
        log_prior = _em.log_clip(prior)
        post, ll, c = e_step_counts(log_conf, log_prior)
        if clamp_gold is not None:
            post, ll, c = clamp_gold(post, ll, c)
        history.append(ll)
        if len(history) > 1 and abs(history[-1] - history[-2]) <= tol * abs(history[-1]):
            break
        rho = lam[:, None, None] * C0 / np.clip(C1, 1e-300, None)
        real1 = c[1] * rho
        n0 = c[0] + real1
        if one_coin:
            diag = np.einsum("wkk->w", n0)
            skill = (diag + s) / (n0.sum((1, 2)) + 2.0 * s) if s > 0 else diag / np.clip(n0.sum((1, 2)), 1e-300, None)
            skill = np.where(n0.sum((1, 2)) > 0, skill, 0.5)
            C0 = np.empty((W, K, K))
            C0[...] = ((1.0 - skill) / max(K - 1, 1))[:, None, None]
            C0[:, np.arange(K), np.arange(K)] = skill[:, None]
        else:
            n0 = n0 + s
            tot = n0.sum(-1, keepdims=True)
            C0 = np.where(tot > 0, n0 / np.clip(tot, 1e-300, None), 1.0 / K)
        tot1 = c[1].sum((1, 2))
        lam = np.clip((real1.sum((1, 2)) + s) / np.clip(tot1 + 2.0 * s, 1e-300, None), 0.0, 1.0)
        lam = np.where(tot1 + 2.0 * s > 0, lam, 0.5)
        prior = post.sum(0) + s
        prior /= prior.sum()
    return post, log_conf, _em.log_clip(prior), lam, history


def mixture_heldout_loglik(post: np.ndarray, log_conf: np.ndarray, task, worker, label) -> float:
    """sum over hidden answers (j, w, l) of log sum_{t,k} post[j, t, k] C[t, w, k, l]."""
    s = log_conf[:, worker, :, label]  # (H, T, K): advanced indices first
    s = (s + np.log(np.clip(post[task], 1e-300, None))).reshape(len(task), -1)
    m = s.max(1, keepdims=True)
    return float((m[:, 0] + np.log(np.exp(s - m).sum(1))).sum())
