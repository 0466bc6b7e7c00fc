"""Spectral initialisation of Dawid-Skene (Zhang, Chen, Zhou, Jordan, "Spectral
methods meet EM", NIPS 2014 / JMLR 2016, Algorithm 1): worker confusions and class
priors from the moments of three worker groups, the start of ``SpectralEM`` and of
``DawidSkene(init="spectral")``.

Stage 1 (moments of three worker groups). Workers are split at random into
three groups G_1, G_2, G_3 with about equal numbers of answers. For task j and
group g, Z_gj = (1/|G_g|) sum_{i in G_g} z_ij, where z_ij is worker i's answer
as a one-hot K-vector (0 when i skipped j). Answers of different groups are
independent given y_j, so with mu_gh = E[Z_gj | y_j = h] and w_h = P(y = h),
    M_ab = E[Z_a (x) Z_b] = sum_h w_h mu_ah (x) mu_bh.
For each group c (with a, b the other two), the symmetrised views
Z'_a = M_cb M_ab^-1 Z_a and Z'_b = M_ca M_ba^-1 Z_b have E[Z' | y = h] = mu_ch, so
    M2 = E[Z'_a (x) Z'_b] = sum_h w_h mu_ch^(x2),  M3 = E[Z'_a (x) Z'_b (x) Z_c] = sum_h w_h mu_ch^(x3).
Whitening Q = U S^-1/2 (top-K eigenpairs of the symmetrised M2) makes
T = M3(Q, Q, Q) = sum_h w_h^-1/2 v_h^(x3) with orthonormal v_h; the robust
tensor power method (Anandkumar et al., JMLR 2014: ``n_starts`` random starts,
``n_power_iter`` iterations, the start with the largest T(v, v, v) refined and
deflated) gives (lambda_h, v_h), hence w_h = lambda_h^-2 and
mu_ch = lambda_h U S^1/2 v_h. The components come out in arbitrary order: each
group's columns are matched to classes by the assignment (Hungarian) that
maximises the normalised diagonal, i.e. assuming the average worker of a group
answers class h most often when the truth is h.

Stage 2 (each worker from another group). For worker i in group g and c = g + 1
(mod 3), M_ic = (1/n) sum_j z_ij (x) Z_cj = C_i diag(w) A_c^T with A_c = [mu_ch]_h,
so C_i = M_ic (A_c^T)^-1 diag(w)^-1; column h is alpha_i P(answer | y = h) (alpha_i
= the worker's answer rate). Each row of the returned confusion (true class h)
is that column clipped at ``floor`` and renormalised: always a valid
row-stochastic matrix.

Fallback (documented, with a RuntimeWarning naming the reason, and
``info["fallback"]``): fewer than 3 workers, fewer tasks than classes, a group
with no answers, an ill-conditioned M_ab (condition number > 1e12), a
non-positive whitening eigenvalue or tensor eigenvalue, or any non-finite
value. The fallback is the majority-vote initialisation: soft majority-vote
posteriors, one M-step (counts + ``floor`` smoothing, normalised), their mean as priors.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._check import check_float, check_int
from ._responses import Responses

__all__ = ["spectral_init"]

_MAX_COND = 1e12


class _Degenerate(Exception):
    pass


def _one_hot_sums(task, label, weight, n_tasks, K):
    out = np.bincount(task.astype(np.int64) * K + label, weights=weight, minlength=n_tasks * K)
    return out.reshape(n_tasks, K)


def _split_groups(r: Responses, rng: np.random.Generator) -> np.ndarray:
    """Group 0/1/2 of each worker: random order, then each worker (most answers
    first) goes to the group with the fewest answers so far."""
    counts = np.diff(r.worker_indptr)
    order = rng.permutation(r.n_workers)
    order = order[np.argsort(-counts[order], kind="stable")]
    group = np.empty(r.n_workers, dtype=np.int64)
    load = np.zeros(3)
    sizes = np.zeros(3)
    for i in order:
        g = int(np.lexsort((sizes, load))[0])  # fewest answers, then fewest workers
        group[i] = g
        load[g] += counts[i]
        sizes[g] += 1
    return group


def _robust_tensor_power(T: np.ndarray, rng, n_starts: int, n_iter: int):
    K = T.shape[0]
    T = T.copy()
    lams, vecs = np.zeros(K), np.zeros((K, K))

    def step(v):
        u = np.einsum("abc,b,c->a", T, v, v)
        n = np.linalg.norm(u)
        return u / n if n > 0 else v

    for h in range(K):
        best_v, best_val = None, -np.inf
        for _ in range(n_starts):
            v = rng.normal(size=K)
            v /= np.linalg.norm(v)
            for _ in range(n_iter):
                v = step(v)
            val = np.einsum("abc,a,b,c->", T, v, v, v)
            if val > best_val:
                best_v, best_val = v, val
        v = best_v
        for _ in range(n_iter):
            v = step(v)
        lam = float(np.einsum("abc,a,b,c->", T, v, v, v))
        if not np.isfinite(lam) or lam <= 1e-12:
            raise _Degenerate(f"tensor eigenvalue {h} is {lam:.3g} (not positive)")
        lams[h], vecs[:, h] = lam, v
        T -= lam * np.einsum("a,b,c->abc", v, v, v)
    return lams, vecs


def _group_confusion(Z, c, K, rng, n_starts, n_iter):
    """(A_c with columns mu_ch in component order, w) from the views Z (3, n, K)."""
    a, b = [g for g in range(3) if g != c]
    n = Z.shape[1]
    M = lambda x, y: Z[x].T @ Z[y] / n  # noqa: E731
    Mab, Mba, Mcb, Mca = M(a, b), M(b, a), M(c, b), M(c, a)
    for name, m in (("M_ab", Mab), ("M_ba", Mba)):
        cond = np.linalg.cond(m)
        if not np.isfinite(cond) or cond > _MAX_COND:
            raise _Degenerate(f"{name} of groups {a},{b} is singular (condition number {cond:.3g})")
    Za = Z[a] @ np.linalg.solve(Mab.T, Mcb.T)  # rows: (M_cb M_ab^-1 Z_a)^T
    Zb = Z[b] @ np.linalg.solve(Mba.T, Mca.T)
    M2 = Za.T @ Zb / n
    M2 = (M2 + M2.T) / 2
    s, U = np.linalg.eigh(M2)
    idx = np.argsort(s)[::-1][:K]
    s, U = s[idx], U[:, idx]
    if not np.all(np.isfinite(s)) or s[-1] <= 1e-12 * max(s[0], 1e-300):
        raise _Degenerate(f"second moment M2 of group {c} is not positive definite (eigenvalues {s})")
    Q = U / np.sqrt(s)
    A, B, C = Za @ Q, Zb @ Q, Z[c] @ Q
    T = np.einsum("ja,jb,jc->abc", A, B, C) / n
    T = (
        T
        + T.transpose(0, 2, 1)
        + T.transpose(1, 0, 2)
        + T.transpose(1, 2, 0)
        + T.transpose(2, 0, 1)
        + T.transpose(2, 1, 0)
    ) / 6
    lams, V = _robust_tensor_power(T, rng, n_starts, n_iter)
    mu = (U * np.sqrt(s)) @ V * lams  # columns mu_ch
    w = lams**-2.0
    return mu, w


def _align(mu: np.ndarray) -> np.ndarray:
    """Permutation perm with perm[h] = the component that is class h (Hungarian on the normalised columns)."""
    from scipy.optimize import linear_sum_assignment

    P = np.clip(mu, 0, None)
    P = P / np.maximum(P.sum(axis=0, keepdims=True), 1e-300)
    rows, cols = linear_sum_assignment(-P)  # row = answer class, col = component
    perm = np.empty(mu.shape[1], dtype=np.int64)
    perm[rows] = cols
    return perm


def _mv_init(r: Responses, floor: float):
    K = r.n_classes
    votes = _one_hot_sums(r.task, r.label, None, r.n_tasks, K)
    post = votes / votes.sum(axis=1, keepdims=True)
    conf = np.zeros((r.n_workers, K, K))
    np.add.at(conf, (r.worker, slice(None), r.label), post[r.task])  # type: ignore[arg-type]
    conf = conf + floor
    conf /= conf.sum(axis=2, keepdims=True)
    priors = post.mean(axis=0)
    return conf, priors / priors.sum()


def spectral_init(
    responses,
    random_state=None,
    *,
    floor: float = 1e-3,
    n_starts: int = 10,
    n_power_iter: int = 50,
    return_info: bool = False,
):
    """Dawid-Skene confusions and class priors from the Zhang-Chen-Zhou-Jordan spectral method.

    Parameters
    ----------
    responses : Responses or DataFrame (task, worker, label)
    random_state : int, Generator or None
        Seeds the worker split and the tensor power method's starts.
    floor : float, default 1e-3
        Each recovered probability is clipped at ``floor`` before the rows are renormalised.
    n_starts, n_power_iter : int
        Robust tensor power method: random starts per component, iterations per start.
    return_info : bool
        Also return a dict (``fallback``: None or the reason, ``groups``: worker group codes).

    Returns
    -------
    confusions : (n_workers, K, K) array, confusions[i, h, a] = P(worker i answers a | truth h), rows sum to 1
    priors : (K,) array, class probabilities
    (info : dict, when ``return_info``)

    Examples
    --------
    >>> conf, priors = spectral_init(responses, random_state=0)   # doctest: +SKIP
    """
    r = Responses.coerce(responses)
    floor = check_float(floor, "floor", minimum=0.0, maximum=0.5, strict_min=True)
    n_starts = check_int(n_starts, "n_starts", minimum=1)
    n_power_iter = check_int(n_power_iter, "n_power_iter", minimum=1)
    rng = np.random.default_rng(random_state)
    K, W, n = r.n_classes, r.n_workers, r.n_tasks
    info: dict = {"fallback": None, "groups": None}
    try:
        if W < 3:
            raise _Degenerate(f"{W} workers: three groups need at least 3")
        if n < K:
            raise _Degenerate(f"{n} tasks for {K} classes")
        group = _split_groups(r, rng)
        info["groups"] = group
        sizes = np.bincount(group, minlength=3).astype(np.float64)
        wt = 1.0 / sizes[group[r.worker]]
        Z = np.stack(
            [
                _one_hot_sums(
                    r.task[group[r.worker] == g], r.label[group[r.worker] == g], wt[group[r.worker] == g], n, K
                )
                for g in range(3)
            ]
        )
        if np.any(Z.reshape(3, -1).sum(axis=1) == 0):
            raise _Degenerate("a worker group gave no answers")
        mus, ws = [], []
        for c in range(3):
            mu, w = _group_confusion(Z, c, K, rng, n_starts, n_power_iter)
            perm = _align(mu)
            mus.append(mu[:, perm])
            ws.append(w[perm])
        w = np.mean(ws, axis=0)
        if not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise _Degenerate(f"class weights not positive: {w}")
        priors = w / w.sum()
        # stage 2: M_ic = (1/n) sum_j z_ij (x) Z_cj with c = g(i) + 1 mod 3
        cgrp = (group + 1) % 3
        Mi = np.zeros((W, K, K))
        np.add.at(Mi, (r.worker, r.label), Z[cgrp[r.worker], r.task])
        Mi /= n
        conf = np.empty((W, K, K))
        for c in range(3):
            sel = cgrp == c
            if not sel.any():
                continue
            At = mus[c].T  # rows: mu_ch
            if np.linalg.cond(At) > _MAX_COND:
                raise _Degenerate(f"group {c}'s confusion is singular")
            # C_i = M_ic (A_c^T)^-1 diag(w)^-1  (column h: alpha_i P(answer | h))
            Ci = np.linalg.solve(At.T, Mi[sel].transpose(0, 2, 1)).transpose(0, 2, 1) / w
            conf[sel] = Ci.transpose(0, 2, 1)  # [i, h, a]
        if not np.all(np.isfinite(conf)):
            raise _Degenerate("non-finite worker confusion")
        conf = np.clip(conf, floor, None)
        conf /= conf.sum(axis=2, keepdims=True)
    except (_Degenerate, np.linalg.LinAlgError) as exc:
        info["fallback"] = str(exc)
        warnings.warn(
            f"spectral_init fell back to the majority-vote initialisation: {exc}", RuntimeWarning, stacklevel=2
        )
        conf, priors = _mv_init(r, floor)
    if return_info:
        return conf, priors, info
    return conf, priors
