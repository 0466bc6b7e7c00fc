"""Tests of the worker-model aggregators beyond Dawid-Skene: spectral_init/SpectralEM,
TriangularEstimation, KOS, RatioOfEigenvectors, GLAD, MACE.

Kernels against their numpy twins (1e-10), planted truth on simulated data,
real-data accuracy (reported; asserted only against what was measured), bad inputs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from _tol import (
    BELOW_MAJORITY_VOTE,
    CROWDKIT_GLAD,
    FD_ATOL_GLAD,
    FD_RTOL,
    FD_STEP,
    FIT_TWIN_F64,
    KERNEL_F64,
    MONOTONE_ABS_GLAD,
    PLANTED_PRIORS,
    REAL_DATA_REGRESSION,
    REORDER_F64,
    SPECTRAL_INIT_CONF,
    TRIANGULAR_SKILL,
)
from kdcore.backends import HAS_CPP, _core
from kdcore.crowd import Responses, datasets, simulate
from kdcore.crowd import _reference_worker_models as ref
from kdcore.crowd._glad import GLAD
from kdcore.crowd._kos import KOS, RatioOfEigenvectors
from kdcore.crowd._mace import MACE
from kdcore.crowd._majority_vote import MajorityVote
from kdcore.crowd._spectral_em import SpectralEM
from kdcore.crowd._spectral_init import spectral_init
from kdcore.crowd._triangular import TriangularEstimation

needs_cpp = pytest.mark.skipif(not HAS_CPP, reason="the compiled core kdcore._core is not built")
ALL = [TriangularEstimation, KOS, RatioOfEigenvectors, GLAD, MACE, SpectralEM]
BINARY_ONLY = [TriangularEstimation, KOS, RatioOfEigenvectors]


def _fast(cls, **kw):
    """Estimators with settings that keep the tests quick."""
    if cls is MACE:
        kw.setdefault("n_init", 2)
        kw.setdefault("n_iter", 30)
    if "random_state" in cls._param_names():
        kw.setdefault("random_state", 0)
    return cls(**kw)


def _acc(pred: pd.Series, truth: pd.Series) -> float:
    return float((pred.loc[truth.index].to_numpy() == truth.to_numpy()).mean())


@pytest.fixture(scope="module")
def multi():
    return simulate.dawid_skene(400, 25, 4, answers_per_task=6, random_state=3)[0]


@pytest.fixture(scope="module")
def binary():
    return simulate.one_coin(400, 25, 2, answers_per_task=6, random_state=4)[0]


@pytest.fixture(scope="module")
def big_binary():  # above the kernels' one-thread threshold (50,000 answers)
    return simulate.one_coin(8000, 200, 2, answers_per_task=8, random_state=5)[0]


# ====================================================================== kernels vs twins
@needs_cpp
@pytest.mark.parametrize("fixture", ["binary", "big_binary"])
def test_te_moments_match_twin(fixture, request):
    r = request.getfixturevalue(fixture)
    s, c = _core.te_pairwise_agreement(r.task_indptr, r.task_worker, r.task_label, r.n_workers, 2)
    s2, c2 = ref.te_pairwise_agreement(r.task_indptr, r.task_worker, r.task_label, r.n_workers)
    np.testing.assert_allclose(s, s2, atol=KERNEL_F64, rtol=0)
    np.testing.assert_array_equal(c, c2)
    assert np.allclose(s, s.T) and c.sum() == sum(n * (n - 1) for n in np.diff(r.task_indptr))


@needs_cpp
@pytest.mark.parametrize("fixture", ["binary", "big_binary"])
def test_kos_kernel_matches_twin(fixture, request, rng):
    r = request.getfixturevalue(fixture)
    y0 = rng.normal(1, 1, r.n_responses)
    score, y = _core.kos_messages(r.task_indptr, r.task_worker, r.task_label, r.n_workers, y0, 15, 2)
    score2, y2 = ref.kos_messages(r.task_indptr, r.task_worker, r.task_label, r.n_workers, y0, 15)
    np.testing.assert_allclose(score, score2, atol=KERNEL_F64 * max(1, np.abs(score2).max()), rtol=0)
    np.testing.assert_allclose(y, y2, atol=KERNEL_F64, rtol=0)


def _glad_params(r, rng):
    alpha = rng.normal(1, 1.5, r.n_workers)
    logbeta = rng.normal(0.5, 1, r.n_tasks)
    log_prior = np.log(rng.dirichlet(np.ones(r.n_classes)))
    return alpha, logbeta, log_prior


@needs_cpp
@pytest.mark.parametrize("fixture", ["multi", "binary", "big_binary"])
def test_glad_kernels_match_twin(fixture, request, rng):
    r = request.getfixturevalue(fixture)
    K = r.n_classes
    alpha, logbeta, log_prior = _glad_params(r, rng)
    post, ll = _core.glad_e_step(r.task_indptr, r.task_worker, r.task_label, K, alpha, logbeta, log_prior, 2)
    post2, ll2 = ref.glad_e_step(r.task_indptr, r.task_worker, r.task_label, K, alpha, logbeta, log_prior)
    np.testing.assert_allclose(post, post2, atol=KERNEL_F64, rtol=0)
    assert ll == pytest.approx(ll2, rel=KERNEL_F64)
    mu_a, mu_b = np.full(r.n_workers, 1.0), np.full(r.n_tasks, 1.0)
    args = (r.task_indptr, r.task_worker, r.task_label, K, post, alpha, logbeta, mu_a, mu_b)
    q, ga, gb = _core.glad_objective(*args, 2)
    q2, ga2, gb2 = ref.glad_objective(*args)
    assert q == pytest.approx(q2, rel=KERNEL_F64)
    np.testing.assert_allclose(ga, ga2, atol=KERNEL_F64 * max(1, np.abs(ga2).max()), rtol=0)
    np.testing.assert_allclose(gb, gb2, atol=KERNEL_F64, rtol=0)


def test_glad_gradient_is_the_derivative(multi, rng):
    r = multi
    alpha, logbeta, log_prior = _glad_params(r, rng)
    post, _ = ref.glad_e_step(r.task_indptr, r.task_worker, r.task_label, r.n_classes, alpha, logbeta, log_prior)
    mu_a, mu_b = np.zeros(r.n_workers), np.zeros(r.n_tasks)

    def q(a, b):
        return ref.glad_objective(r.task_indptr, r.task_worker, r.task_label, r.n_classes, post, a, b, mu_a, mu_b)

    _, ga, gb = q(alpha, logbeta)
    h = FD_STEP
    for i in (0, 7):
        d = np.zeros_like(alpha)
        d[i] = h
        assert ga[i] == pytest.approx((q(alpha + d, logbeta)[0] - q(alpha - d, logbeta)[0]) / (2 * h), rel=FD_RTOL)
    for j in (0, 11):
        d = np.zeros_like(logbeta)
        d[j] = h
        assert gb[j] == pytest.approx(
            (q(alpha, logbeta + d)[0] - q(alpha, logbeta - d)[0]) / (2 * h), rel=FD_RTOL, abs=FD_ATOL_GLAD
        )


@needs_cpp
@pytest.mark.parametrize("fixture", ["multi", "binary", "big_binary"])
def test_mace_kernels_match_twin(fixture, request, rng):
    r = request.getfixturevalue(fixture)
    K, W = r.n_classes, r.n_workers
    spam = rng.dirichlet([1, 1], W)
    spam[0] = [0.0, 1.0]  # a worker who never spams (g = 0 for every answer)
    strat = rng.dirichlet(np.ones(K), W)
    post, ll = _core.mace_e_step(r.task_indptr, r.task_worker, r.task_label, K, spam, strat, 2)
    post2, ll2 = ref.mace_e_step(r.task_indptr, r.task_worker, r.task_label, K, spam, strat)
    np.testing.assert_allclose(post, post2, atol=KERNEL_F64, rtol=0)
    assert ll == pytest.approx(ll2, rel=KERNEL_F64)
    know, sc = _core.mace_counts(r.worker_indptr, r.worker_task, r.worker_label, K, post, spam, strat, 2)
    know2, sc2 = ref.mace_counts(r.worker_indptr, r.worker_task, r.worker_label, K, post, spam, strat)
    np.testing.assert_allclose(know, know2, atol=KERNEL_F64, rtol=0)
    np.testing.assert_allclose(sc, sc2, atol=KERNEL_F64, rtol=0)
    np.testing.assert_allclose(know.sum(axis=1), np.diff(r.worker_indptr), rtol=REORDER_F64)  # P(spam)+P(know) = 1


@needs_cpp
def test_kernels_same_result_any_thread_count(big_binary, rng):
    r = big_binary
    alpha, logbeta, log_prior = _glad_params(r, rng)
    a = _core.glad_e_step(r.task_indptr, r.task_worker, r.task_label, 2, alpha, logbeta, log_prior, 1)
    b = _core.glad_e_step(r.task_indptr, r.task_worker, r.task_label, 2, alpha, logbeta, log_prior, 2)
    np.testing.assert_array_equal(a[0], b[0])
    s1 = _core.te_pairwise_agreement(r.task_indptr, r.task_worker, r.task_label, r.n_workers, 1)
    s2 = _core.te_pairwise_agreement(r.task_indptr, r.task_worker, r.task_label, r.n_workers, 2)
    np.testing.assert_array_equal(s1[0], s2[0])


@pytest.mark.parametrize("cls", [TriangularEstimation, KOS, GLAD, MACE])
@needs_cpp
def test_estimators_cpp_equals_numpy(cls, binary):
    a = _fast(cls, backend="cpp").fit(binary)
    b = _fast(cls, backend="numpy").fit(binary)
    np.testing.assert_allclose(a.probas_.to_numpy(), b.probas_.to_numpy(), atol=FIT_TWIN_F64)
    assert a.labels_.equals(b.labels_)


# ====================================================================== planted truth
def _one_coin(n_tasks, seed, n_workers=30, apt=7, skills=None):
    return simulate.one_coin(
        n_tasks,
        n_workers,
        2,
        answers_per_task=apt,
        skills=skills,
        skill_range=(0.55, 0.95),
        return_params=True,
        random_state=seed,
    )


def test_triangular_recovers_reliabilities_and_shrinks_with_data():
    errs = []
    for n in (1000, 10000):
        r, truth, p = _one_coin(n, 10)
        te = TriangularEstimation().fit(r)
        v_true = 2 * p["skills"] - 1
        errs.append(np.abs(te.skills_.to_numpy() - v_true).max())
        assert _acc(te.labels_, truth) >= _acc(MajorityVote(random_state=0).fit_predict(r), truth) - 0.005
    assert errs[1] < TRIANGULAR_SKILL and errs[1] < errs[0]


def test_triangular_sign_fix_with_an_adversary():
    skills = np.r_[np.full(14, 0.85), 0.1]  # worker 14 is wrong 90% of the time
    r, truth, p = _one_coin(3000, 11, n_workers=15, apt=7, skills=skills)
    te = TriangularEstimation().fit(r)
    assert te.skills_.iloc[14] < -0.6 and (te.skills_.iloc[:14] > 0.5).all()
    assert te.weights_.iloc[14] < 0
    # posteriors are the one-coin posterior: sigmoid of the weighted score
    np.testing.assert_allclose(te.probas_[1].to_numpy(), 1 / (1 + np.exp(-te.scores_.to_numpy())))


@pytest.mark.parametrize("cls", [KOS, RatioOfEigenvectors])
def test_kos_and_eigenratio_on_one_coin(cls):
    r, truth, _ = _one_coin(5000, 12, n_workers=100, apt=9)
    mv = _acc(MajorityVote(random_state=0).fit_predict(r), truth)
    est = cls().fit(r)
    assert _acc(est.labels_, truth) >= mv - 0.01
    assert np.all(np.isfinite(est.probas_.to_numpy()))


def test_ratio_of_eigenvectors_weights_follow_skill():
    r, truth, p = _one_coin(5000, 13, n_workers=40, apt=9)
    q = RatioOfEigenvectors(random_state=0).fit(r).skills_.to_numpy()
    assert np.corrcoef(q, 2 * p["skills"] - 1)[0, 1] > 0.9


def test_kos_matches_unnormalised_message_passing(binary):
    """Normalising the messages changes no sign: compare with plain (unnormalised) KOS."""
    r = binary
    n_iter = 8
    y0 = np.random.default_rng(0).normal(1.0, 1.0, r.n_responses)
    a = np.where(r.task_label == 1, 1.0, -1.0)
    task = np.repeat(np.arange(r.n_tasks), np.diff(r.task_indptr))
    worker = r.task_worker
    y = y0.copy()
    for _ in range(n_iter):
        x = np.bincount(task, a * y, r.n_tasks)[task] - a * y
        y = np.bincount(worker, a * x, r.n_workers)[worker] - a * x
    plain = np.sign(np.bincount(task, a * y, r.n_tasks))
    ours = KOS(n_iter=n_iter, random_state=0).fit(r).scores_.to_numpy()
    assert np.array_equal(np.sign(ours), plain)


def test_glad_recovers_abilities():
    r, truth, p = simulate.one_coin(
        3000, 30, 3, answers_per_task=6, skill_range=(0.4, 0.95), return_params=True, random_state=14
    )
    g = GLAD().fit(r)
    assert _acc(g.labels_, truth) >= _acc(MajorityVote(random_state=0).fit_predict(r), truth)
    assert np.corrcoef(g.skills_.to_numpy(), p["skills"])[0, 1] > 0.95
    assert (g.difficulties_ > 0).all() and g.n_iter_ >= 1 and len(g.loss_history_) == g.n_iter_
    assert np.all(np.diff(g.loss_history_[:-1]) > -MONOTONE_ABS_GLAD)  # the EM objective goes up until the stop


def _spammers(n_tasks, theta, K, seed, apt=6):
    """MACE's generative model: worker i knows with prob theta_i, else answers from a skewed strategy."""
    rng = np.random.default_rng(seed)
    W = len(theta)
    truth = rng.integers(0, K, n_tasks)
    workers = np.argsort(rng.random((n_tasks, W)), axis=1)[:, :apt].ravel()
    tasks = np.repeat(np.arange(n_tasks), apt)
    strat = rng.dirichlet(np.full(K, 0.5), W)
    know = rng.random(tasks.size) < theta[workers]
    spam = (rng.random(tasks.size)[:, None] > np.cumsum(strat[workers], axis=1)).sum(axis=1)
    labels = np.where(know, truth[tasks], np.minimum(spam, K - 1))
    r = Responses.from_arrays(tasks, workers, labels, classes=list(range(K)))
    return r, pd.Series(truth, index=pd.Index(np.arange(n_tasks))), strat


def test_mace_recovers_competence():
    theta = np.linspace(0.1, 0.95, 20)
    r, truth, _ = _spammers(3000, theta, 3, 15)
    m = MACE(n_init=2, random_state=0).fit(r)
    assert np.corrcoef(m.skills_.to_numpy(), theta)[0, 1] > 0.95
    assert _acc(m.labels_, truth) >= _acc(MajorityVote(random_state=0).fit_predict(r), truth)
    np.testing.assert_allclose(m.spam_strategies_.sum(axis=1), 1.0)
    assert MACE(n_init=1, n_iter=20, method="em", random_state=0).fit(r).skills_.corr(m.skills_) > 0.95


@pytest.mark.parametrize("K", [2, 3, 5])
def test_spectral_init_recovers_confusions_and_shrinks(K):
    errs = []
    for n in (2000, 20000):
        r, truth, p = simulate.dawid_skene(n, 30, K, answers_per_task=10, return_params=True, random_state=20 + K)
        conf, priors, info = spectral_init(r, random_state=0, return_info=True)
        assert info["fallback"] is None
        assert conf.shape == (30, K, K) and np.allclose(conf.sum(axis=2), 1) and (conf > 0).all()
        np.testing.assert_allclose(priors, p["priors"], atol=PLANTED_PRIORS)
        errs.append(np.abs(conf - p["confusions"]).mean())
    assert errs[1] < SPECTRAL_INIT_CONF and errs[1] < errs[0]


def test_spectral_em_matches_ds_on_planted_data():
    from kdcore.crowd import DawidSkene

    r, truth = simulate.dawid_skene(3000, 30, 3, answers_per_task=5, random_state=7)
    s = SpectralEM(random_state=0).fit(r)
    assert s.init_fallback_ is None
    assert _acc(s.labels_, truth) >= _acc(DawidSkene().fit_predict(r), truth) - 0.005
    assert DawidSkene(init="spectral", random_state=0).fit(r).labels_.equals(s.labels_)


# ====================================================================== real data
# accuracy measured with default settings (random_state=0 where the method draws), asserted to
# within REAL_DATA_REGRESSION (a regression guard); and every method, measured or not, at least
# majority vote's accuracy less BELOW_MAJORITY_VOTE, except where its measured value is lower
# (KOS and the ratio of eigenvectors on rte and temp, which sit at chance there; GLAD and KOS on
# bluebirds; MACE on product).
MEASURED = {
    "TriangularEstimation": {"bluebirds": 0.806, "rte": 0.917, "temp": 0.929, "product": 0.920},
    "GLAD": {
        "bluebirds": 0.722,
        "rte": 0.925,
        "temp": 0.935,
        "wsd": 0.994,
        "dog": 0.834,
        "face": 0.628,
        "product": 0.928,
        "web": 0.823,
        "adult2": 0.757,
    },
    "MACE": {
        "bluebirds": 0.861,
        "rte": 0.926,
        "temp": 0.942,
        "wsd": 0.994,
        "dog": 0.830,
        "face": 0.644,
        "product": 0.818,
        "web": 0.839,
        "adult2": 0.784,
    },
    "SpectralEM": {
        "bluebirds": 0.898,
        "rte": 0.929,
        "temp": 0.942,
        "product": 0.940,
        "wsd": 0.994,
        "dog": 0.843,
        "face": 0.637,
        "web": 0.817,
        "adult2": 0.745,
    },
    "KOS": {"bluebirds": 0.722, "rte": 0.497, "temp": 0.569, "product": 0.895},
    "RatioOfEigenvectors": {"bluebirds": 0.722, "rte": 0.507, "temp": 0.591, "product": 0.924},
}
SMALL = ["bluebirds", "rte", "temp", "wsd", "dog", "face"]


@pytest.mark.parametrize("name", SMALL)
def test_real_data_accuracy(name, data_home):
    r, truth = datasets.load(name, data_home)
    kinds = [c for c in ALL if not (c._binary_only and r.n_classes != 2)]
    report = {}
    for cls in kinds:
        est = cls(random_state=0) if cls in (SpectralEM, KOS, MACE, RatioOfEigenvectors) else cls()
        report[cls.__name__] = est.fit(r).score(r, truth)
    mv = MajorityVote().fit(r).score(r, truth)
    print(name, {k: round(v, 3) for k, v in report.items()}, "majority vote", round(mv, 3))
    assert report  # every data set has at least one applicable method
    for method, acc in report.items():
        measured = MEASURED.get(method, {}).get(name)
        if measured is not None:
            assert acc >= measured - REAL_DATA_REGRESSION, (method, acc, measured)
        if measured is None or measured >= mv - BELOW_MAJORITY_VOTE:
            assert acc >= mv - BELOW_MAJORITY_VOTE, (method, acc, mv)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["product", "web", "adult2"])
def test_real_data_accuracy_large(name, data_home):
    test_real_data_accuracy(name, data_home)


def test_glad_agrees_with_crowdkit(data_home):
    ck = pytest.importorskip("crowdkit.aggregation", reason="crowd-kit is the optional comparator")
    r, truth = datasets.load("wsd", data_home)
    ours = GLAD().fit(r)
    theirs = ck.GLAD().fit(r.to_dataframe())
    assert (ours.labels_ == theirs.labels_.loc[ours.labels_.index]).mean() == 1.0
    np.testing.assert_allclose(
        ours.alphas_.to_numpy(), theirs.alphas_.loc[ours.alphas_.index].to_numpy(), atol=CROWDKIT_GLAD
    )


# ====================================================================== bad inputs
@pytest.mark.parametrize("cls", BINARY_ONLY)
def test_binary_only_refuses_multiclass(cls, multi):
    with pytest.raises(ValueError, match="binary labels only"):
        cls().fit(multi)


@pytest.mark.parametrize("cls", ALL)
def test_bad_parameters(cls, binary):
    if "n_iter" in cls._param_names():
        with pytest.raises(ValueError, match="n_iter"):
            cls(n_iter=-1).fit(binary)
        with pytest.raises(TypeError, match="n_iter"):
            cls(n_iter="10").fit(binary)
    if "backend" in cls._param_names():
        with pytest.raises(ValueError, match="not supported"):
            cls(backend="cuda").fit(binary)
    with pytest.raises(TypeError, match="Responses or a pandas DataFrame"):
        cls().fit(np.zeros((3, 3)))


def test_bad_parameter_values():
    r = simulate.one_coin(50, 5, 2, answers_per_task=3, random_state=0)[0]
    with pytest.raises(ValueError, match="method"):
        MACE(method="gibbs").fit(r)
    with pytest.raises(ValueError, match="eps"):
        TriangularEstimation(eps=0).fit(r)
    with pytest.raises(ValueError, match="priors"):
        GLAD(priors=[1.0, -1.0]).fit(r)
    with pytest.raises(ValueError, match="n_threads"):
        GLAD(n_threads=-1).fit(r)


def test_nan_input_is_refused():
    df = pd.DataFrame({"task": [1, 2, 3], "worker": [1, 1, 2], "label": [0.0, np.nan, 1.0]})
    with pytest.raises(ValueError, match="missing or non-finite"):
        GLAD().fit(df)


def _degenerate_cases():
    d = {}
    d["one worker"] = Responses.from_arrays([0, 1, 2, 3], [7] * 4, [0, 1, 1, 0])
    d["one task"] = Responses.from_arrays([0, 0, 0, 0], [1, 2, 3, 4], [0, 1, 1, 1])
    d["all identical"] = Responses.from_arrays(
        np.repeat(np.arange(20), 3), np.tile([1, 2, 3], 20), np.ones(60, int), classes=[0, 1]
    )
    truth = np.arange(30) % 2
    d["perfect workers"] = Responses.from_arrays(
        np.repeat(np.arange(30), 4), np.tile([1, 2, 3, 4], 30), np.repeat(truth, 4)
    )
    d["answer once"] = Responses.from_arrays([0, 0, 1, 1, 2], [1, 2, 1, 2, 3], [1, 1, 0, 0, 1])
    return d


@pytest.mark.parametrize("case", list(_degenerate_cases()))
@pytest.mark.parametrize("cls", ALL)
def test_degenerate_inputs_give_finite_results(cls, case):
    r = _degenerate_cases()[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        est = _fast(cls).fit(r)
    p = est.probas_.to_numpy()
    assert p.shape == (r.n_tasks, 2) and np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1)
    if hasattr(est, "skills_"):
        assert np.all(np.isfinite(np.asarray(est.skills_, dtype=float)))
    if case == "perfect workers":
        assert (est.labels_.to_numpy() == np.arange(30) % 2).all()
    if case == "all identical":
        assert (est.labels_ == 1).all()


def test_spectral_init_falls_back_with_a_warning():
    r = Responses.from_arrays([0, 0, 1, 1], [1, 2, 1, 2], [0, 1, 1, 1])
    with pytest.warns(RuntimeWarning, match="fell back"):
        conf, priors, info = spectral_init(r, random_state=0, return_info=True)
    assert "at least 3" in info["fallback"]
    assert np.allclose(conf.sum(axis=2), 1) and (conf > 0).all() and np.isclose(priors.sum(), 1)


def test_accepts_dataframe_and_keeps_ids():
    df = pd.DataFrame(
        {
            "task": ["t1", "t1", "t1", "t2", "t2", "t2"],
            "worker": ["a", "b", "c"] * 2,
            "label": ["yes", "yes", "no", "no", "no", "no"],
        }
    )
    for cls in ALL:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = _fast(cls).fit_predict(df)
        assert list(out.index) == ["t1", "t2"] and out["t2"] == "no"
        assert set(out) <= {"yes", "no"}


@pytest.mark.parametrize("cls", ALL)
def test_sklearn_protocol(cls, binary):
    est = _fast(cls)
    assert est.clone().get_params() == est.get_params()
    assert type(est).__name__ in repr(est)
    assert est.fit(binary) is est
    assert not hasattr(cls(), "labels_")


@needs_cpp
def test_direct_core_calls_check_codes(binary):
    r = binary
    with pytest.raises(ValueError, match="out of range"):
        _core.te_pairwise_agreement(r.task_indptr, r.task_worker, r.task_label, r.n_workers - 1, 1)
    with pytest.raises(ValueError, match="out of range"):
        _core.glad_e_step(
            r.task_indptr, r.task_worker, r.task_label, 2, np.ones(3), np.ones(r.n_tasks), np.log([0.5, 0.5]), 1
        )
    bad = r.task_indptr.copy()
    bad[1] = bad[2] + 1
    with pytest.raises(ValueError, match="non-decreasing"):
        _core.kos_messages(bad, r.task_worker, r.task_label, r.n_workers, np.ones(r.n_responses), 1, 1)
    with pytest.raises(TypeError):
        _core.mace_e_step(
            r.task_indptr,
            r.task_worker,
            r.task_label.astype(np.int64),
            2,
            np.ones((r.n_workers, 2)),
            np.ones((r.n_workers, 2)),
            1,
        )
