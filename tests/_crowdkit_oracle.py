"""Shared pieces of the kdcore.crowdkit equality tests against live crowd-kit 1.4.2."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from _tol import CROWDKIT_RTOL

DATASETS = ["bluebirds", "rte", "temp", "product", "wsd", "dog", "web", "face", "adult2"]


def answers(data_home: Path, name: str) -> pd.DataFrame:
    """The answers as a crowd-kit user reads them (pd.read_csv; repeated answers kept)."""
    return pd.read_csv(data_home / "crowd" / name / "answers.csv")


def truth(data_home: Path, name: str) -> pd.Series:
    return pd.read_csv(data_home / "crowd" / name / "truth.csv").drop_duplicates("task").set_index("task")["truth"]


def assert_same(expected, got, attrs) -> None:
    """pandas.testing equality (rtol CROWDKIT_RTOL) of each fitted attribute, dtypes, names and order included."""
    for name in attrs:
        a, b = getattr(expected, name), getattr(got, name)
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b, rtol=CROWDKIT_RTOL, obj=name)
        elif isinstance(a, pd.Series):
            pd.testing.assert_series_equal(a, b, rtol=CROWDKIT_RTOL, obj=name)
        elif isinstance(a, list):
            assert len(a) == len(b), f"{name}: {len(a)} entries in crowd-kit, {len(b)} here"
            pd.testing.assert_series_equal(pd.Series(a, dtype=float), pd.Series(b, dtype=float), rtol=CROWDKIT_RTOL)
        else:
            assert a == b, f"{name}: {a!r} != {b!r}"


def quiet(fn, *args, **kwargs):
    """Call crowd-kit with its pandas FutureWarnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)
