"""Mechanics of the two-layer engine: gradients, backends, projection, init, errors.
(Never a scientific outcome: see kdcore.experiments for those.)"""

from __future__ import annotations

import numpy as np
import pytest

import _tol
from _tol import AT_BOUNDARY_REL, BOUND_SLACK, BOUND_SLACK_REL, FD_ATOL, FD_RTOL, FD_STEP, KERNEL_F64, REORDER_F64
from kdcore import backends as bk
from kdcore.distill import TwoLayerReLU, make_margin_data, train, train_many
from kdcore.distill import _reference as ref

TOL = {np.float64: _tol.KERNEL_F64, np.float32: _tol.KERNEL_F32}


def _backends():
    out = [pytest.param("cpp", marks=pytest.mark.skipif(not bk.HAS_CPP, reason="compiled core not built"))]
    out.append(pytest.param("torch", marks=pytest.mark.skipif(not bk.HAS_TORCH, reason="torch not installed")))
    out.append(pytest.param("torch-cuda", marks=pytest.mark.skipif(not _has_cuda(), reason="no CUDA device")))
    return out


def _has_cuda():
    if not bk.HAS_TORCH:
        return False
    import torch

    return torch.cuda.is_available()


@pytest.fixture(scope="module")
def data():
    X, y, p = make_margin_data(120, 13, gamma=0.05, random_state=3)
    Xt, yt, pt = make_margin_data(40, 13, gamma=0.05, random_state=4)
    return X, y, p, Xt, yt, pt


CONFIGS = [
    {"m": 2, "loss": "hard", "lr": 2.0, "random_state": 1},
    {"m": 16, "loss": "soft", "lr": 3.0, "radius": 1.0, "random_state": 2},
    {"m": 7, "init": "random", "loss": "hard", "lr": 1.0, "radius": 3.0, "random_state": 3},
    {"m": 40, "loss": "soft", "lr": 1.0, "random_state": 4},
    {"m": 6, "loss": "hard", "lr": 0.5, "radius": 0.5, "random_state": 5},
    {"m": 130, "loss": "soft", "lr": 2.0, "radius": 2.0, "random_state": 6},  # a group of its own, padded to the tile
]


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    X, y, p = make_margin_data(30, 5, gamma=0.1, random_state=1)
    net = TwoLayerReLU(6, 5, init="random", random_state=2)
    net.W += 0.3 * rng.standard_normal(net.W.shape)
    for loss, tgt in (("soft", p), ("hard", y)):
        W_new, *_ = ref.step(X, net.W, net.W0, net.a, tgt, y, loss, lr=1.0)
        grad = net.W - W_new
        fd = np.zeros_like(grad)
        h = FD_STEP
        for j in range(net.m):
            for k in range(net.d):
                Wp, Wm = net.W.copy(), net.W.copy()
                Wp[j, k] += h
                Wm[j, k] -= h
                lp = ref.step(X, Wp, net.W0, net.a, tgt, y, loss, 0.0, update=False)[1]
                lm = ref.step(X, Wm, net.W0, net.a, tgt, y, loss, 0.0, update=False)[1]
                fd[j, k] = (lp - lm) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=FD_RTOL, atol=FD_ATOL)
        # the compiled/torch backends take the same step
        for be in [b for b in ("cpp", "torch") if b in bk.available_backends()]:
            h_ = train(net.copy(), X, tgt, loss=loss, lr=1.0, n_steps=1, y=y, backend=be)
            np.testing.assert_allclose(net.W - h_.model.W, fd, rtol=FD_RTOL, atol=FD_ATOL)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", _backends())
def test_backends_agree_with_numpy_twin_over_50_steps(data, backend, dtype):
    X, y, p, Xt, yt, pt = data
    tol = TOL[dtype]
    run = lambda be: train_many(  # noqa: E731
        [dict(c) for c in CONFIGS],
        X.astype(dtype),
        y,
        p,
        n_steps=50,
        X_test=Xt,
        y_test=yt,
        p_test=pt,
        backend=be,
        n_threads=1 if be.startswith("torch") else 2,
    )
    ref_h, got = run("numpy"), run(backend)
    for a, b in zip(ref_h, got):
        assert b.model.W.dtype == dtype
        scale = np.abs(a.model.W).max()
        np.testing.assert_allclose(b.model.W, a.model.W, rtol=tol, atol=tol * scale)
        np.testing.assert_allclose(b.loss, a.loss, rtol=tol, atol=tol)
        np.testing.assert_allclose(b.test_loss, a.test_loss, rtol=tol, atol=tol)
        # the error is a step function of f; compare after step 0 (f = 0 ties at symmetric init)
        assert np.abs(b.error[1:] - a.error[1:]).max() <= 1.0 / X.shape[0] + BOUND_SLACK
        assert abs(b.final_loss - a.final_loss) <= tol
        assert np.allclose(b.avg_loss, np.cumsum(b.loss) / np.arange(1, 51))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_wide_networks_match_the_twin_when_pairs_drift_apart(dtype):
    """Networks of >= 24 pairs take the backward by subset tables (cpp): symmetric and random
    init, odd widths beside them in the group, a row count that is no multiple of the block,
    and a step large enough that the two neurons of a pair stop sharing rows."""
    if not bk.HAS_CPP:
        pytest.skip("compiled core not built")
    X, y, p = make_margin_data(157, 11, gamma=0.05, random_state=7)
    Xt, yt, pt = make_margin_data(37, 11, gamma=0.05, random_state=8)
    # packed in this order: 48, 64 and 96 start at even positions (tables); 50 after the odd
    # network starts at an odd one and takes the per-row backward
    cfgs = [
        {"m": 48, "loss": "hard", "lr": 8.0, "random_state": 1},
        {"m": 64, "init": "random", "loss": "hard", "lr": 4.0, "random_state": 3},
        {"m": 96, "loss": "hard", "lr": 30.0, "random_state": 5},
        {"m": 3, "init": "random", "loss": "soft", "lr": 2.0, "random_state": 2},
        {"m": 50, "loss": "soft", "lr": 16.0, "radius": 2.0, "random_state": 4},
    ]
    tol = TOL[dtype]

    def run(be):
        return train_many(
            [dict(c) for c in cfgs],
            X.astype(dtype),
            y,
            p,
            n_steps=30,
            X_test=Xt,
            y_test=yt,
            p_test=pt,
            backend=be,
            n_threads=2,
        )

    ref_h, got = run("numpy"), run("cpp")
    for c, a, b in zip(cfgs, ref_h, got):
        scale = np.abs(a.model.W).max()
        np.testing.assert_allclose(b.model.W, a.model.W, rtol=tol, atol=tol * scale, err_msg=str(c))
        np.testing.assert_allclose(b.loss, a.loss, rtol=tol, atol=tol, err_msg=str(c))
    # the large steps really separated the pairs of the symmetric networks
    W = got[2].model.W.astype(np.float64)
    h = X @ W.T > 0
    assert np.mean(h[:, :48] != h[:, 48:]) > 0.01


@pytest.mark.parametrize("backend", ["numpy", *_backends()])
def test_projection_keeps_every_neuron_in_its_ball(data, backend):
    X, y, p, *_ = data
    hs = train_many(
        [
            {"m": 8, "loss": l, "lr": 50.0, "radius": B, "random_state": s}
            for l in ("soft", "hard")
            for B in (0.3, 1.0)
            for s in (0, 1)
        ],
        X,
        y,
        p,
        n_steps=20,
        backend=backend,
    )
    at_boundary = 0
    for h in hs:
        dist = h.model.distance_from_init()
        bound = h.config["radius"] / np.sqrt(8)
        assert np.all(dist <= bound * (1 + BOUND_SLACK_REL))
        at_boundary += int(np.sum(dist > bound * (1 - AT_BOUNDARY_REL)))
    assert at_boundary > 0  # the large step really pushed neurons onto the sphere


@pytest.mark.parametrize("backend", ["numpy", *_backends()])
def test_symmetric_init_gives_zero_output(data, backend):
    X, y, p, *_ = data
    net = TwoLayerReLU(10, X.shape[1], random_state=0)
    assert np.array_equal(net.decision_function(X), np.zeros(X.shape[0]))
    assert np.array_equal(net.a[:5], -net.a[5:]) and np.array_equal(net.W0[:5], net.W0[5:])
    h = train(net, X, y, loss="hard", lr=1.0, n_steps=1, backend=backend)
    assert h.loss[0] == pytest.approx(np.log(2.0), abs=REORDER_F64)
    if not backend.startswith("torch"):  # torch's matmul may round the two copies of a neuron differently (|f| ~ 1e-17)
        assert h.error[0] == 1.0  # f = 0 counts as an error (R(W) uses y f <= 0)


@pytest.mark.parametrize("backend", ["numpy", *_backends()])
def test_zero_step_leaves_weights_unchanged(data, backend):
    X, y, p, *_ = data
    net = TwoLayerReLU(6, X.shape[1], init="random", random_state=1)
    W = net.W.copy()
    h = train(net, X, p, loss="soft", lr=0.0, n_steps=5, radius=1.0, backend=backend)
    assert np.array_equal(net.W, W)
    assert np.allclose(h.loss, h.loss[0])


def test_train_updates_the_model_and_history_shapes(data):
    X, y, p, Xt, yt, pt = data
    net = TwoLayerReLU(8, X.shape[1], random_state=0)
    h = train(net, X, y, loss="hard", lr=2.0, n_steps=30, X_test=Xt, y_test=yt)
    assert h.model is net and not np.array_equal(net.W, net.W0)
    assert h.loss.shape == h.error.shape == h.avg_error.shape == h.test_error.shape == (30,)
    assert np.isfinite(h.final_test_error) and np.isfinite(h.test_loss).all()
    assert h.summary()["n_steps"] == 30


def test_bad_input_gives_clear_errors(data):
    X, y, p, *_ = data
    d = X.shape[1]
    with pytest.raises(ValueError, match="even width"):
        TwoLayerReLU(5, d, init="symmetric")
    net = TwoLayerReLU(4, d, random_state=0)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        train(net, X, np.where(y > 0, 1.5, 0.3), loss="soft")
    with pytest.raises(ValueError, match=r"labels in \{-1, \+1\}"):
        train(net, X, (y > 0).astype(int), loss="hard")
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train(net, Xn, y)
    Xz = X.copy()
    Xz[5] = 0.0
    with pytest.raises(ValueError, match="zero-norm"):
        train(net, Xz, y)
    with pytest.raises(ValueError, match="features but the model expects"):
        train(net, X[:, :-1], y)
    with pytest.raises(ValueError, match="length"):
        train(net, X, y[:-1])
    with pytest.raises(ValueError, match="loss must be"):
        train(net, X, y, loss="mse")
    with pytest.raises(TypeError, match="numpy array"):
        train(net, "X", y)
    with pytest.raises(ValueError, match="radius"):
        train(net, X, y, radius=-1.0)
    with pytest.raises(ValueError, match="no soft labels"):
        train_many([{"m": 4, "loss": "soft", "lr": 1.0}], X, y, n_steps=1)
    with pytest.raises(ValueError, match="unknown keys"):
        train_many([{"m": 4, "lr": 1.0, "width": 3}], X, y, n_steps=1)
    with pytest.raises(TypeError, match="dtype"):
        train_many([{"m": 4, "lr": 1.0}], X, y, n_steps=1, dtype=np.int32)
    with pytest.raises(ValueError, match="not supported"):
        train(net, X, y, backend="jax")


@pytest.mark.skipif(not bk.HAS_CPP, reason="compiled core not built")
def test_core_rejects_wrong_dtype_and_shapes(data):
    from kdcore import _core

    X, y, *_ = data
    W = np.zeros((4, X.shape[1]))
    args = dict(
        n_train=X.shape[0],
        W0=W.copy(),
        a=np.ones(4),
        offsets=np.array([0, 4], dtype=np.int64),
        loss_type=np.ones(1, dtype=np.int32),
        targets=y[None, :].copy(),
        y=y,
        lr=np.ones(1),
        radius=-np.ones(1),
        n_steps=1,
    )
    with pytest.raises(TypeError):
        _core.twolayer_train(X.astype(np.float32), W=W, **args)
    with pytest.raises(ValueError, match="offsets"):
        _core.twolayer_train(X, W=W, **{**args, "offsets": np.array([0, 3], dtype=np.int64)})


@pytest.mark.skipif(not bk.HAS_CPP, reason="compiled core not built")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d", [16, 40])  # whole vectors: X is used in place, no padded copy
def test_cpp_in_place_rows_agree(dtype, d):
    X, y, p = make_margin_data(90, d, gamma=0.05, random_state=7)
    cfgs = [
        {"m": 4, "loss": "hard", "lr": 2.0, "random_state": 1},
        {"m": 140, "loss": "soft", "lr": 2.0, "radius": 1.0, "random_state": 2},
    ]
    a = train_many([dict(c) for c in cfgs], X.astype(dtype), y, p, n_steps=20, backend="numpy")
    b = train_many([dict(c) for c in cfgs], X.astype(dtype), y, p, n_steps=20, backend="cpp", n_threads=2)
    tol = TOL[dtype]
    for u, v in zip(a, b):
        np.testing.assert_allclose(v.model.W, u.model.W, rtol=tol, atol=tol * np.abs(u.model.W).max())
        np.testing.assert_allclose(v.loss, u.loss, rtol=tol, atol=tol)


@pytest.mark.skipif(not bk.HAS_CPP, reason="compiled core not built")
@pytest.mark.parametrize("lr", [1e-3, 0.5, 200.0])
def test_cpp_backward_by_row_kind_matches_the_twin(lr):
    # Tiny steps keep each symmetric pair's activation patterns equal (the backward's
    # shared-row path), huge steps make them differ (the two-sum path); mid steps mix
    # both within one row block. float64, 1e-10, 30 steps, several 64-row blocks.
    X, y, p = make_margin_data(300, 24, gamma=0.05, random_state=7)
    cfgs = [
        {"m": 12, "loss": "hard", "lr": lr, "random_state": 1},
        {"m": 10, "loss": "soft", "lr": lr, "random_state": 2},
        {"m": 5, "init": "random", "loss": "hard", "lr": lr, "random_state": 3},
    ]  # odd m: a pair straddles two nets
    ref_h = train_many([dict(c) for c in cfgs], X, y, p, n_steps=30, backend="numpy")
    got = train_many([dict(c) for c in cfgs], X, y, p, n_steps=30, backend="cpp", n_threads=2)
    for a, b in zip(ref_h, got):
        scale = np.abs(a.model.W).max()
        np.testing.assert_allclose(b.model.W, a.model.W, rtol=KERNEL_F64, atol=KERNEL_F64 * scale)
        np.testing.assert_allclose(b.loss, a.loss, rtol=KERNEL_F64, atol=REORDER_F64)


def _core_pass(X, n_train, nets, losses, T, y, lr, radius, steps, threads, skip):
    from kdcore import _core

    dt = X.dtype
    off = np.zeros(len(nets) + 1, dtype=np.int64)
    off[1:] = np.cumsum([n.m for n in nets])
    W0 = np.ascontiguousarray(np.vstack([n.W0 for n in nets]), dtype=dt)
    W = np.ascontiguousarray(np.vstack([n.W for n in nets]), dtype=dt)
    a = np.concatenate([n.a for n in nets]).astype(dt)
    K = len(nets)
    hist, fin, frac = _core.twolayer_train(
        X,
        n_train,
        W,
        W0,
        a,
        off,
        losses,
        T.astype(dt),
        y.astype(dt),
        np.full(K, lr),
        np.full(K, radius),
        steps,
        threads,
        skip_inactive=skip,
        return_skip_stats=True,
    )
    return W, hist, fin, frac


@pytest.mark.skipif(not bk.HAS_CPP, reason="compiled core not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lr,radius", [(0.5, 1.0), (40.0, 0.0), (np.inf, 0.0)])
def test_skipping_certified_inactive_rows_changes_no_bit(dtype, lr, radius):
    # The forward skips a row on a neuron tile only where a certificate proves that every
    # pre-activation there is <= 0; the results must be bit-identical to computing every
    # row: weights, per-step history and final values (evaluation rows included), for
    # projected and free weights, steps large enough to flip activations every step, and
    # an infinite step that turns the weights into inf and NaN (no certificate may survive it).
    rng = np.random.default_rng(3)
    n, d = 300, 40
    X = rng.standard_normal((n, d)).astype(dtype)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    X[5] = 0.0  # a zero row (no certificate: 1 / ||x|| is NaN)
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    p = 1.0 / (1.0 + np.exp(-3.0 * X[:, 0]))
    # 6 and 3 make tiles straddle networks; 3 is a random-init net; equal seeds make twins (same
    # width and initial weights: interleaved pair by pair when skipping, soft and hard arm here)
    widths = [4, 4, 6, 3, 36, 36, 8]
    seeds = [0, 0, 1, 2, 3, 3, 4]
    nets = [
        TwoLayerReLU(m, d, init="symmetric" if m % 2 == 0 else "random", random_state=sd, dtype=dtype)
        for m, sd in zip(widths, seeds)
    ]
    losses = np.array([i % 2 for i in range(len(nets))], dtype=np.int32)
    T = np.vstack([p if lo == 0 else y for lo in losses])
    for threads in (1, 2):
        on = _core_pass(X, 250, nets, losses, T, y, lr, radius, 25, threads, True)
        off = _core_pass(X, 250, nets, losses, T, y, lr, radius, 25, threads, False)
        assert off[3] == 0.0
        for u, v in zip(on[:3], off[:3]):
            np.testing.assert_array_equal(u, v)
        if lr == 0.5:
            assert on[3] > 0.1  # the lazy setting: about a fifth of the tile rows are skipped
    if np.isinf(lr):
        assert not np.isfinite(on[0]).all()  # the case did overflow


@pytest.mark.skipif(not bk.HAS_CPP, reason="compiled core not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_twins_and_batches_change_no_bit(dtype):
    # A network trained in a batch (twins interleaved pair by pair, certificates, tables) gives
    # bit for bit what it gives trained alone, where none of that applies to it.
    rng = np.random.default_rng(4)
    n, d = 260, 24
    X = rng.standard_normal((n, d)).astype(dtype)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.where(X[:, 1] > 0, 1.0, -1.0)
    p = 1.0 / (1.0 + np.exp(-3.0 * X[:, 1]))
    widths, seeds = [64, 64, 10, 10, 52, 52], [5, 5, 6, 6, 7, 8]  # the last two are not twins
    nets = [TwoLayerReLU(m, d, random_state=sd, dtype=dtype) for m, sd in zip(widths, seeds)]
    losses = np.array([i % 2 for i in range(len(nets))], dtype=np.int32)
    T = np.vstack([p if lo == 0 else y for lo in losses])
    W, hist, fin, frac = _core_pass(X, 220, nets, losses, T, y, 2.0, 1.0, 20, 2, True)
    assert frac > 0.3  # twins: about half of the tile rows are skipped
    off = np.concatenate([[0], np.cumsum(widths)])
    for k, net in enumerate(nets):
        Wk, hk, fk, _ = _core_pass(X, 220, [net], losses[k : k + 1], T[k : k + 1], y, 2.0, 1.0, 20, 2, True)
        np.testing.assert_array_equal(W[off[k] : off[k + 1]], Wk)
        np.testing.assert_array_equal(hist[k], hk[0])
        np.testing.assert_array_equal(fin[k], fk[0])


@pytest.mark.skipif(not bk.HAS_CPP, reason="compiled core not built")
def test_arms_of_one_seed_are_paired_and_results_keep_the_callers_order(data):
    # train_many hands the kernel the arms of one seed next to each other (twins); the
    # histories and weights come back in the caller's order, equal bit for bit to training
    # each configuration alone.
    X, y, p = data[:3]
    cfgs = [
        {"m": m, "loss": loss, "lr": 1.0, "radius": 1.0 if loss == "soft" else None, "random_state": s}
        for loss in ("soft", "hard")
        for m in (36, 4)
        for s in (0, 1)
    ]  # arm-outer, as scaling_study
    batch = train_many([dict(c) for c in cfgs], X, y, p, n_steps=15, backend="cpp", n_threads=2)
    for c, h in zip(cfgs, batch):
        (alone,) = train_many([dict(c)], X, y, p, n_steps=15, backend="cpp", n_threads=2)
        np.testing.assert_array_equal(h.model.W, alone.model.W)
        np.testing.assert_array_equal(h.loss, alone.loss)
        np.testing.assert_array_equal(h.error, alone.error)
