"""Parameter checks shared by every estimator, engine and loader.

One place for the rule "an int, not a bool" and its float twin: each check names the
parameter, says what it expected and what it got, raises ``TypeError`` for a wrong type
and ``ValueError`` for a wrong value, and returns the value converted to a plain
Python ``int`` or ``float``.

>>> check_int(3, "n_iter", minimum=1)
3
>>> check_int(True, "n_iter")
Traceback (most recent call last):
...
TypeError: n_iter must be an int, got bool
"""

from __future__ import annotations

import numbers

import numpy as np


def check_int(value: object, name: str, *, minimum: int = 0) -> int:
    """``value`` as an int >= ``minimum`` (bools are refused: ``True`` is not a count)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_float(
    value: object, name: str, *, minimum: float | None = None, maximum: float | None = None, strict_min: bool = False
) -> float:
    """``value`` as a finite float in [minimum, maximum] (``strict_min``: minimum excluded)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    out = float(value)
    if not np.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    if minimum is not None and (out < minimum or (strict_min and out == minimum)):
        raise ValueError(f"{name} must be {'>' if strict_min else '>='} {minimum}, got {out}")
    if maximum is not None and out > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {out}")
    return out


def check_bool(value: object, name: str) -> bool:
    """``value`` as a bool (Python or numpy bool only: 0 and 1 are refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)
