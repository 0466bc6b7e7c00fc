"""Soft- vs hard-label training of two-layer ReLU networks (knowledge
distillation theory of Mandal, Lin and Srikant, L4DC 2025; docs/maths.md A).

The library: the network (:class:`TwoLayerReLU`), the projected-GD engine
(:func:`train`, :func:`train_many`), teachers and the kernel margin, the bounds,
synthetic tasks, the neuron-requirement measurement (``scaling``), the real-data
loaders (``kdcore.distill.datasets``: MNIST and CIFAR-10) and the VGG networks with
their training loop (``kdcore.distill.vgg``, torch imported only when they run).
The papers' experiments, tables and figures are :mod:`kdcore.experiments`.
"""

from __future__ import annotations

from . import bounds
from .bounds import Requirement, corollary4_soft_error, proposition5_hard, theorem2_soft
from .data import make_margin_data, make_overlap, make_parity, make_shells, make_task
from .datasets import cifar_pair, mnist_binary, mnist_pair
from .model import TwoLayerReLU
from .scaling import Arm, ScalingResult, fit_loglog, neuron_requirement, scaling_study
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
    "mnist_binary",
    "mnist_pair",
    "cifar_pair",
]
