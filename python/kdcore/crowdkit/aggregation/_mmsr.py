"""crowd-kit's MMSR on kdcore's sparse M-MSR (kdcore.crowd._mmsr)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..._check import check_float, check_int
from ...crowd._mmsr import mmsr_skills
from ...crowd._responses import Responses
from .._frame import code_answers
from ._majority_vote import MajorityVote, estimator_repr

__all__ = ["MMSR"]


class MMSR:
    """crowd-kit 1.4.2's MMSR (matrix mean-subsequence-reduced): robust worker skills, then a weighted vote.

    Parameters
    ----------
    n_iter : int, default 10000
    tol : float, default 1e-10
    random_state : int or None, default 0
        Seed of the random start (scipy.stats.uniform, as crowd-kit).

    Attributes
    ----------
    skills_ : Series (worker) named "skill", workers in order of first appearance
    loss_history_ : list of float
    labels_, scores_ : after ``predict``/``predict_score`` (a majority vote weighted by ``skills_``)
    """

    _params = ("n_iter", "tol", "random_state")

    def __init__(self, n_iter: int = 10000, tol: float = 1e-10, random_state: int | None = 0) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.random_state = random_state

    def __repr__(self) -> str:
        return estimator_repr(self, self._params)

    def fit(self, data: pd.DataFrame) -> MMSR:
        """Estimate the skills; returns self."""
        n_iter = check_int(self.n_iter, "n_iter", minimum=-(2**31))
        tol = check_float(self.tol, "tol")
        c = code_answers(data)
        if len(c.nan_task):
            raise ValueError("MMSR: the labels have missing values (NaN); drop those answers first")
        r = c.responses
        # crowd-kit's observation matrix keeps the last answer of a worker to a task
        key = np.asarray(r.task, np.int64) * r.n_workers + r.worker
        _, last = np.unique(key[::-1], return_index=True)
        keep = np.sort(len(key) - 1 - last)
        one = Responses._from_codes(
            np.ascontiguousarray(r.task[keep]),
            np.ascontiguousarray(r.worker[keep]),
            np.ascontiguousarray(r.label[keep]),
            r.task_ids,
            r.worker_ids,
            np.asarray(r.classes_),
        )
        skills, history = mmsr_skills(one, r.n_tasks, r.n_classes, max(n_iter, 0), tol, self.random_state)
        self.skills_ = pd.Series(skills, index=pd.Index(c.workers, name="worker"), name="skill")
        self.loss_history_ = history
        return self

    def _apply(self, data: pd.DataFrame) -> MMSR:
        mv = MajorityVote().fit(data, skills=self.skills_)
        self.labels_ = mv.labels_
        self.scores_ = mv.probas_
        return self

    def predict(self, data: pd.DataFrame) -> pd.Series:
        """Labels by the majority vote weighted by ``skills_``."""
        return self._apply(data).labels_

    def predict_score(self, data: pd.DataFrame) -> pd.DataFrame:
        """Label scores (shares of the skill-weighted vote)."""
        return self._apply(data).scores_

    def fit_predict(self, data: pd.DataFrame) -> pd.Series:
        return self.fit(data).predict(data)

    def fit_predict_score(self, data: pd.DataFrame) -> pd.DataFrame:
        return self.fit(data).predict_score(data)
