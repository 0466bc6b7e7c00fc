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
import pandas as pd
import scipy.sparse as sp
import scipy.stats as sps
from scipy.sparse.linalg import LinearOperator, eigsh

from .._check import check_float, check_int
from ..backends import _core
from ._responses import Responses
from ._skill_vote import SkillVote

__all__ = ["mmsr_skills", "MMSR"]


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


def _first_appearance(r: Responses) -> Responses:
    """``r`` with its workers renumbered in order of first appearance in the answers."""
    order = pd.unique(r.worker)  # worker codes by first appearance
    code = np.empty(r.n_workers, dtype=np.int32)
    code[order] = np.arange(r.n_workers, dtype=np.int32)
    return Responses._from_codes(
        r.task, np.ascontiguousarray(code[r.worker]), r.label, r.task_ids, r.worker_ids[order], np.asarray(r.classes_)
    )


class MMSR(SkillVote):
    """Matrix mean-subsequence-reduced skills (Ma & Olshevsky, NeurIPS 2020), then the one-coin vote.

    The skills are the log-odds of each worker's accuracy, s = ln(p (K - 1) / (1 - p)),
    from a robust rank-one fit of the workers' agreement covariances (sparse and
    compiled: O(answers + worker pairs sharing a task) memory). They are the
    Nitzan-Paroush weights of the one-coin model (docs/maths.md B.4), so the labels are
    the vote weighted by the skills and ``probas_`` is that model's posterior under a
    uniform class prior, the softmax of the scores. Skills may be negative (a worker
    worse than chance counts against what it says).

    Parameters
    ----------
    n_iter : int, default 10000
        Rounds of the rank-one fit at most.
    tol : float, default 1e-10
        Stop when the change of the fit falls below it.
    tie_break : {"random", "first"}
    default_skill : float or None
        The skill ``predict`` gives a worker absent from the fit; None refuses such workers.
    random_state : int, RandomState or None
        Seed of the random start, drawn for the workers in order of first appearance in
        the answers (crowd-kit's order: the same seed gives crowd-kit's skills).
    backend : {"auto", "cpp"}
    n_threads : int, 0 = default

    Attributes
    ----------
    skills_ : Series (worker) named "skill", log-odds of the accuracy
    loss_history_ : list of float, the change of the fit each round
    n_iter_ : int, rounds run
    converged_ : bool, whether the last change fell below ``tol``
    labels_, probas_, classes_, scores_ (ndarray n_tasks x K of skill-weighted votes)

    Example
    -------
    >>> from kdcore.crowd import MMSR, simulate
    >>> r, truth = simulate.one_coin(500, 20, 2, answers_per_task=5, random_state=0)
    >>> MMSR(random_state=0).fit(r).skills_.shape
    (20,)
    """

    _backends = ("cpp",)

    def __init__(
        self,
        n_iter: int = 10000,
        tol: float = 1e-10,
        tie_break: str = "random",
        default_skill: float | None = None,
        random_state=None,
        backend: str = "auto",
        n_threads: int = 0,
    ):
        self.n_iter = n_iter
        self.tol = tol
        self.tie_break = tie_break
        self.default_skill = default_skill
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads

    def _proba(self, scores: np.ndarray) -> np.ndarray:
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def fit(self, data: Responses | pd.DataFrame, *, duplicates: str = "error") -> MMSR:
        """Estimate the skills, then vote; returns self.

        Parameters
        ----------
        data : Responses or DataFrame (task, worker, label)
            One answer per (task, worker) pair: ``duplicates="keep_all"`` is refused.
        duplicates : {"error", "keep_first", "keep_last"}

        Raises
        ------
        ValueError
            Repeated (task, worker) answers, fewer than two classes, or skills that are not
            finite (the trimmed means divide 0 by 0 where workers share too few tasks).
        """
        n_iter = check_int(self.n_iter, "n_iter", minimum=0)
        tol = check_float(self.tol, "tol", minimum=0.0)
        self._check_common()
        if duplicates == "keep_all":
            raise ValueError("MMSR uses one answer per (task, worker); pass duplicates='keep_first' or 'keep_last'")
        r = self._coerce(data, duplicates)
        self._backend()
        n_threads = self._threads()
        if r.n_classes < 2:
            raise ValueError(f"MMSR needs at least two classes, got {r.n_classes}: {list(r.classes_)}")
        _, n_dup, _ = _core.find_duplicates(r.task, r.worker, r.n_tasks, r.n_workers, 0)
        if n_dup:
            raise ValueError(
                f"MMSR uses one answer per (task, worker); the responses repeat {n_dup} "
                "(build them with duplicates='keep_first' or 'keep_last')"
            )
        ordered = _first_appearance(r)
        skills, history = mmsr_skills(ordered, r.n_tasks, r.n_classes, n_iter, tol, self.random_state, n_threads)
        skill = np.empty(r.n_workers)
        skill[pd.Index(r.worker_ids).get_indexer(ordered.worker_ids)] = skills
        if not np.all(np.isfinite(skill)):
            raise ValueError(
                f"MMSR: the rank-one fit gave non-finite skills for {int((~np.isfinite(skill)).sum())} of "
                f"{r.n_workers} workers (its trimmed means divide 0 by 0 when workers share too few tasks, as "
                "in crowd-kit); use Wawa or OneCoinDawidSkene on these answers"
            )
        self.skills_ = self._skill_series(r, skill)
        self.loss_history_ = history
        self.n_iter_ = len(history)
        self.converged_ = bool(history) and history[-1] < tol
        self._store_vote(r, skill, self.random_state)
        return self

    def fit_predict(self, data: Responses | pd.DataFrame, *, duplicates: str = "error") -> pd.Series:
        """Fit and return ``labels_``."""
        return self.fit(data, duplicates=duplicates).labels_

    def fit_predict_proba(self, data: Responses | pd.DataFrame, *, duplicates: str = "error") -> pd.DataFrame:
        """Fit and return ``probas_``."""
        return self.fit(data, duplicates=duplicates).probas_
