"""The from-crowd path: answers + features by task id -> aggregated targets -> trained student."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdcore._from_crowd import from_crowd
from kdcore.crowd import DawidSkene, Responses
from kdcore.crowd.simulate_real import crowd_on_inputs
from kdcore.distill import make_margin_data


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("crowd")
    X, y, _ = make_margin_data(600, 8, gamma=0.1, random_state=0)
    ids = np.array([f"img{j}" for j in range(600)])
    sim = crowd_on_inputs(
        y.astype(int),
        np.random.default_rng(0).random(600),
        answers_per_task=5,
        hard_share=0.3,
        task_ids=ids,
        random_state=0,
    )
    ans = sim.responses.to_dataframe()
    ans["label"] = ans["label"].map({-1: "no", 1: "yes"})
    ans.to_csv(d / "answers.csv", index=False)
    pd.DataFrame({"task": ids, "truth": np.where(y > 0, "yes", "no")}).to_csv(d / "truth.csv", index=False)
    perm = np.random.default_rng(1).permutation(600)  # features in another order than the answers
    np.save(d / "features.npy", X[perm] * 3.0)
    (d / "ids.txt").write_text("\n".join(ids[perm]) + "\n")
    pd.DataFrame(X[perm], columns=[f"f{k}" for k in range(8)]).assign(task=ids[perm]).to_parquet(d / "features.parquet")
    return d, X, y, ids


def test_ds_soft_student_from_npy(files, tmp_path, capsys):
    d, X, y, ids = files
    res = from_crowd(
        d / "answers.csv", d / "features.npy", task_ids=d / "ids.txt", width=8, out=tmp_path, truth=d / "truth.csv"
    )
    assert res["positive"] == "yes" and res["n_tasks"] == 600
    printed = capsys.readouterr().out
    assert f"accuracy on 600 gold tasks: {res['student_accuracy']:.4f}" in printed
    # the soft labels written are Dawid-Skene's posteriors on the same answers
    used = pd.read_csv(tmp_path / "soft_labels.csv", index_col="task")
    r = Responses.from_dataframe(pd.read_csv(d / "answers.csv", dtype=str))
    ds = DawidSkene().fit_predict_proba(r)
    np.testing.assert_allclose(used.loc[ds.index, ["no", "yes"]].to_numpy(), ds.to_numpy(), atol=1e-12)
    # the weights written give the accuracy printed (rows scaled to unit norm, ids matched)
    w = np.load(tmp_path / "weights.npz")
    from kdcore.distill import TwoLayerReLU

    net = TwoLayerReLU(8, 8, random_state=0)
    net.W = w["W"]
    Xu = X / np.linalg.norm(X, axis=1, keepdims=True)
    acc = np.mean(np.where(net.decision_function(Xu) > 0, 1, -1) == y)
    assert acc == pytest.approx(res["student_accuracy"])
    assert res["student_accuracy"] > 0.8


@pytest.mark.parametrize("labels", ["mv", "ds-map"])
def test_hard_labels_from_parquet(files, tmp_path, labels):
    d, X, y, ids = files
    res = from_crowd(
        d / "answers.csv",
        d / "features.parquet",
        width=8,
        out=tmp_path,
        truth=d / "truth.csv",
        labels=labels,
        echo=None,
    )
    used = pd.read_csv(tmp_path / "soft_labels.csv", index_col="task")
    assert set(np.unique(used.to_numpy())) <= {0.0, 1.0}
    assert res["student_accuracy"] > 0.8


def test_from_crowd_bad_input(files, tmp_path):
    d, X, y, ids = files
    a, f = d / "answers.csv", d / "features.npy"
    with pytest.raises(ValueError, match="width must be >= 1"):
        from_crowd(a, f, task_ids=d / "ids.txt", width=0, out=tmp_path)
    with pytest.raises(ValueError, match="without task ids"):
        from_crowd(a, f, width=4, out=tmp_path)
    short = tmp_path / "short.txt"
    short.write_text("\n".join(ids[:10]))
    with pytest.raises(ValueError, match="has 10 ids but .* has 600 rows"):
        from_crowd(a, f, task_ids=short, width=4, out=tmp_path)
    np.save(tmp_path / "part.npy", X[:500])
    (tmp_path / "part.txt").write_text("\n".join(ids[:500]))
    with pytest.raises(ValueError, match=r"100 answered task\(s\) have no features"):
        from_crowd(a, tmp_path / "part.npy", task_ids=tmp_path / "part.txt", width=4, out=tmp_path)
    pd.DataFrame({"task": ids, "truth": "maybe"}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ValueError, match=r"classes \['maybe'\] that no answer uses"):
        from_crowd(a, f, task_ids=d / "ids.txt", width=4, out=tmp_path, truth=tmp_path / "t.csv")
    with pytest.raises(ValueError, match="labels must be one of"):
        from_crowd(a, f, task_ids=d / "ids.txt", width=4, out=tmp_path, labels="oracle")


def test_crowdlayer_writes_confusions(files, tmp_path):
    pytest.importorskip("torch")
    d, X, y, ids = files
    res = from_crowd(
        d / "answers.csv",
        d / "features.parquet",
        width=8,
        out=tmp_path,
        truth=d / "truth.csv",
        labels="crowdlayer",
        n_steps=200,
        echo=None,
    )
    conf = pd.read_csv(tmp_path / "confusions.csv", index_col="worker")
    np.testing.assert_allclose(conf[["P(no|no)", "P(yes|no)"]].sum(axis=1), 1.0, atol=1e-9)
    assert res["student_accuracy"] > 0.8
