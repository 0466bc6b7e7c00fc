"""Teachers and the kernel margin gamma (docs/maths.md A.4).

* :func:`ntk_gram`: K(x, x') = (x . x') (pi - theta) / (2 pi) = E_z[1(z.x>0) 1(z.x'>0)] x . x'.
* :func:`margin_gamma`: gamma = min_{q in simplex} E_z || sum_i q_i y_i x_i 1(z . x_i > 0) ||.
  ``method="l2"``: the relaxation gamma_2 = min_q sqrt(q^T (y y^T o K) q) >= gamma (a QP on the
  n x n Gram, solved by accelerated projected gradient on the simplex).
  ``method="sampled"``: stochastic mirror descent (exponentiated gradient) on q with fresh z
  each iteration; with new samples at the averaged q, the upper bound E||g_q(z)|| and the lower
  bound min_i y_i E_z[v_q(z) . phi_{x_i}(z)] with v_q = g_q / ||g_q|| (both Monte Carlo estimates).
* :class:`KernelField`: the field v_q, whose logits z(x) = E_z[v_q(z) . phi_x(z)] are the
  theory-faithful teacher for real data (|z| <= 1).
* :class:`KernelLimitTeacher`: the exact teacher for linearly separable data, v(z) = u:
  z_i = u . x_i / 2 and gamma = g_lin / 2.
* :func:`wide_teacher`: a finite-width teacher, a wide TwoLayerReLU trained on hard labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._limits import check_memory
from ._validation import check_labels, check_positive_int, check_X
from .model import TwoLayerReLU

__all__ = [
    "ntk_gram",
    "margin_gamma",
    "MarginResult",
    "KernelField",
    "KernelLimitTeacher",
    "teacher_logits",
    "soft_labels",
    "wide_teacher",
]


def ntk_gram(X, Y=None) -> np.ndarray:
    """Closed-form first-layer NTK: K(x, x') = (x . x') (pi - theta) / (2 pi)."""
    X = check_X(X, dtype=np.float64)
    Y = X if Y is None else check_X(Y, "Y", d=X.shape[1], dtype=np.float64)
    check_memory(
        5 * 8.0 * X.shape[0] * Y.shape[0],
        f"ntk_gram of {X.shape[0]} x {Y.shape[0]} rows (5 dense temporaries of that shape)",
        "pass fewer rows",
    )
    G = X @ Y.T
    nx = np.linalg.norm(X, axis=1)
    ny = np.linalg.norm(Y, axis=1)
    cos = np.clip(G / np.outer(nx, ny), -1.0, 1.0)
    theta = np.arccos(cos)
    return G * (np.pi - theta) / (2.0 * np.pi)


def _proj_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto {q >= 0, sum q = 1} (sort-based)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    ind = np.arange(1, v.size + 1)
    rho = np.nonzero(u - css / ind > 0)[0][-1]
    return np.maximum(v - css[rho] / (rho + 1.0), 0.0)


def _simplex_qp(Q: np.ndarray, max_iter: int = 20000, tol: float = 1e-12):
    """min_{q in simplex} q^T Q q by FISTA with adaptive restart; returns (q, value)."""
    n = Q.shape[0]
    L = max(float(np.linalg.eigvalsh(Q)[-1]), 1e-300) * 2.0
    q = np.full(n, 1.0 / n)
    z, t = q.copy(), 1.0
    val = float(q @ Q @ q)
    for _ in range(max_iter):
        q_new = _proj_simplex(z - (2.0 * (Q @ z)) / L)
        new_val = float(q_new @ Q @ q_new)
        if new_val > val:  # restart momentum
            z, t = q.copy(), 1.0
            q_new = _proj_simplex(z - (2.0 * (Q @ z)) / L)
            new_val = float(q_new @ Q @ q_new)
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        z = q_new + ((t - 1.0) / t_new) * (q_new - q)
        done = abs(val - new_val) <= tol * max(abs(val), 1e-30) and np.abs(q_new - q).max() < 1e-9
        q, t, val = q_new, t_new, min(val, new_val)
        if done:
            break
    return q, float(q @ Q @ q)


@dataclass
class KernelField:
    """The kernel-limit field v_q(z) = g_q(z) / ||g_q(z)||, g_q(z) = sum_i q_i y_i x_i 1(z . x_i > 0)."""

    q: np.ndarray = field(repr=False)
    X: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)

    def _v(self, Z):
        A = (Z @ self.X.T > 0).astype(np.float64)  # (S, n)
        G = (A * (self.q * self.y)) @ self.X  # (S, d)
        nrm = np.linalg.norm(G, axis=1, keepdims=True)
        return G / np.where(nrm > 0, nrm, 1.0), nrm[:, 0]

    def logits(self, X, n_samples: int = 4000, random_state=None, batch: int = 1000) -> np.ndarray:
        """z(x) = E_z[v_q(z) . phi_x(z)] for each row of X (Monte Carlo, |z| <= 1)."""
        X = check_X(X, d=self.X.shape[1], dtype=np.float64, allow_zero_rows=True)
        rng = np.random.default_rng(random_state)
        out = np.zeros(X.shape[0])
        done = 0
        while done < n_samples:
            s = min(batch, n_samples - done)
            Z = rng.standard_normal((s, X.shape[1]))
            V, _ = self._v(Z)
            out += ((Z @ X.T > 0) * (V @ X.T)).sum(axis=0)
            done += s
        return out / n_samples


@dataclass
class MarginResult:
    """Output of :func:`margin_gamma`.

    ``gamma``: gamma_2 (method "l2") or the midpoint of the sampled sandwich;
    ``lower``/``upper``: the sampled bounds (NaN for "l2"); ``q``: the optimal
    simplex weights; ``field``: the KernelField v_q (teacher logits via ``field.logits``).
    """

    method: str
    gamma: float
    lower: float
    upper: float
    q: np.ndarray = field(repr=False)
    field: KernelField = field(repr=False)


def margin_gamma(
    X,
    y,
    method: str = "l2",
    *,
    n_iter: int = 300,
    batch: int = 256,
    n_eval: int = 4000,
    step: float | None = None,
    random_state=None,
) -> MarginResult:
    """The separation margin gamma of the limiting kernel for data (X, y).

    Parameters
    ----------
    X : (n, d) rows with c <= ||x|| <= 1;  y : (n,) in {-1, +1}.
    method : "l2" (gamma_2, QP on the closed-form NTK Gram) or "sampled"
        (stochastic mirror descent; returns lower <= gamma <= upper up to Monte Carlo error).
    n_iter, batch, step : mirror-descent iterations, z samples per iteration, step size
        (default 1 / sqrt(n_iter) scaled by ln n).
    n_eval : fresh z samples for the final bounds.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]]); y = np.array([1, -1])
    >>> r = margin_gamma(X, y)
    >>> round(r.gamma, 4)  # K = diag(1/2, 1/2), q = (1/2, 1/2)
    0.5
    """
    X = check_X(X, dtype=np.float64)
    n, d = X.shape
    y = check_labels(y, n)
    if method not in ("l2", "sampled"):
        raise ValueError(f"method must be 'l2' or 'sampled', got {method!r}")
    if method == "l2":
        check_memory(
            7 * 8.0 * n * n,
            f"margin_gamma(method='l2') on n = {n} rows (an n x n kernel Gram, its QP and eigenvalue workspace)",
            "use method='sampled' (O(batch x n) memory) or a subsample of rows",
        )
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            Q = np.outer(y, y) * ntk_gram(X)
        if not np.all(np.isfinite(Q)):
            nrm = np.linalg.norm(X, axis=1)
            raise ValueError(
                f"the kernel Gram of X is not finite (row norms from {nrm.min():.3g} to {nrm.max():.3g} "
                "overflow or underflow it); scale X so that c <= ||x|| <= 1"
            )
        q, val = _simplex_qp(Q)
        g2 = float(np.sqrt(max(val, 0.0)))
        return MarginResult("l2", g2, float("nan"), float("nan"), q, KernelField(q, X, y))

    n_iter = check_positive_int(n_iter, "n_iter")
    batch = check_positive_int(batch, "batch")
    n_eval = check_positive_int(n_eval, "n_eval")
    rng = np.random.default_rng(random_state)
    eta = float(step) if step is not None else np.sqrt(2.0 * np.log(max(n, 2)) / n_iter)
    logq = np.full(n, -np.log(n))
    q_sum = np.zeros(n)
    Yx = y[:, None] * X
    for _ in range(n_iter):
        q = np.exp(logq - logq.max())
        q /= q.sum()
        q_sum += q
        Z = rng.standard_normal((batch, d))
        A = (Z @ X.T > 0).astype(np.float64)  # (S, n)
        G = (A * q) @ Yx  # g_q(z) (S, d)
        nrm = np.linalg.norm(G, axis=1, keepdims=True)
        V = G / np.where(nrm > 0, nrm, 1.0)
        grad = (A * (V @ Yx.T)).mean(axis=0)  # d E||g_q|| / d q_i
        logq -= eta * grad / max(np.abs(grad).max(), 1e-12)  # normalised exponentiated-gradient step
    q_bar = q_sum / n_iter
    field = KernelField(q_bar, X, y)
    # fresh samples: upper = E||g_q(z)||, lower = min_i y_i E[v_q(z) . phi_{x_i}(z)]
    done, up, marg = 0, 0.0, np.zeros(n)
    while done < n_eval:
        s = min(1000, n_eval - done)
        Z = rng.standard_normal((s, d))
        V, nrm = field._v(Z)
        up += nrm.sum()
        marg += ((Z @ X.T > 0) * (V @ Yx.T)).sum(axis=0)
        done += s
    upper = up / n_eval
    lower = float((marg / n_eval).min())
    return MarginResult("sampled", 0.5 * (lower + upper), lower, float(upper), q_bar, field)


class KernelLimitTeacher:
    """Exact kernel-limit teacher for linearly separable data: v(z) = u.

    ``fit(X, y)`` finds the max-margin unit direction u (dual QP on the simplex,
    unless ``u`` is given), then g_lin = min_i y_i u . x_i, ``gamma_ = g_lin / 2``
    and the logits z(x) = u . x / 2 (``decision_function``), p = sigmoid(z).

    Examples
    --------
    >>> from kdcore.distill import make_margin_data
    >>> X, y, p, u = make_margin_data(200, 5, gamma=0.1, random_state=0, return_teacher=True)
    >>> t = KernelLimitTeacher(u=u).fit(X, y)
    >>> bool(t.gamma_ >= 0.1 - 1e-12)
    True
    """

    def __init__(self, u=None):
        self.u = u

    def fit(self, X, y):
        X = check_X(X, dtype=np.float64)
        y = check_labels(y, X.shape[0])
        if self.u is None:
            Yx = y[:, None] * X
            q, _ = _simplex_qp(Yx @ Yx.T)
            g = q @ Yx
            if np.linalg.norm(g) < 1e-12:
                raise ValueError("data are not linearly separable through the origin: no exact kernel-limit teacher")
            u = g / np.linalg.norm(g)
        else:
            u = np.asarray(self.u, dtype=np.float64)
            if u.shape != (X.shape[1],):
                raise ValueError(f"u must have shape ({X.shape[1]},), got {u.shape}")
            u = u / np.linalg.norm(u)
        g_lin = float((y * (X @ u)).min())
        if g_lin <= 0:
            raise ValueError(f"u does not separate the data (min_i y_i u.x_i = {g_lin:.3g} <= 0)")
        self.u_, self.g_lin_, self.gamma_ = u, g_lin, g_lin / 2.0
        return self

    def decision_function(self, X) -> np.ndarray:
        X = check_X(X, d=self.u_.shape[0], dtype=np.float64, allow_zero_rows=True)
        return X @ self.u_ / 2.0

    def predict_proba(self, X) -> np.ndarray:
        p1 = soft_labels(self.decision_function(X))
        return np.column_stack([1 - p1, p1])


def soft_labels(logits, temperature: float = 1.0) -> np.ndarray:
    """sigmoid(logits / T), kept strictly inside (0, 1) (clipped at 1e-12)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    return np.clip(0.5 * (1.0 + np.tanh(0.5 * z)), 1e-12, 1 - 1e-12)


def teacher_logits(teacher, X, *, n_samples: int = 4000, random_state=None) -> np.ndarray:
    """Logits of any teacher on X: a KernelLimitTeacher (u . x / 2), a MarginResult or
    KernelField (the sampled kernel-limit field, E_z[v_q(z) . phi_x(z)]), or a
    TwoLayerReLU (its f(x))."""
    if isinstance(teacher, MarginResult):
        teacher = teacher.field
    if isinstance(teacher, KernelField):
        return teacher.logits(X, n_samples=n_samples, random_state=random_state)
    if isinstance(teacher, (KernelLimitTeacher, TwoLayerReLU)):
        return teacher.decision_function(X)
    raise TypeError(
        f"teacher must be a KernelLimitTeacher, MarginResult, KernelField or TwoLayerReLU, got {type(teacher).__name__}"
    )


def wide_teacher(
    X,
    y,
    m: int = 512,
    lr: float = 1.0,
    n_steps: int = 500,
    radius=None,
    random_state=None,
    backend: str = "auto",
    n_threads: int = 0,
) -> TwoLayerReLU:
    """A finite-width teacher: a wide TwoLayerReLU trained on the hard labels."""
    from .training import train

    X = check_X(X)
    net = TwoLayerReLU(m, X.shape[1], random_state=random_state, dtype=X.dtype)
    train(net, X, y, loss="hard", lr=lr, n_steps=n_steps, radius=radius, backend=backend, n_threads=n_threads)
    return net
