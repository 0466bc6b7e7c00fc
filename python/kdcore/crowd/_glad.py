"""GLAD (Whitehill, Ruvolo, Wu, Bergsma, Movellan, "Whose vote should count
more", NIPS 2009), in crowd-kit's multi-class form.

Worker i has ability alpha_i (any real: negative = adversarial); task j has
inverse difficulty beta_j = exp(b_j) > 0 (the log-parametrisation keeps it
positive without constraints). Worker i answers task j correctly with
probability sigma(alpha_i beta_j); a wrong answer is uniform over the other
K - 1 classes. Priors: alpha_i ~ N(mu_alpha, 1), b_j ~ N(mu_b, 1) (both means
1.0 by default, and the initial values, as crowd-kit), class prior fixed
(uniform by default).

EM: the E-step (compiled kernel ``glad_e_step``, log space with a max shift)
gives the posteriors q_jk; the M-step maximises the expected complete
log-likelihood Q(alpha, b) (+ the log priors) by scipy's nonlinear conjugate
gradient (``m_step_max_iter`` = 25 iterations, ``m_step_tol`` = 1e-2, as
crowd-kit), with Q and its gradient computed together by the compiled kernel
``glad_objective`` (one streaming task-major pass, OpenMP, GIL released). EM stops after
``n_iter`` rounds or when Q per answer improves by less than ``tol``.

``loss_history_`` holds Q / n_responses after each round (crowd-kit divides by
n_responses * K; the stopping rule "improvement < tol" is the same). The final
posteriors come from one more E-step at the final parameters.

Fitted: ``skills_``/``alphas_`` (alpha_i by worker), ``betas_`` (b_j = log beta_j
by task, crowd-kit's ``betas_``), ``difficulties_`` (1/beta_j = exp(-b_j):
larger = harder), ``priors_``, ``loss_history_``, ``n_iter_``, ``labels_``,
``probas_``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from .._check import check_float, check_int
from ..backends import _core, blas_threads
from . import _reference_worker_models as ref
from ._base import BaseAggregator
from ._gold import clamp, gold_codes
from ._progress import progress_range
from ._responses import Responses

__all__ = ["GLAD"]


class GLAD(BaseAggregator):
    """GLAD: worker ability and task difficulty, EM with a gradient M-step (multi-class).

    Parameters
    ----------
    n_iter : int, default 100
    tol : float, default 1e-5
    m_step_max_iter : int, default 25
    m_step_tol : float, default 1e-2
    alpha_prior_mean, logbeta_prior_mean : float, default 1.0
    priors : array-like of K class probabilities or None (uniform)
    backend : {"auto", "cpp", "numpy"}
    n_threads : int, default 0
    true_labels : pd.Series or dict (task id -> label), optional
        Gold tasks: their posterior is their one-hot label after every E-step.
    progress : bool, default False (a tqdm bar over EM rounds when stderr is a terminal)

    Examples
    --------
    >>> from kdcore.crowd import datasets
    >>> r, truth = datasets.load("rte")                   # doctest: +SKIP
    >>> GLAD().fit(r).score(r, truth)                     # doctest: +SKIP
    """

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-5,
        m_step_max_iter: int = 25,
        m_step_tol: float = 1e-2,
        alpha_prior_mean: float = 1.0,
        logbeta_prior_mean: float = 1.0,
        priors=None,
        backend: str = "auto",
        n_threads: int = 0,
        progress: bool = False,
        true_labels=None,
    ):
        self.n_iter = n_iter
        self.tol = tol
        self.m_step_max_iter = m_step_max_iter
        self.m_step_tol = m_step_tol
        self.alpha_prior_mean = alpha_prior_mean
        self.logbeta_prior_mean = logbeta_prior_mean
        self.priors = priors
        self.backend = backend
        self.n_threads = n_threads
        self.progress = progress
        self.true_labels = true_labels

    # the two steps, one place where a backend plugs in
    @staticmethod
    def _e_step(
        r: Responses,
        alpha: np.ndarray,
        logbeta: np.ndarray,
        log_prior: np.ndarray,
        be: str,
        nt: int,
        gold: tuple[np.ndarray, np.ndarray],
    ) -> tuple[np.ndarray, float]:
        if be == "cpp":
            post, ll = _core.glad_e_step(
                r.task_indptr, r.task_worker, r.task_label, r.n_classes, alpha, logbeta, log_prior, nt
            )
        else:
            post, ll = ref.glad_e_step(
                r.task_indptr, r.task_worker, r.task_label, r.n_classes, alpha, logbeta, log_prior
            )
        return clamp(post, *gold), ll  # gold tasks keep their label (kdcore.crowd._gold)

    @staticmethod
    def _objective(
        r: Responses,
        post: np.ndarray,
        alpha: np.ndarray,
        logbeta: np.ndarray,
        mu_a: np.ndarray,
        mu_b: np.ndarray,
        be: str,
        nt: int,
    ) -> tuple[float, np.ndarray, np.ndarray]:
        if be == "cpp":
            return _core.glad_objective(
                r.task_indptr, r.task_worker, r.task_label, r.n_classes, post, alpha, logbeta, mu_a, mu_b, nt
            )
        return ref.glad_objective(
            r.task_indptr, r.task_worker, r.task_label, r.n_classes, post, alpha, logbeta, mu_a, mu_b
        )

    def _m_step(
        self,
        r: Responses,
        post: np.ndarray,
        alpha: np.ndarray,
        logbeta: np.ndarray,
        mu_a: np.ndarray,
        mu_b: np.ndarray,
        max_iter: int,
        m_tol: float,
        be: str,
        nt: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        W = r.n_workers

        def f(z: np.ndarray) -> tuple[float, np.ndarray]:
            a = np.ascontiguousarray(z[:W])
            b = np.ascontiguousarray(z[W:])
            q, ga, gb = self._objective(r, post, a, b, mu_a, mu_b, be, nt)
            return -q, -np.concatenate([ga, gb])

        z0 = np.concatenate([alpha, logbeta])
        # scipy's CG does a few BLAS level-1 ops per step on (W + T)-vectors: threading
        # them only costs (and oversubscribes next to our own kernel threads)
        with blas_threads(1):
            res = minimize(f, z0, jac=True, method="CG", tol=m_tol, options={"maxiter": max_iter, "disp": False})
        z = res.x if np.all(np.isfinite(res.x)) else z0
        return np.ascontiguousarray(z[:W]), np.ascontiguousarray(z[W:])

    def fit(self, data: Responses | pd.DataFrame) -> GLAD:
        n_iter = check_int(self.n_iter, "n_iter", minimum=0)
        tol = check_float(self.tol, "tol", minimum=0.0)
        max_iter = check_int(self.m_step_max_iter, "m_step_max_iter", minimum=1)
        m_tol = check_float(self.m_step_tol, "m_step_tol", minimum=0.0)
        mu_a0 = check_float(self.alpha_prior_mean, "alpha_prior_mean")
        mu_b0 = check_float(self.logbeta_prior_mean, "logbeta_prior_mean")
        nt = self._threads()
        be = self._backend()
        r = self._prepare(data)
        gold = gold_codes(r, self.true_labels)
        K = r.n_classes
        if self.priors is None:
            prior = np.full(K, 1.0 / K)
        else:
            prior = np.asarray(self.priors, dtype=np.float64).ravel()
            if prior.shape != (K,) or not np.all(np.isfinite(prior)) or np.any(prior <= 0):
                raise ValueError(f"priors must be {K} positive finite numbers (one per class), got {self.priors!r}")
            prior = prior / prior.sum()
        log_prior = np.log(prior)
        mu_a = np.full(r.n_workers, mu_a0)
        mu_b = np.full(r.n_tasks, mu_b0)
        alpha, logbeta = mu_a.copy(), mu_b.copy()
        N = r.n_responses

        post, _ = self._e_step(r, alpha, logbeta, log_prior, be, nt, gold)
        q = self._objective(r, post, alpha, logbeta, mu_a, mu_b, be, nt)[0] / N
        history: list[float] = []
        it = 0
        for it in (i + 1 for i in progress_range(n_iter, self.progress, "GLAD EM")):  # noqa: B007 (rounds run, read after)
            last = q
            post, _ = self._e_step(r, alpha, logbeta, log_prior, be, nt, gold)
            alpha, logbeta = self._m_step(r, post, alpha, logbeta, mu_a, mu_b, max_iter, m_tol, be, nt)
            q = self._objective(r, post, alpha, logbeta, mu_a, mu_b, be, nt)[0] / N
            history.append(float(q))
            if q - last < tol:
                break
        post, ll = self._e_step(r, alpha, logbeta, log_prior, be, nt, gold)
        self._set_posteriors(r, post)
        workers = pd.Index(r.worker_ids, name="worker")
        tasks = pd.Index(r.task_ids, name="task")
        self.alphas_ = pd.Series(alpha, index=workers, name="alpha")
        self.skills_ = self.alphas_
        self.betas_ = pd.Series(logbeta, index=tasks, name="beta")
        self.difficulties_ = pd.Series(np.exp(-logbeta), index=tasks, name="difficulty")
        self.priors_ = pd.Series(prior, index=pd.Index(self.classes_, name="label"), name="prior")
        self.loss_history_ = history
        self.n_iter_ = it
        self.log_likelihood_ = float(ll)
        return self
