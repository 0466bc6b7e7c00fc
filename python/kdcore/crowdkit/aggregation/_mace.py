"""crowd-kit's MACE on kdcore's compiled MACE kernels (``mace_e_step``, ``mace_counts``).

The arithmetic is crowd-kit 1.4.2's, step for step:

- each restart draws the spamming and strategy rows from ``scipy.stats.uniform(1, 1 +
  default_noise)`` with ``random_state`` (crowd-kit passes the same seed to every draw, so
  with an int seed every restart is the same run: the drop-in runs it once), normalised;
- E-step: the label posteriors (the compiled kernel works in log space; crowd-kit multiplies
  probabilities, which is the same number unless a task has hundreds of answers and the
  product underflows);
- M-step: the expected (spam, know) counts per worker and the expected strategy counts per
  (worker, label), normalised with ``0.01 / n_labels`` added (``method="em"``) or by
  ``exp(digamma(counts + prior))`` (``method="vb"``, Beta(``alpha``, ``beta``) and
  Dirichlet(10) priors). crowd-kit reads the strategy counts from a table sorted by worker
  and label (``groupby(["worker", "label"]).sum().unstack()``) and uses its rows and columns
  as if they were in order of first appearance; the drop-in does the same, so ``thetas_``
  and the posteriors are crowd-kit's numbers (``kdcore.crowd.MACE`` is the model itself);
- the restart with the largest ``sum(log(marginal + 1e-8))`` over tasks is kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.stats as sps
from scipy.special import digamma

from ..._check import check_float, check_int
from ...backends import _core
from .._frame import Coded, check_frame, code_answers, sorted_order
from ._majority_vote import estimator_repr

__all__ = ["MACE"]

_THREADS = 0  # kdcore's thread policy (kdcore.set_num_threads); results do not depend on it


def _normalize(x: np.ndarray, smoothing: float) -> np.ndarray:
    """crowd-kit's ``normalize``: rows of ``x + smoothing`` over their sums (0 where a sum is ~0)."""
    norm = (x + smoothing).sum(axis=1)[:, None]
    return np.divide(x + smoothing, norm, out=np.zeros_like(x), where=~np.isclose(norm, 0.0))


def _variational_normalize(x: np.ndarray, hparams: np.ndarray) -> np.ndarray:
    """crowd-kit's ``variational_normalize``: exp(digamma(x + h)) / exp(digamma(sum(x + h)))."""
    norm = np.exp(digamma((x + hparams).sum(axis=1)))[:, None]
    return np.divide(np.exp(digamma(x + hparams)), norm, out=np.zeros_like(x), where=~np.isclose(norm, 0.0))


def _log_marginal(c: Coded, post: np.ndarray, spam: np.ndarray, thetas: np.ndarray) -> float:
    """crowd-kit's restart score: sum over tasks of log(P(task's answers) + 1e-8).

    P(answers) is read back from the log-space posteriors: for each task's most likely label
    k, log P(answers) = log P(answers, y = k) - log P(y = k | answers).
    """
    r = c.responses
    L = r.n_classes
    k0 = np.argmax(post, axis=1)
    g = spam[r.worker, 0] * thetas[r.worker, r.label] + spam[r.worker, 1] * (r.label == k0[r.task])
    with np.errstate(divide="ignore"):
        log_joint = np.bincount(r.task, weights=np.log(g), minlength=r.n_tasks) - np.log(L)
        log_marg = log_joint - np.log(post[np.arange(r.n_tasks), k0])
    return float(np.sum(np.log(np.exp(log_marg) + 1e-8)))


class MACE:
    """crowd-kit 1.4.2's MACE (Multi-Annotator Competence Estimation), on kdcore's kernels.

    Parameters
    ----------
    n_restarts : int, default 10
        Random initialisations; the one with the best log marginal likelihood is kept.
        With an int ``random_state`` every restart draws the same start (crowd-kit re-seeds
        each draw), so one run gives the result of all of them.
    n_iter : int, default 50
        EM (or variational Bayes) rounds per restart.
    method : {"vb", "em"}, default "vb"
    smoothing : float, default 0.1
        Kept for crowd-kit's signature; like crowd-kit, the M-step adds ``smoothing_ = 0.01 / n_labels``.
    default_noise : float, default 0.5
        The start is drawn uniformly on [1, 2 + default_noise], then normalised.
    alpha, beta : float, default 0.5
        The Beta prior on each worker's (spamming, knowing) probabilities (``method="vb"``).
    random_state : int, numpy RandomState or Generator, or None, default 0
    verbose : int, default 0
        Kept for crowd-kit's signature (no progress bars).

    Attributes
    ----------
    labels_ : Series (task) named "agg_label", tasks in order of first appearance
    probas_ : DataFrame (task x label), both in order of first appearance
    spamming_ : ndarray (workers, 2): each worker's (spamming, knowing) probabilities
    thetas_ : ndarray (workers, labels): each worker's answer distribution when spamming
    theta_priors_, strategy_priors_ : ndarray, the priors (``method="vb"`` only)
    smoothing_ : float

    Example
    -------
    >>> import pandas as pd
    >>> from kdcore.crowdkit.aggregation import MACE
    >>> df = pd.DataFrame({"task": [1, 1, 1, 2, 2, 2], "worker": ["a", "b", "c"] * 2, "label": [0, 0, 1, 1, 1, 1]})
    >>> MACE().fit_predict(df).tolist()
    [0, 1]
    """

    _params = (
        "n_restarts",
        "n_iter",
        "method",
        "smoothing",
        "default_noise",
        "alpha",
        "beta",
        "random_state",
        "verbose",
    )

    def __init__(
        self,
        n_restarts: int = 10,
        n_iter: int = 50,
        method: str = "vb",
        smoothing: float = 0.1,
        default_noise: float = 0.5,
        alpha: float = 0.5,
        beta: float = 0.5,
        random_state: Any = 0,
        verbose: int = 0,
    ) -> None:
        self.n_restarts = n_restarts
        self.n_iter = n_iter
        self.method = method
        self.smoothing = smoothing
        self.default_noise = default_noise
        self.alpha = alpha
        self.beta = beta
        self.random_state = random_state
        self.verbose = verbose

    def __repr__(self) -> str:
        return estimator_repr(self, self._params)

    def _check(self) -> tuple[int, int, float, float, float]:
        n_restarts = check_int(self.n_restarts, "n_restarts", minimum=1)
        n_iter = check_int(self.n_iter, "n_iter", minimum=-(2**62))  # crowd-kit runs no round for n_iter <= 0
        if self.method not in ("vb", "em"):
            raise ValueError(f"method must be 'vb' or 'em', got {self.method!r}")
        noise = check_float(self.default_noise, "default_noise", minimum=-1.0, strict_min=True)
        alpha = check_float(self.alpha, "alpha")
        beta = check_float(self.beta, "beta")
        rs = self.random_state
        if not (
            rs is None
            or isinstance(rs, (np.random.RandomState, np.random.Generator))
            or (isinstance(rs, (int, np.integer)) and not isinstance(rs, bool))
        ):
            raise TypeError(f"random_state must be an int, a numpy RandomState or Generator, or None, got {rs!r}")
        return n_restarts, n_iter, noise, alpha, beta

    def fit(self, data: pd.DataFrame) -> MACE:
        """Fit by EM or variational Bayes with restarts (crowd-kit's ``MACE.fit``); returns self."""
        n_restarts, n_iter, noise, alpha, beta = self._check()
        if len(check_frame(data)) == 0:
            raise ValueError("data has no rows (crowd-kit's MACE fails on an empty table too)")
        c = code_answers(data)
        if len(c.nan_task):
            raise ValueError(
                f"MACE: {len(c.nan_task)} answers have no label (NaN); crowd-kit reads them as the last label's "
                "strategy, so drop them first"
            )
        r = c.responses
        W, L = r.n_workers, r.n_classes
        self.smoothing_ = 0.01 / L
        vb = self.method == "vb"
        if vb:
            self.theta_priors_ = np.empty((W, 2))
            self.theta_priors_[:, 0] = alpha
            self.theta_priors_[:, 1] = beta
            self.strategy_priors_ = np.full((W, L), 10.0)
        # crowd-kit's strategy counts come sorted by (worker, label) and are used as they come
        by_worker = sorted_order(c.workers)
        by_label = sorted_order(c.classes)
        same_start = isinstance(self.random_state, (int, np.integer))
        uniform = sps.uniform(1, 1 + noise)
        best_ll, best = -np.inf, None
        for _ in range(1 if same_start else n_restarts):
            spam = uniform.rvs(size=(W, 2), random_state=self.random_state)
            thetas = uniform.rvs(size=(W, L), random_state=self.random_state)
            spam = spam / spam.sum(axis=1, keepdims=True)
            thetas = np.ascontiguousarray(thetas / thetas.sum(axis=1, keepdims=True))
            post = self._e_step(c, spam, thetas)
            for _ in range(n_iter):
                know, sc = self._counts(c, post, spam, thetas)
                sc = sc[np.ix_(by_worker, by_label)]
                if vb:
                    spam = _variational_normalize(know, self.theta_priors_)
                    thetas = _variational_normalize(sc, self.strategy_priors_)
                else:
                    spam = _normalize(know, self.smoothing_)
                    thetas = _normalize(sc, self.smoothing_)
                spam, thetas = np.ascontiguousarray(spam), np.ascontiguousarray(thetas)
                post = self._e_step(c, spam, thetas)
            ll = _log_marginal(c, post, spam, thetas) if not same_start else 0.0
            if best is None or ll > best_ll:
                best_ll, best = ll, (spam, thetas, post)
        assert best is not None  # n_restarts >= 1
        self.spamming_, self.thetas_, post = best
        index = pd.Index(c.tasks, name="task")
        self.probas_ = pd.DataFrame(post, index=index, columns=pd.Index(c.classes, name=None))
        self.labels_ = pd.Series(c.classes.take(np.argmax(post, axis=1)), index=index, name="agg_label")
        return self

    @staticmethod
    def _e_step(c: Coded, spam: np.ndarray, thetas: np.ndarray) -> np.ndarray:
        r = c.responses
        if r.n_classes == 1:  # one label: every task has it
            return np.ones((r.n_tasks, 1))
        post, _ = _core.mace_e_step(r.task_indptr, r.task_worker, r.task_label, r.n_classes, spam, thetas, _THREADS)
        return post

    @staticmethod
    def _counts(c: Coded, post: np.ndarray, spam: np.ndarray, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected (spam, know) counts per worker and strategy counts per (worker, label)."""
        r = c.responses
        if r.n_classes == 1:  # every answer is right: P(spam) = spamming share of the answer's probability
            g = spam[r.worker, 0] * thetas[r.worker, 0]
            d = g + spam[r.worker, 1]
            p_spam, p_know = g / d, spam[r.worker, 1] / d
            know = np.stack([np.bincount(r.worker, p_spam, r.n_workers), np.bincount(r.worker, p_know, r.n_workers)], 1)
            return know, know[:, :1].copy()
        return _core.mace_counts(
            r.worker_indptr, r.worker_task, r.worker_label, r.n_classes, post, spam, thetas, _THREADS
        )

    def fit_predict(self, data: pd.DataFrame) -> pd.Series:
        """Fit and return ``labels_``."""
        return self.fit(data).labels_

    def fit_predict_proba(self, data: pd.DataFrame) -> pd.DataFrame:
        """Fit and return ``probas_``."""
        return self.fit(data).probas_
