"""Readable numpy twin of the compiled two-layer projected-GD step (the test
oracle and the ``numpy`` benchmark baseline). docs/maths.md A.1-A.3.

One step for one network (m neurons, fixed signs a, centre W0, radius B):
  h_ij = W_j . x_i,   f_i = (1/sqrt(m)) sum_j a_j relu(h_ij)   (in float64, summed over the pairs (j, j+m/2))
  soft: l_i = KL(p_i || sigmoid(f_i)),  dl/df = sigmoid(f_i) - p_i
  hard: l_i = ln(1 + exp(-y_i f_i)),    dl/df = -y_i sigmoid(-y_i f_i)
  grad_j = (1/n) sum_i dl_i/df (a_j/sqrt(m)) 1(h_ij > 0) x_i
  W_j <- W_j - lr grad_j, then W_j <- W0_j + (W_j - W0_j) min(1, (B/sqrt(m)) / ||W_j - W0_j||)
Loss and error (1(y_i f_i <= 0)) are those of W before the update.
Rows i >= n_train are evaluation rows: they enter the loss/error of the
evaluation set and never the gradient.
"""

from __future__ import annotations

import numpy as np


def softplus(z):
    """ln(1 + e^z) without overflow: max(z, 0) + ln(1 + e^-|z|)."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def pointwise_loss(f, target, loss):
    """Per-sample loss (float64) and dl/df."""
    f = f.astype(np.float64)
    t = np.asarray(target, dtype=np.float64)
    if loss == "soft":
        # KL(p || s) = p ln p + (1-p) ln(1-p) + p softplus(-f) + (1-p) softplus(f)
        ent = np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0) + np.where(
            t < 1, (1 - t) * np.log(np.where(t < 1, 1 - t, 1.0)), 0.0
        )
        return ent + t * softplus(-f) + (1 - t) * softplus(f), sigmoid(f) - t
    return softplus(-t * f), -t * sigmoid(-t * f)


def forward(X, W, a):
    """H = X W^T (in X's dtype) and f (float64), f summed over the pairs (j, j + m/2)
    so that it is exactly 0 at the symmetric initialisation."""
    m = W.shape[0]
    H = X @ W.T  # (n, m)
    R = np.maximum(H, 0).astype(np.float64) * (a.astype(np.float64) / np.sqrt(m))
    h = m // 2
    f = (R[:, :h] + R[:, h : 2 * h]).sum(axis=1) + (R[:, -1] if m % 2 else 0.0)
    return H, f


def step(X, W, W0, a, target, y, loss, lr, radius=None, n_train=None, update=True):
    """One projected-GD step; returns (W_new, train_loss, train_err, eval_loss, eval_err).

    X (n, d), W/W0 (m, d), a (m,), target (n,) soft p or hard y, y (n,) labels in
    {-1,+1} for the error. Computed in X's dtype (float32 or float64); losses in float64.
    """
    n = X.shape[0]
    n_train = n if n_train is None else n_train
    m = W.shape[0]
    dt = X.dtype
    scale = dt.type(1.0 / np.sqrt(m))
    H, f = forward(X, W, a)
    li, g = pointwise_loss(f, target, loss)
    err = (y * f.astype(np.float64) <= 0).astype(np.float64)
    tr, ev = slice(0, n_train), slice(n_train, n)
    out = [float(li[tr].mean()), float(err[tr].mean())]
    out += [float(li[ev].mean()), float(err[ev].mean())] if n > n_train else [np.nan, np.nan]
    if not update:
        return (W, *out)
    c = (g[tr] / n_train).astype(dt)  # dl_i/df / n
    G = (c[:, None] * (H[tr] > 0)) * (a * scale)  # (n_train, m)
    grad = G.T @ X[tr]  # (m, d)
    W_new = W - dt.type(lr) * grad
    if radius is not None:
        D = W_new - W0
        norm = np.sqrt(np.einsum("jk,jk->j", D, D))
        bound = radius / np.sqrt(m)
        shrink = np.where(norm > bound, bound / np.where(norm > 0, norm, 1), 1.0).astype(dt)
        W_new = W0 + D * shrink[:, None]
    return (W_new.astype(dt), *out)


def train(X, W, W0, a, target, y, loss, lr, n_steps, radius=None, n_train=None):
    """n_steps steps; per-step (loss, err, eval_loss, eval_err) before each update, then the final values."""
    hist = np.empty((n_steps, 4))
    for t in range(n_steps):
        W, *vals = step(X, W, W0, a, target, y, loss, lr, radius, n_train)
        hist[t] = vals
    _, *final = step(X, W, W0, a, target, y, loss, lr, radius, n_train, update=False)
    return W, hist, np.array(final)
