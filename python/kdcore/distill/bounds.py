"""The paper's sufficient conditions as numbers (docs/maths.md A.5, typos corrected).

Each function returns ``Requirement(m, eta, T, B)``: the width m and horizon T
(rounded up), the largest step eta and the projection radius B under which the
theorem's guarantee holds. These are loose upper bounds (often millions of
neurons); kdcore measures the empirical requirement separately.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from .._check import check_int

__all__ = ["Requirement", "C1", "C2", "theorem2_soft", "corollary4_soft_error", "proposition5_hard"]

C1 = 96.0 / (1.0 + math.e**2)
C2 = 32.0 * C1


class Requirement(NamedTuple):
    m: int
    eta: float
    T: int
    B: float


def _check(name, v, lo=0.0, hi=None, open_hi=True):
    v = float(v)
    if not math.isfinite(v) or v <= lo or (hi is not None and (v >= hi if open_hi else v > hi)):
        rng = f"({lo}, {hi})" if hi is not None else f"> {lo}"
        raise ValueError(f"{name} must be in {rng}, got {v}")
    return v


def _common(n, c, delta):
    return check_int(n, "n", minimum=1), _check("c", c, 0.0, 1.0, open_hi=False), _check("delta", delta, 0.0, 1.0)


def theorem2_soft(beta: float, n: int, c: float, delta: float = 0.05) -> Requirement:
    """Theorem 2: averaged KL risk <= beta w.p. >= 1 - 3 delta when B = 1,
    T >= 9 / beta^2, eta <= beta / 3 and
    m >= (C1 / beta) (sqrt(2/pi)/c + 3 sqrt(ln(2n/delta)))^2, C1 = 96 / (1 + e^2).

    >>> theorem2_soft(0.1, 100, 1.0).T
    900
    """
    beta = _check("beta", beta)
    n, c, delta = _common(n, c, delta)
    bracket = math.sqrt(2.0 / math.pi) / c + 3.0 * math.sqrt(math.log(2.0 * n / delta))
    return Requirement(math.ceil(C1 / beta * bracket**2), beta / 3.0, math.ceil(9.0 / beta**2), 1.0)


def corollary4_soft_error(gamma: float, eps: float, n: int, c: float, delta: float = 0.05) -> Requirement:
    """Corollary 4 (consistent form): averaged error <= eps via Lemma 3
    (R <= 32 R_KL / gamma^2) with beta = gamma^2 eps / 32:
    m >= (C2 / (gamma^2 eps)) bracket^2 (C2 = 32 C1), eta <= gamma^2 eps / 96,
    T >= 9 * 32^2 / (gamma^4 eps^2), B = 1."""
    gamma = _check("gamma", gamma)
    eps = _check("eps", eps, 0.0, 1.0)
    return theorem2_soft(gamma**2 * eps / 32.0, n, c, delta)


def proposition5_hard(
    gamma: float,
    n: int,
    c: float,
    delta: float = 0.05,
    *,
    beta: float | None = None,
    eps: float | None = None,
    eta: float = 1.0,
) -> Requirement:
    """Proposition 5 (hard labels, from Ji & Telgarsky 2020): averaged logistic
    risk <= beta and averaged error <= beta / ln 2 when
    B = (2/gamma) ln(2/(ln2 beta)), eta <= 1,
    T >= (8 / (gamma^2 eta)) ln^2(2/(ln2 beta)) / (ln2 beta),
    m >= (16/gamma^4) ((2 sqrt2 / (c sqrt pi)) ln(2/(ln2 beta)) + 3 sqrt(ln(2n/delta)))^2.
    Give ``beta`` (logistic risk) or ``eps`` (error; beta = eps ln 2)."""
    gamma = _check("gamma", gamma)
    n, c, delta = _common(n, c, delta)
    if (beta is None) == (eps is None):
        raise ValueError("give exactly one of beta (logistic risk) or eps (classification error)")
    beta = _check("beta", beta) if beta is not None else _check("eps", eps, 0.0, 1.0) * math.log(2.0)
    eta = _check("eta", eta, 0.0, 1.0, open_hi=False)
    L = math.log(2.0 / (math.log(2.0) * beta))
    if L <= 0:
        raise ValueError(f"beta = {beta} is too large: ln(2 / (ln2 beta)) must be > 0")
    B = 2.0 / gamma * L
    T = math.ceil(8.0 / (gamma**2 * eta) * L**2 / (math.log(2.0) * beta))
    bracket = 2.0 * math.sqrt(2.0) / (c * math.sqrt(math.pi)) * L + 3.0 * math.sqrt(math.log(2.0 * n / delta))
    m = math.ceil(16.0 / gamma**4 * bracket**2)
    return Requirement(m, eta, T, B)
