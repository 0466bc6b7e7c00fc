"""Property tests (hypothesis) for every public entry point that reaches the compiled core.

Each test draws inputs the way users get them wrong: sizes 0 and 1, every numpy
dtype, C / Fortran / strided / read-only memory, NaN, inf, huge and negative ids,
odd shapes. Every case must end in a correct result or a ValueError / TypeError
whose message names the problem: never a crash, a hang or a non-finite number.
A crash in the compiled core is caught two ways: ``test_core_fuzz_in_subprocess``
calls ``kdcore._core`` directly with malformed arrays in a child process (a
segfault fails the test instead of killing pytest), and ``tools/sanitize.sh``
runs this file under ASan/UBSan.

Example counts: ``HYPOTHESIS_PROFILE=long`` multiplies every ``max_examples``
by 10 (docs/reliability.md lists both runs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import kdcore  # noqa: E402
from _tol import BOUND_SLACK, PROB_SUM_ANY_INPUT, PROJ_F32_ABS, PROJ_F32_REL  # noqa: E402
from kdcore.crowd import DawidSkene, MajorityVote, OneCoinDawidSkene, Responses, WeightedMajorityVote  # noqa: E402
from kdcore.crowd._glad import GLAD  # noqa: E402
from kdcore.crowd._kos import KOS, RatioOfEigenvectors  # noqa: E402
from kdcore.crowd._mace import MACE  # noqa: E402
from kdcore.crowd._spectral_em import SpectralEM  # noqa: E402
from kdcore.crowd._triangular import TriangularEstimation  # noqa: E402
from kdcore.crowd._type_aware import TypeAware  # noqa: E402
from kdcore.crowd._types import TaskTypeClustering  # noqa: E402
from kdcore.distill import TwoLayerReLU, margin_gamma, train, train_many  # noqa: E402

PKG_ROOT = Path(kdcore.__file__).resolve().parent.parent  # the kdcore under test (sanitized build included)
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
_SCALE = 10 if "long" in _PROFILE else 1  # "long", "long-noshrink"


def examples(n: int):
    """Settings for one property: ``n`` examples (x10 under HYPOTHESIS_PROFILE=long), no deadline
    (the machine is shared), derandomised in the default run so CI is stable."""
    from hypothesis import Phase

    phases = [Phase.explicit, Phase.reuse, Phase.generate] if "noshrink" in _PROFILE else list(Phase)
    return settings(
        max_examples=n * _SCALE,
        deadline=None,
        derandomize=_SCALE == 1,
        phases=phases,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOAT_DTYPES = [np.float16, np.float32, np.float64]
ALL_DTYPES = INT_DTYPES + FLOAT_DTYPES + [np.bool_, object]
LAYOUTS = ["C", "strided", "readonly", "list", "series"]


def with_layout(a: np.ndarray, layout: str):
    """The same values in another memory layout / container."""
    if layout == "C":
        return np.ascontiguousarray(a)
    if layout == "strided":  # a non-contiguous view: every other element of a doubled buffer
        buf = np.empty(2 * len(a), dtype=a.dtype)
        buf[::2] = a
        v = buf[::2]
        assert not v.flags.c_contiguous or len(a) <= 1
        return v
    if layout == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    if layout == "list":
        return a.tolist()
    if layout == "series":
        return pd.Series(a, dtype=a.dtype if a.dtype != object else object)
    raise AssertionError(layout)


def _vocab(dtype, size: int):
    """Strategy: ``size`` distinct values of ``dtype``, extremes included (NaN/inf for floats,
    the dtype's min/max for ints, negative ids, huge ids)."""
    if dtype is object:
        elem = st.one_of(
            st.text(max_size=4), st.integers(-(2**70), 2**70), st.none(), st.floats(allow_nan=True, allow_infinity=True)
        )
        return st.lists(elem, min_size=size, max_size=size, unique_by=lambda v: (type(v).__name__, repr(v)))
    if dtype is np.bool_:
        return st.permutations([False, True]).map(lambda v: v[:size]) if size <= 2 else st.nothing()
    elem = hnp.from_dtype(np.dtype(dtype), allow_nan=True, allow_infinity=True, allow_subnormal=True)
    return st.lists(
        elem, min_size=size, max_size=size, unique_by=lambda v: float(v) if np.dtype(dtype).kind == "f" else int(v)
    )


@st.composite
def answer_columns(draw):
    """(columns, codes) where columns are user-facing id/label arrays and codes the planted structure."""
    n = draw(st.integers(0, 24))
    kinds = {}
    cols, codes = [], []
    for what, max_distinct in (("task", 6), ("worker", 5), ("label", 4)):
        dtype = draw(st.sampled_from(ALL_DTYPES))
        m = draw(st.integers(1, 2 if dtype is np.bool_ else max_distinct))
        vocab = draw(_vocab(dtype, m))
        assume(len(vocab) == m)
        c = np.array(draw(st.lists(st.integers(0, m - 1), min_size=n, max_size=n)), dtype=np.int64)
        arr = np.empty(n, dtype=object) if dtype is object else np.empty(n, dtype=dtype)
        for i, ci in enumerate(c):
            arr[i] = vocab[ci]
        kinds[what] = dtype
        cols.append(with_layout(arr, draw(st.sampled_from(LAYOUTS))))
        codes.append(arr)
    return cols, codes, kinds


def _bad_value(a: np.ndarray) -> bool:
    """NaN, inf or None anywhere (what Responses must refuse)."""
    if a.dtype.kind == "f":
        return bool((~np.isfinite(a)).any())
    if a.dtype == object:
        return any(v is None or (isinstance(v, float) and not np.isfinite(v)) for v in a)
    return False


def _nonint_float(a: np.ndarray) -> bool:
    """A non-integer float label (refused). Object columns of Python floats count too:
    as a list they become a float array, which is refused the same way."""
    if a.dtype.kind == "f":
        f = a[np.isfinite(a)]
        return bool((f != np.floor(f)).any())
    if a.dtype == object and len(a) and all(isinstance(v, (int, float)) for v in a):
        return any(isinstance(v, float) and np.isfinite(v) and v != np.floor(v) for v in a)
    return False


def _case(t, w, lab):
    return (
        [t, w, lab],
        [np.asarray(t), np.asarray(w), np.array(lab, dtype=object) if isinstance(lab, list) else lab],
        {},
    )


_Z = np.zeros(11, dtype=np.int8)


@given(answer_columns(), st.sampled_from(["error", "keep_first", "keep_last"]))
@example(_case(_Z, _Z, [0] * 10 + [0.5]), "error")  # a list of numbers: float, refused
@example(_case(_Z, _Z, np.array([0.5] * 11, dtype=object)), "error")  # object floats: one class
@example(_case(np.zeros(9, np.int8), np.zeros(9, np.int8), np.array([0] * 8 + [1], np.int8)), "keep_first")
@example(_case(np.array(["", 0], dtype=object), np.array([0, 1]), np.array([0, 1])), "error")  # mixed-type ids
@examples(200)
def test_responses_from_arrays(data, duplicates):
    cols, raw, _ = data
    t, w, lab = raw
    n = len(t)
    try:
        r = Responses.from_arrays(*cols, duplicates=duplicates)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        assert msg, "an error without a message"
        if n == 0:
            assert "empty" in msg
        elif _bad_value(t) or _bad_value(w) or _bad_value(lab):
            assert "non-finite" in msg or "missing" in msg, msg
        elif lab.dtype.kind == "f" and _nonint_float(lab):
            assert "non-integer" in msg, msg
        elif "duplicate" in msg:
            assert duplicates == "error"
        elif "non-integer" in msg:  # an object column of numbers: numpy made it float when given as a list
            assert _nonint_float(lab), msg
        else:
            assert "one class" in msg or "complex" in msg, msg
        return
    # success: nothing refusable was in the input, and the answers come back as given
    assert n > 0 and not (_bad_value(t) or _bad_value(w) or _bad_value(lab))
    assert not _nonint_float(lab) or lab.dtype == object  # an object column of floats may pass as objects
    df = r.to_dataframe()
    key = pd.DataFrame({"task": list(t), "worker": list(w), "label": list(lab)})
    keep = "first" if duplicates != "keep_last" else "last"
    key = key[~pd.DataFrame({"t": [repr(v) for v in t], "w": [repr(v) for v in w]}).duplicated(keep=keep).to_numpy()]
    assert len(df) == len(key) == r.n_responses
    assert r.n_classes >= 2
    got = sorted(
        zip(map(repr, map(_py, df["task"])), map(repr, map(_py, df["worker"])), map(repr, map(_py, df["label"])))
    )
    want = sorted(
        zip(map(repr, map(_py, key["task"])), map(repr, map(_py, key["worker"])), map(repr, map(_py, key["label"])))
    )
    assert got == want
    # both compressed views are consistent with the codes
    assert r.task_indptr[0] == 0 and r.task_indptr[-1] == r.n_responses
    assert np.all(np.diff(r.task_indptr) >= 0) and np.all(np.diff(r.worker_indptr) >= 0)
    assert np.array_equal(np.bincount(r.task, minlength=r.n_tasks), np.diff(r.task_indptr))
    assert np.array_equal(np.bincount(r.worker, minlength=r.n_workers), np.diff(r.worker_indptr))


def _py(v):
    """A value as plain Python, numbers normalised (1 == 1.0 == True compare the same way)."""
    v = v.item() if isinstance(v, np.generic) else v
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


@given(st.sampled_from(["scalar", "2d", "str", "dict", "mismatch", "complex", "none"]))
@examples(20)
def test_responses_bad_shapes_and_types(kind):
    good = np.arange(4)
    args = {
        "scalar": (5, good, good),
        "2d": (np.zeros((4, 2)), good, good),
        "str": ("abcd", good, good),
        "dict": ({1: 2}, good, good),
        "mismatch": (good, good[:3], good),
        "complex": (good + 1j, good, good % 2),
        "none": (None, good, good),
    }[kind]
    with pytest.raises((ValueError, TypeError), match=r"tasks|task ids|1-d|same length|complex|array-like"):
        Responses.from_arrays(*args)


@given(st.sampled_from(ALL_DTYPES), st.booleans())
@examples(30)
def test_responses_from_dataframe_dtypes(dtype, missing_col):
    df = pd.DataFrame(
        {
            "task": np.array([0, 0, 1, 1]).astype(dtype),
            "worker": np.array([0, 1, 0, 1]).astype(dtype),
            "label": np.array([0, 1, 1, 1]).astype(dtype),
        }
    )
    if missing_col:
        with pytest.raises(ValueError, match="not in the DataFrame"):
            Responses.from_dataframe(df.drop(columns="worker"))
        return
    r = Responses.from_dataframe(df)
    assert (r.n_tasks, r.n_workers, r.n_classes, r.n_responses) == (2, 2, 2, 4)


_CSV_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["t1", "t2", "", "nan", "1e400", "-0", "\u00e9", "a,b", '"q']),
        st.sampled_from(["w1", "w2", "", "NaN", "18446744073709551616", "\x00"]),
        st.sampled_from(["0", "1", "", "inf", "0.5", "yes"]),
    ),
    max_size=6,
)


@given(
    st.one_of(
        st.binary(max_size=200),
        _CSV_ROWS.map(
            lambda rows: ("task,worker,label\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)).encode(
                "utf-8", "surrogatepass"
            )
        ),
    )
)
@examples(150)
def test_responses_read_csv_any_bytes(content):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "answers.csv"
        path.write_bytes(content)
        try:
            r = Responses.read_csv(path)
        except (ValueError, TypeError) as exc:  # pandas' ParserError, EmptyDataError, UnicodeDecodeError included
            assert str(exc)
            return
    assert r.n_responses >= 1 and r.n_classes >= 2
    assert np.array_equal(np.bincount(r.task, minlength=r.n_tasks), np.diff(r.task_indptr))


# ----------------------------------------------------------------------------- aggregators
def _aggregators(r: Responses):
    w = np.linspace(0.5, 2.0, r.n_workers)
    rel = np.linspace(0.55, 0.95, r.n_workers)
    return [
        MajorityVote(random_state=0),
        WeightedMajorityVote(weights=w, random_state=0),
        WeightedMajorityVote(reliabilities=rel, random_state=0),
        DawidSkene(n_iter=20),
        OneCoinDawidSkene(n_iter=20),
        SpectralEM(n_iter=20, random_state=0),
        TriangularEstimation(),
        KOS(n_iter=10, random_state=0),
        RatioOfEigenvectors(random_state=0),
        GLAD(n_iter=10, m_step_max_iter=5),
        MACE(n_init=2, n_iter=10, random_state=0),
    ]


@st.composite
def responses(draw, max_tasks=12, max_workers=6, max_classes=4, min_classes=2):
    n_tasks = draw(st.integers(1, max_tasks))
    n_workers = draw(st.integers(1, max_workers))
    K = draw(st.integers(min_classes, max_classes))
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, n_tasks - 1), st.integers(0, n_workers - 1)),
            min_size=1,
            max_size=n_tasks * n_workers,
            unique=True,
        )
    )
    labels = draw(st.lists(st.integers(0, K - 1), min_size=len(pairs), max_size=len(pairs)))
    t = np.array([p[0] for p in pairs])
    w = np.array([p[1] for p in pairs])
    # ids: negative, huge, strings: the aggregators must not care
    id_kind = draw(st.sampled_from(["small", "negative", "huge", "str"]))
    tid = {"small": t, "negative": -t - 1, "huge": t + 2**62, "str": np.array([f"t{v}" for v in t], dtype=object)}[
        id_kind
    ]
    return Responses.from_arrays(tid, w, np.array(labels), classes=list(range(K)))


def _check_fitted(est, r: Responses):
    P = est.probas_.to_numpy()
    assert P.shape == (r.n_tasks, r.n_classes)
    assert np.all(np.isfinite(P)), type(est).__name__
    assert np.all(P >= -BOUND_SLACK)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=PROB_SUM_ANY_INPUT)
    assert est.probas_.index.equals(pd.Index(r.task_ids, name="task"))
    assert set(est.labels_.to_numpy()) <= set(r.classes_)


@pytest.mark.parametrize(
    "idx",
    range(11),
    ids=[type(a).__name__ + str(i) for i, a in enumerate(_aggregators(Responses.from_arrays([0, 1], [0, 0], [0, 1])))],
)
@given(r=responses())
@examples(25)
def test_aggregator_any_small_responses(idx, r):
    est = _aggregators(r)[idx]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            est.fit(r)
        except ValueError as exc:
            assert est._binary_only and r.n_classes != 2, exc
            assert "binary" in str(exc)
            return
    _check_fitted(est, r)


@given(st.sampled_from([0, 1, 2]), st.sampled_from(["list", "ndarray", "int", "nan", "neg"]))
@examples(30)
def test_aggregator_bad_params(which, kind):
    r = Responses.from_arrays([0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 1, 1])
    bad = {"list": [1, 2], "ndarray": np.array([3]), "int": 0, "nan": float("nan"), "neg": -3}[kind]
    name = ["n_iter", "tol", "n_threads"][which]
    est = [DawidSkene(n_iter=bad), DawidSkene(tol=bad), MajorityVote(n_threads=bad)][which]
    try:
        est.fit(r)
    except (ValueError, TypeError) as exc:
        assert name in str(exc), str(exc)
        return
    # only the valid corner values may pass: tol = 0 (run to n_iter), n_threads = 0 (default)
    assert kind == "int" and name in ("tol", "n_threads"), (name, bad)
    _check_fitted(est, r)


def test_aggregator_rejects_non_responses():
    for bad in (None, np.zeros((3, 3)), [(0, 0, 1)], "data.csv"):
        with pytest.raises(TypeError, match="Responses"):
            DawidSkene().fit(bad)


# ----------------------------------------------------------------------------- task types
@given(
    r=responses(max_tasks=14, max_workers=6, max_classes=3),
    n_types=st.integers(0, 3),
    method=st.sampled_from(["spectral", "refined", "mixture"]),
    readout=st.sampled_from(["kmeans", "magnitude", "sign"]),
    centring=st.sampled_from(["worker", "class", "none"]),
)
@examples(60)
def test_task_type_clustering_any_small_responses(r, n_types, method, readout, centring):
    tt = TaskTypeClustering(
        n_types=n_types, method=method, readout=readout, centring=centring, n_iter=5, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            tt.fit(r)
        except ValueError as exc:
            msg = str(exc)
            assert (
                (n_types < 1 and "n_types" in msg)
                or (n_types > r.n_tasks and "n_types" in msg)
                or (r.n_tasks < 2 and "2 tasks" in msg)
                or (r.n_workers < 2 and "2 workers" in msg)
                or (readout == "sign" and n_types != 2 and "sign" in msg)
            ), msg
            return
    P = tt.type_proba_.to_numpy()
    assert P.shape == (r.n_tasks, n_types) and np.all(np.isfinite(P))
    np.testing.assert_allclose(P.sum(1), 1.0, atol=PROB_SUM_ANY_INPUT)
    assert set(tt.types_.unique()) <= set(range(n_types))
    assert 0.0 <= tt.separation_ <= 1.0


@given(r=responses(max_tasks=14, max_workers=6, max_classes=3), guard=st.booleans())
@examples(25)
def test_type_aware_any_small_responses(r, guard):
    ta = TypeAware(
        DawidSkene(n_iter=10), TaskTypeClustering(n_iter=5, random_state=0), guard=guard, n_folds=2, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            ta.fit(r)
        except ValueError as exc:
            assert r.n_tasks < 2 or r.n_workers < 2, exc
            assert "task" in str(exc) or "worker" in str(exc)
            return
    _check_fitted(ta, r)


# ----------------------------------------------------------------------------- distill
def _float_matrix_strategy():
    return st.tuples(
        st.integers(0, 6),
        st.integers(0, 4),
        st.sampled_from(INT_DTYPES + FLOAT_DTYPES + [np.bool_, object]),
        st.sampled_from(["C", "F", "strided", "readonly", "list"]),
        st.sampled_from(["unit", "nan", "inf", "zero_row", "huge", "big", "tiny"]),
    )


def _make_X(n, d, dtype, layout, extreme, rng):
    X = rng.standard_normal((n, d))
    if n and d:
        X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        if extreme == "nan":
            X[rng.integers(n), rng.integers(d)] = np.nan
        elif extreme == "inf":
            X[rng.integers(n), rng.integers(d)] = -np.inf
        elif extreme == "zero_row":
            X[rng.integers(n)] = 0.0
        elif extreme == "huge":
            X *= 1e200
        elif extreme == "big":
            X *= 1e150
        elif extreme == "tiny":
            X *= 1e-300
    if dtype is object:
        Xd = X.astype(object)
    elif np.dtype(dtype).kind in "iub":
        Xd = np.sign(np.nan_to_num(X)).astype(dtype) if dtype is not np.bool_ else (np.nan_to_num(X) > 0)
    else:
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            Xd = X.astype(dtype)
    if layout == "F":
        Xd = np.asfortranarray(Xd)
    elif layout == "strided":
        buf = np.zeros((n, 2 * d), dtype=Xd.dtype)
        buf[:, ::2] = Xd
        Xd = buf[:, ::2]
    elif layout == "readonly":
        Xd = Xd.copy()
        Xd.flags.writeable = False
    elif layout == "list":
        Xd = Xd.tolist()
    return Xd, X


def _valid_X(Xd) -> bool:
    """What check_X must accept: a non-empty 2-d real array, finite, no zero-norm row."""
    if np.asarray(Xd).dtype.kind not in "iuf":  # bool and object arrays are refused (TypeError)
        return False
    A = np.asarray(Xd, dtype=np.float64)
    if A.ndim != 2 or A.size == 0:
        return False
    with np.errstate(over="ignore"):
        return bool(np.all(np.isfinite(A)) and np.all(np.abs(A).max(axis=1) > 0))


_X_ERRORS = r"X|diverged|features|non-empty|zero-norm|NaN|infinite|real numbers|dtype|2-d|labels|rows|overflow|large"


@given(
    _float_matrix_strategy(),
    st.sampled_from(["hard", "soft"]),
    st.sampled_from(["cpp", "numpy"]),
    st.sampled_from([None, 0.5]),
    st.integers(0, 3),
    st.sampled_from([0.0, 0.5, 1e6, 1e300]),
)
@examples(120)
def test_train_any_X(spec, loss, backend, radius, n_steps, lr):
    n, d, dtype, layout, extreme = spec
    rng = np.random.default_rng(n * 31 + d)
    Xd, X = _make_X(n, d, dtype, layout, extreme, rng)
    y = np.where(rng.random(n) < 0.5, -1, 1)
    targets = y if loss == "hard" else np.clip(rng.random(n), 0.05, 0.95)
    model = TwoLayerReLU(2, max(d, 1), random_state=0)
    W_before = model.W.copy()
    try:
        h = train(model, Xd, targets, loss=loss, lr=lr, n_steps=n_steps, radius=radius, backend=backend)
    except (ValueError, TypeError) as exc:
        assert str(exc) and pytest.importorskip("re").search(_X_ERRORS, str(exc)), str(exc)
        assert np.array_equal(model.W, W_before), "a refused call must not touch the model"
        assert not _valid_X(Xd) or extreme in ("huge", "big", "tiny") or ("diverged" in str(exc) and lr >= 1e6), (
            str(exc),
            spec,
            lr,
        )
        return
    assert _valid_X(Xd), spec
    for v in (h.loss, h.error):
        assert v.shape == (n_steps,) and np.all(np.isfinite(v)), (extreme, lr, v)
    assert np.isfinite(h.final_loss) and 0.0 <= h.final_error <= 1.0
    assert np.all(np.isfinite(model.W))
    if radius is not None:
        assert np.all(model.distance_from_init() <= radius / np.sqrt(model.m) * (1 + PROJ_F32_REL) + PROJ_F32_ABS)


@given(
    st.integers(0, 2**31 - 1),
    st.sampled_from([np.float32, np.float64]),
    st.lists(st.sampled_from([2, 3, 4, 6, 8, 16, 30, 48]), min_size=1, max_size=6),
    st.integers(1, 150),
    st.integers(1, 40),
    st.floats(-3, 6),
    st.sampled_from([-1.0, 0.5, 4.0]),
    st.sampled_from([1.0, 1e-3, 1e3]),
    st.integers(1, 2),
)
@examples(30)
def test_core_skipping_changes_no_bit(seed, dtype, widths, n, d, log_lr, radius, scale, threads):
    # The compiled step's certified-inactive skipping and its twin layout against computing every
    # row, on arbitrary small batches (twins: each width drawn twice with one seed, soft and
    # hard), step sizes from 1e-3 to 1e6, free or projected weights, rows of any scale.
    from kdcore import _core
    from kdcore.distill import TwoLayerReLU

    rng = np.random.default_rng(seed)
    widths = [m for w in widths for m in (w, w)]
    nets = [
        TwoLayerReLU(m, d, init="symmetric" if m % 2 == 0 else "random", random_state=seed + i // 2, dtype=dtype)
        for i, m in enumerate(widths)
    ]
    X = (rng.standard_normal((n, d)) * scale).astype(dtype)
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(dtype)
    p = rng.uniform(0.05, 0.95, n).astype(dtype)
    K = len(nets)
    losses = np.array([i % 2 for i in range(K)], dtype=np.int32)
    T = np.vstack([p if lo == 0 else y for lo in losses])
    off = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
    W0 = np.ascontiguousarray(np.vstack([q.W0 for q in nets]))
    a = np.concatenate([q.a for q in nets]).astype(dtype)
    n_train = max(1, n - n // 4)
    out = []
    for skip in (True, False):
        W = W0.copy()
        out.append(
            (W,)
            + _core.twolayer_train(
                X,
                n_train,
                W,
                W0,
                a,
                off,
                losses,
                T,
                y,
                np.full(K, 10.0**log_lr),
                np.full(K, radius),
                12,
                threads,
                skip_inactive=skip,
            )
        )
    for u, v in zip(out[0], out[1]):
        np.testing.assert_array_equal(u, v)


@given(
    st.integers(0, 4),
    st.sampled_from(
        [
            "m0",
            "m_odd",
            "lr_neg",
            "lr_nan",
            "radius0",
            "radius_nan",
            "loss",
            "key",
            "empty",
            "not_list",
            "soft_no_p",
            "p_out",
            "steps_neg",
            "dtype",
            "threads",
        ]
    ),
)
@examples(45)
def test_train_many_bad_configs(seed, kind):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((8, 3))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.where(rng.random(8) < 0.5, -1, 1)
    p = np.full(8, 0.7)
    cfg = {"m": 4, "loss": "hard", "lr": 0.5}
    kw = dict(n_steps=2)
    configs = [cfg]
    if kind == "m0":
        cfg["m"] = 0
    elif kind == "m_odd":
        cfg["m"] = 3
    elif kind == "lr_neg":
        cfg["lr"] = -1.0
    elif kind == "lr_nan":
        cfg["lr"] = float("nan")
    elif kind == "radius0":
        cfg["radius"] = 0.0
    elif kind == "radius_nan":
        cfg["radius"] = float("nan")
    elif kind == "loss":
        cfg["loss"] = "mse"
    elif kind == "key":
        cfg["momentum"] = 0.9
    elif kind == "empty":
        configs = []
    elif kind == "not_list":
        configs = cfg
    elif kind == "soft_no_p":
        cfg["loss"] = "soft"
        p = None
    elif kind == "p_out":
        cfg["loss"] = "soft"
        p = np.full(8, 1.5)
    elif kind == "steps_neg":
        kw["n_steps"] = -1
    elif kind == "dtype":
        kw["dtype"] = np.int32
    elif kind == "threads":
        kw["n_threads"] = -2
    with pytest.raises((ValueError, TypeError)) as info:
        train_many(configs, X, y, p, **kw)
    assert str(info.value)


@given(_float_matrix_strategy(), st.sampled_from(["l2", "sampled"]))
@examples(60)
def test_margin_gamma_any_X(spec, method):
    n, d, dtype, layout, extreme = spec
    rng = np.random.default_rng(n * 7 + d)
    Xd, X = _make_X(n, d, dtype, layout, extreme, rng)
    y = np.where(np.arange(n) % 2 == 0, 1, -1)
    try:
        res = margin_gamma(Xd, y, method=method, n_iter=5, batch=16, n_eval=64, random_state=0)
    except (ValueError, TypeError) as exc:
        assert pytest.importorskip("re").search(_X_ERRORS, str(exc)), str(exc)
        assert not _valid_X(Xd) or extreme in ("huge", "big", "tiny"), (str(exc), spec)
        return
    assert _valid_X(Xd), spec
    assert np.isfinite(res.gamma) and np.all(np.isfinite(res.q))
    if method == "l2":
        assert res.gamma >= 0 and abs(res.q.sum() - 1) < PROB_SUM_ANY_INPUT


# ----------------------------------------------------------------------------- the core, fuzzed directly
_FUZZ = textwrap.dedent(r"""
    import faulthandler, sys, numpy as np
    from kdcore import _core
    faulthandler.enable()
    rng = np.random.default_rng(int(sys.argv[1]))
    n_cases = int(sys.argv[2])
    I32, I64, F64 = np.int32, np.int64, np.float64

    def rnd_codes(n, hi):
        # mostly in range, sometimes out of range or negative (what the kernels must refuse)
        c = rng.integers(0, max(hi, 1), n)
        if n and rng.random() < 0.5:
            c[rng.integers(n)] = rng.choice([-1, hi, hi + 7, 2**31 - 1, -2**31])
        return c.astype(I32)

    def rnd_indptr(n_groups, nnz):
        ip = np.sort(rng.integers(0, nnz + 1, n_groups + 1)).astype(I64)
        if n_groups >= 0:
            ip[0], ip[-1] = 0, nnz
        r = rng.random()
        if r < 0.15 and n_groups > 0:
            ip[rng.integers(1, n_groups + 1)] = -5            # decreasing / negative
        elif r < 0.3:
            ip[-1] = nnz + rng.integers(1, 4)                 # past the end
        elif r < 0.4 and n_groups > 1:
            ip[1] = nnz + 3                                   # non-monotone, past the end
        return ip

    calls = 0
    for case in range(n_cases):
        T = int(rng.integers(0, 5)); W = int(rng.integers(0, 4)); K = int(rng.integers(0, 4)); nnz = int(rng.integers(0, 9))
        task = rnd_codes(nnz, T); worker = rnd_codes(nnz, W); label = rnd_codes(nnz, K)
        tip = rnd_indptr(T, nnz); wip = rnd_indptr(W, nnz)
        nty = int(rng.integers(1, 3))
        tries = [
            lambda: _core.factorize_int64(rng.integers(-2**63, 2**63 - 1, nnz, dtype=I64)),
            lambda: _core.find_duplicates(task, worker, T, W, int(rng.integers(-1, 4))),
            lambda: _core.build_csr(task, worker, label, T),
            lambda: _core.em_e_step(tip, worker, label, T, W, np.zeros((nty, W, K, K)), np.zeros((nty, K))),
            lambda: _core.em_m_step(wip, task, label, T, W, np.full((T, nty, K), 1.0 / max(K, 1)), 0.01,
                                    bool(rng.integers(2))),
            lambda: _core.vote_scores(tip, worker, label, T, W, K),
            lambda: _core.te_pairwise_agreement(tip, worker, label, W),
            lambda: _core.kos_messages(tip, worker, label, W, np.ones(nnz), int(rng.integers(0, 3))),
            lambda: _core.glad_e_step(tip, worker, label, K, np.ones(W), np.zeros(T), np.zeros(K)),
            lambda: _core.glad_objective(tip, worker, label, K, np.full((T, K), 0.5), np.ones(W), np.zeros(T),
                                         np.ones(W), np.zeros(T)),
            lambda: _core.mace_e_step(tip, worker, label, K, np.full((W, 2), 0.5), np.full((W, K), 1.0 / max(K, 1))),
            lambda: _core.mace_counts(wip, task, label, K, np.full((T, K), 0.5), np.full((W, 2), 0.5),
                                      np.full((W, K), 0.5)),
            lambda: _core.hollow_gram_matvec(task, worker, rng.standard_normal((nnz, 1)), T, W, np.ones(T),
                                             bool(rng.integers(2))),
            lambda: _core.spectral_eigs(task, worker, rng.standard_normal((nnz, int(rng.integers(1, 3)))), T, W,
                                        int(rng.integers(-1, 4)), bool(rng.integers(2)), int(rng.integers(-1, 6)),
                                        1e-8, 0),
            lambda: _core.lanczos_dense(np.eye(T), int(rng.integers(-1, T + 2)), int(rng.integers(-1, 6)), 1e-8, 0),
        ]
        for i, f in enumerate(tries):
            calls += 1
            sys.stderr.write(f"case {case} call {i}\n")
            try:
                f()
            except (ValueError, TypeError, IndexError, MemoryError, RuntimeError, OverflowError):
                pass
        # two-layer engine: inconsistent shapes and offsets
        n, d, M = int(rng.integers(0, 4)), int(rng.integers(0, 3)), int(rng.integers(0, 4))
        Kn = int(rng.integers(0, 3))
        off = np.sort(rng.integers(0, M + 2, Kn + 1)).astype(I64)
        for dt in (np.float32, np.float64):
            calls += 1
            try:
                _core.twolayer_train(np.ones((n, d), dt), int(rng.integers(-1, n + 2)), np.ones((M, d), dt),
                                     np.ones((M, d), dt), np.ones(M, dt), off,
                                     rng.integers(-1, 3, Kn).astype(I32), np.full((Kn, n), 0.5, dt), np.ones(n, dt),
                                     np.full(Kn, 0.1), np.full(Kn, rng.choice([-1.0, 0.0, 1.0])),
                                     int(rng.integers(-1, 3)))
            except (ValueError, TypeError, IndexError, MemoryError, RuntimeError, OverflowError):
                pass
    print("ok", calls)
""")


@pytest.mark.parametrize("seed", [0, 1])
def test_core_fuzz_in_subprocess(seed, tmp_path):
    """Malformed arrays straight into kdcore._core (bypassing the Python checks): every call
    returns or raises; a segfault or abort here fails the test with the seed to replay."""
    script = tmp_path / "fuzz.py"
    script.write_text(_FUZZ)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PKG_ROOT), env.get("PYTHONPATH", "")])
    n_cases = 150 * _SCALE
    res = subprocess.run(
        [sys.executable, str(script), str(seed), str(n_cases)], capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0, f"core fuzz seed {seed} died with {res.returncode}: {res.stderr[-3000:]}"
    assert res.stdout.startswith("ok")
