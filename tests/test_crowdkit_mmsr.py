"""kdcore.crowdkit's MMSR (sparse, compiled) equals live crowd-kit 1.4.2 where crowd-kit runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _crowdkit_oracle import DATASETS, answers, assert_same, quiet

ck = pytest.importorskip("crowdkit.aggregation", reason="crowd-kit 1.4.2 (the oracle) is not installed")

from kdcore.crowdkit import aggregation as kc  # noqa: E402

# crowd-kit's dense loops make product (skills NaN: all 10,000 rounds run) and adult2
# (825 x 825 worker pairs over 11,040 tasks) take many minutes: 20 rounds there
N_ITER = {"product": 20, "adult2": 20}


@pytest.mark.parametrize("name", DATASETS)
def test_mmsr_equals_crowdkit(data_home, name):
    df = answers(data_home, name)
    n_iter = N_ITER.get(name, 10000)
    a, b = quiet(ck.MMSR(n_iter=n_iter).fit, df), kc.MMSR(n_iter=n_iter).fit(df)
    assert_same(a, b, ["skills_", "loss_history_"])
    if a.skills_.isna().any():  # crowd-kit's rank-one rounds divide 0 by 0 here: both give NaN skills
        assert b.skills_.isna().sum() == a.skills_.isna().sum()
        for est in (a, b):
            with pytest.raises(ValueError, match="Skill value is missing"):
                quiet(est.predict, df)
        return
    quiet(a.predict_score, df)
    b.predict_score(df)
    assert_same(a, b, ["labels_", "scores_"])


def test_mmsr_seeds_and_repeated_answers_as_crowdkit(data_home):
    df = answers(data_home, "wsd")
    rep = pd.concat([df, df.iloc[::7].assign(label=df.label.iloc[::7].map({1: 2, 2: 3, 3: 1}))])
    for seed in (0, 3):
        assert_same(quiet(ck.MMSR(random_state=seed).fit, rep), kc.MMSR(random_state=seed).fit(rep), ["skills_"])
    a, b = quiet(ck.MMSR(n_iter=2).fit, df), kc.MMSR(n_iter=2).fit(df)
    assert_same(a, b, ["skills_", "loss_history_"])


def test_mmsr_refuses_missing_labels():
    df = pd.DataFrame({"task": [1, 1, 2], "worker": ["a", "b", "a"], "label": [0, np.nan, 1]})
    with pytest.raises(ValueError, match="missing"):
        kc.MMSR().fit(df)
