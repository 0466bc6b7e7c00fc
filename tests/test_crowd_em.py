"""The typed Dawid-Skene EM core, the vote kernel and the estimators built on them.

Kernels are compared with their numpy twins (kdcore.crowd._reference) to 1e-10;
estimators against planted parameters of simulated data; error paths by message.
"""

import numpy as np
import pandas as pd
import pytest

from _tol import (
    DS_CONFUSION_ERR,
    EM_TWIN_F64,
    EMPTY_CLASS_PRIOR,
    FIT_TWIN_F64,
    ITERATED_F64,
    KERNEL_F64,
    MONOTONE_ABS,
    MONOTONE_REL_MAP,
    ONE_COIN_SKILL,
    PLANTED_PRIORS,
    REORDER_F64,
)
from kdcore.backends import HAS_CPP
from kdcore.crowd import (
    DawidSkene,
    MajorityVote,
    OneCoinDawidSkene,
    Responses,
    WeightedMajorityVote,
    _em,
    accuracy,
    nitzan_paroush_weights,
    simulate,
)
from kdcore.crowd import _reference as ref

needs_cpp = pytest.mark.skipif(not HAS_CPP, reason="compiled core kdcore._core not built")


def _responses_with_idle_workers(K: int, seed: int) -> Responses:
    """Random answers where some workers have none (kept by subset_tasks)."""
    r, _ = simulate.dawid_skene(300, 12, K, answers_per_task=3, random_state=seed)
    busy = np.isin(r.task_ids, np.unique(r.task[~np.isin(r.worker, [0, 5])]))
    # keep only tasks nobody of workers 0 and 5 answered: those two end with no answers
    keep = np.ones(r.n_tasks, bool)
    keep[np.unique(r.task[np.isin(r.worker, [0, 5])])] = False
    sub = r.subset_tasks(keep & busy)
    assert sub.n_workers == 12 and (np.diff(sub.worker_indptr)[[0, 5]] == 0).all()
    return sub


def _random_params(rng, T, W, K, with_neg_inf=False):
    conf = rng.dirichlet(np.ones(K), size=(T, W, K))
    prior = rng.dirichlet(np.ones(T * K)).reshape(T, K)
    log_conf = np.log(conf)
    if with_neg_inf:
        log_conf[0, 1, 0, 1] = -np.inf  # an answer impossible under one (t, k) only
    return log_conf, np.log(prior)


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=KERNEL_F64, atol=KERNEL_F64)


# ------------------------------------------------------------------ kernels vs twins
@needs_cpp
@pytest.mark.parametrize("T", [1, 2])
@pytest.mark.parametrize("K", [2, 3, 4, 5])
def test_e_step_matches_twin(T, K):
    rng = np.random.default_rng(100 * T + K)
    r = _responses_with_idle_workers(K, seed=K)
    log_conf, log_prior = _random_params(rng, T, r.n_workers, K, with_neg_inf=(K == 3))
    post, ll = _em.e_step(r, log_conf, log_prior, backend="cpp", n_threads=2)
    post_np, ll_np = _em.e_step(r, log_conf, log_prior, backend="numpy")
    assert post.shape == (r.n_tasks, T, K)
    _close(post, post_np)
    assert ll == pytest.approx(ll_np, rel=KERNEL_F64)
    _close(post.sum(axis=(1, 2)), 1.0)


@needs_cpp
@pytest.mark.parametrize("T", [1, 2])
@pytest.mark.parametrize("K", [2, 3, 4, 5])
@pytest.mark.parametrize("smoothing", [0.0, 0.5])
@pytest.mark.parametrize("strategy", [1, 2])  # worker-major, task-major streaming
def test_m_steps_match_twin(T, K, smoothing, strategy, monkeypatch):
    monkeypatch.setattr(_em, "_M_STRATEGY", strategy)
    rng = np.random.default_rng(7 * T + K)
    r = _responses_with_idle_workers(K, seed=10 + K)
    post = rng.dirichlet(np.ones(T * K), size=r.n_tasks).reshape(r.n_tasks, T, K)
    post[:5] = 0.0
    post[:5, 0, 0] = 1.0  # some certain tasks: zero expected counts elsewhere
    conf, prior = _em.m_step(r, post, smoothing=smoothing, backend="cpp", n_threads=2)
    conf_np, prior_np = _em.m_step(r, post, smoothing=smoothing, backend="numpy")
    assert conf.shape == (T, r.n_workers, K, K) and prior.shape == (T, K)
    _close(conf, conf_np)
    _close(prior, prior_np)
    _close(conf.sum(-1), 1.0)
    # the idle workers get the documented uniform rows
    _close(conf[:, [0, 5]], 1.0 / K)
    skill, prior1 = _em.onecoin_m_step(r, post, smoothing=smoothing, backend="cpp", n_threads=1)
    skill_np, prior1_np = _em.onecoin_m_step(r, post, smoothing=smoothing, backend="numpy")
    assert skill.shape == (T, r.n_workers)
    _close(skill, skill_np)
    _close(prior1, prior_np)
    assert np.all(skill[:, [0, 5]] == 0.5)


@needs_cpp
def test_m_step_subnormal_rows_stay_finite():
    r, _ = simulate.one_coin(50, 5, 2, answers_per_task=3, random_state=0)
    post = np.zeros((r.n_tasks, 1, 2))
    post[:, 0, 0] = 1.0
    post[:, 0, 1] = 5e-324  # the smallest subnormal: 1/z would overflow
    post[:, 0, 0] -= 0.0
    conf, _ = _em.m_step(r, post, smoothing=0.0, backend="cpp")
    assert np.all(np.isfinite(conf))
    _close(conf.sum(-1), 1.0)


@needs_cpp
@pytest.mark.parametrize("weighted", [False, True])
def test_vote_kernel_matches_twin(weighted):
    from kdcore import _core

    r, _ = simulate.dawid_skene(500, 20, 4, answers_per_task=5, random_state=1)
    w = np.random.default_rng(0).random(20) if weighted else None
    got = _core.vote_scores(r.task_indptr, r.task_worker, r.task_label, r.n_tasks, r.n_workers, 4, w, 2)
    want = ref.vote_scores(r.task, r.worker, r.label, r.n_tasks, 4, w)
    _close(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])
    if not weighted:
        assert (got[2] > 1).any()  # ties do occur with 5 answers over 4 classes


@needs_cpp
def test_thread_counts_agree():
    r, _ = simulate.dawid_skene(3000, 40, 3, answers_per_task=4, random_state=2)
    log_conf, log_prior = _random_params(np.random.default_rng(1), 2, 40, 3)
    p1, l1 = _em.e_step(r, log_conf, log_prior, n_threads=1)
    p2, l2 = _em.e_step(r, log_conf, log_prior, n_threads=2)
    np.testing.assert_array_equal(p1, p2)  # each task is computed by one thread, same order
    assert l1 == pytest.approx(l2, rel=REORDER_F64)


def test_e_step_impossible_task_is_uniform_not_nan():
    r, _ = simulate.one_coin(20, 3, 2, answers_per_task=2, random_state=0)
    log_conf = np.full((1, 3, 2, 2), -np.inf)
    for backend in ["numpy"] + (["cpp"] if HAS_CPP else []):
        post, ll = _em.e_step(r, log_conf, np.zeros((1, 2)), backend=backend)
        assert ll == -np.inf and np.all(post == 0.5)


def test_onecoin_log_conf():
    lc = _em.onecoin_log_conf(np.array([[1.0, 0.7, 0.0]]), 3)
    conf = np.exp(lc)
    assert np.all(np.isfinite(lc))
    np.testing.assert_allclose(conf[0, 1], [[0.7, 0.15, 0.15], [0.15, 0.7, 0.15], [0.15, 0.15, 0.7]])
    np.testing.assert_allclose(np.diag(conf[0, 0]), 1.0)


# ------------------------------------------------------------------ API validation
def test_em_api_errors():
    r, _ = simulate.one_coin(20, 3, 2, answers_per_task=2, random_state=0)
    lc, lp = np.zeros((1, 3, 2, 2)), np.zeros((1, 2))
    with pytest.raises(TypeError, match="Responses"):
        _em.e_step(r.to_dataframe(), lc, lp)
    with pytest.raises(ValueError, match="log_conf must have shape"):
        _em.e_step(r, np.zeros((1, 4, 2, 2)), lp)
    with pytest.raises(ValueError, match="log_prior must have shape"):
        _em.e_step(r, lc, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="log_conf must be 4-d"):
        _em.e_step(r, np.zeros((3, 2, 2)), lp)
    bad = lc.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _em.e_step(r, bad, lp)
    with pytest.raises(TypeError, match="float"):
        _em.e_step(r, lc.astype(complex), lp)
    with pytest.raises(ValueError, match="post must have shape"):
        _em.m_step(r, np.ones((19, 1, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        _em.m_step(r, -np.ones((20, 1, 2)))
    with pytest.raises(ValueError, match="smoothing"):
        _em.m_step(r, np.ones((20, 1, 2)), smoothing=-1.0)
    with pytest.raises(ValueError, match="backend"):
        _em.m_step(r, np.ones((20, 1, 2)), backend="cuda")
    with pytest.raises(ValueError, match="n_threads"):
        _em.m_step(r, np.ones((20, 1, 2)), n_threads=-1)


@needs_cpp
def test_core_refuses_wrong_dtype_and_bad_codes():
    from kdcore import _core

    r, _ = simulate.one_coin(20, 3, 2, answers_per_task=2, random_state=0)
    with pytest.raises(TypeError):
        _core.em_e_step(
            r.task_indptr,
            r.task_worker.astype(np.int64),
            r.task_label,
            20,
            3,
            np.zeros((1, 3, 2, 2)),
            np.zeros((1, 2)),
            0,
        )
    bad = r.task_worker.copy()
    bad[0] = 7
    with pytest.raises(ValueError, match="worker code 7"):
        _core.em_e_step(r.task_indptr, bad, r.task_label, 20, 3, np.zeros((1, 3, 2, 2)), np.zeros((1, 2)), 0)
    with pytest.raises(ValueError, match="indptr"):
        _core.em_m_step(r.worker_indptr[:-1], r.worker_task, r.worker_label, 20, 3, np.ones((20, 1, 2)), 0.0)


# ------------------------------------------------------------------ estimators vs planted truth
def _conf_error(ds, params, r):
    planted = params["confusions"][np.asarray(r.worker_ids)]
    return np.abs(ds.confusions_ - planted).max()


def test_dawid_skene_recovers_planted_confusions_shrinking_with_data():
    errs = []
    for n_tasks in (1000, 16000):
        r, truth, params = simulate.dawid_skene(
            n_tasks, 10, 3, answers_per_task=5, skill_range=(0.55, 0.9), return_params=True, random_state=5
        )
        ds = DawidSkene().fit(r)
        errs.append(_conf_error(ds, params, r))
        assert accuracy(ds.labels_, truth) > 0.9
        assert np.abs(ds.priors_.to_numpy() - params["priors"]).max() < PLANTED_PRIORS
        assert ds.converged_ and ds.n_iter_ < 100
    # each confusion row has ~n_tasks/6 answers: sd ~ 0.03 at 1,000 tasks, ~ 0.008 at 16,000
    assert errs[1] < DS_CONFUSION_ERR, errs
    assert errs[1] < errs[0], errs


def test_one_coin_recovers_planted_skills_shrinking_with_data():
    errs = []
    for n_tasks in (1000, 16000):
        r, truth, params = simulate.one_coin(
            n_tasks, 20, 4, answers_per_task=5, skill_range=(0.35, 0.9), return_params=True, random_state=6
        )
        oc = OneCoinDawidSkene().fit(r)
        errs.append(np.abs(oc.skills_.to_numpy() - params["skills"][np.asarray(r.worker_ids)]).max())
        assert oc.skills_.index.equals(r.worker_ids)
        np.testing.assert_allclose(oc.confusions_.sum(-1), 1.0)
    assert errs[1] < ONE_COIN_SKILL, errs
    assert errs[1] < errs[0], errs


@needs_cpp
@pytest.mark.parametrize("cls", [DawidSkene, OneCoinDawidSkene])
def test_backends_agree(cls):
    r, _ = simulate.dawid_skene(800, 15, 3, answers_per_task=4, random_state=8)
    a = cls(backend="cpp", n_threads=2).fit(r)
    b = cls(backend="numpy").fit(r)
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(a.probas_.to_numpy(), b.probas_.to_numpy(), atol=FIT_TWIN_F64)
    np.testing.assert_allclose(a.confusions_, b.confusions_, atol=FIT_TWIN_F64)


def test_fixed_iterations_and_history():
    r, _ = simulate.dawid_skene(500, 10, 2, answers_per_task=5, random_state=9)
    ds = DawidSkene(n_iter=7, tol=0.0).fit(r)
    assert ds.n_iter_ == 7 and not ds.converged_ and len(ds.loss_history_) == 7
    # EM never lowers the likelihood (smoothing 0: plain MLE)
    assert np.all(np.diff(ds.loss_history_) <= MONOTONE_ABS)


def test_crowdkit_shaped_dataframe_io():
    df = pd.DataFrame(
        {
            "task": ["a", "a", "a", "b", "b", "b"],
            "worker": ["x", "y", "z"] * 2,
            "label": ["cat", "cat", "dog", "dog", "dog", "dog"],
        }
    )
    for est in (MajorityVote(), DawidSkene(), OneCoinDawidSkene()):
        labels = est.fit_predict(df)
        assert list(labels.index) == ["a", "b"] and list(labels) == ["cat", "dog"]
        proba = est.fit_predict_proba(df)
        assert list(proba.columns) == ["cat", "dog"]
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    frame = DawidSkene().fit(df).confusions_frame()
    assert frame.shape == (6, 2) and frame.index.names == ["worker", "true_label"]


# ------------------------------------------------------------------ majority votes
def test_majority_vote_tie_breaks():
    df = pd.DataFrame(
        {"task": np.repeat(np.arange(200), 2), "worker": np.tile([0, 1], 200), "label": np.tile([0, 1], 200)}
    )  # every task tied 1:1
    first = MajorityVote(tie_break="first").fit(df)
    assert (first.labels_ == 0).all()
    np.testing.assert_allclose(first.probas_.to_numpy(), 0.5)
    a = MajorityVote(random_state=3).fit_predict(df)
    b = MajorityVote(random_state=3).fit_predict(df)
    assert a.equals(b) and 60 < (a == 1).sum() < 140  # Binomial(200, 1/2)
    with pytest.raises(ValueError, match="tie_break"):
        MajorityVote(tie_break="last").fit(df)


def test_majority_vote_backends_and_plurality():
    r, truth = simulate.one_coin(2000, 15, 3, answers_per_task=5, random_state=11)
    a = MajorityVote(tie_break="first").fit(r)
    b = MajorityVote(tie_break="first", backend="numpy").fit(r)
    assert a.labels_.equals(b.labels_)
    assert (a.scores_.argmax(1) == a.labels_.map({c: i for i, c in enumerate(a.classes_)}).to_numpy()).all()
    np.testing.assert_allclose(a.probas_.to_numpy(), a.scores_ / 5)


def test_weighted_vote_nitzan_paroush_beats_majority():
    skills = np.r_[np.full(3, 0.95), np.full(12, 0.55)]
    r, truth, params = simulate.one_coin(
        5000, 15, 2, answers_per_task=7, skills=skills, return_params=True, random_state=12
    )
    rel = pd.Series(skills, index=range(15))
    mv = accuracy(MajorityVote(random_state=0).fit_predict(r), truth)
    wmv = WeightedMajorityVote(reliabilities=rel, random_state=0).fit(r)
    assert accuracy(wmv.labels_, truth) > mv + 0.05
    np.testing.assert_allclose(wmv.weights_.to_numpy(), nitzan_paroush_weights(skills[np.asarray(r.worker_ids)]))
    # an explicit weight vector equal to ones is the plain majority vote
    ones = WeightedMajorityVote(weights=np.ones(r.n_workers), tie_break="first").fit_predict(r)
    assert ones.equals(MajorityVote(tie_break="first").fit_predict(r))
    np.testing.assert_allclose(wmv.probas_.sum(axis=1), 1.0)


def test_weighted_vote_errors():
    r, _ = simulate.one_coin(50, 5, 2, answers_per_task=3, random_state=0)
    with pytest.raises(ValueError, match="exactly one"):
        WeightedMajorityVote().fit(r)
    with pytest.raises(ValueError, match="exactly one"):
        WeightedMajorityVote(weights=np.ones(5), reliabilities=np.ones(5)).fit(r)
    with pytest.raises(ValueError, match=">= 0"):
        WeightedMajorityVote(weights=-np.ones(5)).fit(r)
    with pytest.raises(ValueError, match="one value per worker"):
        WeightedMajorityVote(weights=np.ones(4)).fit(r)
    with pytest.raises(ValueError, match="no value for workers"):
        WeightedMajorityVote(weights={0: 1.0}).fit(r)
    with pytest.raises(ValueError, match="finite"):
        WeightedMajorityVote(weights=np.r_[np.nan, np.ones(4)]).fit(r)
    with pytest.raises(ValueError, match="probabilities"):
        WeightedMajorityVote(reliabilities=np.full(5, 1.5)).fit(r)


# ------------------------------------------------------------------ bad inputs
ALL = [MajorityVote, DawidSkene, OneCoinDawidSkene]


def _finite(est):
    assert np.all(np.isfinite(est.probas_.to_numpy()))
    np.testing.assert_allclose(est.probas_.sum(axis=1), 1.0)
    if hasattr(est, "confusions_"):
        assert np.all(np.isfinite(est.confusions_))


@pytest.mark.parametrize("cls", ALL)
def test_nan_and_empty_inputs_are_refused(cls):
    df = pd.DataFrame({"task": [1, 2], "worker": [1, 1], "label": [0.0, np.nan]})
    with pytest.raises(ValueError, match="missing or non-finite"):
        cls().fit(df)
    with pytest.raises(ValueError, match="no responses"):
        cls().fit(pd.DataFrame({"task": [], "worker": [], "label": []}))
    with pytest.raises(TypeError, match="Responses or a pandas DataFrame"):
        cls().fit(np.zeros((3, 3)))


@pytest.mark.parametrize("cls", ALL)
def test_one_worker(cls):
    df = pd.DataFrame({"task": range(6), "worker": 0, "label": [0, 1, 1, 0, 1, 1]})
    est = cls().fit(df)
    _finite(est)
    assert list(est.labels_) == [0, 1, 1, 0, 1, 1]  # a single worker is believed


@pytest.mark.parametrize("cls", ALL)
def test_one_task_and_single_answer_workers(cls):
    df = pd.DataFrame({"task": 0, "worker": range(5), "label": [1, 1, 1, 0, 2]})
    est = cls().fit(df)
    _finite(est)
    assert est.labels_.iloc[0] == 1


@pytest.mark.parametrize("cls", ALL)
def test_all_answers_identical(cls):
    df = pd.DataFrame({"task": np.repeat(range(10), 3), "worker": np.tile(range(3), 10), "label": "yes"})
    with pytest.raises(ValueError, match="only one class"):
        cls().fit(df)
    r = Responses.from_dataframe(df, classes=["no", "yes"])
    est = cls().fit(r)
    _finite(est)
    assert (est.labels_ == "yes").all()


@pytest.mark.parametrize("cls", [DawidSkene, OneCoinDawidSkene])
def test_class_nobody_uses(cls):
    r, truth = simulate.dawid_skene(600, 10, 2, answers_per_task=5, random_state=13)
    df = r.to_dataframe()
    r3 = Responses.from_dataframe(df, classes=[0, 1, 2])
    est = cls().fit(r3)
    _finite(est)
    assert est.priors_.loc[2] < EMPTY_CLASS_PRIOR and (est.labels_ != 2).all()
    assert accuracy(est.labels_, truth) > 0.9


@pytest.mark.parametrize("cls", [DawidSkene, OneCoinDawidSkene])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_perfect_workers(cls, smoothing):
    r, truth = simulate.one_coin(400, 6, 3, answers_per_task=3, skills=np.ones(6), random_state=14)
    est = cls(smoothing=smoothing).fit(r)
    _finite(est)
    assert accuracy(est.labels_, truth) == 1.0


@pytest.mark.parametrize("cls", [DawidSkene, OneCoinDawidSkene])
def test_adversarial_workers(cls):
    """A minority of workers below chance: EM learns it and reads their answers backwards."""
    skills = np.r_[np.full(3, 0.2), np.full(7, 0.75)]  # majority vote still leans right: 7 * 0.5 > 3 * 0.6
    r, truth = simulate.one_coin(3000, 10, 2, answers_per_task=10, skills=skills, random_state=15)
    est = cls().fit(r)
    _finite(est)
    mv = accuracy(MajorityVote(random_state=0).fit_predict(r), truth)
    assert accuracy(est.labels_, truth) > max(mv, 0.95)
    if cls is OneCoinDawidSkene:
        assert (est.skills_.loc[[0, 1, 2]] < 0.25).all()


def test_all_workers_adversarial_is_finite_label_swap():
    """Documented: with every worker below chance the model is unidentifiable; EM (from
    majority vote) returns the mirror solution: finite, confident, swapped labels."""
    r, truth = simulate.one_coin(1000, 8, 2, answers_per_task=8, skills=np.full(8, 0.2), random_state=16)
    ds = DawidSkene().fit(r)
    _finite(ds)
    assert accuracy(ds.labels_, truth) < 0.1


@pytest.mark.parametrize("cls", [DawidSkene, OneCoinDawidSkene])
def test_degenerate_initialisation_all_ties(cls):
    """Every task tied 1:1 in the majority-vote start: a flat start, finite result."""
    df = pd.DataFrame(
        {"task": np.repeat(np.arange(50), 2), "worker": np.tile([0, 1], 50), "label": np.tile([0, 1], 50)}
    )
    est = cls().fit(df)
    _finite(est)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(n_iter=0), ValueError, "n_iter"),
        (dict(n_iter=2.5), TypeError, "n_iter"),
        (dict(tol=-1.0), ValueError, "tol"),
        (dict(smoothing=np.nan), ValueError, "smoothing"),
        (dict(init="random"), ValueError, "init"),
        (dict(backend="gpu"), ValueError, "backend"),
        (dict(n_threads=-2), ValueError, "n_threads"),
    ],
)
def test_estimator_parameter_errors(kwargs, exc, match):
    r, _ = simulate.one_coin(50, 5, 2, answers_per_task=3, random_state=0)
    with pytest.raises(exc, match=match):
        DawidSkene(**kwargs).fit(r)


def test_spectral_init():
    r, truth = simulate.dawid_skene(2000, 20, 3, answers_per_task=6, random_state=17)
    ds = DawidSkene(init="spectral", random_state=0).fit(r)
    _finite(ds)
    assert accuracy(ds.labels_, truth) > 0.9


def test_sklearn_protocol():
    ds = DawidSkene(n_iter=5)
    assert ds.get_params()["n_iter"] == 5
    assert ds.clone().get_params() == ds.get_params()
    assert "n_iter=5" in repr(ds)
    r, _ = simulate.one_coin(100, 5, 2, answers_per_task=3, random_state=0)
    assert ds.fit(r) is ds


def test_public_exports_resolve():
    import kdcore.crowd as crowd

    for name in crowd.__all__:
        assert getattr(crowd, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute"):
        crowd.NotAnAggregator  # noqa: B018


# ------------------------------------------------------------------ the compiled EM loop (_core.em_run)
def _loop_numpy(r, post, smoothing, n_iter, tol, one_coin, init_ll=None):
    """The EM rounds step by step through the numpy twins (DawidSkene._loop)."""
    est = (OneCoinDawidSkene if one_coin else DawidSkene)(n_iter=n_iter, tol=tol, smoothing=smoothing)
    return est._loop(r, post, init_ll, _em.EMSettings("numpy", 1, smoothing), n_iter, tol)


def _planted_two_types(n_tasks, K, seed):
    """Answers with a typed model so that (T = 2) posteriors are not degenerate."""
    r, _ = simulate.dawid_skene(n_tasks, 25, K, answers_per_task=6, skill_range=(0.4, 0.95), random_state=seed)
    rng = np.random.default_rng(seed)
    post = rng.dirichlet(np.ones(2 * K), size=r.n_tasks).reshape(r.n_tasks, 2, K)
    return r, post


@needs_cpp
@pytest.mark.parametrize("T, K", [(1, 2), (1, 3), (1, 5), (1, 7), (2, 2), (2, 3), (2, 5)])
@pytest.mark.parametrize("one_coin", [False, True])
@pytest.mark.parametrize("strategy", [1, 2])  # E-step + worker-major counts, fused task-major pass
def test_em_run_matches_the_step_by_step_loop(T, K, one_coin, strategy, monkeypatch):
    monkeypatch.setattr(_em, "_RUN_STRATEGY", strategy)
    r, post0 = _planted_two_types(600, K, seed=10 * K + T)
    post0 = post0[:, :T, :] / post0[:, :T, :].sum(axis=(1, 2), keepdims=True)
    for smoothing in (0.0, 0.3):
        post, params, prior, hist, n, conv = _em.run(r, post0, smoothing, 15, 0.0, None, 1, one_coin)
        post_np, params_np, prior_np, hist_np, n_np, conv_np = _loop_numpy(r, post0, smoothing, 15, 0.0, one_coin)
        assert (n, conv) == (n_np, conv_np) == (15, False)
        np.testing.assert_allclose(post, post_np, rtol=EM_TWIN_F64, atol=EM_TWIN_F64)
        np.testing.assert_allclose(params, params_np, rtol=EM_TWIN_F64, atol=EM_TWIN_F64)
        np.testing.assert_allclose(prior, prior_np, rtol=EM_TWIN_F64, atol=EM_TWIN_F64)
        np.testing.assert_allclose(hist, hist_np, rtol=ITERATED_F64)


@needs_cpp
@pytest.mark.parametrize("strategy", [0, 1, 2])
def test_em_run_two_threads_agree_and_are_deterministic(strategy, monkeypatch):
    # 80,000 answers: above the one-thread cutoff, so the per-thread tables are really summed
    monkeypatch.setattr(_em, "_RUN_STRATEGY", strategy)
    r, _ = simulate.dawid_skene(16000, 200, 3, answers_per_task=5, random_state=4)
    post0 = DawidSkene()._init_post(r, _em.EMSettings("cpp", 0, 0.0))
    one = _em.run(r, post0, 0.0, 20, 0.0, None, 1)
    two = _em.run(r, post0, 0.0, 20, 0.0, None, 2)
    again = _em.run(r, post0, 0.0, 20, 0.0, None, 2)
    for a, b in zip(two[:3], again[:3]):
        np.testing.assert_array_equal(a, b)  # same thread count: bit-identical
    for a, b in zip(one[:3], two[:3]):
        np.testing.assert_allclose(a, b, rtol=ITERATED_F64, atol=REORDER_F64)
    np.testing.assert_allclose(one[3], two[3], rtol=REORDER_F64)


@needs_cpp
@pytest.mark.parametrize("cls", [DawidSkene, OneCoinDawidSkene])
def test_em_run_stops_at_the_same_round_as_the_loop(cls):
    r, _ = simulate.dawid_skene(2000, 30, 3, answers_per_task=4, random_state=12)
    for tol in (1e-3, 1e-6):
        a = cls(tol=tol, backend="cpp").fit(r)
        b = cls(tol=tol, backend="numpy").fit(r)
        assert a.converged_ and b.converged_ and a.n_iter_ == b.n_iter_ < 100
        np.testing.assert_allclose(a.loss_history_, b.loss_history_, rtol=ITERATED_F64)
    # a start with a log-likelihood before round 1 (init_loglik)
    a = cls(init="spectral", random_state=0, backend="cpp").fit(r)
    b = cls(init="spectral", random_state=0, backend="numpy").fit(r)
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(a.probas_.to_numpy(), b.probas_.to_numpy(), atol=FIT_TWIN_F64)


@needs_cpp
def test_em_run_perfect_workers_and_extreme_scores_stay_finite(monkeypatch):
    # 40 perfect workers per task: log-scores near 40 * log(1e-300) = -27,600, where the
    # vectorised exp must give 0 (not NaN or a wrapped exponent)
    r, truth = simulate.one_coin(300, 40, 2, answers_per_task=40, skill_range=(1.0, 1.0), random_state=1)
    for strategy in (1, 2):
        monkeypatch.setattr(_em, "_RUN_STRATEGY", strategy)
        ds = DawidSkene(n_iter=5, tol=0.0).fit(r)
        assert np.isfinite(ds.probas_.to_numpy()).all() and np.isfinite(ds.loss_history_).all()
        assert accuracy(ds.labels_, truth) == 1.0
        assert set(np.unique(ds.probas_.to_numpy())) <= {0.0, 1.0}


@needs_cpp
def test_em_run_refuses_bad_arguments_and_codes():
    from kdcore import _core

    r, _ = simulate.one_coin(20, 3, 2, answers_per_task=2, random_state=0)
    args = (r.task_indptr, r.task_worker, r.task_label, r.worker_indptr, r.worker_task, r.worker_label, 20, 3)
    post = np.full((20, 1, 2), 0.5)
    with pytest.raises(ValueError, match="strategy"):
        _core.em_run(*args, post, 0.0, False, 5, 0.0, np.nan, 1e-300, 1, 3)
    with pytest.raises(ValueError, match="n_iter"):
        _core.em_run(*args, post, 0.0, False, 0, 0.0, np.nan, 1e-300, 1, 0)
    with pytest.raises(ValueError, match="post"):
        _core.em_run(*args, np.full((19, 1, 2), 0.5), 0.0, False, 5, 0.0, np.nan, 1e-300, 1, 0)
    with pytest.raises(ValueError, match="smoothing"):
        _core.em_run(*args, post, -1.0, False, 5, 0.0, np.nan, 1e-300, 1, 0)
    with pytest.raises(ValueError, match="prob_floor"):
        _core.em_run(*args, post, 0.0, False, 5, 0.0, np.nan, 0.0, 1, 0)
    bad = r.task_worker.copy()
    bad[3] = 9
    for strategy in (1, 2):
        with pytest.raises(ValueError, match="worker code 9"):
            _core.em_run(r.task_indptr, bad, *args[2:], post, 0.0, False, 5, 0.0, np.nan, 1e-300, 1, strategy)


@needs_cpp
@pytest.mark.parametrize("smoothing", [0.0, 0.05])
def test_em_run_penalised_rule_matches_the_typed_mixture_loop(smoothing, monkeypatch):
    from kdcore.crowd import _typed_em

    r, post0 = _planted_two_types(800, 2, seed=3)
    out = {}
    for be in ("cpp", "numpy"):
        out[be] = _typed_em.em_fit(r, post0, n_iter=300, tol=1e-5, smoothing=smoothing, backend=be, n_threads=1)
    (p1, lc1, lp1, h1), (p2, lc2, lp2, h2) = out["cpp"], out["numpy"]
    assert len(h1) == len(h2) < 300  # stopped at the same round, before the cap
    np.testing.assert_allclose(h1, h2, rtol=EM_TWIN_F64)
    np.testing.assert_allclose(p1, p2, rtol=FIT_TWIN_F64, atol=FIT_TWIN_F64)
    np.testing.assert_allclose(lc1, lc2, rtol=FIT_TWIN_F64, atol=FIT_TWIN_F64)
    np.testing.assert_allclose(lp1, lp2, rtol=FIT_TWIN_F64, atol=FIT_TWIN_F64)
    assert np.all(np.diff(h1) >= -MONOTONE_REL_MAP * np.abs(h1[1:]))  # the MAP objective never decreases
    from kdcore import _core

    with pytest.raises(ValueError, match="one_coin"):
        _core.em_run(
            r.task_indptr,
            r.task_worker,
            r.task_label,
            r.worker_indptr,
            r.worker_task,
            r.worker_label,
            r.n_tasks,
            r.n_workers,
            post0,
            0.0,
            True,
            5,
            0.0,
            np.nan,
            1e-300,
            1,
            0,
            1,
        )
