"""Dawid-Skene EM with a full K x K confusion matrix per worker (Dawid & Skene 1979).

The E-step and M-step are the typed kernels of :mod:`kdcore.crowd._em` with one
type (T = 1); this module only runs the EM loop and stores the results in
crowd-kit's shape.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._check import check_float, check_int
from . import _em, _gold
from ._base import BaseAggregator
from ._em import EMSettings
from ._majority_vote import vote
from ._responses import Responses
from ._spectral_init import spectral_init
from .distributed import fit_dask, is_dask_dataframe

__all__ = ["DawidSkene"]


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
    prob_floor : float in (0, 1), default 1e-300
        The smallest probability a confusion cell or class prior takes in the E-step
        (log(max(p, prob_floor))). The default keeps the maximum-likelihood fit: an answer
        a worker never gave for a class is then all but impossible under that class,
        while every task keeps a finite likelihood. crowd-kit instead clips the expected
        counts at 1e-10 before normalising, a soft penalty of about log(1e-10 / n) per
        such answer; ``prob_floor=1e-10`` comes close to it, ``smoothing`` > 0 is the
        principled version (a Dirichlet prior). docs/crowdkit.md compares them.

    Attributes
    ----------
    labels_, probas_, classes_ : see BaseAggregator
    confusions_ : ndarray (n_workers, K, K), confusions_[w, k, l] = P(answer l | truth k)
    worker_ids_ : pd.Index, the worker of each row of ``confusions_``
    priors_ : pd.Series, class prior indexed by class
    errors_ : pd.DataFrame, ``confusions_`` in crowd-kit's layout: rows (worker, answered label)
        for the pairs that occur, one column per true label
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
        random_state: int | np.random.Generator | None = None,
        backend: str = "auto",
        n_threads: int = 0,
        prob_floor: float = _em.PROB_FLOOR,
    ):
        self.n_iter = n_iter
        self.tol = tol
        self.init = init
        self.smoothing = smoothing
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads
        self.prob_floor = prob_floor

    _dask_model = "em"  # kdcore.crowd.distributed fits it on a Dask DataFrame
    _one_coin = False  # em_run's M-step: full confusions (OneCoinDawidSkene: one skill per worker)

    # -- the two steps (swap a backend in one place) -------------------------------
    # (the unchecked _em steps: fit validated everything once; the arrays are our own)
    def _e_step(
        self, r: Responses, params: np.ndarray, log_prior: np.ndarray, run: EMSettings
    ) -> tuple[np.ndarray, float]:
        log_conf = self._log_conf(params, r.n_classes, run.prob_floor)
        return _em.e_step_unchecked(r, log_conf, log_prior, run.backend, run.n_threads)

    def _m_step(self, r: Responses, post: np.ndarray, run: EMSettings) -> tuple[np.ndarray, np.ndarray]:
        return _em.m_step_unchecked(r, post, run.smoothing, run.backend, run.n_threads)

    @staticmethod
    def _log_conf(conf: np.ndarray, n_classes: int, floor: float = _em.PROB_FLOOR) -> np.ndarray:
        return np.log(np.maximum(conf, floor))

    # -- initialisation -------------------------------------------------------------
    def _init_post(self, r: Responses, run: EMSettings) -> np.ndarray:
        scores, _, _ = vote(r, None, run.backend, run.n_threads)
        return (scores / np.diff(r.task_indptr).astype(np.float64)[:, None])[:, None, :]

    def _spectral_start(self, r: Responses) -> tuple[np.ndarray, np.ndarray]:
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

    def _from_confusions(self, conf: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model parameters of this estimator from (1, W, K, K) confusions and a (1, K) prior."""
        return conf, prior

    # -- EM loop ----------------------------------------------------------------------
    def fit(self, data, true_labels=None, initial_error=None, *, duplicates: str = "error") -> DawidSkene:
        """Fit by EM.

        Parameters
        ----------
        data : Responses or DataFrame (task, worker, label)
        true_labels : Series or dict by task id, optional
            Gold labels: these tasks' posteriors are set to their true label after every
            E-step (and at the start), so they teach the confusions and never move.
        initial_error : DataFrame or array, optional
            Prior error counts added to the expected counts of the first M-step, as
            crowd-kit's ``errors_`` layout (indexed by (worker, label), one column per true
            label; workers or pairs not given count 0) or an array (n_workers, K, K) in
            ``confusions_``'s layout.
        duplicates : {"error", "keep_first", "keep_last", "keep_all"}
            Repeated (task, worker) answers in a DataFrame (``Responses.from_dataframe``).
        """
        if is_dask_dataframe(data):  # the EM rounds on the Dask cluster (kdcore.crowd.distributed)
            return fit_dask(self, data, true_labels=true_labels, initial_error=initial_error, duplicates=duplicates)
        if not isinstance(data, Responses):
            data = Responses.coerce(data, duplicates=duplicates)
        r = self._prepare(data)
        n_iter = check_int(self.n_iter, "n_iter", minimum=1)
        tol = check_float(self.tol, "tol", minimum=0.0)
        # (subclasses with their own __init__ may not have the parameter: the default floor)
        floor = check_float(
            getattr(self, "prob_floor", _em.PROB_FLOOR), "prob_floor", minimum=0.0, maximum=1.0, strict_min=True
        )
        gold = _gold.gold_codes(r, true_labels)
        if initial_error is not None and self._one_coin:
            raise TypeError(f"{type(self).__name__}.fit takes no initial_error (it has no confusion matrices)")
        if self.init not in ("mv", "spectral"):
            raise ValueError(f"init must be 'mv' or 'spectral', got {self.init!r}")
        run = EMSettings(self._backend(), self._threads(), _em.check_smoothing(self.smoothing), floor)
        ll: float | None
        if self.init == "spectral":
            params, prior = self._spectral_start(r)
            post, ll = self._e_step(r, params, _em.log_clip(prior), run)
        else:
            post, ll = self._init_post(r, run), None
        _gold.clamp(post, *gold)
        if initial_error is not None:  # the first M-step with the prior counts, then an E-step
            counts = _gold.class_counts(r, post[:, 0, :], run.n_threads) + _gold.initial_counts(r, initial_error)
            counts += run.smoothing
            z = counts.sum(axis=2, keepdims=True)
            conf = np.where(z > 0, counts / np.where(z > 0, z, 1.0), 1.0 / r.n_classes)
            prior = post[:, 0, :].sum(axis=0) + run.smoothing
            post, ll = self._e_step(r, conf[None], np.log(np.maximum(prior / prior.sum(), floor))[None], run)
            _gold.clamp(post, *gold)
        if run.backend == "cpp":  # the whole loop in one compiled call (fused E-step + counts when no gold)
            post, params, prior, history, n, converged = _em.run(
                r, post, run.smoothing, n_iter, tol, ll, run.n_threads, self._one_coin, prob_floor=floor, gold=gold
            )
        else:
            post, params, prior, history, n, converged = self._loop(r, post, ll, run, n_iter, tol, gold)
        self.n_iter_ = n
        self.converged_ = converged
        self.loss_history_ = history
        self.worker_ids_ = r.worker_ids
        self.priors_ = pd.Series(prior[0], index=pd.Index(np.asarray(r.classes_), name="label"), name="prior")
        self._store(r, params)
        self._set_posteriors(r, post[:, 0, :])
        if getattr(self, "confusions_", None) is not None and self.confusions_.shape == (
            r.n_workers,
            r.n_classes,
            r.n_classes,
        ):
            self.errors_ = _gold.errors_frame(r, self.confusions_, r.worker_ids, np.asarray(r.classes_))
        return self

    def _loop(
        self,
        r: Responses,
        post: np.ndarray,
        ll: float | None,
        run: EMSettings,
        n_iter: int,
        tol: float,
        gold: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float], int, bool]:
        """The EM rounds step by step (the numpy backend; _em.run is the same loop compiled)."""
        history: list[float] = []
        converged = False
        n = 0
        params = prior = np.empty(0)
        for n in range(1, n_iter + 1):  # noqa: B007 (n is the round count after the loop)
            params, prior = self._m_step(r, post, run)
            post, new_ll = self._e_step(r, params, np.log(np.maximum(prior, run.prob_floor)), run)
            if gold is not None:
                _gold.clamp(post, *gold)
            history.append(-new_ll / r.n_responses)
            if ll is not None and abs(new_ll - ll) < tol * abs(ll):
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
