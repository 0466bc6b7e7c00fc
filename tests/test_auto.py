"""Auto: the choice by held-out predictive likelihood.

It must pick the planted model on simulated data, be reproducible for a seed,
hide what it says it hides, and handle failing candidates, single-answer tasks
and bad gold labels with clear messages.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from kdcore.crowd import Auto, DawidSkene, MajorityVote, OneCoinDawidSkene, Responses, simulate
from kdcore.crowd._auto import AgreementWeightedVote, heldout_split, predictive_loglik
from kdcore.crowd._base import BaseAggregator


def _biased_confusions(n_workers: int, rng: np.random.Generator) -> np.ndarray:
    """3-class workers who mostly answer a true 2 as 1 (far from one-coin)."""
    conf = np.empty((n_workers, 3, 3))
    for w in range(n_workers):
        acc = rng.uniform(0.75, 0.95)
        conf[w] = [[acc, (1 - acc) / 2, (1 - acc) / 2], [(1 - acc) / 2, acc, (1 - acc) / 2], [0.05, 0.6, 0.35]]
    return conf


def test_picks_the_planted_model():
    # one-coin workers, 4 classes: the one-coin model (1 parameter a worker) predicts hidden answers best
    r, _ = simulate.one_coin(1500, 30, 4, answers_per_task=4, random_state=0)
    auto = Auto(["one_coin", "dawid_skene", "majority_vote"], random_state=0).fit(r)
    assert auto.chosen_ == "one_coin", auto.scores_
    # workers with a planted class bias: only the full confusion matrices see it
    rng = np.random.default_rng(1)
    r, truth = simulate.dawid_skene(3000, 20, 3, answers_per_task=4, confusions=_biased_confusions(20, rng),
                                    random_state=rng)  # fmt: skip
    auto = Auto(["one_coin", "dawid_skene", "majority_vote"], random_state=0).fit(r)
    assert auto.chosen_ == "dawid_skene", auto.scores_
    # and it returns the chosen model's labels, refitted on all answers
    ds = DawidSkene().fit(r)
    pd.testing.assert_series_equal(auto.labels_, ds.labels_)
    np.testing.assert_allclose(auto.probas_.to_numpy(), ds.probas_.to_numpy())
    # the choice is also the better labeller here
    assert (ds.labels_ == truth).mean() > (OneCoinDawidSkene().fit(r).labels_ == truth).mean() + 0.02


def test_deterministic_for_a_seed():
    r, _ = simulate.dawid_skene(600, 40, 3, answers_per_task=4, random_state=2)
    cands = ["majority_vote", "weighted_vote", "dawid_skene", "bayesian_ds", "mace"]
    a = Auto(cands, random_state=7).fit(r)
    b = Auto(cands, random_state=7).fit(r)
    pd.testing.assert_series_equal(a.scores_, b.scores_)
    pd.testing.assert_series_equal(a.labels_, b.labels_)
    assert a.chosen_ == b.chosen_
    c = Auto(cands, random_state=8).fit(r)
    assert not np.allclose(a.scores_.to_numpy(), c.scores_.to_numpy())  # another seed hides other answers


def test_heldout_split_hides_a_share_and_keeps_an_answer_per_task():
    r, _ = simulate.dawid_skene(3000, 50, 2, answers_per_task=5, random_state=3)
    hide = heldout_split(r, 0.2, np.random.default_rng(0))
    kept = np.bincount(r.task[~hide], minlength=r.n_tasks)
    assert kept.min() >= 1
    assert hide.mean() == pytest.approx(0.2, abs=0.01)
    # one answer per task: nothing can be hidden
    r1 = Responses.from_arrays(np.arange(10), np.arange(10) % 3, np.arange(10) % 2)
    assert not heldout_split(r1, 0.5, np.random.default_rng(0)).any()


def test_predictive_loglik_of_dawid_skene_by_hand():
    r, _ = simulate.dawid_skene(200, 10, 3, answers_per_task=3, random_state=4)
    ds = DawidSkene().fit(r)
    i = np.arange(0, r.n_responses, 7)
    ll = predictive_loglik(ds, r, r.task[i], r.worker[i], r.label[i])
    q = ds.probas_.to_numpy()
    for n, a in enumerate(i):
        p = sum(q[r.task[a], k] * ds.confusions_[r.worker[a], k, r.label[a]] for k in range(3))
        assert ll[n] == pytest.approx(np.log(p), rel=1e-12)


class _Broken(BaseAggregator):
    def __init__(self):
        pass

    def fit(self, data):
        raise RuntimeError("deliberately broken")


def test_failing_candidates_are_reported_and_skipped():
    r, _ = simulate.one_coin(300, 20, 2, answers_per_task=4, random_state=5)
    with pytest.warns(UserWarning, match=r"candidate 'broken' failed and is left out \(RuntimeError: deliberately"):
        auto = Auto({"broken": _Broken(), "mv": MajorityVote(random_state=0), "oc": OneCoinDawidSkene()},
                    random_state=0).fit(r)  # fmt: skip
    assert np.isnan(auto.scores_["broken"]) and auto.chosen_ in ("mv", "oc")
    assert "deliberately broken" in auto.errors_["broken"]
    with pytest.raises(RuntimeError, match="every candidate failed"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Auto({"a": _Broken(), "b": _Broken()}).fit(r)


def test_bad_candidate_lists():
    r, _ = simulate.one_coin(100, 10, 2, answers_per_task=3, random_state=6)
    with pytest.raises(ValueError, match="at least two candidates"):
        Auto(["dawid_skene"]).fit(r)
    with pytest.raises(TypeError, match="got one"):
        Auto(DawidSkene()).fit(r)
    with pytest.raises(ValueError, match="unknown candidate 'ds'"):
        Auto(["ds", "glad"]).fit(r)
    with pytest.raises(ValueError, match="given twice"):
        Auto(["glad", "glad"]).fit(r)
    with pytest.raises(TypeError, match="a name or a kdcore aggregator"):
        Auto(["glad", 3]).fit(r)
    with pytest.raises(ValueError, match=r"holdout must be in \(0, 1\)"):
        Auto(holdout=1.0).fit(r)


def test_single_answer_tasks_stay_in_training_with_a_warning():
    r, _ = simulate.one_coin(200, 15, 2, answers_per_task=3, random_state=7)
    df = r.to_dataframe()
    extra = pd.DataFrame({"task": ["lonely1", "lonely2"], "worker": [r.worker_ids[0]] * 2, "label": [0, 1]})
    r2 = Responses.from_dataframe(pd.concat([df, extra], ignore_index=True))
    with pytest.warns(UserWarning, match="2 of 202 tasks have a single answer"):
        auto = Auto(["majority_vote", "dawid_skene"], random_state=0).fit(r2)
    assert auto.n_single_answer_tasks_ == 2 and {"lonely1", "lonely2"} <= set(auto.labels_.index)
    r1 = Responses.from_arrays(np.arange(10), np.arange(10) % 3, np.arange(10) % 2)
    with pytest.raises(ValueError, match="no answer can be held out"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Auto(["majority_vote", "dawid_skene"]).fit(r1)


def test_gold_labels():
    r, truth = simulate.dawid_skene(400, 30, 3, answers_per_task=3, random_state=8)
    gold = truth.iloc[:50]
    auto = Auto(["majority_vote", "bayesian_ds"], true_labels=gold, random_state=0).fit(r)
    assert (auto.labels_.loc[gold.index] == gold).all()
    with pytest.raises(ValueError, match="tasks that have no answer"):
        Auto(["majority_vote", "bayesian_ds"], true_labels={"nope": 1}).fit(r)
    with pytest.raises(ValueError, match="not classes of the responses"):
        Auto(["majority_vote", "bayesian_ds"], true_labels={r.task_ids[0]: 9}).fit(r)


def test_subset_scoring_for_large_data():
    r, truth = simulate.one_coin(3000, 40, 2, answers_per_task=5, random_state=9)
    gold = truth.iloc[::10]
    auto = Auto(["majority_vote", "one_coin"], max_answers=2000, true_labels=gold, random_state=0).fit(r)
    assert auto.n_hidden_ < 0.3 * 2100  # scored on about 2000 answers, not 15000
    assert len(auto.labels_) == r.n_tasks and (auto.labels_.loc[gold.index] == gold).all()


def test_agreement_weighted_vote_weights_reliable_workers():
    r, truth = simulate.one_coin(2000, 30, 2, answers_per_task=5, skill_range=(0.5, 0.95), random_state=10)
    awv = AgreementWeightedVote(random_state=0).fit(r)
    mv = MajorityVote(random_state=0).fit(r)
    assert (awv.labels_ == truth).mean() > (mv.labels_ == truth).mean()


def test_protocol_table_losses_and_cache(tmp_path):
    from kdcore.experiments import accuracy as proto

    res = pd.DataFrame(
        {
            "dataset": ["a", "a", "b", "b", "b", "b"],
            "method": ["x", "y", "x", "y", "x", "y"],
            "seed": [0, 0, 0, 0, 1, 1],
            "accuracy": [0.90, 0.80, 0.70, 0.75, 0.70, 0.85],
        }
    )
    tab = proto.table(res)
    # b: mean over seeds x 0.70, y 0.80; best per dataset a: x, b: y
    assert tab.loc["x", "mean"] == pytest.approx(0.80) and tab.loc["y", "mean"] == pytest.approx(0.80)
    assert tab.loc["x", "worst_loss_pts"] == pytest.approx(10.0) and tab.loc["y", "worst_loss_pts"] == pytest.approx(
        10.0
    )
    assert "| x |" in proto.to_markdown(tab)
    # a run on a simulated setting, read back from its cache without refitting
    methods = {"mv": lambda: MajorityVote(random_state=0), "oc": OneCoinDawidSkene}
    cache = tmp_path / "res.json"
    first = proto.evaluate(["sim.one_coin"], methods, seeds=(0,), cache=cache)
    again = proto.evaluate(["sim.one_coin"], {"mv": None, "oc": None}, seeds=(0,), cache=cache)  # type: ignore[dict-item]
    pd.testing.assert_frame_equal(first, again)
    r, truth = proto.load("sim.one_coin", 0)
    assert first.set_index("method").loc["oc", "accuracy"] == pytest.approx(
        (OneCoinDawidSkene().fit(r).labels_ == truth).mean()
    )


def test_protocol_paired_sign_test(capsys):
    from scipy.stats import binomtest

    from kdcore.experiments import accuracy as proto

    r, truth = proto.load("sim.one_coin", 0)
    mv = MajorityVote(random_state=proto.SEED).fit(r).labels_ == truth
    oc = OneCoinDawidSkene().fit(r).labels_ == truth
    got = proto.paired("sim.one_coin", "majority_vote", "one_coin")
    a_only, b_only = int((mv & ~oc).sum()), int((oc & ~mv).sum())
    assert (got["a_only"], got["b_only"]) == (a_only, b_only) and a_only + b_only > 0
    assert got["accuracy_a"] == pytest.approx(mv.mean()) and got["accuracy_b"] == pytest.approx(oc.mean())
    assert got["p_value"] == pytest.approx(binomtest(a_only, a_only + b_only).pvalue)
    assert proto.main(["--paired", "sim.one_coin", "majority_vote", "one_coin"]) == 0
    assert f"right only by majority_vote: {a_only}" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        proto.paired("sim.one_coin", "nope", "one_coin")
    for argv in (["--paired", "sim.one_coin", "nope", "one_coin"], ["--paired", "nowhere", "mace", "glad"]):
        with pytest.raises(SystemExit) as exc:
            proto.main(argv)
        assert exc.value.code == 2


def test_predictive_loglik_with_gold_is_one_hot_on_gold_tasks():
    r, truth = simulate.dawid_skene(200, 10, 3, answers_per_task=3, random_state=11)
    ds = DawidSkene().fit(r)
    i = np.arange(0, r.n_responses, 5)
    gold_t = np.unique(r.task[i])[:10]
    gold_k = (truth.to_numpy()[gold_t] + 1) % 3  # labels the fit disagrees with: the clamp must show
    ll = predictive_loglik(ds, r, r.task[i], r.worker[i], r.label[i], (gold_t, gold_k))
    plain = predictive_loglik(ds, r, r.task[i], r.worker[i], r.label[i])
    gold_of = dict(zip(gold_t.tolist(), gold_k.tolist()))
    for n, a in enumerate(i):
        j = int(r.task[a])
        if j in gold_of:
            assert ll[n] == pytest.approx(np.log(ds.confusions_[r.worker[a], gold_of[j], r.label[a]]), rel=1e-12)
        else:
            assert ll[n] == plain[n]
