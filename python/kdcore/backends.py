"""What kdcore can run on, decided once at import time.

Backends are data: :data:`BACKENDS` maps each backend name, fastest first, to a
check of whether it exists in this process (``cpp``: the compiled core imported;
``numpy``: always; ``torch``: installed; ``torch-cuda``: torch sees a CUDA device),
and :data:`MISSING` says what to do when one is not there. Every public function
takes ``backend="auto"`` and asks :func:`resolve_backend` which one to use. Optional
backends (torch) are never imported by ``import kdcore``; they are looked up lazily
and a missing one gives a clear message.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from ._check import check_int
from ._version import __version__

__all__ = [
    "BACKENDS",
    "MISSING",
    "HAS_CPP",
    "HAS_OPENMP",
    "HAS_TORCH",
    "available_backends",
    "resolve_backend",
    "torch_cuda_available",
    "set_num_threads",
    "get_num_threads",
    "blas_threads",
    "show_config",
]

# Idle OpenMP threads spin by default (libgomp's active wait), stealing cores from
# BLAS, torch and other processes between kdcore's many short parallel regions
# (each EM iteration is one). On a shared 2-core machine that made 2 threads
# slower than 1 (benchmarks/README.md). kdcore therefore asks for passive waiting
# unless the user chose a policy; it only takes effect if no OpenMP runtime was
# loaded before kdcore._core.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_CORE_ERROR: ImportError | None = None
try:  # the compiled core
    from . import _core

    HAS_CPP = True
    HAS_OPENMP = bool(_core.have_openmp())
except ImportError as exc:  # pragma: no cover - only on a broken install
    # typed as the module: every call into it sits behind resolve_backend("cpp") or a None check
    _core = None  # type: ignore[assignment]
    HAS_CPP = False
    HAS_OPENMP = False
    _CORE_ERROR = exc

HAS_TORCH = importlib.util.find_spec("torch") is not None


@functools.lru_cache(maxsize=1)
def torch_cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device (imports torch)."""
    if not HAS_TORCH:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover - broken torch install
        return False


#: backend name -> whether it can run here (a call: ``torch-cuda`` imports torch to know)
BACKENDS: dict[str, Callable[[], bool]] = {
    "cpp": lambda: HAS_CPP,
    "numpy": lambda: True,
    "torch": lambda: HAS_TORCH,
    "torch-cuda": torch_cuda_available,
}

#: backend name -> the error raised when it is asked for by name and missing here
MISSING: dict[str, Callable[[], Exception]] = {
    "cpp": lambda: ImportError(f"the compiled core kdcore._core failed to import: {_CORE_ERROR}"),
    "torch": lambda: ImportError("backend 'torch' needs torch: pip install 'kdcore[torch]'"),
    "torch-cuda": lambda: (
        ImportError("backend 'torch-cuda' needs torch: pip install 'kdcore[torch]'")
        if not HAS_TORCH
        else ValueError("backend 'torch-cuda' asked for, but torch sees no CUDA device")
    ),
}


def available_backends() -> list[str]:
    """Backends usable in this process, fastest first (``torch-cuda`` imports torch to check)."""
    return [name for name, exists in BACKENDS.items() if exists()]


def resolve_backend(backend: str, supported: Sequence[str] = ("cpp", "numpy"), *, what: str = "this estimator") -> str:
    """Map ``backend`` to one that exists and that ``what`` supports.

    ``"auto"`` picks the first of ``supported`` that is available (the order of
    ``supported`` is the preference). A named backend that is not supported or
    not installed raises ``ValueError``/``ImportError`` with the reason.
    """
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a string, got {type(backend).__name__}")
    if backend == "auto":
        for name in supported:
            if name in BACKENDS and BACKENDS[name]():
                return name
        raise RuntimeError(f"no backend available for {what} among {list(supported)}")
    if backend not in supported:
        raise ValueError(f"backend {backend!r} is not supported by {what}; choose one of {['auto', *supported]}")
    if not BACKENDS[backend]():
        raise MISSING[backend]()
    return backend


def set_num_threads(n: int) -> None:
    """Default thread count of every parallel kernel (0 = the cores available).

    ``KDCORE_NUM_THREADS`` in the environment takes precedence over this value.
    """
    n = check_int(n, "n", minimum=0)
    if _core is not None:
        _core.set_num_threads(n)


def get_num_threads() -> int:
    """Threads a kernel uses when called with ``n_threads=0``."""
    if _core is None:
        return 1
    return int(_core.get_num_threads())


def check_n_threads(n_threads: int) -> int:
    """Validate an ``n_threads`` argument (an int >= 0, 0 = default) and return the count it resolves to."""
    n_threads = check_int(n_threads, "n_threads", minimum=0)
    if _core is None:
        return 1
    return int(_core.resolve_threads(n_threads))


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS/OpenMP pools of numpy/scipy to ``n`` threads inside the block.

    Used around code that calls BLAS next to kdcore's own parallel kernels, so
    the two never oversubscribe the cores together. ``None`` leaves them alone.
    """
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(n), user_api="blas"):
        yield


def _blas_info() -> list[str]:
    try:
        from threadpoolctl import threadpool_info

        return [
            f"{d.get('internal_api')} {d.get('version')} ({d.get('num_threads')} threads, {d.get('architecture', '?')})"
            for d in threadpool_info()
            if d.get("user_api") == "blas"
        ]
    except Exception:  # pragma: no cover
        return []


def config() -> dict[str, Any]:
    """The facts :func:`show_config` prints, as a dict."""
    import numpy as np

    info: dict[str, Any] = {
        "kdcore": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "backends": available_backends(),
        "cpp": HAS_CPP,
        "openmp": HAS_OPENMP,
        "threads": get_num_threads(),
        "cores_available": int(_core.available_cores()) if _core is not None else os.cpu_count(),
        "KDCORE_NUM_THREADS": os.environ.get("KDCORE_NUM_THREADS"),
        "simd": _core.simd_level() if _core is not None else "n/a",
        "blas": _blas_info(),
        "torch": None,
    }
    if HAS_TORCH:
        import torch

        info["torch"] = torch.__version__
        info["cuda_device"] = torch.cuda.get_device_name(0) if torch_cuda_available() else None
    return info


def show_config(file: TextIO | None = None) -> None:
    """Print version, backends, threads, OpenMP, SIMD level and BLAS."""
    info = config()
    lines = [
        f"kdcore {info['kdcore']} (python {info['python']}, numpy {info['numpy']})",
        f"  backends : {', '.join(info['backends'])}",
        f"  compiled : {'yes' if info['cpp'] else 'NO'}  OpenMP: {'yes' if info['openmp'] else 'no'}",
        f"  threads  : {info['threads']} (cores available {info['cores_available']}, "
        f"KDCORE_NUM_THREADS={info['KDCORE_NUM_THREADS'] or 'unset'})",
        f"  SIMD     : {info['simd']}",
        f"  BLAS     : {'; '.join(info['blas']) or 'none found'}",
        f"  torch    : {info['torch'] or 'not installed'}"
        + (f" (CUDA: {info.get('cuda_device')})" if info.get("cuda_device") else ""),
    ]
    print("\n".join(lines), file=file)
