"""Votes weighted by worker skills: Wawa, ZeroBasedSkill and GoldMajorityVote.

Each estimates one skill per worker, s_w = the share of the worker's answers that agree
with a reference label, and labels every task by the vote weighted by the skills,
score[j, k] = sum over the answers (j, w, k) of s_w, on the compiled vote kernel
(``vote_scores``, kdcore/crowd.hpp). The reference differs (docs/maths.md B.4):

- :class:`Wawa` (worker agreement with aggregate): the plain majority vote;
- :class:`ZeroBasedSkill`: the skill-weighted vote itself, found by ``n_iter`` damped
  steps s <- s + lr (agreement(s) - s) from s = 1 / K + eps, the step shrinking by
  ``lr_reduce_factor`` every ``lr_steps_to_reduce`` rounds;
- :class:`GoldMajorityVote`: the known true labels of some tasks (gold tasks keep them).

``probas_`` is each class's share of the task's skill weight (uniform where every voter
has skill 0). Every answer counts once, repeated ones included when ``duplicates="keep_all"``
(crowd-kit counts identical repeated answers once in the skills). ``predict`` votes on
new data with the fitted skills; a worker without one gets ``default_skill``, or, when
that is None, is refused by name.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._check import check_float, check_int
from . import _gold
from ._base import BaseAggregator
from ._majority_vote import pick_winners, vote
from ._responses import Responses

__all__ = ["Wawa", "ZeroBasedSkill", "GoldMajorityVote", "agreement"]


def agreement(r: Responses, reference: np.ndarray, on: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per worker: (answers equal to ``reference[task]``, answers counted), over the tasks where ``on`` holds.

    ``reference`` is a class code per task; ``on`` a boolean mask of tasks (all by default).
    One pass over the worker-major view, summed per worker with ``np.add.reduceat`` (every
    worker of a ``Responses`` has an answer, so no segment is empty); no loop over workers.
    """
    starts = r.worker_indptr[:-1]
    right = r.worker_label == reference[r.worker_task]
    if on is None:
        n = np.diff(r.worker_indptr).astype(np.float64)
    else:
        keep = on[r.worker_task]
        right &= keep
        n = np.add.reduceat(keep, starts, dtype=np.int64).astype(np.float64)
    return np.add.reduceat(right, starts, dtype=np.int64).astype(np.float64), n


def _shares(scores: np.ndarray) -> np.ndarray:
    """Each class's share of the task's total weight; uniform where the total is 0."""
    z = scores.sum(axis=1, keepdims=True)
    K = scores.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(z > 0, scores / np.where(z > 0, z, 1.0), 1.0 / K)


def _show(values: Any) -> str:
    values = list(values)
    head = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values[:5])
    return head + (f", ... ({len(values)} in all)" if len(values) > 5 else "")


class SkillVote(BaseAggregator):
    """What the skill-weighted votes share: the weighted vote, ``predict`` and the skill lookup (not used directly)."""

    skills_: pd.Series
    scores_: np.ndarray
    tie_break: str
    random_state: Any
    default_skill: float | None

    def _coerce(self, data: Any, duplicates: str) -> Responses:
        if isinstance(data, Responses):
            return self._prepare(data)
        if isinstance(data, pd.DataFrame):
            return self._prepare(Responses.coerce(data, duplicates=duplicates))
        raise TypeError(
            f"{type(self).__name__} expects a kdcore.crowd.Responses or a pandas DataFrame with task/worker/label "
            f"columns, got {type(data).__name__}"
        )

    def _check_common(self) -> float | None:
        """Validate the parameters every skill vote has; returns the default skill (or None)."""
        if self.tie_break not in ("random", "first"):
            raise ValueError(f"tie_break must be 'random' or 'first', got {self.tie_break!r}")
        if self.default_skill is None:
            return None
        return check_float(self.default_skill, "default_skill")

    def _proba(self, scores: np.ndarray) -> np.ndarray:
        return _shares(scores)

    def _winners(self, r: Responses, skill: np.ndarray, rng: Any) -> np.ndarray:
        """Class code of each task's winner of the vote weighted by ``skill`` (no posteriors)."""
        scores, best, n_tied = vote(r, skill, self._backend(), self._threads())
        return pick_winners(scores, best, n_tied, self.tie_break, rng)

    def _weighted_vote(self, r: Responses, skill: np.ndarray, rng: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores, class code of each task's winner, posteriors) of the vote weighted by ``skill``."""
        scores, best, n_tied = vote(r, np.ascontiguousarray(skill, dtype=np.float64), self._backend(), self._threads())
        labels = pick_winners(scores, best, n_tied, self.tie_break, rng)
        return scores, labels, self._proba(scores)

    def _skills_for(self, r: Responses, default: float | None) -> np.ndarray:
        """The fitted skill of each worker of ``r`` (``default`` for the others, or a ValueError naming them)."""
        if getattr(self, "skills_", None) is None:
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit before predict")
        skill = self.skills_.reindex(pd.Index(r.worker_ids)).to_numpy(dtype=np.float64, copy=True)
        missing = np.isnan(skill)
        if missing.any():
            if default is None:
                raise ValueError(
                    f"{type(self).__name__} has no skill for workers {_show(r.worker_ids[missing])}; "
                    "pass default_skill= to give such workers a skill"
                )
            skill[missing] = default
        return skill

    def _store_vote(self, r: Responses, skill: np.ndarray, rng: Any) -> None:
        scores, labels, proba = self._weighted_vote(r, skill, rng)
        self.scores_ = scores
        self._set_posteriors(r, proba, labels)

    def _skill_series(self, r: Responses, skill: np.ndarray, workers: np.ndarray | None = None) -> pd.Series:
        ids = pd.Index(r.worker_ids, name="worker")
        if workers is not None:
            ids, skill = ids[workers], skill[workers]
        return pd.Series(np.asarray(skill, dtype=np.float64), index=ids, name="skill")

    # -- public API -----------------------------------------------------------------
    def predict_proba(self, data: Responses | pd.DataFrame, *, duplicates: str = "error") -> pd.DataFrame:
        """Posteriors of the tasks of ``data`` by the vote weighted by the fitted ``skills_``.

        Parameters
        ----------
        data : Responses or DataFrame (task, worker, label)
            New answers; its classes are the columns (the skills do not depend on the class).
        duplicates : {"error", "keep_first", "keep_last", "keep_all"}
            Repeated (task, worker) answers in a DataFrame.

        Returns
        -------
        DataFrame tasks x classes (rows sum to one).
        """
        return self._predict(data, duplicates)[1]

    def predict(self, data: Responses | pd.DataFrame, *, duplicates: str = "error") -> pd.Series:
        """Labels of the tasks of ``data`` by the vote weighted by the fitted ``skills_`` (ties as ``tie_break``)."""
        return self._predict(data, duplicates)[0]

    def _predict(self, data: Any, duplicates: str) -> tuple[pd.Series, pd.DataFrame]:
        if getattr(self, "skills_", None) is None:
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit before predict")
        default = self._check_common()
        r = self._coerce(data, duplicates)
        skill = self._skills_for(r, default)
        _, labels, proba = self._weighted_vote(r, skill, self.random_state)
        index = pd.Index(r.task_ids, name="task")
        classes = np.asarray(r.classes_)
        return (
            pd.Series(classes[labels], index=index, name="agg_label"),
            pd.DataFrame(proba, index=index, columns=pd.Index(classes, name="label")),
        )


class Wawa(SkillVote):
    """Worker agreement with aggregate: each worker's vote weighs its agreement with the majority vote.

    Parameters
    ----------
    tie_break : {"random", "first"}
        Ties of both votes: "random" draws among the tied classes (seeded by
        ``random_state``), "first" takes the first in label order.
    default_skill : float or None
        The skill ``predict`` gives a worker absent from the fit; None refuses such workers.
    random_state : int, Generator or None
    backend : {"auto", "cpp", "numpy"}
    n_threads : int, 0 = default

    Attributes
    ----------
    skills_ : Series (worker) named "skill", the share of each worker's answers equal
        to the majority vote's label
    labels_, probas_ (shares of the skill weight), classes_, scores_ (ndarray n_tasks x K
        of skill-weighted votes)

    Example
    -------
    >>> from kdcore.crowd import Wawa, simulate
    >>> r, truth = simulate.one_coin(500, 20, 2, answers_per_task=5, random_state=0)
    >>> Wawa(random_state=0).fit(r).skills_.shape
    (20,)
    """

    def __init__(
        self,
        tie_break: str = "random",
        default_skill: float | None = None,
        random_state=None,
        backend: str = "auto",
        n_threads: int = 0,
    ):
        self.tie_break = tie_break
        self.default_skill = default_skill
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads

    def fit(self, data: Responses | pd.DataFrame, *, duplicates: str = "error") -> Wawa:
        """Skills against the majority vote, then the skill-weighted vote; returns self.

        Parameters
        ----------
        data : Responses or DataFrame (task, worker, label)
        duplicates : {"error", "keep_first", "keep_last", "keep_all"}
            Repeated (task, worker) answers in a DataFrame (``Responses.from_dataframe``).
        """
        self._check_common()
        r = self._coerce(data, duplicates)
        rng = np.random.default_rng(self.random_state)
        scores, best, n_tied = vote(r, None, self._backend(), self._threads())
        mv = pick_winners(scores, best, n_tied, self.tie_break, rng)
        right, n = agreement(r, mv)
        skill = right / n  # every worker of r has at least one answer
        self.skills_ = self._skill_series(r, skill)
        self._store_vote(r, skill, rng)
        return self

    def fit_predict(self, data: Responses | pd.DataFrame, *, duplicates: str = "error") -> pd.Series:
        """Fit and return ``labels_``."""
        return self.fit(data, duplicates=duplicates).labels_

    def fit_predict_proba(self, data: Responses | pd.DataFrame, *, duplicates: str = "error") -> pd.DataFrame:
        """Fit and return ``probas_``."""
        return self.fit(data, duplicates=duplicates).probas_


class ZeroBasedSkill(Wawa):
    """Skills that agree with their own weighted vote, found by damped fixed-point steps.

    From s = 1 / K + ``eps`` (K classes), each of ``n_iter`` rounds votes with the skills
    and moves them towards each worker's agreement with that vote:
    s <- s + lr (agreement - s); ``lr`` starts at ``lr_init`` and is multiplied by
    ``lr_reduce_factor`` at every round whose number divides by ``lr_steps_to_reduce``
    (crowd-kit's schedule).

    Parameters
    ----------
    n_iter : int, default 100
    lr_init : float, default 1.0
    lr_steps_to_reduce : int, default 20
    lr_reduce_factor : float, default 0.5
    eps : float, default 1e-5
    tie_break, default_skill, random_state, backend, n_threads : as in :class:`Wawa`
        (one seeded draw per round for ``tie_break="random"``).

    Attributes
    ----------
    skills_ : Series (worker) named "skill"
    labels_, probas_, classes_, scores_ : the vote weighted by the final skills

    Example
    -------
    >>> from kdcore.crowd import ZeroBasedSkill, simulate
    >>> r, truth = simulate.one_coin(500, 20, 2, answers_per_task=5, random_state=0)
    >>> ZeroBasedSkill(random_state=0).fit(r).labels_.shape
    (500,)
    """

    def __init__(
        self,
        n_iter: int = 100,
        lr_init: float = 1.0,
        lr_steps_to_reduce: int = 20,
        lr_reduce_factor: float = 0.5,
        eps: float = 1e-5,
        tie_break: str = "random",
        default_skill: float | None = None,
        random_state=None,
        backend: str = "auto",
        n_threads: int = 0,
    ):
        self.n_iter = n_iter
        self.lr_init = lr_init
        self.lr_steps_to_reduce = lr_steps_to_reduce
        self.lr_reduce_factor = lr_reduce_factor
        self.eps = eps
        self.tie_break = tie_break
        self.default_skill = default_skill
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads

    def fit(self, data: Responses | pd.DataFrame, *, duplicates: str = "error") -> ZeroBasedSkill:
        """Run the ``n_iter`` rounds, then the vote with the final skills; returns self.

        Parameters
        ----------
        data : Responses or DataFrame (task, worker, label)
        duplicates : {"error", "keep_first", "keep_last", "keep_all"}
        """
        n_iter = check_int(self.n_iter, "n_iter", minimum=0)
        lr = check_float(self.lr_init, "lr_init")
        steps = check_int(self.lr_steps_to_reduce, "lr_steps_to_reduce", minimum=1)
        factor = check_float(self.lr_reduce_factor, "lr_reduce_factor")
        eps = check_float(self.eps, "eps")
        self._check_common()
        r = self._coerce(data, duplicates)
        rng = np.random.default_rng(self.random_state)
        skill = np.full(r.n_workers, 1.0 / r.n_classes + eps)
        n = np.diff(r.worker_indptr).astype(np.float64)
        for iteration in range(1, n_iter + 1):
            if iteration % steps == 0:
                lr *= factor
            winner = self._winners(r, skill, rng)
            right, _ = agreement(r, winner)
            skill = skill + lr * (right / n - skill)
        if not np.all(np.isfinite(skill)):
            raise ValueError(f"ZeroBasedSkill: the skills left the finite range with lr_init={self.lr_init}; lower it")
        self.skills_ = self._skill_series(r, skill)
        self._store_vote(r, skill, rng)
        return self


class GoldMajorityVote(SkillVote):
    """Each worker's vote weighs its accuracy on the gold tasks (tasks with a known label).

    Parameters
    ----------
    tie_break : {"random", "first"}
    default_skill : float or None
        The skill of a worker who answered no gold task (in ``fit`` and ``predict``);
        None refuses such workers with a ValueError naming them.
    random_state, backend, n_threads : as in :class:`Wawa`

    Attributes
    ----------
    skills_ : Series (worker) named "skill", for the workers who answered a gold task:
        the share of their gold answers that are right
    labels_, probas_, classes_, scores_ : the skill-weighted vote; gold tasks keep their
        true label (one-hot posterior), as in ``DawidSkene.fit(true_labels=)``; ``predict``
        is the plain skill-weighted vote (no task is clamped)

    Example
    -------
    >>> from kdcore.crowd import GoldMajorityVote, simulate
    >>> r, truth = simulate.one_coin(500, 20, 2, answers_per_task=5, random_state=0)
    >>> gmv = GoldMajorityVote(default_skill=0.5, random_state=0).fit(r, true_labels=truth.iloc[:100])
    >>> gmv.labels_.shape
    (500,)
    """

    def __init__(
        self,
        tie_break: str = "random",
        default_skill: float | None = None,
        random_state=None,
        backend: str = "auto",
        n_threads: int = 0,
    ):
        self.tie_break = tie_break
        self.default_skill = default_skill
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads

    def fit(
        self, data: Responses | pd.DataFrame, true_labels: pd.Series | dict | None = None, *, duplicates: str = "error"
    ) -> GoldMajorityVote:
        """Skills from the gold tasks, then the skill-weighted vote; returns self.

        Parameters
        ----------
        data : Responses or DataFrame (task, worker, label)
        true_labels : Series or dict, task id -> label
            At least one task; every task must have answers in ``data`` and every label
            must be one of its classes (a ValueError names the others).
        duplicates : {"error", "keep_first", "keep_last", "keep_all"}
        """
        default = self._check_common()
        r = self._coerce(data, duplicates)
        if true_labels is None:
            raise TypeError("GoldMajorityVote.fit needs true_labels (a Series or dict, task id -> label)")
        task_idx, class_idx = _gold.gold_codes(r, true_labels)
        if task_idx.size == 0:
            raise ValueError("GoldMajorityVote.fit needs at least one gold label; true_labels is empty")
        reference = np.full(r.n_tasks, -1, dtype=np.int64)
        reference[task_idx] = class_idx
        right, n = agreement(r, reference, on=reference >= 0)
        answered = np.flatnonzero(n > 0)
        skill = np.full(r.n_workers, np.nan)
        skill[answered] = right[answered] / n[answered]
        self.skills_ = self._skill_series(r, skill, answered)
        weight = self._skills_for(r, default)
        scores, labels, proba = self._weighted_vote(r, weight, self.random_state)
        _gold.clamp(proba, task_idx, class_idx)
        labels[task_idx] = class_idx
        self.scores_ = scores
        self._set_posteriors(r, proba, labels)
        return self

    def fit_predict(
        self, data: Responses | pd.DataFrame, true_labels: pd.Series | dict | None = None, *, duplicates: str = "error"
    ) -> pd.Series:
        """Fit and return ``labels_``."""
        return self.fit(data, true_labels, duplicates=duplicates).labels_

    def fit_predict_proba(
        self, data: Responses | pd.DataFrame, true_labels: pd.Series | dict | None = None, *, duplicates: str = "error"
    ) -> pd.DataFrame:
        """Fit and return ``probas_``."""
        return self.fit(data, true_labels, duplicates=duplicates).probas_
