"""Triangular Estimation (Bonald & Combes, NIPS 2017) and its weighted majority vote.

Binary one-coin model: worker i answers X_ij = +-1 correctly with probability
p_i, v_i = 2 p_i - 1, and E[X_aj X_bj] = v_a v_b for a != b. The method
(docs/maths.md B.4):

1. C_ab = mean over the tasks answered by both a and b of X_aj X_bj (the
   compiled kernel ``te_pairwise_agreement``, O(sum_j n_j^2), OpenMP);
2. for each worker i, (a, b) = argmax |C_ab| over pairs not containing i, and
   |v_i| = sqrt(|C_ia C_ib / C_ab|) (the "triangle" i-a-b);
3. signs from the assumption sum_i v_i > 0: k* = argmax_k |v_k^2 + sum_{i != k} C_ik|
   (that quantity is v_k sum_i v_i), sign(v_k*) = its sign, and
   sign(v_i) = sign(v_k*) sign(C_ik*);
4. the Nitzan-Paroush weighted vote: p_i = (1 + v_i)/2 clipped to
   [eps/2, 1 - eps/2], w_i = ln(p_i / (1 - p_i)), y_j = sign(sum_i w_i X_ij).

Missing pairs (sparse designs): C_ab is defined only where a and b share at
least ``min_common`` tasks. The argmax of step 2 runs over pairs (a, b) with
C_ab, C_ia and C_ib all defined and C_ab != 0; a worker with no such triangle
gets v_i = 0 (weight 0: ignored). In step 3 a worker who shares no task with
k* takes the sign of v_i^2 + sum_l C_il instead.

Posteriors: under the one-coin model with the estimated v and a uniform class
prior, P(y_j = +1 | answers) = sigmoid(sum_i w_i X_ij) exactly; ``probas_`` is
that. A zero score (e.g. every weight zero) is decided by the plain majority
vote, and an exact tie of that by the first class.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from .._check import check_float, check_int
from ..backends import _core
from . import _reference_worker_models as ref
from ._base import BaseAggregator
from ._binary import sign_labels, signs
from ._responses import Responses

__all__ = ["TriangularEstimation", "triangular_skills"]

_MAX_PAIR_BYTES = 4e9  # the W x W moment buffers (two per thread) may not exceed this


def pairwise_moments(responses: Responses, backend: str, n_threads: int) -> tuple[np.ndarray, np.ndarray]:
    """(sum, count) W x W agreement moments of a binary Responses."""
    W = responses.n_workers
    need = 16.0 * W * W * max(1, n_threads if backend == "cpp" else 2)
    if need > _MAX_PAIR_BYTES:
        raise MemoryError(
            f"TriangularEstimation needs W x W moment matrices: {W} workers would take "
            f"{need / 1e9:.1f} GB; it is meant for at most a few thousand workers"
        )
    if backend == "cpp":
        return _core.te_pairwise_agreement(
            responses.task_indptr, responses.task_worker, responses.task_label, W, n_threads
        )
    return ref.te_pairwise_agreement(responses.task_indptr, responses.task_worker, responses.task_label, W)


def triangular_skills(C: np.ndarray, has: np.ndarray) -> np.ndarray:
    """Signed v_i from the agreement matrix C (W x W, C_ab = mean X_a X_b) and its
    definedness mask ``has`` (steps 2 and 3 of the module docstring)."""
    W = C.shape[0]
    C = np.where(has, C, 0.0)
    iu, ju = np.triu_indices(W, k=1)
    ok = has[iu, ju] & (C[iu, ju] != 0)
    pa, pb = iu[ok], ju[ok]
    cab = C[pa, pb]
    order = np.argsort(-np.abs(cab), kind="stable")
    pa, pb, cab = pa[order], pb[order], cab[order]
    mag = np.zeros(W)
    chunk = 4096
    for i in range(W):
        for lo in range(0, len(pa), chunk):
            a, b = pa[lo : lo + chunk], pb[lo : lo + chunk]
            valid = (a != i) & (b != i) & has[i, a] & has[i, b]
            if valid.any():
                t = int(np.argmax(valid))
                mag[i] = np.sqrt(abs(C[i, a[t]] * C[i, b[t]] / cab[lo + t]))
                break
    # signs: v_k * sum_i v_i = v_k^2 + sum_{i != k} C_ik (diagonal of C is 0)
    lead = mag**2 + C.sum(axis=1)
    k = int(np.argmax(np.abs(lead)))
    sign_k = 1.0 if lead[k] >= 0 else -1.0
    sign = np.where(lead >= 0, 1.0, -1.0)  # fallback for workers who share no task with k*
    linked = has[:, k] & (C[:, k] != 0)
    sign[linked] = sign_k * np.sign(C[linked, k])
    sign[k] = sign_k
    return sign * mag


class TriangularEstimation(BaseAggregator):
    """Triangular Estimation of worker reliabilities + Nitzan-Paroush weighted vote (binary).

    Parameters
    ----------
    eps : float, default 1e-3
        Reliabilities are clipped to [-1 + eps, 1 - eps] before the weights
        w_i = ln((1 + v_i) / (1 - v_i)) (so |w_i| <= ln(2/eps - 1)).
    min_common : int, default 1
        Co-answered tasks needed for C_ab to count as defined.
    backend : {"auto", "cpp", "numpy"}
        Where the pairwise moments are computed.
    n_threads : int, default 0 (kdcore's default)

    Fitted attributes: ``skills_`` (v_i, Series by worker), ``weights_``
    (w_i), ``agreement_`` (the W x W matrix C, 0 where undefined),
    ``scores_`` (sum_i w_i X_ij by task), ``labels_``, ``probas_``, ``classes_``.

    Examples
    --------
    >>> from kdcore.crowd import datasets
    >>> r, truth = datasets.load("rte")                        # doctest: +SKIP
    >>> TriangularEstimation().fit(r).score(r, truth)          # doctest: +SKIP
    """

    _binary_only = True

    def __init__(self, eps: float = 1e-3, min_common: int = 1, backend: str = "auto", n_threads: int = 0):
        self.eps = eps
        self.min_common = min_common
        self.backend = backend
        self.n_threads = n_threads

    def fit(self, data: Responses | pd.DataFrame) -> TriangularEstimation:
        eps = check_float(self.eps, "eps", minimum=0.0, maximum=1.0, strict_min=True)
        min_common = check_int(self.min_common, "min_common", minimum=1)
        nt = self._threads()
        backend = self._backend()
        r = self._prepare(data)
        s, c = pairwise_moments(r, backend, nt)
        has = c >= min_common
        C = np.divide(s, c, out=np.zeros_like(s), where=c > 0)
        C[~has] = 0.0
        v = np.clip(triangular_skills(C, has), -1.0 + eps, 1.0 - eps)
        w = np.log1p(v) - np.log1p(-v)  # ln(p / (1 - p)) with p = (1 + v) / 2
        score = np.bincount(r.task, weights=w[r.worker] * signs(r.label), minlength=r.n_tasks)
        labels = sign_labels(r, score)
        p1 = expit(score)
        self._set_posteriors(r, np.column_stack([1.0 - p1, p1]), labels)
        workers = pd.Index(r.worker_ids, name="worker")
        self.skills_ = pd.Series(v, index=workers, name="skill")
        self.weights_ = pd.Series(w, index=workers, name="weight")
        self.agreement_ = C
        self.scores_ = pd.Series(score, index=pd.Index(r.task_ids, name="task"), name="score")
        return self
