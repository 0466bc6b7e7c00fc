"""Bayesian Dawid-Skene (IBCC / MAP with Dirichlet priors), community Dawid-Skene and gold tasks.

The posterior-mean confusions are compared with their closed form on a tiny
example, the variational fixed point with an independent numpy computation, the
compiled counts with their numpy twin, the empirical-Bayes prior with the planted
skills, the communities with planted groups; error paths by message.
"""

import numpy as np
import pandas as pd
import pytest
from scipy.special import digamma

from _tol import BACKENDS_EM, EMPIRICAL_BAYES, KERNEL_F64, VB_FIXED_POINT
from kdcore.backends import HAS_CPP
from kdcore.crowd import DawidSkene, Responses, accuracy, simulate
from kdcore.crowd import _reference as ref
from kdcore.crowd._bayesian import BayesianDawidSkene, CommunityDawidSkene, diagonal_prior, dirichlet_evidence
from kdcore.crowd._gold import clamp, gold_codes

needs_cpp = pytest.mark.skipif(not HAS_CPP, reason="compiled core kdcore._core not built")
BACKENDS = [pytest.param("cpp", marks=needs_cpp), "numpy"]


def _tiny():
    """3 tasks, 2 workers, 2 classes; every task gold."""
    tasks = ["a", "a", "b", "b", "c"]
    workers = ["u", "v", "u", "v", "u"]
    labels = [0, 1, 1, 1, 0]
    return Responses.from_arrays(tasks, workers, labels), pd.Series({"a": 0, "b": 1, "c": 1})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["vb", "map"])
def test_posterior_mean_confusions_closed_form(backend, method):
    r, gold = _tiny()
    A = np.array([[3.0, 1.0], [0.5, 2.5]])
    est = BayesianDawidSkene(method=method, prior=A, class_prior=2.0, true_labels=gold, backend=backend).fit(r)
    # counts by hand: u answered (a: truth 0, said 0), (b: 1 said 1), (c: 1 said 0); v: (a: 0 said 1), (b: 1 said 1)
    n_u = np.array([[1.0, 0.0], [1.0, 1.0]])
    n_v = np.array([[0.0, 1.0], [0.0, 1.0]])
    expect = np.stack([(n + A) / (n + A).sum(1, keepdims=True) for n in (n_u, n_v)])
    np.testing.assert_allclose(est.confusions_, expect, rtol=0, atol=KERNEL_F64)
    # class proportions: (mass + nu) / total, mass = (1, 2)
    np.testing.assert_allclose(est.priors_.to_numpy(), np.array([3.0, 4.0]) / 7.0, rtol=0, atol=KERNEL_F64)
    assert est.labels_.to_dict() == {"a": 0, "b": 1, "c": 1}
    np.testing.assert_array_equal(est.probas_.to_numpy(), np.eye(2)[[0, 1, 1]])


def test_diagonal_prior_closed_form_with_fixed_strength():
    r, gold = _tiny()
    est = BayesianDawidSkene(prior_strength=4.0, prior_accuracy=0.75, true_labels=gold).fit(r)
    A = diagonal_prior(2, 4.0, 0.75)
    np.testing.assert_array_equal(A, [[3.0, 1.0], [1.0, 3.0]])
    n_u = np.array([[1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(est.confusions_[0], (n_u + A) / (n_u + A).sum(1, keepdims=True), atol=KERNEL_F64)
    assert est.prior_strength_ == pytest.approx(4.0) and est.prior_accuracy_ == pytest.approx(0.75)


def test_vb_fixed_point_is_ibcc_update():
    """At convergence, post = softmax(E log pi + sum E log C) with E log C from the final counts."""
    r, _ = simulate.dawid_skene(300, 15, 3, answers_per_task=4, random_state=1)
    A = diagonal_prior(3, 6.0, 0.7)
    est = BayesianDawidSkene(prior=A, n_iter=2000, tol=0.0, backend="numpy").fit(r)
    post = est.probas_.to_numpy()
    counts, mass = ref.em_counts(r.task, r.worker, r.label, r.n_workers, post[:, None, :])
    rows = counts[0] + A
    elog_c = digamma(rows) - digamma(rows.sum(-1, keepdims=True))
    elog_pi = digamma(mass[0] + 1.0) - digamma((mass[0] + 1.0).sum())
    s = np.tile(elog_pi, (r.n_tasks, 1))
    np.add.at(s, r.task, elog_c[r.worker, :, r.label])
    s = np.exp(s - s.max(1, keepdims=True))
    np.testing.assert_allclose(post, s / s.sum(1, keepdims=True), atol=VB_FIXED_POINT)
    np.testing.assert_allclose(est.confusions_, rows / rows.sum(-1, keepdims=True), atol=VB_FIXED_POINT)


@needs_cpp
@pytest.mark.parametrize("T,K", [(1, 2), (1, 5), (2, 3)])
def test_em_counts_binding_matches_twin(T, K):
    from kdcore import _core

    r, _ = simulate.dawid_skene(400, 20, K, answers_per_task=3, random_state=K)
    post = np.random.default_rng(T).dirichlet(np.ones(T * K), size=r.n_tasks).reshape(r.n_tasks, T, K)
    c, m = _core.em_counts(
        r.worker_indptr, r.worker_task, r.worker_label, r.task_indptr, r.task_worker, r.task_label,
        r.n_tasks, r.n_workers, post, 1,
    )  # fmt: skip
    c_ref, m_ref = ref.em_counts(r.task, r.worker, r.label, r.n_workers, post)
    np.testing.assert_allclose(c, c_ref, rtol=0, atol=KERNEL_F64)
    np.testing.assert_allclose(m, m_ref, rtol=0, atol=KERNEL_F64)


@needs_cpp
@pytest.mark.parametrize(
    "make,atol",
    [
        # fixed prior: the same arithmetic on both backends
        (lambda be: BayesianDawidSkene(prior=diagonal_prior(3, 6.0, 0.7), backend=be), "BACKENDS_EM"),
        # estimated priors: the optimiser's own tolerance decides the last digits
        (lambda be: BayesianDawidSkene(backend=be), "EMPIRICAL_BAYES"),
        (lambda be: CommunityDawidSkene(backend=be), "EMPIRICAL_BAYES"),
    ],
)
def test_backends_agree(make, atol):
    tol = {"BACKENDS_EM": BACKENDS_EM, "EMPIRICAL_BAYES": EMPIRICAL_BAYES}[atol]
    r, _ = simulate.dawid_skene(500, 40, 3, answers_per_task=3, random_state=2)
    a = make("cpp").set_params(n_iter=25, tol=0.0).fit(r)
    b = make("numpy").set_params(n_iter=25, tol=0.0).fit(r)
    np.testing.assert_allclose(a.probas_.to_numpy(), b.probas_.to_numpy(), atol=tol)
    np.testing.assert_allclose(a.confusions_, b.confusions_, atol=tol)


def test_empirical_bayes_prior_matches_planted_skills_and_helps_sparse_workers():
    # 600 workers with about 6 answers each; planted diagonals U(0.6, 0.9), mean 0.75
    accs = {"ds": [], "bds": []}
    for seed in range(3):
        r, truth = simulate.dawid_skene(1200, 600, 3, answers_per_task=3, random_state=seed)
        bds = BayesianDawidSkene().fit(r)
        assert 0.65 < bds.prior_accuracy_ < 0.85
        accs["bds"].append(accuracy(bds.labels_, truth))
        accs["ds"].append(accuracy(DawidSkene().fit(r).labels_, truth))
    assert np.mean(accs["bds"]) > np.mean(accs["ds"]) + 0.01


def test_evidence_is_maximised_by_the_fitted_diagonal_prior():
    from kdcore.crowd._bayesian import _fit_diagonal

    r, _ = simulate.dawid_skene(2000, 40, 2, answers_per_task=5, skill_range=(0.55, 0.99), random_state=3)
    bds = BayesianDawidSkene().fit(r)
    counts = ref.em_counts(r.task, r.worker, r.label, r.n_workers, bds.probas_.to_numpy()[:, None, :])[0][0]
    s, a = _fit_diagonal(counts, 4.0, 0.7, fix_s=False, fix_a=False)
    s2, a2 = _fit_diagonal(counts, 50.0, 0.9, fix_s=False, fix_a=False)  # another start, the same optimum
    assert 1.0 < s < 1e3  # an interior optimum (workers differ)
    assert s2 == pytest.approx(s, rel=1e-3) and a2 == pytest.approx(a, abs=1e-4)
    best = dirichlet_evidence(counts, diagonal_prior(2, s, a))
    for ds_, da in [(1.2, 0), (1 / 1.2, 0), (1, 0.03), (1, -0.03)]:
        assert dirichlet_evidence(counts, diagonal_prior(2, s * ds_, a + da)) < best
    # and the fit's own prior is that optimum up to the last round's change of the posteriors
    assert bds.prior_accuracy_ == pytest.approx(a, abs=0.01)


def test_community_model_recovers_planted_groups():
    rng = np.random.default_rng(4)
    W, K = 60, 3
    good = np.tile(np.full((K, K), 0.05) + np.eye(K) * 0.85, (W // 2, 1, 1))
    spam = np.tile(np.array([[0.8, 0.1, 0.1]] * K), (W // 2, 1, 1))  # answers class 0 whatever the truth
    conf = np.concatenate([good, spam])
    conf /= conf.sum(-1, keepdims=True)
    r, truth = simulate.dawid_skene(1500, W, K, answers_per_task=6, confusions=conf, random_state=rng)
    cds = CommunityDawidSkene(n_communities=2).fit(r)
    member = cds.communities_.to_numpy().argmax(1)
    planted = (np.asarray(r.worker_ids) >= W // 2).astype(int)
    purity = max(np.mean(member == planted), np.mean(member != planted))
    assert purity >= 0.95
    assert accuracy(cds.labels_, truth) > 0.9


def test_gold_tasks_are_clamped_and_used():
    r, truth = simulate.dawid_skene(400, 30, 3, answers_per_task=3, random_state=5)
    # gold that contradicts every answer of its task: the posterior still is the gold label
    task0 = r.task_ids[0]
    said = set(r.label[r.task == 0].tolist())
    forced = next(k for k in range(3) if k not in said) if len(said) < 3 else (truth.iloc[0] + 1) % 3
    gold = truth.iloc[:100].copy()
    gold.loc[task0] = forced
    for cls in (BayesianDawidSkene, CommunityDawidSkene):
        est = cls(true_labels=gold).fit(r)
        assert (est.labels_.loc[gold.index] == gold).all()
        np.testing.assert_array_equal(est.probas_.loc[gold.index].to_numpy(), np.eye(3)[gold.to_numpy()])


def test_gold_codes_errors_and_types():
    r, _ = _tiny()
    with pytest.raises(ValueError, match="tasks that have no answer: 'zz'"):
        gold_codes(r, pd.Series({"zz": 0}))
    with pytest.raises(ValueError, match="not classes of the responses: 7"):
        gold_codes(r, pd.Series({"a": 7}))
    with pytest.raises(ValueError, match="missing labels"):
        gold_codes(r, pd.Series({"a": np.nan}))
    with pytest.raises(TypeError, match="Series or a dict"):
        gold_codes(r, [0, 1])
    # labels given as strings of the integer classes, ids as given
    t, k = gold_codes(r, {"c": "1"})
    assert t.tolist() == [2] and k.tolist() == [1]
    post = np.full((3, 2, 2), 0.25)
    clamp(post, np.array([1]), np.array([0]))
    np.testing.assert_array_equal(post[1], [[0.5, 0.0], [0.5, 0.0]])
    with pytest.raises(ValueError, match="no answer"):
        BayesianDawidSkene(true_labels={"nope": 1}).fit(r)


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        ({"method": "gibbs"}, ValueError, "method must be 'vb' or 'map'"),
        ({"prior": "flat"}, ValueError, "prior must be 'diagonal', 'pooled'"),
        ({"prior": np.ones((3, 3))}, ValueError, r"shape \(2, 2\)"),
        ({"prior": -np.ones((2, 2))}, ValueError, "finite and > 0"),
        ({"prior_accuracy": 0.4}, ValueError, "prior_accuracy must be >"),
        ({"prior_accuracy": 1.0}, ValueError, "prior_accuracy must be < 1"),
        ({"prior_strength": "big"}, ValueError, "number or 'auto'"),
        ({"prior_strength": 0.0}, ValueError, "prior_strength must be >"),
        ({"class_prior": True}, TypeError, "class_prior must be a real number"),
        ({"n_iter": 0}, ValueError, "n_iter must be >= 1"),
    ],
)
def test_parameter_errors(kwargs, err, match):
    r, _ = _tiny()
    with pytest.raises(err, match=match):
        BayesianDawidSkene(**kwargs).fit(r)


def test_community_errors_and_one_community_is_pooled():
    r, _ = simulate.dawid_skene(300, 20, 2, answers_per_task=3, random_state=6)
    with pytest.raises(ValueError, match="n_communities must be >= 1"):
        CommunityDawidSkene(n_communities=0).fit(r)
    one = CommunityDawidSkene(n_communities=1).fit(r)
    pooled = BayesianDawidSkene(prior="pooled").fit(r)
    np.testing.assert_allclose(one.probas_.to_numpy(), pooled.probas_.to_numpy(), atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gold_tasks_in_glad_and_mace(backend):
    from kdcore.crowd import GLAD, MACE

    r, truth = simulate.dawid_skene(300, 20, 3, answers_per_task=3, random_state=7)
    gold = truth.iloc[:80]
    for make in (lambda **kw: GLAD(n_iter=10, **kw), lambda **kw: MACE(n_init=2, random_state=0, **kw)):
        plain = make(backend=backend).fit(r)
        est = make(backend=backend, true_labels=gold).fit(r)
        assert (est.labels_.loc[gold.index] == gold).all()
        np.testing.assert_array_equal(est.probas_.loc[gold.index].to_numpy(), np.eye(3)[gold.to_numpy()])
        # the gold answers inform the worker parameters, so the other tasks' posteriors move too
        rest = truth.index[80:]
        assert not np.allclose(est.probas_.loc[rest].to_numpy(), plain.probas_.loc[rest].to_numpy())
        with pytest.raises(ValueError, match="not classes of the responses"):
            make(backend=backend, true_labels={r.task_ids[0]: 5}).fit(r)


@needs_cpp
def test_em_counts_binding_refuses_bad_input():
    from kdcore import _core

    r, _ = simulate.dawid_skene(50, 5, 2, answers_per_task=2, random_state=8)
    views = [r.worker_indptr, r.worker_task, r.worker_label, r.task_indptr, r.task_worker, r.task_label]
    post = np.full((r.n_tasks, 1, 2), 0.5)
    with pytest.raises(ValueError, match="post"):
        _core.em_counts(*views, r.n_tasks, r.n_workers, post[:-1], 1)
    with pytest.raises(ValueError, match=r"post: expected shape \(50, any, any\)"):
        _core.em_counts(*views, r.n_tasks, r.n_workers, post[:, 0], 1)
    # an out-of-range code in both views (the kernel reads one of them, whichever is faster)
    bad_t, bad_w = r.worker_task.copy(), r.task_worker.copy()
    bad_t[0], bad_w[0] = r.n_tasks + 3, r.n_workers + 3
    with pytest.raises(ValueError, match="code .* is out of range"):
        _core.em_counts(views[0], bad_t, views[2], views[3], bad_w, views[5], r.n_tasks, r.n_workers, post, 1)
    with pytest.raises(
        ValueError, match="indptr must run from 0 to n|different numbers of answers|expected a 1-d array of length"
    ):
        _core.em_counts(
            *views[:3], r.task_indptr, r.task_worker[:-1], r.task_label[:-1], r.n_tasks, r.n_workers, post, 1
        )
    with pytest.raises(TypeError):
        _core.em_counts(*views, r.n_tasks, r.n_workers, post.astype(np.float32), 1)


@needs_cpp
@pytest.mark.parametrize("W,K,M", [(300, 2, 1), (200, 3, 3), (50, 5, 2)])
@pytest.mark.parametrize("n_steps", [1, 20])
def test_dirichlet_fixed_point_kernel_matches_twin(W, K, M, n_steps):
    from kdcore.crowd._bayesian import _fit_pooled

    rng = np.random.default_rng(W + K + M)
    counts = rng.gamma(0.5, 4.0, (W, K, K))
    counts[rng.random((W, K, K)) < 0.3] = 0.0  # answers a worker never gave: the kernel's shortcut
    counts[:3] = 0.0  # workers with no counts at all
    A = rng.uniform(0.01, 20.0, (M, K, K))
    weights = rng.random((M, W))
    weights[:, 5] = 0.0
    twin = _fit_pooled(counts, A, weights, n_steps, backend="numpy")
    for threads in (1, 2):
        got = _fit_pooled(counts, A, weights, n_steps, backend="cpp", n_threads=threads)
        np.testing.assert_allclose(got, twin, rtol=KERNEL_F64 * n_steps, atol=0)
    # one prior with uniform weights: the pooled prior's path (weights None)
    np.testing.assert_allclose(
        _fit_pooled(counts, A[0], None, n_steps, backend="cpp"),
        _fit_pooled(counts, A[0], None, n_steps, backend="numpy"),
        rtol=KERNEL_F64 * n_steps,
    )


@needs_cpp
def test_dirichlet_kernel_digamma_and_bad_input():
    from kdcore import _core

    x = np.concatenate([np.logspace(-3, 6, 500), np.linspace(0.5, 12.0, 500)])
    err = np.abs(_core.digamma(x) - digamma(x)) / np.maximum(1.0, np.abs(digamma(x)))
    assert err.max() < KERNEL_F64
    c, w, A = np.ones((4, 2, 2)), np.ones((1, 4)), np.ones((1, 2, 2))
    with pytest.raises(ValueError, match="weights"):
        _core.dirichlet_fixed_point(c, np.ones((2, 4)), A, 5, 1e-6, 1e-3, 1e6)
    with pytest.raises(ValueError, match="counts must be finite"):
        _core.dirichlet_fixed_point(-c, w, A, 5, 1e-6, 1e-3, 1e6)
    with pytest.raises(ValueError, match="A must be finite and > 0"):
        _core.dirichlet_fixed_point(c, w, 0 * A, 5, 1e-6, 1e-3, 1e6)
    with pytest.raises(TypeError):
        _core.dirichlet_fixed_point(c.astype(np.float32), w, A, 5, 1e-6, 1e-3, 1e6)
