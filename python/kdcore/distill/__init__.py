"""Soft- vs hard-label training of two-layer ReLU networks (knowledge
distillation theory of Mandal, Lin and Srikant, L4DC 2025; PAPERS.md A).

The realdata helper's modules live beside these: ``kdcore.distill.datasets``,
``kdcore.distill.deep``, ``kdcore.distill.mnist`` (import them by name).
"""
from __future__ import annotations

from .data import make_margin_data, make_overlap, make_parity, make_shells, make_task
from .model import TwoLayerReLU
from .training import History, train, train_many

__all__ = [
    "TwoLayerReLU",
    "History",
    "train",
    "train_many",
    "make_margin_data",
    "make_parity",
    "make_shells",
    "make_overlap",
    "make_task",
]
