"""The task-type experiments at their tiny profile: tables have the promised shape, plots draw."""

from __future__ import annotations

import numpy as np
import pytest

from kdcore.experiments import crowd as ex


def _plot(fn, table, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / f"{fn.__name__}.png"
    fn(table, path)
    assert path.stat().st_size > 1000


def test_typing_accuracy_tiny(tmp_path):
    t = ex.typing_accuracy("tiny")
    assert {"sweep", "regime", "method", "accuracy", "answers_per_task"} <= set(t.columns)
    assert set(t.sweep) == {"alpha", "n_workers", "phase"}
    assert {"spectral", "refined", "mixture", "oracle (params+labels)", "oracle (params)"} <= set(t.method)
    assert t.accuracy.between(0.5, 1.0).all()
    # the oracle that knows labels and reliabilities is an upper bound of the one that knows reliabilities
    o = t[t.sweep == "alpha"].pivot_table(index=["regime", "alpha"], columns="method", values="accuracy")
    assert (o["oracle (params+labels)"] >= o["oracle (params)"] - 0.03).all()
    _plot(ex.plot_typing_accuracy, t, tmp_path)


def test_label_error_tiny(tmp_path):
    t = ex.label_error("tiny")
    assert set(t.variant) == {"plain", "type-aware", "type-aware auto", "oracle types"}
    assert t.error.between(0, 1).all()
    _plot(ex.plot_label_error, t, tmp_path)


def test_experiment_aggregators_are_seeded():
    """Every aggregator the experiments build gives the same answer twice (SpectralEM's worker
    split and tensor-power starts were unseeded: seeded runs of label_error differed)."""
    from kdcore.crowd import simulate

    r, truth, types, rel = simulate.two_type(300, 20, 0.3, regime="easy_hard", empty="answer", random_state=1)
    for name, make in ex._aggregators(random_state=3).items():
        a, b = make().fit(r).probas_.to_numpy(), make().fit(r).probas_.to_numpy()
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_pseudo_real_tiny(data_home, tmp_path):
    t = ex.pseudo_real("tiny", data_home=data_home)
    assert set(t.what) == {"typing", "label"}
    assert set(t.scenario) == {"a", "b"}
    assert {"DS type-aware soft (guard)", "DS type-aware soft (no guard)", "DS type-aware auto (guard)"} <= set(
        t.method
    )
    assert t.value.between(0, 1).all()
    _plot(ex.plot_pseudo_real, t, tmp_path)


def test_plant_hard_type_changes_only_planted_tasks(data_home):
    from kdcore.crowd import datasets

    r, truth = datasets.load("bluebirds", data_home)
    out, planted = ex.plant_hard_type(r, "a", np.random.default_rng(0))
    a = r.to_dataframe().set_index(["task", "worker"])["label"]
    b = out.to_dataframe().set_index(["task", "worker"])["label"].reindex(a.index)
    changed = a.index[(a != b).to_numpy()].get_level_values("task").unique()
    hard = out.task_ids[planted == 1]
    assert set(changed) <= set(hard) and len(changed) > 0
    with pytest.raises(ValueError, match="scenario"):
        ex.plant_hard_type(r, "c", np.random.default_rng(0))


def test_real_tiny(data_home, tmp_path):
    t = ex.real("tiny", data_home=data_home)
    assert {"plain", "type_aware_guard", "type_aware_no_guard", "split_used", "reason"} <= set(t.columns)
    # with the guard off the split is used; with it on, type-aware equals plain when no split is taken
    same = t[~t.split_used]
    assert np.allclose(same.plain, same.type_aware_guard)
    soft = t[t.soft_split_used == False]  # noqa: E712 (None for non-Dawid-Skene bases)
    assert np.allclose(soft.plain, soft.type_aware_soft_guard)
    assert {"type_aware_soft_guard", "type_aware_soft_no_guard", "type_aware_auto", "soft_p_value"} <= set(t.columns)
    _plot(ex.plot_real, t, tmp_path)


def test_profile_is_checked():
    with pytest.raises(ValueError, match="profile"):
        ex.typing_accuracy("huge")
