"""What the native Dawid-Skene gained beside the crowd-kit drop-in: errors_, gold labels,
prior error counts, an explicit probability floor, and every repeated answer kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _crowdkit_oracle import answers, truth
from _tol import KERNEL_F64
from kdcore.crowd import DawidSkene, OneCoinDawidSkene, Responses, _em


@pytest.fixture(scope="module")
def dog(data_home):
    return answers(data_home, "dog"), truth(data_home, "dog")


def test_errors_is_confusions_at_the_observed_pairs(dog):
    df, _ = dog
    ds = DawidSkene().fit(df)
    pairs = df[["worker", "label"]].drop_duplicates()
    assert len(ds.errors_) == len(pairs)
    assert list(ds.errors_.index.names) == ["worker", "label"]
    w = ds.worker_ids_.get_indexer(ds.errors_.index.get_level_values("worker"))
    lab = pd.Index(ds.classes_).get_indexer(ds.errors_.index.get_level_values("label"))
    np.testing.assert_array_equal(ds.errors_.to_numpy(), ds.confusions_[w, :, lab])


def test_all_tasks_gold_gives_the_empirical_confusions(dog):
    df, gold = dog
    df = df[df.task.isin(gold.index)]
    ds = DawidSkene(n_iter=3).fit(df, true_labels=gold)
    # planted answer: with every task's label known, the MLE confusions are the normalised counts
    counts = pd.crosstab([df.worker, df.task.map(gold)], df.label)
    exp = counts.div(counts.sum(axis=1), axis=0)
    for (w, k), row in exp.iterrows():
        wi, ki = ds.worker_ids_.get_loc(w), list(ds.classes_).index(k)
        got = pd.Series(ds.confusions_[wi, ki], index=ds.classes_)
        np.testing.assert_allclose(got.reindex(row.index).to_numpy(), row.to_numpy(), atol=KERNEL_F64)
    assert (ds.labels_.loc[gold.index] == gold).all()


@pytest.mark.parametrize("cls", [DawidSkene, OneCoinDawidSkene])
def test_gold_tasks_stay_fixed_and_backends_agree(dog, cls):
    df, gold = dog
    g = gold.iloc[:150]
    a = cls(backend="cpp").fit(df, true_labels=g)
    b = cls(backend="numpy").fit(df, true_labels=g)
    assert (a.labels_.loc[g.index] == g).all()
    np.testing.assert_allclose(a.probas_.loc[g.index].max(axis=1), 1.0)
    np.testing.assert_allclose(a.probas_.to_numpy(), b.probas_.to_numpy(), atol=1e-8)
    with pytest.raises(ValueError, match="not classes"):
        cls().fit(df, true_labels=pd.Series({df.task.iloc[0]: 99}))


def test_initial_error_frame_and_array_agree_and_enter_the_first_m_step(dog):
    df, _ = dog
    base = DawidSkene().fit(df)
    frame = base.errors_ * 50
    a = DawidSkene(n_iter=1, tol=0).fit(df, initial_error=frame)
    arr = np.zeros_like(base.confusions_)
    w = base.worker_ids_.get_indexer(frame.index.get_level_values("worker"))
    lab = pd.Index(base.classes_).get_indexer(frame.index.get_level_values("label"))
    arr[w, :, lab] = frame.to_numpy()
    b = DawidSkene(n_iter=1, tol=0).fit(df, initial_error=arr)
    np.testing.assert_allclose(a.probas_.to_numpy(), b.probas_.to_numpy(), atol=KERNEL_F64)
    # oracle: huge prior counts fix the first confusions; the first E-step then uses exactly them
    r = Responses.from_dataframe(df)
    big = base.confusions_ * 1e12
    c = DawidSkene(n_iter=1, tol=0).fit(r, initial_error=big)
    mv = np.stack([(df.groupby("task").label.apply(lambda s, k=k: (s == k).mean())) for k in base.classes_], 1)
    prior = mv.mean(0)
    post, _ = _em.e_step(r, np.log(np.maximum(base.confusions_, 1e-300))[None], np.log(prior)[None])
    conf, pr = _em.m_step(r, post)
    post2, _ = _em.e_step(r, np.log(np.maximum(conf, 1e-300)), np.log(pr))
    np.testing.assert_allclose(c.probas_.to_numpy(), post2[:, 0], atol=1e-6)
    with pytest.raises(TypeError, match="initial_error"):
        OneCoinDawidSkene().fit(df, initial_error=big)
    with pytest.raises(ValueError, match="shape"):
        DawidSkene().fit(df, initial_error=big[:3])


def test_prob_floor_is_a_checked_parameter_honoured_by_both_backends(dog):
    df, _ = dog
    a = DawidSkene(prob_floor=1e-10, backend="cpp").fit(df)
    b = DawidSkene(prob_floor=1e-10, backend="numpy").fit(df)
    np.testing.assert_allclose(a.probas_.to_numpy(), b.probas_.to_numpy(), atol=1e-8)
    assert DawidSkene().get_params()["prob_floor"] == _em.PROB_FLOOR
    for bad in (0.0, 1.5, -1e-3):
        with pytest.raises(ValueError, match="prob_floor"):
            DawidSkene(prob_floor=bad).fit(df)


def test_keep_all_counts_every_repeated_answer(data_home):
    df = answers(data_home, "adult2")
    with pytest.raises(ValueError, match="duplicate"):
        DawidSkene().fit(df)
    r = Responses.from_dataframe(df, duplicates="keep_all")
    assert r.n_responses == len(df) and r.n_duplicates_ == 0
    votes = df.groupby(["task", "label"]).size().unstack(fill_value=0)
    ds = DawidSkene(n_iter=1).fit(df, duplicates="keep_all")
    assert ds.labels_.shape == (df.task.nunique(),)
    from kdcore.crowd import MajorityVote

    scores = MajorityVote(tie_break="first").fit(r).scores_
    np.testing.assert_array_equal(scores, votes.loc[r.task_ids, list(r.classes_)].to_numpy())


def test_one_coin_skills_index_is_named_and_metrics_are_exported(dog):
    import kdcore.crowd

    df, _ = dog
    assert OneCoinDawidSkene().fit(df).skills_.index.name == "worker"
    assert kdcore.crowd.metrics.alpha_krippendorff(df) == pytest.approx(
        __import__("kdcore.crowd.metrics", fromlist=["x"]).alpha_krippendorff(df)
    )
