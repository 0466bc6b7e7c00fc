"""Gold labels, prior error counts and crowd-kit's ``errors_`` layout for the native Dawid-Skene.

- :func:`gold_rows`: the tasks of a :class:`Responses` that have a known true label, and
  its class code; :func:`clamp` sets their posteriors to that label (used after every
  E-step, so gold tasks teach the confusions and never move).
- :func:`class_counts`: the expected counts n[w, k, l] = sum over w's answers l of
  P(task = k), on the compiled vote kernel (one worker-major pass per class).
- :func:`initial_counts`: prior error counts given as crowd-kit's ``errors_`` layout
  (a DataFrame indexed by (worker, label), one column per true label) or an array
  (n_workers, K, K) in ``confusions_``'s layout, as an array in ``confusions_``'s layout.
- :func:`errors_frame`: ``confusions_`` in crowd-kit's layout, observed pairs only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..backends import HAS_CPP, _core
from ._responses import Responses

__all__ = ["gold_rows", "clamp", "class_counts", "initial_counts", "errors_frame"]


def gold_rows(r: Responses, true_labels: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(task codes, class codes) of the tasks of ``r`` with a label in ``true_labels``
    (a Series or dict by task id; tasks not in ``r`` are ignored, NaN entries too)."""
    if true_labels is None:
        return None
    if isinstance(true_labels, dict):
        true_labels = pd.Series(true_labels)
    if not isinstance(true_labels, pd.Series):
        raise TypeError(f"true_labels must be a pandas Series (or dict) by task id, got {type(true_labels).__name__}")
    gold = true_labels[true_labels.notna()]
    if gold.index.has_duplicates:
        dup = list(gold.index[gold.index.duplicated()][:5])
        raise ValueError(f"true_labels gives tasks {dup} more than once")
    rows = pd.Index(r.task_ids).get_indexer(gold.index)
    on = rows >= 0
    cls = pd.Index(np.asarray(r.classes_)).get_indexer(pd.Index(gold.to_numpy()[on]))
    if (cls < 0).any():
        bad = list(pd.unique(gold.to_numpy()[on][cls < 0]))[:5]
        raise ValueError(f"true_labels has labels {bad} that are not classes {list(r.classes_)}")
    return rows[on].astype(np.intp), cls.astype(np.intp)


def clamp(post: np.ndarray, gold: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Set the posteriors (n_tasks, T, K) of the gold tasks to their true class (in place)."""
    if gold is not None and len(gold[0]):
        post[gold[0]] = 0.0
        post[gold[0], :, gold[1]] = 1.0 / post.shape[1]
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
