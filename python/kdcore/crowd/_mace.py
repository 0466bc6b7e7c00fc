"""MACE, Multi-Annotator Competence Estimation (Hovy, Berg-Kirkpatrick,
Vaswani, Hovy, "Learning whom to trust with MACE", NAACL-HLT 2013); multi-class.

Each task's true label is uniform over K classes. On each task worker i spams
with probability 1 - theta_i, answering from a strategy distribution xi_i;
otherwise (probability theta_i) it answers the truth:
    P(a | y = k) = (1 - theta_i) xi_ia + theta_i [a == k].

Fitting (the same scheme as crowd-kit's MACE and the original MACE tool):
``n_init`` random initialisations (rows uniform on [1, 2 + default_noise],
normalised: crowd-kit's draw), each followed by ``n_iter`` rounds of
M-step + E-step; the restart with the best log marginal likelihood is kept.
- E-step (compiled kernel ``mace_e_step``, log space with a max shift, unlike
  the reference implementation's products of probabilities, which underflow on
  tasks with many answers) gives the label posteriors and the log marginal
  likelihood;
- expected counts (``mace_counts``, worker-major pass): for an answer a with
  posterior q = P(y = a), P(spam) = (1 - q) + q g/(g + theta), P(know) = q theta/(g + theta),
  g = (1 - theta) xi_a;
- M-step: ``method="em"``: counts + ``smoothing`` normalised (default 0.01/K,
  the value crowd-kit actually uses); ``method="vb"`` (default, variational
  Bayes): exp(digamma(counts + prior)) / exp(digamma(sum(counts + prior))) with
  Beta(``alpha``, ``beta``) priors on (spam, know) and a symmetric Dirichlet(10)
  on xi.

Unlike crowd-kit (which re-seeds every restart with the same seed, so its
restarts are identical), kdcore's restarts draw from one seeded generator.

Fitted: ``skills_`` (theta_i = P(knows), by worker, normalised), ``spam_strategies_``
(worker x class, rows xi_i normalised), ``log_marginal_likelihood_``,
``loss_history_`` (log marginal likelihood per answer, each round of the best
restart), ``n_iter_``, ``labels_``, ``probas_``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import digamma

from .._check import check_float, check_int
from ..backends import _core
from . import _reference_worker_models as ref
from ._base import BaseAggregator
from ._gold import clamp, gold_codes
from ._progress import progress_range
from ._responses import Responses

__all__ = ["MACE"]


def _normalize(x: np.ndarray, smoothing: float) -> np.ndarray:
    x = x + smoothing
    s = x.sum(axis=1, keepdims=True)
    return np.divide(x, s, out=np.full_like(x, 1.0 / x.shape[1]), where=s > 0)


def _vb_normalize(x: np.ndarray, prior: float | np.ndarray) -> np.ndarray:
    x = x + prior
    return np.exp(digamma(x) - digamma(x.sum(axis=1, keepdims=True)))


class MACE(BaseAggregator):
    """MACE spammer model, EM or variational Bayes (multi-class).

    Parameters
    ----------
    n_init : int, default 10
        Random initialisations (restarts); the one with the best log marginal likelihood is kept.
    n_iter : int, default 50
    method : {"vb", "em"}, default "vb"
    smoothing : float or None, default None (= 0.01 / K), for method="em"
    default_noise : float, default 0.5 (spread of the random initialisation)
    alpha, beta : float, default 0.5, 0.5 (Beta prior on (spam, know), method="vb")
    random_state : int, Generator or None, default None
        Seed of the restarts' random initialisations (pass an int for a reproducible fit).
    backend : {"auto", "cpp", "numpy"}
    n_threads : int, default 0
    true_labels : pd.Series or dict (task id -> label), optional
        Gold tasks: their posterior is their one-hot label after every E-step.
    progress : bool, default False (a tqdm bar over restarts when stderr is a terminal)

    Examples
    --------
    >>> from kdcore.crowd import datasets
    >>> r, truth = datasets.load("dog")                   # doctest: +SKIP
    >>> MACE().fit(r).score(r, truth)                     # doctest: +SKIP
    """

    def __init__(
        self,
        n_init: int = 10,
        n_iter: int = 50,
        method: str = "vb",
        smoothing: float | None = None,
        default_noise: float = 0.5,
        alpha: float = 0.5,
        beta: float = 0.5,
        random_state: int | np.random.Generator | None = None,
        backend: str = "auto",
        n_threads: int = 0,
        progress: bool = False,
        true_labels=None,
    ):
        self.n_init = n_init
        self.n_iter = n_iter
        self.method = method
        self.smoothing = smoothing
        self.default_noise = default_noise
        self.alpha = alpha
        self.beta = beta
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads
        self.progress = progress
        self.true_labels = true_labels

    @staticmethod
    def _e_step(
        r: Responses, spam: np.ndarray, strat: np.ndarray, be: str, nt: int, gold: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, float]:
        if be == "cpp":
            post, ll = _core.mace_e_step(r.task_indptr, r.task_worker, r.task_label, r.n_classes, spam, strat, nt)
        else:
            post, ll = ref.mace_e_step(r.task_indptr, r.task_worker, r.task_label, r.n_classes, spam, strat)
        return clamp(post, *gold), ll  # gold tasks keep their label (kdcore.crowd._gold)

    @staticmethod
    def _counts(
        r: Responses, post: np.ndarray, spam: np.ndarray, strat: np.ndarray, be: str, nt: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if be == "cpp":
            return _core.mace_counts(r.worker_indptr, r.worker_task, r.worker_label, r.n_classes, post, spam, strat, nt)
        return ref.mace_counts(r.worker_indptr, r.worker_task, r.worker_label, r.n_classes, post, spam, strat)

    def fit(self, data: Responses | pd.DataFrame) -> MACE:
        n_init = check_int(self.n_init, "n_init", minimum=1)
        n_iter = check_int(self.n_iter, "n_iter", minimum=0)
        if self.method not in ("vb", "em"):
            raise ValueError(f"method must be 'vb' or 'em', got {self.method!r}")
        noise = check_float(self.default_noise, "default_noise", minimum=0.0)
        a_prior = check_float(self.alpha, "alpha", minimum=0.0, strict_min=True)
        b_prior = check_float(self.beta, "beta", minimum=0.0, strict_min=True)
        nt = self._threads()
        be = self._backend()
        r = self._prepare(data)
        gold = gold_codes(r, self.true_labels)
        K, W = r.n_classes, r.n_workers
        smoothing = 0.01 / K if self.smoothing is None else check_float(self.smoothing, "smoothing", minimum=0.0)
        theta_prior = np.array([[a_prior, b_prior]])
        rng = np.random.default_rng(self.random_state)
        best: tuple[float, np.ndarray | None, np.ndarray | None, list[float]] = (-np.inf, None, None, [])
        for _ in progress_range(n_init, self.progress, "MACE restarts"):
            spam = rng.uniform(1.0, 2.0 + noise, size=(W, 2))  # crowd-kit: scipy uniform(loc=1, scale=1 + noise)
            strat = rng.uniform(1.0, 2.0 + noise, size=(W, K))
            spam /= spam.sum(axis=1, keepdims=True)
            strat /= strat.sum(axis=1, keepdims=True)
            post, ll = self._e_step(r, spam, strat, be, nt, gold)
            history = []
            for _ in range(n_iter):
                know, sc = self._counts(r, post, spam, strat, be, nt)
                if self.method == "vb":
                    spam = _vb_normalize(know, theta_prior)
                    strat = _vb_normalize(sc, 10.0)
                else:
                    spam = _normalize(know, smoothing)
                    strat = _normalize(sc, smoothing)
                spam, strat = np.ascontiguousarray(spam), np.ascontiguousarray(strat)
                post, ll = self._e_step(r, spam, strat, be, nt, gold)
                history.append(float(ll) / r.n_responses)
            if ll > best[0] or best[1] is None:
                best = (ll, spam.copy(), strat.copy(), history)
        _, best_spam, best_strat, history = best
        assert best_spam is not None and best_strat is not None  # n_init >= 1 restarts ran
        spam, strat = best_spam, best_strat
        post, ll = self._e_step(r, spam, strat, be, nt, gold)
        self._set_posteriors(r, post)
        workers = pd.Index(r.worker_ids, name="worker")
        theta = spam[:, 1] / spam.sum(axis=1)
        self.skills_ = pd.Series(theta, index=workers, name="skill")
        self.spam_strategies_ = pd.DataFrame(
            strat / strat.sum(axis=1, keepdims=True), index=workers, columns=pd.Index(self.classes_, name="label")
        )
        self.log_marginal_likelihood_ = float(ll)
        self.loss_history_ = history
        self.n_iter_ = n_iter
        return self
