"""kdcore.crowdkit's GLAD and MACE against live crowd-kit 1.4.2 on the nine real datasets.

MACE is crowd-kit's computation step for step (the same start drawn from the same seed,
the same counts, crowd-kit's order of its strategy table): its attributes are compared
with pandas.testing at rtol 1e-6.

GLAD's M-step is scipy's conjugate gradient on the same objective, but the objective and
its gradient are summed in another order (one compiled pass instead of pandas groupbys),
and the line search branches on the last bits, so the fitted numbers drift apart by up to
about 1e-2 after several rounds. Its claim is: at least 99 % of the labels equal, and the
same attributes (type, shape, dtypes, index and column labels, names and order); the
first E-step (``n_iter=0``) is equal to rtol 1e-6. crowd-kit's GLAD re-melts the table in
pandas at every function evaluation (minutes on the larger datasets), so on temp, rte,
web, product and adult2 the comparison runs on the answers of their first 150 tasks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _crowdkit_oracle import DATASETS, answers, assert_same, assert_same_layout, quiet
from _tol import CROWDKIT_AGREEMENT

ck = pytest.importorskip("crowdkit.aggregation", reason="crowd-kit 1.4.2 (the oracle) is not installed")

from kdcore.crowdkit import aggregation as kc  # noqa: E402

GLAD_ATTRS = ["probas_", "labels_", "alphas_", "betas_", "priors_", "alphas_priors_mean_", "betas_priors_mean_"]
GLAD_SUBSET = {"temp", "rte", "web", "product", "adult2"}  # crowd-kit's GLAD takes minutes on the whole table
MACE_ATTRS = ["probas_", "labels_", "spamming_", "thetas_", "theta_priors_", "strategy_priors_", "smoothing_"]


def first_tasks(df: pd.DataFrame, n: int) -> pd.DataFrame:
    return df[df.task.isin(df.task.drop_duplicates().iloc[:n])].reset_index(drop=True)


def toy() -> pd.DataFrame:
    return pd.DataFrame({"task": [1, 1, 1, 2, 2, 2], "worker": ["a", "b", "c"] * 2, "label": [0, 0, 1, 1, 1, 1]})


# ---------------------------------------------------------------- GLAD
@pytest.mark.parametrize("name", DATASETS)
def test_glad_agrees_with_crowdkit(data_home, name):
    df = answers(data_home, name)
    if name in GLAD_SUBSET:
        df = first_tasks(df, 150)
    a, b = quiet(ck.GLAD().fit, df), kc.GLAD().fit(df)
    assert_same_layout(a, b, GLAD_ATTRS)
    assert_same(a, b, ["priors_", "alphas_priors_mean_", "betas_priors_mean_"])
    assert (a.labels_ == b.labels_).mean() >= CROWDKIT_AGREEMENT
    assert isinstance(b.loss_history_, list) and len(b.loss_history_) >= 1


@pytest.mark.parametrize("name", ["wsd", "dog", "rte"])
def test_glad_first_e_step_equals_crowdkit(data_home, name):
    df = answers(data_home, name)
    a, b = quiet(ck.GLAD(n_iter=0).fit, df), kc.GLAD(n_iter=0).fit(df)
    assert_same(a, b, GLAD_ATTRS + ["loss_history_"])
    for name in ("prior_labels_", "tasks_", "workers_"):  # pd.unique's arrays, first appearance
        x, y = getattr(a, name), getattr(b, name)
        assert type(x) is type(y) and list(x) == list(y), name


@pytest.mark.parametrize(
    "priors",
    [
        pd.Series([3.0, 1.0], index=[1, 0]),  # another order, not normalised
        pd.Series([0.0, 1.0], index=[0, 1]),  # a label ruled out
        pd.Series([0.2, 0.3, 0.5], index=[0, 1, 2]),  # a label no answer has
    ],
)
def test_glad_label_priors_as_crowdkit(priors):
    df = toy()
    a, b = quiet(ck.GLAD(labels_priors=priors).fit, df), kc.GLAD(labels_priors=priors).fit(df)
    assert_same(a, b, ["probas_", "labels_", "alphas_", "betas_", "priors_"])


def test_glad_prior_means_as_crowdkit(data_home):
    df = answers(data_home, "wsd")
    workers = df.worker.drop_duplicates()
    means = pd.Series(np.linspace(0.5, 2.0, len(workers)), index=workers.to_numpy())
    for kw in ({"alphas_priors_mean": means}, {"alphas_priors_mean": 2.0, "betas_priors_mean": 0.5}):
        a, b = quiet(ck.GLAD(**kw).fit, df), kc.GLAD(**kw).fit(df)
        assert_same_layout(a, b, GLAD_ATTRS)
        assert (a.labels_ == b.labels_).mean() >= CROWDKIT_AGREEMENT


def test_glad_bad_input():
    df = toy()
    with pytest.raises(ZeroDivisionError):  # crowd-kit fails deep inside; the drop-in says why
        quiet(ck.GLAD().fit, df.iloc[:0])
    with pytest.raises(ValueError, match="no rows"):
        kc.GLAD().fit(df.iloc[:0])
    with pytest.raises(ValueError, match="NaN"):
        kc.GLAD().fit(df.assign(label=[0, np.nan, 1, 1, 1, 1]))
    with pytest.raises(ValueError, match="at least two labels"):
        kc.GLAD().fit(df.assign(label=1))
    for lib in (ck, kc):
        with pytest.raises(KeyError, match="label"):
            quiet(lib.GLAD().fit, df.drop(columns="label"))
        with pytest.raises(ValueError):  # a label of the data without a prior
            quiet(lib.GLAD(labels_priors=pd.Series([1.0], index=[0])).fit, df)
        with pytest.raises(TypeError):
            quiet(lib.GLAD(n_iter=1.5).fit, df)
    with pytest.raises(ValueError, match="labels_priors does not list"):
        kc.GLAD(labels_priors=pd.Series([1.0], index=[0])).fit(df)
    with pytest.raises(TypeError, match="DataFrame"):
        kc.GLAD().fit(df.to_numpy())
    with pytest.raises(ValueError, match="alphas_priors_mean has no value for 2 workers"):
        kc.GLAD(alphas_priors_mean=pd.Series([2.0], index=["a"])).fit(df)
    with pytest.raises(TypeError, match="labels_priors"):
        kc.GLAD(labels_priors=[0.5, 0.5]).fit(df)


# ---------------------------------------------------------------- MACE
@pytest.mark.parametrize("name", DATASETS)
def test_mace_equals_crowdkit(data_home, name):
    df = answers(data_home, name)
    a, b = quiet(ck.MACE(n_restarts=1).fit, df), kc.MACE(n_restarts=1).fit(df)
    assert_same(a, b, MACE_ATTRS)


@pytest.mark.parametrize("name", ["wsd", "face"])
def test_mace_defaults_equal_crowdkit(data_home, name):
    df = answers(data_home, name)  # ten restarts from the same seed: the same run ten times
    assert_same(quiet(ck.MACE().fit, df), kc.MACE().fit(df), MACE_ATTRS)


@pytest.mark.parametrize("name", ["bluebirds", "dog", "adult2"])
def test_mace_em_equals_crowdkit(data_home, name):
    df = answers(data_home, name)
    a, b = quiet(ck.MACE(n_restarts=1, method="em").fit, df), kc.MACE(n_restarts=1, method="em").fit(df)
    assert_same(a, b, ["probas_", "labels_", "spamming_", "thetas_", "smoothing_"])
    assert not hasattr(b, "theta_priors_") and not hasattr(a, "theta_priors_")


@pytest.mark.parametrize("seed", ["global", "RandomState"])
def test_mace_restarts_from_a_stream_as_crowdkit(data_home, seed):
    # restarts that differ: the one with the best crowd-kit log marginal likelihood is kept
    df = answers(data_home, "wsd")
    fits = []
    for lib in (ck, kc):
        np.random.seed(7)
        rs = None if seed == "global" else np.random.RandomState(11)
        fits.append(quiet(lib.MACE(n_restarts=4, n_iter=3, random_state=rs).fit, df))
    assert_same(*fits, MACE_ATTRS)


def test_mace_few_rounds_and_one_label_as_crowdkit(data_home):
    df = answers(data_home, "dog")
    assert_same(quiet(ck.MACE(n_restarts=1, n_iter=0).fit, df), kc.MACE(n_restarts=1, n_iter=0).fit(df), MACE_ATTRS)
    one = toy().assign(label=1)
    for method in ("vb", "em"):
        a, b = quiet(ck.MACE(method=method).fit, one), kc.MACE(method=method).fit(one)
        assert_same(a, b, ["probas_", "labels_", "spamming_", "thetas_"])


def test_mace_order_follows_first_appearance():
    df = pd.DataFrame(
        {"task": ["b", "b", "a", "a", "a"], "worker": ["y", "x", "x", "y", "z"], "label": [2, 1, 1, 1, 2]}
    )
    a, b = quiet(ck.MACE().fit, df), kc.MACE().fit(df)
    assert_same(a, b, MACE_ATTRS)
    assert list(b.probas_.columns) == [2, 1] and list(b.probas_.index) == ["b", "a"]


def test_mace_bad_input():
    df = toy()
    with pytest.raises(ZeroDivisionError):
        quiet(ck.MACE().fit, df.iloc[:0])
    with pytest.raises(ValueError, match="no rows"):
        kc.MACE().fit(df.iloc[:0])
    with pytest.raises(ValueError, match="NaN"):
        kc.MACE().fit(df.assign(label=[0, np.nan, 1, 1, 1, 1]))
    with pytest.raises(UnboundLocalError):  # crowd-kit with no restart
        quiet(ck.MACE(n_restarts=0).fit, df)
    with pytest.raises(ValueError, match="n_restarts"):
        kc.MACE(n_restarts=0).fit(df)
    with pytest.raises(ValueError, match="method"):
        kc.MACE(method="EM").fit(df)
    with pytest.raises(ValueError, match="seed"):
        quiet(ck.MACE(random_state="a").fit, df)
    with pytest.raises(TypeError, match="random_state"):
        kc.MACE(random_state="a").fit(df)
    for lib in (ck, kc):
        with pytest.raises(KeyError, match="label"):
            quiet(lib.MACE().fit, df.drop(columns="label"))
    with pytest.raises(TypeError, match="DataFrame"):
        kc.MACE().fit(df.to_numpy())
