"""Soft- vs hard-label training of two-layer ReLU networks (knowledge
distillation theory of Mandal, Lin and Srikant, L4DC 2025; PAPERS.md A).

The realdata helper's modules live beside these: ``kdcore.distill.datasets``,
``kdcore.distill.deep``, ``kdcore.distill.mnist`` (import them by name).
"""
from __future__ import annotations

from . import bounds
from .bounds import Requirement, corollary4_soft_error, proposition5_hard, theorem2_soft
from .data import make_margin_data, make_overlap, make_parity, make_shells, make_task
from .model import TwoLayerReLU
from .teachers import (
    KernelField,
    KernelLimitTeacher,
    MarginResult,
    margin_gamma,
    ntk_gram,
    soft_labels,
    teacher_logits,
    wide_teacher,
)
from .scaling import Arm, ScalingResult, fit_loglog, neuron_requirement, plot_scaling, scaling_study
from .training import History, train, train_many

__all__ = [
    "TwoLayerReLU",
    "History",
    "train",
    "train_many",
    "KernelLimitTeacher",
    "KernelField",
    "MarginResult",
    "margin_gamma",
    "ntk_gram",
    "teacher_logits",
    "soft_labels",
    "wide_teacher",
    "bounds",
    "Requirement",
    "theorem2_soft",
    "corollary4_soft_error",
    "proposition5_hard",
    "make_margin_data",
    "make_parity",
    "make_shells",
    "make_overlap",
    "make_task",
    "Arm",
    "ScalingResult",
    "neuron_requirement",
    "scaling_study",
    "fit_loglog",
    "plot_scaling",
]
