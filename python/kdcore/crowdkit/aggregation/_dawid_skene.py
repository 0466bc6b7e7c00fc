"""crowd-kit's DawidSkene and OneCoinDawidSkene on kdcore's compiled EM kernels.

The arithmetic is crowd-kit 1.4.2's, step for step (docs/crowdkit.md):

- start: majority-vote shares (gold tasks set to their true label), prior = mean share;
- M-step: expected counts n[w, l, k] = sum of P(task = k) over w's answers l, for the
  (worker, label) pairs that occur only; every count clipped below at 1e-10, then each
  true-label column normalised over the worker's labels;
- E-step: P(task = k) ∝ max(prior_k, 1e-10) prod_answers e[w, l, k];
- after each round the evidence lower bound per answer (crowd-kit's form: the log-prior
  is counted once per answer) and the stop ``new_loss - loss < tol``;
- the returned posteriors are clipped below at 1e-10 (not renormalised), as crowd-kit's
  in-place clip leaves them.

The E-step is kdcore's compiled ``em_e_step``; the expected counts are one compiled pass
over the worker-major view (``_core.class_counts``). Only O(workers x K^2) and
O(tasks x K) work is left to numpy per round.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..._check import check_int
from ...backends import HAS_CPP, _core
from ...crowd import _em
from .._frame import Coded, check_frame, code_answers, first_order

__all__ = ["DawidSkene", "OneCoinDawidSkene"]

_THREADS = 0  # kdcore's thread policy (kdcore.set_num_threads); results do not depend on it
_EPS = 1e-10  # crowd-kit's zero clip (np.float_power(10, -10))


def _class_counts(c: Coded, post: np.ndarray, n_threads: int) -> np.ndarray:
    """n[w, l, k] = sum over the answers (j, w, l) of post[j, k]."""
    r = c.responses
    W, K = r.n_workers, r.n_classes
    out = np.empty((W, K, K))
    if HAS_CPP:
        return _core.class_counts(
            r.worker_indptr, r.worker_task, r.worker_label, r.n_tasks, W, np.ascontiguousarray(post), n_threads
        )
    else:  # pragma: no cover - only without the compiled core
        key = r.worker.astype(np.int64) * K + r.label
        for k in range(K):
            out[:, :, k] = np.bincount(key, weights=post[:, k][r.task], minlength=W * K).reshape(W, K)
    return out


def _mean_rows(post: np.ndarray) -> np.ndarray:
    """The mean posterior over tasks (crowd-kit's ``probas.mean()``) as one matrix-vector product:
    numpy's axis-0 mean of a tall two-column array is several times slower."""
    return (np.ones(len(post)) @ post) / len(post)


def _normalise(counts: np.ndarray, present: np.ndarray) -> np.ndarray:
    """crowd-kit's M-step normalisation: clip at 1e-10 (present pairs), columns over labels."""
    n = np.where(present[:, :, None], np.maximum(counts, _EPS), 0.0)
    z = n.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(z > 0, n / np.where(z > 0, z, 1.0), 0.0)


def _log_conf(errors: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(1, W, K, K) log C[w, k, l] = log e[w, l, k] for present pairs (0 elsewhere: never read)."""
    with np.errstate(divide="ignore"):
        lg = np.where(present[:, :, None], np.log(np.where(present[:, :, None], errors, 1.0)), 0.0)
    return np.ascontiguousarray(lg.transpose(0, 2, 1))[None]


def _elbo(counts: np.ndarray, errors: np.ndarray, present: np.ndarray, prior: np.ndarray, post: np.ndarray) -> float:
    """crowd-kit's evidence lower bound (not yet divided by the number of rows)."""
    m = present[:, :, None] & (counts != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        joint = float(np.sum(np.where(m, counts * np.log(np.where(m, errors, 1.0)), 0.0)))
    joint += float(counts.sum(axis=(0, 1)) @ np.log(np.maximum(prior, _EPS)))
    pc = np.maximum(post, _EPS)
    return joint - float(np.sum(pc * np.log(pc)))


def _joined_columns(classes: pd.Index) -> pd.Index:
    """The label columns as crowd-kit's ``data.join(probas)`` leaves them: appended to the
    'task', 'worker', 'label' column names (so int labels become an object Index)."""
    return pd.Index(["task", "worker", "label"]).append(classes)[3:]


def estimator_repr(obj: Any, names: tuple[str, ...]) -> str:
    return f"{type(obj).__name__}({', '.join(f'{n}={getattr(obj, n)!r}' for n in names)})"


class DawidSkene:
    """Dawid-Skene EM with crowd-kit 1.4.2's parameters, arithmetic, attributes and order.

    Parameters
    ----------
    n_iter : int, default 100
        The maximum number of EM rounds.
    tol : float, default 1e-5
        Stop when the evidence lower bound per answer rises by less than ``tol``.
    initial_error_strategy : {"assign", "addition"} or None
        How ``fit(..., initial_error=)`` enters the first M-step: "assign" replaces the
        estimated error matrices (all workers must be given), "addition" adds counts to them.

    Attributes
    ----------
    labels_ : Series (task) named "agg_label"
    probas_ : DataFrame (task x label), tasks and labels in order of first appearance
    priors_ : Series (label) named "prior"
    errors_ : DataFrame indexed by the (worker, label) pairs that occur, one column per true label:
        ``errors_.loc[(w, l), k]`` = P(w answers l | true label k)
    loss_history_ : list of float, the evidence lower bound per answer after each round

    Example
    -------
    >>> import pandas as pd
    >>> from kdcore.crowdkit.aggregation import DawidSkene
    >>> df = pd.DataFrame({"task": [1, 1, 1, 2, 2, 2], "worker": ["a", "b", "c"] * 2, "label": [0, 0, 1, 1, 1, 1]})
    >>> DawidSkene(10).fit_predict(df).tolist()
    [0, 1]
    """

    _params = ("n_iter", "tol", "initial_error_strategy")

    def __init__(self, n_iter: int = 100, tol: float = 1e-5, initial_error_strategy: str | None = None) -> None:
        self.n_iter = n_iter
        self.tol = tol
        self.initial_error_strategy = initial_error_strategy

    def __repr__(self) -> str:
        return estimator_repr(self, self._params)

    # ------------------------------------------------------------------ checks
    def _check(self) -> tuple[int, float]:
        # crowd-kit runs no round for n_iter <= 0 and takes any tol
        n_iter = check_int(self.n_iter, "n_iter", minimum=-(2**62))
        if isinstance(self.tol, bool) or not isinstance(self.tol, (int, float, np.floating, np.integer)):
            raise TypeError(f"tol must be a float, got {type(self.tol).__name__}")
        return n_iter, float(self.tol)  # any float, as in crowd-kit (-inf: run all n_iter rounds)

    def _empty(self) -> bool:
        """crowd-kit's early exit on a table without rows: empty results, no error."""
        self.probas_ = pd.DataFrame()
        self.priors_ = pd.Series(dtype=float, name="prior")
        self.errors_ = pd.DataFrame()
        self.labels_ = pd.Series(dtype=float, name="agg_label")
        return True

    # ------------------------------------------------------------------ pieces
    @staticmethod
    def _mv_start(c: Coded) -> tuple[np.ndarray, np.ndarray]:
        """Majority-vote shares (n_tasks, K) and the mask of tasks with a labelled answer."""
        r = c.responses
        scores, _, _ = _core.vote_scores(
            r.task_indptr, r.task_worker, r.task_label, r.n_tasks, r.n_workers, r.n_classes, None, _THREADS
        )
        n = np.diff(r.task_indptr).astype(np.float64)
        answered = n > 0
        post = np.zeros_like(scores)
        post[answered] = scores[answered] / n[answered, None]
        return post, answered

    @staticmethod
    def _gold(c: Coded, true_labels: Any) -> tuple[np.ndarray, np.ndarray] | None:
        if true_labels is None:
            return None
        if not isinstance(true_labels, pd.Series):
            raise TypeError(f"true_labels must be a pandas Series indexed by task, got {type(true_labels).__name__}")
        gold = true_labels[true_labels.notna()]
        rows = c.tasks.get_indexer(gold.index)
        on = rows >= 0
        cls = c.classes.get_indexer(pd.Index(gold.to_numpy()[on]))
        if (cls < 0).any():
            bad = list(pd.unique(gold.to_numpy()[on][cls < 0]))[:5]
            raise ValueError(f"true_labels has labels {bad} that no worker gave; the labels are {list(c.classes)}")
        return rows[on], cls

    @staticmethod
    def _apply_gold(post: np.ndarray, gold: tuple[np.ndarray, np.ndarray] | None) -> None:
        if gold is not None and len(gold[0]):
            post[gold[0]] = 0.0
            post[gold[0], gold[1]] = 1.0

    @staticmethod
    def _pairs(c: Coded) -> tuple[np.ndarray, np.ndarray]:
        """(worker, label) codes of the pairs that occur, in order of first appearance; the presence mask."""
        r = c.responses
        K = r.n_classes
        key = np.asarray(r.worker, np.int64) * K + r.label
        order = first_order(key, r.n_workers * K)
        present = np.zeros(r.n_workers * K, bool)
        present[order] = True
        return order, present.reshape(r.n_workers, K)

    def _errors_frame(self, c: Coded, order: np.ndarray, errors: np.ndarray) -> pd.DataFrame:
        K = c.responses.n_classes
        w, lab = order // K, order % K
        index = pd.MultiIndex.from_arrays([c.workers.take(w), c.classes.take(lab)], names=["worker", "label"])
        return pd.DataFrame(errors[w, lab, :], index=index, columns=_joined_columns(c.classes))

    def _initial(self, c: Coded, counts: np.ndarray, present: np.ndarray, order: np.ndarray, initial_error: Any):
        """The first M-step with ``initial_error`` (once, in pandas, exactly as crowd-kit)."""
        strategy = self.initial_error_strategy
        if strategy is None or initial_error is None:
            return _normalise(counts, present), present
        if strategy not in ("assign", "addition"):
            raise ValueError(f"Invalid initial_error_strategy: {strategy}, should be 'assign' or 'addition'")
        if not isinstance(initial_error, pd.DataFrame):
            raise TypeError(f"initial_error must be a pandas DataFrame, got {type(initial_error).__name__}")
        errors = self._errors_frame(c, order, counts)
        if list(initial_error.index.names) != ["worker", "label"]:
            raise ValueError(
                f"The index of initial_error must be: ['worker', 'label'], but got: {initial_error.index.names}"
            )
        extra = initial_error.columns.difference(errors.columns)
        if len(extra):
            raise ValueError(f"initial_error has columns {list(extra)} that are not labels of data {list(c.classes)}")
        if strategy == "assign":
            mask = errors.index.isin(initial_error.index)
            if not mask.all():
                n_missing = errors.index[~mask].get_level_values("worker").unique()
                raise ValueError(
                    f"All the workers in data should be in initial_error: "
                    f"Can not find {len(n_missing)} workers' error matrix in initial_error"
                )
            if (initial_error <= 1.0).all().all() and not np.allclose(
                initial_error.groupby("worker", sort=False).sum(), 1.0
            ):
                raise ValueError("The sum of each worker's error matrix in initial_error should be 1.0")
            errors = initial_error.reindex(columns=errors.columns, fill_value=0.0).astype(float)
        else:
            errors = errors.add(initial_error, axis="index", fill_value=0.0)
        errors = errors.clip(lower=_EPS)
        errors = errors / errors.groupby("worker", sort=False).sum()
        # back to the dense (worker, label, true label) array of the data's pairs
        w = c.workers.get_indexer(errors.index.get_level_values("worker"))
        lab = c.classes.get_indexer(errors.index.get_level_values("label"))
        ok = (w >= 0) & (lab >= 0)
        W, K = present.shape
        dense = np.zeros((W, K, K))
        dense[w[ok], lab[ok]] = errors.reindex(columns=_joined_columns(c.classes)).to_numpy(dtype=float)[ok]
        given = np.zeros((W, K), bool)
        given[w[ok], lab[ok]] = True
        return dense, given

    # ------------------------------------------------------------------ fit
    def fit(self, data: pd.DataFrame, true_labels: pd.Series | None = None, initial_error: pd.DataFrame | None = None):
        """Fit by EM (crowd-kit's ``DawidSkene.fit``); returns self."""
        n_iter, tol = self._check()
        if len(check_frame(data)) == 0 and self._empty():
            return self
        c = code_answers(data)
        r = c.responses
        gold = self._gold(c, true_labels)
        post, answered = self._mv_start(c)
        self._apply_gold(post, gold)
        prior = post[answered].mean(axis=0)
        order, present = self._pairs(c)
        counts = _class_counts(c, post, _THREADS)
        errors, used = self._initial(c, counts, present, order, initial_error)
        loss = -np.inf
        history: list[float] = []
        for _ in range(n_iter):
            post, _ll = _em.e_step_unchecked(
                r, _log_conf(errors, used), np.log(np.maximum(prior, _EPS))[None], "cpp", _THREADS
            )
            post = post[:, 0, :]
            self._apply_gold(post, gold)
            prior = _mean_rows(post)
            counts = _class_counts(c, post, _THREADS)
            errors, used = _normalise(counts, present), present
            new_loss = _elbo(counts, errors, present, prior, post) / c.n_rows
            history.append(new_loss)
            if new_loss - loss < tol:
                break
            loss = new_loss
        self._finish(c, post, prior, history)
        self.errors_ = self._errors_frame(c, order, errors)
        return self

    def _finish(self, c: Coded, post: np.ndarray, prior: np.ndarray, history: list[float]) -> None:
        if history:  # crowd-kit's in-place clip of the posteriors, in its lower bound
            post = np.maximum(post, _EPS)
        columns = pd.Index(c.classes, name="label", dtype=c.classes.dtype)
        index = pd.Index(c.tasks, name="task")
        self.probas_ = pd.DataFrame(post, index=index, columns=columns)
        self.priors_ = pd.Series(prior, index=columns, name="prior")
        self.labels_ = pd.Series(c.classes.take(np.argmax(post, axis=1)), index=index, name="agg_label")
        self.loss_history_ = history

    def fit_predict_proba(
        self, data: pd.DataFrame, true_labels: pd.Series | None = None, initial_error: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Fit and return ``probas_``."""
        return self.fit(data, true_labels, initial_error).probas_

    def fit_predict(
        self, data: pd.DataFrame, true_labels: pd.Series | None = None, initial_error: pd.DataFrame | None = None
    ) -> pd.Series:
        """Fit and return ``labels_``."""
        return self.fit(data, true_labels, initial_error).labels_


class OneCoinDawidSkene(DawidSkene):
    """One-coin Dawid-Skene with crowd-kit 1.4.2's arithmetic: one skill per worker.

    Each round: skill_w = mean over w's answers (j, l) of P(task j = l); the error
    matrices are e[w, l, k] = skill_w if l == k else (1 - skill_w) / (K - 1), clipped
    to [1e-10, 1 - 1e-10]; the E-step, prior, stop rule and clipping are DawidSkene's.

    Attributes
    ----------
    skills_ : Series (worker) named "skill", workers in order of first appearance
    labels_, probas_, priors_, errors_, loss_history_ : as :class:`DawidSkene`
    """

    def __init__(self, n_iter: int = 100, tol: float = 1e-5, initial_error_strategy: str | None = None) -> None:
        super().__init__(n_iter, tol, initial_error_strategy)

    @staticmethod
    def _skills(c: Coded, counts: np.ndarray, post: np.ndarray, unlabelled: tuple[np.ndarray, np.ndarray]):
        """Mean P(task = given label) per worker. An answer without a label reads the last
        label's column, as crowd-kit's ``to_numpy()[rows, -1]`` does; NaN shares (tasks
        without a labelled answer, at the start) are skipped as pandas' mean skips them."""
        right = np.einsum("wkk->w", counts)
        n = np.diff(c.responses.worker_indptr).astype(np.float64)
        t_nan, w_nan = unlabelled
        if len(t_nan):
            vals = post[t_nan, -1]
            ok = ~np.isnan(vals)
            right = right + np.bincount(w_nan[ok], weights=vals[ok], minlength=len(right))
            n = n + np.bincount(w_nan[ok], minlength=len(n))
        with np.errstate(invalid="ignore", divide="ignore"):
            return right / n

    @staticmethod
    def _onecoin_errors(skill: np.ndarray, K: int) -> np.ndarray:
        e = np.empty((len(skill), K, K))
        e[...] = ((1.0 - skill) / (K - 1))[:, None, None]
        idx = np.arange(K)
        e[:, idx, idx] = skill[:, None]
        return np.clip(e, _EPS, 1.0 - _EPS)

    def fit(self, data: pd.DataFrame):  # type: ignore[override]
        """Fit by EM (crowd-kit's ``OneCoinDawidSkene.fit``); returns self."""
        n_iter, tol = self._check()
        if len(check_frame(data)) == 0 and self._empty():
            return self
        c = code_answers(data)
        r = c.responses
        K = r.n_classes
        unlabelled = (c.nan_task, c.nan_worker)
        post, answered = self._mv_start(c)
        prior = post[answered].mean(axis=0)
        order, present = self._pairs(c)
        counts = _class_counts(c, post, _THREADS)
        # MajorityVote has no share for a task without a labelled answer (NaN in crowd-kit)
        skill = self._skills(c, counts, np.where(answered[:, None], post, np.nan), unlabelled)
        errors = self._onecoin_errors(skill, K)
        loss = -np.inf
        history: list[float] = []
        for _ in range(n_iter):
            post, _ll = _em.e_step_unchecked(
                r, _log_conf(errors, present), np.log(np.maximum(prior, _EPS))[None], "cpp", _THREADS
            )
            post = post[:, 0, :]
            prior = _mean_rows(post)
            counts = _class_counts(c, post, _THREADS)
            skill = self._skills(c, counts, post, unlabelled)
            errors = self._onecoin_errors(skill, K)
            new_loss = _elbo(counts, errors, present, prior, post) / c.n_rows
            history.append(new_loss)
            if new_loss - loss < tol:
                break
            loss = new_loss
        self._finish(c, post, prior, history)
        self.skills_ = pd.Series(skill, index=pd.Index(c.workers, name="worker"), name="skill")
        self.errors_ = self._errors_frame(c, order, errors)
        return self

    def fit_predict_proba(self, data: pd.DataFrame) -> pd.DataFrame:  # type: ignore[override]
        """Fit and return ``probas_``."""
        return self.fit(data).probas_

    def fit_predict(self, data: pd.DataFrame) -> pd.Series:  # type: ignore[override]
        """Fit and return ``labels_``."""
        return self.fit(data).labels_
