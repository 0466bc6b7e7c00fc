"""Invariants every fit must keep, checked on simulated data.

- posteriors are finite, non-negative and sum to one;
- relabelling task ids, worker ids or class values (and shuffling the rows)
  permutes the output and changes nothing else;
- duplicating the whole data set (every answer twice, the copy on a renamed
  task) leaves the Dawid-Skene estimates unchanged up to tolerance;
- a typed fit with one type equals the plain fit;
- two-layer training with lr = 0 leaves the weights unchanged;
- the projection never lets a neuron leave its ball ||W_j - W_j(0)|| <= B / sqrt(m).
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _tol import (
    BOUND_SLACK,
    FEW_HUNDRED_ULP,
    FIT_TWIN_F64,
    ITERATED_F64,
    KERNEL_F64,
    NULL_STEP_REL,
    PROB_SUM,
    PROJ_F32_ABS,
    PROJ_F32_REL,
    RELABEL,
    REORDER_F64,
    TIE,
)
from kdcore.crowd import DawidSkene, MajorityVote, OneCoinDawidSkene, Responses, WeightedMajorityVote, _em, simulate
from kdcore.crowd._glad import GLAD
from kdcore.crowd._kos import KOS, RatioOfEigenvectors
from kdcore.crowd._mace import MACE
from kdcore.crowd._spectral_em import SpectralEM
from kdcore.crowd._triangular import TriangularEstimation
from kdcore.crowd._type_aware import TypeAware
from kdcore.crowd._typed_em import em_fit
from kdcore.crowd._types import TaskTypeClustering
from kdcore.distill import TwoLayerReLU, make_margin_data, train, train_many


@pytest.fixture(scope="module")
def multi():
    r, _ = simulate.dawid_skene(150, 10, 3, answers_per_task=5, random_state=1)
    return r


@pytest.fixture(scope="module")
def binary():
    r, _ = simulate.dawid_skene(150, 10, 2, answers_per_task=5, random_state=2)
    return r


def _all(r: Responses):
    rel = pd.Series(np.linspace(0.6, 0.9, r.n_workers), index=r.worker_ids)
    out = [
        MajorityVote(tie_break="first"),
        WeightedMajorityVote(reliabilities=rel),
        DawidSkene(),
        OneCoinDawidSkene(),
        SpectralEM(random_state=0),
        GLAD(),
        MACE(random_state=0),
    ]
    if r.n_classes == 2:
        out += [TriangularEstimation(), KOS(random_state=0), RatioOfEigenvectors(random_state=0)]
    return out


@pytest.mark.parametrize("which", ["multi", "binary"])
def test_posteriors_finite_and_sum_to_one(which, request):
    r = request.getfixturevalue(which)
    for est in _all(r):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            P = est.fit(r).probas_.to_numpy()
        name = type(est).__name__
        assert np.all(np.isfinite(P)), name
        assert P.min() >= 0.0, name
        np.testing.assert_allclose(P.sum(1), 1.0, atol=PROB_SUM, err_msg=name)


# ----------------------------------------------------------------------------- relabelling
def _relabel(r: Responses, seed: int, what: str):
    """New Responses with task ids, worker ids or class values renamed by a random bijection,
    the rows shuffled; returns it and the maps old -> new."""
    rng = np.random.default_rng(seed)
    df = r.to_dataframe()
    maps = {}
    for col in ("task", "worker", "label"):
        old = pd.Index(pd.unique(df[col]))
        if col == what or what == "all":
            new = [f"{col[0]}{v}" for v in rng.permutation(len(old)) + 1000]  # other names, another sort order
        else:
            new = list(old)
        maps[col] = dict(zip(old, new))
        df[col] = df[col].map(maps[col])
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    classes = [maps["label"][c] for c in r.classes_]
    return Responses.from_dataframe(df, classes=sorted(classes)), maps


# Methods whose result does not depend on the order of tasks, workers or classes
# (exactly up to float summation order). KOS, MACE and SpectralEM draw random
# starting points in code order, so a relabelling changes their random stream:
# they are checked for relabelling with the draws held fixed elsewhere.
_EQUIVARIANT = {
    "MajorityVote": lambda r: MajorityVote(),
    "DawidSkene": lambda r: DawidSkene(tol=0.0, n_iter=30),
    "OneCoinDawidSkene": lambda r: OneCoinDawidSkene(tol=0.0, n_iter=30),
    "GLAD": lambda r: GLAD(tol=0.0, n_iter=15),
    "TriangularEstimation": lambda r: TriangularEstimation(),
}


@pytest.mark.parametrize("what", ["task", "worker", "label", "all"])
@pytest.mark.parametrize("name", list(_EQUIVARIANT))
def test_relabelling_permutes_the_output(name, what, binary, multi):
    r = binary if name == "TriangularEstimation" else multi
    r2, maps = _relabel(r, seed=zlib.crc32(f"{name}-{what}".encode()) % 1000, what=what)
    a = _EQUIVARIANT[name](r).fit(r)
    b = _EQUIVARIANT[name](r2).fit(r2)
    Pa = a.probas_.rename(index=maps["task"], columns=maps["label"])
    Pb = b.probas_.loc[Pa.index, Pa.columns]
    np.testing.assert_allclose(Pb.to_numpy(), Pa.to_numpy(), atol=FIT_TWIN_F64, rtol=0)
    # hard labels agree wherever the posterior has a clear winner (exact ties may break either way)
    top = np.sort(Pa.to_numpy(), axis=1)
    clear = (top[:, -1] - top[:, -2]) > TIE
    la = a.labels_.rename(index=maps["task"]).map(maps["label"])
    assert (b.labels_.loc[la.index][clear] == la[clear]).all()
    if name in ("DawidSkene", "OneCoinDawidSkene"):
        np.testing.assert_allclose(b.loss_history_, a.loss_history_, rtol=ITERATED_F64)


# ----------------------------------------------------------------------------- duplicated data
def test_duplicating_the_data_leaves_ds_unchanged(multi):
    """Every answer twice, the copy on a renamed task: the M-step sees every count doubled,
    so with no smoothing the EM fixed point (confusions, priors, posteriors) is the same."""
    r = multi.subset_tasks(np.arange(multi.n_tasks) < 80)
    df = r.to_dataframe()
    df["task"] = df["task"].astype(str)
    copy = df.copy()
    copy["task"] = copy["task"] + "_copy"
    r2 = Responses.from_dataframe(pd.concat([df, copy], ignore_index=True))
    kw = dict(n_iter=200, tol=1e-12, smoothing=0.0)
    a = DawidSkene(**kw).fit(r)
    b = DawidSkene(**kw).fit(r2)
    Pa = a.probas_.set_axis(a.probas_.index.astype(str), axis=0)
    np.testing.assert_allclose(b.probas_.loc[Pa.index].to_numpy(), Pa.to_numpy(), atol=RELABEL)
    np.testing.assert_allclose(b.probas_.loc[Pa.index + "_copy"].to_numpy(), Pa.to_numpy(), atol=RELABEL)
    np.testing.assert_allclose(b.priors_.to_numpy(), a.priors_.to_numpy(), atol=RELABEL)
    wa = pd.Index(a.worker_ids_)
    order = pd.Index(b.worker_ids_).get_indexer(wa)
    np.testing.assert_allclose(b.confusions_[order], a.confusions_, atol=RELABEL)
    # the per-answer loss is an average: unchanged too
    np.testing.assert_allclose(b.loss_history_[-1], a.loss_history_[-1], rtol=RELABEL)


# ----------------------------------------------------------------------------- one type
def test_type_aware_with_one_type_equals_plain(multi):
    ta = TypeAware(
        DawidSkene(), TaskTypeClustering(n_types=1, method="spectral", random_state=0), guard=False, random_state=0
    ).fit(multi)
    plain = DawidSkene().fit(multi)
    assert not ta.split_used_ and (ta.types_ == 0).all()
    np.testing.assert_allclose(ta.probas_.to_numpy(), plain.probas_.to_numpy(), atol=REORDER_F64)


def test_typed_em_core_with_one_type_equals_dawid_skene(multi):
    """The k-type mixture EM (TaskTypeClustering's engine) with T = 1 is plain Dawid-Skene."""
    r = multi
    counts = np.zeros((r.n_tasks, r.n_classes))
    np.add.at(counts, (r.task, r.label), 1.0)
    post0 = (counts / counts.sum(1, keepdims=True))[:, None, :]
    post, log_conf, log_prior, _ = em_fit(
        r, post0, n_iter=25, tol=0.0, smoothing=_em.DEFAULT_SMOOTHING, backend="cpp", n_threads=1
    )
    ds = DawidSkene(n_iter=25, tol=0.0, n_threads=1).fit(r)
    np.testing.assert_allclose(post[:, 0, :], ds.probas_.to_numpy(), atol=KERNEL_F64)
    np.testing.assert_allclose(np.exp(log_conf[0]), ds.confusions_, atol=KERNEL_F64)


# ----------------------------------------------------------------------------- two-layer engine
@pytest.mark.parametrize("backend", ["cpp", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["hard", "soft"])
def test_lr_zero_leaves_weights_unchanged(backend, dtype, loss):
    X, y, p = make_margin_data(80, 6, gamma=0.1, random_state=3)
    X = X.astype(dtype)
    net = TwoLayerReLU(8, 6, init="random", random_state=4, dtype=dtype)
    W0 = net.W.copy()
    h = train(net, X, y if loss == "hard" else p, loss=loss, lr=0.0, n_steps=7, radius=0.5, backend=backend)
    assert np.array_equal(net.W, W0)
    assert np.all(h.loss == h.loss[0]) and h.final_loss == pytest.approx(h.loss[0], rel=NULL_STEP_REL)


@given(
    seed=st.integers(0, 2**16),
    m=st.sampled_from([2, 4, 6]),
    B=st.floats(1e-3, 5.0),
    lr=st.sampled_from([0.1, 1.0, 50.0]),
    steps=st.integers(1, 6),
    backend=st.sampled_from(["cpp", "numpy"]),
    dtype=st.sampled_from([np.float32, np.float64]),
)
@settings(max_examples=40, deadline=None, derandomize=True)
def test_projection_keeps_every_neuron_in_its_ball(seed, m, B, lr, steps, backend, dtype):
    X, y, p = make_margin_data(40, 4, gamma=0.1, random_state=seed)
    X = X.astype(dtype)
    net = TwoLayerReLU(m, 4, random_state=seed, dtype=dtype)
    bound = B / np.sqrt(m)
    tol = bound * (PROJ_F32_REL if dtype == np.float32 else BOUND_SLACK) + (
        PROJ_F32_ABS if dtype == np.float32 else FEW_HUNDRED_ULP
    )
    for _ in range(3):  # after each call, starting from where the last one left the weights
        train(net, X, p, loss="soft", lr=lr, n_steps=steps, radius=B, backend=backend)
        assert net.distance_from_init().max() <= bound + tol


def test_projection_per_network_in_a_batch():
    """train_many: each network is projected onto its own radius, none onto another's."""
    X, y, p = make_margin_data(60, 5, gamma=0.1, random_state=0)
    cfgs = [
        {"m": 4, "loss": "hard", "lr": 20.0, "radius": B, "random_state": i}
        for i, B in enumerate([0.01, 0.1, 1.0, None])
    ]
    hs = train_many(cfgs, X, y, p, n_steps=10)
    for h, B in zip(hs, [0.01, 0.1, 1.0, None]):
        d = h.model.distance_from_init().max()
        if B is not None:
            assert d <= B / 2 * (1 + BOUND_SLACK)
            assert d >= 0.5 * B / 2  # lr = 20 pushes every net to its boundary
        else:
            assert d > 0.5  # unprojected


# ------------------------------------------------------------------ one API across the crowd estimators
from kdcore.crowd import (  # noqa: E402
    MMSR,
    Auto,
    BayesianDawidSkene,
    CommunityDawidSkene,
    GoldMajorityVote,
    Wawa,
    ZeroBasedSkill,
)

ESTIMATORS = [
    MajorityVote,
    WeightedMajorityVote,
    DawidSkene,
    OneCoinDawidSkene,
    SpectralEM,
    TriangularEstimation,
    KOS,
    RatioOfEigenvectors,
    GLAD,
    MACE,
    TypeAware,
    TaskTypeClustering,
    BayesianDawidSkene,
    CommunityDawidSkene,
    Auto,
    Wawa,
    ZeroBasedSkill,
    GoldMajorityVote,
    MMSR,
]


def _fit_small(cls, r):
    kw = {"reliabilities": np.linspace(0.6, 0.9, r.n_workers)} if cls is WeightedMajorityVote else {}
    if cls in (MACE, TaskTypeClustering):
        kw["n_init"] = 1
    if cls is TypeAware:
        kw["n_folds"] = 1
    est = cls(**kw, random_state=0) if "random_state" in cls._param_names() else cls(**kw)
    fit_kw = {"true_labels": pd.Series(0, index=r.task_ids)} if cls is GoldMajorityVote else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return est, est.fit(r, **fit_kw)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_estimator_shares_one_parameter_protocol(cls, binary):
    import inspect

    sig = inspect.signature(cls.__init__).parameters
    est = cls()
    params = est.get_params(deep=False)
    assert list(params) == [p for p in sig if p != "self"]
    assert {k: v.default for k, v in sig.items() if k != "self"} == params  # __init__ only stores
    assert "backend" in params and "n_threads" in params
    if "random_state" in params:
        assert params["random_state"] is None
    assert "n_restarts" not in params and "seed" not in params
    assert repr(est).startswith(f"{cls.__name__}(")
    with pytest.raises(ValueError, match="invalid parameter"):
        est.set_params(not_a_parameter=1)
    assert est.set_params(n_threads=1) is est and est.n_threads == 1
    fresh, fitted = _fit_small(cls, binary)
    assert fitted is fresh
    left = [k for k in vars(fitted) if k not in params and not k.endswith("_")]
    assert not left, f"fit left non-fitted attributes {left}"
    assert fitted.clone().get_params(deep=False).keys() == params.keys()
    assert not any(k.endswith("_") for k in vars(fitted.clone()))


def test_nested_parameters_of_type_aware(binary):
    ta = TypeAware()
    ta.set_params(base__n_iter=5, clustering__n_init=0, guard=False)
    assert isinstance(ta.base, DawidSkene) and ta.base.n_iter == 5
    assert isinstance(ta.clustering, TaskTypeClustering) and ta.clustering.n_init == 0
    deep = ta.get_params(deep=True)
    assert deep["base__n_iter"] == 5 and deep["clustering__n_init"] == 0 and deep["guard"] is False
    assert "base__n_iter" not in ta.get_params(deep=False)
    twin = ta.clone()
    assert twin.base is not ta.base and twin.base.get_params() == ta.base.get_params()
    ta.set_params(base=OneCoinDawidSkene(), base__tol=1e-3)
    assert isinstance(ta.base, OneCoinDawidSkene) and ta.base.tol == 1e-3
    with pytest.raises(ValueError, match="invalid parameter 'n_iterations'"):
        ta.set_params(base__n_iterations=3)
    with pytest.raises(ValueError, match="not an estimator"):
        DawidSkene().set_params(n_iter__x=1)
    # the nested setting reaches the fit: a one-round base gives the one-round model
    r = binary
    a = TypeAware(DawidSkene(n_iter=1), guard=False, random_state=0).fit(r)
    b = TypeAware(guard=False, random_state=0).set_params(base__n_iter=1).fit(r)
    assert np.array_equal(a.probas_.to_numpy(), b.probas_.to_numpy())


@pytest.mark.parametrize("cls", [KOS, RatioOfEigenvectors, MACE, TaskTypeClustering, SpectralEM])
def test_seeded_runs_are_reproducible(cls):
    r, _ = simulate.dawid_skene(1200, 600, 2, answers_per_task=3, random_state=5)  # > 500 workers: eigsh's start
    a, b = _fit_small(cls, r)[1], _fit_small(cls, r)[1]
    out = "types_" if cls is TaskTypeClustering else "probas_"
    assert np.array_equal(np.asarray(getattr(a, out)), np.asarray(getattr(b, out)))
