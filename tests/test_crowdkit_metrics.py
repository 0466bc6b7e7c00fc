"""kdcore.crowdkit's metrics and post-processing equal live crowd-kit 1.4.2 on the real datasets."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from _crowdkit_oracle import DATASETS, answers
from _tol import CROWDKIT_RTOL

pytest.importorskip("crowdkit.aggregation", reason="crowd-kit 1.4.2 (the oracle) is not installed")

from crowdkit.aggregation import MajorityVote as CkMajorityVote  # noqa: E402
from crowdkit.metrics import data as ck_data  # noqa: E402
from crowdkit.metrics import workers as ck_workers  # noqa: E402
from crowdkit.postprocessing import entropy_threshold as ck_entropy_threshold  # noqa: E402

from kdcore.crowd import metrics as native  # noqa: E402
from kdcore.crowdkit.aggregation import MajorityVote  # noqa: E402
from kdcore.crowdkit.metrics import data as kc_data  # noqa: E402
from kdcore.crowdkit.metrics import workers as kc_workers  # noqa: E402
from kdcore.crowdkit.postprocessing import entropy_threshold  # noqa: E402

SMALL = ["bluebirds", "rte", "temp", "wsd", "dog", "face"]  # crowd-kit's row-wise apply is slow on the rest


def _same(a, b) -> None:
    if isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, rtol=CROWDKIT_RTOL)
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    else:
        assert isinstance(b, float)
        np.testing.assert_allclose(b, a, rtol=CROWDKIT_RTOL)


def _ck(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.mark.parametrize("name", DATASETS)
def test_consistency_accuracy_and_alpha_equal_crowdkit(data_home, name):
    df = answers(data_home, name)
    _same(_ck(ck_data.consistency, df, by_task=True), kc_data.consistency(df, by_task=True))
    _same(_ck(ck_data.consistency, df), kc_data.consistency(df))
    _same(_ck(ck_data.alpha_krippendorff, df), kc_data.alpha_krippendorff(df))
    _same(_ck(ck_workers.accuracy_on_aggregates, df), kc_workers.accuracy_on_aggregates(df))
    _same(_ck(ck_workers.accuracy_on_aggregates, df, by="worker"), kc_workers.accuracy_on_aggregates(df, by="worker"))


@pytest.mark.parametrize("name", DATASETS)
def test_uncertainty_equals_crowdkit(data_home, name):
    df = answers(data_home, name)
    if name not in SMALL:
        df = df[df.task.isin(df.task.drop_duplicates().iloc[:500])]
    _same(_ck(ck_data.uncertainty, df), kc_data.uncertainty(df))
    skills = _ck(CkMajorityVote().fit, df).skills_
    _same(
        _ck(ck_data.uncertainty, df, skills, compute_by="worker", aggregate=False),
        kc_data.uncertainty(df, skills, compute_by="worker", aggregate=False),
    )
    _same(
        _ck(ck_data.uncertainty, df, aggregator=CkMajorityVote(), aggregate=False),
        kc_data.uncertainty(df, aggregator=MajorityVote(), aggregate=False),
    )


@pytest.mark.parametrize("name", SMALL)
def test_entropy_threshold_equals_crowdkit(data_home, name):
    df = answers(data_home, name)
    _same(_ck(ck_entropy_threshold, df), entropy_threshold(df))
    skills = _ck(CkMajorityVote().fit, df).skills_
    _same(_ck(ck_entropy_threshold, df, skills, percentile=30, min_answers=5), entropy_threshold(df, skills, 30, 5))


def test_alpha_with_a_distance_and_degenerate_cases():
    df = pd.DataFrame({"task": [1, 1, 2, 2, 3, 3], "worker": ["a", "b"] * 3, "label": [1, 2, 2, 2, 3, 1]})
    dist = lambda a, b: abs(a - b) / 2  # noqa: E731
    _same(_ck(ck_data.alpha_krippendorff, df, dist), kc_data.alpha_krippendorff(df, dist))
    one = df.assign(label=1)
    assert _ck(ck_data.alpha_krippendorff, one) == kc_data.alpha_krippendorff(one) == 1.0
    single = pd.DataFrame({"task": [1, 1], "worker": ["a", "a"], "label": [1, 2]})
    for fn in (ck_data.alpha_krippendorff, kc_data.alpha_krippendorff):
        with pytest.raises(ValueError, match="only one coder and item"):
            _ck(fn, single)


def test_bad_input_is_refused_as_crowdkit_does():
    df = pd.DataFrame({"task": [1, 1], "worker": ["a", "b"], "label": [0, 1]})
    for mod in (ck_data, kc_data):
        with pytest.raises(TypeError, match="DataFrame"):
            mod.uncertainty(df.to_numpy())
        with pytest.raises(AssertionError, match="label"):
            mod.uncertainty(df.drop(columns="label"))
        with pytest.raises(AssertionError, match="Did not provide skills"):
            _ck(mod.uncertainty, df, pd.Series({"a": 0.9}))
    for mod in (ck_workers, kc_workers):
        with pytest.raises(AssertionError, match="One of aggregator or aggregates"):
            mod.accuracy_on_aggregates(df, aggregator=None)


def test_native_metrics_take_responses(data_home):
    from kdcore.crowd import Responses

    df = answers(data_home, "wsd")
    r = Responses.from_dataframe(df)
    assert native.uncertainty(r) == pytest.approx(native.uncertainty(df), rel=CROWDKIT_RTOL)
    assert native.alpha_krippendorff(r) == pytest.approx(native.alpha_krippendorff(df), rel=CROWDKIT_RTOL)
