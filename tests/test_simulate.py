"""kdcore.crowd.simulate: seeded, shaped as documented, and drawing from the planted model."""

import numpy as np
import pandas as pd
import pytest

from kdcore.crowd import Responses, simulate


def _empirical_confusions(r: Responses, truth: pd.Series, n_classes: int) -> np.ndarray:
    t = truth.loc[r.task_ids].to_numpy()
    y = pd.Index(r.classes_).get_indexer(t)[r.task]
    c = np.zeros((r.n_workers, n_classes, n_classes))
    np.add.at(c, (r.worker, y, r.label), 1.0)
    return c / np.maximum(c.sum(-1, keepdims=True), 1)


def test_dawid_skene_shapes_seed_and_planted_confusions():
    r, truth, params = simulate.dawid_skene(20000, 8, 3, answers_per_task=8, return_params=True, random_state=0)
    assert isinstance(r, Responses)
    assert r.n_responses == 160000 and r.n_tasks == 20000 and r.n_classes == 3
    assert (np.diff(r.task_indptr) == 8).all()
    assert truth.index.equals(pd.Index(r.task_ids))
    emp = _empirical_confusions(r, truth, 3)
    # each row has ~6,700 draws: binomial sd <= 0.006, so 0.03 is > 5 sd
    assert np.abs(emp - params["confusions"]).max() < 0.03
    r2, truth2 = simulate.dawid_skene(20000, 8, 3, answers_per_task=8, random_state=0)
    assert np.array_equal(r2.label, r.label) and truth2.equals(truth)
    r3, _ = simulate.dawid_skene(20000, 8, 3, answers_per_task=8, random_state=1)
    assert not np.array_equal(r3.label, r.label)


def test_distinct_workers_per_task_uniform():
    r, _ = simulate.one_coin(30000, 10, 2, answers_per_task=3, random_state=3)
    counts = np.bincount(r.worker, minlength=10)
    assert np.abs(counts / counts.sum() - 0.1).max() < 0.01  # each worker answers ~3/10 of tasks


def test_one_coin_skills_and_wrong_answers_uniform():
    skills = np.linspace(0.5, 0.95, 10)
    r, truth = simulate.one_coin(40000, 10, 4, answers_per_task=5, skills=skills, random_state=2)
    emp = _empirical_confusions(r, truth, 4)
    assert np.abs(np.einsum("wkk->wk", emp).mean(1) - skills).max() < 0.02
    off = emp[:, 0, 1:]  # wrong answers for true class 0 spread evenly
    assert np.abs(off - ((1 - skills) / 3)[:, None]).max() < 0.03


@pytest.mark.parametrize("regime", ["easy_hard", "specialist"])
def test_two_type(regime):
    r, truth, types, rel = simulate.two_type(20000, 40, 0.2, regime=regime, random_state=4)
    assert list(r.classes_) == [-1, 1]
    assert set(truth.unique()) == {-1, 1} and set(types.unique()) == {0, 1}
    assert rel.shape == (40, 2) and types.index.equals(truth.index)
    assert abs(r.n_responses / (20000 * 40) - 0.2) < 0.005
    if regime == "easy_hard":
        assert (rel[:, 0] >= 0.7).all() and (rel[:, 0] <= 0.95).all()
        assert (rel[:, 1] >= 0.5).all() and (rel[:, 1] <= 0.65).all()
    else:
        assert np.allclose(rel[:20], [0.9, 0.55]) and np.allclose(rel[20:], [0.55, 0.9])
    # empirical reliability per (worker, type) matches the planted one
    y = truth.loc[r.task_ids].to_numpy()[r.task]
    t = types.loc[r.task_ids].to_numpy()[r.task]
    right = np.asarray(r.classes_)[r.label] == y
    for k in (0, 1):
        m = t == k
        acc = np.bincount(r.worker[m], weights=right[m], minlength=40) / np.bincount(r.worker[m], minlength=40)
        assert np.abs(acc - rel[np.asarray(r.worker_ids), k]).max() < 0.06


def test_alpha_design_empty_tasks():
    r, truth = simulate.one_coin(5000, 5, 2, alpha=0.1, random_state=0)  # P(no answer) = 0.9^5 = 0.59
    assert r.n_tasks < 5000 and len(truth) == r.n_tasks
    assert (np.diff(r.task_indptr) > 0).all()
    r2, truth2 = simulate.one_coin(5000, 5, 2, alpha=0.1, empty="answer", random_state=0)
    assert r2.n_tasks == 5000 and len(truth2) == 5000


def test_million_responses():
    r, _ = simulate.dawid_skene(100_000, 1000, 2, answers_per_task=10, random_state=0)
    assert r.n_responses == 1_000_000
    assert np.array_equal(np.diff(r.task_indptr), np.full(100_000, 10))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(answers_per_task=3, alpha=0.5), ValueError, "exactly one"),
        (dict(), ValueError, "exactly one"),
        (dict(answers_per_task=11), ValueError, "exceeds n_workers"),
        (dict(alpha=0.0), ValueError, "alpha"),
        (dict(alpha=0.5, empty="keep"), ValueError, "empty"),
        (dict(answers_per_task=2, skill_range=(0.9, 0.2)), ValueError, "skill_range"),
        (dict(answers_per_task=2, priors=[1.0]), ValueError, "priors"),
        (dict(answers_per_task=2.5), TypeError, "answers_per_task"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        simulate.dawid_skene(100, 10, 2, random_state=0, **kwargs)


def test_two_type_bad_arguments():
    with pytest.raises(ValueError, match="regime"):
        simulate.two_type(10, 4, 0.5, regime="hard")
    with pytest.raises(ValueError, match="reliabilities"):
        simulate.two_type(10, 4, 0.5, reliabilities=np.ones((3, 2)))
    with pytest.raises(ValueError, match="type_share"):
        simulate.two_type(10, 4, 0.5, type_share=1.5)
