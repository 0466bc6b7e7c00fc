"""One-coin Dawid-Skene: one skill per worker, wrong answers spread evenly.

C[w, k, k] = s_w and C[w, k, l] = (1 - s_w) / (K - 1) for l != k. Same EM loop as
:class:`~kdcore.crowd.DawidSkene`; the M-step is the one-coin kernel
(kdcore.crowd._em.onecoin_m_step).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _em
from ._dawid_skene import DawidSkene
from ._em import EMSettings
from ._responses import Responses

__all__ = ["OneCoinDawidSkene"]


class OneCoinDawidSkene(DawidSkene):
    """Dawid-Skene EM with one reliability (skill) per worker.

    Parameters
    ----------
    n_iter, tol, init, smoothing, random_state, backend, n_threads : as in
        :class:`~kdcore.crowd.DawidSkene`; ``smoothing`` is a Beta(1 + s, 1 + s)
        pseudo-count on each skill (a worker with no answers gets skill 1/2 when s = 0).
        ``init="spectral"`` starts from the spectral confusions' prior-weighted diagonal.

    Attributes
    ----------
    skills_ : pd.Series, P(right answer) per worker
    confusions_ : ndarray (n_workers, K, K), the one-coin confusion matrices of ``skills_``
    labels_, probas_, priors_, loss_history_, n_iter_, converged_ : as DawidSkene

    Example
    -------
    >>> from kdcore.crowd import OneCoinDawidSkene, simulate
    >>> r, truth = simulate.one_coin(2000, 30, 2, answers_per_task=5, random_state=0)
    >>> oc = OneCoinDawidSkene().fit(r)
    >>> oc.skills_.shape
    (30,)
    """

    _one_coin = True

    def _m_step(self, r: Responses, post: np.ndarray, run: EMSettings) -> tuple[np.ndarray, np.ndarray]:
        return _em.m_step_unchecked(r, post, run.smoothing, run.backend, run.n_threads, one_coin=True)

    @staticmethod
    def _log_conf(skill: np.ndarray, n_classes: int, floor: float = _em.PROB_FLOOR) -> np.ndarray:
        return np.maximum(_em.onecoin_log_conf_unchecked(skill, n_classes), np.log(floor))

    def _from_confusions(self, conf: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        diag = np.einsum("twkk->twk", conf)
        skill = np.clip((diag * prior[:, None, :]).sum(-1) / prior.sum(-1, keepdims=True), 0.0, 1.0)
        return skill, prior

    def _store(self, r: Responses, skill: np.ndarray) -> None:
        self.skills_ = pd.Series(skill[0], index=pd.Index(r.worker_ids, name="worker"), name="skill")
        conf = np.exp(_em.onecoin_log_conf_unchecked(skill, r.n_classes))[0]
        self.confusions_ = conf / conf.sum(-1, keepdims=True)
