"""Readable numpy twins of the compiled crowd kernels (cpp/src/crowd.cpp).

Written for clarity, not speed: the test oracle and the ``numpy`` backend of the
aggregators (and the ``numpy`` baseline of benchmarks/bench_crowd.py). They work
on the flat answer arrays ``responses.task``, ``.worker``, ``.label`` with
scatter-adds; shapes and equations are those of kdcore/crowd.hpp:

- log_conf (T, W, K, K): log P(answer l | type t, worker w, true class k)
- log_prior (T, K): log of the joint prior over (type, class)
- post (n_tasks, T, K): P(type, class | answers of the task)
"""

from __future__ import annotations

import numpy as np


def em_e_step(task, worker, label, n_tasks, log_conf, log_prior):
    """post[j,t,k] ∝ exp(log_prior[t,k] + sum_{answers (w,l) of j} log_conf[t,w,k,l]); returns (post, loglik)."""
    T, W, K, _ = log_conf.shape
    # log-likelihood of each answer under each (t, k): (N, T, K)
    per_answer = log_conf[:, worker, :, label]  # advanced indices first: (N, T, K)
    s = np.broadcast_to(log_prior, (n_tasks, T, K)).copy()
    np.add.at(s, task, per_answer)
    flat = s.reshape(n_tasks, T * K)
    m = flat.max(axis=1, keepdims=True)
    impossible = ~np.isfinite(m[:, 0])
    m[impossible] = 0.0
    e = np.exp(flat - m)
    z = e.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        ll_task = m[:, 0] + np.log(z[:, 0])
    post = e / np.where(z > 0, z, 1.0)
    post[impossible] = 1.0 / (T * K)
    ll_task[impossible] = -np.inf
    return post.reshape(n_tasks, T, K), float(ll_task.sum())


def em_counts(task, worker, label, n_workers, post):
    """counts[t,w,k,l] = sum over answers (j,l) of w of post[j,t,k]; mass[t,k] = sum_j post[j,t,k]."""
    n_tasks, T, K = post.shape
    counts = np.zeros((T, n_workers, K, K))
    # counts[t, w, :, l] += post[j, t, :]  for each answer (j, w, l)
    contrib = post[task]  # (N, T, K)
    for t in range(T):
        np.add.at(counts[t], (worker, slice(None), label), contrib[:, t, :])  # type: ignore[arg-type]
    return counts, post.sum(axis=0)


def _prior(mass, smoothing):
    p = mass + smoothing
    z = p.sum()
    return p / z if z > 0 else np.full_like(p, 1.0 / p.size)


def em_m_step(task, worker, label, n_workers, post, smoothing):
    """conf = (counts + s) / row sums over l (uniform row when empty); prior = (mass + s) / total."""
    counts, mass = em_counts(task, worker, label, n_workers, post)
    K = post.shape[2]
    rows = counts + smoothing
    z = rows.sum(axis=-1, keepdims=True)
    conf = np.where(z > 0, rows / np.where(z > 0, z, 1.0), 1.0 / K)
    return conf, _prior(mass, smoothing)


def onecoin_m_step(task, worker, label, n_workers, post, smoothing):
    """skill[t,w] = (sum_k counts[t,w,k,k] + s) / (sum counts[t,w] + 2 s), 1/2 when empty."""
    counts, mass = em_counts(task, worker, label, n_workers, post)
    right = np.einsum("twkk->tw", counts) + smoothing
    total = counts.sum(axis=(2, 3)) + 2 * smoothing
    skill = np.where(total > 0, right / np.where(total > 0, total, 1.0), 0.5)
    return skill, _prior(mass, smoothing)


def vote_scores(task, worker, label, n_tasks, n_classes, weight=None):
    """scores[j,k] = sum of weight[w] over the answers (w, k) of task j (weight 1 if None);
    best[j] = first class within 1e-12 max(1, |top|) of the top score; n_tied[j] = how many are."""
    scores = np.zeros((n_tasks, n_classes))
    w = np.ones(len(task)) if weight is None else np.asarray(weight, dtype=np.float64)[worker]
    np.add.at(scores, (task, label), w)
    top = scores.max(axis=1, keepdims=True)
    tied = (top - scores) <= 1e-12 * np.maximum(1.0, np.abs(top))
    return scores, np.argmax(tied, axis=1).astype(np.int32), tied.sum(axis=1).astype(np.int32)
