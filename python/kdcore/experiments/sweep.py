"""``kdcore distill sweep``: students of several widths on soft and on hard labels.

The data and the teacher are prepared here; the training is the neuron-requirement
engine's (:func:`kdcore.distill.scaling.train_curves`, a hard and a soft arm).


For each width m and seed, one student is trained on the hard labels (logistic
loss) and one on the soft labels (binary KL to the teacher's p), by full-batch
projected gradient descent with the same step size, radius and step budget
(docs/maths.md A.3). The table gives the test error (mean and spread over seeds)
and the neuron requirement: the smallest width whose mean test error is at most
``target_error`` (the empirical counterpart of Theorem 2 / Proposition 5).

Data: ``margin`` = linearly separable points with kernel margin ``gamma`` and the
exact teacher p = sigmoid(u.x / 2); ``mnist-full`` / ``mnist-reduced`` = MNIST
"digit > 4" (reduced: digits 1, 7, 4, 9 removed), centred, unit-norm, with a
512-neuron two-layer teacher trained on hard labels giving p = sigmoid(f).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..distill import Arm, TwoLayerReLU, make_margin_data, train
from ..distill.datasets import mnist_binary
from ..distill.scaling import train_curves

DATASETS = ("margin", "mnist-full", "mnist-reduced")
TEACHER_WIDTH = 512
TEACHER_LR = 256.0  # full-batch step of the MNIST teacher (as the MNIST experiment's quick profile)
#: default step size per dataset (None given): the margin study's 4, MNIST's middle grid value
DEFAULT_LR = {"margin": 4.0, "mnist-full": 64.0, "mnist-reduced": 64.0}


def _data(data: str, n: int, d: int, gamma: float, seed: int, n_steps: int, lr: float, data_home):
    if data == "margin":
        X, y, p = make_margin_data(2 * n, d, gamma=gamma, random_state=seed)
        return X[:n], y[:n], p[:n], X[n:], y[n:], p[n:]
    variant = data.split("-", 1)[1]
    X, y = mnist_binary(variant, "train", center=True, unit_norm=True, n_max=n, seed=seed, data_home=data_home)
    Xt, yt = mnist_binary(variant, "test", center=True, unit_norm=True, n_max=n, seed=seed, data_home=data_home)
    y, yt = y.astype(np.float64), yt.astype(np.float64)
    teacher = TwoLayerReLU(TEACHER_WIDTH, X.shape[1], random_state=seed)
    train(teacher, X, y, loss="hard", lr=TEACHER_LR, n_steps=n_steps, radius=None)
    sig = lambda z: 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))  # noqa: E731 - stable sigmoid
    p = np.clip(sig(teacher.decision_function(X)), 1e-6, 1 - 1e-6)
    pt = np.clip(sig(teacher.decision_function(Xt)), 1e-6, 1 - 1e-6)
    return X, y, p, Xt, yt, pt


def run_sweep(
    data: str = "margin",
    widths: Sequence[int] = (2, 4, 8, 16, 32),
    seeds: int = 3,
    n_steps: int = 300,
    n: int = 500,
    d: int = 20,
    gamma: float = 0.05,
    target_error: float = 0.05,
    radius: float = 1.0,
    lr: float | None = None,
    data_home=None,
    progress: bool = False,
    backend: str = "auto",
) -> pd.DataFrame:
    """The width sweep table (one row per width; test errors in %), with
    ``table.attrs["requirement"] = {"hard": m*, "soft": m*}`` (None = no width reached it)."""
    if data not in DATASETS:
        raise ValueError(f"data must be one of {DATASETS}, got {data!r}")
    if not 0 < target_error < 1:
        raise ValueError(f"target_error must lie in (0, 1), got {target_error}")
    if radius is not None and radius < 0:
        raise ValueError(f"radius must be >= 0 (0 = no projection), got {radius}")
    lr = DEFAULT_LR[data] if lr is None else float(lr)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    rad = None if not radius else float(radius)
    rows = []
    seed_iter = range(int(seeds))
    if progress:
        from tqdm.auto import tqdm

        seed_iter = tqdm(seed_iter, desc=f"sweep {data}", unit="seed")
    for s in seed_iter:
        X, y, p, Xt, yt, pt = _data(data, n, d, gamma, s, n_steps, lr, data_home)
        arms = [Arm(loss, loss, rad, lr) for loss in ("hard", "soft")]
        cur = train_curves(
            X,
            y,
            p,
            Xt,
            yt,
            pt,
            arms,
            [int(m) for m in widths],
            [s],
            [target_error],
            n_steps,
            None,
            1.0,
            backend,
            0,
            random_state=lambda m, k: 1000 * k + m,
        )
        rows.append(
            pd.DataFrame(
                {
                    "m": cur["m"],
                    "labels": cur["loss"],
                    "seed": s,
                    "test_error": 100 * cur["final_test_error"],
                    "train_error": 100 * cur["final_error"],
                }
            )
        )
    runs = pd.concat(rows, ignore_index=True)
    g = runs.groupby(["m", "labels"])["test_error"].agg(["mean", "std"]).unstack("labels")
    table = pd.DataFrame(
        {
            "hard test err %": g[("mean", "hard")],
            "hard sd": g[("std", "hard")],
            "soft test err %": g[("mean", "soft")],
            "soft sd": g[("std", "soft")],
        }
    )
    table.index.name = "width m"
    req = {}
    for arm in ("hard", "soft"):
        ok = table.index[table[f"{arm} test err %"] <= 100 * target_error]
        req[arm] = int(ok.min()) if len(ok) else None
    table.attrs["requirement"] = req
    table.attrs["target_error"] = target_error
    return table


def requirement_line(table: pd.DataFrame) -> str:
    """The neuron requirement of a :func:`run_sweep` table in one line."""
    req = table.attrs.get("requirement", {})
    te = table.attrs.get("target_error", float("nan"))
    show = lambda v: str(v) if v is not None else f"> {max(table.index)}"  # noqa: E731
    return (
        f"neuron requirement (smallest width with mean test error <= {100 * te:g}%): "
        f"hard labels m* = {show(req.get('hard'))}, soft labels m* = {show(req.get('soft'))}"
    )
