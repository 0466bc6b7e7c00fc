"""Synthetic binary tasks for the soft- vs hard-label study (docs/maths.md A.4).

Linear: :func:`make_margin_data` plants a unit direction u with
y_i (u . x_i) >= 2 gamma, so the exact kernel-limit teacher v(z) = u has margin
gamma and logits z_i = u . x_i / 2. Non-linear: noisy XOR / parity, concentric
shells, overlapping classes with label noise; their teacher is a wide trained
network or the sampled kernel-limit field of ``margin_gamma``.
All generators return (X, y, p) or (X, y) with rows of norm in [c, 1].
"""

from __future__ import annotations

import numpy as np

from ._validation import check_positive_int

__all__ = ["make_margin_data", "make_parity", "make_shells", "make_overlap", "make_task"]


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _check_c(c):
    c = float(c)
    if not 0 < c <= 1:
        raise ValueError(f"c must lie in (0, 1], got {c}")
    return c


def _check_frac(v, name):
    v = float(v)
    if not 0 <= v < 0.5:
        raise ValueError(f"{name} must lie in [0, 0.5), got {v}")
    return v


def _unit_orth(rng, n, d, u):
    """n random unit vectors orthogonal to the unit vector u."""
    V = rng.standard_normal((n, d))
    V -= np.outer(V @ u, u)
    return V / np.linalg.norm(V, axis=1, keepdims=True)


def make_margin_data(n, d, gamma, c=0.5, noise=0.0, spread=0.1, random_state=None, return_teacher=False):
    """Linearly separable points with kernel margin ``gamma`` and norms in [c, 1].

    y_i (u . x_i) = 2 gamma + e_i with e_i ~ Exp(mean ``spread`` (1 - 2 gamma)),
    capped by ||x_i||, so most points sit near the margin and gamma sets the
    difficulty. ||x_i|| ~ Unif[max(c, y_i u.x_i), 1]. The exact teacher v(z) = u
    gives z_i = u . x_i / 2 and p_i = sigmoid(z_i) (in [0.38, 0.62]).
    ``noise`` flips that fraction of the labels y (p stays the clean teacher's),
    which breaks the margin for those points.

    Returns X (n, d), y (n,) in {-1,+1}, p (n,) and, with ``return_teacher``, u (d,).

    Examples
    --------
    >>> X, y, p = make_margin_data(100, 10, gamma=0.05, random_state=0)
    >>> bool(((p > 0.5) == (y > 0)).all())
    True
    """
    n = check_positive_int(n, "n")
    d = check_positive_int(d, "d", minimum=2)
    gamma = float(gamma)
    if not 0 < gamma <= 0.5:
        raise ValueError(f"gamma must lie in (0, 0.5] (linear margin 2 gamma <= 1), got {gamma}")
    c = _check_c(c)
    noise = _check_frac(noise, "noise")
    rng = np.random.default_rng(random_state)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    y = rng.choice(np.array([-1.0, 1.0]), size=n)
    g = 2.0 * gamma
    t = np.minimum(g + rng.exponential(spread * (1.0 - g) + 1e-12, size=n), 1.0)
    r = rng.uniform(np.maximum(c, t), 1.0)
    V = _unit_orth(rng, n, d, u)
    X = (y * t)[:, None] * u[None, :] + np.sqrt(np.maximum(r**2 - t**2, 0.0))[:, None] * V
    p = _sigmoid(X @ u / 2.0)
    if noise > 0:
        flip = rng.random(n) < noise
        y = np.where(flip, -y, y)
    return (X, y, p, u) if return_teacher else (X, y, p)


def make_parity(n, d, k=2, noise=0.1, label_noise=0.0, c=0.5, random_state=None):
    """Noisy k-sparse parity (k = 2 is XOR) on the first k coordinates.

    x = (s + noise * N(0, I_d)) rescaled to norm in [c, 1], s_j in {-1,+1} for
    j < k and 0 elsewhere... plus isotropic noise; y = prod_{j<k} s_j, flipped
    with probability ``label_noise``. Difficulty knobs: ``noise``, ``k``, ``d``.
    Returns X, y.
    """
    n = check_positive_int(n, "n")
    d = check_positive_int(d, "d", minimum=2)
    k = check_positive_int(k, "k")
    if k > d:
        raise ValueError(f"k = {k} exceeds d = {d}")
    c = _check_c(c)
    label_noise = _check_frac(label_noise, "label_noise")
    rng = np.random.default_rng(random_state)
    S = rng.choice(np.array([-1.0, 1.0]), size=(n, k))
    Z = np.zeros((n, d))
    Z[:, :k] = S / np.sqrt(k)
    Z += float(noise) * rng.standard_normal((n, d)) / np.sqrt(d)
    y = np.prod(S, axis=1)
    X = _rescale(Z, c, rng)
    y = np.where(rng.random(n) < label_noise, -y, y)
    return X, y


def make_shells(n, d, gap=0.2, label_noise=0.0, c=0.3, offset=0.5, random_state=None):
    """Two concentric shells in the first d - 1 coordinates: y = -1 at radius c,
    y = +1 at radius c + gap; the last coordinate is the constant ``offset``
    (a bias input: the network is positively homogeneous, so without it the
    sign of f could not depend on the radius). A smaller ``gap`` is harder.
    Needs (c + gap)^2 + offset^2 <= 1. Returns X, y."""
    n = check_positive_int(n, "n")
    d = check_positive_int(d, "d", minimum=3)
    c = _check_c(c)
    gap = float(gap)
    offset = float(offset)
    if not 0 <= offset < 1:
        raise ValueError(f"offset must lie in [0, 1), got {offset}")
    top = float(np.sqrt(1 - offset**2))
    if not 0 < gap <= top - c:
        raise ValueError(f"gap must lie in (0, sqrt(1 - offset^2) - c] = (0, {top - c:.3g}], got {gap}")
    label_noise = _check_frac(label_noise, "label_noise")
    rng = np.random.default_rng(random_state)
    y = rng.choice(np.array([-1.0, 1.0]), size=n)
    D = rng.standard_normal((n, d - 1))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    r = np.where(y > 0, c + gap, c)
    X = np.column_stack([D * r[:, None], np.full(n, offset)])
    y = np.where(rng.random(n) < label_noise, -y, y)
    return X, y


def make_overlap(n, d, separation=1.0, label_noise=0.1, c=0.3, random_state=None):
    """Two Gaussian classes N(+-separation e_1 / 2, I/d) rescaled to norms in
    [c, 1], labels flipped with probability ``label_noise``; smaller
    ``separation`` means more overlap. Returns X, y."""
    n = check_positive_int(n, "n")
    d = check_positive_int(d, "d", minimum=2)
    c = _check_c(c)
    label_noise = _check_frac(label_noise, "label_noise")
    rng = np.random.default_rng(random_state)
    y = rng.choice(np.array([-1.0, 1.0]), size=n)
    Z = rng.standard_normal((n, d)) / np.sqrt(d)
    Z[:, 0] += y * float(separation) / 2.0
    X = _rescale(Z, c, rng)
    y = np.where(rng.random(n) < label_noise, -y, y)
    return X, y


def _rescale(Z, c, rng):
    """Rows mapped into the shell c <= ||x|| <= 1 (direction kept)."""
    nz = np.linalg.norm(Z, axis=1, keepdims=True)
    nz = np.where(nz > 0, nz, 1.0)
    top = np.quantile(nz, 0.99)
    r = np.clip(nz / top, c, 1.0)
    return Z / nz * r


def make_task(name, n, d, random_state=None, **kw):
    """Dispatch by name: "margin", "xor", "parity", "shells", "overlap". Returns X, y."""
    if name == "margin":
        X, y, _ = make_margin_data(n, d, random_state=random_state, **kw)
        return X, y
    if name == "xor":
        return make_parity(n, d, k=2, random_state=random_state, **kw)
    if name == "parity":
        return make_parity(n, d, random_state=random_state, **kw)
    if name == "shells":
        return make_shells(n, d, random_state=random_state, **kw)
    if name == "overlap":
        return make_overlap(n, d, random_state=random_state, **kw)
    raise ValueError(f"unknown task {name!r}; choose margin, xor, parity, shells or overlap")
