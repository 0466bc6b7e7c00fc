"""The crowd simulator on real inputs (planted types and skills recovered), CrowdLayer, and the
crowd-students experiment's tiny profile."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _tol import CROWD_INPUT_SKILL, CROWD_INPUT_TYPES, PLANTED_PRIORS, SIM_TYPED_RELIABILITY
from kdcore.crowd import TaskTypeClustering
from kdcore.crowd.simulate_real import crowd_on_inputs


def _labels_and_hardness(n, seed):
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.5, 1, -1), rng.standard_normal(n)


def test_hard_type_is_the_hardest_examples_and_skills_are_planted():
    y, hard = _labels_and_hardness(20000, 0)
    sim = crowd_on_inputs(y, hard, answers_per_task=9, hard_share=0.3, n_workers=20, random_state=1)
    types = sim.types.loc[np.arange(y.size)].to_numpy()
    assert types.sum() == 6000
    assert hard[types == 1].min() >= hard[types == 0].max()  # exactly the 30% hardest
    np.testing.assert_array_equal(sim.truth.loc[np.arange(y.size)].to_numpy(), y)
    df = sim.responses.to_dataframe()
    t = sim.types.loc[df["task"]].to_numpy()
    right = df["label"].to_numpy() == sim.truth.loc[df["task"]].to_numpy()
    w = df["worker"].to_numpy()
    for typ in (0, 1):
        emp = np.bincount(w[t == typ], weights=right[t == typ], minlength=20) / np.bincount(w[t == typ], minlength=20)
        np.testing.assert_allclose(emp, sim.reliabilities[:, typ], atol=SIM_TYPED_RELIABILITY)
    assert (sim.responses.task_counts == 9).all()
    # seeded
    again = crowd_on_inputs(y, hard, answers_per_task=9, hard_share=0.3, n_workers=20, random_state=1)
    assert again.responses.to_dataframe().equals(df)


def test_planted_types_and_skills_recovered_by_type_clustering():
    """A specialist crowd (half the workers good on each type): the clustering finds the planted
    hard share, the types, and the per-type skills."""
    y, hard = _labels_and_hardness(4000, 2)
    W = 30
    rel = np.array([[0.92, 0.55]] * (W // 2) + [[0.55, 0.92]] * (W // 2))
    sim = crowd_on_inputs(y, hard, answers_per_task=9, hard_share=0.3, n_workers=W, reliabilities=rel, random_state=1)
    tt = TaskTypeClustering(random_state=0, n_threads=1).fit(sim.responses)
    planted = sim.types.to_numpy()
    found = tt.types_.loc[sim.types.index].to_numpy()
    hard_code = int(np.bincount(found[planted == 1], minlength=2).argmax())  # type labels are exchangeable
    assert np.mean((found == hard_code) == (planted == 1)) >= CROWD_INPUT_TYPES
    share = float(tt.type_proba_.loc[sim.types.index].to_numpy()[:, hard_code].mean())
    assert abs(share - 0.3) <= PLANTED_PRIORS
    # skills per (worker, recovered type) against the typed model's labels
    codes = np.asarray(tt.label_proba_).argmax(1)
    labels = pd.Series(np.asarray(sim.responses.classes_)[codes], index=sim.responses.task_ids)
    df = sim.responses.to_dataframe()
    is_hard = tt.types_.loc[df["task"]].to_numpy() == hard_code
    right = df["label"].to_numpy() == labels.loc[df["task"]].to_numpy()
    w = df["worker"].to_numpy()
    for typ, mask in ((0, ~is_hard), (1, is_hard)):
        est = np.bincount(w[mask], weights=right[mask], minlength=W) / np.bincount(w[mask], minlength=W)
        assert np.mean(np.abs(est - rel[:, typ])) <= CROWD_INPUT_SKILL


def test_simulator_bad_input():
    y, hard = _labels_and_hardness(50, 0)
    with pytest.raises(ValueError, match="hardness must have shape"):
        crowd_on_inputs(y, hard[:-1])
    with pytest.raises(ValueError, match=r"labels in \{-1, \+1\}"):
        crowd_on_inputs((y > 0).astype(int), hard)
    with pytest.raises(ValueError, match="exceeds n_workers"):
        crowd_on_inputs(y, hard, answers_per_task=9, n_workers=5)
    with pytest.raises(ValueError, match="hard_share must be <= 1"):
        crowd_on_inputs(y, hard, hard_share=1.5)
    with pytest.raises(ValueError, match="NaN"):
        crowd_on_inputs(y, np.full(50, np.nan))
