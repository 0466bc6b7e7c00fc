"""crowd-kit's GLAD on kdcore's compiled GLAD kernels (``glad_e_step``, ``glad_objective``).

The model and the loop are crowd-kit 1.4.2's: abilities alpha (start 1), log inverse
difficulties b = log beta (start 1), Gaussian priors N(mean, 1) on both (means 1 unless
given), a fixed class prior (uniform unless ``labels_priors``); each round an E-step, then
an M-step by scipy's nonlinear conjugate gradient on the expected complete log-likelihood
(``m_step_max_iter`` iterations, ``m_step_tol``), the parameters ordered as crowd-kit
orders them (workers, then tasks, by first appearance); the loss is that objective divided
by answers x labels (the first, before any round, undivided, as crowd-kit has it) and the
loop stops when it rises by less than ``tol``. ``probas_`` are those of the last E-step
(crowd-kit runs none after the last M-step).

The E-step and the objective with its gradient are one compiled pass each instead of
crowd-kit's pandas melt, merge and groupby per call. The conjugate gradient follows
another rounding path (the sums are taken in another order), and its line search can
branch on the last bits, so the numbers agree with crowd-kit's closely but not to the
last digit (docs/crowdkit.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from ..._check import check_float, check_int
from ...backends import _core, blas_threads
from ...crowd._responses import Responses
from .._frame import check_frame, code_answers, sorted_order
from ._majority_vote import estimator_repr

__all__ = ["GLAD"]

_THREADS = 0  # kdcore's thread policy (kdcore.set_num_threads)


def _float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    return float(value)


def _prior_means(value: Any, ids: pd.Index, name: str, what: str) -> np.ndarray:
    """A prior mean per worker (or task): None = 1.0, a number, or a Series indexed by id."""
    if value is None:
        return np.ones(len(ids))
    if isinstance(value, pd.Series):
        means = value[~value.index.duplicated(keep="first")].reindex(ids).to_numpy(dtype=np.float64)
        missing = np.isnan(means)
        if missing.any():
            raise ValueError(
                f"{name} has no value for {int(missing.sum())} {what}s of the data (first: {ids[int(np.argmax(missing))]!r})"
            )
        return means
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return np.full(len(ids), float(value))
    raise TypeError(f"{name} must be a pandas Series indexed by {what}, a number or None, got {type(value).__name__}")


def _unique_values(ids: pd.Index) -> Any:
    """The ids as crowd-kit's ``pd.unique(column)`` returns them (ndarray, or an extension array)."""
    return ids.to_numpy() if isinstance(ids.dtype, np.dtype) else ids.array


class GLAD:
    """crowd-kit 1.4.2's GLAD (worker abilities and task difficulties), on kdcore's kernels.

    Parameters
    ----------
    n_iter : int, default 100
        The maximum number of EM rounds.
    tol : float, default 1e-5
        Stop when the loss (the expected log-likelihood per answer and label) rises by less.
    silent : bool, default True
        Kept for crowd-kit's signature (no progress bar).
    labels_priors : Series (label) or None
        The fixed class prior (not normalised, as in crowd-kit); uniform over the labels of
        the data by default. Its index lists the labels; every label of the data must be in it.
    alphas_priors_mean : Series (worker), number or None
        The means of the abilities' Gaussian priors (1.0 by default).
    betas_priors_mean : Series (task), number or None
        The means of the log inverse difficulties' Gaussian priors (1.0 by default).
    m_step_max_iter : int, default 25
    m_step_tol : float, default 1e-2
        The conjugate gradient's iteration limit and tolerance in each M-step.

    Attributes
    ----------
    labels_ : Series (task, sorted) named "agg_label"
    probas_ : DataFrame (task x label, both sorted), columns named "variable"
    alphas_ : Series (worker, first appearance) named "alpha"
    betas_ : Series (task, first appearance) named "beta": log inverse difficulties
    priors_ : Series (label): the class prior
    loss_history_ : list of float

    Example
    -------
    >>> import pandas as pd
    >>> from kdcore.crowdkit.aggregation import GLAD
    >>> df = pd.DataFrame({"task": [1, 1, 1, 2, 2, 2], "worker": ["a", "b", "c"] * 2, "label": [0, 0, 1, 1, 1, 1]})
    >>> GLAD().fit_predict(df).tolist()
    [0, 1]
    """

    _params = (
        "n_iter",
        "tol",
        "silent",
        "labels_priors",
        "alphas_priors_mean",
        "betas_priors_mean",
        "m_step_max_iter",
        "m_step_tol",
    )

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-5,
        silent: bool = True,
        labels_priors: pd.Series | None = None,
        alphas_priors_mean: pd.Series | None = None,
        betas_priors_mean: pd.Series | None = None,
        m_step_max_iter: int = 25,
        m_step_tol: float = 1e-2,
    ) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.silent = silent
        self.labels_priors = labels_priors
        self.alphas_priors_mean = alphas_priors_mean
        self.betas_priors_mean = betas_priors_mean
        self.m_step_max_iter = m_step_max_iter
        self.m_step_tol = m_step_tol

    def __repr__(self) -> str:
        return estimator_repr(self, self._params)

    def _coded(self, data: pd.DataFrame) -> tuple[Responses, pd.Index, pd.Index, pd.Index, np.ndarray]:
        """The answers as codes (tasks, workers by first appearance; labels in the prior's order)."""
        if len(check_frame(data)) == 0:
            raise ValueError("data has no rows (crowd-kit's GLAD fails on an empty table too)")
        c = code_answers(data)
        if len(c.nan_task):
            raise ValueError(
                f"GLAD: {len(c.nan_task)} answers have no label (NaN); crowd-kit makes NaN a class of its own "
                "that no answer is ever right about, so drop them first"
            )
        r = c.responses
        priors = self.labels_priors
        if priors is None:
            return r, c.tasks, c.workers, c.classes, np.full(r.n_classes, 1.0 / r.n_classes)
        if not isinstance(priors, pd.Series):
            raise TypeError(f"labels_priors must be a pandas Series indexed by label, got {type(priors).__name__}")
        if priors.index.has_duplicates:
            raise ValueError(f"labels_priors lists a label twice: {list(priors.index[priors.index.duplicated()])}")
        p = priors.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.any(p > 0):
            raise ValueError(f"labels_priors must be finite, non-negative and not all zero, got {list(p)}")
        to_prior = priors.index.get_indexer(c.classes)
        if (to_prior < 0).any():
            raise ValueError(
                f"the data has labels {list(c.classes[to_prior < 0])} that labels_priors does not list "
                f"(its labels: {list(priors.index)})"
            )
        rr = Responses._from_codes(
            r.task,
            r.worker,
            np.ascontiguousarray(to_prior[r.label], dtype=np.int32),
            r.task_ids,
            r.worker_ids,
            np.asarray(priors.index.to_numpy()),
        )
        return rr, c.tasks, c.workers, priors.index, p

    def fit(self, data: pd.DataFrame) -> GLAD:
        """Fit by EM (crowd-kit's ``GLAD.fit``); returns self."""
        n_iter = check_int(self.n_iter, "n_iter", minimum=-(2**62))  # crowd-kit runs no round for n_iter <= 0
        tol = _float(self.tol, "tol")
        max_iter = check_int(self.m_step_max_iter, "m_step_max_iter", minimum=0)
        m_tol = check_float(self.m_step_tol, "m_step_tol", minimum=0.0)
        r, tasks, workers, classes, prior = self._coded(data)
        mu_a = _prior_means(self.alphas_priors_mean, workers, "alphas_priors_mean", "worker")
        mu_b = _prior_means(self.betas_priors_mean, tasks, "betas_priors_mean", "task")
        W, T, K = r.n_workers, r.n_tasks, r.n_classes
        if K < 2:
            raise ValueError(f"GLAD needs at least two labels, got {list(classes)}")
        with np.errstate(divide="ignore"):
            log_prior = np.log(prior)

        def e_step(alpha: np.ndarray, logbeta: np.ndarray) -> np.ndarray:
            post, _ = _core.glad_e_step(
                r.task_indptr, r.task_worker, r.task_label, K, alpha, logbeta, log_prior, _THREADS
            )
            return post

        def objective(post: np.ndarray, alpha: np.ndarray, logbeta: np.ndarray) -> tuple[float, np.ndarray]:
            q, ga, gb = _core.glad_objective(
                r.task_indptr, r.task_worker, r.task_label, K, post, alpha, logbeta, mu_a, mu_b, _THREADS
            )
            q = float(q)
            return (-np.inf if np.isnan(q) else q), np.concatenate([ga, gb])

        alpha, logbeta = np.ones(W), np.ones(T)
        post = e_step(alpha, logbeta)
        q = objective(post, alpha, logbeta)[0]
        n_rows = r.n_responses * K  # crowd-kit divides by the rows of its melted table
        history: list[float] = []
        for _ in range(n_iter):
            last = q
            post = e_step(alpha, logbeta)

            def f(z: np.ndarray, post: np.ndarray = post) -> tuple[float, np.ndarray]:
                q, g = objective(post, np.ascontiguousarray(z[:W]), np.ascontiguousarray(z[W:]))
                return -q, -g

            with blas_threads(1):
                res = minimize(
                    f,
                    np.concatenate([alpha, logbeta]),
                    method="CG",
                    jac=True,
                    tol=m_tol,
                    options={"disp": False, "maxiter": max_iter},
                )
            alpha, logbeta = np.ascontiguousarray(res.x[:W]), np.ascontiguousarray(res.x[W:])
            q = objective(post, alpha, logbeta)[0] / n_rows
            history.append(q)
            if q - last < tol:
                break
        self._finish(post, alpha, logbeta, tasks, workers, classes, mu_a, mu_b, history)
        return self

    def _finish(self, post, alpha, logbeta, tasks, workers, classes, mu_a, mu_b, history) -> None:
        t_order = sorted_order(tasks)
        l_order = sorted_order(classes)
        probas = post[np.ix_(t_order, l_order)]
        columns = pd.Index(classes.take(l_order), name="variable")
        index = pd.Index(tasks.take(t_order), name="task")
        self.probas_ = pd.DataFrame(probas, index=index, columns=columns)
        self.labels_ = pd.Series(columns.take(np.argmax(probas, axis=1)), index=index, name="agg_label")
        # before any M-step crowd-kit's start values have unnamed indexes
        w_name, t_name = ("worker", "task") if history else (None, None)
        self.alphas_ = pd.Series(alpha, index=pd.Index(workers, name=w_name), name="alpha")
        self.betas_ = pd.Series(logbeta, index=pd.Index(tasks, name=t_name), name="beta")
        self.workers_ = _unique_values(workers)
        self.tasks_ = _unique_values(tasks)
        if self.labels_priors is None:
            self.prior_labels_ = _unique_values(classes)
            self.priors_ = pd.Series(1.0 / len(classes), index=pd.Index(classes, name=None))
        else:
            self.prior_labels_ = self.labels_priors.index
            self.priors_ = self.labels_priors
        self.alphas_priors_mean_ = (
            pd.Series(mu_a, index=pd.Index(workers, name=None))
            if self.alphas_priors_mean is None
            else self.alphas_priors_mean
        )
        self.betas_priors_mean_ = (
            pd.Series(mu_b, index=pd.Index(tasks, name=None))
            if self.betas_priors_mean is None
            else self.betas_priors_mean
        )
        self.loss_history_ = history

    def fit_predict(self, data: pd.DataFrame) -> pd.Series:
        """Fit and return ``labels_``."""
        return self.fit(data).labels_

    def fit_predict_proba(self, data: pd.DataFrame) -> pd.DataFrame:
        """Fit and return ``probas_``."""
        return self.fit(data).probas_
