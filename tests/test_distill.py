"""Teachers, the kernel margin gamma, the theorems' bounds and the synthetic tasks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from _tol import BOUND_SLACK, BOUND_SLACK_REL, MARGIN_UPPER, MC_NTK, QP_OPTIMUM, QP_VS_GRID, SLOPE
from kdcore.distill import (
    KernelLimitTeacher,
    TwoLayerReLU,
    bounds,
    make_margin_data,
    make_overlap,
    make_parity,
    make_shells,
    margin_gamma,
    ntk_gram,
    soft_labels,
    teacher_logits,
)


# ---------------------------------------------------------------- NTK and gamma
def test_ntk_gram_matches_monte_carlo(rng):
    X = rng.standard_normal((4, 3))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Z = rng.standard_normal((200000, 3))
    A = (Z @ X.T > 0).astype(float)
    mc = (A.T @ A / Z.shape[0]) * (X @ X.T)
    np.testing.assert_allclose(ntk_gram(X), mc, atol=MC_NTK)
    np.testing.assert_allclose(np.diag(ntk_gram(X)), 0.5)


def _tiny_problem():
    ang = np.array([0.3, 1.2, 2.0, 2.9])
    X = np.column_stack([np.cos(ang), np.sin(ang)]) * np.array([1.0, 0.8, 0.9, 0.7])[:, None]
    y = np.array([1.0, 1.0, -1.0, -1.0])
    return X, y


def _simplex_grid(n, step):
    k = int(round(1 / step))
    for idx in np.ndindex(*(k + 1,) * (n - 1)):
        if sum(idx) <= k:
            yield np.array([*idx, k - sum(idx)]) / k


def test_gamma2_equals_brute_force_on_tiny_data():
    X, y = _tiny_problem()
    Q = np.outer(y, y) * ntk_gram(X)
    brute = min(math.sqrt(max(q @ Q @ q, 0)) for q in _simplex_grid(4, 0.02))
    got = margin_gamma(X, y, method="l2")
    assert got.gamma <= brute + BOUND_SLACK  # the QP is at least as good as the grid
    assert got.gamma == pytest.approx(brute, abs=QP_VS_GRID)
    assert got.q.min() >= 0 and got.q.sum() == pytest.approx(1.0)


def test_sampled_sandwich_brackets_brute_force_gamma():
    """In 2-d, E_z ||g_q(z)|| is an average over the direction angle: exact by quadrature."""
    X, y = _tiny_problem()
    th = np.linspace(0, 2 * np.pi, 3600, endpoint=False)
    Zd = np.column_stack([np.cos(th), np.sin(th)])
    A = (Zd @ X.T > 0).astype(float)
    Yx = y[:, None] * X
    gamma = min(np.linalg.norm((A * q) @ Yx, axis=1).mean() for q in _simplex_grid(4, 0.02))
    r = margin_gamma(X, y, method="sampled", n_iter=300, batch=128, n_eval=10000, random_state=0)
    g2 = margin_gamma(X, y, method="l2").gamma
    assert r.lower <= gamma + 0.01
    assert r.upper >= gamma - 0.01
    assert r.upper == pytest.approx(gamma, abs=MARGIN_UPPER)
    assert g2 >= r.lower
    assert g2 >= gamma - BOUND_SLACK_REL  # Jensen: gamma_2 >= gamma


def test_field_logits_are_bounded_and_separate_margin_data():
    X, y, p = make_margin_data(150, 6, gamma=0.1, random_state=0)
    r = margin_gamma(X, y, method="sampled", n_iter=100, random_state=1)
    z = teacher_logits(r, X, n_samples=2000, random_state=2)
    assert np.all(np.abs(z) <= 1.0)
    assert np.mean(np.sign(z) == y) > 0.95
    assert margin_gamma(X, y, method="l2").gamma >= r.lower


def test_kernel_limit_teacher_is_exact_on_margin_data():
    X, y, p, u = make_margin_data(300, 8, gamma=0.07, random_state=5, return_teacher=True)
    t = KernelLimitTeacher(u=u).fit(X, y)
    assert t.gamma_ == pytest.approx(0.07, abs=BOUND_SLACK_REL) or t.gamma_ > 0.07  # min_i y_i u.x_i >= 2 gamma
    np.testing.assert_allclose(t.decision_function(X), X @ u / 2)
    np.testing.assert_allclose(soft_labels(teacher_logits(t, X)), p)
    assert np.all((p > 0.37) & (p < 0.63))
    t2 = KernelLimitTeacher().fit(X, y)  # max-margin direction: margin at least u's
    assert t2.gamma_ >= t.gamma_ - QP_OPTIMUM
    with pytest.raises(ValueError, match="not linearly separable|does not separate"):
        KernelLimitTeacher().fit(np.array([[1.0, 0], [1.0, 0]]), np.array([1, -1]))


def test_margin_gamma_bad_input():
    X, y = _tiny_problem()
    with pytest.raises(ValueError, match="method"):
        margin_gamma(X, y, method="exact")
    with pytest.raises(ValueError, match=r"\{-1, \+1\}"):
        margin_gamma(X, np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="zero-norm"):
        margin_gamma(np.vstack([X, [0, 0]]), np.append(y, 1))


def test_mnist_hard_pair_has_smaller_gamma(data_home):
    from kdcore.distill.datasets import mnist_pair

    g = {}
    for a, b in ((0, 1), (3, 5)):
        X, y = mnist_pair(a, b, n=600, data_home=data_home)
        np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0)
        g[(a, b)] = margin_gamma(X, y).gamma
    assert g[(3, 5)] < g[(0, 1)]


# ---------------------------------------------------------------- bounds (hand-computed)
def test_theorem2_by_hand():
    # beta = 0.1, n = 100, c = 1, delta = 0.05: bracket = sqrt(2/pi) + 3 sqrt(ln 4000)
    bracket = 0.7978845608028654 + 3 * 2.8799201525656157
    C1 = 96 / (1 + 7.38905609893065)
    r = bounds.theorem2_soft(0.1, 100, 1.0, 0.05)
    assert r.m == math.ceil(C1 / 0.1 * bracket**2)
    assert r.m == 10193 and r.T == 900 and r.eta == pytest.approx(0.1 / 3) and r.B == 1.0


def test_corollary4_is_theorem2_at_beta_gamma2_eps_over_32():
    r = bounds.corollary4_soft_error(0.1, 0.1, 1000, 0.5)
    beta = 0.1**2 * 0.1 / 32
    assert r == bounds.theorem2_soft(beta, 1000, 0.5)
    assert r.eta == pytest.approx(0.1**2 * 0.1 / 96)
    assert r.T == math.ceil(9 * 32**2 / (0.1**4 * 0.1**2))  # 9.216e9: the factor 32^2 the paper left out
    assert r.m == math.ceil(
        bounds.C2 / (0.1**2 * 0.1) * (math.sqrt(2 / math.pi) / 0.5 + 3 * math.sqrt(math.log(2000 / 0.05))) ** 2
    )


def test_proposition5_by_hand():
    # gamma = 0.5, beta = 2 / (ln2 e) so that L = ln(2 / (ln2 beta)) = 1
    beta = 2 / (math.log(2) * math.e)
    r = bounds.proposition5_hard(0.5, 10, 1.0, 0.05, beta=beta, eta=0.5)
    assert r.B == pytest.approx(4.0)
    assert r.T == math.ceil(8 / (0.25 * 0.5) * 1 / (math.log(2) * beta))  # = ceil(64 e / 2) = ceil(86.97)
    assert r.T == 87
    bracket = 2 * math.sqrt(2) / math.sqrt(math.pi) + 3 * math.sqrt(math.log(400))
    assert r.m == math.ceil(16 / 0.0625 * bracket**2)
    e = bounds.proposition5_hard(0.1, 100, 0.5, eps=0.05)
    assert e == bounds.proposition5_hard(0.1, 100, 0.5, beta=0.05 * math.log(2))
    with pytest.raises(ValueError, match="exactly one"):
        bounds.proposition5_hard(0.1, 100, 0.5)
    with pytest.raises(ValueError, match="gamma"):
        bounds.corollary4_soft_error(-1, 0.1, 10, 0.5)


# ---------------------------------------------------------------- data
def test_margin_data_has_the_planted_margin():
    X, y, p, u = make_margin_data(500, 20, gamma=0.05, c=0.4, random_state=0, return_teacher=True)
    nrm = np.linalg.norm(X, axis=1)
    assert nrm.min() >= 0.4 - BOUND_SLACK and nrm.max() <= 1 + BOUND_SLACK
    marg = y * (X @ u)
    assert marg.min() >= 0.1 - BOUND_SLACK
    assert np.median(marg) < 0.1 + 0.2  # most points near the margin
    Xn, yn, _ = make_margin_data(2000, 5, gamma=0.05, noise=0.2, random_state=0)
    assert (
        0.15
        < np.mean(yn * (Xn @ make_margin_data(2000, 5, gamma=0.05, random_state=0, return_teacher=True)[3]) < 0)
        < 0.25
    )


@pytest.mark.parametrize("gen", [make_parity, make_shells, make_overlap])
def test_nonlinear_tasks_shapes_and_norms(gen):
    X, y = gen(300, 10, random_state=0)
    nrm = np.linalg.norm(X, axis=1)
    assert X.shape == (300, 10) and set(np.unique(y)) <= {-1.0, 1.0}
    assert nrm.min() > 0 and nrm.max() <= 1 + BOUND_SLACK


def test_data_bad_input():
    with pytest.raises(ValueError, match="gamma"):
        make_margin_data(10, 5, gamma=0.7)
    with pytest.raises(ValueError, match="exceeds"):
        make_parity(10, 3, k=4)
    with pytest.raises(ValueError, match="gap"):
        make_shells(10, 3, gap=0.9, c=0.5)


def test_teacher_logits_of_a_network_and_bad_teacher():
    X, y, p = make_margin_data(50, 4, gamma=0.1, random_state=0)
    net = TwoLayerReLU(4, 4, init="random", random_state=0)
    np.testing.assert_allclose(teacher_logits(net, X), net.decision_function(X))
    with pytest.raises(TypeError, match="teacher"):
        teacher_logits("svm", X)


# ---------------------------------------------------------------- scaling machinery (mechanics only)
def test_fit_loglog_recovers_a_planted_power_law():
    from kdcore.distill import fit_loglog

    x = np.array([0.2, 0.1, 0.05, 0.02])
    s, lo, hi, n = fit_loglog(x, 3.0 * x**-1.5 * np.array([1.01, 0.99, 1.02, 0.98]))
    assert n == 4 and lo < -1.5 < hi and s == pytest.approx(-1.5, abs=SLOPE)
    assert np.isnan(fit_loglog([0.1, 0.1], [1, 2])[0])


def test_neuron_requirement_is_monotone_in_eps():
    from kdcore.distill import neuron_requirement

    X, y, p = make_margin_data(150, 6, gamma=0.1, random_state=0)
    t = neuron_requirement(
        X, y, p, eps=[0.3, 0.01], loss="soft", radius=1.0, widths=(2, 4, 8), seeds=(0, 1), n_steps=40, backend="numpy"
    )
    assert list(t["eps"]) == [0.3, 0.01]
    a, b = t["m_star"]
    assert np.isnan(b) or a <= b


def test_soft_vs_hard_tiny_profile_runs_and_plots(tmp_path):
    from kdcore.experiments.scaling import plot_soft_vs_hard, soft_vs_hard, where_soft_wins

    r = soft_vs_hard("tiny")
    assert {"arm", "m", "seed", "avg_error", "final_test_error", "uncovered_init"} <= set(r.curves.columns)
    assert set(r.curves["arm"]) == {"soft B=1", "soft B=4", "hard B=Prop5", "hard unprojected"}
    assert r.curves["uncovered_init"].between(0, 1).all()
    assert r.curves["lr"].isin([1.0, 4.0]).all()  # the tuned step is one of the profile's candidates
    assert r.curves.groupby(["task", "gamma", "arm"])["lr"].nunique().max() == 1
    assert {"slope", "ci_low", "ci_high", "theory"} <= set(r.slopes.columns)
    w = where_soft_wins(r)
    assert set(w["verdict"]) <= {"soft fewer", "hard fewer", "equal", "neither reached"}
    plot_soft_vs_hard(r, path=tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 0
    with pytest.raises(ValueError, match="profile"):
        soft_vs_hard("huge")


def test_soft_vs_hard_checkpoint_resumes(tmp_path):
    """Curves appended per dataset; a rerun reads them back and gives the same m* and slopes."""
    from kdcore.experiments.scaling import make_datasets, soft_vs_hard

    ck = tmp_path / "curves.csv"
    a = soft_vs_hard("tiny", checkpoint=ck)
    n_data = len(make_datasets("tiny"))
    saved = pd.read_csv(ck)
    assert saved.groupby(["task", "gamma"]).ngroups == n_data and len(saved) == len(a.curves)
    # drop the last dataset: the rerun trains it again and only it
    last = saved[["task", "gamma"]].iloc[-1]
    saved[~((saved["task"] == last["task"]) & (saved["gamma"] == last["gamma"]))].to_csv(ck, index=False)
    b = soft_vs_hard("tiny", checkpoint=ck)
    assert len(pd.read_csv(ck)) == len(a.curves)
    pd.testing.assert_frame_equal(a.mstar, b.mstar, check_dtype=False)
    pd.testing.assert_frame_equal(a.slopes, b.slopes, check_dtype=False)


@pytest.mark.slow
def test_soft_vs_hard_full_profile(tmp_path):
    """The study's full protocol (n = 1000, d = 20, 1000 steps, 5 seeds, widths to 256): hours on 2 cores."""
    from kdcore.experiments.scaling import CONFIGS, plot_soft_vs_hard, soft_vs_hard

    r = soft_vs_hard("full")
    P = CONFIGS["full"]
    assert set(r.curves["m"]) == set(P["widths"]) and set(r.curves["seed"]) == set(P["seeds"])
    plot_soft_vs_hard(r, path=tmp_path / "full.png")


# ---------------------------------------------------------------- layout
def test_library_imports_no_experiment_module_and_no_matplotlib():
    """`import kdcore.distill` / `kdcore.crowd` load the library alone: no experiment, no plotting."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import kdcore

    env = {**os.environ, "PYTHONPATH": str(Path(kdcore.__file__).resolve().parent.parent)}  # this tree's kdcore
    code = (
        "import sys, kdcore.distill, kdcore.crowd, kdcore.distill.vgg, kdcore.distill.datasets; "
        "print(sorted(m for m in sys.modules if m.startswith(('kdcore.experiments', 'matplotlib', 'torch'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "[]"
