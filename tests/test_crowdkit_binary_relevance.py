"""kdcore.crowdkit's BinaryRelevance equals live crowd-kit 1.4.2's on multi-label answers.

Two multi-label datasets are built from the shared ones:

- web (relevance grades 1-5): each answer becomes the set of thresholds it reaches,
  ``["grade>=2", ..., "grade>=g"]`` (empty for grade 1), so sets are nested and often empty;
- dog (four breeds): each answer becomes the set of the worker's breed for this task and
  for the next task the worker answered (one or two string labels).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _crowdkit_oracle import answers, assert_same, quiet

ck = pytest.importorskip("crowdkit.aggregation", reason="crowd-kit 1.4.2 (the oracle) is not installed")

from kdcore.crowd import BinaryRelevance as NativeBR  # noqa: E402
from kdcore.crowd import MajorityVote as NativeMV  # noqa: E402
from kdcore.crowdkit import aggregation as kc  # noqa: E402


def multi_label(data_home, name: str) -> pd.DataFrame:
    df = answers(data_home, name)
    if name == "web":
        return df.assign(label=[[f"grade>={k}" for k in range(2, g + 1)] for g in df.label])
    nxt = df.groupby("worker", sort=False).label.shift(-1)
    return df.assign(
        label=[sorted({f"breed{a}", f"breed{int(b)}"} if b == b else {f"breed{a}"}) for a, b in zip(df.label, nxt)]
    )


BASES = {
    "MajorityVote": lambda lib: lib.MajorityVote(),
    "DawidSkene": lambda lib: lib.DawidSkene(n_iter=100),
    "OneCoinDawidSkene": lambda lib: lib.OneCoinDawidSkene(n_iter=100),
    "MACE": lambda lib: lib.MACE(n_restarts=1),
}


@pytest.mark.parametrize("base", list(BASES))
@pytest.mark.parametrize("name", ["web", "dog"])
def test_binary_relevance_equals_crowdkit(data_home, name, base):
    df = multi_label(data_home, name)
    a = quiet(ck.BinaryRelevance(BASES[base](ck)).fit, df)
    b = kc.BinaryRelevance(BASES[base](kc)).fit(df)
    pd.testing.assert_series_equal(a.labels_, b.labels_)
    # crowd-kit's aggregators_ is one dict shared by every instance (a class attribute): it
    # also holds the labels of earlier fits; the drop-in's is the instance's own
    assert list(b.aggregators_) == sorted({x for s in df.label for x in s})
    for label, agg in b.aggregators_.items():  # each label's fitted aggregator is crowd-kit's
        assert type(agg).__name__ == base
        assert_same(a.aggregators_[label], agg, ["labels_", "probas_"])


def test_crowdkit_docstring_example_and_formats():
    df = pd.DataFrame(
        [
            ["t1", "w1", ["house", "tree"]],
            ["t1", "w2", ["house"]],
            ["t1", "w3", ["house", "tree", "grass"]],
            ["t2", "w1", ["car"]],
            ["t2", "w2", ["car", "human"]],
            ["t2", "w3", ["train"]],
        ],
        columns=["task", "worker", "label"],
    )
    for frame in (df, df.assign(label=df.label.map(tuple)), df.assign(label=df.label.map(set))):
        for base in ("MajorityVote", "DawidSkene"):
            a = quiet(ck.BinaryRelevance(BASES[base](ck)).fit_predict, frame)
            pd.testing.assert_series_equal(a, kc.BinaryRelevance(BASES[base](kc)).fit_predict(frame))
    ints = df.assign(label=[[1, 2], [1], [1, 2, 3], [4], [4, 5], [6]])
    pd.testing.assert_series_equal(
        quiet(ck.BinaryRelevance().fit_predict, ints), kc.BinaryRelevance().fit_predict(ints)
    )
    empty = df.iloc[:0]
    pd.testing.assert_series_equal(
        quiet(ck.BinaryRelevance().fit_predict, empty), kc.BinaryRelevance().fit_predict(empty)
    )


def test_binary_relevance_bad_input():
    df = pd.DataFrame({"task": [1, 1], "worker": [1, 2], "label": [["a"], np.nan]})
    with pytest.raises(TypeError):
        quiet(ck.BinaryRelevance().fit, df)
    with pytest.raises(TypeError, match="row 1 holds nan"):
        kc.BinaryRelevance().fit(df)
    with pytest.raises(TypeError, match="must be a list"):  # crowd-kit would read "ab" as {"a", "b"}
        kc.BinaryRelevance().fit(df.assign(label=[["a"], "ab"]))
    with pytest.raises(AssertionError):
        ck.BinaryRelevance("MajorityVote")
    with pytest.raises(TypeError, match="base_aggregator"):
        kc.BinaryRelevance("MajorityVote")
    with pytest.raises(KeyError, match="label"):
        kc.BinaryRelevance().fit(df.drop(columns="label"))


@pytest.mark.parametrize("name", ["web", "dog"])
def test_native_binary_relevance_agrees_with_crowdkit_where_no_tie(data_home, name):
    # the native majority vote breaks ties towards 0 (sorted order); crowd-kit towards the
    # label seen first: on every task without a tie in any label the sets are equal
    df = multi_label(data_home, name)
    a = quiet(ck.BinaryRelevance(ck.MajorityVote()).fit, df)
    b = NativeBR(NativeMV(tie_break="first")).fit(df)
    tied = (b.probas_ == 0.5).any(axis=1)
    assert (~tied).sum() > len(tied) / 2
    untied = tied.index[~tied]
    pd.testing.assert_series_equal(
        a.labels_.loc[untied].map(list), b.labels_.loc[untied].map(list), check_index_type=False
    )
