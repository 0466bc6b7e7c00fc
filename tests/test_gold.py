"""Gold labels in every EM aggregator: kept in every E-step, used to calibrate the workers.

The planted data have a crowd that is adversarial on average (18 of 30 workers right
30 % of the time, 12 right 80 %): the majority vote is near chance, and the EM fits
started from it settle in the mirror solution (labels flipped, adversaries trusted).
Fifty gold tasks (5 %) give the fits the right orientation; the planted truth is the
oracle. Unknown tasks and unknown classes in the gold labels are clear errors.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from _tol import EM_TWIN_F64, PROB_SUM
from kdcore.backends import HAS_CPP
from kdcore.crowd import GLAD, MACE, Auto, DawidSkene, OneCoinDawidSkene, TypeAware, accuracy, simulate
from kdcore.crowd._auto import AgreementWeightedVote
from kdcore.crowd._bayesian import BayesianDawidSkene, CommunityDawidSkene

needs_cpp = pytest.mark.skipif(not HAS_CPP, reason="compiled core kdcore._core not built")
BACKENDS = [pytest.param("cpp", marks=needs_cpp), "numpy"]


def _fit(name: str, r, gold=None, backend: str = "auto"):
    """Each aggregator takes gold where its API does: DawidSkene and OneCoinDawidSkene in ``fit``
    (crowd-kit's signature), the others as the ``true_labels`` parameter."""
    if name == "dawid_skene":
        return DawidSkene(backend=backend).fit(r, true_labels=gold)
    if name == "one_coin":
        return OneCoinDawidSkene(backend=backend).fit(r, true_labels=gold)
    if name in ("type_aware_hard", "type_aware_soft"):  # the split forced: every fitted model sees the gold
        split = name.rsplit("_", 1)[1]
        ta = TypeAware(DawidSkene(backend=backend), split=split, guard=False, random_state=0, backend=backend)
        return ta.fit(r, true_labels=gold)
    make = {
        "bayesian_ds": lambda: BayesianDawidSkene(backend=backend, true_labels=gold),
        "pooled_ds": lambda: BayesianDawidSkene(prior="pooled", backend=backend, true_labels=gold),
        "community_ds": lambda: CommunityDawidSkene(backend=backend, true_labels=gold),
        "glad": lambda: GLAD(backend=backend, true_labels=gold),
        "mace": lambda: MACE(n_init=3, random_state=0, backend=backend, true_labels=gold),
        "weighted_vote": lambda: AgreementWeightedVote(random_state=0, backend=backend, true_labels=gold),
    }[name]
    return make().fit(r)


ALL = [
    "dawid_skene",
    "one_coin",
    "bayesian_ds",
    "pooled_ds",
    "community_ds",
    "glad",
    "mace",
    "weighted_vote",
    "type_aware_hard",
    "type_aware_soft",
]


@pytest.fixture(scope="module")
def adversarial():
    skills = np.r_[np.full(18, 0.3), np.full(12, 0.8)]
    r, truth = simulate.one_coin(1000, 30, 2, answers_per_task=7, skills=skills, random_state=0)
    return r, truth, truth.iloc[:50]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ALL)
def test_gold_tasks_keep_their_label(name, backend, adversarial):
    r, truth, gold = adversarial
    # one gold label that contradicts every answer of its task (all its workers said 0 or all said 1)
    n_j = np.bincount(r.task, weights=r.label, minlength=r.n_tasks)
    size = np.diff(r.task_indptr)
    j = int(np.flatnonzero((n_j == 0) | (n_j == size))[0])
    gold = pd.concat([gold, pd.Series({r.task_ids[j]: 1 - int(n_j[j] > 0)})])
    gold = gold[~gold.index.duplicated(keep="last")]
    est = _fit(name, r, gold, backend)
    assert (est.labels_.loc[gold.index] == gold).all()
    one_hot = np.eye(2)[gold.to_numpy().astype(int)]
    np.testing.assert_allclose(est.probas_.loc[gold.index].to_numpy(), one_hot, rtol=0, atol=PROB_SUM)


# the diagonal prior of BayesianDawidSkene holds the mean accuracy at 1/K or above, so it cannot
# follow a crowd that is adversarial on average, gold or not (its module docstring); MACE's
# spammer model has no mirror solution to escape, so gold changes little there
GAIN = {
    "dawid_skene": 0.5,
    "one_coin": 0.5,
    "pooled_ds": 0.5,
    "community_ds": 0.5,
    "glad": 0.2,
    "type_aware_hard": 0.5,
    "type_aware_soft": 0.5,
}


@pytest.mark.parametrize("name", ALL)
def test_gold_fixes_an_adversarial_crowd(name, adversarial):
    r, truth, gold = adversarial
    rest = truth.index.difference(gold.index)
    plain = accuracy(_fit(name, r).labels_.loc[rest], truth.loc[rest])
    with_gold = accuracy(_fit(name, r, gold).labels_.loc[rest], truth.loc[rest])
    if name in GAIN:
        assert plain < 0.5 and with_gold > plain + GAIN[name], (plain, with_gold)
    else:  # never worse by more than a point
        assert with_gold > plain - 0.01, (plain, with_gold)
    if name in ("dawid_skene", "one_coin", "pooled_ds", "community_ds", "type_aware_hard", "type_aware_soft"):
        assert with_gold > 0.9  # the planted one-coin model's accuracy at 7 answers a task


def test_auto_passes_gold_to_every_candidate(adversarial):
    r, truth, gold = adversarial
    rest = truth.index.difference(gold.index)
    cands = ["majority_vote", "weighted_vote", "one_coin", "dawid_skene", "community_ds"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = Auto(cands, random_state=0).fit(r)
        auto = Auto(cands, true_labels=gold, random_state=0).fit(r)
    assert accuracy(plain.labels_.loc[rest], truth.loc[rest]) < 0.5
    assert accuracy(auto.labels_.loc[rest], truth.loc[rest]) > 0.9
    assert (auto.labels_.loc[gold.index] == gold).all()
    # the chosen model itself was fitted with the gold labels (DawidSkene-family fits take them in fit)
    assert accuracy(auto.model_.labels_.loc[rest], truth.loc[rest]) > 0.9


@pytest.mark.parametrize("name", ALL)
def test_gold_errors(name, adversarial):
    r, _, _ = adversarial
    with pytest.raises(ValueError, match="tasks that have no answer: 'nope'"):
        _fit(name, r, pd.Series({"nope": 1}))
    with pytest.raises(ValueError, match="not classes of the responses: 5"):
        _fit(name, r, pd.Series({r.task_ids[0]: 5}))
    with pytest.raises(TypeError, match="Series or a dict"):
        _fit(name, r, [0, 1])


@needs_cpp
@pytest.mark.parametrize("one_coin,T", [(False, 1), (True, 1), (False, 2)])
def test_compiled_em_loop_with_gold_matches_the_round_by_round_loop(one_coin, T):
    from kdcore.crowd import _em
    from kdcore.crowd._gold import clamp, gold_codes

    r, truth = simulate.dawid_skene(400, 20, 3, answers_per_task=4, random_state=3)
    gold = gold_codes(r, truth.iloc[::7])
    rng = np.random.default_rng(0)
    post = rng.dirichlet(np.ones(T * 3), r.n_tasks).reshape(r.n_tasks, T, 3)
    got, *_ = _em.run(r, post.copy(), 0.1, 15, 0.0, None, 1, one_coin, gold=gold)
    # the same rounds step by step: clamp, then M-step, E-step, clamp
    p = clamp(post.copy(), *gold)
    for _ in range(15):
        if one_coin:
            skill, prior = _em.onecoin_m_step(r, p, smoothing=0.1, backend="numpy")
            log_conf = _em.onecoin_log_conf(skill, 3)
        else:
            conf, prior = _em.m_step(r, p, smoothing=0.1, backend="numpy")
            log_conf = _em.log_clip(conf)
        p, _ = _em.e_step(r, log_conf, _em.log_clip(prior), backend="numpy")
        clamp(p, *gold)
    np.testing.assert_allclose(got, p, rtol=0, atol=EM_TWIN_F64)
    if T == 1:
        np.testing.assert_array_equal(got[gold[0], 0].argmax(1), gold[1])


@needs_cpp
def test_compiled_em_loop_refuses_bad_gold():
    from kdcore import _core

    r, _ = simulate.dawid_skene(50, 5, 2, answers_per_task=2, random_state=8)
    views = [r.task_indptr, r.task_worker, r.task_label, r.worker_indptr, r.worker_task, r.worker_label]
    post = np.full((r.n_tasks, 1, 2), 0.5)
    args = (*views, r.n_tasks, r.n_workers, post, 0.0, False, 5, 0.0, float("nan"), 1e-300)
    ok = np.array([0, 1], dtype=np.int32)
    with pytest.raises(ValueError, match="both gold_task and gold_class"):
        _core.em_run(*args, gold_task=ok)
    with pytest.raises(ValueError, match="gold task"):
        _core.em_run(*args, gold_task=np.array([0, r.n_tasks], dtype=np.int32), gold_class=ok)
    with pytest.raises(ValueError, match="gold class"):
        _core.em_run(*args, gold_task=ok, gold_class=np.array([0, 2], dtype=np.int32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_degraded_em_clamps_gold_in_every_e_step(backend, adversarial):
    """The soft two-type EM with gold: the gold tasks' posteriors put all mass on their class in every
    round (so at the end), the likelihood still never decreases, and both backends agree."""
    from kdcore.crowd._typed_em import degraded_em

    r, truth, gold = adversarial
    ds = DawidSkene().fit(r, true_labels=gold)
    conf0, prior0 = np.asarray(ds.confusions_), ds.priors_.to_numpy()
    gt = r.task_ids.get_indexer(gold.index)
    gk = pd.Index(r.classes_).get_indexer(gold.to_numpy())
    post, _, _, _, hist = degraded_em(r, conf0, prior0, backend=backend, gold=(gt, gk), n_iter=60)
    mass = post[gt].sum(1)  # (G, K): P(class | answers) of the gold tasks
    np.testing.assert_allclose(mass, np.eye(2)[gk], rtol=0, atol=PROB_SUM)
    assert np.all(np.diff(hist) >= -1e-9 * np.abs(np.asarray(hist[1:])))
    if backend == "numpy" and HAS_CPP:
        post_c, _, _, _, hist_c = degraded_em(r, conf0, prior0, backend="cpp", gold=(gt, gk), n_iter=60)
        np.testing.assert_allclose(post_c, post, rtol=0, atol=EM_TWIN_F64)
        np.testing.assert_allclose(hist_c, hist, rtol=EM_TWIN_F64)
