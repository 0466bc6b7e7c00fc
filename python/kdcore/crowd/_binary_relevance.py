"""Binary relevance: multi-label answers aggregated one label at a time.

Each answer is a set of labels (a list, tuple, set or array per row of the ``label``
column). For every label that occurs, the answers become a binary problem (1: the worker
gave this label, 0: the worker answered the task without it), which any single-label
aggregator solves; a task's aggregated set is the labels whose binary problem came out 1.

:func:`binarize` is the one-pass encoding shared with the crowd-kit drop-in
(``kdcore.crowdkit.aggregation.BinaryRelevance``): the labels sorted as Python sorts them
(scikit-learn's ``MultiLabelBinarizer``, which crowd-kit uses), one indicator column each.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_list_like

from ._base import BaseAggregator, BaseEstimator
from ._majority_vote import MajorityVote
from ._responses import Responses

__all__ = ["BinaryRelevance", "binarize"]


def binarize(labels: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The (rows x labels) 0/1 int64 indicator matrix of a column of label sets, and the labels (sorted).

    The labels and their order are scikit-learn's ``MultiLabelBinarizer``'s: an int array
    when every label is a Python int, an object array otherwise, sorted. A missing value
    (NaN) inside a list is no label.

    Raises
    ------
    TypeError
        If an entry is not a list-like of labels (a string or a scalar such as NaN).
    """
    values = labels.to_numpy(dtype=object)
    n = len(values)
    listlike = np.asarray(_is_list_like(values), dtype=bool) if n else np.ones(0, bool)
    if not listlike.all():
        pos = int(np.flatnonzero(~listlike)[0])
        raise TypeError(
            f"each label must be a list (or tuple, set, array) of labels; row {pos} holds "
            f"{values[pos]!r} ({type(values[pos]).__name__})"
        )
    lens = np.fromiter(map(len, values), np.int64, n)
    flat = np.fromiter(itertools.chain.from_iterable(values), dtype=object, count=int(lens.sum()))
    rows = np.repeat(np.arange(n), lens)
    codes, uniques = pd.factorize(flat, sort=False)  # a missing value is code -1: no label
    if (codes < 0).any():
        rows, codes = rows[codes >= 0], codes[codes >= 0]
    distinct = list(uniques)
    classes = np.empty(len(distinct), dtype=int if all(isinstance(c, int) for c in distinct) else object)
    classes[:] = distinct
    try:
        order = np.argsort(classes, kind="stable") if len(classes) else np.zeros(0, np.intp)
    except TypeError as err:
        raise TypeError(f"the labels cannot be sorted (mixed types?): {err}") from None
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    out = np.zeros((n, len(classes)), dtype=np.int64)
    out[rows, rank[codes]] = 1
    return out, classes[order]


_is_list_like = np.frompyfunc(is_list_like, 1, 1)


def label_lists(has: np.ndarray, classes: np.ndarray) -> list[list[Any]]:
    """Each row's list of the ``classes`` it has (a new list per row), from a (rows x labels) bool array.

    Rows with the same labels share one template, copied per row: one pass over the rows
    instead of a split per row.
    """
    if has.shape[1] == 0:
        return [[] for _ in range(has.shape[0])]
    keys, inverse = np.unique(has, axis=0, return_inverse=True)
    templates = [[classes[j] for j in np.flatnonzero(key)] for key in keys]
    return [templates[k].copy() for k in inverse.ravel().tolist()]


def _fit_one(base: Any, data: pd.DataFrame | Responses) -> Any:
    agg: Any = base.clone() if isinstance(base, BaseEstimator) else type(base)(**base.get_params(deep=False))
    return agg.fit(data)


class BinaryRelevance(BaseEstimator):
    """Multi-label aggregation by binary relevance over any single-label aggregator.

    Parameters
    ----------
    base_aggregator : aggregator or None, default None (``MajorityVote(tie_break="first")``)
        Cloned (unfitted, same parameters) for each label.

    Attributes
    ----------
    classes_ : ndarray, the labels (sorted)
    aggregators_ : dict label -> the fitted aggregator of its binary problem
    probas_ : DataFrame (task x label): the probability that the task has the label
    labels_ : Series (task) named "agg_label": each task's list of labels (in ``classes_`` order)

    Examples
    --------
    >>> import pandas as pd
    >>> from kdcore.crowd import BinaryRelevance
    >>> df = pd.DataFrame({"task": [1, 1, 1, 2, 2, 2], "worker": ["a", "b", "c"] * 2,
    ...                    "label": [["cat"], ["cat", "dog"], ["dog", "cat"], [], ["dog"], ["dog"]]})
    >>> BinaryRelevance().fit_predict(df).tolist()
    [['cat', 'dog'], ['dog']]
    """

    def __init__(self, base_aggregator: BaseAggregator | None = None) -> None:
        self.base_aggregator = base_aggregator

    def _default_nested(self, name: str) -> BaseEstimator:
        if name == "base_aggregator":
            return MajorityVote(tie_break="first")
        return super()._default_nested(name)

    def fit(self, data: pd.DataFrame) -> BinaryRelevance:
        """Fit one aggregator per label; returns self.

        ``data``: a DataFrame with ``task``, ``worker`` and ``label`` columns, each label a
        list of labels (possibly empty). Repeated (task, worker) rows are passed on as they
        are (the base aggregator's ``duplicates`` rules apply).
        """
        base = self.base_aggregator if self.base_aggregator is not None else self._default_nested("base_aggregator")
        if not isinstance(base, BaseAggregator):
            raise TypeError(f"base_aggregator must be a kdcore.crowd aggregator, got {type(base).__name__}")
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data must be a pandas DataFrame with 'task', 'worker', 'label' columns, got {type(data)}")
        missing = [c for c in ("task", "worker", "label") if c not in data.columns]
        if missing:
            raise KeyError(f"data has no column(s) {missing}; expected 'task', 'worker', 'label'")
        if len(data) == 0:
            raise ValueError("data has no rows")
        indicators, classes = binarize(data["label"])
        if len(classes) == 0:
            raise ValueError("no answer has any label (every label list is empty)")
        t_codes, tasks = pd.factorize(data["task"], sort=True)
        w_codes, workers = pd.factorize(data["worker"], sort=True)
        if (t_codes < 0).any() or (w_codes < 0).any():
            raise ValueError("the task and worker columns must not have missing values (NaN)")
        task_ids, worker_ids = np.asarray(tasks), np.asarray(workers)
        t32, w32 = t_codes.astype(np.int32), w_codes.astype(np.int32)
        self.classes_ = classes
        self.aggregators_: dict[Any, BaseAggregator] = {}
        probas = np.zeros((len(task_ids), len(classes)))
        has = np.zeros((len(task_ids), len(classes)), dtype=bool)
        for i, label in enumerate(classes):
            binary = Responses._from_codes(
                t32, w32, np.ascontiguousarray(indicators[:, i], dtype=np.int32), task_ids, worker_ids, np.array([0, 1])
            )
            agg = _fit_one(base, binary)
            self.aggregators_[label] = agg
            probas[:, i] = agg.probas_[1].to_numpy() if 1 in agg.probas_.columns else 0.0
            has[:, i] = agg.labels_.to_numpy() == 1
        index = pd.Index(task_ids, name="task")
        self.probas_ = pd.DataFrame(probas, index=index, columns=pd.Index(classes, name="label"))
        self.labels_ = pd.Series(label_lists(has, classes), index=index, name="agg_label", dtype=object)
        return self

    def fit_predict(self, data: pd.DataFrame) -> pd.Series:
        """Fit and return ``labels_``."""
        return self.fit(data).labels_

    def fit_predict_proba(self, data: pd.DataFrame) -> pd.DataFrame:
        """Fit and return ``probas_``."""
        return self.fit(data).probas_
