"""kdcore.crowdkit's DawidSkene and OneCoinDawidSkene equal live crowd-kit 1.4.2 on the nine real datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _crowdkit_oracle import DATASETS, answers, assert_same, quiet, truth

ck = pytest.importorskip("crowdkit.aggregation", reason="crowd-kit 1.4.2 (the oracle) is not installed")

from kdcore.crowdkit import aggregation as kc  # noqa: E402

DS_ATTRS = ["probas_", "labels_", "priors_", "errors_", "loss_history_"]


@pytest.mark.parametrize("name", DATASETS)
def test_dawid_skene_equals_crowdkit(data_home, name):
    df = answers(data_home, name)
    assert_same(quiet(ck.DawidSkene(100).fit, df), kc.DawidSkene(100).fit(df), DS_ATTRS)


@pytest.mark.parametrize("name", DATASETS)
def test_one_coin_equals_crowdkit(data_home, name):
    df = answers(data_home, name)
    assert_same(quiet(ck.OneCoinDawidSkene(100).fit, df), kc.OneCoinDawidSkene(100).fit(df), [*DS_ATTRS, "skills_"])


@pytest.mark.parametrize("name", ["rte", "dog"])
def test_dawid_skene_gold_and_initial_errors_equal_crowdkit(data_home, name):
    df = answers(data_home, name)
    gold = truth(data_home, name).iloc[:100]
    assert_same(quiet(ck.DawidSkene(100).fit, df, gold), kc.DawidSkene(100).fit(df, gold), DS_ATTRS)
    errors = quiet(ck.DawidSkene(100).fit, df).errors_
    for strategy, init in [("addition", errors.iloc[:10] * 7), ("assign", errors), ("assign", errors * 10)]:
        a = quiet(ck.DawidSkene(100, initial_error_strategy=strategy).fit, df, initial_error=init.copy())
        b = kc.DawidSkene(100, initial_error_strategy=strategy).fit(df, initial_error=init.copy())
        assert_same(a, b, DS_ATTRS)


@pytest.mark.parametrize("name", ["rte", "dog"])
@pytest.mark.parametrize("cls", ["DawidSkene", "OneCoinDawidSkene"])
def test_missing_labels_as_crowdkit(data_home, name, cls):
    df = answers(data_home, name)
    df["label"] = df["label"].astype(float)
    df.loc[df.sample(frac=0.1, random_state=0).index, "label"] = np.nan
    df.loc[df.task == df.task.iloc[0], "label"] = np.nan  # a task with no labelled answer
    attrs = DS_ATTRS + (["skills_"] if cls == "OneCoinDawidSkene" else [])
    assert_same(quiet(getattr(ck, cls)(100).fit, df), getattr(kc, cls)(100).fit(df), attrs)


@pytest.mark.parametrize("n_iter", [0, 1, -2])
def test_few_rounds_as_crowdkit(data_home, n_iter):
    df = answers(data_home, "wsd")
    assert_same(quiet(ck.DawidSkene(n_iter).fit, df), kc.DawidSkene(n_iter).fit(df), DS_ATTRS)
    assert_same(
        quiet(ck.OneCoinDawidSkene(n_iter).fit, df), kc.OneCoinDawidSkene(n_iter).fit(df), [*DS_ATTRS, "skills_"]
    )


def test_ties_and_order_follow_first_appearance():
    # task "b" is tied; crowd-kit's columns are [2, 1] (first appearance), so idxmax picks 2
    df = pd.DataFrame(
        {"task": ["b", "b", "a", "a", "a"], "worker": ["x", "y", "x", "y", "z"], "label": [2, 1, 1, 1, 2]}
    )
    a, b = quiet(ck.DawidSkene(3).fit, df), kc.DawidSkene(3).fit(df)
    assert_same(a, b, DS_ATTRS)
    assert list(b.probas_.columns) == [2, 1] and list(b.probas_.index) == ["b", "a"]


def test_empty_table_as_crowdkit():
    df = pd.DataFrame({"task": [], "worker": [], "label": []})
    assert_same(quiet(ck.DawidSkene().fit, df), kc.DawidSkene().fit(df), ["probas_", "labels_", "priors_", "errors_"])


def test_bad_input_is_refused_as_crowdkit_does():
    df = pd.DataFrame({"task": [1, 1], "worker": [1, 2], "label": [0, 1]})
    with pytest.raises(KeyError):
        quiet(ck.DawidSkene().fit, df.drop(columns="label"))
    with pytest.raises(KeyError, match="label"):
        kc.DawidSkene().fit(df.drop(columns="label"))
    with pytest.raises(TypeError, match="DataFrame"):
        kc.DawidSkene().fit(df.to_numpy())
    with pytest.raises(ValueError, match="Invalid initial_error_strategy"):
        kc.DawidSkene(initial_error_strategy="foo").fit(df, initial_error=pd.DataFrame())
    init = pd.DataFrame(
        [[1.0, 0.0]], index=pd.MultiIndex.from_tuples([(1, 0)], names=["worker", "label"]), columns=[0, 1]
    )
    for lib in (ck, kc):  # assign needs every worker of the data
        with pytest.raises(ValueError, match="All the workers in data should be in initial_error"):
            quiet(lib.DawidSkene(initial_error_strategy="assign").fit, df, initial_error=init)
    with pytest.raises(TypeError, match="n_iter"):
        kc.DawidSkene(n_iter=1.5).fit(df)
