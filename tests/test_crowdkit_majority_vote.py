"""kdcore.crowdkit's MajorityVote, Wawa, ZeroBasedSkill and GoldMajorityVote equal live crowd-kit 1.4.2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _crowdkit_oracle import DATASETS, answers, assert_same, quiet, truth

ck = pytest.importorskip("crowdkit.aggregation", reason="crowd-kit 1.4.2 (the oracle) is not installed")

from kdcore.crowdkit import aggregation as kc  # noqa: E402

ATTRS = ["probas_", "labels_", "skills_"]


def _with_missing_labels(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["label"] = df["label"].astype(str)
    df.loc[df.sample(frac=0.1, random_state=0).index, "label"] = np.nan
    df.loc[df.task == df.task.iloc[0], "label"] = np.nan  # a task with no labelled answer
    return df


@pytest.mark.parametrize("missing", [False, True])
@pytest.mark.parametrize("name", DATASETS)
def test_majority_vote_and_wawa_equal_crowdkit(data_home, name, missing):
    df = answers(data_home, name)
    if missing:
        df = _with_missing_labels(df)
    a, b = quiet(ck.MajorityVote().fit, df), kc.MajorityVote().fit(df)
    assert_same(a, b, ATTRS)
    skills = a.skills_
    assert_same(quiet(ck.MajorityVote().fit, df, skills), kc.MajorityVote().fit(df, skills), ATTRS)
    a, b = ck.Wawa(), kc.Wawa()
    quiet(a.fit_predict_proba, df)
    b.fit_predict_proba(df)
    assert_same(a, b, ATTRS)


@pytest.mark.parametrize(("name", "missing"), [(name, False) for name in DATASETS] + [("rte", True), ("dog", True)])
def test_zero_based_skill_equals_crowdkit(data_home, name, missing):
    df = answers(data_home, name)
    if missing:
        df = _with_missing_labels(df)
    a, b = ck.ZeroBasedSkill(), kc.ZeroBasedSkill()
    quiet(a.fit_predict, df)
    b.fit_predict(df)
    assert_same(a, b, ATTRS)


@pytest.mark.parametrize("name", DATASETS)
def test_gold_majority_vote_equals_crowdkit(data_home, name):
    df = answers(data_home, name)
    gold = truth(data_home, name)
    gold = gold[gold.index.isin(df.task)]
    a, b = ck.GoldMajorityVote(), kc.GoldMajorityVote()
    quiet(a.fit, df, gold.iloc[: len(gold) // 3])
    b.fit(df, gold.iloc[: len(gold) // 3])
    assert_same(a, b, ["skills_"])
    # predicting needs a skill for every worker, as in crowd-kit
    known = df[df.worker.isin(a.skills_.index)]
    quiet(a.predict_proba, known)
    b.predict_proba(known)
    assert_same(a, b, ["probas_", "labels_"])
    if len(known) < len(df):
        for est in (a, b):
            with pytest.raises(ValueError, match="Skill value is missing"):
                quiet(est.predict, df)


def test_missing_skill_policies_equal_crowdkit(data_home):
    df = answers(data_home, "dog")
    skills = quiet(ck.MajorityVote().fit, df).skills_.iloc[::2]
    for kw in [dict(on_missing_skill="value", default_skill=0.3), dict(on_missing_skill="ignore")]:
        try:
            a = quiet(ck.MajorityVote(**kw).fit, df, skills)
        except ValueError as exc:
            with pytest.raises(ValueError, match=str(exc)[:20]):
                kc.MajorityVote(**kw).fit(df, skills)
            continue
        assert_same(a, kc.MajorityVote(**kw).fit(df, skills), ATTRS)
    kept = df[df.worker.isin(skills.index) | (df.task.map(df.groupby("task").size()) > 9)]
    kept = kept[kept.task.isin(kept[kept.worker.isin(skills.index)].task)]
    a = quiet(ck.MajorityVote(on_missing_skill="ignore").fit, kept, skills)
    assert_same(a, kc.MajorityVote(on_missing_skill="ignore").fit(kept, skills), ATTRS)
    for kw, msg in [
        (dict(), "Skill value is missing"),
        (dict(default_skill=0.5), "default_skill is used"),
        (dict(on_missing_skill="value"), "Default skill value must be specified"),
        (dict(on_missing_skill="bogus"), "Unknown option"),
    ]:
        for lib in (ck, kc):
            with pytest.raises(ValueError, match=msg):
                quiet(lib.MajorityVote(**kw).fit, df, skills)


def test_ties_go_to_the_first_label_in_crowdkits_order():
    # plain vote: labels in order of first appearance (2 before 1); weighted: sorted (1 before 2)
    df = pd.DataFrame({"task": ["b", "b", "a", "a"], "worker": ["x", "y", "x", "y"], "label": [2, 1, 1, 2]})
    a, b = quiet(ck.MajorityVote().fit, df), kc.MajorityVote().fit(df)
    assert_same(a, b, ATTRS)
    assert b.labels_.tolist() == [2, 2]
    skills = pd.Series({"x": 0.5, "y": 0.5})
    a, b = quiet(ck.MajorityVote().fit, df, skills), kc.MajorityVote().fit(df, skills)
    assert_same(a, b, ATTRS)
    assert b.labels_.tolist() == [1, 1]


def test_unfitted_predict_is_refused():
    df = pd.DataFrame({"task": [1], "worker": [1], "label": [0]})
    for cls in ("Wawa", "ZeroBasedSkill", "GoldMajorityVote"):
        with pytest.raises(Exception, match="not fitted"):
            quiet(getattr(ck, cls)().predict, df)
        with pytest.raises(ValueError, match="not fitted"):
            getattr(kc, cls)().predict(df)
