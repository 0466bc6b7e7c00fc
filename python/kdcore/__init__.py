"""kdcore: crowd truth inference with hidden task types, and soft- vs hard-label
training of two-layer networks, on a compiled C++ core."""

from __future__ import annotations

from ._version import __version__
from .backends import available_backends, get_num_threads, set_num_threads, show_config

__all__ = ["__version__", "available_backends", "get_num_threads", "set_num_threads", "show_config", "crowd", "distill"]


def __getattr__(name: str) -> object:  # lazy subpackages keep `import kdcore` light
    if name in ("crowd", "distill"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'kdcore' has no attribute {name!r}")
