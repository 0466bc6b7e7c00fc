"""crowd-kit's MajorityVote, Wawa, ZeroBasedSkill and GoldMajorityVote on kdcore's vote kernel.

Orders, as crowd-kit 1.4.2 leaves them: a plain majority vote lists tasks and labels in
order of first appearance (its ``value_counts().unstack()``); a vote weighted by worker
skills lists them sorted (its ``groupby(["task", "label"]).sum().unstack()``). Ties go to
the first label in that order (``idxmax``). Worker accuracies (``skills_``) are
crowd-kit's ``get_accuracy``: repeated identical (task, worker, label) answers counted
once, workers sorted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..._check import check_float, check_int
from ...backends import _core
from .._frame import Coded, code_answers, sorted_order

__all__ = ["MajorityVote", "Wawa", "ZeroBasedSkill", "GoldMajorityVote"]

_THREADS = 0  # kdcore's thread policy (kdcore.set_num_threads); results do not depend on it


def estimator_repr(obj: Any, names: tuple[str, ...]) -> str:
    return f"{type(obj).__name__}({', '.join(f'{n}={getattr(obj, n)!r}' for n in names)})"


def _scores(c: Coded, weight: np.ndarray | None) -> np.ndarray:
    r = c.responses
    w = None if weight is None else np.ascontiguousarray(weight, dtype=np.float64)
    scores, _, _ = _core.vote_scores(
        r.task_indptr, r.task_worker, r.task_label, r.n_tasks, r.n_workers, r.n_classes, w, _THREADS
    )
    return scores


def _vote_frame(
    c: Coded, scores: np.ndarray, tasks: np.ndarray, labels: np.ndarray
) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """probas_ (rows ``tasks``, columns ``labels``, both positions), labels_, and each task's winner code."""
    s = scores[np.ix_(tasks, labels)]
    with np.errstate(invalid="ignore", divide="ignore"):
        proba = s / s.sum(axis=1, keepdims=True)
    columns = pd.Index(c.classes.take(labels), name="label", dtype=c.classes.dtype)
    index = pd.Index(c.tasks.take(tasks), name="task")
    probas = pd.DataFrame(proba, index=index, columns=columns)
    if np.isnan(proba).any():
        win = np.asarray(probas.idxmax(axis="columns"))  # crowd-kit's behaviour on rows of NaN
        labels_ = pd.Series(win, index=index, name="agg_label")
        best = c.classes.get_indexer(pd.Index(win))
    else:
        pos = np.argmax(proba, axis=1)
        best = labels[pos]
        labels_ = pd.Series(columns.take(pos), index=index, name="agg_label")
    winner = np.full(c.responses.n_tasks, -1, dtype=np.int64)
    winner[tasks] = best
    return probas, labels_, winner


def _unique_answers(c: Coded) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(task, worker, label) codes of the distinct answers, as get_accuracy's
    ``drop_duplicates(["task", "worker", "label"])`` leaves them; an answer without a
    label has label -3 (never right, but counted: crowd-kit compares NaN to the truth)."""
    if c.unique is not None:
        return c.unique
    r = c.responses
    _, n_dup, _ = _core.find_duplicates(r.task, r.worker, r.n_tasks, r.n_workers, 1)
    if n_dup == 0:  # one answer per (task, worker): every answer is distinct
        t, w, lab = r.task, r.worker, r.label
    else:
        key = (np.asarray(r.task, np.int64) * r.n_workers + r.worker) * r.n_classes + r.label
        _, first = np.unique(key, return_index=True)
        first.sort()
        t, w, lab = r.task[first], r.worker[first], r.label[first]
    if len(c.nan_task):
        key = np.asarray(c.nan_task, np.int64) * r.n_workers + c.nan_worker
        _, first = np.unique(key, return_index=True)
        t = np.concatenate([t, c.nan_task[first]])
        w = np.concatenate([w, c.nan_worker[first]])
        lab = np.concatenate([lab, np.full(len(first), -3, dtype=lab.dtype)])
    c.unique = (t, w, lab)
    return t, w, lab


def _worker_accuracy_all_distinct(c: Coded, truth_code: np.ndarray) -> pd.Series | None:
    """get_accuracy by worker in one worker-major pass, when every answer is distinct and
    labelled and every worker answered (None otherwise: the general path applies)."""
    r = c.responses
    t, _, _ = _unique_answers(c)
    if len(t) != r.n_responses or len(c.nan_task):
        return None
    indptr = r.worker_indptr
    n_all = np.diff(indptr)
    if not (n_all > 0).all():
        return None
    tc = truth_code[r.worker_task]
    starts = indptr[:-1]
    right = np.add.reduceat((r.worker_label == tc).astype(np.float64), starts)
    on = tc != -1
    n = n_all.astype(np.float64) if on.all() else np.add.reduceat(on.astype(np.float64), starts)
    present = np.flatnonzero(n > 0)
    sub = c.workers.take(present) if len(present) != len(n) else c.workers
    order = sorted_order(sub)
    with np.errstate(invalid="ignore"):
        values = right[present][order] / n[present][order]
    return pd.Series(values, index=pd.Index(sub.take(order), name="worker"))


def accuracy(c: Coded, truth_code: np.ndarray, by: str | None = "worker"):
    """crowd-kit's ``get_accuracy``: per answer ``label == truth`` over the tasks with a truth
    (``truth_code[task]`` >= 0 a class, -2 a value no worker gave, -1 none), identical
    answers counted once; the mean per ``by`` group (sorted) or overall (``by=None``)."""
    if by == "worker":
        fast = _worker_accuracy_all_distinct(c, truth_code)
        if fast is not None:
            return fast
    t, w, lab = _unique_answers(c)
    tc = truth_code[t]
    on = tc != -1
    t, w, lab, tc = t[on], w[on], lab[on], tc[on]
    score = (lab == tc).astype(np.float64)
    if by is None:
        return float(score.sum() / len(score)) if len(score) else float("nan")
    if by == "worker":
        codes, ids = w, c.workers
    elif by == "task":
        codes, ids = t, c.tasks
    elif by == "label":
        codes, ids = lab, c.classes
    else:
        raise KeyError(f"by must be None, 'worker', 'task' or 'label', got {by!r}")
    n = np.bincount(codes, minlength=len(ids))
    right = np.bincount(codes, weights=score, minlength=len(ids))
    present = np.flatnonzero(n > 0)
    sub = ids.take(present)
    order = sorted_order(sub)
    with np.errstate(invalid="ignore"):
        values = right[present][order] / n[present][order]
    return pd.Series(values, index=pd.Index(sub.take(order), name=by))


def _truth_codes(c: Coded, true_labels: pd.Series) -> np.ndarray:
    """Per task: the class code of its true label, -2 for a value no worker gave, -1 for none."""
    if not isinstance(true_labels, pd.Series):
        raise TypeError(f"true labels must be a pandas Series indexed by task, got {type(true_labels).__name__}")
    out = np.full(c.responses.n_tasks, -1, dtype=np.int64)
    known = true_labels[true_labels.notna()]
    known = known[~known.index.duplicated(keep="first")]
    rows = c.tasks.get_indexer(known.index)
    on = rows >= 0
    cls = c.classes.get_indexer(pd.Index(known.to_numpy()[on]))
    out[rows[on]] = np.where(cls >= 0, cls, -2)
    return out


def _answer_skills(c: Coded, skills: Any, on_missing_skill: str, default_skill: float | None) -> np.ndarray:
    """Each worker's skill (NaN where ``skills`` has none) after crowd-kit's missing-skill rules."""
    if not isinstance(skills, pd.Series):
        raise TypeError(f"skills must be a pandas Series indexed by worker, got {type(skills).__name__}")
    if on_missing_skill != "value" and default_skill is not None:
        raise ValueError('default_skill is used but on_missing_skill is not "value"')
    per_worker = skills[~skills.index.duplicated(keep="first")].reindex(c.workers).to_numpy(dtype=np.float64)
    per_answer = per_worker[c.responses.worker]
    missing = np.isnan(per_answer)
    if on_missing_skill == "error":
        if missing.any():
            raise ValueError(
                f"Skill value is missing in {int(missing.sum())} assignments. Specify skills for every "
                "used worker or use different 'on_unknown_skill' value."
            )
    elif on_missing_skill == "ignore":
        pass  # the answers are dropped by the caller
    elif on_missing_skill == "value":
        if default_skill is None:
            raise ValueError('Default skill value must be specified when using on_missing_skill="value"')
        per_worker = np.where(np.isnan(per_worker), float(default_skill), per_worker)
    else:
        raise ValueError(f'Unknown option {on_missing_skill!r} of "on_missing_skill" argument.')
    return per_worker


class MajorityVote:
    """crowd-kit 1.4.2's MajorityVote: the most voted label, optionally weighted by worker skills.

    Parameters
    ----------
    default_skill : float or None
        The skill of a worker missing from ``skills`` when ``on_missing_skill="value"``.
    on_missing_skill : {"error", "ignore", "value"}
        What to do with answers of workers without a skill: raise, drop them (raising if
        a task loses all its answers), or use ``default_skill``.

    Attributes
    ----------
    labels_ : Series (task) named "agg_label"; ties go to the first label in column order
    probas_ : DataFrame (task x label), each row the label's share of the (weighted) votes
    skills_ : Series (worker) named "skill", each worker's accuracy against ``labels_``
    """

    _params = ("default_skill", "on_missing_skill")

    def __init__(self, default_skill: float | None = None, on_missing_skill: str = "error") -> None:
        self.default_skill = default_skill
        self.on_missing_skill = on_missing_skill

    def __repr__(self) -> str:
        return estimator_repr(self, self._params)

    def fit(self, data: pd.DataFrame, skills: pd.Series | None = None) -> MajorityVote:
        """Vote; returns self."""
        c = code_answers(data)
        self._fit_coded(c, skills)
        return self

    def _fit_coded(self, c: Coded, skills: pd.Series | None, with_skills: bool = True) -> np.ndarray:
        r = c.responses
        if skills is None:
            scores = _scores(c, None)
            if c.n_rows != r.n_responses:  # missing labels: pandas' value_counts decides the order
                table = c.frame[["task", "label"]].value_counts().unstack("label", fill_value=0)
                tasks = c.tasks.get_indexer(table.index)
                labels = c.classes.get_indexer(table.columns)
            else:
                tasks = np.arange(r.n_tasks)
                labels = np.arange(r.n_classes)
            probas, labels_, winner = _vote_frame(c, scores, tasks, labels)
        else:
            per_worker = _answer_skills(c, skills, self.on_missing_skill, self.default_skill)
            weight = per_worker
            if self.on_missing_skill == "ignore" and np.isnan(per_worker).any():
                c = self._drop_unskilled(c, per_worker)
                weight = per_worker[c.worker_map] if hasattr(c, "worker_map") else per_worker
            scores = _scores(c, np.nan_to_num(weight, nan=0.0))
            answered = np.flatnonzero(np.diff(c.responses.task_indptr) > 0)
            tasks = answered[sorted_order(c.tasks.take(answered))]
            used = np.flatnonzero(np.bincount(c.responses.label, minlength=c.responses.n_classes) > 0)
            labels = used[sorted_order(c.classes.take(used))]
            probas, labels_, winner = _vote_frame(c, scores, tasks, labels)
        self.probas_ = probas
        self.labels_ = labels_
        if with_skills:  # crowd-kit's get_accuracy against the vote (skipped where a caller drops it)
            self.skills_ = accuracy(c, winner, by="worker").rename("skill")
        self._coded = c
        return winner

    @staticmethod
    def _drop_unskilled(c: Coded, per_worker: np.ndarray) -> Coded:
        """crowd-kit's on_missing_skill="ignore": drop the answers of workers without a skill."""
        frame = c.frame
        keep = ~np.isnan(per_worker[pd.factorize(frame["worker"], sort=False)[0]])
        keep &= frame["label"].notna().to_numpy()
        lost = pd.Index(frame["task"]).difference(pd.Index(frame["task"][keep]))
        if len(lost):
            raise ValueError(
                f"{len(lost)} tasks has no workers with known skills. Provide at least one worker with known "
                "skill for every task or use different 'on_unknown_skill' value."
            )
        out = code_answers(frame[keep])
        out.worker_map = c.workers.get_indexer(out.workers)  # type: ignore[attr-defined]
        return out

    def fit_predict_proba(self, data: pd.DataFrame, skills: pd.Series | None = None) -> pd.DataFrame:
        """Fit and return ``probas_``."""
        return self.fit(data, skills).probas_

    def fit_predict(self, data: pd.DataFrame, skills: pd.Series | None = None) -> pd.Series:
        """Fit and return ``labels_``."""
        return self.fit(data, skills).labels_


class _SkillVote:
    """Shared predict side: a majority vote weighted by the fitted ``skills_`` (crowd-kit's ``_apply``)."""

    _params: tuple[str, ...] = ()
    skills_: pd.Series | None = None  # set by fit

    def __repr__(self) -> str:
        return estimator_repr(self, self._params)

    def _apply(self, data: pd.DataFrame | Coded):
        if getattr(self, "skills_", None) is None:
            raise ValueError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this estimator."
            )
        c = data if isinstance(data, Coded) else code_answers(data)
        mv = MajorityVote()
        mv._fit_coded(c, self.skills_, with_skills=False)
        self.probas_ = mv.probas_
        self.labels_ = mv.labels_
        return self

    def _fit_c(self, c: Coded, *args: Any) -> None:  # pragma: no cover - each method has its own
        raise NotImplementedError

    def _fit_apply(self, data: pd.DataFrame, *args: Any):
        """fit then predict on the same table, coded once."""
        c = code_answers(data)
        self._fit_c(c, *args)
        return self._apply(c)

    def predict(self, data: pd.DataFrame) -> pd.Series:
        """Labels of the tasks of ``data`` by the skill-weighted vote."""
        return self._apply(data).labels_

    def predict_proba(self, data: pd.DataFrame) -> pd.DataFrame:
        """Shares of the skill-weighted vote for the tasks of ``data``."""
        return self._apply(data).probas_


class Wawa(_SkillVote):
    """crowd-kit's Wawa: workers weighted by their accuracy against the plain majority vote.

    Attributes
    ----------
    skills_ : Series (worker) named "skill"
    labels_, probas_ : after ``predict``/``predict_proba`` (or ``fit_predict``...)
    """

    def fit(self, data: pd.DataFrame) -> Wawa:
        """Estimate the skills; returns self."""
        self._fit_c(code_answers(data))
        return self

    def _fit_c(self, c: Coded) -> None:
        mv = MajorityVote()
        mv._fit_coded(c, None)
        self.skills_ = mv.skills_  # the accuracy against the plain vote, named "skill"

    def fit_predict(self, data: pd.DataFrame) -> pd.Series:
        return self._fit_apply(data).labels_

    def fit_predict_proba(self, data: pd.DataFrame) -> pd.DataFrame:
        return self._fit_apply(data).probas_


class GoldMajorityVote(_SkillVote):
    """crowd-kit's GoldMajorityVote: workers weighted by their accuracy on gold tasks.

    Attributes
    ----------
    skills_ : Series (worker) named "skill", for the workers who answered a gold task
    """

    def fit(self, data: pd.DataFrame, true_labels: pd.Series) -> GoldMajorityVote:
        """Estimate the skills from ``true_labels`` (Series indexed by task); returns self."""
        self._fit_c(code_answers(data), true_labels)
        return self

    def _fit_c(self, c: Coded, true_labels: pd.Series) -> None:
        self.skills_ = accuracy(c, _truth_codes(c, true_labels), by="worker").rename("skill")

    def fit_predict(self, data: pd.DataFrame, true_labels: pd.Series) -> pd.Series:
        return self._fit_apply(data, true_labels).labels_

    def fit_predict_proba(self, data: pd.DataFrame, true_labels: pd.Series) -> pd.DataFrame:
        return self._fit_apply(data, true_labels).probas_


class ZeroBasedSkill(_SkillVote):
    """crowd-kit's ZeroBasedSkill: skills moved towards their accuracy against the weighted vote.

    Parameters
    ----------
    n_iter : int, default 100
    lr_init : float, default 1.0
    lr_steps_to_reduce : int, default 20
    lr_reduce_factor : float, default 0.5
    eps : float, default 1e-5
        Skills start at 1 / (number of distinct labels) + ``eps``.
    """

    _params = ("n_iter", "lr_init", "lr_steps_to_reduce", "lr_reduce_factor", "eps")

    def __init__(
        self,
        n_iter: int = 100,
        lr_init: float = 1.0,
        lr_steps_to_reduce: int = 20,
        lr_reduce_factor: float = 0.5,
        eps: float = 1e-5,
    ) -> None:
        self.n_iter = n_iter
        self.lr_init = lr_init
        self.lr_steps_to_reduce = lr_steps_to_reduce
        self.lr_reduce_factor = lr_reduce_factor
        self.eps = eps

    def fit(self, data: pd.DataFrame) -> ZeroBasedSkill:
        """Estimate the skills; returns self."""
        n_iter = check_int(self.n_iter, "n_iter", minimum=-(2**62))
        lr = check_float(self.lr_init, "lr_init")
        steps = check_int(self.lr_steps_to_reduce, "lr_steps_to_reduce", minimum=-(2**62))
        if steps == 0:
            raise ZeroDivisionError("integer modulo by zero (lr_steps_to_reduce=0)")
        factor = check_float(self.lr_reduce_factor, "lr_reduce_factor")
        eps = check_float(self.eps, "eps")
        self._fit_c(code_answers(data), n_iter, lr, steps, factor, eps)
        return self

    def _fit_c(self, c: Coded, *args: Any) -> None:
        if not args:  # fit_predict: the checks of fit first
            n_iter = check_int(self.n_iter, "n_iter", minimum=-(2**62))
            lr = check_float(self.lr_init, "lr_init")
            steps = check_int(self.lr_steps_to_reduce, "lr_steps_to_reduce", minimum=-(2**62))
            if steps == 0:
                raise ZeroDivisionError("integer modulo by zero (lr_steps_to_reduce=0)")
            factor = check_float(self.lr_reduce_factor, "lr_reduce_factor")
            eps = check_float(self.eps, "eps")
        else:
            n_iter, lr, steps, factor, eps = args
        r = c.responses
        n_unique = c.frame["label"].nunique(dropna=False)
        skill = np.full(r.n_workers, 1.0 / n_unique + eps)
        # the vote and get_accuracy of each round, on codes (MajorityVote.fit with skills, unrolled)
        used = np.flatnonzero(np.bincount(r.label, minlength=r.n_classes) > 0)
        label_order = used[sorted_order(c.classes.take(used))]
        t, w, lab = _unique_answers(c)
        voted = np.diff(r.task_indptr) > 0  # a task without a labelled answer has no vote
        n_w = np.bincount(w[voted[t]], minlength=r.n_workers).astype(np.float64)
        for iteration in range(1, n_iter + 1):
            if iteration % steps == 0:
                lr *= factor
            scores = _scores(c, skill)
            winner = label_order[np.argmax(scores[:, label_order], axis=1)]
            right = np.bincount(w, weights=(lab == winner[t]) & voted[t], minlength=r.n_workers)
            with np.errstate(invalid="ignore", divide="ignore"):
                skill = skill + lr * (right / n_w - skill)
        order = sorted_order(c.workers) if n_iter >= 1 else np.arange(r.n_workers)
        self.skills_ = pd.Series(skill[order], index=pd.Index(c.workers.take(order), name="worker"), name="skill")

    def fit_predict(self, data: pd.DataFrame) -> pd.Series:
        return self._fit_apply(data).labels_

    def fit_predict_proba(self, data: pd.DataFrame) -> pd.DataFrame:
        return self._fit_apply(data).probas_
