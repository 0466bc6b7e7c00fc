"""kdcore.crowd.BinaryRelevance: each label's binary problem solved by the base aggregator.

The oracle builds each label's 0/1 answers independently (pandas ``explode``) and fits
the same native aggregator on them; the binary relevance fit must give the same
posteriors and label sets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _tol import REORDER_F64
from kdcore.crowd import BinaryRelevance, DawidSkene, MajorityVote, simulate
from kdcore.crowd._binary_relevance import binarize


@pytest.fixture(scope="module")
def multi() -> pd.DataFrame:
    """Three labels, each a planted Dawid-Skene problem over the same tasks and workers."""
    frames = []
    for k, name in enumerate(["cat", "dog", "bird"]):
        r, _ = simulate.dawid_skene(300, 15, 2, answers_per_task=5, random_state=k)
        frames.append(r.to_dataframe().set_index(["task", "worker"]).label.rename(name))
    wide = pd.concat(frames, axis=1).dropna().astype(int).reset_index()
    names = np.array(["cat", "dog", "bird"], dtype=object)
    labels = [list(names[row.astype(bool)]) for row in wide[["cat", "dog", "bird"]].to_numpy()]
    return pd.DataFrame({"task": wide.task, "worker": wide.worker, "label": labels})


def oracle(df: pd.DataFrame, make) -> tuple[pd.DataFrame, pd.Series]:
    long = df.explode("label")
    probas, sets = {}, {}
    for label in sorted(long.label.dropna().unique()):
        on = long[long.label == label].drop_duplicates(["task", "worker"])[["task", "worker"]].assign(x=1)
        binary = df[["task", "worker"]].merge(on, how="left", on=["task", "worker"]).fillna({"x": 0})
        binary = binary.rename(columns={"x": "label"}).astype({"label": int})
        fit = make().fit(binary)
        probas[label] = fit.probas_[1]
        sets[label] = fit.labels_ == 1
    p = pd.DataFrame(probas)
    s = pd.DataFrame(sets)
    return p, s.apply(lambda row: [c for c in s.columns if row[c]], axis=1)


@pytest.mark.parametrize(
    "make", [lambda: MajorityVote(tie_break="first"), lambda: DawidSkene(n_iter=50)], ids=["mv", "ds"]
)
def test_binary_relevance_equals_per_label_fits(multi, make):
    br = BinaryRelevance(make()).fit(multi)
    p, sets = oracle(multi, make)
    assert list(br.classes_) == ["bird", "cat", "dog"]
    np.testing.assert_allclose(br.probas_.to_numpy(), p.to_numpy(), atol=REORDER_F64)
    assert br.labels_.tolist() == sets.tolist()
    assert list(br.labels_.index) == sorted(multi.task.unique())
    assert set(br.aggregators_) == {"bird", "cat", "dog"}


def test_binarize_as_multilabel_binarizer():
    col = pd.Series([["b", "a"], [], ("c",), {"a"}, np.array(["b", "b"])])
    out, classes = binarize(col)
    assert list(classes) == ["a", "b", "c"] and classes.dtype == object
    np.testing.assert_array_equal(out, [[1, 1, 0], [0, 0, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]])
    out, classes = binarize(pd.Series([[3, 1], [2]]))
    assert classes.dtype.kind == "i" and list(classes) == [1, 2, 3]


def test_bad_input(multi):
    with pytest.raises(TypeError, match="row 0 holds"):
        BinaryRelevance().fit(multi.assign(label="cat"))
    with pytest.raises(TypeError, match="base_aggregator"):
        BinaryRelevance(base_aggregator="mv").fit(multi)
    with pytest.raises(ValueError, match="no rows"):
        BinaryRelevance().fit(multi.iloc[:0])
    with pytest.raises(ValueError, match="every label list is empty"):
        BinaryRelevance().fit(multi.assign(label=[[]] * len(multi)))
    with pytest.raises(KeyError, match="label"):
        BinaryRelevance().fit(multi.drop(columns="label"))
