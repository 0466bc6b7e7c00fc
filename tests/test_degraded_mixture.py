"""TypeAware(split="soft"): the degraded two-type Dawid-Skene mixture, label posterior
marginalised over the type, and its held-out guard (likelihood + task-level sign test)."""

from __future__ import annotations

import numpy as np
import pytest

from _tol import MONOTONE_REL_MAP, REORDER_F64
from kdcore.crowd import DawidSkene, MajorityVote, OneCoinDawidSkene, simulate
from kdcore.crowd._base import accuracy
from kdcore.crowd._type_aware import TypeAware
from kdcore.crowd._typed_em import degraded_em, mixture_heldout_loglik
from kdcore.crowd._types import TaskTypeClustering
from kdcore.experiments.crowd import plant_hard_type


def _planted(seed: int = 0, plant: bool = True, n_classes: int = 2):
    """3 answers per task, imbalanced classes; a hard type on 40% of the tasks where half the
    workers answer by coin flips (pseudo-real scenario (b) on simulated answers)."""
    priors = [0.85, 0.15] if n_classes == 2 else None
    r, truth = simulate.dawid_skene(
        4000, 30, n_classes, answers_per_task=3, skill_range=(0.7, 0.95), priors=priors, random_state=seed
    )
    if plant:
        r = plant_hard_type(r, "b", np.random.default_rng(seed))[0]
    return r, truth


def _cheap():
    """A faster hard-split clustering for the split='auto' tests (two random restarts)."""
    return TaskTypeClustering(n_init=2, random_state=0)


def test_soft_shapes_and_probabilities():
    r, truth = _planted()
    ta = TypeAware(DawidSkene(), split="soft", guard=False, random_state=0).fit(r)
    assert ta.split_used_
    assert ta.probas_.shape == (r.n_tasks, 2)
    assert np.allclose(ta.probas_.to_numpy().sum(1), 1.0)
    assert ta.type_proba_.shape == (r.n_tasks, 2)
    assert np.allclose(ta.type_proba_.to_numpy().sum(1), 1.0)
    assert ((ta.hard_retention_ >= 0) & (ta.hard_retention_ <= 1)).all()
    assert ta.skills_by_type_.shape == (r.n_workers, 2)
    assert set(np.unique(ta.types_)) <= {0, 1}
    # labels are the argmax of the marginal posterior
    assert (ta.labels_.to_numpy() == np.asarray(ta.classes_)[ta.probas_.to_numpy().argmax(1)]).all()
    # the EM objective never decreases
    h = np.asarray(ta.soft_history_)
    assert (np.diff(h) >= -MONOTONE_REL_MAP * np.abs(h[1:])).all()


def test_soft_beats_plain_on_planted_types_and_guard_takes_it():
    r, truth = _planted(seed=0)
    plain = accuracy(DawidSkene().fit(r).labels_, truth)
    nog = TypeAware(DawidSkene(), split="soft", guard=False, random_state=0).fit(r)
    g = TypeAware(DawidSkene(), split="soft", random_state=0).fit(r)
    # measured: plain 0.886, soft 0.916 (the guard splits: p = 0.029)
    assert accuracy(nog.labels_, truth) >= plain + 0.01
    assert g.split_used_, g.evidence_["reason"]
    assert accuracy(g.labels_, truth) >= plain
    assert all(x > 0 for x in g.evidence_["fold_gains"])
    assert g.evidence_["tasks_won"] > g.evidence_["tasks_lost"]


def test_soft_guard_refuses_single_type_data():
    r, truth = _planted(seed=0, plant=False)
    plain = DawidSkene().fit(r)
    g = TypeAware(DawidSkene(), split="soft", random_state=0).fit(r)
    assert not g.split_used_
    assert "p =" in g.evidence_["reason"] or "every fold" in g.evidence_["reason"]
    assert np.allclose(g.probas_.to_numpy(), plain.probas_.to_numpy())
    assert (g.types_ == 0).all()


def test_soft_is_reproducible_with_a_seed():
    r, _ = _planted(seed=2)
    a = TypeAware(DawidSkene(), split="soft", random_state=3).fit(r)
    b = TypeAware(DawidSkene(), split="soft", random_state=3).fit(r)
    for key in ("fold_gains", "tasks_won", "tasks_lost", "p_value", "split", "reason"):
        assert a.evidence_[key] == b.evidence_[key]
    assert np.array_equal(a.probas_.to_numpy(), b.probas_.to_numpy())


def test_soft_one_coin_and_multiclass():
    r, truth = _planted(seed=1)
    oc = TypeAware(OneCoinDawidSkene(), split="soft", guard=False, random_state=0).fit(r)
    assert np.allclose(oc.probas_.to_numpy().sum(1), 1.0)
    r3, _ = _planted(seed=1, plant=False, n_classes=3)
    m = TypeAware(DawidSkene(), split="soft", guard=False, random_state=0).fit(r3)
    assert m.probas_.shape == (r3.n_tasks, 3)
    assert np.allclose(m.probas_.to_numpy().sum(1), 1.0)
    g = TypeAware(DawidSkene(), split="soft", n_folds=2, random_state=0).fit(r3)
    assert isinstance(g.split_used_, bool) and np.isfinite(g.evidence_["p_value"])


def test_soft_with_one_type_equals_plain_model():
    """lambda = 1 for every worker makes the two types identical: the mixture's label posterior is DS's."""
    r, _ = _planted(seed=0, plant=False)
    ds = DawidSkene(smoothing=0.01).fit(r)
    post, log_conf, log_prior, lam, hist = degraded_em(r, ds.confusions_, ds.priors_.to_numpy(), n_iter=1)
    assert post.shape == (r.n_tasks, 2, 2) and log_conf.shape == (2, r.n_workers, 2, 2)
    # the first E-step uses lambda = 1/2 and equal type priors: a valid posterior
    assert np.allclose(post.sum((1, 2)), 1.0)
    # held-out score of a one-type model equals the direct formula
    lc = np.log(ds.confusions_)[None]
    p = ds.probas_.to_numpy()[:, None, :]
    t, w, l = r.task[:50], r.worker[:50], r.label[:50]
    direct = np.log((p[t, 0, :] * ds.confusions_[w, :, l]).sum(1)).sum()
    assert mixture_heldout_loglik(p, lc, t, w, l) == pytest.approx(direct, rel=REORDER_F64)


def test_soft_bad_inputs():
    r, _ = _planted(seed=0, plant=False)
    with pytest.raises(ValueError, match="Dawid-Skene family"):
        TypeAware(MajorityVote(), split="soft").fit(r)
    with pytest.raises(ValueError, match="split must be one of"):
        TypeAware(DawidSkene(), split="medium").fit(r)
    with pytest.raises(ValueError, match="sign_level"):
        TypeAware(DawidSkene(), split="soft", sign_level=0.0).fit(r)


def test_auto_takes_soft_when_only_the_soft_guard_supports_it():
    r, truth = _planted(seed=0)
    soft = TypeAware(DawidSkene(), split="soft", random_state=0).fit(r)
    hard = TypeAware(DawidSkene(), _cheap(), split="hard", random_state=0).fit(r)
    auto = TypeAware(DawidSkene(), _cheap(), split="auto", random_state=0).fit(r)
    assert soft.split_used_ and soft.split_kind_ == "soft"
    if hard.split_used_:
        assert auto.split_kind_ == "hard"
        assert np.array_equal(auto.probas_.to_numpy(), hard.probas_.to_numpy())
    else:
        assert auto.split_kind_ == "soft"
        assert np.array_equal(auto.probas_.to_numpy(), soft.probas_.to_numpy())
        assert auto.evidence_["hard_guard"]["split"] is False
    # a non-Dawid-Skene base falls back to the hard split
    mv = TypeAware(MajorityVote(random_state=0), _cheap(), split="auto", random_state=0).fit(r)
    assert mv.split_kind_ in ("hard", "none")
    # three hard types requested: the two-type soft model is not tried
    three = TypeAware(
        DawidSkene(), TaskTypeClustering(n_types=3, n_init=0, random_state=0), split="auto", random_state=0
    ).fit(r)
    assert three.split_kind_ in ("hard", "none") and "soft_guard" not in three.evidence_


def test_auto_on_single_type_data_is_plain():
    r, _ = _planted(seed=0, plant=False)
    plain = DawidSkene().fit(r)
    auto = TypeAware(DawidSkene(), _cheap(), split="auto", random_state=0).fit(r)
    assert auto.split_kind_ == "none" and not auto.split_used_
    assert "soft_guard" in auto.evidence_
    assert np.allclose(auto.probas_.to_numpy(), plain.probas_.to_numpy())
