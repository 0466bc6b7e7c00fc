"""Shared pieces of the kdcore.crowdkit equality tests against live crowd-kit 1.4.2."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
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
        elif isinstance(a, np.ndarray):
            assert isinstance(b, np.ndarray) and a.dtype == b.dtype, f"{name}: {type(b).__name__} here, {a.dtype} there"
            np.testing.assert_allclose(b, a, rtol=CROWDKIT_RTOL, atol=0, err_msg=name)
        elif isinstance(a, list):
            assert len(a) == len(b), f"{name}: {len(a)} entries in crowd-kit, {len(b)} here"
            pd.testing.assert_series_equal(pd.Series(a, dtype=float), pd.Series(b, dtype=float), rtol=CROWDKIT_RTOL)
        else:
            assert a == b, f"{name}: {a!r} != {b!r}"


def assert_same_layout(expected, got, attrs) -> None:
    """The same type, shape, dtypes, index and column labels, names and order of each attribute
    (the values themselves are not compared)."""
    for name in attrs:
        a, b = getattr(expected, name), getattr(got, name)
        assert type(a) is type(b), f"{name}: {type(b).__name__} here, {type(a).__name__} in crowd-kit"
        if isinstance(a, (pd.DataFrame, pd.Series)):
            pd.testing.assert_index_equal(a.index, b.index, obj=f"{name}.index")
            assert a.shape == b.shape, f"{name}: shape {b.shape} here, {a.shape} in crowd-kit"
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_index_equal(a.columns, b.columns, obj=f"{name}.columns")
            pd.testing.assert_series_equal(a.dtypes, b.dtypes, obj=f"{name}.dtypes")
        elif isinstance(a, pd.Series):
            assert a.name == b.name and a.dtype == b.dtype, f"{name}: {b.name!r} {b.dtype} here, {a.name!r} {a.dtype}"
        elif isinstance(a, np.ndarray):
            assert a.shape == b.shape and a.dtype == b.dtype, f"{name}: {b.shape} {b.dtype} here, {a.shape} {a.dtype}"


def quiet(fn, *args, **kwargs):
    """Call crowd-kit with its pandas FutureWarnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)
