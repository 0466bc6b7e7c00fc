"""The type-aware decisions pinned: ``split_kind_`` (and the experiments' ``split_used``) and the
accuracies of the task-type experiments (tiny profile) and of planted two-type data, as measured
before the typing and its guard were restructured for speed (folds that stop at the first
fold without gain, restarts that stop when they cannot win, an eigengap-aware Lanczos, the
pair kernel of the hollow Gram operator). The restructuring must not change a decision, and
every accuracy must agree within 0.1 points (``DECISION_ACCURACY``)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from _tol import DECISION_ACCURACY
from kdcore.backends import HAS_CPP
from kdcore.crowd import DawidSkene, TypeAware, simulate
from kdcore.crowd._base import accuracy

pytestmark = pytest.mark.skipif(not HAS_CPP, reason="the pinned values were measured with the compiled core")


def _experiments():
    return importlib.import_module("kdcore.experiments.crowd")


# (regime, aggregator, variant, error, split_used) of label_error("tiny")
LABEL_ERROR_TINY = [
    ("easy_hard", "MV", "plain", 0.18, False),
    ("easy_hard", "MV", "type-aware", 0.18, False),
    ("easy_hard", "MV", "type-aware auto", 0.18, False),
    ("easy_hard", "MV", "oracle types", 0.185, True),
    ("easy_hard", "DS", "plain", 0.205, False),
    ("easy_hard", "DS", "type-aware", 0.205, False),
    ("easy_hard", "DS", "type-aware auto", 0.205, False),
    ("easy_hard", "DS", "oracle types", 0.24, True),
    ("specialist", "MV", "plain", 0.095, False),
    ("specialist", "MV", "type-aware", 0.095, False),
    ("specialist", "MV", "type-aware auto", 0.095, False),
    ("specialist", "MV", "oracle types", 0.08, True),
    ("specialist", "DS", "plain", 0.07, False),
    ("specialist", "DS", "type-aware", 0.07, False),
    ("specialist", "DS", "type-aware auto", 0.07, False),
    ("specialist", "DS", "oracle types", 0.055, True),
]

# (scenario, what, method, value, split_used) of pseudo_real("tiny") on bluebirds
PSEUDO_REAL_TINY = [
    ("a", "typing", "spectral", 0.648148, None),
    ("a", "typing", "refined", 0.768519, None),
    ("a", "label", "DS plain", 0.87037, None),
    ("a", "label", "DS type-aware (guard)", 0.87037, False),
    ("a", "label", "DS type-aware (no guard)", 0.824074, None),
    ("a", "label", "DS oracle types", 0.87037, None),
    ("a", "label", "DS type-aware soft (guard)", 0.87037, False),
    ("a", "label", "DS type-aware soft (no guard)", 0.87963, None),
    ("a", "typing", "degraded (soft model)", 0.833333, None),
    ("a", "label", "DS type-aware auto (guard)", 0.87037, False),
    ("b", "typing", "spectral", 0.62037, None),
    ("b", "typing", "refined", 0.842593, None),
    ("b", "label", "DS plain", 0.888889, None),
    ("b", "label", "DS type-aware (guard)", 0.888889, False),
    ("b", "label", "DS type-aware (no guard)", 0.87963, None),
    ("b", "label", "DS oracle types", 0.87037, None),
    ("b", "label", "DS type-aware soft (guard)", 0.888889, False),
    ("b", "label", "DS type-aware soft (no guard)", 0.87037, None),
    ("b", "typing", "degraded (soft model)", 0.851852, None),
    ("b", "label", "DS type-aware auto (guard)", 0.888889, False),
]

# (aggregator, split_used, soft_split_used, plain, type_aware_guard, type_aware_no_guard,
#  type_aware_soft_guard, type_aware_soft_no_guard, type_aware_auto) of real("tiny") on bluebirds
REAL_TINY = [
    ("DS", False, False, 0.898148, 0.898148, 0.898148, 0.898148, 0.87037, 0.898148),
    ("MV", False, None, 0.759259, 0.759259, 0.759259, None, None, 0.759259),
]

# (regime, n_tasks, n_workers, alpha, seed, split_kind_, accuracy) of TypeAware(DawidSkene()) with
# its defaults (split="auto", guard on) on simulate.two_type(..., random_state=seed)
PLANTED = [
    ("specialist", 2000, 40, 0.3, 0, "hard", 0.967),
    ("specialist", 800, 40, 0.3, 0, "none", 0.94),
    ("easy_hard", 600, 30, 0.3, 0, "none", 0.796667),
    ("specialist", 400, 20, 0.3, 2, "none", 0.845),
]


def _same(got: float, want: float | None) -> bool:
    if want is None:
        return got is None or (isinstance(got, float) and np.isnan(got))
    return abs(float(got) - want) <= DECISION_ACCURACY


def test_label_error_tiny_decisions():
    table = _experiments().label_error("tiny")
    got = [(r.regime, r.aggregator, r.variant, r.error, r.split_used) for r in table.itertuples()]
    assert [g[:3] for g in got] == [w[:3] for w in LABEL_ERROR_TINY]
    for g, w in zip(got, LABEL_ERROR_TINY):
        assert g[4] == w[4], (g, w)
        assert _same(g[3], w[3]), (g, w)


def test_pseudo_real_tiny_decisions(data_home):
    table = _experiments().pseudo_real("tiny", data_home=data_home)
    got = [(r.scenario, r.what, r.method, r.value, r.split_used) for r in table.itertuples()]
    assert [g[:3] for g in got] == [w[:3] for w in PSEUDO_REAL_TINY]
    for g, w in zip(got, PSEUDO_REAL_TINY):
        if w[4] is not None:
            assert bool(g[4]) == w[4], (g, w)
        assert _same(g[3], w[3]), (g, w)


def test_real_tiny_decisions(data_home):
    table = _experiments().real("tiny", data_home=data_home)
    cols = (
        "aggregator",
        "split_used",
        "soft_split_used",
        "plain",
        "type_aware_guard",
        "type_aware_no_guard",
        "type_aware_soft_guard",
        "type_aware_soft_no_guard",
        "type_aware_auto",
    )
    got = [tuple(getattr(r, c) for c in cols) for r in table.itertuples()]
    assert [g[0] for g in got] == [w[0] for w in REAL_TINY]
    for g, w in zip(got, REAL_TINY):
        assert bool(g[1]) == w[1], (g, w)
        assert (None if g[2] is None or g[2] != g[2] else bool(g[2])) == w[2], (g, w)
        for a, b in zip(g[3:], w[3:]):
            assert _same(a, b), (g, w)


@pytest.mark.parametrize("regime, d, n, alpha, seed, kind, acc", PLANTED)
def test_planted_decisions(regime, d, n, alpha, seed, kind, acc):
    r, truth, types, rel = simulate.two_type(d, n, alpha, regime=regime, random_state=seed)
    ta = TypeAware(DawidSkene(), random_state=seed).fit(r)
    assert ta.split_kind_ == kind, ta.evidence_
    assert abs(accuracy(ta.labels_, truth) - acc) <= DECISION_ACCURACY
