"""Soft- vs hard-label training of two-layer ReLU networks (knowledge
distillation theory of Mandal, Lin and Srikant, L4DC 2025; PAPERS.md A).

Real data and the papers' experiments: ``kdcore.distill.datasets`` (MNIST and
CIFAR-10 loaders), ``kdcore.distill.mnist`` (the MNIST two-layer table and the
regime sweep), ``kdcore.distill.deep`` (the VGG teacher/student experiment in torch;
torch is imported only when it runs), ``kdcore.distill.experiments`` (soft vs hard
neuron requirement on synthetic tasks).
"""

from __future__ import annotations

from . import bounds
from .bounds import Requirement, corollary4_soft_error, proposition5_hard, theorem2_soft
from .data import make_margin_data, make_overlap, make_parity, make_shells, make_task
from .datasets import cifar_pair, mnist_binary
from .deep import plot_deep, plot_deep_width, run_deep_experiment, summarize_deep, summarize_deep_width
from .mnist import (
    mnist_gamma,
    mnist_regime_sweep,
    mnist_table,
    mnist_width_sweep,
    plot_mnist_regime,
    plot_mnist_width,
)
from .model import TwoLayerReLU
from .scaling import Arm, ScalingResult, fit_loglog, neuron_requirement, plot_scaling, scaling_study
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
    "plot_scaling",
    "mnist_binary",
    "cifar_pair",
    "mnist_gamma",
    "mnist_table",
    "mnist_width_sweep",
    "mnist_regime_sweep",
    "plot_mnist_width",
    "plot_mnist_regime",
    "run_deep_experiment",
    "summarize_deep",
    "summarize_deep_width",
    "plot_deep",
    "plot_deep_width",
]
