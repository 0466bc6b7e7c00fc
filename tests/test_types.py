"""Task types: the implicit operator and Lanczos against dense numpy, planted-type recovery,
class-bias robustness, the mixture EM's monotone likelihood, TypeAware, bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _tol import (
    CLASS_SHARE_GAP,
    EIG_TWIN,
    EIGVAL,
    EIGVEC,
    EIGVEC_TWIN,
    FIT_TWIN_F64,
    KERNEL_F64,
    MONOTONE_REL,
    REORDER_F64,
)
from kdcore.backends import HAS_CPP
from kdcore.crowd import DawidSkene, Responses, simulate
from kdcore.crowd import _reference_types as ref
from kdcore.crowd._type_aware import TypeAware
from kdcore.crowd._types import TaskTypeClustering, answer_values, simplex_codes

needs_cpp = pytest.mark.skipif(not HAS_CPP, reason="compiled core kdcore._core not built")
BACKENDS = [pytest.param("cpp", marks=needs_cpp), "numpy"]


def _core():
    from kdcore import _core

    return _core


def _random_answers(rng, n, d, p, density):
    mask = rng.random((n, d)) < density
    mask[rng.integers(0, n, d), np.arange(d)] = True
    w, t = np.nonzero(mask)
    vals = rng.normal(size=(w.size, p))
    return t.astype(np.int32), w.astype(np.int32), np.ascontiguousarray(vals)


def _type_acc(pred, true):
    a = float((np.asarray(pred) == np.asarray(true)).mean())
    return max(a, 1 - a)


# ---------------------------------------------------------------------------- operator and eigensolver
@needs_cpp
@pytest.mark.parametrize("p,dense", [(1, True), (1, False), (2, False)])
@pytest.mark.parametrize("density", [0.3, 1.0])
def test_implicit_operator_equals_dense_G(rng, p, dense, density):
    n, d = 9, 41
    t, w, vals = _random_answers(rng, n, d, p, density)
    G = ref.hollow_gram_dense(t, w, vals, d, n)
    assert np.allclose(G, G.T) and np.all(np.diag(G) == 0)
    for _ in range(3):
        u = rng.normal(size=d)
        out = _core().hollow_gram_matvec(t, w, vals, d, n, u, dense, 0)
        np.testing.assert_allclose(out, G @ u, rtol=0, atol=KERNEL_F64 * max(1.0, np.abs(G @ u).max()))


def test_numpy_twin_matvec_equals_dense_G(rng):
    n, d = 8, 30
    t, w, vals = _random_answers(rng, n, d, 1, 0.5)
    G = ref.hollow_gram_dense(t, w, vals, d, n)
    u = rng.normal(size=d)
    np.testing.assert_allclose(ref.hollow_gram_matvec(t, w, vals, d, n, u), G @ u, atol=KERNEL_F64)


def test_hollow_gram_is_the_hollow_outer_product_inner_product(rng):
    """G_jl = <F_j, F_l> with F_j = x_j x_j^T - diag(x_j^2) (docs/maths.md B.2, B.3), binary case."""
    n, d = 6, 12
    X = rng.choice([-1.0, 0.0, 1.0], size=(n, d))
    X[0] = 1.0
    w, t = np.nonzero(X)
    G = ref.hollow_gram_dense(t, w, X[w, t][:, None], d, n)
    F = [np.outer(X[:, j], X[:, j]) - np.diag(X[:, j] ** 2) for j in range(d)]
    expect = np.array([[np.sum(F[j] * F[l]) if j != l else 0.0 for l in range(d)] for j in range(d)])
    np.testing.assert_allclose(G, expect, atol=REORDER_F64)


@needs_cpp
@pytest.mark.parametrize("dense", [True, False])
def test_lanczos_equals_eigh_on_G(rng, dense):
    n, d, k = 10, 60, 3
    t, w, vals = _random_answers(rng, n, d, 1, 0.6)
    G = ref.hollow_gram_dense(t, w, vals, d, n)
    ev, V = np.linalg.eigh(G)
    ev, V = ev[::-1][:k], V[:, ::-1][:, :k]
    lam, U, nm, conv, res = _core().spectral_eigs(t, w, vals, d, n, k, dense, 60, 1e-12, 7, 0)
    assert conv
    np.testing.assert_allclose(lam, ev, rtol=EIGVAL, atol=EIGVAL * abs(ev[0]))
    for i in range(k):  # eigenvectors up to sign
        assert abs(abs(U[:, i] @ V[:, i]) - 1.0) < EIGVEC


@needs_cpp
def test_lanczos_dense_matrix_equals_eigh(rng):
    A = rng.normal(size=(80, 80))
    A = A + A.T
    lam, U, nm, conv, res = _core().lanczos_dense(A, 4, 80, 1e-12, 3, 0)
    ev = np.linalg.eigh(A)[0][::-1][:4]
    assert conv
    np.testing.assert_allclose(lam, ev, atol=EIGVAL * abs(ev).max())
    np.testing.assert_allclose(A @ U, U * lam, atol=EIGVEC * abs(ev).max())


@needs_cpp
def test_cpp_and_scipy_routes_agree():
    r, *_ = simulate.two_type(400, 20, 0.5, regime="specialist", random_state=3)
    vals = answer_values(r, "worker")
    from kdcore.crowd._types import spectral_embedding

    a = spectral_embedding(r, vals, 2, backend="cpp", tol=1e-10)
    b = spectral_embedding(r, vals, 2, backend="numpy", tol=1e-10)
    np.testing.assert_allclose(a[0], b[0], rtol=EIG_TWIN)
    for i in range(2):
        assert abs(abs(a[1][:, i] @ b[1][:, i]) - 1) < EIGVEC_TWIN


def test_simplex_codes_give_agreement_products():
    for K in (2, 3, 5):
        Z = simplex_codes(K)
        G = Z @ Z.T
        expect = np.where(np.eye(K, dtype=bool), 1.0, -1.0 / (K - 1))
        np.testing.assert_allclose(G, expect, atol=REORDER_F64)


# ---------------------------------------------------------------------------- typing
@pytest.mark.parametrize("backend", BACKENDS)
def test_planted_types_recovered_exactly_dense(backend):
    r, truth, types, rel = simulate.two_type(600, 60, 1.0, regime="specialist", random_state=11)
    tc = TaskTypeClustering(method="spectral", random_state=0, backend=backend).fit(r)
    assert _type_acc(tc.types_.to_numpy(), types.reindex(tc.types_.index).to_numpy()) == 1.0
    assert tc.separation_ > 0.3
    assert tc.embedding_.shape == (600, 2) and tc.eigenvalues_.shape == (2,)


def test_refined_beats_spectral_with_few_answers():
    r, truth, types, rel = simulate.two_type(2000, 40, 0.15, regime="specialist", random_state=2)
    t = types.to_numpy()
    acc = {
        m: _type_acc(TaskTypeClustering(method=m, random_state=0).fit(r).types_.to_numpy(), t)
        for m in ("spectral", "refined")
    }
    assert acc["refined"] > acc["spectral"] + 0.05, acc


def _class_biased(seed):
    rng = np.random.default_rng(seed)
    n = 30
    cb = np.column_stack([rng.uniform(0.55, 0.95, n), rng.uniform(0.55, 0.95, n)])
    j, w, lab, y, t = ref.two_type_simulate(1000, n, 0.5, None, rng, class_bias=cb)
    return Responses.from_arrays(j, w, lab), y


@pytest.mark.parametrize("method", ["spectral", "refined"])
def test_class_biased_single_type_split_does_not_follow_class(method):
    r, y = _class_biased(0)
    tc = TaskTypeClustering(method=method, random_state=0).fit(r)
    ty = tc.types_.to_numpy()
    yy = y[r.task_ids.to_numpy()]
    shares = [float((yy[ty == k] > 0).mean()) for k in (0, 1)]
    assert abs(shares[0] - shares[1]) < CLASS_SHARE_GAP, shares


def test_one_coin_refinement_would_follow_the_class():
    """The failure the class-conditional skills guard against: a one-coin typed model on the same
    data puts the classes in different types (so the test above can fail)."""
    from kdcore.crowd import _em
    from kdcore.crowd._typed_em import em_fit, vote_post

    r, y = _class_biased(0)
    yy = y[r.task_ids.to_numpy()]
    rng = np.random.default_rng(0)
    init = rng.dirichlet([1, 1], size=r.n_tasks)[:, :, None] * vote_post(r)[:, None, :]
    post, *_ = em_fit(r, init, n_iter=200, tol=1e-9, smoothing=0.01, backend="numpy", n_threads=1, onecoin=True)
    ty = post.sum(2).argmax(1)
    shares = [float((yy[ty == k] > 0).mean()) for k in (0, 1)]
    assert abs(shares[0] - shares[1]) > 0.5, shares
    assert _em is not None


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixture_likelihood_never_decreases(backend):
    r, *_ = simulate.two_type(800, 30, 0.3, regime="specialist", random_state=5)
    tc = TaskTypeClustering(method="mixture", n_iter=40, tol=0, n_init=0, random_state=0, backend=backend).fit(r)
    h = np.asarray(tc.loss_history_)
    assert h.size >= 10
    assert np.all(np.diff(h) >= -MONOTONE_REL * np.abs(h[:-1])), np.diff(h).min()
    assert np.allclose(tc.type_proba_.sum(axis=1), 1.0)
    assert np.allclose(tc.label_proba_.sum(axis=1), 1.0)


def test_more_types_and_classes():
    r, truth = simulate.dawid_skene(300, 15, 3, answers_per_task=6, random_state=0)
    for m in ("spectral", "refined", "mixture"):
        tc = TaskTypeClustering(n_types=3, method=m, n_init=2, random_state=0).fit(r)
        assert set(np.unique(tc.types_)) <= {0, 1, 2}
        assert tc.type_proba_.shape == (300, 3)
        assert 0.0 <= tc.separation_ <= 1.0


def test_readouts_and_reproducibility():
    r, truth, types, rel = simulate.two_type(500, 40, 1.0, regime="specialist", random_state=1)
    a = TaskTypeClustering(method="spectral", readout="sign", random_state=0).fit_predict(r)
    assert _type_acc(a.to_numpy(), types.to_numpy()) > 0.95
    r2, _, types2, _ = simulate.two_type(500, 40, 1.0, regime="easy_hard", random_state=1)
    b = TaskTypeClustering(method="spectral", readout="magnitude", random_state=0).fit_predict(r2)
    assert _type_acc(b.to_numpy(), types2.to_numpy()) > 0.8
    c1 = TaskTypeClustering(method="refined", random_state=4).fit_predict(r)
    c2 = TaskTypeClustering(method="refined", random_state=4).fit_predict(r)
    pd.testing.assert_series_equal(c1, c2)


# ---------------------------------------------------------------------------- TypeAware
def test_type_aware_splits_specialists_and_helps():
    r, truth, types, rel = simulate.two_type(2000, 40, 0.3, regime="specialist", random_state=0)
    plain = DawidSkene().fit(r)
    ta = TypeAware(DawidSkene(), random_state=0).fit(r)
    assert ta.split_used_ and ta.evidence_["mean_gain"] > 0
    acc = lambda s: float((s.to_numpy() == truth.reindex(s.index).to_numpy()).mean())  # noqa: E731
    assert acc(ta.labels_) > acc(plain.labels_)
    assert np.allclose(ta.probas_.sum(axis=1), 1.0)
    assert ta.skills_by_type_.shape == (40, 2)
    # the specialists' skills differ by type in opposite directions for the two halves
    s = ta.skills_by_type_.to_numpy()
    diff = s[:, 0] - s[:, 1]
    assert np.sign(diff[:20].mean()) != np.sign(diff[20:].mean())


def test_type_aware_guard_keeps_plain_fit_on_one_type():
    r, truth = simulate.one_coin(1000, 30, 2, answers_per_task=6, random_state=0)
    plain = DawidSkene().fit(r)
    ta = TypeAware(DawidSkene(), TaskTypeClustering(n_init=2, random_state=0), random_state=0).fit(r)
    assert not ta.split_used_
    assert "reason" in ta.evidence_
    pd.testing.assert_frame_equal(ta.probas_, plain.probas_)
    assert isinstance(ta.clone(), TypeAware) and not hasattr(ta.clone(), "labels_")


def test_type_aware_accepts_a_dataframe_and_other_bases():
    from kdcore.crowd import MajorityVote

    r, truth, types, rel = simulate.two_type(300, 20, 0.4, regime="specialist", random_state=0)
    df = r.to_dataframe()
    ta = TypeAware(MajorityVote(random_state=0), guard=False, random_state=0).fit(df)
    assert ta.split_used_ and len(ta.type_models_) == 2
    assert ta.labels_.index.equals(r.task_ids)


# ---------------------------------------------------------------------------- bad inputs
def test_bad_inputs_give_clear_errors():
    one = Responses.from_arrays(["a", "a"], [1, 2], [0, 1])
    with pytest.raises(ValueError, match="at least 2 tasks"):
        TaskTypeClustering().fit(one)
    r = Responses.from_arrays(["a", "a", "b", "b"], [1, 2, 1, 2], [0, 1, 1, 1])
    with pytest.raises(ValueError, match="larger than the number of tasks"):
        TaskTypeClustering(n_types=3).fit(r)
    with pytest.raises(ValueError, match="n_types must be >= 1"):
        TaskTypeClustering(n_types=0).fit(r)
    with pytest.raises(TypeError, match="n_types must be an int"):
        TaskTypeClustering(n_types=2.0).fit(r)
    with pytest.raises(ValueError, match="method must be one of"):
        TaskTypeClustering(method="magic").fit(r)
    with pytest.raises(ValueError, match="needs n_types=2"):
        TaskTypeClustering(n_types=3, readout="sign").fit(
            Responses.from_arrays(list("aabbcc"), [1, 2] * 3, [0, 1, 1, 1, 0, 0])
        )
    with pytest.raises(ValueError, match="at least 2 workers"):
        TaskTypeClustering().fit(Responses.from_arrays(["a", "b", "c"], [1, 1, 1], [0, 1, 1]))
    # a task with no answer cannot enter: a missing label is refused when the data are built
    df = pd.DataFrame({"task": ["a", "b", "c"], "worker": [1, 2, 1], "label": [0, None, 1]})
    with pytest.raises(ValueError, match="missing"):
        TaskTypeClustering().fit(df)
    with pytest.raises(TypeError, match="Responses or a pandas DataFrame"):
        TaskTypeClustering().fit(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="base must be a kdcore aggregator"):
        TypeAware(base="DS").fit(r)
    with pytest.raises(ValueError, match="n_init"):
        TaskTypeClustering(n_init=-1).fit(r)
    with pytest.raises(ValueError, match="holdout"):
        TypeAware(holdout=1.5).fit(r)


@needs_cpp
def test_core_rejects_bad_shapes():
    t = np.zeros(3, np.int32)
    w = np.array([0, 1, 2], np.int32)
    with pytest.raises(ValueError, match="one row per answer"):
        _core().hollow_gram_matvec(t, w, np.zeros((2, 1)), 1, 3, np.zeros(1), False, 0)
    with pytest.raises(ValueError, match="out of range"):
        _core().hollow_gram_matvec(t, np.array([0, 1, 5], np.int32), np.zeros((3, 1)), 1, 3, np.zeros(1), False, 0)
    with pytest.raises(TypeError):
        _core().hollow_gram_matvec(t, w, np.zeros((3, 1), np.complex128), 1, 3, np.zeros(1), False, 0)
    with pytest.raises(ValueError, match="dense kernel needs p == 1"):
        _core().hollow_gram_matvec(t, w, np.zeros((3, 2)), 1, 3, np.zeros(1), True, 0)


def test_type_aware_keeps_the_base_labels_when_not_splitting(data_home):
    """MajorityVote breaks ties at random: TypeAware must return its labels, not an argmax."""
    from kdcore.crowd import MajorityVote, datasets

    r, truth = datasets.load("rte", data_home)
    plain = MajorityVote(random_state=0).fit(r)
    ta = TypeAware(MajorityVote(random_state=0), TaskTypeClustering(n_init=2, random_state=0), random_state=0).fit(r)
    if ta.split_used_:
        pytest.skip("the guard split rte; the no-split path is what this test checks")
    pd.testing.assert_series_equal(ta.labels_, plain.labels_)


def test_types_are_paired_across_classes():
    """Per-class type labels are not identified by the likelihood; from random starts the fit
    must still return one consistent labelling (regression: crossed labellings gave 0.51)."""
    r, truth, types, rel = simulate.two_type(2000, 40, 1.0, regime="specialist", random_state=0)
    t = types.to_numpy()
    for seed in (0, 1):
        tc = TaskTypeClustering(method="refined", n_init=8, random_state=seed).fit(r)
        assert _type_acc(tc.types_.to_numpy(), t) > 0.99


def test_align_types_undoes_a_crossed_labelling():
    from kdcore.crowd._typed_em import align_types

    r, truth, types, rel = simulate.two_type(300, 20, 1.0, regime="specialist", random_state=0)
    T, K, W = 2, 2, r.n_workers
    skill = np.stack([rel[:, 0], rel[:, 1]])  # (T, W)
    log_conf = np.empty((T, W, K, K))
    for k in range(K):
        log_conf[:, :, k, k] = np.log(skill)
        log_conf[:, :, k, 1 - k] = np.log(1 - skill)
    full = np.random.default_rng(0).dirichlet(np.ones(4), size=r.n_tasks).reshape(r.n_tasks, T, K)
    crossed_conf = log_conf.copy()
    crossed_conf[:, :, 1, :] = log_conf[::-1, :, 1, :]
    crossed_full = full.copy()
    crossed_full[:, :, 1] = full[:, ::-1, 1]
    f2, c2, p2 = align_types(r, crossed_full, crossed_conf, np.zeros((T, K)))
    np.testing.assert_allclose(c2, log_conf)
    np.testing.assert_allclose(f2, full)


@needs_cpp
def test_dense_operator_with_a_duplicate_cell_takes_the_general_path(rng):
    # The dense kernel computes the diagonal and corrections from X itself only when no
    # (worker, task) cell holds two answers; with one it keeps the answer-level CSR path.
    n, d = 7, 30
    t, w, vals = _random_answers(rng, n, d, 1, 0.5)
    t = np.append(t, t[3]).astype(np.int32)
    w = np.append(w, w[3]).astype(np.int32)
    vals = np.vstack([vals, [[0.7]]])
    u = rng.normal(size=d)
    # (Responses never holds duplicates; the operator then answers as its answer-level CSR
    # path does, whichever kernel was asked for.)
    sparse = _core().hollow_gram_matvec(t, w, vals, d, n, u, False, 0)
    dense = _core().hollow_gram_matvec(t, w, vals, d, n, u, True, 0)
    np.testing.assert_allclose(dense, sparse, rtol=0, atol=KERNEL_F64 * max(1.0, np.abs(sparse).max()))
    t1, w1, v1 = t[:-1], w[:-1], np.ascontiguousarray(vals[:-1])  # without it: the dense-only path, = G
    G = ref.hollow_gram_dense(t1, w1, v1, d, n)
    out = _core().hollow_gram_matvec(t1, w1, v1, d, n, u, True, 0)
    np.testing.assert_allclose(out, G @ u, rtol=0, atol=KERNEL_F64 * max(1.0, np.abs(G @ u).max()))


@pytest.mark.skipif(not HAS_CPP, reason="no compiled core")
@pytest.mark.parametrize(
    "regime, n_classes, n_types",
    [("specialist", 2, 2), ("easy_hard", 2, 2), ("dawid_skene", 3, 2), ("specialist", 2, 3), ("dawid_skene", 3, 3)],
)
def test_refined_compiled_loops_equal_python_loops(regime, n_classes, n_types):
    """The refined typing's classification EM and soft polish, compiled (skill_em_cem, skill_em_polish)
    against the step-by-step loops they replace, from the same random split (the compiled sweep has
    fixed sizes for two types and 2-4 classes, run-time sizes otherwise: both checked)."""
    if regime == "dawid_skene":
        r, _ = simulate.dawid_skene(400, 25, n_classes, answers_per_task=6, random_state=3)
    else:
        r, *_ = simulate.two_type(400, 25, 0.3, regime=regime, random_state=3)
    tc = TaskTypeClustering(n_types=n_types, random_state=0, n_threads=1)
    tc._validate(r)
    label_post = tc._plain_ds(r, "cpp", 1)
    counter = tc._counter(r, "cpp", 1)
    init = np.random.default_rng(5).integers(0, n_types, r.n_tasks)
    cem_py = tc._cem(r, init, label_post, counter, "cpp", 1)
    full_py = cem_py[2]
    full_c = tc._cem_compiled(r, init, label_post, 1)
    np.testing.assert_allclose(full_c, full_py, rtol=0, atol=FIT_TWIN_F64)
    rounds = tc._starts_compiled(r, [init], label_post, 1)[4]  # the same start through skill_em_starts
    assert tc.n_cem_rounds_ == [cem_py[-1]]  # as many re-fits as the step-by-step loop
    assert len(rounds) == 1
    ll_py, post_py, lc_py, lp_py, m_py = tc._polish(r, full_py, counter, "cpp", 1)
    ll_c, post_c, lc_c, lp_c, m_c = tc._polish_compiled(r, full_py, 1)
    assert m_c == m_py
    assert abs(ll_c - ll_py) <= FIT_TWIN_F64 * max(1.0, abs(ll_py))
    np.testing.assert_allclose(post_c, post_py, rtol=0, atol=FIT_TWIN_F64)
    np.testing.assert_allclose(lc_c, lc_py, rtol=0, atol=FIT_TWIN_F64)
    np.testing.assert_allclose(lp_c, lp_py, rtol=0, atol=FIT_TWIN_F64)


@pytest.mark.skipif(not HAS_CPP, reason="no compiled core")
@pytest.mark.parametrize("n, p, k", [(3000, 2, 2), (3000, 1, 2), (2000, 3, 4), (50, 2, 3)])
def test_compiled_kmeans_equals_numpy_twin(n, p, k):
    """k-means with the compiled Lloyd iterations (the seedings' runs side by side) against the numpy
    twin from the same seedings: the same labels and centres, on points with a planted shifted third (found) and on ties (duplicated
    points, which go to the first of equal centres in both)."""
    from kdcore.crowd._kmeans import kmeans

    rng = np.random.default_rng(n + p + k)
    X = rng.normal(size=(n, p))
    X[: n // 3] += 6.0
    X[-10:] = X[0]  # exact duplicates
    a = kmeans(X, k, np.random.default_rng(1), backend="numpy")
    for nt in (1, 2):  # the seedings' runs side by side: the same result on any thread count
        b = kmeans(X, k, np.random.default_rng(1), backend="cpp", n_threads=nt)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=0, atol=FIT_TWIN_F64)
    if k == 2:  # the planted third is one cluster
        planted = np.arange(n) < n // 3
        agree = (a[0] == a[0][0]) == planted
        assert max(agree.mean(), 1 - agree.mean()) > 0.95


@pytest.mark.skipif(not HAS_CPP, reason="no compiled core")
@pytest.mark.parametrize("regime, n_classes", [("specialist", 2), ("dawid_skene", 3)])
def test_refined_starts_side_by_side_equal_the_starts_one_by_one(regime, n_classes):
    """skill_em_starts (every start's two loops in one call, starts side by side) against the starts
    run one by one through skill_em_cem and skill_em_polish, keeping the first highest likelihood;
    the same numbers on 1 and 2 threads (a start runs on one thread whatever the count)."""
    if regime == "dawid_skene":
        r, _ = simulate.dawid_skene(600, 30, n_classes, answers_per_task=6, random_state=4)
    else:
        r, *_ = simulate.two_type(600, 30, 0.3, regime=regime, random_state=4)
    tc = TaskTypeClustering(random_state=0, n_threads=1)
    tc._validate(r)
    label_post = tc._plain_ds(r, "cpp", 1)
    rng = np.random.default_rng(6)
    inits = [rng.integers(0, 2, r.n_tasks) for _ in range(5)]
    inits.append(inits[2].copy())  # a start equal to an earlier one: the tie goes to the earlier start
    one_by_one = []
    for init in inits:
        ll, post, lc, lp, m = tc._polish_compiled(r, tc._cem_compiled(r, init, label_post, 1), 1)
        one_by_one.append((ll, post, lc, lp, m))
    best = 0
    for s in range(1, len(inits)):
        if one_by_one[s][0] > one_by_one[best][0]:
            best = s
    for nt in (1, 2):
        ll, post, lc, lp, rounds = tc._starts_compiled(r, inits, label_post, nt)
        assert rounds == [o[4] for o in one_by_one]
        assert ll == one_by_one[best][0]
        np.testing.assert_array_equal(post, one_by_one[best][1])
        np.testing.assert_array_equal(lc, one_by_one[best][2])
        np.testing.assert_array_equal(lp, one_by_one[best][3])
    with pytest.raises(ValueError, match="inits: expected codes in"):
        tc._starts_compiled(r, [np.full(r.n_tasks, 2)], label_post, 1)


@pytest.mark.skipif(not HAS_CPP, reason="no compiled core")
def test_spectral_typing_reports_an_unresolved_spectrum_as_unsupported():
    """One planted type, sparse answers: the bulk eigenvalues are near-degenerate, so Lanczos stops
    once the eigengap after the readout's vectors is provably below MIN_EIGENGAP and the spectral
    split is flagged unsupported (no warning; the labels are still read from the best Ritz vectors);
    a planted two-type split converges and is kept."""
    import warnings

    from kdcore.crowd._types import MIN_EIGENGAP

    r, _ = simulate.dawid_skene(4000, 400, 2, answers_per_task=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tc = TaskTypeClustering(method="spectral", random_state=0, n_threads=1).fit(r)
    info = tc.spectral_info_
    assert info["unsupported"] and not info["converged"], info
    assert info["eigengap_upper"] < MIN_EIGENGAP and info["eigengap"] <= info["eigengap_upper"]
    assert "eigengap" in info["reason"]
    assert tc.types_.nunique() <= 2 and np.isfinite(tc.separation_)
    r2, _, types2, _ = simulate.two_type(2000, 40, 0.5, regime="specialist", random_state=1)
    tc2 = TaskTypeClustering(method="spectral", random_state=0, n_threads=1).fit(r2)
    assert tc2.spectral_info_["converged"] and not tc2.spectral_info_["unsupported"]
    assert tc2.spectral_info_["eigengap"] >= MIN_EIGENGAP
    assert _type_acc(tc2.types_.to_numpy(), types2.reindex(r2.task_ids).to_numpy()) > 0.9


def test_guard_stops_at_the_first_fold_without_gain():
    """One planted type: the first held-out fold has no gain, so the hard guard stops there, before
    the clustering of all tasks (clustering_ None), and says so; the soft guard stops likewise."""
    r, _ = simulate.dawid_skene(600, 30, 2, answers_per_task=8, random_state=2)
    ta = TypeAware(DawidSkene(), random_state=0).fit(r)
    ev = ta.evidence_
    assert ta.split_kind_ == "none" and not ev["split"]
    assert ev["folds_run"] == 1 and ev["fold_gains"][0] <= 0 and "stopped" in ev
    assert ta.clustering_ is None and np.isnan(ev["separation"])
    soft = ev["soft_guard"]
    assert soft["folds_run"] == len(soft["fold_gains"]) >= 1
    if soft["folds_run"] < 3:  # stopped early: only by a fold without gain
        assert soft["fold_gains"][-1] <= 0 and "stopped" in soft
        assert all(g > 0 for g in soft["fold_gains"][:-1])
