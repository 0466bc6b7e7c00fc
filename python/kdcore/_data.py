"""Where the shared research data lives (read in place, never copied)."""

from __future__ import annotations

import os
from pathlib import Path

_ENV = "KDCORE_DATA"


def data_home(data_home: str | os.PathLike | None = None, subdir: str | None = None) -> Path:
    """Resolve the data folder: ``data_home``, else ``$KDCORE_DATA``, else ``shared/data`` in
    the working directory or the nearest of its parents (``../shared/data`` beside a clone).

    Raises ``FileNotFoundError`` naming every place it looked.
    """
    looked: list[str] = []
    if data_home is not None:
        candidates = [Path(data_home)]
    elif os.environ.get(_ENV):
        candidates = [Path(os.environ[_ENV])]
    else:
        cwd = Path.cwd()
        candidates = [p / "shared" / "data" for p in [cwd, *cwd.parents]]
    for base in candidates:
        path = base / subdir if subdir else base
        looked.append(str(path))
        if path.is_dir():
            return path
    how = (
        "the data_home argument"
        if data_home is not None
        else (f"${_ENV}" if os.environ.get(_ENV) else f"${_ENV} is unset; default locations")
    )
    raise FileNotFoundError(
        f"kdcore data folder not found ({how}); looked in: {', '.join(looked)}. "
        f"Pass data_home=... or set {_ENV} to the folder that holds crowd/, mnist/ and cifar10/."
    )
