"""Full-batch projected gradient descent for two-layer ReLU networks (docs/maths.md A.3).

:func:`train_many` is the engine: any number of networks (widths, seeds, loss
types, step sizes, radii) trained together on the same X. On the ``cpp``
backend each block of rows of X is read once per step for every network of a
group while it sits in cache, and the forward skips the rows it can prove
inactive on a tile of 4 neurons (every pre-activation <= 0, from the tile's
movement since the row was last computed and the float error bound), so the
results are exactly those of computing every row. Networks of one width that
share a seed's initial weights (the soft and hard arms of a sweep) are trained
side by side, which about doubles the rows skipped. :func:`train` is one
network through the same path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import backends as _bk
from .._limits import check_memory
from . import _reference
from ._validation import (
    check_dtype,
    check_labels,
    check_loss,
    check_nonneg_float,
    check_positive_int,
    check_radius,
    check_soft,
    check_X,
    from_torch,
)
from .model import TwoLayerReLU
from .targets import hard_targets, resolve, soft_targets

__all__ = ["History", "train", "train_many", "BACKENDS"]

BACKENDS = ("cpp", "numpy", "torch", "torch-cuda")


def _running_mean(v: np.ndarray) -> np.ndarray:
    return np.cumsum(v) / np.arange(1, v.size + 1) if v.size else v.copy()


@dataclass
class History:
    """Per-step training record of one network (values of W(t) before step t).

    ``avg_*`` are running iteration averages (1/(t+1)) sum_{s<=t}: the
    theorems bound ``avg_loss[-1]`` and ``avg_error[-1]``. ``final_*`` are the
    values at W(T) after the last step. ``test_*`` are NaN without a test set
    (``test_loss`` also without test targets for soft labels).
    """

    loss: np.ndarray
    error: np.ndarray
    test_loss: np.ndarray
    test_error: np.ndarray
    final_loss: float
    final_error: float
    final_test_loss: float
    final_test_error: float
    model: TwoLayerReLU
    config: dict = field(default_factory=dict)

    def __post_init__(self):
        self.avg_loss = _running_mean(self.loss)
        self.avg_error = _running_mean(self.error)
        self.avg_test_loss = _running_mean(self.test_loss)
        self.avg_test_error = _running_mean(self.test_error)

    @property
    def n_steps(self) -> int:
        return int(self.loss.size)

    def summary(self) -> dict:
        """Config plus final and iteration-averaged values, one flat dict (a DataFrame row)."""
        row = {k: v for k, v in self.config.items() if k not in ("model", "targets")}
        last = lambda v: float(v[-1]) if v.size else float("nan")  # noqa: E731
        row.update(
            n_steps=self.n_steps,
            final_loss=self.final_loss,
            final_error=self.final_error,
            avg_loss=last(self.avg_loss),
            avg_error=last(self.avg_error),
            final_test_loss=self.final_test_loss,
            final_test_error=self.final_test_error,
            avg_test_error=last(self.avg_test_error),
        )
        return row


# ----------------------------------------------------------------------------- configs
_CONFIG_KEYS = {"m", "loss", "lr", "radius", "random_state", "init", "model", "targets", "test_targets"}


def _norm_config(cfg: Mapping[str, Any], i: int, d: int, dt: np.dtype) -> dict:
    if not isinstance(cfg, Mapping):
        raise TypeError(f"configs[{i}] must be a dict, got {type(cfg).__name__}")
    unknown = set(cfg) - _CONFIG_KEYS
    if unknown:
        raise ValueError(f"configs[{i}] has unknown keys {sorted(unknown)}; allowed: {sorted(_CONFIG_KEYS)}")
    c = dict(cfg)
    c["loss"] = check_loss(c.get("loss", "hard"))
    if "lr" not in c:
        raise ValueError(f"configs[{i}] needs a step size 'lr'")
    c["lr"] = check_nonneg_float(c["lr"], f"configs[{i}]['lr']")
    c["radius"] = check_radius(c.get("radius"))
    model = c.get("model")
    if model is not None:
        if not isinstance(model, TwoLayerReLU):
            raise TypeError(f"configs[{i}]['model'] must be a TwoLayerReLU, got {type(model).__name__}")
        if model.d != d:
            raise ValueError(f"configs[{i}]['model'] has d = {model.d} but X has {d} features")
        if "m" in c and c["m"] != model.m:
            raise ValueError(f"configs[{i}]: m = {c['m']} disagrees with the model's width {model.m}")
        c["m"] = model.m
    else:
        if "m" not in c:
            raise ValueError(f"configs[{i}] needs a width 'm' (or a 'model')")
        c["m"] = check_positive_int(c["m"], f"configs[{i}]['m']")
        c["model"] = TwoLayerReLU(
            c["m"], d, init=c.get("init", "symmetric"), random_state=c.get("random_state"), dtype=dt
        )
    return c


def _resolve(backend: str) -> str:
    return _bk.resolve_backend(backend, ("cpp", "numpy", "torch", "torch-cuda"), what="kdcore.distill.train")


# ----------------------------------------------------------------------------- public
def train_many(
    configs: Sequence[Mapping[str, Any]],
    X,
    y,
    p=None,
    *,
    n_steps: int,
    X_test=None,
    y_test=None,
    p_test=None,
    backend: str = "auto",
    n_threads: int = 0,
    dtype=None,
    executor=None,
    task_ids=None,
) -> list[History]:
    """Train many two-layer networks on the same data in one call.

    Parameters
    ----------
    configs : sequence of dict
        One per network. Keys: ``m`` (width), ``loss`` ("soft" | "hard"),
        ``lr`` (step size), ``radius`` (B of the ball ||W_j - W_j(0)|| <= B/sqrt(m);
        None = no projection), ``random_state``, ``init``
        ("symmetric" | "random"), optionally ``model`` (a TwoLayerReLU to keep
        training, updated in place) and ``targets`` / ``test_targets`` (per-network
        soft labels overriding ``p``/``p_test``).
    X : (n, d) array, rows with c <= ||x|| <= 1 (no zero rows).
    y : (n,) labels in {-1, +1}: hard targets, and the labels of the error for every network.
    p : (n,) soft labels in [0, 1] for the ``soft`` networks (exact 0 and 1 allowed).
        X may be a DataFrame indexed by task id (or ``task_ids`` given); then ``y`` may be
        a Series of class labels and ``p`` / per-network ``targets`` a Series of P(+1) or a
        DataFrame of class posteriors (``fit_predict_proba``), all matched to X by task id
        (:mod:`kdcore.distill.targets`). X, y and p may be numpy arrays or torch tensors.
    n_steps : int, steps of full-batch projected gradient descent.
    X_test, y_test, p_test : optional evaluation set (forward only, every step).
    task_ids : the task id of each row of an array X (see ``p``).
    backend : "auto" | "cpp" | "numpy" | "torch" | "torch-cuda"
    n_threads : threads of the cpp kernel (0 = default); BLAS threads for numpy/torch.
    dtype : float32 or float64 (default: X's float dtype, else float64).
    executor : distributed.Client or concurrent.futures.Executor, optional
        Spread the networks over it (:mod:`kdcore.distill.executor`; default: the one set by
        ``use_executor``, else none); the results are identical to the local run.

    Returns
    -------
    list of History, in the order of ``configs`` (``History.model`` holds the trained net).

    Examples
    --------
    >>> from kdcore.distill import make_margin_data, train_many
    >>> X, y, p = make_margin_data(200, 5, gamma=0.1, random_state=0)
    >>> hs = train_many([{"m": 4, "loss": "hard", "lr": 1.0}, {"m": 8, "loss": "soft", "lr": 1.0, "radius": 1.0}],
    ...                 X, y, p, n_steps=20)
    >>> len(hs), hs[0].loss.shape
    (2, (20,))
    """
    n_steps = check_positive_int(n_steps, "n_steps", minimum=0)
    if isinstance(configs, Mapping) or not isinstance(configs, Sequence) or isinstance(configs, str):
        raise TypeError("configs must be a list of dicts")
    if len(configs) == 0:
        raise ValueError("configs is empty")
    X, X_test, y_test, p_test = from_torch(X), from_torch(X_test), from_torch(y_test), from_torch(p_test)
    index = None
    if isinstance(X, pd.DataFrame) or task_ids is not None:
        X, _, _, index = resolve(X, None, "soft", task_ids=task_ids)
    if isinstance(y, pd.Series) or index is not None:
        y = hard_targets(y, index, name="y")
    if p is not None and (isinstance(p, (pd.Series, pd.DataFrame)) or index is not None):
        p = soft_targets(p, index, name="p")
    configs = [
        {**c, "targets": soft_targets(c["targets"], index, name=f"configs[{i}]['targets']")}
        if isinstance(c, Mapping) and isinstance(c.get("targets"), (pd.Series, pd.DataFrame))
        else c
        for i, c in enumerate(configs)
    ]
    # (after the alignment by task id: the executor's workers get plain arrays)
    from .executor import current_executor, train_many_on

    executor = executor if executor is not None else current_executor()
    if executor is not None:
        kw = dict(X_test=X_test, y_test=y_test, p_test=p_test, backend=backend, n_threads=n_threads, dtype=dtype)
        return train_many_on(executor, configs, X, y, p, train=train_many, n_steps=n_steps, **kw)
    if dtype is None:
        dtype = X.dtype if isinstance(X, np.ndarray) and X.dtype in (np.float32, np.float64) else np.float64
    dt = check_dtype(dtype)
    X = check_X(X, dtype=dt)
    n, d = X.shape
    y = check_labels(y, n)
    p = check_soft(p, n, "p") if p is not None else None
    cfgs = [_norm_config(c, i, d, dt) for i, c in enumerate(configs)]
    has_test = X_test is not None
    if has_test:
        X_test = check_X(X_test, "X_test", d=d, dtype=dt)
        if y_test is None:
            raise ValueError("X_test given without y_test")
        y_test = check_labels(y_test, X_test.shape[0], "y_test")
        p_test = check_soft(p_test, X_test.shape[0], "p_test") if p_test is not None else None
    elif y_test is not None or p_test is not None:
        raise ValueError("y_test / p_test given without X_test")
    n_test = X_test.shape[0] if has_test else 0

    # targets per network over all rows (train then test); test loss unknown -> NaN later
    T = np.empty((len(cfgs), n + n_test), dtype=np.float64)
    test_loss_known = np.ones(len(cfgs), dtype=bool)
    for k, c in enumerate(cfgs):
        if c["loss"] == "hard":
            T[k, :n] = y
            if has_test:
                T[k, n:] = y_test
            continue
        tk = c.get("targets")
        tk = check_soft(tk, n, f"configs[{k}]['targets']") if tk is not None else p
        if tk is None:
            raise ValueError(f"configs[{k}] is a soft-label network but no soft labels p (or 'targets') were given")
        T[k, :n] = tk
        if has_test:
            tt = c.get("test_targets")
            tt = check_soft(tt, n_test, f"configs[{k}]['test_targets']") if tt is not None else p_test
            if tt is None:
                T[k, n:] = 0.5
                test_loss_known[k] = False
            else:
                T[k, n:] = tt
    Xall = np.ascontiguousarray(np.vstack([X, X_test])) if has_test else X
    yall = np.concatenate([y, y_test]) if has_test else y

    backend = _resolve(backend)
    nt = _bk.check_n_threads(n_threads)
    models = [c["model"] for c in cfgs]
    n_all, K, M_total = n + n_test, len(cfgs), sum(c["m"] for c in cfgs)
    need = 8.0 * K * n_all * 2 + 32.0 * K * max(n_steps, 1) + 3.0 * M_total * d * dt.itemsize + n_all * d * dt.itemsize
    if backend != "cpp":  # per network: the (n, m) pre-activations and their masks / gradients
        need += 4 * 8.0 * n_all * max(c["m"] for c in cfgs)
    else:  # certificates of inactivity: 2 bytes per row and 4 neurons (the kernel caps them at 1 GiB)
        need += min(0.5 * n_all * (M_total + 4 * K), 2.0**30)
    check_memory(
        need,
        f"train_many of {K} network(s) (total width {M_total}) on {n_all} x {d} rows for {n_steps} steps",
        "train fewer networks per call, fewer steps or a subsample of rows",
    )
    start = [(mdl.W.copy(), mdl.W0, mdl.a) for mdl in models]  # restored if training diverges
    for mdl in models:
        if mdl.W.dtype != dt:
            mdl.W, mdl.W0, mdl.a = (np.ascontiguousarray(v, dtype=dt) for v in (mdl.W, mdl.W0, mdl.a))
    losses = np.array([0 if c["loss"] == "soft" else 1 for c in cfgs], dtype=np.int32)
    lrs = np.array([c["lr"] for c in cfgs])
    radii = np.array([c["radius"] if c["radius"] is not None else -1.0 for c in cfgs])

    if backend == "cpp":
        hist, final = _train_cpp(Xall, n, models, losses, T, yall, lrs, radii, n_steps, nt)
    elif backend == "numpy":
        with _bk.blas_threads(nt):
            hist, final = _train_numpy(Xall, n, models, cfgs, T, yall, n_steps)
    else:
        from . import _torch

        hist, final = _torch.train_batch(
            Xall, n, models, losses, T, yall, lrs, radii, n_steps, nt, cuda=(backend == "torch-cuda")
        )
    bad = ~(
        np.isfinite(hist[:, :, :2]).all(axis=(1, 2))
        & np.isfinite(final[:, :2]).all(axis=1)
        & np.array([bool(np.isfinite(mdl.W).all()) for mdl in models])
    )
    if bad.any():
        for mdl, (W, W0, a) in zip(models, start):
            mdl.W, mdl.W0, mdl.a = W, W0, a
        k = int(np.flatnonzero(bad)[0])
        steps_bad = np.flatnonzero(~np.isfinite(hist[k, :, :2]).all(axis=1))
        step = int(steps_bad[0]) if steps_bad.size else n_steps  # else only the final weights overflowed
        raise ValueError(
            f"training diverged: configs[{k}] (lr = {cfgs[k]['lr']:g}) reached a non-finite loss or weight at step {step}; "
            f"X rows have norm up to {float(np.sqrt((X.astype(np.float64) ** 2).sum(1)).max()):.3g} (the model "
            "expects ||x|| <= 1): lower lr or rescale X"
        )
    out = []
    for k, c in enumerate(cfgs):
        h = hist[k]
        tl = h[:, 2] if test_loss_known[k] else np.full(n_steps, np.nan)
        ftl = final[k, 2] if test_loss_known[k] else float("nan")
        info = {kk: vv for kk, vv in c.items() if kk not in ("model", "targets", "test_targets")}
        info["backend"] = backend
        out.append(
            History(
                loss=h[:, 0].copy(),
                error=h[:, 1].copy(),
                test_loss=tl.copy(),
                test_error=h[:, 3].copy(),
                final_loss=float(final[k, 0]),
                final_error=float(final[k, 1]),
                final_test_loss=float(ftl),
                final_test_error=float(final[k, 3]),
                model=models[k],
                config=info,
            )
        )
    return out


def train(
    model: TwoLayerReLU,
    X,
    targets,
    loss: str = "hard",
    lr: float = 1.0,
    n_steps: int = 100,
    radius: float | None = None,
    *,
    y=None,
    X_test=None,
    y_test=None,
    targets_test=None,
    backend: str = "auto",
    n_threads: int = 0,
    dtype=None,
    task_ids=None,
    positive=None,
) -> History:
    """Train ``model`` in place by full-batch projected gradient descent.

    ``loss="soft"``: ``targets`` are soft labels p in [0, 1] and the loss is
    KL(p || sigmoid(f)) (finite at p = 0 and 1); the error uses ``y`` (default: +1 where
    p >= 1/2). ``loss="hard"``: ``targets`` are labels in {-1, +1} and the loss is
    ln(1 + exp(-y f)). ``radius`` is B (None = no projection).

    Crowd posteriors train the student in one call: ``targets`` may be an aggregator's
    ``fit_predict_proba`` DataFrame (tasks x classes) or a Series of P(+1), and ``y`` /
    hard ``targets`` a Series of class labels, matched to the rows of X by task id (X a
    DataFrame indexed by task id, or ``task_ids=``); ``positive`` names the class trained
    as +1 (default: the last class). X, targets and y may be numpy arrays or torch tensors.
    See :mod:`kdcore.distill.targets`.

    Examples
    --------
    >>> from kdcore.distill import TwoLayerReLU, make_margin_data, train
    >>> X, y, p = make_margin_data(200, 5, gamma=0.1, random_state=0)
    >>> h = train(TwoLayerReLU(8, 5, random_state=0), X, p, loss="soft", lr=1.0, n_steps=10, radius=1.0)
    >>> h.avg_loss.shape
    (10,)
    """
    if not isinstance(model, TwoLayerReLU):
        raise TypeError(f"model must be a TwoLayerReLU, got {type(model).__name__}")
    loss = check_loss(loss)
    X, targets, y, _ = resolve(X, targets, loss, task_ids=task_ids, y=y, positive=positive)
    if X_test is not None:
        X_test, targets_test, y_test, _ = resolve(X_test, targets_test, loss, y=y_test, positive=positive)
    targets_test = from_torch(targets_test)
    Xc = check_X(
        X,
        d=model.d,
        dtype=dtype
        if dtype is not None
        else (X.dtype if isinstance(X, np.ndarray) and X.dtype in (np.float32, np.float64) else np.float64),
    )
    n = Xc.shape[0]
    if loss == "hard":
        yy = check_labels(targets, n, "targets")
        if y is not None and not np.array_equal(check_labels(y, n), yy):
            raise ValueError("y differs from the hard targets")
        p = None
        yt, pt = y_test, None
        if targets_test is not None:
            yt = (
                check_labels(targets_test, np.asarray(targets_test).shape[0], "targets_test")
                if y_test is None
                else y_test
            )
    else:
        p = check_soft(targets, n, "targets")
        yy = check_labels(y, n) if y is not None else np.where(p >= 0.5, 1.0, -1.0)
        pt = targets_test
        yt = y_test
        if X_test is not None and yt is None and pt is not None:
            yt = np.where(np.asarray(pt, dtype=float) >= 0.5, 1.0, -1.0)
    cfg = {"model": model, "loss": loss, "lr": lr, "radius": radius}
    return train_many(
        [cfg],
        Xc,
        yy,
        p,
        n_steps=n_steps,
        X_test=X_test,
        y_test=yt,
        p_test=pt,
        backend=backend,
        n_threads=n_threads,
        dtype=Xc.dtype,
    )[0]


# ----------------------------------------------------------------------------- backends
def _train_numpy(X, n_train, models, cfgs, T, y, n_steps):
    K = len(models)
    hist = np.empty((K, n_steps, 4))
    final = np.empty((K, 4))
    for k, (mdl, c) in enumerate(zip(models, cfgs)):
        W, h, f = _reference.train(X, mdl.W, mdl.W0, mdl.a, T[k], y, c["loss"], c["lr"], n_steps, c["radius"], n_train)
        mdl.W = np.ascontiguousarray(W)
        hist[k], final[k] = h, f
    return hist, final


def _twin_order(models):
    """Network order for the compiled kernel: networks with the same width, initial weights
    and signs (the arms of one seed) next to each other, so that the kernel interleaves them
    two by two (its certified-inactive skipping then skips about twice the rows). Results do
    not depend on the order; they are returned in the caller's."""
    import hashlib

    buckets: dict = {}
    for k, mdl in enumerate(models):
        key = (
            mdl.m,
            hashlib.blake2b(
                np.ascontiguousarray(mdl.W0).tobytes() + np.ascontiguousarray(mdl.a).tobytes(), digest_size=16
            ).digest(),
        )
        buckets.setdefault(key, []).append(k)
    return np.array([k for ks in buckets.values() for k in ks], dtype=np.int64)


def _train_cpp(X, n_train, models, losses, T, y, lrs, radii, n_steps, n_threads):
    from .. import _core

    order = _twin_order(models)
    inv = np.argsort(order)
    models, losses, T, lrs, radii = [models[k] for k in order], losses[order], T[order], lrs[order], radii[order]
    dt = X.dtype
    offsets = np.zeros(len(models) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([mdl.m for mdl in models])
    W = np.ascontiguousarray(np.vstack([mdl.W for mdl in models]), dtype=dt)
    W0 = np.ascontiguousarray(np.vstack([mdl.W0 for mdl in models]), dtype=dt)
    a = np.ascontiguousarray(np.concatenate([mdl.a for mdl in models]), dtype=dt)
    out = _core.twolayer_train(
        X,
        int(n_train),
        W,
        W0,
        a,
        offsets,
        losses,
        np.ascontiguousarray(T, dtype=dt),
        np.ascontiguousarray(y, dtype=dt),
        np.ascontiguousarray(lrs, dtype=np.float64),
        np.ascontiguousarray(radii, dtype=np.float64),
        int(n_steps),
        int(n_threads),
    )
    hist, final = out[0], out[1]
    for k, mdl in enumerate(models):
        mdl.W = np.ascontiguousarray(W[offsets[k] : offsets[k + 1]])
    return hist[inv], final[inv]
