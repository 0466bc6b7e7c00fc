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


# ---------------------------------------------------------------------------- CrowdLayer
def _planted_crowd(y, conf, per_task, seed):
    """Answers of workers with confusions conf (W, 2, 2) on tasks with labels y in {-1, +1}."""
    from kdcore.crowd import Responses

    rng = np.random.default_rng(seed)
    n, W = y.size, conf.shape[0]
    workers = np.argsort(rng.random((n, W)), axis=1)[:, :per_task].ravel()
    tasks = np.repeat(np.arange(n), per_task)
    k = (y[tasks] > 0).astype(int)
    says_plus = rng.random(tasks.size) < conf[workers, k, 1]
    return Responses.from_arrays(tasks, workers, np.where(says_plus, 1, -1), classes=[-1, 1])


@pytest.fixture(scope="module")
def adversarial_crowd():
    from kdcore.distill import make_margin_data

    X, y, _ = make_margin_data(4000, 10, gamma=0.1, random_state=0)
    good = np.array([[0.85, 0.15], [0.15, 0.85]])
    adversarial = np.array([[0.25, 0.75], [0.75, 0.25]])
    biased = np.array([[0.2, 0.8], [0.05, 0.95]])  # says +1 almost always
    conf = np.stack([good] * 12 + [adversarial] * 10 + [biased] * 8)
    tr = np.arange(3000)
    r = _planted_crowd(y[tr], conf, 5, seed=1)
    return X, y, conf, r, tr


def test_crowd_layer_recovers_confusions_and_beats_majority_vote(adversarial_crowd):
    pytest.importorskip("torch")
    from _tol import CROWD_LAYER_CONFUSION
    from kdcore.crowd import MajorityVote
    from kdcore.distill import TwoLayerReLU, train
    from kdcore.distill.crowd_layer import CrowdLayer

    X, y, conf, r, tr = adversarial_crowd
    te = np.arange(3000, 4000)
    cl = CrowdLayer(m=16, n_steps=800, lr=8.0, random_state=0, n_threads=1).fit(X[tr], r)
    assert cl.loss_history_[-1] < cl.loss_history_[0]
    # the student's confidence and the workers' noise trade off (only their product is seen):
    # the confusions are recovered roughly, the good workers' a little too good
    est = cl.confusions_[np.argsort(cl.workers_.to_numpy())]
    assert np.mean(np.abs(est - conf)) <= CROWD_LAYER_CONFUSION
    acc_cl = np.mean(cl.predict(X[te]) == y[te])
    mv = MajorityVote(random_state=0).fit_predict(r)
    assert np.mean(mv.loc[np.arange(3000)].to_numpy() == y[tr]) < 0.85  # the votes are poor labels here
    net = TwoLayerReLU(16, X.shape[1], random_state=0)
    train(net, X[tr], mv, loss="hard", lr=8.0, n_steps=400, task_ids=np.arange(3000))
    acc_mv = np.mean(net.predict(X[te]) == y[te])
    assert acc_cl > acc_mv + 0.02, (acc_cl, acc_mv)


def test_crowd_layer_bad_input(adversarial_crowd):
    pytest.importorskip("torch")
    from kdcore.distill.crowd_layer import CrowdLayer

    X, y, conf, r, tr = adversarial_crowd
    with pytest.raises(ValueError, match="have no row in X"):
        CrowdLayer(m=4, n_steps=1).fit(X[:100], r)
    with pytest.raises(ValueError, match="m must be >= 1"):
        CrowdLayer(m=0, n_steps=1).fit(X[tr], r)


# ---------------------------------------------------------------------------- the experiment
def test_tiny_profile_runs_and_reports(data_home, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    from kdcore.experiments import crowd_students as cs

    out = tmp_path / "cells.jsonl"
    raw = cs.run_crowd_students("tiny", data_home=data_home, n_threads=1, out=out)
    cfg = cs.crowd_students_profile("tiny")
    n_engine = (len(cfg.sources) - 1) * len(cfg.widths) * len(cfg.radii)
    mnist, cifar = raw[raw["variant"] != "cifar"], raw[raw["variant"] == "cifar"]
    assert len(mnist) == n_engine + len(cfg.widths) * len(cfg.crowdlayer_radii)
    assert set(mnist["source"]) == set(cs.SOURCES)
    # the VGG 2+3 student on CIFAR cat vs dog: one network per label source, CrowdLayer included
    assert sorted(cifar["source"]) == sorted(cfg.cifar_sources) and "crowdlayer" in set(cifar["source"])
    assert (cifar["student"] == "vgg2+3").all()
    assert raw["test_acc"].between(0, 1).all()
    # the true labels are the labels of the truth arm; majority vote's accuracy is below 1 with a hard type
    assert (raw[raw["source"] == "truth"]["label_acc"] == 1.0).all()
    assert (raw[raw["source"] == "mv"]["label_acc"] < 1.0).all()
    # resume: every cell is in the file, nothing is run again and the rows are the same
    again = cs.run_crowd_students("tiny", data_home=data_home, n_threads=1, out=out, budget_s=0.0)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), raw.reset_index(drop=True))
    md, figs = cs.report_section(raw, tmp_path / "report")
    assert "## Learning from crowds" in md and "Neuron requirement" in md
    assert "VGG 2+3" in md and "CIFAR-10" in md
    assert len(figs) == 3 and all(p.exists() for p in figs)
    req = cs.requirement_table(raw)
    truth = req[req["source"] == "truth"]
    assert truth["neurons"].notna().all()  # the truth arm reaches its own target by construction


def test_resume_refuses_another_configuration(data_home, tmp_path):
    from dataclasses import replace

    from kdcore.experiments import crowd_students as cs

    out = tmp_path / "cells.jsonl"
    cfg = replace(cs.crowd_students_profile("tiny"), sources=("truth", "mv"), n_steps=5)
    cs.run_crowd_students(config=cfg, data_home=data_home, n_threads=1, out=out)
    with pytest.raises(ValueError, match="another configuration"):
        cs.run_crowd_students(config=replace(cfg, n_steps=6), data_home=data_home, n_threads=1, out=out)


def test_vgg_cells_run_resume_and_share_one_teacher(data_home, tmp_path):
    """The CIFAR cells alone on a few images and epochs: every source trains the VGG 2+3 student
    (CrowdLayer on raw answers included); a run stopped by its budget resumes where it stopped;
    two shards of the same cells share one teacher and give the same rows."""
    pytest.importorskip("torch")
    pytest.importorskip("PIL")
    from dataclasses import replace

    from kdcore.experiments import crowd_students as cs

    cfg = replace(
        cs.crowd_students_profile("tiny"),
        cifar_n_max=150,
        answers=(1, 3),
        cifar_sources=("truth", "mv", "ds-soft", "crowdlayer"),
    )
    out = tmp_path / "a" / "cells.jsonl"
    # a first run with one answer per task; the second adds 3 answers per task and resumes the first cell
    first = cs.run_crowd_students(
        config=replace(cfg, answers=(1,)), data_home=data_home, n_threads=1, out=out, variants="cifar"
    )
    assert len(first) == 4 and set(first["answers"]) == {1}
    raw = cs.run_crowd_students(config=cfg, data_home=data_home, n_threads=1, out=out, variants=["cifar"])
    assert len(out.read_text().splitlines()) == 2
    pd.testing.assert_frame_equal(raw.iloc[:4].reset_index(drop=True), first.reset_index(drop=True))
    assert sorted(raw["source"]) == sorted(2 * ["ds-soft", "mv", "truth", "crowdlayer"])
    assert (raw["variant"] == "cifar").all() and (raw["student"] == "vgg2+3").all()
    assert raw["test_acc"].between(0, 1).all() and (raw["best_epoch"] <= raw["epochs"]).all()
    assert (raw.loc[raw["source"] == "truth", "label_acc"] == 1.0).all()
    # one answer per task: majority vote is the answers themselves, so its labels are noisy
    assert raw.loc[(raw["source"] == "mv") & (raw["answers"] == 1), "label_acc"].iloc[0] < 1.0
    assert (tmp_path / "a" / "cifar_teacher.npz").is_file()
    with pytest.raises(ValueError, match="another configuration"):
        cs.run_crowd_students(config=replace(cfg, cifar_epochs=3), data_home=data_home, out=out, variants="cifar")
    with pytest.raises(ValueError, match="not in this profile"):
        cs.run_crowd_students(config=cfg, data_home=data_home, out=out, variants="wolves")
    # two shards in one folder: each runs one cell, the teacher is trained once, the rows match
    out2 = tmp_path / "b" / "cells.jsonl"
    for i in (0, 1):
        cs.run_crowd_students(config=cfg, data_home=data_home, n_threads=1, out=out2, variants="cifar", shard=(i, 2))
    assert sorted(p.name for p in out2.parent.glob("cells.shard*")) == [
        "cells.shard0of2.jsonl",
        "cells.shard1of2.jsonl",
    ]
    merged = cs.run_crowd_students(config=cfg, data_home=data_home, out=out2, variants="cifar", budget_s=0.0)
    cols = ["answers", "source", "test_acc", "label_acc"]
    pd.testing.assert_frame_equal(merged[cols].reset_index(drop=True), raw[cols].reset_index(drop=True))
    md, figs = cs.report_section(raw, tmp_path)
    assert "VGG 2+3" in md and "crowdlayer" in md
