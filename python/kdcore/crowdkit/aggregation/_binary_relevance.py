"""crowd-kit's BinaryRelevance (multi-label answers, one binary problem per label).

As crowd-kit 1.4.2: the label sets are one-hot encoded as scikit-learn's
``MultiLabelBinarizer`` does (labels sorted; kdcore.crowd._binary_relevance.binarize, no
scikit-learn needed), each label's 0/1 answers go to a fresh copy of the base aggregator
(``fit_predict``), and a task's aggregated list holds, in label order, the labels whose
aggregator answered a true value; tasks are listed in the order the first label's
aggregator lists them.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd

from ...crowd._binary_relevance import binarize, label_lists
from .._frame import check_frame
from ._majority_vote import MajorityVote, estimator_repr

__all__ = ["BinaryRelevance"]


def clone_aggregator(aggregator: Any) -> Any:
    """A new, unfitted aggregator of the same class with the same constructor parameters."""
    names = getattr(aggregator, "_params", None)
    if names is None:
        names = [p for p in inspect.signature(type(aggregator).__init__).parameters if p != "self"]
    return type(aggregator)(**{n: getattr(aggregator, n) for n in names})


class BinaryRelevance:
    """crowd-kit 1.4.2's BinaryRelevance over any categorical aggregator of the drop-in.

    Parameters
    ----------
    base_aggregator : aggregator, default ``MajorityVote()``
        An aggregator of ``kdcore.crowdkit.aggregation`` (anything with ``fit_predict(data)``
        and ``labels_``), cloned with the same parameters for each label.

    Attributes
    ----------
    labels_ : Series (task) named "agg_label": each task's list of labels
    aggregators_ : dict label -> the fitted aggregator of that label's binary problem

    Example
    -------
    >>> import pandas as pd
    >>> from kdcore.crowdkit.aggregation import BinaryRelevance, DawidSkene
    >>> df = pd.DataFrame({"task": ["t1", "t1", "t1", "t2", "t2", "t2"], "worker": ["w1", "w2", "w3"] * 2,
    ...                    "label": [["house", "tree"], ["house"], ["house", "tree", "grass"],
    ...                              ["car"], ["car", "human"], ["train"]]})
    >>> BinaryRelevance(DawidSkene(n_iter=10)).fit_predict(df).tolist()
    [['house', 'tree'], ['car']]
    """

    _params = ("base_aggregator",)

    def __init__(self, base_aggregator: Any = None) -> None:
        if base_aggregator is None:
            base_aggregator = MajorityVote()
        if not callable(getattr(base_aggregator, "fit_predict", None)) or isinstance(base_aggregator, type):
            raise TypeError(
                "base_aggregator must be a classification aggregator instance (e.g. "
                f"kdcore.crowdkit.aggregation.MajorityVote()), got {base_aggregator!r}"
            )
        self.base_aggregator = base_aggregator
        self.aggregators_: dict[Any, Any] = {}

    def __repr__(self) -> str:
        return estimator_repr(self, self._params)

    def fit(self, data: pd.DataFrame) -> BinaryRelevance:
        """Fit one aggregator per label; returns self. ``label`` holds a list of labels per answer."""
        frame = check_frame(data)
        indicators, classes = binarize(frame["label"])
        self.aggregators_ = {}
        tasks: list[pd.Index] = []
        chosen: list[pd.Series] = []
        for i, label in enumerate(classes):
            single = pd.DataFrame({"task": frame["task"], "worker": frame["worker"], "label": indicators[:, i]})
            agg = clone_aggregator(self.base_aggregator)
            agg.fit_predict(single)
            self.aggregators_[label] = agg
            if agg.labels_ is not None:
                tasks.append(agg.labels_.index)
                chosen.append(agg.labels_)
        if not tasks or not any(len(t) for t in tasks):
            self.labels_ = pd.Series({}, dtype=float, name="agg_label")
            return self
        union = tasks[0]
        for more in tasks[1:]:  # crowd-kit's dict: tasks in order of first sight
            if not more.equals(union):
                union = union.append(more.difference(union, sort=False))
        has = np.zeros((len(union), len(classes)), dtype=bool)
        for i, lab in enumerate(chosen):
            values = lab.reindex(union).to_numpy(dtype=object)
            has[:, i] = union.isin(lab.index) & values.astype(bool)  # crowd-kit's ``if label_value`` (NaN is true)
        # crowd-kit builds a dict task -> list: its Series infers the index from the task values
        self.labels_ = pd.Series(label_lists(has, classes), index=pd.Index(union.tolist()), name="agg_label")
        self.labels_.index.name = "task"
        return self

    def fit_predict(self, data: pd.DataFrame) -> pd.Series:
        """Fit and return ``labels_``."""
        return self.fit(data).labels_
