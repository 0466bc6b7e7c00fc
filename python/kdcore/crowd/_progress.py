"""Progress bars over EM rounds and restarts, shown only to a person at a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterable

__all__ = ["progress_range"]


def progress_range(n: int, show: bool, desc: str) -> Iterable[int]:
    """``range(n)``, wrapped in a tqdm bar when ``show`` and stderr is a terminal."""
    if show and sys.stderr.isatty():
        from tqdm.auto import trange

        return trange(n, desc=desc, leave=False)
    return range(n)
