"""Dawid-Skene EM with a full K x K confusion matrix per worker (Dawid & Skene 1979).

The E-step and M-step are the typed kernels of :mod:`kdcore.crowd._em` with one
type (T = 1); this module only runs the EM loop and stores the results in
crowd-kit's shape.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from ..backends import check_n_threads
from . import _em
from ._base import BaseAggregator
from ._majority_vote import _vote
from ._responses import Responses
from .distributed import fit_dask, is_dask_dataframe

__all__ = ["DawidSkene"]


def _check_params(est) -> None:
    n_iter, tol = est.n_iter, est.tol
    if isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral):
        raise TypeError(f"n_iter must be an int, got {type(n_iter).__name__}")
    if n_iter < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite float >= 0, got {tol!r}")
    _em._smoothing(est.smoothing)


class DawidSkene(BaseAggregator):
    """Dawid-Skene EM: a K x K confusion matrix per worker and a class prior.

    E-step: P(y_j = k | answers) ∝ prior[k] prod_{answers (w, l)} C[w, k, l], in log
    space with a max shift; M-step: C[w, k, :] ∝ expected counts + ``smoothing``,
    prior ∝ expected class totals + ``smoothing`` (kdcore.crowd._em).

    Parameters
    ----------
    n_iter : int
        Maximum number of EM rounds (one M-step then one E-step each).
    tol : float
        Stop when the relative change of the log-likelihood between rounds,
        |ll - ll_prev| / |ll_prev|, falls below ``tol`` (``tol=0``: run all ``n_iter``).
    init : {"mv", "spectral"}
        "mv": start from majority-vote shares (as crowd-kit); "spectral": confusions and
        prior from the Zhang-Chen-Zhou-Jordan moment method
        (``kdcore.crowd._spectral_em.spectral_init``), then EM.
    smoothing : float >= 0
        Pseudo-count added to every confusion cell and prior class (Dirichlet MAP).
        The default 0 is the Dawid-Skene maximum-likelihood fit (the model crowd-kit
        fits). Either way nothing is NaN: zero probabilities enter the E-step as
        log(1e-300) (``_em.PROB_FLOOR``), so perfect workers and unused classes stay
        finite, and rows with no mass (a worker without answers) become uniform.
    random_state : int or None
        Seed of the spectral initialisation.
    backend : {"auto", "cpp", "numpy"}
    n_threads : int, 0 = default

    Attributes
    ----------
    labels_, probas_, classes_ : see BaseAggregator
    confusions_ : ndarray (n_workers, K, K), confusions_[w, k, l] = P(answer l | truth k)
    worker_ids_ : pd.Index, the worker of each row of ``confusions_``
    priors_ : pd.Series, class prior indexed by class
    loss_history_ : list of float, negative log-likelihood per answer after each E-step
    n_iter_ : int, EM rounds run
    converged_ : bool

    Example
    -------
    >>> from kdcore.crowd import DawidSkene, simulate
    >>> r, truth = simulate.dawid_skene(2000, 30, 3, answers_per_task=5, random_state=0)
    >>> ds = DawidSkene().fit(r)
    >>> float((ds.labels_ == truth).mean()) > 0.9
    True
    """

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-5,
        init: str = "mv",
        smoothing: float = _em.DEFAULT_SMOOTHING,
        random_state=None,
        backend: str = "auto",
        n_threads: int = 0,
    ):
        self.n_iter = n_iter
        self.tol = tol
        self.init = init
        self.smoothing = smoothing
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads

    _one_coin = False  # em_run's M-step: full confusions (OneCoinDawidSkene: one skill per worker)

    # -- the two steps (swap a backend in one place) -------------------------------
    # (the unchecked _em steps: fit validated everything once; the arrays are our own)
    def _e_step(self, r: Responses, params, log_prior: np.ndarray) -> tuple[np.ndarray, float]:
        return _em._e_step(r, self._log_conf(params, r.n_classes), log_prior, self._be, self._threads)

    def _m_step(self, r: Responses, post: np.ndarray):
        return _em._m_step(r, post, self._smooth, self._be, self._threads)

    @staticmethod
    def _log_conf(conf: np.ndarray, n_classes: int) -> np.ndarray:
        return _em.log_clip(conf)

    # -- initialisation -------------------------------------------------------------
    def _init_post(self, r: Responses) -> np.ndarray:
        scores, _, _ = _vote(r, None, self._be, self.n_threads)
        return (scores / np.diff(r.task_indptr).astype(np.float64)[:, None])[:, None, :]

    def _spectral_start(self, r: Responses):
        try:
            from ._spectral_em import spectral_init
        except ImportError as exc:
            raise NotImplementedError(
                "init='spectral' needs kdcore.crowd._spectral_em.spectral_init, which is not in this build; "
                "use init='mv'"
            ) from exc
        conf, prior = spectral_init(r, random_state=self.random_state)
        conf = np.ascontiguousarray(conf, dtype=np.float64)
        prior = np.ascontiguousarray(prior, dtype=np.float64)
        K, W = r.n_classes, r.n_workers
        if conf.shape != (W, K, K) or prior.shape != (K,) or not (np.isfinite(conf).all() and np.isfinite(prior).all()):
            raise RuntimeError(
                f"spectral_init returned confusions {conf.shape} / priors {prior.shape}, "
                f"expected ({W}, {K}, {K}) / ({K},) and finite"
            )
        return self._from_confusions(conf[None], prior[None])

    def _from_confusions(self, conf: np.ndarray, prior: np.ndarray):
        """Model parameters of this estimator from (1, W, K, K) confusions and a (1, K) prior."""
        return conf, prior

    # -- EM loop ----------------------------------------------------------------------
    def fit(self, data) -> DawidSkene:
        if is_dask_dataframe(data):  # the EM rounds on the Dask cluster (kdcore.crowd.distributed)
            return fit_dask(self, data)
        r = self._prepare(data)
        _check_params(self)
        if self.init not in ("mv", "spectral"):
            raise ValueError(f"init must be 'mv' or 'spectral', got {self.init!r}")
        self._be = self._backend()
        check_n_threads(self.n_threads)
        self._threads = int(self.n_threads)
        self._smooth = float(self.smoothing)
        if self.init == "spectral":
            params, prior = self._spectral_start(r)
            post, ll = self._e_step(r, params, _em.log_clip(prior))
        else:
            post, ll = self._init_post(r), None
        if self._be == "cpp":  # the whole loop in one compiled call (fused E-step + counts)
            post, params, prior, history, n, converged = _em._run(
                r, post, self._smooth, int(self.n_iter), float(self.tol), ll, self._threads, self._one_coin
            )
        else:
            post, params, prior, history, n, converged = self._loop(r, post, ll)
        self.n_iter_ = n
        self.converged_ = converged
        self.loss_history_ = history
        self.worker_ids_ = r.worker_ids
        self.priors_ = pd.Series(prior[0], index=pd.Index(np.asarray(r.classes_), name="label"), name="prior")
        self._store(r, params)
        self._set_posteriors(r, post[:, 0, :])
        return self

    def _loop(self, r: Responses, post: np.ndarray, ll: float | None):
        """The EM rounds step by step (the numpy backend; _em._run is the same loop compiled)."""
        history: list[float] = []
        converged = False
        n = 0
        for n in range(1, self.n_iter + 1):  # noqa: B007 (n is the round count after the loop)
            params, prior = self._m_step(r, post)
            post, new_ll = self._e_step(r, params, _em.log_clip(prior))
            history.append(-new_ll / r.n_responses)
            if ll is not None and abs(new_ll - ll) < self.tol * abs(ll):
                converged = True
                break
            ll = new_ll
        return post, params, prior, history, n, converged

    def _store(self, r: Responses, conf: np.ndarray) -> None:
        self.confusions_ = conf[0]

    def confusions_frame(self) -> pd.DataFrame:
        """``confusions_`` as a DataFrame indexed by (worker, true label), one column per answered label."""
        W, K, _ = self.confusions_.shape
        index = pd.MultiIndex.from_product([self.worker_ids_, self.classes_], names=["worker", "true_label"])
        return pd.DataFrame(
            self.confusions_.reshape(W * K, K), index=index, columns=pd.Index(self.classes_, name="label")
        )
