"""Gold tasks and prior error counts: known true labels clamped in every E-step.

An EM aggregator given ``true_labels`` (task id -> label) keeps the posterior of
each gold task at its one-hot label: the task's answers then count as fully
labelled evidence about their workers in every M-step, and the gold labels are
returned unchanged. :func:`gold_codes` checks the input once (unknown tasks or
unknown classes are a ``ValueError`` naming them); :func:`clamp` writes the
one-hot rows. For the Dawid-Skene fit: :func:`class_counts` (expected counts
n[w, k, l] on the compiled vote kernel), :func:`initial_counts` (prior error counts in
crowd-kit's ``errors_`` layout or ``confusions_``'s) and :func:`errors_frame`
(``confusions_`` in crowd-kit's layout, observed pairs only).

>>> import pandas as pd
>>> from kdcore.crowd import Responses
>>> r = Responses.from_arrays(["a", "a", "b"], ["u", "v", "u"], [0, 1, 1])
>>> idx, codes = gold_codes(r, pd.Series({"b": 0}))
>>> idx.tolist(), codes.tolist()
([1], [0])
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd

from ..backends import HAS_CPP, _core
from ._responses import Responses

__all__ = ["gold_codes", "clamp", "class_counts", "initial_counts", "errors_frame", "fit_with_gold"]


def _show(values) -> str:
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    head = ", ".join(repr(v) for v in values[:5])
    return head + (f", ... ({len(values)} in all)" if len(values) > 5 else "")


def gold_codes(responses: Responses, true_labels) -> tuple[np.ndarray, np.ndarray]:
    """Task codes and class codes of the gold labels.

    Parameters
    ----------
    responses : Responses
    true_labels : pd.Series or dict, task id -> label (None: no gold)

    Returns
    -------
    (task_idx, class_idx) : int64 arrays, the row of each gold task in ``responses``
        and the column of its label in ``responses.classes_`` (empty when None).

    Raises
    ------
    TypeError
        ``true_labels`` is neither a Series nor a dict.
    ValueError
        A gold task has no answer in ``responses``, a gold label is not one of its
        classes, a label is missing (NaN), or a task appears twice.
    """
    empty = np.empty(0, dtype=np.int64)
    if true_labels is None:
        return empty, empty
    if isinstance(true_labels, dict):
        true_labels = pd.Series(true_labels, dtype=object)
    if not isinstance(true_labels, pd.Series):
        raise TypeError(
            f"true_labels must be a pandas Series or a dict (task id -> label), got {type(true_labels).__name__}"
        )
    if len(true_labels) == 0:
        return empty, empty
    if true_labels.isna().any():
        raise ValueError(f"true_labels has missing labels for tasks {_show(true_labels.index[true_labels.isna()])}")
    if true_labels.index.has_duplicates:
        raise ValueError(
            f"true_labels lists tasks more than once: {_show(true_labels.index[true_labels.index.duplicated()].unique())}"
        )
    tasks = pd.Index(responses.task_ids)
    task_idx = tasks.get_indexer(true_labels.index)
    if (task_idx < 0).any():
        # ids compared as strings when the two sides use different types (1 vs "1")
        task_idx = pd.Index(tasks.astype(str)).get_indexer(true_labels.index.astype(str))
    if (task_idx < 0).any():
        raise ValueError(
            f"true_labels names tasks that have no answer: {_show(true_labels.index[task_idx < 0])}; "
            f"gold labels must be for tasks of the responses ({responses.n_tasks} tasks)"
        )
    classes = pd.Index(np.asarray(responses.classes_))
    values = true_labels.to_numpy()
    class_idx = classes.get_indexer(pd.Index(values))
    if (class_idx < 0).any():
        class_idx = pd.Index(classes.astype(str)).get_indexer(pd.Index(values).astype(str))
    if (class_idx < 0).any():
        raise ValueError(
            f"true_labels holds labels that are not classes of the responses: {_show(pd.unique(values[class_idx < 0]))}; "
            f"classes: {list(classes)}"
        )
    return task_idx.astype(np.int64), class_idx.astype(np.int64)


def clamp(post: np.ndarray, task_idx: np.ndarray, class_idx: np.ndarray) -> np.ndarray:
    """Set each gold task's posterior to its one-hot label, in place; returns ``post``.

    ``post`` is (n_tasks, K) or typed (n_tasks, T, K); in the typed case the gold
    task's type posterior is kept and only the class is fixed:
    post[j, t, :] = (sum_k post[j, t, k]) one_hot(label).
    """
    if task_idx.size == 0:
        return post
    if post.ndim == 2:
        post[task_idx] = 0.0
        post[task_idx, class_idx] = 1.0
    else:
        type_mass = post[task_idx].sum(axis=2)  # (G, T)
        post[task_idx] = 0.0
        post[task_idx, :, class_idx] = type_mass
    return post


def class_counts(r: Responses, post: np.ndarray, n_threads: int = 1) -> np.ndarray:
    """n[w, k, l] = sum over the answers (j, w, l) of post[j, k] (``confusions_``'s layout)."""
    W, K = r.n_workers, r.n_classes
    out = np.empty((W, K, K))
    for k in range(K):
        weight = np.ascontiguousarray(post[:, k], dtype=np.float64)
        if HAS_CPP:
            scores, _, _ = _core.vote_scores(
                r.worker_indptr, r.worker_task, r.worker_label, W, r.n_tasks, K, weight, int(n_threads)
            )
        else:  # pragma: no cover - only without the compiled core
            key = np.asarray(r.worker, np.int64) * K + r.label
            scores = np.bincount(key, weights=weight[r.task], minlength=W * K).reshape(W, K).astype(np.float64)
        out[:, k, :] = scores
    return out


def initial_counts(r: Responses, initial_error: Any) -> np.ndarray:
    """Prior error counts as an array (n_workers, K, K) in ``confusions_``'s layout ([w, true, answer])."""
    W, K = r.n_workers, r.n_classes
    if isinstance(initial_error, pd.DataFrame):
        if list(initial_error.index.names) != ["worker", "label"]:
            raise ValueError(
                f"initial_error must be indexed by ('worker', 'label'), got index names {list(initial_error.index.names)}"
            )
        classes = pd.Index(np.asarray(r.classes_))
        cols = classes.get_indexer(initial_error.columns)
        if (cols < 0).any():
            raise ValueError(
                f"initial_error has columns {list(initial_error.columns[cols < 0])}; classes are {list(classes)}"
            )
        w = pd.Index(r.worker_ids).get_indexer(initial_error.index.get_level_values("worker"))
        lab = classes.get_indexer(initial_error.index.get_level_values("label"))
        if (lab < 0).any():
            raise ValueError("initial_error has answered labels that are not classes " + str(list(classes)))
        values = initial_error.to_numpy(dtype=np.float64)
        out = np.zeros((W, K, K))
        on = w >= 0  # workers absent from the data are ignored
        for j, k in enumerate(cols):
            np.add.at(out, (w[on], k, lab[on]), values[on, j])
    else:
        out = np.asarray(initial_error, dtype=np.float64)
        if out.shape != (W, K, K):
            raise ValueError(f"initial_error must be a DataFrame or an array of shape ({W}, {K}, {K}), got {out.shape}")
        out = out.copy()
    if not np.isfinite(out).all() or (out < 0).any():
        raise ValueError("initial_error must hold finite counts >= 0")
    return out


def errors_frame(r: Responses, conf: np.ndarray, worker_ids: pd.Index, classes: np.ndarray) -> pd.DataFrame:
    """``conf[w, k, l]`` as crowd-kit's ``errors_``: rows (worker, answered label) for the pairs
    that occur (sorted), one column per true label."""
    K = len(classes)
    key = np.unique(np.asarray(r.worker, np.int64) * K + r.label)
    w, lab = key // K, key % K
    index = pd.MultiIndex.from_arrays(
        [pd.Index(worker_ids).take(w), pd.Index(classes).take(lab)], names=["worker", "label"]
    )
    return pd.DataFrame(conf[w, :, lab], index=index, columns=pd.Index(classes, name="true_label"))


def fit_with_gold(est, data, true_labels):
    """Fit ``est`` on ``data`` with gold labels where it takes them: as its ``true_labels``
    parameter, or as ``fit``'s ``true_labels`` argument (DawidSkene, OneCoinDawidSkene,
    TypeAware); otherwise without (MajorityVote). ``true_labels`` None: a plain fit."""
    if true_labels is None:
        return est.fit(data)
    if "true_labels" in est._param_names():
        return est.set_params(true_labels=true_labels).fit(data)
    if "true_labels" in inspect.signature(est.fit).parameters:
        return est.fit(data, true_labels=true_labels)
    return est.fit(data)
