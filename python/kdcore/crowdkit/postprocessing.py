"""crowd-kit's ``crowdkit.postprocessing`` on :mod:`kdcore.crowd.metrics`."""

from __future__ import annotations

import pandas as pd

from ..crowd import metrics as _m
from .metrics.data import check_answers

__all__ = ["entropy_threshold"]


def entropy_threshold(
    answers: pd.DataFrame, workers_skills: pd.Series | None = None, percentile: int = 10, min_answers: int = 2
) -> pd.DataFrame:
    """crowd-kit's ``entropy_threshold``: the answers without the workers of lowest answer entropy."""
    check_answers(answers)
    return _m.entropy_threshold(answers, workers_skills, percentile=percentile, min_answers=min_answers)
