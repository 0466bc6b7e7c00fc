"""Crowd truth inference: the response data model, the Dawid-Skene family, task types."""
from __future__ import annotations

from . import datasets, simulate
from ._responses import Responses

__all__ = ["Responses", "datasets", "simulate"]
