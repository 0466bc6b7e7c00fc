"""The native skill-weighted votes: Wawa, ZeroBasedSkill, GoldMajorityVote and MMSR.

- equal to kdcore.crowdkit's (itself equal to live crowd-kit 1.4.2) on the nine shared
  datasets, after putting both in one order: answers sorted by label, so that crowd-kit's
  first-appearance ties and kdcore's tie_break="first" pick the same class;
- planted one-coin crowds with adversarial workers: the skill weights beat the plain vote;
- every repeated answer counts once per answer (duplicates="keep_all"), against pandas;
- bad input refused with a message naming what was expected.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _crowdkit_oracle import DATASETS, answers, truth
from _tol import KERNEL_F64, PROB_SUM, TIE
from kdcore.crowd import MMSR, GoldMajorityVote, MajorityVote, Responses, Wawa, ZeroBasedSkill, accuracy, simulate
from kdcore.crowdkit import aggregation as kc


def _ordered(data_home, name: str) -> pd.DataFrame:
    """One answer per (task, worker), rows sorted by label (stable): crowd-kit's order of first
    appearance of the labels is then the sorted order kdcore uses."""
    df = answers(data_home, name).drop_duplicates(["task", "worker"])
    return df.sort_values("label", kind="stable").reset_index(drop=True)


def _same_skills(native: pd.Series, dropin: pd.Series) -> None:
    assert native.name == "skill" and native.index.name == "worker"
    assert native.index.sort_values().equals(dropin.index.sort_values())
    np.testing.assert_allclose(native.to_numpy(), dropin.reindex(native.index).to_numpy(), rtol=KERNEL_F64)


def _same_labels(native: pd.Series, dropin: pd.Series, probas: pd.DataFrame | None = None) -> None:
    """Equal labels; with ``probas``, except at ties: kdcore's vote kernel calls scores within
    1e-12 of each other tied (tie_break="first": the first such class), where crowd-kit's
    argmax follows the last bit of its sums (2/3 + 2/3 + 1/2 + 1/2 against 1 + 5/6 + 1/2)."""
    assert native.index.sort_values().equals(dropin.index.sort_values())
    dropin = dropin.reindex(native.index)
    if probas is not None:
        p = probas.loc[native.index].to_numpy()
        tied = (p.max(axis=1, keepdims=True) - p) <= TIE
        first = np.asarray(probas.columns)[np.argmax(tied, axis=1)]
        differ = (native != dropin).to_numpy()
        assert (tied.sum(axis=1)[differ] > 1).all() and (native.to_numpy()[differ] == first[differ]).all()
        native, dropin = native[~differ], dropin[~differ]
    pd.testing.assert_series_equal(native, dropin, check_index_type=False)


# ------------------------------------------------------------------ equal to the drop-in (chained to crowd-kit)
@pytest.mark.parametrize("name", DATASETS)
def test_wawa_and_zero_based_skill_equal_the_dropin(data_home, name):
    df = _ordered(data_home, name)
    for native, dropin in [
        (Wawa(tie_break="first"), kc.Wawa()),
        (ZeroBasedSkill(tie_break="first"), kc.ZeroBasedSkill()),
    ]:
        native.fit(df)
        proba = dropin.fit_predict_proba(df)
        _same_skills(native.skills_, dropin.skills_)
        _same_labels(native.labels_, dropin.labels_)
        # the shares of the skill weight, columns in the same (sorted) order
        np.testing.assert_allclose(
            native.probas_.to_numpy(), proba.reindex(native.probas_.index).to_numpy(), rtol=KERNEL_F64
        )
        assert list(native.probas_.columns) == list(proba.columns)


@pytest.mark.parametrize("name", DATASETS)
def test_gold_majority_vote_equals_the_dropin(data_home, name):
    df = _ordered(data_home, name)
    gold = truth(data_home, name)
    gold = gold[gold.index.isin(df.task)]
    gold = gold.iloc[: len(gold) // 3]
    dropin = kc.GoldMajorityVote().fit(df, gold)
    native = GoldMajorityVote(tie_break="first", default_skill=0.5).fit(df, true_labels=gold)
    _same_skills(native.skills_, dropin.skills_)
    # the workers with a gold skill vote alike; gold tasks keep their true label here
    known = df[df.worker.isin(dropin.skills_.index)]
    expected = dropin.predict(known)
    got = GoldMajorityVote(tie_break="first").fit(known, true_labels=gold[gold.index.isin(known.task)])
    free = got.labels_.index.difference(gold.index)
    _same_labels(got.labels_.loc[free], expected.loc[free], got.probas_)
    on_gold = got.labels_.index.intersection(gold.index)
    assert (got.labels_.loc[on_gold] == gold.loc[on_gold]).all()
    np.testing.assert_array_equal(got.probas_.loc[on_gold].max(axis=1), 1.0)
    # predict is the vote without the gold: crowd-kit's labels on every task
    _same_labels(got.predict(known), expected, got.predict_proba(known))


@pytest.mark.parametrize("name", DATASETS)
def test_mmsr_equals_the_dropin(data_home, name):
    df = _ordered(data_home, name)
    if name == "product":  # crowd-kit's trimmed means give 0/0 there (its skills are NaN): refused
        with pytest.raises(ValueError, match="non-finite skills.*use Wawa"):
            MMSR(n_iter=20, random_state=0).fit(df)
        return
    native = MMSR(tie_break="first", random_state=0).fit(df)
    dropin = kc.MMSR().fit(df)
    _same_skills(native.skills_, dropin.skills_)
    np.testing.assert_allclose(native.loss_history_, dropin.loss_history_, rtol=KERNEL_F64)
    assert native.n_iter_ == len(native.loss_history_) and native.converged_ == (native.n_iter_ < 10000)
    expected = dropin.predict(df).reindex(native.labels_.index)
    # crowd-kit divides each task's scores by their total: where that total is negative (workers
    # worse than chance outweigh the others) its label is the least voted one; kdcore's is the
    # one-coin posterior's mode, the most voted one
    total = native.scores_.sum(axis=1)
    pos = total > 0
    _same_labels(native.labels_[pos], expected[pos])
    codes = pd.Index(native.classes_).get_indexer(native.labels_)
    np.testing.assert_array_equal(native.scores_[np.arange(len(codes)), codes], native.scores_.max(axis=1))
    shares = dropin.scores_.reindex(native.labels_.index).to_numpy()
    np.testing.assert_allclose(shares[pos] * total[pos, None], native.scores_[pos], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(native.probas_.sum(axis=1), 1.0, atol=PROB_SUM)


def test_mmsr_skills_do_not_depend_on_the_seed_at_the_fixed_point(data_home):
    df = _ordered(data_home, "dog")
    a, b = MMSR(random_state=0).fit(df), MMSR(random_state=7).fit(df)
    np.testing.assert_allclose(a.skills_.to_numpy(), b.skills_.to_numpy(), rtol=1e-6)


# ------------------------------------------------------------------ planted crowds
@pytest.fixture(scope="module")
def adversarial():
    """Four-class one-coin crowd: 10 good workers (right 80% of the time) and 20 adversarial
    ones (right 10%, below the 25% of chance), the plain vote right on about 42% of the tasks."""
    skills = np.r_[np.full(10, 0.8), np.full(20, 0.1)]
    r, truth_ = simulate.one_coin(4000, 30, 4, answers_per_task=7, skills=skills, random_state=3)
    return r, truth_, skills


def test_skill_weights_beat_the_plain_vote_with_adversarial_workers(adversarial):
    r, truth_, skills = adversarial
    mv = MajorityVote(random_state=0).fit(r).score(r, truth_)
    wawa = Wawa(random_state=0).fit(r)
    zbs = ZeroBasedSkill(random_state=0).fit(r)
    gold = truth_.iloc[:400]
    gmv = GoldMajorityVote(random_state=0).fit(r, true_labels=gold)
    free = truth_.index[400:]
    for est in (wawa, zbs, gmv):
        assert accuracy(est.labels_.loc[free], truth_) > mv + 0.05, type(est).__name__
    # the gold skills are the planted ones (400 tasks, ~93 gold answers a worker)
    w = pd.Index(r.worker_ids)
    np.testing.assert_allclose(gmv.skills_.to_numpy(), skills[w.get_indexer(gmv.skills_.index)], atol=0.12)
    # the good workers weigh more than the adversarial ones in every estimate
    for est in (wawa, zbs, gmv):
        s = est.skills_.reindex(w).to_numpy()
        assert s[:10].min() > s[10:].max(), type(est).__name__


def test_mmsr_recovers_planted_one_coin_skills():
    skills = np.linspace(0.55, 0.95, 25)
    r, truth_ = simulate.one_coin(6000, 25, 3, answers_per_task=8, skills=skills, random_state=4)
    est = MMSR(random_state=0).fit(r)
    # log-odds s = ln(p (K - 1) / (1 - p)) back to the accuracy p
    p = 1.0 / (1.0 + 2.0 * np.exp(-est.skills_.to_numpy()))
    np.testing.assert_allclose(p, skills[pd.Index(r.worker_ids).get_indexer(est.skills_.index)], atol=0.05)
    assert est.score(r, truth_) >= MajorityVote(random_state=0).fit(r).score(r, truth_)


def test_repeated_answers_count_once_each(data_home):
    df = answers(data_home, "adult2")  # 2,922 repeated (task, worker) pairs
    est = Wawa(tie_break="first").fit(df, duplicates="keep_all")
    mv = MajorityVote(tie_break="first").fit(Responses.from_dataframe(df, duplicates="keep_all")).labels_
    # oracle: each worker's share of its answers (repeats included) equal to the vote
    expected = (df.label.to_numpy() == mv.reindex(df.task).to_numpy()).astype(float)
    expected = pd.Series(expected).groupby(df.worker.to_numpy()).mean()
    np.testing.assert_allclose(est.skills_.to_numpy(), expected.reindex(est.skills_.index).to_numpy(), rtol=KERNEL_F64)
    with pytest.raises(ValueError, match="duplicates"):
        Wawa().fit(df)
    with pytest.raises(ValueError, match="one answer per"):
        MMSR().fit(df, duplicates="keep_all")
    with pytest.raises(ValueError, match="repeat"):
        MMSR().fit(Responses.from_dataframe(df, duplicates="keep_all"))


def test_seeded_ties_are_reproducible(data_home):
    df = answers(data_home, "rte")  # 65 tied tasks in the plain vote
    for cls in (Wawa, ZeroBasedSkill):
        a, b = cls(random_state=5).fit(df), cls(random_state=5).fit(df)
        pd.testing.assert_series_equal(a.labels_, b.labels_)
        pd.testing.assert_series_equal(a.skills_, b.skills_)
    first = Wawa(tie_break="first").fit(df)
    drawn = [Wawa(random_state=s).fit(df).skills_ for s in range(4)]
    assert any(not np.allclose(d.to_numpy(), first.skills_.to_numpy()) for d in drawn)


def test_predict_votes_new_tasks_with_the_fitted_skills():
    r, truth_ = simulate.one_coin(600, 12, 3, answers_per_task=5, random_state=8)
    df = r.to_dataframe()
    old, new = df[df.task.isin(truth_.index[:300])], df[~df.task.isin(truth_.index[:300])]
    for est in (Wawa(tie_break="first"), ZeroBasedSkill(tie_break="first"), MMSR(tie_break="first", random_state=0)):
        est.fit(old)
        got = est.predict(new)
        weight = est.skills_.reindex(new.worker).to_numpy()
        scores = pd.crosstab(new.task, new.label, values=weight, aggfunc="sum").fillna(0.0)
        expected = scores.idxmax(axis=1)  # first of the tied in sorted label order
        pd.testing.assert_series_equal(got, expected.reindex(got.index), check_names=False, check_index_type=False)
        proba = est.predict_proba(new)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=PROB_SUM)
        assert est.labels_.index.equals(pd.Index(sorted(old.task.unique()), name="task"))  # predict keeps the fit


# ------------------------------------------------------------------ bad input
def test_bad_input_is_refused():
    df = pd.DataFrame({"task": [1, 1, 2, 2], "worker": ["a", "b", "a", "b"], "label": [0, 1, 1, 1]})
    for cls in (Wawa, ZeroBasedSkill, GoldMajorityVote, MMSR):
        with pytest.raises(ValueError, match="not fitted"):
            cls().predict(df)
        args = (df.to_numpy(), {1: 0}) if cls is GoldMajorityVote else (df.to_numpy(),)
        with pytest.raises(TypeError, match="Responses or a pandas DataFrame"):
            cls().fit(*args)
    with pytest.raises(ValueError, match="tie_break"):
        Wawa(tie_break="last").fit(df)
    with pytest.raises(ValueError, match="no answer"):
        GoldMajorityVote().fit(df, true_labels=pd.Series({3: 0}))
    with pytest.raises(ValueError, match="not classes"):
        GoldMajorityVote().fit(df, true_labels={1: 7})
    with pytest.raises(ValueError, match="at least one gold"):
        GoldMajorityVote().fit(df, true_labels=pd.Series(dtype=object))
    with pytest.raises(TypeError, match="true_labels"):
        GoldMajorityVote().fit(df, true_labels=None)
    with pytest.raises(TypeError, match="true_labels"):
        GoldMajorityVote().fit(df, true_labels=[0, 1])
    one = df[df.worker == "a"]
    late = pd.concat([df, pd.DataFrame({"task": [3], "worker": ["c"], "label": [0]})])
    with pytest.raises(ValueError, match=r"no skill for workers 'c'.*default_skill"):
        GoldMajorityVote().fit(late, true_labels={2: 1})
    assert GoldMajorityVote(default_skill=0.5).fit(late, true_labels={2: 1}).skills_.index.tolist() == ["a", "b"]
    with pytest.raises(ValueError, match=r"no skill for workers 'c'"):
        Wawa().fit(df).predict(df.assign(worker=df.worker.replace({"b": "c"})))
    assert Wawa(default_skill=0.0, tie_break="first").fit(one).predict(df).tolist() == [0, 1]
    with pytest.raises(ValueError, match="n_iter"):
        ZeroBasedSkill(n_iter=-1).fit(df)
    with pytest.raises(ValueError, match="lr_steps_to_reduce"):
        ZeroBasedSkill(lr_steps_to_reduce=0).fit(df)
    with pytest.raises(TypeError, match="default_skill"):
        Wawa(default_skill="high").fit(df)
    with pytest.raises(ValueError, match="not supported"):
        MMSR(backend="numpy").fit(df)
    with pytest.raises(ValueError, match="at least two"):
        MMSR().fit(df.assign(label=0))
