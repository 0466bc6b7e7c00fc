"""KOS message passing (Karger, Oh & Shah) and the ratio of eigenvectors (Dalvi et al.); binary.

KOS (Karger, Oh, Shah, "Iterative learning for reliable crowdsourcing
systems", NIPS 2011, Algorithm 1): answers A_ij = +-1 on the task-worker graph,
worker messages y_{i->j} initialised i.i.d. N(1, 1) (seeded, as crowd-kit does),
then ``n_iter`` rounds of
    x_{j->i} = sum_{i' != i} A_i'j y_{i'->j},    y_{i->j} = sum_{j' != j} A_ij' x_{j'->i},
and y_j = sign(sum_i A_ij y_{i->j}). The compiled kernel streams over the
task-major view only (OpenMP; worker sums in per-thread W-vectors); both updates are linear, so kdcore
divides the messages by their root mean square after each half-step: the signs
(the answer) are those of the unnormalised algorithm, and nothing overflows
(crowd-kit stops early when its messages pass 1e300).

RatioOfEigenvectors (Dalvi, Dasgupta, Kumar, Rastogi, "Aggregating
crowdsourced binary ratings", WWW 2013, "EigenRatio"): with L the sparse
tasks x workers matrix of +-1 answers and G its 0/1 pattern, the one-coin model
gives E[L_ij] = G_ij q_i y_j, so off the diagonal E[L^T L] = diag(q) (G^T G) diag(q)
(the labels cancel). kdcore's variant: the top eigenvectors u of the hollow
(zero-diagonal) W x W matrices L^T L and G^T G (scipy.sparse.linalg.eigsh, or
numpy's eigh for W <= 500), q_i proportional to u_L,i / u_G,i (0 where u_G,i is
~0, e.g. a worker outside the largest connected component), the sign fixed by
sum_i q_i > 0 (most workers better than chance), then the q-weighted vote
y_j = sign(sum_i q_i A_ij).

Posteriors of both (their scores are not calibrated probabilities): a
documented soft form, P(y_j = +1) = sigmoid(score_j / rms(score)). A zero score
(e.g. a task whose only answer comes from a worker with nobody to compare to)
is decided by the plain majority vote, and an exact tie of that by the first class.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from .._check import check_int
from ..backends import _core, blas_threads
from . import _reference_worker_models as ref
from ._base import BaseAggregator
from ._binary import sign_labels, signs
from ._responses import Responses

__all__ = ["KOS", "RatioOfEigenvectors"]


def _soft_and_hard(r: Responses, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = sign_labels(r, score)
    scale = np.sqrt(np.mean(score**2))
    p1 = expit(score / scale) if scale > 0 else np.full(r.n_tasks, 0.5)
    return np.column_stack([1.0 - p1, p1]), labels


class KOS(BaseAggregator):
    """Karger-Oh-Shah iterative message passing (binary).

    Parameters
    ----------
    n_iter : int, default 100 (crowd-kit's default)
    random_state : int, Generator or None, default None
        Seed of the N(1, 1) initial worker messages (drawn in task-major answer order);
        None draws fresh ones (pass an int for a reproducible fit).
    backend : {"auto", "cpp", "numpy"}
    n_threads : int, default 0

    Fitted: ``scores_`` (sum_i A_ij y_{i->j}, by task), ``skills_`` (mean final
    worker message per worker, normalised scale), ``labels_``, ``probas_``.
    """

    _binary_only = True

    def __init__(
        self,
        n_iter: int = 100,
        random_state: int | np.random.Generator | None = None,
        backend: str = "auto",
        n_threads: int = 0,
    ):
        self.n_iter = n_iter
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads

    def fit(self, data: Responses | pd.DataFrame) -> KOS:
        n_iter = check_int(self.n_iter, "n_iter", minimum=0)
        nt = self._threads()
        backend = self._backend()
        r = self._prepare(data)
        rng = np.random.default_rng(self.random_state)
        y0 = rng.normal(1.0, 1.0, size=r.n_responses)
        args = (r.task_indptr, r.task_worker, r.task_label, r.n_workers, y0, n_iter)
        score, y = _core.kos_messages(*args, nt) if backend == "cpp" else ref.kos_messages(*args)
        proba, labels = _soft_and_hard(r, score)
        self._set_posteriors(r, proba, labels)
        counts = np.maximum(np.diff(r.worker_indptr), 1)
        skills = np.bincount(r.task_worker, weights=y, minlength=r.n_workers) / counts
        self.skills_ = pd.Series(skills, index=pd.Index(r.worker_ids, name="worker"), name="skill")
        self.scores_ = pd.Series(score, index=pd.Index(r.task_ids, name="task"), name="score")
        self.n_iter_ = n_iter
        return self


class RatioOfEigenvectors(BaseAggregator):
    """Dalvi et al.'s EigenRatio (binary): worker weights from the ratio of top
    eigenvectors of the hollow L^T L and G^T G, then a weighted vote.

    Parameters
    ----------
    random_state : int, Generator or None, default None
        Seed of the Lanczos start vector (used above 500 workers; below, numpy's dense
        eigh needs none).
    backend : {"auto", "numpy"}
        scipy/numpy only (there is no compiled kernel).
    n_threads : int, default 0
        Threads of the BLAS behind the eigensolvers (0: leave BLAS as it is).

    Fitted: ``skills_`` (q_i up to a positive scale: the ratio normalised to
    max |q| = 1), ``scores_``, ``labels_``, ``probas_``.
    """

    _binary_only = True
    _backends = ("numpy",)

    def __init__(
        self, random_state: int | np.random.Generator | None = None, backend: str = "auto", n_threads: int = 0
    ):
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads

    @staticmethod
    def _top_eigvec(M, rng: np.random.Generator) -> np.ndarray:
        from scipy import sparse
        from scipy.sparse.linalg import eigsh

        n = M.shape[0]
        if n <= 500:
            dense = M.toarray() if sparse.issparse(M) else np.asarray(M)
            _, vecs = np.linalg.eigh(dense)
            return vecs[:, -1]
        v0 = rng.uniform(0.5, 1.5, size=n)
        _, vecs = eigsh(M.astype(np.float64), k=1, which="LA", v0=v0, tol=1e-10, maxiter=10 * n)
        return vecs[:, 0]

    def fit(self, data: Responses | pd.DataFrame) -> RatioOfEigenvectors:
        from scipy import sparse

        nt = self._threads()
        self._backend()
        r = self._prepare(data)
        rng = np.random.default_rng(self.random_state)
        x = signs(r.label)
        L = sparse.csr_matrix((x, (r.task, r.worker)), shape=(r.n_tasks, r.n_workers))
        G = sparse.csr_matrix((np.ones_like(x), (r.task, r.worker)), shape=(r.n_tasks, r.n_workers))
        LtL = (L.T @ L).tolil()
        GtG = (G.T @ G).tolil()
        LtL.setdiag(0.0)
        GtG.setdiag(0.0)
        q = np.zeros(r.n_workers)
        if r.n_workers >= 2 and GtG.nnz > 0:
            with blas_threads(nt or None):
                uL = self._top_eigvec(LtL.tocsr(), rng)
                uG = self._top_eigvec(GtG.tocsr(), rng)
            uG = uG if uG.sum() >= 0 else -uG
            ok = np.abs(uG) > 1e-8 * np.abs(uG).max()
            q[ok] = uL[ok] / uG[ok]
            if q.sum() < 0:
                q = -q
            m = np.abs(q).max()
            if m > 0 and np.isfinite(m):
                q /= m
            q[~np.isfinite(q)] = 0.0
        score = np.bincount(r.task, weights=q[r.worker] * x, minlength=r.n_tasks)
        proba, labels = _soft_and_hard(r, score)
        self._set_posteriors(r, proba, labels)
        self.skills_ = pd.Series(q, index=pd.Index(r.worker_ids, name="worker"), name="skill")
        self.scores_ = pd.Series(score, index=pd.Index(r.task_ids, name="task"), name="score")
        return self
