"""CrowdLayer on any torch backbone: the confusion layer against a numpy oracle, planted confusions
recovered by a tiny convolutional network, majority vote beaten with adversarial workers."""

from __future__ import annotations

import numpy as np
import pytest

from _tol import CROWD_LAYER_CONFUSION, KERNEL_F64, PROB_SUM

torch = pytest.importorskip("torch")

from kdcore.crowd import MajorityVote, Responses  # noqa: E402
from kdcore.distill.crowd_layer import (  # noqa: E402
    CrowdLayerNet,
    answer_log_likelihood,
    initial_confusion_logits,
    log_class_probs,
)


def _images(n, seed):
    """n 1x8x8 Gaussian images labelled by the sign of a fixed template's correlation (margin 0.3)."""
    rng = np.random.default_rng(seed)
    w = np.random.default_rng(99).standard_normal((1, 8, 8))
    X = rng.standard_normal((4 * n, 1, 8, 8)).astype(np.float32)
    s = (X * w).sum((1, 2, 3)) / np.linalg.norm(w)
    keep = np.flatnonzero(np.abs(s) > 0.3)[:n]
    return X[keep], np.where(s[keep] > 0, 1, -1)


def _planted_crowd(codes, conf, per_task, seed, classes):
    """Answers of workers with confusions conf (W, K, K) on tasks of true class codes ``codes``."""
    rng = np.random.default_rng(seed)
    n, W, K = codes.size, conf.shape[0], conf.shape[1]
    workers = np.argsort(rng.random((n, W)), axis=1)[:, :per_task].ravel()
    tasks = np.repeat(np.arange(n), per_task)
    cum = np.cumsum(conf[workers, codes[tasks]], axis=1)
    said = np.minimum((rng.random(tasks.size)[:, None] > cum).sum(1), K - 1)
    return Responses.from_arrays(tasks, workers, np.asarray(classes)[said], classes=list(classes))


def _tiny_conv(n_out=1, seed=0):
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, n_out))


GOOD = np.array([[0.85, 0.15], [0.15, 0.85]])
ADVERSARIAL = np.array([[0.25, 0.75], [0.75, 0.25]])
BIASED = np.array([[0.2, 0.8], [0.05, 0.95]])  # says +1 almost always


@pytest.fixture(scope="module")
def adversarial_images():
    X, y = _images(4000, 0)
    conf = np.stack([GOOD] * 12 + [ADVERSARIAL] * 10 + [BIASED] * 8)
    r = _planted_crowd((y[:3000] > 0).astype(int), conf, 5, seed=1, classes=[-1, 1])
    return X, y, conf, r


def test_answer_log_likelihood_matches_numpy():
    rng = np.random.default_rng(0)
    n, W, K, N = 7, 4, 3, 40
    logits = torch.as_tensor(rng.standard_normal((n, K)))
    V = torch.as_tensor(rng.standard_normal((W, K, K)))
    t, w, lab = rng.integers(0, n, N), rng.integers(0, W, N), rng.integers(0, K, N)
    got = answer_log_likelihood(
        log_class_probs(logits), V, torch.as_tensor(t), torch.as_tensor(w), torch.as_tensor(lab)
    )
    p = np.exp(logits.numpy())
    p /= p.sum(1, keepdims=True)
    C = np.exp(V.numpy())
    C /= C.sum(2, keepdims=True)
    want = np.log([sum(p[t[j], k] * C[w[j], k, lab[j]] for k in range(K)) for j in range(N)])
    np.testing.assert_allclose(got.numpy(), want, rtol=KERNEL_F64)
    # one logit f is the two-class case with logits (0, f)
    f = torch.as_tensor(rng.standard_normal(n))
    np.testing.assert_allclose(
        log_class_probs(f).numpy(), torch.log_softmax(torch.stack([0 * f, f], 1), 1).numpy(), rtol=KERNEL_F64
    )
    np.testing.assert_array_equal(log_class_probs(f[:, None]).numpy(), log_class_probs(f).numpy())
    C0 = torch.softmax(initial_confusion_logits(2, 3, 0.7, dtype=torch.float64), 2).numpy()
    np.testing.assert_allclose(C0[1], [[0.7, 0.15, 0.15], [0.15, 0.7, 0.15], [0.15, 0.15, 0.7]], rtol=KERNEL_F64)


def test_tiny_conv_recovers_confusions_and_beats_majority_vote(adversarial_images):
    from kdcore.distill.vgg import predict_logits, train_net

    X, y, conf, r = adversarial_images
    tr, te = np.arange(3000), np.arange(3000, 4000)
    cl = CrowdLayerNet(
        _tiny_conv(), n_epochs=15, batch_size=100, lr=3e-3, weight_decay=0.0, lr_confusion=0.05, n_threads=1
    ).fit(X[tr], r)
    assert cl.loss_history_[-1] < cl.loss_history_[0]
    est = cl.confusions_[np.argsort(cl.workers_.to_numpy())]
    assert np.mean(np.abs(est - conf)) <= CROWD_LAYER_CONFUSION
    acc_cl = np.mean(cl.predict(X[te]) == y[te])
    mv = MajorityVote(random_state=0).fit_predict(r).loc[tr].to_numpy()
    assert np.mean(mv == y[tr]) < 0.7  # the votes are poor labels here
    # the same backbone and initialisation on the votes; its early stopping even sees the true test labels
    net = _tiny_conv()
    Xt = torch.as_tensor(X)
    train_net(
        net,
        Xt[tr],
        torch.as_tensor((mv > 0).astype(np.float32)),
        Xt[te],
        torch.as_tensor((y[te] > 0).astype(np.int64)),
        max_epochs=15,
        patience=15,
        batch_size=100,
        lr=3e-3,
        weight_decay=0.0,
    )
    acc_mv = np.mean(np.where(predict_logits(net, Xt[te]).numpy() > 0, 1, -1) == y[te])
    assert acc_cl > acc_mv + 0.1, (acc_cl, acc_mv)
    np.testing.assert_allclose(cl.predict_proba(X[te]).sum(1), 1.0, rtol=PROB_SUM)


def test_three_classes_with_class_logits():
    """K = 3: a backbone with three logits, planted 3 x 3 confusions recovered."""
    rng = np.random.default_rng(3)
    X, _ = _images(3000, 3)
    w2 = rng.standard_normal((1, 8, 8))
    w1 = np.random.default_rng(99).standard_normal((1, 8, 8))
    s = np.stack([(X * w1).sum((1, 2, 3)), (X * w2).sum((1, 2, 3))], 1)
    codes = np.where(s[:, 0] > 0, np.where(s[:, 1] > 0, 2, 1), 0)
    good = np.full((3, 3), 0.05) + np.eye(3) * 0.85
    cyclic = np.roll(np.eye(3), 1, axis=1) * 0.7 + 0.1  # says the next class
    conf = np.stack([good] * 14 + [cyclic] * 6)
    r = _planted_crowd(codes, conf, 5, seed=4, classes=["a", "b", "c"])
    cl = CrowdLayerNet(
        _tiny_conv(3), n_epochs=15, batch_size=100, lr=3e-3, weight_decay=0.0, lr_confusion=0.05, n_threads=1
    ).fit(X, r)
    assert list(cl.classes_) == ["a", "b", "c"] and cl.confusions_.shape == (20, 3, 3)
    est = cl.confusions_[np.argsort(cl.workers_.to_numpy())]
    assert np.mean(np.abs(est - conf)) <= CROWD_LAYER_CONFUSION
    assert np.mean(cl.predict(X) == np.array(["a", "b", "c"])[codes]) > 0.85


def test_validation_tasks_pick_the_epoch_and_fits_are_seeded(adversarial_images):
    X, y, conf, r = adversarial_images
    held = np.arange(2500, 3000)
    kw = dict(n_epochs=4, batch_size=200, lr=3e-3, lr_confusion=0.05, n_threads=1, random_state=5)
    a = CrowdLayerNet(_tiny_conv(), **kw).fit(X[:3000], r, val_tasks=held)
    assert a.val_history_.shape == (4,) and a.loss_history_.shape == (4,)
    assert a.best_epoch_ == int(np.argmin(a.val_history_)) + 1
    b = CrowdLayerNet(_tiny_conv(), **kw).fit(X[:3000], r, val_tasks=held)
    np.testing.assert_array_equal(a.confusions_, b.confusions_)
    np.testing.assert_array_equal(a.predict_proba(X[3000:]), b.predict_proba(X[3000:]))
    # the held-out answers are not trained on: the same fit without them has other weights
    c = CrowdLayerNet(_tiny_conv(), **{**kw, "n_epochs": 1}).fit(X[:3000], r, val_tasks=held)
    d = CrowdLayerNet(_tiny_conv(), **{**kw, "n_epochs": 1}).fit(X[:3000], r)
    assert c.val_history_.size == 1 and d.val_history_.size == 0
    assert not np.array_equal(c.predict_proba(X[3000:]), d.predict_proba(X[3000:]))


def test_bad_input(adversarial_images):
    X, y, conf, r = adversarial_images
    with pytest.raises(TypeError, match="backbone must be a torch.nn.Module"):
        CrowdLayerNet(lambda x: x, n_epochs=1).fit(X[:3000], r)
    with pytest.raises(ValueError, match="have no row in X"):
        CrowdLayerNet(_tiny_conv(), n_epochs=1).fit(X[:100], r)
    with pytest.raises(ValueError, match="backbone gives 3 class"):
        CrowdLayerNet(_tiny_conv(3), n_epochs=1).fit(X[:3000], r)
    with pytest.raises(ValueError, match="not task ids of X"):
        CrowdLayerNet(_tiny_conv(), n_epochs=1).fit(X[:3000], r, val_tasks=[5000])
    with pytest.raises(ValueError, match="init_skill must be > 0.5"):
        CrowdLayerNet(_tiny_conv(), n_epochs=1, init_skill=0.4).fit(X[:3000], r)
    with pytest.raises(ValueError, match="device must be"):
        CrowdLayerNet(_tiny_conv(), n_epochs=1, device="gpu").fit(X[:3000], r)
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        CrowdLayerNet(_tiny_conv(), batch_size=1).fit(X[:3000], r)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_mixed_precision_matches_the_planted_crowd(adversarial_images):
    """The same planted crowd on CUDA in mixed precision: the confusions are recovered and the
    held-out tasks pick the epoch, as on the CPU."""
    X, y, conf, r = adversarial_images
    cl = CrowdLayerNet(
        _tiny_conv(), n_epochs=15, batch_size=100, lr=3e-3, weight_decay=0.0, lr_confusion=0.05, device="cuda", amp=True
    ).fit(torch.as_tensor(X[:3000]), r, val_tasks=np.arange(2700, 3000))
    assert next(cl.backbone_.parameters()).is_cuda
    est = cl.confusions_[np.argsort(cl.workers_.to_numpy())]
    assert np.mean(np.abs(est - conf)) <= CROWD_LAYER_CONFUSION
    assert cl.best_epoch_ == int(np.argmin(cl.val_history_)) + 1
    assert np.mean(cl.predict(torch.as_tensor(X[3000:]).cuda()) == y[3000:]) > 0.9
