"""crowd-kit's ``crowdkit.metrics.workers`` on :mod:`kdcore.crowd.metrics`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...crowd import metrics as _m
from ..aggregation import MajorityVote

__all__ = ["accuracy_on_aggregates"]

_DEFAULT = object()


def accuracy_on_aggregates(
    answers: pd.DataFrame,
    aggregator: Any = _DEFAULT,
    aggregates: pd.Series | None = None,
    by: str | None = None,
) -> float | pd.Series:
    """crowd-kit's ``accuracy_on_aggregates``: answers' accuracy against the aggregated labels.

    ``aggregator`` defaults to a new :class:`~kdcore.crowdkit.aggregation.MajorityVote`;
    ``aggregates`` (Series by task), when given, is used instead of fitting it.
    """
    if aggregator is _DEFAULT:
        aggregator = MajorityVote()
    if aggregates is None and aggregator is None:
        raise AssertionError("One of aggregator or aggregates should be not None")
    if aggregates is None:
        aggregates = aggregator.fit_predict(answers)
    return _m.accuracy_on_aggregates(answers, aggregates, by=by)
