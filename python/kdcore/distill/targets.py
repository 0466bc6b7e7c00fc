"""Training targets from crowd posteriors and labels, aligned to the rows of X by task id.

An aggregator's ``fit_predict_proba`` returns a DataFrame (tasks x classes) indexed by
task id, and ``fit_predict`` a Series of labels indexed by task id; the two-layer engine
trains on arrays in the row order of X. This module joins the two:

* :func:`soft_targets` -- P(positive class) per row of X, in [0, 1] (exact 0 and 1 are
  kept: the soft loss KL(p || sigmoid f) = p ln p + (1 - p) ln(1 - p) + p softplus(-f) +
  (1 - p) softplus(f) is finite there with 0 ln 0 = 0, and its gradient sigmoid(f) - p is
  bounded; docs/maths.md A.2).
* :func:`hard_targets` -- labels in {-1, +1} per row of X from class labels.
* :func:`resolve` -- what :func:`kdcore.distill.train` calls: X as numpy (from numpy, torch or a
  DataFrame indexed by task id) and the targets in its row order.
* :func:`one_vs_rest_targets` and :func:`predict_one_vs_rest` -- K > 2 classes.

Alignment is by task id only, never by position: X carries its ids (a DataFrame indexed by
them, or ``task_ids=``); a task of X without a posterior, a posterior without a row of X, a
duplicated id and a missing id are errors that name the ids. Targets given as a bare array
(numpy or torch) are taken in row order, as before.

Binary classes: the posterior columns are the aggregator's classes in order; the *positive*
class (label +1 of the student) is the last one (``[-1, 1]`` -> 1, ``[0, 1]`` -> 1, ``[1, 2]``
-> 2, ``["no", "yes"]`` -> "yes") unless ``positive=`` names it.

Multi-class: the two-layer engine (compiled kernel, numpy twin, torch) has one output, so K
classes are handled by a one-vs-rest reduction: K students, student k trained on
p_k = P(class k) with the same soft loss, prediction argmax_k f_k. For K = 2 this is exactly
the binary student: the softmax of the logits (0, f) is (1 - sigmoid f, sigmoid f), so the
two-class KL and the binary KL are the same function of f, and the second student is the
first with f negated. For K > 2 the K students do not share a hidden layer, unlike a
softmax network; the questions kdcore's experiments ask are on binary tasks (MNIST digit > 4,
CIFAR-10 cat vs dog), where the reduction is exact.

Example
-------
>>> import numpy as np, pandas as pd
>>> post = pd.DataFrame({-1: [0.0, 0.8, 1.0], 1: [1.0, 0.2, 0.0]}, index=["c", "a", "b"])
>>> X = pd.DataFrame(np.eye(3), index=["a", "b", "c"])
>>> soft_targets(post, X.index).tolist()
[0.2, 0.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._validation import from_torch

__all__ = ["soft_targets", "hard_targets", "resolve", "one_vs_rest_targets", "predict_one_vs_rest", "task_index"]

_ROW_SUM_TOL = 1e-6  # posteriors of a row must sum to one within this


def _show_ids(ids, k: int = 5) -> str:
    ids = list(ids)
    head = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in ids[:k])
    return f"[{head}{', ...' if len(ids) > k else ''}]"


def task_index(task_ids, n: int | None = None, name: str = "task_ids") -> pd.Index:
    """The task ids of the rows of X as a unique pandas Index (checked: no missing, no duplicate)."""
    if isinstance(task_ids, (str, bytes)) or not hasattr(task_ids, "__len__"):
        raise TypeError(f"{name} must be an array-like of task ids (one per row of X), got {type(task_ids).__name__}")
    idx = task_ids if isinstance(task_ids, pd.Index) else pd.Index(np.asarray(from_torch(task_ids)))
    if idx.nlevels != 1:
        raise ValueError(f"{name} must be a flat index of task ids, got {idx.nlevels} levels")
    if n is not None and len(idx) != n:
        raise ValueError(f"{name} has {len(idx)} ids but X has {n} rows: every row of X needs its task id")
    miss = np.flatnonzero(np.asarray(pd.isna(idx), dtype=bool))
    if miss.size:
        raise ValueError(f"{name}: {miss.size} row(s) of X have no task id (first at row {int(miss[0])})")
    if not idx.is_unique:
        dup = idx[idx.duplicated()].unique()
        raise ValueError(f"{name}: task ids must be unique; {len(dup)} repeated, e.g. {_show_ids(dup)}")
    return idx


def _is_default_index(index: pd.Index, n: int) -> bool:
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and len(index) == n


def _align(obj, index: pd.Index | None, n: int, name: str):
    """Reindex a pandas object of targets onto the task ids of X (errors on any mismatch)."""
    if index is None:
        if _is_default_index(obj.index, n):
            return obj
        raise ValueError(
            f"{name} is indexed by task id (e.g. {_show_ids(obj.index)}) but X has no task ids: give X as a "
            "DataFrame indexed by task id or pass task_ids= (one per row of X), so rows are matched by id"
        )
    if not obj.index.is_unique:
        dup = obj.index[obj.index.duplicated()].unique()
        raise ValueError(f"{name} has repeated task ids, e.g. {_show_ids(dup)}")
    missing = index.difference(obj.index, sort=False) if len(index) else index
    extra = obj.index.difference(index, sort=False)
    if len(missing) or len(extra):
        parts = []
        if len(missing):
            parts.append(f"{len(missing)} task(s) of X have no entry in {name} (e.g. {_show_ids(missing)})")
        if len(extra):
            parts.append(f"{len(extra)} task(s) of {name} have no row in X (e.g. {_show_ids(extra)})")
        raise ValueError("; ".join(parts) + ": the task ids of X and of the targets must be the same set")
    return obj.loc[index]


def _positive(classes: Sequence, positive, name: str):
    classes = list(classes)
    if positive is None:
        if len(classes) != 2:
            raise ValueError(
                f"{name} has {len(classes)} classes {classes}; the binary student needs 2. For K classes use "
                "one_vs_rest_targets (one student per class), or name the class with positive="
            )
        return classes[-1]
    if positive not in classes:
        raise ValueError(f"positive={positive!r} is not a class of {name}; its classes are {classes}")
    return positive


def _check_proba(P: np.ndarray, name: str, *, rows_sum: bool) -> None:
    if P.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold probabilities (floats in [0, 1]), got dtype {P.dtype}")
    bad = ~np.isfinite(P)
    if bad.any():
        r = int(np.flatnonzero(bad.reshape(P.shape[0], -1).any(axis=1))[0])
        raise ValueError(f"{name} contains NaN or infinite values ({int(bad.sum())}; first in row {r})")
    if (P < 0).any() or (P > 1).any():
        raise ValueError(f"{name} must lie in [0, 1]; got min {P.min():.6g}, max {P.max():.6g}")
    if rows_sum:
        s = P.sum(axis=1)
        off = np.flatnonzero(np.abs(s - 1.0) > _ROW_SUM_TOL)
        if off.size:
            raise ValueError(
                f"{name}: the posteriors of each task must sum to 1 over the classes; {off.size} row(s) do not "
                f"(first: row {int(off[0])}, sum {s[off[0]]:.6g})"
            )


def soft_targets(posteriors, task_ids=None, *, positive=None, name: str = "posteriors") -> np.ndarray:
    """P(positive class) for each row of X, in [0, 1] (float64).

    Parameters
    ----------
    posteriors : DataFrame (tasks x classes), Series, numpy array or torch tensor
        A DataFrame is an aggregator's ``fit_predict_proba`` output: one column per class,
        rows summing to 1. A Series holds P(positive) per task. Pandas inputs are aligned by
        task id; arrays (1-d P(positive), or (n, 2) rows of class probabilities) are taken in
        row order.
    task_ids : array-like or pandas Index, optional
        The task id of each row of X (required for pandas inputs with a task-id index).
    positive : class label, optional
        The class trained as +1 (default: the last column).

    Returns
    -------
    ndarray (n,) of P(positive) in the row order of X.

    Examples
    --------
    >>> import pandas as pd
    >>> soft_targets(pd.Series([1.0, 0.0], index=[7, 3]), [3, 7]).tolist()
    [0.0, 1.0]
    """
    posteriors = from_torch(posteriors)
    index = None if task_ids is None else task_index(task_ids)
    if isinstance(posteriors, pd.DataFrame):
        if posteriors.shape[1] < 2:
            raise ValueError(f"{name} must have one column per class (>= 2), got {posteriors.shape[1]}")
        pos = _positive(list(posteriors.columns), positive, name)
        _check_proba(posteriors.to_numpy(), name, rows_sum=True)
        n = len(index) if index is not None else len(posteriors)
        al = _align(posteriors, index, n, name)
        return np.ascontiguousarray(al[pos].to_numpy(dtype=np.float64))
    if isinstance(posteriors, pd.Series):
        if positive is not None:
            raise ValueError("positive= applies to a DataFrame of class posteriors; a Series is P(positive) already")
        _check_proba(posteriors.to_numpy(), name, rows_sum=False)
        n = len(index) if index is not None else len(posteriors)
        return np.ascontiguousarray(_align(posteriors, index, n, name).to_numpy(dtype=np.float64))
    P = np.asarray(posteriors)
    if P.ndim == 2:
        if P.shape[1] != 2 and positive is None:
            raise ValueError(f"{name} as an array must be 1-d P(positive) or (n, 2) class posteriors, got {P.shape}")
        _check_proba(P, name, rows_sum=True)
        col = P.shape[1] - 1 if positive is None else int(positive)
        P = P[:, col]
    elif P.ndim == 1:
        _check_proba(P, name, rows_sum=False)
    else:
        raise ValueError(f"{name} must be 1-d or 2-d, got shape {P.shape}")
    if index is not None and len(index) != P.shape[0]:
        raise ValueError(f"{name} has {P.shape[0]} rows but task_ids has {len(index)}")
    return np.ascontiguousarray(P, dtype=np.float64)


def hard_targets(labels, task_ids=None, *, classes=None, positive=None, name: str = "labels") -> np.ndarray:
    """Labels in {-1, +1} for each row of X from class labels (e.g. ``fit_predict`` output).

    ``classes`` (the class set, e.g. the posteriors' columns) is checked against the labels:
    a label outside it is an error. The positive class is ``positive`` or the last of
    ``classes`` (default: of the sorted distinct labels, which must be at most two).
    """
    labels = from_torch(labels)
    index = None if task_ids is None else task_index(task_ids)
    if isinstance(labels, pd.Series):
        n = len(index) if index is not None else len(labels)
        vals = _align(labels, index, n, name).to_numpy()
    else:
        vals = np.asarray(labels)
        if vals.ndim != 1:
            raise ValueError(f"{name} must be 1-d, got shape {vals.shape}")
        if index is not None and len(index) != vals.shape[0]:
            raise ValueError(f"{name} has {vals.shape[0]} rows but task_ids has {len(index)}")
    if pd.isna(pd.Series(vals)).any():
        raise ValueError(f"{name} has missing values")
    seen = list(pd.unique(pd.Series(vals)))
    if classes is None:
        try:
            cls = sorted(seen)
        except TypeError:
            cls = seen
        if len(cls) < 2:
            if set(seen) <= {-1, 1}:
                cls = [-1, 1]
            elif positive is None:
                raise ValueError(f"{name} hold one class only ({_show_ids(seen)}); name the +1 class with positive=")
            elif positive not in cls:
                cls = [*cls, positive]
    else:
        cls = list(classes)
        other = [v for v in seen if v not in cls]
        if other:
            raise ValueError(f"{name} hold classes {_show_ids(other)} that are not among the classes {cls}")
    pos = _positive(cls, positive, name)
    return np.where(vals == pos, 1.0, -1.0)


def resolve(
    X, targets, loss: str, *, task_ids=None, y=None, positive=None
) -> tuple[np.ndarray, Any, Any, pd.Index | None]:
    """X as a numpy array and the targets (and ``y``) in its row order.

    X: numpy array, torch tensor or a DataFrame indexed by task id (``task_ids`` may name the
    ids of an array X instead). Soft targets: see :func:`soft_targets`; hard targets: labels
    in {-1, +1} as an array, or class labels as a Series indexed by task id (see
    :func:`hard_targets`). ``y`` (labels for the error, e.g. the gold truth) likewise; with
    DataFrame posteriors its classes must be the posteriors' classes. Returns
    ``(X, targets, y, index)``; ``index`` is None when X carries no ids.
    """
    X = from_torch(X)
    index = None
    if isinstance(X, pd.DataFrame):
        if task_ids is not None:
            raise ValueError("X is a DataFrame indexed by task id; do not also pass task_ids")
        index = task_index(X.index, name="X.index")
        X = X.to_numpy()
    elif task_ids is not None:
        n = np.shape(X)[0] if hasattr(X, "shape") else len(X)
        index = task_index(task_ids, n)
    classes = None
    if targets is None:
        pass
    elif loss == "soft":
        if isinstance(targets, pd.DataFrame):
            classes = list(targets.columns)
        if isinstance(targets, (pd.DataFrame, pd.Series)) or index is not None:
            targets = soft_targets(targets, index, positive=positive, name="targets")
        else:
            targets = from_torch(targets)
    else:
        if isinstance(targets, pd.Series) or (index is not None and not isinstance(targets, np.ndarray)):
            targets = hard_targets(targets, index, positive=positive, name="targets")
        else:
            targets = from_torch(targets)
    if y is not None:
        y = from_torch(y)
        plus_minus = not isinstance(y, pd.Series) and set(np.unique(np.asarray(y)).tolist()) <= {-1, 1}
        if isinstance(y, pd.Series) or (classes is not None and not plus_minus):
            y = hard_targets(y, index, classes=classes, positive=positive, name="y")
    return X, targets, y, index


def one_vs_rest_targets(posteriors, task_ids=None) -> tuple[np.ndarray, list]:
    """(K, n) soft targets P(class k) per row of X, and the K classes: one binary student per class.

    Use them as the per-network ``targets`` of :func:`kdcore.distill.train_many` (``loss="soft"``)
    and predict with :func:`predict_one_vs_rest`. For K = 2 the reduction is the binary student
    itself (module docstring).
    """
    posteriors = from_torch(posteriors)
    if isinstance(posteriors, pd.DataFrame):
        _check_proba(posteriors.to_numpy(), "posteriors", rows_sum=True)
        index = None if task_ids is None else task_index(task_ids)
        al = _align(posteriors, index, len(index) if index is not None else len(posteriors), "posteriors")
        return np.ascontiguousarray(al.to_numpy(dtype=np.float64).T), list(posteriors.columns)
    P = np.asarray(posteriors)
    if P.ndim != 2 or P.shape[1] < 2:
        raise ValueError(f"posteriors must be (n, K) with K >= 2, got shape {P.shape}")
    _check_proba(P, "posteriors", rows_sum=True)
    return np.ascontiguousarray(P.T, dtype=np.float64), list(range(P.shape[1]))


def predict_one_vs_rest(models: Sequence, X, classes: Sequence) -> np.ndarray:
    """The class of each row of X: argmax over k of student k's output f_k(x)."""
    if len(models) != len(classes):
        raise ValueError(f"{len(models)} students for {len(classes)} classes")
    F = np.column_stack([m.decision_function(from_torch(X)) for m in models])
    return np.asarray(classes, dtype=object)[F.argmax(axis=1)]
