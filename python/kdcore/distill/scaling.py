"""The empirical neuron requirement m*(eps) and its scaling with eps and gamma.

For each arm (a loss, a radius rule, a step size) every width of a geometric
grid and every seed is trained in ONE :func:`train_many` call on the same data.
m*(eps) is the smallest width whose metric (iteration-averaged training error
by default: what the theorems bound) reaches eps for most seeds (> half).
Slopes of log m* against log eps and log gamma are fitted by least squares
with t-based confidence intervals and set beside the theory (docs/maths.md A.5):
soft labels m ~ gamma^-2 eps^-1, hard labels m ~ gamma^-4 ln(1/eps).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .bounds import proposition5_hard
from .training import train_many

__all__ = ["Arm", "default_arms", "neuron_requirement", "scaling_study", "ScalingResult", "fit_loglog", "train_curves"]

METRICS = ("avg_error", "final_error", "final_test_error", "avg_loss")


@dataclass(frozen=True)
class Arm:
    """One way of training: ``loss``, ``radius`` (a number, None = unprojected,
    or "prop5" = Proposition 5's B for the arm's gamma and eps), step size ``lr``
    (a number, or a tuple of candidates: :func:`scaling_study` then picks, per
    dataset, the one with the lowest iteration-averaged TRAINING error over the
    widths in a pilot run with the first seed)."""

    name: str
    loss: str
    radius: object
    lr: float


def default_arms(lr_soft: float = 4.0, lr_hard: float = 4.0, big_B: float = 4.0) -> list[Arm]:
    return [
        Arm("soft B=1", "soft", 1.0, lr_soft),
        Arm(f"soft B={big_B:g}", "soft", big_B, lr_soft),
        Arm("hard B=Prop5", "hard", "prop5", lr_hard),
        Arm("hard unprojected", "hard", None, lr_hard),
    ]


def _uncovered(X, W):
    """Fraction of rows of X on which every neuron of W is inactive (W_j . x <= 0)."""
    return float(np.mean(np.all(X @ W.T <= 0, axis=1)))


def _radius(arm: Arm, gamma, eps, n, c):
    if arm.radius == "prop5":
        if gamma is None or not np.isfinite(gamma) or gamma <= 0:
            return None
        return proposition5_hard(min(gamma, 0.999), n, c, eps=eps).B
    return arm.radius


def train_curves(
    X,
    y,
    p,
    X_test,
    y_test,
    p_test,
    arms: Sequence[Arm],
    widths: Sequence[int],
    seeds: Sequence[int],
    eps_list: Sequence[float],
    n_steps: int,
    gamma: float | None,
    c: float,
    backend: str,
    n_threads: int,
    extra: dict | None = None,
    *,
    random_state: Callable[[int, int], int] | None = None,
) -> pd.DataFrame:
    """Train every arm x width x seed (x eps for eps-dependent radii) in one :func:`train_many` call.

    ``p`` (and ``p_test``) are the soft labels, ``gamma`` and ``c`` give Proposition 5's
    radius (``Arm.radius == "prop5"``) for each eps of ``eps_list``. The network of width
    ``m`` and seed ``s`` starts from ``random_state(m, s)`` (default: ``s``). Returns one
    row per network: arm, loss, lr, radius, eps_radius, m, seed, the ``extra`` columns,
    the iteration-averaged and final training errors and losses, the test errors, the
    fraction of training rows no neuron covers at the start and the end, and how far
    the neurons moved relative to their initial norm.
    """
    seed_of = random_state if random_state is not None else (lambda m, s: s)
    cfgs, meta = [], []
    for arm in arms:
        eps_keys = eps_list if arm.radius == "prop5" else [None]
        for e in eps_keys:
            B = _radius(arm, gamma, e if e is not None else min(eps_list), X.shape[0], c)
            for m in widths:
                for s in seeds:
                    cfgs.append(
                        {
                            "m": int(m),
                            "loss": arm.loss,
                            "lr": arm.lr,
                            "radius": B,
                            "random_state": int(seed_of(int(m), int(s))),
                        }
                    )
                    meta.append(
                        {
                            "arm": arm.name,
                            "loss": arm.loss,
                            "lr": arm.lr,
                            "radius": B,
                            "eps_radius": e,
                            "m": int(m),
                            "seed": int(s),
                        }
                    )
    hs = train_many(
        cfgs,
        X,
        y,
        p,
        n_steps=n_steps,
        X_test=X_test,
        y_test=y_test,
        p_test=p_test,
        backend=backend,
        n_threads=n_threads,
    )
    rows = []
    for h, md in zip(hs, meta):
        mdl = h.model
        W0 = mdl.W0.astype(np.float64)
        row = dict(md)
        row.update(extra or {})
        row.update(
            avg_error=float(h.avg_error[-1]),
            final_error=h.final_error,
            avg_loss=float(h.avg_loss[-1]),
            final_loss=h.final_loss,
            avg_test_error=float(h.avg_test_error[-1]),
            final_test_error=h.final_test_error,
            uncovered_init=_uncovered(X, W0),
            uncovered_final=_uncovered(X, mdl.W.astype(np.float64)),
            move_ratio=float(np.mean(mdl.distance_from_init() / np.linalg.norm(W0, axis=1))),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _mstar(curves: pd.DataFrame, eps_list, metrics=METRICS, keys=("task", "gamma", "arm")) -> pd.DataFrame:
    rows = []
    keys = [k for k in keys if k in curves.columns]
    for key, grp in curves.groupby(keys, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        for metric in metrics:
            if metric not in grp or grp[metric].isna().all():
                continue
            for e in eps_list:
                sub = grp if grp["eps_radius"].isna().all() else grp[grp["eps_radius"] == e]
                ok = sub.groupby("m")[metric].apply(lambda v, e=e: np.mean(v <= e) > 0.5)
                passing = ok[ok].index
                ms = float(passing.min()) if len(passing) else np.nan
                rows.append(
                    {**dict(zip(keys, key)), "metric": metric, "eps": e, "m_star": ms, "reached": bool(len(passing))}
                )
    return pd.DataFrame(rows)


def fit_loglog(x, y, level: float = 0.95):
    """Least-squares slope of log y on log x with a t confidence interval: (slope, lo, hi, n).
    NaN where fewer than 3 finite points (or no spread)."""
    from scipy import stats

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log(x[ok]), np.log(y[ok])
    n = lx.size
    if n < 2 or np.ptp(lx) == 0:
        return np.nan, np.nan, np.nan, n
    A = np.column_stack([lx, np.ones(n)])
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    slope = float(coef[0])
    if n < 3:
        return slope, np.nan, np.nan, n
    resid = ly - A @ coef
    s2 = resid @ resid / (n - 2)
    se = np.sqrt(s2 / np.sum((lx - lx.mean()) ** 2))
    t = stats.t.ppf(0.5 + level / 2, n - 2)
    return slope, slope - t * se, slope + t * se, n


THEORY = {  # log-log slope of m* the bounds predict
    ("soft", "eps"): "-1 (m ~ 1/eps)",
    ("soft", "gamma"): "-2 (m ~ gamma^-2)",
    ("hard", "eps"): "~0 (m ~ ln(1/eps): log-log slope -1/ln(1/eps))",
    ("hard", "gamma"): "-4 (m ~ gamma^-4)",
}


def _slopes(mstar: pd.DataFrame, arm_loss: dict) -> pd.DataFrame:
    rows: list[dict] = []
    if mstar.empty:
        return pd.DataFrame(rows)
    for (task, arm, metric), grp in mstar.groupby(["task", "arm", "metric"], sort=False):
        loss = arm_loss.get(arm, "?")
        for g, sub in grp.groupby("gamma", dropna=False):  # m* vs eps at fixed gamma
            s, lo, hi, n = fit_loglog(sub["eps"], sub["m_star"])
            rows.append(
                dict(
                    task=task,
                    arm=arm,
                    metric=metric,
                    versus="eps",
                    fixed=f"gamma={g:.3g}",
                    slope=s,
                    ci_low=lo,
                    ci_high=hi,
                    n_points=n,
                    theory=THEORY.get((loss, "eps")),
                )
            )
        if grp["gamma"].nunique() > 1:
            for e, sub in grp.groupby("eps"):  # m* vs gamma at fixed eps
                s, lo, hi, n = fit_loglog(sub["gamma"], sub["m_star"])
                rows.append(
                    dict(
                        task=task,
                        arm=arm,
                        metric=metric,
                        versus="gamma",
                        fixed=f"eps={e:g}",
                        slope=s,
                        ci_low=lo,
                        ci_high=hi,
                        n_points=n,
                        theory=THEORY.get((loss, "gamma")),
                    )
                )
    return pd.DataFrame(rows)


def _tune_lr(ds, arms, widths, seed, eps_list, n_steps, c, backend, n_threads):
    """Arms with a tuple of step sizes -> the candidate with the lowest mean averaged training error
    (ties: lowest averaged loss) over the widths, one seed, training data only."""
    todo = [a for a in arms if isinstance(a.lr, (tuple, list))]
    if not todo:
        return list(arms)
    pilot = [Arm(f"{a.name}|{lr}", a.loss, a.radius, float(lr)) for a in todo for lr in a.lr]
    cur = train_curves(
        ds["X"],
        ds["y"],
        ds["p"],
        None,
        None,
        None,
        pilot,
        widths,
        (seed,),
        eps_list,
        n_steps,
        ds.get("gamma"),
        c,
        backend,
        n_threads,
    )
    score = cur.groupby("arm")[["avg_error", "avg_loss"]].mean()
    out = []
    for a in arms:
        if a in todo:
            cand = score.loc[[f"{a.name}|{lr}" for lr in a.lr]].sort_values(["avg_error", "avg_loss"])
            a = Arm(a.name, a.loss, a.radius, float(cand.index[0].rsplit("|", 1)[1]))
        out.append(a)
    return out


@dataclass
class ScalingResult:
    """``curves``: one row per trained network (errors, losses, uncovered fractions);
    ``mstar``: m*(eps) per task, gamma, arm and metric (NaN = not reached on the grid);
    ``slopes``: fitted log-log slopes with CIs beside the theory."""

    curves: pd.DataFrame
    mstar: pd.DataFrame
    slopes: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        return self.mstar


def neuron_requirement(
    X,
    y,
    targets=None,
    eps=0.1,
    loss="hard",
    widths=(2, 4, 8, 16, 32, 64, 128),
    seeds=(0, 1, 2),
    lr=4.0,
    n_steps=300,
    radius=None,
    metric="avg_error",
    refine=True,
    X_test=None,
    y_test=None,
    backend="auto",
    n_threads=0,
) -> pd.DataFrame:
    """Smallest width m whose ``metric`` reaches each eps for most seeds.

    Geometric grid first (all widths and seeds in one batched call), then, if
    ``refine``, the even widths between the last failing and the first passing
    grid width. Returns one row per eps: eps, m_star (NaN if not reached), metric.

    Examples
    --------
    >>> from kdcore.distill import make_margin_data
    >>> X, y, p = make_margin_data(200, 10, gamma=0.1, random_state=0)
    >>> neuron_requirement(X, y, eps=0.1, loss="hard", widths=(2, 4), seeds=(0,), n_steps=50).shape[0]
    1
    """
    eps_list = [float(e) for e in np.atleast_1d(eps)]
    arm = Arm(loss, loss, radius, lr)
    p = targets if loss == "soft" else None

    def run(ws):
        return train_curves(
            X,
            y,
            p,
            X_test,
            y_test,
            None,
            [arm],
            ws,
            seeds,
            eps_list,
            n_steps,
            None,
            1.0,
            backend,
            n_threads,
            {"task": "data", "gamma": np.nan},
        )

    curves = run(list(widths))
    ms = _mstar(curves, eps_list, [metric])
    if refine:
        extra = set()
        for m_star in ms["m_star"].dropna():
            lower = [w for w in widths if w < m_star]
            if lower:
                lo = max(lower)
                extra |= {w for w in range(lo + 1, int(m_star)) if w % 2 == 0}
        if extra:
            curves = pd.concat([curves, run(sorted(extra))], ignore_index=True)
            ms = _mstar(curves, eps_list, [metric])
    return ms[["eps", "m_star", "metric", "reached"]].reset_index(drop=True)


def scaling_study(
    datasets: Sequence[dict],
    arms: Sequence[Arm] | None = None,
    widths=(2, 4, 8, 16, 32, 64),
    seeds=(0, 1, 2),
    eps_list=(0.2, 0.1, 0.05, 0.02),
    n_steps=300,
    c=0.5,
    metrics=METRICS,
    backend="auto",
    n_threads=0,
    progress=False,
    checkpoint=None,
    label=None,
    executor=None,
) -> ScalingResult:
    """m*(eps) and m*(gamma) for every arm on every dataset, with fitted slopes.

    ``datasets``: dicts with keys task, gamma, X, y, p (soft labels of the
    teacher), and optionally X_test, y_test, p_test.
    ``label``: constant columns added to every curve row (e.g. ``{"profile": "full"}``).
    ``checkpoint``: a CSV path. Each dataset's curves are appended to it as soon
    as they are done, and datasets already in it (same task, gamma and label)
    are read back instead of trained again: a long study can be stopped and
    resumed, or run on another machine and summarised here.
    ``executor``: a distributed.Client or concurrent.futures.Executor over which every
    train_many of the study spreads its networks (kdcore.distill.executor); same results.
    """
    if executor is not None:
        from .executor import use_executor

        with use_executor(executor):
            args = (widths, seeds, eps_list, n_steps, c, metrics, backend, n_threads, progress, checkpoint, label)
            return scaling_study(datasets, arms, *args)
    import os

    arms = list(arms) if arms is not None else default_arms()
    label = dict(label or {})
    done = None
    if checkpoint is not None and os.path.isfile(checkpoint) and os.path.getsize(checkpoint) > 0:
        done = pd.read_csv(checkpoint)
        for k, v in label.items():
            done = done[done[k] == v]
    frames = []
    it = datasets
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(datasets, desc="scaling study")
    for ds in it:
        gamma = ds.get("gamma", np.nan)
        if done is not None:
            prev = done[
                (done["task"] == ds["task"]) & np.isclose(done["gamma"], gamma, rtol=1e-12, atol=0, equal_nan=True)
            ]
            if len(prev):
                frames.append(prev.reset_index(drop=True))
                continue
        ds_arms = _tune_lr(ds, arms, widths, seeds[0], list(eps_list), n_steps, c, backend, n_threads)
        cur = train_curves(
            ds["X"],
            ds["y"],
            ds["p"],
            ds.get("X_test"),
            ds.get("y_test"),
            ds.get("p_test"),
            ds_arms,
            widths,
            seeds,
            list(eps_list),
            n_steps,
            ds.get("gamma"),
            c,
            backend,
            n_threads,
            {"task": ds["task"], "gamma": gamma},
        )
        for k, v in label.items():
            cur[k] = v
        if checkpoint is not None:
            new_file = not os.path.isfile(checkpoint) or os.path.getsize(checkpoint) == 0
            cur.to_csv(checkpoint, mode="a", header=new_file, index=False)
        frames.append(cur)
    curves = pd.concat(frames, ignore_index=True)
    mstar = _mstar(curves, list(eps_list), metrics)
    slopes = _slopes(mstar, {a.name: a.loss for a in arms})
    return ScalingResult(curves, mstar, slopes)
