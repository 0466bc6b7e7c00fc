"""The two-layer ReLU network of Mandal, Lin and Srikant (L4DC 2025), docs/maths.md A.1.

f(x; W, a) = (1/sqrt(m)) sum_j a_j relu(W_j . x); only W is trained, a is fixed.
Symmetric initialisation (m even): a_j ~ Unif{-1,+1}, W_j(0) ~ N(0, I_d) for
j < m/2, then a_{j+m/2} = -a_j and W_{j+m/2}(0) = W_j(0), so f(x; W(0)) = 0.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_dtype, check_positive_int, check_X

__all__ = ["TwoLayerReLU"]


class TwoLayerReLU:
    """Two-layer ReLU network with fixed output signs.

    Parameters
    ----------
    m : int
        Width (number of hidden neurons); even for ``init="symmetric"``.
    d : int
        Input dimension.
    init : {"symmetric", "random"}
        ``"symmetric"`` pairs neurons so that f = 0 at initialisation (the
        paper's scheme); ``"random"`` draws every a_j and W_j independently.
    random_state : int, numpy Generator or None
    dtype : float32 or float64
        Storage type of ``W`` and ``W0``.

    Attributes
    ----------
    W : ndarray (m, d)   trained first-layer weights
    W0 : ndarray (m, d)  initial weights (centre of the projection balls)
    a : ndarray (m,)     fixed output signs in {-1, +1}

    Examples
    --------
    >>> import numpy as np
    >>> net = TwoLayerReLU(4, 3, random_state=0)
    >>> float(np.abs(net.decision_function(np.eye(3))).max())
    0.0
    """

    def __init__(self, m: int, d: int, init: str = "symmetric", random_state=None, dtype=np.float64):
        m = check_positive_int(m, "m")
        d = check_positive_int(d, "d")
        if init not in ("symmetric", "random"):
            raise ValueError(f"init must be 'symmetric' or 'random', got {init!r}")
        if init == "symmetric" and m % 2:
            raise ValueError(f"symmetric init needs an even width m, got m = {m}")
        dt = check_dtype(dtype)
        rng = np.random.default_rng(random_state)
        if init == "symmetric":
            h = m // 2
            a_half = rng.choice(np.array([-1.0, 1.0]), size=h)
            W_half = rng.standard_normal((h, d))
            a = np.concatenate([a_half, -a_half])
            W0 = np.concatenate([W_half, W_half], axis=0)
        else:
            a = rng.choice(np.array([-1.0, 1.0]), size=m)
            W0 = rng.standard_normal((m, d))
        self.m, self.d, self.init, self.random_state = m, d, init, random_state
        self.a = np.ascontiguousarray(a, dtype=dt)
        self.W0 = np.ascontiguousarray(W0, dtype=dt)
        self.W = self.W0.copy()

    @property
    def dtype(self) -> np.dtype:
        return self.W.dtype

    def copy(self) -> TwoLayerReLU:
        new = object.__new__(TwoLayerReLU)
        new.__dict__.update(self.__dict__)
        new.W, new.W0, new.a = self.W.copy(), self.W0.copy(), self.a.copy()
        return new

    def decision_function(self, X) -> np.ndarray:
        """f(x) = (1/sqrt(m)) sum_j a_j relu(W_j . x) for each row of X (float64)."""
        from ._reference import forward

        X = check_X(X, d=self.d, dtype=np.float64, allow_zero_rows=True)
        return forward(X, self.W.astype(np.float64), self.a)[1]

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) array: P(y = -1), P(y = +1) = sigmoid(f)."""
        f = self.decision_function(X)
        p1 = 0.5 * (1.0 + np.tanh(0.5 * f))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X) -> np.ndarray:
        """Labels in {-1, +1}; f <= 0 counts as -1 (an error for y = +1, as in R(W))."""
        return np.where(self.decision_function(X) > 0, 1, -1)

    def distance_from_init(self) -> np.ndarray:
        """||W_j - W_j(0)|| per neuron (the projection constrains it to <= B/sqrt(m))."""
        return np.linalg.norm(self.W.astype(np.float64) - self.W0.astype(np.float64), axis=1)

    def __repr__(self) -> str:
        return f"TwoLayerReLU(m={self.m}, d={self.d}, init={self.init!r}, dtype={self.dtype})"
