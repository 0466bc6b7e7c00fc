"""Gold tasks: known true labels for some tasks, clamped in every E-step.

An EM aggregator given ``true_labels`` (task id -> label) keeps the posterior of
each gold task at its one-hot label: the task's answers then count as fully
labelled evidence about their workers in every M-step, and the gold labels are
returned unchanged. :func:`gold_codes` checks the input once (unknown tasks or
unknown classes are a ``ValueError`` naming them); :func:`clamp` writes the
one-hot rows.

>>> import pandas as pd
>>> from kdcore.crowd import Responses
>>> r = Responses.from_arrays(["a", "a", "b"], ["u", "v", "u"], [0, 1, 1])
>>> idx, codes = gold_codes(r, pd.Series({"b": 0}))
>>> idx.tolist(), codes.tolist()
([1], [0])
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._responses import Responses

__all__ = ["gold_codes", "clamp"]


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
