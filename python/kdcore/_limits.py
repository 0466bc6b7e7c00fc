"""Refuse up front a computation whose dense intermediates would not fit in memory.

``check_memory(n_bytes, what, hint)`` raises :class:`MemoryError` with the amount
needed, the amount available and what to do instead, before anything is
allocated: a 300 GB Gram matrix should be a one-line message, not a night of
swapping or an OOM kill. The budget is the ``KDCORE_MAX_MEMORY`` environment
variable (bytes, or with a K/M/G/T suffix: ``KDCORE_MAX_MEMORY=8G``) when set, else
the memory the kernel reports as available (``MemAvailable`` in /proc/meminfo),
else no limit.
"""

from __future__ import annotations

import os

__all__ = ["check_memory", "memory_budget", "format_bytes"]

_SUFFIX = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def format_bytes(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def memory_budget() -> float | None:
    """Bytes a single dense intermediate may take (None: unknown, no check)."""
    env = os.environ.get("KDCORE_MAX_MEMORY", "").strip().upper().rstrip("B").rstrip("I")
    if env:
        unit = env[-1] if env[-1] in _SUFFIX else ""
        try:
            return float(env[: len(env) - len(unit)] if unit else env) * _SUFFIX[unit]
        except ValueError:
            raise ValueError(f"KDCORE_MAX_MEMORY={os.environ['KDCORE_MAX_MEMORY']!r} is not a size like 8G") from None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(n_bytes: float, what: str, hint: str = "") -> None:
    """Raise MemoryError if ``n_bytes`` exceed the budget (see the module docstring)."""
    budget = memory_budget()
    if budget is not None and n_bytes > budget:
        raise MemoryError(
            f"{what} would need {format_bytes(n_bytes)}, more than the {format_bytes(budget)} "
            f"available{' (KDCORE_MAX_MEMORY)' if os.environ.get('KDCORE_MAX_MEMORY') else ''}"
            f"{'; ' + hint if hint else ''}"
        )
