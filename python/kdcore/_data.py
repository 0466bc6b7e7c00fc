"""Where the research data lives: read in place, or downloaded once into the cache.

The data folder holds ``crowd/<name>/answers.csv`` and ``truth.csv``, ``mnist/*.gz``
and ``cifar10/CIFAR-10-images-jpg.tar.gz``. :func:`data_home` finds the part a loader
needs, in this order:

1. the ``data_home`` argument, else ``$KDCORE_DATA``: when given, that folder and
   nothing else (never a download);
2. ``shared/data`` in the working directory or the nearest of its parents
   (``../shared/data`` beside a clone);
3. the cache data folder (``$KDCORE_CACHE/data``, else ``~/.cache/kdcore/data``)
   when it holds every file of that part;
4. a download into that cache folder (:func:`kdcore._fetch.fetch`), unless
   ``download=False`` or ``$KDCORE_FETCH=0``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ENV = "KDCORE_DATA"


def _dataset_of(subdir: str | None) -> str | None:
    """The fetchable dataset behind ``subdir`` ("crowd", "crowd/rte", "mnist", "cifar10"), if any."""
    from ._fetch import DATASET_FILES

    if not subdir:
        return None
    parts = Path(subdir).parts
    name = parts[1] if len(parts) == 2 and parts[0] == "crowd" else subdir
    return name if name in DATASET_FILES and name != "all" else None


def data_home(
    data_home: str | os.PathLike | None = None, subdir: str | None = None, *, download: bool | None = None
) -> Path:
    """Resolve the data folder (or its part ``subdir``, e.g. ``"mnist"`` or ``"crowd/rte"``).

    Parameters
    ----------
    data_home : a data folder to use and nothing else; default ``$KDCORE_DATA``, else the
        search described in the module docstring.
    subdir : the part of the data folder wanted; the path returned is that part.
    download : allow a download into the cache when no copy is found (default:
        ``$KDCORE_FETCH``, allowed unless it is ``0``/``false``/``no``/``off``).

    Raises
    ------
    FileNotFoundError
        naming every place it looked (and why a download did not happen or failed).
    """
    from ._fetch import FetchError, cache_data_dir, fetch, fetch_allowed, have

    looked: list[str] = []
    explicit = data_home is not None or bool(os.environ.get(_ENV))
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
    hint = f"Pass data_home=... or set {_ENV} to the folder that holds crowd/, mnist/ and cifar10/"
    name = _dataset_of(subdir)
    if explicit or name is None:
        raise FileNotFoundError(f"kdcore data folder not found ({how}); looked in: {', '.join(looked)}. {hint}.")
    cache = cache_data_dir()
    looked.append(str(cache / subdir) if subdir else str(cache))
    if have(cache, name):
        return cache / subdir if subdir else cache
    if not fetch_allowed(download):
        raise FileNotFoundError(
            f"kdcore data not found ({how}); looked in: {', '.join(looked)}; downloading is off "
            f"(KDCORE_FETCH or download=False). {hint}, or run: kdcore datasets fetch {name}."
        )
    print(
        f"kdcore: no local copy of {subdir}/; downloading it into {cache} (KDCORE_FETCH=0 turns this off)",
        file=sys.stderr,
    )
    try:
        fetch(name)
    except FetchError as exc:
        raise FileNotFoundError(
            f"kdcore data not found ({how}); looked in: {', '.join(looked)}; the download failed: {exc}. {hint}."
        ) from None
    return cache / subdir if subdir else cache
