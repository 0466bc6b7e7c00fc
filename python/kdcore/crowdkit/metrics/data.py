"""crowd-kit's ``crowdkit.metrics.data`` on :mod:`kdcore.crowd.metrics`."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import pandas as pd

from ...crowd import metrics as _m
from ..aggregation import MajorityVote

__all__ = ["consistency", "uncertainty", "alpha_krippendorff"]


def check_answers(answers: Any) -> None:
    if not isinstance(answers, pd.DataFrame):
        raise TypeError("Working only with pandas DataFrame")
    for col in ("task", "worker", "label"):
        if col not in answers:
            raise AssertionError(f'There is no "{col}" column in answers')


def consistency(
    answers: pd.DataFrame,
    workers_skills: pd.Series | None = None,
    aggregator: Any = None,
    by_task: bool = False,
) -> float | pd.Series:
    """crowd-kit's ``consistency``: the one-coin posterior of each task's aggregated label.

    ``aggregator`` (default: a new :class:`~kdcore.crowdkit.aggregation.MajorityVote`) gives
    the labels and, when ``workers_skills`` is None, the skills (its ``skills_``).
    """
    check_answers(answers)
    aggregator = MajorityVote() if aggregator is None else aggregator
    aggregated = aggregator.fit_predict(answers)
    if workers_skills is None:
        if hasattr(aggregator, "skills_"):
            workers_skills = aggregator.skills_
        else:
            raise AssertionError("This aggregator is not supported. Please, provide workers skills.")
    return _m.consistency(answers, aggregated, workers_skills, by_task=by_task)


def uncertainty(
    answers: pd.DataFrame,
    workers_skills: pd.Series | None = None,
    aggregator: Any = None,
    compute_by: str = "task",
    aggregate: bool = True,
) -> float | pd.Series:
    """crowd-kit's ``uncertainty``: entropy of the skill-weighted label scores per ``compute_by`` group."""
    check_answers(answers)
    if workers_skills is None and aggregator is not None:
        aggregator.fit(answers)
        if hasattr(aggregator, "skills_"):
            workers_skills = aggregator.skills_
        else:
            raise AssertionError("This aggregator is not supported. Please, provide workers skills.")
    if workers_skills is not None:
        absent = ~pd.Index(answers["worker"]).isin(workers_skills.index)
        if absent.any():
            missing = set(answers["worker"].to_numpy()[absent].tolist())
            raise AssertionError(f"Did not provide skills for workers: {missing}.Please provide workers skills.")
    return _m.uncertainty(answers, workers_skills, by=compute_by, aggregate=aggregate)


def alpha_krippendorff(answers: pd.DataFrame, distance: Callable[[Hashable, Hashable], float] | None = None) -> float:
    """crowd-kit's ``alpha_krippendorff`` (nltk's definition; ``distance`` defaults to the binary distance)."""
    check_answers(answers)
    return _m.alpha_krippendorff(answers, distance)
