"""Experiments of the soft- vs hard-label study (tables + figures for the report).

``soft_vs_hard(profile)``: the measured (not assumed) neuron requirement. For soft
labels (B = 1 and a larger B) and hard labels (B from Proposition 5, and
unprojected): iteration-averaged and final training and test error against m,
gamma and eps; m*(eps) per arm with fitted log-log slopes beside the theory
(soft ~ gamma^-2 eps^-1, hard ~ gamma^-4 ln(1/eps)); the fraction of points no
neuron covers at initialisation; on linear margin data (exact teacher
z = u.x/2) and on non-linear tasks (teacher: the kernel-limit field of
``margin_gamma``); and :func:`where_soft_wins`, a plain statement of where,
if anywhere, soft labels needed fewer neurons.

Profiles: "tiny" (seconds, used in the tests), "quick" (about 90 s on 2 cores,
the report), "full" (the study's protocol: n = 1000, d = 20, 1000 steps,
5 seeds; slow). Every setting is fixed before looking at results; seeded. Step sizes
are tuned per arm and dataset on a small grid by the averaged training error (pilot
run, first seed), the same budget for every arm.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..distill import (
    Arm,
    ScalingResult,
    make_margin_data,
    make_overlap,
    make_parity,
    make_shells,
    margin_gamma,
    scaling_study,
    soft_labels,
    teacher_logits,
)
from ..distill.datasets import mnist_pair
from .paper import MNIST_GAMMA
from .profiles import check_profile

__all__ = ["CONFIGS", "make_datasets", "soft_vs_hard", "where_soft_wins", "plot_soft_vs_hard", "mnist_gamma_check"]

#: The study's sizes for each profile (:data:`kdcore.experiments.profiles.PROFILES`).
CONFIGS = {
    "tiny": dict(
        n=150,
        n_test=150,
        d=8,
        gammas=(0.05, 0.1),
        widths=(2, 4, 8),
        seeds=(0, 1),
        n_steps=60,
        eps=(0.2, 0.1),
        nonlinear=("xor",),
        lr=(1.0, 4.0),
        big_B=4.0,
    ),
    "quick": dict(
        n=600,
        n_test=600,
        d=20,
        gammas=(0.025, 0.05, 0.1),
        widths=(2, 4, 8, 16, 32),
        seeds=(0, 1, 2),
        n_steps=300,
        eps=(0.2, 0.1, 0.05, 0.02),
        nonlinear=("xor", "shells", "overlap"),
        lr=(1.0, 4.0, 16.0),
        big_B=4.0,
    ),
    "full": dict(
        n=1000,
        n_test=2000,
        d=20,
        gammas=(0.0125, 0.025, 0.05, 0.1, 0.2),
        widths=(2, 4, 8, 16, 32, 64, 128, 256),
        seeds=(0, 1, 2, 3, 4),
        n_steps=1000,
        eps=(0.2, 0.1, 0.05, 0.02, 0.01),
        nonlinear=("xor", "parity3", "shells", "overlap"),
        lr=(0.5, 2.0, 8.0, 32.0),
        big_B=4.0,
    ),
}


def _profile(profile):
    return CONFIGS[check_profile(profile)]


def make_datasets(profile: str = "tiny", random_state: int = 0) -> list[dict]:
    """The datasets of the study: linear margin data at each gamma (exact teacher)
    and the non-linear tasks (teacher: kernel-limit field at the QP's q; gamma = gamma_2)."""
    P = _profile(profile)
    n, nt, d = P["n"], P["n_test"], P["d"]
    out = []
    for i, g in enumerate(P["gammas"]):
        X, y, p, u = make_margin_data(n + nt, d, gamma=g, random_state=random_state + i, return_teacher=True)
        out.append(dict(task="linear", gamma=g, X=X[:n], y=y[:n], p=p[:n], X_test=X[n:], y_test=y[n:], p_test=p[n:]))
    gens = {
        "xor": lambda s: make_parity(n + nt, d, k=2, noise=0.3, random_state=s),
        "parity3": lambda s: make_parity(n + nt, d, k=3, noise=0.3, random_state=s),
        "shells": lambda s: make_shells(n + nt, d, gap=0.3, random_state=s),
        "overlap": lambda s: make_overlap(n + nt, d, separation=1.0, label_noise=0.1, random_state=s),
    }
    for j, name in enumerate(P["nonlinear"]):
        X, y = gens[name](random_state + 100 + j)
        r = margin_gamma(X[:n], y[:n], method="l2")
        z = teacher_logits(r.field, X, n_samples=2000, random_state=random_state + 200 + j)
        p = soft_labels(z)
        out.append(dict(task=name, gamma=r.gamma, X=X[:n], y=y[:n], p=p[:n], X_test=X[n:], y_test=y[n:], p_test=p[n:]))
    return out


def soft_vs_hard(
    profile: str = "tiny",
    backend: str = "auto",
    n_threads: int = 0,
    random_state: int = 0,
    progress: bool = False,
    checkpoint=None,
) -> ScalingResult:
    """Run the study; returns a ScalingResult (curves, mstar, slopes DataFrames).

    ``checkpoint``: a CSV path (see :func:`scaling_study`): each dataset's
    curves are appended as they are done and read back on a rerun of the same
    profile, so a long profile ("full") can be stopped and resumed, or run on
    another machine and summarised here.
    """
    P = _profile(profile)
    arms = [
        Arm("soft B=1", "soft", 1.0, P["lr"]),
        Arm(f"soft B={P['big_B']:g}", "soft", P["big_B"], P["lr"]),
        Arm("hard B=Prop5", "hard", "prop5", P["lr"]),
        Arm("hard unprojected", "hard", None, P["lr"]),
    ]
    data = make_datasets(profile, random_state)
    return scaling_study(
        data,
        arms,
        widths=P["widths"],
        seeds=P["seeds"],
        eps_list=P["eps"],
        n_steps=P["n_steps"],
        c=0.5,
        backend=backend,
        n_threads=n_threads,
        progress=progress,
        checkpoint=checkpoint,
        label={"profile": profile},
    )


def where_soft_wins(result: ScalingResult, metric: str = "avg_error") -> pd.DataFrame:
    """Per task, gamma and eps: the best soft arm's m* beside the best hard arm's m*
    and a plain verdict ("soft fewer", "hard fewer", "equal", "neither reached", ...)."""
    ms = result.mstar[result.mstar["metric"] == metric].copy()
    ms["side"] = np.where(ms["arm"].str.startswith("soft"), "soft", "hard")
    rows = []
    for (task, g, e), grp in ms.groupby(["task", "gamma", "eps"], sort=False):
        best = {s: grp.loc[grp["side"] == s, "m_star"].min() for s in ("soft", "hard")}
        s, h = best["soft"], best["hard"]
        if np.isnan(s) and np.isnan(h):
            verdict = "neither reached"
        elif np.isnan(h) or (not np.isnan(s) and s < h):
            verdict = "soft fewer"
        elif np.isnan(s) or h < s:
            verdict = "hard fewer"
        else:
            verdict = "equal"
        rows.append(dict(task=task, gamma=g, eps=e, metric=metric, m_star_soft=s, m_star_hard=h, verdict=verdict))
    return pd.DataFrame(rows)


def plot_soft_vs_hard(result: ScalingResult, metric: str = "avg_error", path=None):
    """The study's figure as small multiples.

    Top rows: the neuron requirement m*(eps) (log-log), one panel per task and margin gamma, one
    colour per arm (soft B=1 and B=4 blue, hard red/orange), hollow markers at the top for
    "not reached on the width grid", and the theory's soft slope -1 in eps drawn dotted through
    the soft arm's first point. Bottom row: training error vs width (linear error axis from 0,
    the 0.5 chance line), one panel per task. One legend below the panels."""
    from . import plotting

    ms = result.mstar[result.mstar["metric"] == metric]
    cur = result.curves
    tasks = list(dict.fromkeys(cur["task"]))
    combos = [(t, g) for t in tasks for g in sorted(ms.loc[ms["task"] == t, "gamma"].unique())]
    ncol = max(len(tasks), min(4, len(combos)))
    n_top = -(-len(combos) // ncol)
    plt = plotting._plt()
    fig, axes = plt.subplots(n_top + 1, ncol, figsize=(3.1 * ncol, 2.7 * (n_top + 1)), squeeze=False)
    arms = list(dict.fromkeys(cur["arm"]))
    widths = sorted(cur["m"].unique())
    m_top = 2 * max(widths)  # where "not reached" is drawn
    eps_all = sorted(ms["eps"].unique())
    dashed = {a: (i % 2 == 1) for i, a in enumerate(sorted(arms))}  # soft B=4 / hard unprojected dashed
    for k, (task, g) in enumerate(combos):
        ax = axes[k // ncol, k % ncol]
        sub = ms[(ms["task"] == task) & (ms["gamma"] == g)]
        for arm in arms:
            a = sub[sub["arm"] == arm].sort_values("eps")
            if a.empty:
                continue
            c = plotting.color(arm)
            reached = a["reached"].astype(bool).to_numpy() & np.isfinite(a["m_star"].to_numpy(float))
            y = np.where(reached, a["m_star"].to_numpy(float), m_top)
            ls = "--" if dashed[arm] else "-"
            ax.plot(a["eps"], y, ls, color=c, lw=1.4, label=arm)
            ax.plot(a["eps"][reached], y[reached], "o", color=c, ms=4 if dashed[arm] else 6)
            ax.plot(a["eps"][~reached], y[~reached], "^", color=c, mfc="none", ms=7)
        soft = sub[sub["arm"].str.startswith("soft") & sub["reached"].astype(bool)].sort_values("eps")
        if len(soft):
            e0, m0 = float(soft["eps"].iloc[0]), float(soft["m_star"].iloc[0])
            e = np.array(eps_all)
            ax.plot(e, m0 * e0 / e, "-.", color="#000000", lw=0.9, label="theory, soft: m* ~ 1/eps")
        ax.set_xscale("log")
        ax.set_yscale("log", base=2)
        ax.set_ylim(min(widths) / 1.4, m_top * 1.5)
        plotting.log_ticks(ax, x=eps_all, y=widths + [m_top])
        ax.set_yticklabels([f"{w:g}" for w in widths] + ["not\nreached"])
        ax.invert_xaxis()  # smaller target error to the right: harder
        ax.set_title(f"{task}, gamma = {g:.3g}", fontsize=9)
        ax.set_xlabel("target training error eps", fontsize=8)
        if k % ncol == 0:
            ax.set_ylabel("neurons needed m*", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    for k in range(len(combos), n_top * ncol):
        axes[k // ncol, k % ncol].axis("off")
    for col in range(ncol):
        ax = axes[n_top, col]
        if col >= len(tasks):
            ax.axis("off")
            continue
        task = tasks[col]
        c_t = cur[cur["task"] == task]
        for arm in arms:
            grp = c_t[c_t["arm"] == arm]
            if grp.empty:
                continue
            mean = grp.groupby("m")[metric].mean()
            ax.plot(
                mean.index,
                mean.to_numpy(),
                "--" if dashed[arm] else "-",
                marker="o",
                ms=3,
                color=plotting.color(arm),
                label=arm,
            )
        plotting.chance_line(ax, 0.5, label="chance (error 0.5)")
        ax.set_xscale("log", base=2)
        plotting.log_ticks(ax, x=widths)
        ax.set_ylim(0, max(0.55, 1.05 * float(c_t.groupby(["arm", "m"])[metric].mean().max())))
        ax.set_title(f"{task}: error vs width", fontsize=9)
        ax.set_xlabel("student width m", fontsize=8)
        if col == 0:
            ax.set_ylabel("training error\n(mean over seeds, gammas)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    fig.suptitle(
        f"Neurons needed to reach training error eps ({metric.replace('_', ' ')}), soft vs hard labels", fontsize=10
    )
    plotting.legend_below(fig, list(axes.ravel()), ncol=6)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def mnist_gamma_check(data_home, pairs=((0, 1), (3, 5), (4, 9)), n: int = 600, random_state: int = 0) -> pd.DataFrame:
    """gamma_2 (QP on the closed-form NTK Gram) on n centred, unit-norm MNIST
    training images per pair, beside the paper's sampled gamma (docs/maths.md A.4)."""
    rows = []
    for a, b in pairs:
        X, y = mnist_pair(a, b, n=n, random_state=random_state, data_home=data_home)
        rows.append(
            dict(pair=f"{a}-vs-{b}", n=n, gamma_2=margin_gamma(X, y).gamma, paper_gamma=MNIST_GAMMA.get((a, b)))
        )
    return pd.DataFrame(rows)
