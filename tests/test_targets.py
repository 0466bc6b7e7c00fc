"""Crowd posteriors as the student's training targets: alignment by task id, exact 0 and 1,
numpy and torch inputs, bad input (kdcore.distill.targets and its hook in train/train_many)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _tol import KERNEL_F32, KERNEL_F64
from kdcore import backends
from kdcore.crowd import DawidSkene, MajorityVote, simulate
from kdcore.distill import TwoLayerReLU, train, train_many
from kdcore.distill import _reference as ref
from kdcore.distill.targets import (
    hard_targets,
    one_vs_rest_targets,
    predict_one_vs_rest,
    soft_targets,
)

BACKENDS = ["numpy"] + [b for b in ("cpp", "torch") if b in backends.available_backends()]


def _features(n, d, seed):
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def crowd():
    """A binary crowd with string task ids and classes 1/2 (as in rte), its DS posteriors and features."""
    r, truth = simulate.dawid_skene(300, 30, 2, answers_per_task=15, skill_range=(0.8, 0.99), random_state=3)
    post = DawidSkene().fit_predict_proba(r)
    ids = [f"t{j:03d}" for j in post.index]
    post.index = pd.Index(ids, name="task")
    post.columns = pd.Index([1, 2], name="label")
    truth = pd.Series(np.asarray(truth) + 1, index=pd.Index(ids, name="task"))
    X = _features(len(ids), 6, 0)
    return post, truth, X, ids


def test_ds_posteriors_hold_exact_zero_and_one(crowd):
    post, *_ = crowd
    p = post[2].to_numpy()
    assert ((p == 0.0) | (p == 1.0)).sum() > 0  # the case the engine must accept


@pytest.mark.parametrize("backend", BACKENDS)
def test_exact_zero_and_one_train_on_every_backend(backend):
    """The soft loss at p in {0, 1}: finite, and equal to the numpy twin's value with 0 ln 0 = 0."""
    X = _features(40, 5, 1)
    p = np.r_[np.zeros(15), np.ones(15), np.linspace(0.1, 0.9, 10)]
    net = TwoLayerReLU(6, 5, random_state=0)
    W0 = net.W.copy()
    h = train(net, X, p, loss="soft", lr=2.0, n_steps=5, backend=backend)
    assert np.isfinite(h.loss).all() and np.isfinite(h.final_loss)
    _, hist, _ = ref.train(X, W0, net.W0, net.a, p, np.where(p >= 0.5, 1.0, -1.0), "soft", 2.0, 5)
    np.testing.assert_allclose(h.loss, hist[:, 0], rtol=KERNEL_F64 * 100, atol=KERNEL_F64)
    # at f = 0 (symmetric init) the loss of a row with p in {0, 1} is ln 2 exactly: no entropy term
    li, g = ref.pointwise_loss(np.zeros(2), np.array([0.0, 1.0]), "soft")
    np.testing.assert_allclose(li, np.log(2.0), rtol=KERNEL_F64)
    np.testing.assert_allclose(g, [0.5, -0.5], rtol=KERNEL_F64)


def test_one_call_from_posteriors_dataframe(crowd):
    """DataFrame X indexed by task id + fit_predict_proba output, rows in another order: same as arrays."""
    post, truth, X, ids = crowd
    Xdf = pd.DataFrame(X, index=pd.Index(ids, name="task"))
    shuffled = post.sample(frac=1.0, random_state=0)  # rows in another order than X
    assert not shuffled.index.equals(Xdf.index)
    a = TwoLayerReLU(8, 6, random_state=1)
    b = a.copy()
    ha = train(a, Xdf, shuffled, loss="soft", lr=4.0, n_steps=20, y=truth.sample(frac=1.0, random_state=1))
    p = post[2].to_numpy()  # post is in X's order
    y = np.where(truth.to_numpy() == 2, 1.0, -1.0)
    hb = train(b, X, p, loss="soft", lr=4.0, n_steps=20, y=y)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(ha.error, hb.error)
    # task_ids= with an array X is the same route
    c = TwoLayerReLU(8, 6, random_state=1)
    train(c, X, shuffled, loss="soft", lr=4.0, n_steps=20, task_ids=ids)
    np.testing.assert_array_equal(c.W, b.W)


def test_series_of_p_and_hard_labels_by_task_id(crowd):
    post, truth, X, ids = crowd
    Xdf = pd.DataFrame(X, index=ids)
    s = post[2][::-1]  # a Series of P(class 2), reversed
    np.testing.assert_array_equal(soft_targets(s, Xdf.index), post[2].to_numpy())
    mv = MajorityVote().fit_predict(pd.DataFrame({"task": ["a", "a", "b"], "worker": [1, 2, 1], "label": [2, 2, 1]}))
    np.testing.assert_array_equal(hard_targets(mv, ["b", "a"]), [-1.0, 1.0])
    # hard training from a Series of class labels, aligned by id
    net = TwoLayerReLU(4, 6, random_state=0)
    ref_net = net.copy()
    train(net, Xdf, truth[::-1], loss="hard", lr=2.0, n_steps=5)
    train(ref_net, X, np.where(truth.to_numpy() == 2, 1, -1), loss="hard", lr=2.0, n_steps=5)
    np.testing.assert_array_equal(net.W, ref_net.W)


def test_positive_class_choice():
    post = pd.DataFrame({"no": [0.9, 0.2], "yes": [0.1, 0.8]}, index=[5, 6])
    np.testing.assert_allclose(soft_targets(post, [6, 5]), [0.8, 0.1])
    np.testing.assert_allclose(soft_targets(post, [6, 5], positive="no"), [0.2, 0.9])
    with pytest.raises(ValueError, match="not a class"):
        soft_targets(post, [5, 6], positive="maybe")


def test_misaligned_ids_are_errors(crowd):
    post, truth, X, ids = crowd
    Xdf = pd.DataFrame(X, index=ids)
    net = TwoLayerReLU(4, 6, random_state=0)
    with pytest.raises(ValueError, match=r"1 task\(s\) of X have no entry in targets .*'t000'"):
        train(net, Xdf, post.drop(index="t000"), loss="soft")
    extra = pd.concat([post, pd.DataFrame({1: [0.5], 2: [0.5]}, index=["zzz"])])
    with pytest.raises(ValueError, match=r"1 task\(s\) of targets have no row in X .*'zzz'"):
        train(net, Xdf, extra, loss="soft")
    renamed = post.rename(index={"t005": "other"})
    with pytest.raises(ValueError, match="no entry.*no row in X"):
        train(net, Xdf, renamed, loss="soft")
    # pandas targets with a task-id index but X without ids: refused, never matched by position
    with pytest.raises(ValueError, match="X has no task ids"):
        train(net, X, post, loss="soft")
    # features without ids for some tasks
    with pytest.raises(ValueError, match="have no task id"):
        train(net, X, post, loss="soft", task_ids=[*ids[:-1], None])
    with pytest.raises(ValueError, match="has 299 ids but X has 300 rows"):
        train(net, X, post, loss="soft", task_ids=ids[:-1])
    with pytest.raises(ValueError, match="must be unique"):
        train(net, pd.DataFrame(X, index=[*ids[:-1], ids[0]]), post, loss="soft")
    with pytest.raises(ValueError, match="do not also pass task_ids"):
        train(net, Xdf, post, loss="soft", task_ids=ids)
    with pytest.raises(ValueError, match="no row in X"):
        train_many([{"m": 4, "loss": "soft", "lr": 1.0, "targets": extra}], Xdf, truth, n_steps=2)


def test_class_set_of_truth_must_match_posteriors(crowd):
    post, truth, X, ids = crowd
    net = TwoLayerReLU(4, 6, random_state=0)
    bad = truth.replace({2: 3})
    with pytest.raises(ValueError, match=r"classes \[3\] that are not among the classes \[1, 2\]"):
        train(net, pd.DataFrame(X, index=ids), post, loss="soft", y=bad)


def test_bad_posteriors_are_errors(crowd):
    post, truth, X, ids = crowd
    Xdf = pd.DataFrame(X, index=ids)
    net = TwoLayerReLU(4, 6, random_state=0)
    nan = post.copy()
    nan.iloc[4, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite.*first in row 4"):
        train(net, Xdf, nan, loss="soft")
    off = post.copy()
    off.iloc[7] = [0.5, 0.6]
    with pytest.raises(ValueError, match=r"sum to 1 .*row 7, sum 1\.1"):
        train(net, Xdf, off, loss="soft")
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        train(net, X, np.full(300, 1.5), loss="soft")
    with pytest.raises(ValueError, match="one column per class"):
        soft_targets(post[[2]], ids)
    three = pd.DataFrame(np.full((300, 3), 1 / 3), index=ids)
    with pytest.raises(ValueError, match="3 classes.*one_vs_rest_targets"):
        train(net, Xdf, three, loss="soft")
    with pytest.raises(ValueError, match="must be >= 1, got 0"):
        train_many([{"m": 0, "loss": "soft", "lr": 1.0}], X, np.ones(300), np.full(300, 0.5), n_steps=1)


def test_torch_and_numpy_inputs_agree():
    torch = pytest.importorskip("torch")
    X = _features(50, 4, 2)
    p = np.r_[np.zeros(10), np.ones(10), np.linspace(0.05, 0.95, 30)]
    y = np.where(p >= 0.5, 1.0, -1.0)
    a = TwoLayerReLU(6, 4, random_state=0)
    b = a.copy()
    c = a.copy()
    ha = train(a, X, p, loss="soft", lr=2.0, n_steps=10, backend="numpy")
    hb = train(b, torch.from_numpy(X), torch.from_numpy(p), loss="soft", lr=2.0, n_steps=10, backend="numpy")
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(ha.loss, hb.loss)
    # float32 tensors keep their dtype, like float32 arrays
    hc = train(c, torch.from_numpy(X.astype(np.float32)), p, loss="soft", lr=2.0, n_steps=10, backend="numpy")
    assert c.W.dtype == np.float32
    np.testing.assert_allclose(hc.loss, ha.loss, rtol=KERNEL_F32 * 10)
    hs = train_many(
        [{"m": 6, "loss": "hard", "lr": 2.0, "random_state": 0}],
        torch.from_numpy(X),
        torch.from_numpy(y),
        n_steps=3,
        X_test=torch.from_numpy(X[:5]),
        y_test=torch.from_numpy(y[:5]),
        backend="numpy",
    )
    assert np.isfinite(hs[0].final_test_error)


def test_one_vs_rest_reduction():
    """K = 3 posteriors: one student per class; K = 2: the second student is the first negated."""
    rng = np.random.default_rng(0)
    n, d = 300, 5
    X = _features(n, d, 3)
    centres = _features(3, d, 4)
    cls = (X @ centres.T).argmax(1)
    P = np.full((n, 3), 0.05)
    P[np.arange(n), cls] = 0.9
    post = pd.DataFrame(P, columns=["a", "b", "c"]).iloc[rng.permutation(n)]  # task j = row j of X, shuffled
    T, classes = one_vs_rest_targets(post, np.arange(n))
    assert T.shape == (3, n) and classes == ["a", "b", "c"]
    np.testing.assert_allclose(T.sum(0), 1.0)
    hs = train_many(
        [{"m": 16, "loss": "soft", "lr": 8.0, "random_state": 0, "targets": T[k]} for k in range(3)],
        X,
        np.ones(n),
        n_steps=200,
        backend="numpy",
    )
    pred = predict_one_vs_rest([h.model for h in hs], X, classes)
    truth = np.asarray(classes, dtype=object)[cls]
    assert np.mean(pred == truth) > 0.9
    # K = 2: training on 1 - p with the same initialisation mirrored gives f negated
    p = T[0] / (T[0] + T[1])
    net = TwoLayerReLU(6, d, random_state=5)
    neg = net.copy()
    neg.a = -neg.a
    train(net, X, p, loss="soft", lr=2.0, n_steps=20, backend="numpy")
    train(neg, X, 1.0 - p, loss="soft", lr=2.0, n_steps=20, backend="numpy")
    np.testing.assert_allclose(neg.decision_function(X), -net.decision_function(X), atol=KERNEL_F64)


def test_rte_posteriors_train_in_one_call(data_home):
    """The real case: Dawid-Skene on rte gives exact 0 and 1; the student trains on them by task id."""
    from kdcore.crowd import datasets

    r, truth = datasets.load("rte", data_home=data_home)
    post = DawidSkene().fit_predict_proba(r)
    assert ((post.to_numpy() == 0.0) | (post.to_numpy() == 1.0)).any()
    ids = post.index[::-1]  # features in another order than the posteriors
    X = pd.DataFrame(_features(len(ids), 8, 7), index=ids)
    h = train(TwoLayerReLU(8, 8, random_state=0), X, post, loss="soft", lr=4.0, n_steps=10, y=truth)
    assert np.isfinite(h.loss).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_hard_labels_as_soft_targets_in_zero_one_are_the_logistic_loss(backend):
    """KL(p || sigmoid f) with p in {0, 1} is ln(1 + exp(-y f)): the same training, step by step."""
    X = _features(60, 5, 4)
    y = np.where(np.random.default_rng(0).random(60) < 0.5, 1.0, -1.0)
    a = TwoLayerReLU(6, 5, random_state=0)
    b = a.copy()
    ha = train(a, X, y, loss="hard", lr=4.0, n_steps=15, radius=2.0, backend=backend)
    hb = train(b, X, (y + 1) / 2, loss="soft", lr=4.0, n_steps=15, radius=2.0, backend=backend)
    np.testing.assert_allclose(b.W, a.W, rtol=KERNEL_F64, atol=KERNEL_F64)
    np.testing.assert_allclose(hb.loss, ha.loss, rtol=KERNEL_F64)
