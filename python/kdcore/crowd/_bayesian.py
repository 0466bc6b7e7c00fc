"""Bayesian Dawid-Skene: Dirichlet priors on the confusion rows (the Dawid-Skene family of docs/maths.md B.5).

Model. Task j has a true class y_j ~ Categorical(pi), pi ~ Dirichlet(nu 1); worker w
answers l with probability C[w, k, l] when y_j = k, and every confusion row has a
Dirichlet prior C[w, k, :] ~ Dirichlet(A[k, :]) with a K x K pseudo-count matrix A
shared by the workers. With n[w, k, l] = sum over the answers (j, l) of w of
P(y_j = k), the rows have the conjugate posterior Dirichlet(n[w, k, :] + A[k, :]).

Two fits on the same expected counts (the compiled E-step ``_core.em_e_step`` and
the compiled counts ``_core.em_counts``; numpy twins in :mod:`kdcore.crowd._reference`):

- ``method="vb"`` (default): variational Bayes, independent Bayesian classifier
  combination (IBCC, Kim & Ghahramani 2012). The E-step uses
  E[log C[w, k, l]] = digamma(n[w, k, l] + A[k, l]) - digamma(n[w, k, .] + A[k, .])
  and E[log pi_k] = digamma(m_k + nu) - digamma(sum_k (m_k + nu)), m_k = sum_j P(y_j = k).
- ``method="map"``: EM to the posterior mode under the prior Dirichlet(A + 1),
  C[w, k, l] = (n[w, k, l] + A[k, l]) / (n[w, k, .] + A[k, .]) (the same pseudo-count
  rule as ``DawidSkene(smoothing=s)`` with A = s everywhere).

Either way ``confusions_`` is the posterior mean (n + A) / (n + A).sum(-1) at the
final posteriors, and ``priors_`` the posterior mean of pi.

Priors (``prior=``):

- ``"diagonal"`` (default): A[k, k] = s a, A[k, l != k] = s (1 - a) / (K - 1): a prior
  of strength s pseudo-answers per row whose mean accuracy is a. ``prior_strength``
  (s) and ``prior_accuracy`` (a) are numbers, or ``"auto"``: estimated from the data.
- ``"pooled"``: A is a full K x K matrix estimated from the data (a hierarchical prior:
  the typical confusion of the crowd, and how much workers vary around it). A worker
  with few answers gets the crowd's confusion; one with many gets its own.
- a (K, K) array: the pseudo-counts themselves, fixed.

Estimating the prior (empirical Bayes, type-II maximum likelihood): after every
E-step the hyper-parameters maximise the Dirichlet-multinomial evidence of the
expected counts,
    L(A) = sum_{w,k} [ lnG(A[k,.]) - lnG(n[w,k,.] + A[k,.]) + sum_l lnG(n[w,k,l] + A[k,l]) - lnG(A[k,l]) ]
(lnG = log Gamma; counts are real-valued, the posterior expectation of the integer
counts). For ``"diagonal"`` it is a two-parameter problem solved by L-BFGS-B on
(log s, logit a) with a in [1/K, 0.999] (the prior favours the diagonal, never an
adversary) and s in [0.01, 1e4]; for ``"pooled"`` each row of A follows Minka's
fixed point, A[k,l] <- A[k,l] sum_w [psi(n[w,k,l] + A[k,l]) - psi(A[k,l])] /
sum_w [psi(n[w,k,.] + A[k,.]) - psi(A[k,.])], clipped to [1e-3, 1e6], at most 20 steps
per EM round from the previous round's A (compiled: ``_core.dirichlet_fixed_point``,
kdcore/dirichlet.hpp; its numpy twin is this module's loop, ``backend="numpy"``).

:class:`CommunityDawidSkene` replaces the one prior by a mixture: worker w belongs
to one of M communities (P(m) = rho_m) and its rows follow Dirichlet(A_m[k, :]); the
membership posterior is r[w, m] ∝ rho_m exp(L_w(A_m)) (L_w: worker w's term of L),
E[log C] and the posterior mean are the r-weighted mixtures, and each A_m follows
the fixed point above with the workers weighted by r[:, m]. Workers share confusion
patterns within a community, as in community-based Bayesian classifier combination
(Venanzi, Guiver, Kazai, Kohli & Shokouhi, WWW 2014), whose worker-level Gaussian
deviations are replaced here by the conjugate Dirichlet hierarchy.

Gold tasks (``true_labels=``): the posterior of a gold task is its one-hot label
after every E-step (:mod:`kdcore.crowd._gold`). The diagonal prior keeps its mean
accuracy at 1/K or above, so it cannot follow a crowd that is adversarial on average
(mean accuracy below 1/K); gold tasks do not change that (``prior="pooled"`` and
:class:`CommunityDawidSkene` can, and with gold they find the right orientation).

Stopping: after ``n_iter`` rounds or when the E-step's log normaliser
sum_j log sum_k exp(log pi_k + sum log C) changes by less than ``tol`` times its
size between rounds (DawidSkene's rule; with ``method="vb"`` it is computed with
the expected logs).
No randomness: the start is the majority-vote shares, as DawidSkene's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from .._check import check_float, check_int
from ..backends import _core, check_n_threads
from . import _reference as ref
from ._base import BaseAggregator
from ._gold import clamp, gold_codes
from ._majority_vote import vote
from ._responses import Responses
from .distributed import fit_dask, is_dask_dataframe

__all__ = ["BayesianDawidSkene", "CommunityDawidSkene", "diagonal_prior", "dirichlet_evidence"]

_A_MIN, _A_MAX = 1e-3, 1e6
_S_MIN, _S_MAX = 1e-2, 1e4


def diagonal_prior(n_classes: int, strength: float, accuracy: float) -> np.ndarray:
    """Pseudo-counts A (K, K): A[k, k] = strength * accuracy, A[k, l != k] = strength * (1 - accuracy) / (K - 1).

    >>> diagonal_prior(2, 4.0, 0.75).tolist()
    [[3.0, 1.0], [1.0, 3.0]]
    """
    K = int(n_classes)
    A = np.full((K, K), strength * (1.0 - accuracy) / (K - 1))
    np.fill_diagonal(A, strength * accuracy)
    return A


def dirichlet_evidence(counts: np.ndarray, A: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Dirichlet-multinomial log evidence L(A) of the (expected) counts (W, K, K) under rows Dirichlet(A[k, :]).

    ``weights`` (W,) weight each worker's term (a community's responsibilities); the
    multinomial coefficients are left out (they do not depend on A).
    """
    return float(_worker_evidence(counts, A) @ (np.ones(len(counts)) if weights is None else weights))


def _worker_evidence(counts: np.ndarray, A: np.ndarray) -> np.ndarray:
    """L_w(A) for every worker: (W,)."""
    a_row = A.sum(-1)
    n_row = counts.sum(-1)
    per_row = gammaln(a_row) - gammaln(n_row + a_row) + (gammaln(counts + A) - gammaln(A)).sum(-1)
    return per_row.sum(-1)


def _fit_diagonal(counts: np.ndarray, s0: float, a0: float, fix_s: bool, fix_a: bool) -> tuple[float, float]:
    """Type-II ML of (strength, accuracy) of the diagonal prior; either may be held fixed."""
    K = counts.shape[-1]
    eye = np.eye(K, dtype=bool)
    n_row = counts.sum(-1)
    lo_a = 1.0 / K + 1e-6

    def unpack(x):
        s = float(np.exp(x[0])) if not fix_s else s0
        a = float(lo_a + (0.999 - lo_a) / (1.0 + np.exp(-x[1]))) if not fix_a else a0
        return s, a

    def f(x):
        s, a = unpack(x)
        A = diagonal_prior(K, s, a)
        a_row = A.sum(-1)
        val = np.sum(gammaln(a_row) - gammaln(n_row + a_row)) + np.sum(gammaln(counts + A) - gammaln(A))
        G = (digamma(a_row) - digamma(n_row + a_row))[..., None] + digamma(counts + A) - digamma(A)
        G = G.sum(0)  # dL/dA (K, K)
        M = A / s
        g0 = 0.0 if fix_s else s * np.sum(G * M)
        u = (a - lo_a) / (0.999 - lo_a)
        da = (0.999 - lo_a) * u * (1 - u)
        g1 = 0.0 if fix_a else da * s * (G[eye].sum() - G[~eye].sum() / (K - 1))
        return -val, -np.array([g0, g1])

    u0 = np.clip((a0 - lo_a) / (0.999 - lo_a), 1e-6, 1 - 1e-6)
    x0 = np.array([np.log(s0), np.log(u0 / (1 - u0))])
    bounds = [(np.log(_S_MIN), np.log(_S_MAX)), (-14.0, 14.0)]
    res = minimize(f, x0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 50})
    return unpack(res.x if np.all(np.isfinite(res.x)) else x0)


def _fit_pooled(
    counts: np.ndarray,
    A: np.ndarray,
    weights: np.ndarray | None,
    n_steps: int = 20,
    backend: str = "numpy",
    n_threads: int = 0,
) -> np.ndarray:
    """Minka's fixed point for each row of A, workers weighted by ``weights``; warm start from A.

    ``A`` is (K, K) with ``weights`` None or (W,), or a stack (M, K, K) with ``weights``
    (M, W): the communities' priors, each row of each updated in the same steps (the
    same arithmetic as one prior at a time). At most ``n_steps`` steps; stops when no
    cell moves by more than 1e-6 (relative). ``backend="cpp"``: the compiled kernel
    ``_core.dirichlet_fixed_point`` (kdcore/dirichlet.hpp); this function's numpy loop
    is its twin.
    """
    single = A.ndim == 2
    A = np.array(A[None] if single else A, dtype=np.float64)
    M, W = A.shape[0], len(counts)
    w = np.ones((M, W)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(M, W)
    wsum = w.sum(1)
    if W == 0 or not np.any(wsum > 0):
        return A[0] if single else A
    if backend == "cpp":
        A, _ = _core.dirichlet_fixed_point(
            np.ascontiguousarray(counts, dtype=np.float64),
            np.ascontiguousarray(w),
            A,
            n_steps,
            1e-6,
            _A_MIN,
            _A_MAX,
            n_threads,
        )
        return A[0] if single else A
    n_row = counts.sum(-1)  # (W, K)
    for _ in range(n_steps):
        a_row = A.sum(-1)  # (M, K)
        num = np.einsum("mw,mwkl->mkl", w, digamma(counts[None] + A[:, None])) - wsum[:, None, None] * digamma(A)
        den = np.einsum("mw,mwk->mk", w, digamma(n_row[None] + a_row[:, None])) - wsum[:, None] * digamma(a_row)
        ok = den > 0
        new = np.where(ok[..., None], A * num / np.where(ok, den, 1.0)[..., None], A)
        new = np.clip(new, _A_MIN, _A_MAX)
        done = np.max(np.abs(new - A) / A) < 1e-6
        A = new
        if done:
            break
    return A[0] if single else A


def _check_prior_value(value, name: str, lo: float, hi: float, strict: bool = True):
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"{name} must be a number or 'auto', got {value!r}")
        return None
    v = check_float(value, name, minimum=lo, strict_min=strict)
    if v > hi:
        raise ValueError(f"{name} must be <= {hi}, got {v}")
    return v


class BayesianDawidSkene(BaseAggregator):
    """Dawid-Skene with Dirichlet priors on the confusion rows, variational (IBCC) or MAP.

    Parameters
    ----------
    method : {"vb", "map"}, default "vb"
        "vb": variational Bayes (IBCC), E-step with E[log C]; "map": EM to the posterior
        mode (module docstring).
    prior : {"diagonal", "pooled"} or array (K, K), default "diagonal"
        The Dirichlet pseudo-counts of every confusion row (module docstring).
    prior_strength : float > 0 or "auto", default "auto"
        s, pseudo-answers per row of the diagonal prior ("auto": estimated by type-II
        maximum likelihood). For ``prior="pooled"`` a number is only the start.
    prior_accuracy : float in (1/K, 1) or "auto", default "auto"
        a, the prior mean of the diagonal (same rules as ``prior_strength``; "auto"
        starts from 0.7).
    class_prior : float > 0, default 1.0
        nu, the symmetric Dirichlet pseudo-count of the class proportions.
    n_iter : int, default 100
    tol : float, default 1e-5
        Stop when the relative change of the E-step's log normaliser falls below ``tol``.
    true_labels : pd.Series or dict (task id -> label), optional
        Gold tasks, clamped to their label in every E-step.
    backend : {"auto", "cpp", "numpy"}
    n_threads : int, 0 = default

    Attributes
    ----------
    labels_, probas_, classes_ : see BaseAggregator
    confusions_ : ndarray (n_workers, K, K), posterior-mean confusions
    worker_ids_ : pd.Index, the worker of each row of ``confusions_``
    priors_ : pd.Series, posterior-mean class proportions
    prior_pseudo_counts_ : ndarray (K, K), the prior A used in the last round
    prior_strength_, prior_accuracy_ : float, A's mean row total and mean diagonal share
    loss_history_ : list of float, minus the E-step's log normaliser per answer, each round
    n_iter_ : int
    converged_ : bool

    Example
    -------
    >>> from kdcore.crowd import simulate
    >>> r, truth = simulate.dawid_skene(1000, 200, 3, answers_per_task=3, random_state=0)
    >>> bds = BayesianDawidSkene().fit(r)
    >>> bds.confusions_.shape
    (200, 3, 3)
    """

    def __init__(
        self,
        method: str = "vb",
        prior="diagonal",
        prior_strength="auto",
        prior_accuracy="auto",
        class_prior: float = 1.0,
        n_iter: int = 100,
        tol: float = 1e-5,
        true_labels=None,
        backend: str = "auto",
        n_threads: int = 0,
    ):
        self.method = method
        self.prior = prior
        self.prior_strength = prior_strength
        self.prior_accuracy = prior_accuracy
        self.class_prior = class_prior
        self.n_iter = n_iter
        self.tol = tol
        self.true_labels = true_labels
        self.backend = backend
        self.n_threads = n_threads

    # -- checks -------------------------------------------------------------------------
    def _check(self, r: Responses) -> None:
        if self.method not in ("vb", "map"):
            raise ValueError(f"method must be 'vb' or 'map', got {self.method!r}")
        K = r.n_classes
        self._n_iter = check_int(self.n_iter, "n_iter", minimum=1)
        self._tol = check_float(self.tol, "tol", minimum=0.0)
        self._nu = check_float(self.class_prior, "class_prior", minimum=0.0, strict_min=True)
        self._s = _check_prior_value(self.prior_strength, "prior_strength", 0.0, _S_MAX)
        self._a = _check_prior_value(self.prior_accuracy, "prior_accuracy", 1.0 / K, 1.0)
        if self._a is not None and self._a >= 1.0:
            raise ValueError(f"prior_accuracy must be < 1, got {self._a}")
        if isinstance(self.prior, str):
            if self.prior not in ("diagonal", "pooled"):
                raise ValueError(f"prior must be 'diagonal', 'pooled' or a ({K}, {K}) array, got {self.prior!r}")
            self._A_fixed = None
        else:
            A = np.asarray(self.prior)
            if A.dtype.kind not in "fiu" or A.dtype.kind == "b":
                raise TypeError(f"prior must be 'diagonal', 'pooled' or a float array, got dtype {A.dtype}")
            A = np.ascontiguousarray(A, dtype=np.float64)
            if A.shape != (K, K):
                raise ValueError(f"prior must have shape ({K}, {K}) (classes x classes), got {A.shape}")
            if not np.all(np.isfinite(A)) or (A <= 0).any():
                raise ValueError("prior pseudo-counts must be finite and > 0")
            self._A_fixed = A
        check_n_threads(self.n_threads)
        self._nthreads = int(self.n_threads)

    # -- the two compiled steps (numpy twins for backend="numpy") -----------------------
    def _counts(self, r: Responses, post: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p3 = np.ascontiguousarray(post[:, None, :])
        if self._be == "numpy":
            counts, mass = ref.em_counts(r.task, r.worker, r.label, r.n_workers, p3)
        else:
            counts, mass = _core.em_counts(
                r.worker_indptr,
                r.worker_task,
                r.worker_label,
                r.task_indptr,
                r.task_worker,
                r.task_label,
                r.n_tasks,
                r.n_workers,
                p3,
                self._nthreads,
            )
        return counts[0], mass[0]

    def _e_step(self, r: Responses, log_conf: np.ndarray, log_prior: np.ndarray) -> tuple[np.ndarray, float]:
        lc = np.ascontiguousarray(log_conf[None])
        lp = np.ascontiguousarray(log_prior[None])
        if self._be == "numpy":
            post, ll = ref.em_e_step(r.task, r.worker, r.label, r.n_tasks, lc, lp)
        else:
            post, ll = _core.em_e_step(
                r.task_indptr, r.task_worker, r.task_label, r.n_tasks, r.n_workers, lc, lp, self._nthreads
            )
        return post[:, 0, :], float(ll)

    # -- the prior ------------------------------------------------------------------------
    def _init_prior(self, r: Responses) -> None:
        K = r.n_classes
        s = self._s if self._s is not None else 2.0 * K
        a = self._a if self._a is not None else max(0.7, 1.0 / K + 0.05)
        self._s_cur, self._a_cur = s, a
        self._A = self._A_fixed if self._A_fixed is not None else diagonal_prior(K, s, a)

    def _update_prior(self, counts: np.ndarray) -> None:
        """Empirical Bayes step for A from the expected counts (module docstring)."""
        if self._A_fixed is not None:
            return
        active = counts.sum(axis=(1, 2)) > 0
        c = counts[active]
        if self.prior == "pooled":
            self._A = _fit_pooled(c, self._A, None, backend=self._be, n_threads=self._nthreads)
        elif self._s is None or self._a is None:
            self._s_cur, self._a_cur = _fit_diagonal(
                c, self._s_cur, self._a_cur, fix_s=self._s is not None, fix_a=self._a is not None
            )
            self._A = diagonal_prior(counts.shape[-1], self._s_cur, self._a_cur)

    def _worker_log_conf(self, counts: np.ndarray) -> np.ndarray:
        """log C used by the E-step: E[log C] (vb) or log of the posterior mean (map)."""
        rows = counts + self._A
        if self.method == "vb":
            return digamma(rows) - digamma(rows.sum(-1, keepdims=True))
        return np.log(rows / rows.sum(-1, keepdims=True))

    def _posterior_mean(self, counts: np.ndarray) -> np.ndarray:
        rows = counts + self._A
        return rows / rows.sum(-1, keepdims=True)

    def _log_class_prior(self, mass: np.ndarray) -> np.ndarray:
        a = mass + self._nu
        if self.method == "vb":
            return digamma(a) - digamma(a.sum())
        return np.log(a / a.sum())

    # -- fit --------------------------------------------------------------------------------
    _dask_model: str | None = "bayes"  # kdcore.crowd.distributed fits it on a Dask DataFrame

    def fit(self, data) -> BayesianDawidSkene:
        """Fit by (variational or MAP) EM; only fitted ``_``-suffixed attributes stay on the estimator."""
        if is_dask_dataframe(data):  # the rounds on the Dask cluster (kdcore.crowd.distributed)
            return fit_dask(self, data)
        before = set(vars(self))
        try:
            return self._fit(data)
        finally:  # the run's working state (checked settings, current prior) is not fitted state
            for name in [k for k in vars(self) if k not in before and k.startswith("_")]:
                delattr(self, name)

    def _fit(self, data) -> BayesianDawidSkene:
        r = self._prepare(data)
        self._check(r)
        self._be = self._backend()
        gold_t, gold_k = gold_codes(r, self.true_labels)
        scores, _, _ = vote(r, None, self._be, self._nthreads)
        post = clamp(scores / np.diff(r.task_indptr).astype(np.float64)[:, None], gold_t, gold_k)
        self._init_prior(r)
        history: list[float] = []
        converged = False
        prev_ll: float | None = None
        n = 0
        for n in range(1, self._n_iter + 1):  # noqa: B007 (n is the round count after the loop)
            counts, mass = self._counts(r, post)
            self._update_prior(counts)
            log_conf = self._worker_log_conf(counts)
            new_post, ll = self._e_step(r, log_conf, self._log_class_prior(mass))
            clamp(new_post, gold_t, gold_k)
            history.append(-ll / r.n_responses)
            post = new_post
            if prev_ll is not None and abs(ll - prev_ll) < self._tol * abs(prev_ll):
                converged = True
                break
            prev_ll = ll
        counts, mass = self._counts(r, post)
        self.n_iter_ = n
        self.converged_ = converged
        self.loss_history_ = history
        self.worker_ids_ = r.worker_ids
        self.confusions_ = self._posterior_mean(counts)
        cp = mass + self._nu
        self.priors_ = pd.Series(cp / cp.sum(), index=pd.Index(np.asarray(r.classes_), name="label"), name="prior")
        self.prior_pseudo_counts_ = np.array(self._A_out(), dtype=np.float64)
        A = self.prior_pseudo_counts_.reshape(-1, r.n_classes, r.n_classes)
        self.prior_strength_ = float(A.sum(-1).mean())
        self.prior_accuracy_ = float((np.einsum("mkk->mk", A) / A.sum(-1)).mean())
        self._store_extra(r)
        self._set_posteriors(r, post)
        return self

    def _A_out(self) -> np.ndarray:
        return self._A

    def _store_extra(self, r: Responses) -> None:
        pass

    def confusions_frame(self) -> pd.DataFrame:
        """``confusions_`` as a DataFrame indexed by (worker, true label), one column per answered label."""
        W, K, _ = self.confusions_.shape
        index = pd.MultiIndex.from_product([self.worker_ids_, self.classes_], names=["worker", "true_label"])
        return pd.DataFrame(
            self.confusions_.reshape(W * K, K), index=index, columns=pd.Index(self.classes_, name="label")
        )


class CommunityDawidSkene(BayesianDawidSkene):
    """Bayesian Dawid-Skene whose workers share confusion priors within learned communities.

    Each of ``n_communities`` communities has its own K x K Dirichlet pseudo-counts
    A_m, estimated from the data; worker w's community is uncertain, with posterior
    r[w, m] ∝ rho_m exp(L_w(A_m)) (module docstring). A worker with few answers is
    pulled to its community's confusion; communities start from the workers ranked
    by their agreement with the majority vote, split into equal-sized groups (no
    randomness).

    Parameters
    ----------
    n_communities : int >= 1, default 3 (1 is ``BayesianDawidSkene(prior="pooled")``)
    method, class_prior, n_iter, tol, true_labels, backend, n_threads : as BayesianDawidSkene

    Attributes
    ----------
    communities_ : pd.DataFrame workers x communities, membership posteriors r
    community_confusions_ : ndarray (M, K, K), the prior mean confusion A_m / A_m.sum(-1) of each community
    community_weights_ : ndarray (M,), rho
    prior_pseudo_counts_ : ndarray (M, K, K), the A_m
    and the attributes of BayesianDawidSkene (``confusions_``: posterior means, mixed over communities).

    Example
    -------
    >>> from kdcore.crowd import simulate
    >>> r, truth = simulate.dawid_skene(1000, 200, 3, answers_per_task=3, random_state=0)
    >>> cds = CommunityDawidSkene(n_communities=2).fit(r)
    >>> cds.communities_.shape
    (200, 2)
    """

    def __init__(
        self,
        n_communities: int = 3,
        method: str = "vb",
        class_prior: float = 1.0,
        n_iter: int = 100,
        tol: float = 1e-5,
        true_labels=None,
        backend: str = "auto",
        n_threads: int = 0,
    ):
        self.n_communities = n_communities
        self.method = method
        self.class_prior = class_prior
        self.n_iter = n_iter
        self.tol = tol
        self.true_labels = true_labels
        self.backend = backend
        self.n_threads = n_threads

    _dask_model = None  # its start ranks the workers by agreement with the vote: in memory only

    # BayesianDawidSkene's prior parameters, fixed for the community model
    prior = "pooled"
    prior_strength = "auto"
    prior_accuracy = "auto"

    def _check(self, r: Responses) -> None:
        self._M = check_int(self.n_communities, "n_communities", minimum=1)
        super()._check(r)

    def _init_prior(self, r: Responses) -> None:
        K, M, W = r.n_classes, self._M, r.n_workers
        self._A = diagonal_prior(K, 2.0 * K, max(0.7, 1.0 / K + 0.05))
        self._Am = np.repeat(self._A[None], M, axis=0)
        self._rho = np.full(M, 1.0 / M)
        # start: workers ranked by their share of answers that agree with the majority vote
        scores, best, _ = vote(r, None, self._be, self._nthreads)
        agree = np.bincount(r.worker, weights=(best[r.task] == r.label).astype(np.float64), minlength=W)
        n_w = np.bincount(r.worker, minlength=W).astype(np.float64)
        rate = (agree + 1.0) / (n_w + 2.0)
        order = np.argsort(-rate, kind="stable")
        resp = np.zeros((W, M))
        resp[order, (np.arange(W) * M) // max(W, 1)] = 1.0
        self._resp = resp
        self._first = True

    def _update_prior(self, counts: np.ndarray) -> None:
        M = self._M
        if not self._first:  # membership from the current priors (the first round keeps the ranked start)
            ev = np.stack([_worker_evidence(counts, self._Am[m]) for m in range(M)], axis=1)  # (W, M)
            logit = ev + np.log(np.maximum(self._rho, 1e-300))
            logit -= logit.max(1, keepdims=True)
            resp = np.exp(logit)
            self._resp = resp / resp.sum(1, keepdims=True)
        self._first = False
        active = counts.sum(axis=(1, 2)) > 0
        self._Am = _fit_pooled(
            counts[active], self._Am, self._resp[active].T, backend=self._be, n_threads=self._nthreads
        )
        self._rho = (self._resp[active].sum(0) + 1e-3) / (active.sum() + M * 1e-3)

    def _mixture(self, counts: np.ndarray, fn) -> np.ndarray:
        out = np.zeros_like(counts)
        for m in range(self._M):
            rows = counts + self._Am[m]
            out += self._resp[:, m, None, None] * fn(rows)
        return out

    def _worker_log_conf(self, counts: np.ndarray) -> np.ndarray:
        if self.method == "vb":
            return self._mixture(counts, lambda rows: digamma(rows) - digamma(rows.sum(-1, keepdims=True)))
        return np.log(self._posterior_mean(counts))

    def _posterior_mean(self, counts: np.ndarray) -> np.ndarray:
        return self._mixture(counts, lambda rows: rows / rows.sum(-1, keepdims=True))

    def _A_out(self) -> np.ndarray:
        return self._Am

    def _store_extra(self, r: Responses) -> None:
        cols = pd.RangeIndex(self._M, name="community")
        self.communities_ = pd.DataFrame(self._resp, index=r.worker_ids, columns=cols)
        self.community_confusions_ = self._Am / self._Am.sum(-1, keepdims=True)
        self.community_weights_ = self._rho.copy()
