"""Responses: the C++ index against a pandas reference, ids of every kind, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kdcore.backends import _core
from kdcore.crowd import Responses, datasets


def pandas_reference(tasks, workers, labels):
    """The same index built the slow, obvious way: factorize + stable argsort."""
    t, tu = pd.factorize(pd.Series(tasks), sort=True)
    w, wu = pd.factorize(pd.Series(workers), sort=True)
    lab, lu = pd.factorize(pd.Series(labels), sort=True)
    ot = np.argsort(t, kind="stable")
    ow = np.argsort(w, kind="stable")
    return dict(
        task=t,
        worker=w,
        label=lab,
        task_ids=tu,
        worker_ids=wu,
        classes=lu,
        task_indptr=np.concatenate([[0], np.cumsum(np.bincount(t, minlength=len(tu)))]),
        task_worker=w[ot],
        task_label=lab[ot],
        worker_indptr=np.concatenate([[0], np.cumsum(np.bincount(w, minlength=len(wu)))]),
        worker_task=t[ow],
        worker_label=lab[ow],
    )


def unique_pairs(rng, n_tasks, n_workers, n):
    flat = rng.choice(n_tasks * n_workers, size=n, replace=False)
    return flat // n_workers, flat % n_workers


def assert_matches_reference(r: Responses, tasks, workers, labels):
    ref = pandas_reference(tasks, workers, labels)
    for key in (
        "task",
        "worker",
        "label",
        "task_indptr",
        "task_worker",
        "task_label",
        "worker_indptr",
        "worker_task",
        "worker_label",
    ):
        np.testing.assert_array_equal(getattr(r, key), ref[key], err_msg=key)
    assert list(r.task_ids) == list(ref["task_ids"])
    assert list(r.worker_ids) == list(ref["worker_ids"])
    assert list(r.classes_) == list(ref["classes"])


@pytest.mark.parametrize("n_tasks,n_workers,n,k", [(1, 2, 2, 2), (50, 7, 200, 3), (3000, 400, 20000, 5)])
def test_int_ids_match_pandas(rng, n_tasks, n_workers, n, k):
    t, w = unique_pairs(rng, n_tasks, n_workers, n)
    lab = rng.integers(0, k, n)
    lab[:2] = [0, 1]  # at least two classes
    r = Responses.from_arrays(t, w, lab)
    assert_matches_reference(r, t, w, lab)
    assert (r.n_tasks, r.n_workers, r.n_responses) == (len(np.unique(t)), len(np.unique(w)), n)


def test_sparse_and_huge_int_ids_use_the_hash_path(rng):
    t, w = unique_pairs(rng, 500, 60, 5000)
    big_t = t.astype(np.int64) * 7_919_000_000_013 - 2**62  # spread over the int64 range
    big_w = (w.astype(np.int64) - 30) * 10**15
    lab = rng.integers(0, 2, len(t))
    r = Responses.from_arrays(big_t, big_w, lab)
    assert_matches_reference(r, big_t, big_w, lab)
    assert r.task_ids.dtype == np.int64 and r.task_ids[0] == big_t.min()


def test_string_ids_and_labels_are_restored(rng):
    t, w = unique_pairs(rng, 300, 40, 3000)
    ts = np.array([f"task-{i:05d}-" + "x" * 40 for i in t], dtype=object)
    ws = np.array([f"w{i}" for i in w], dtype=object)
    labs = np.array(["cat", "dog", "eel"], dtype=object)[rng.integers(0, 3, len(t))]
    r = Responses.from_arrays(ts, ws, labs)
    assert_matches_reference(r, ts, ws, labs)
    df = r.to_dataframe()
    back = pd.DataFrame({"task": ts, "worker": ws, "label": labs})
    pd.testing.assert_frame_equal(df.reset_index(drop=True), back, check_dtype=False)


def test_dataframe_constructor_and_pandas_string_dtype(rng):
    df = pd.DataFrame({"t": ["a", "a", "b", "c"], "w": ["x", "y", "x", "y"], "l": ["1", "2", "2", "1"]})
    df = df.astype("string")
    r = Responses.from_dataframe(df, task="t", worker="w", label="l")
    assert list(r.task_ids) == ["a", "b", "c"] and list(r.classes_) == ["1", "2"]
    assert r.task_counts.tolist() == [2, 1, 1]
    assert r.worker_counts.tolist() == [2, 2]


def test_float_labels_that_are_integers_are_accepted():
    r = Responses.from_arrays([1, 1, 2], [1, 2, 1], [0.0, 1.0, 1.0])
    assert list(r.classes_) == [0.0, 1.0]


def test_read_csv(tmp_path):
    p = tmp_path / "answers.csv"
    p.write_text("task,worker,label\n1,10,a\n1,11,b\n2,10,a\n")
    r = Responses.read_csv(p)
    assert r.n_responses == 3 and list(r.task_ids) == [1, 2] and list(r.classes_) == ["a", "b"]
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        Responses.read_csv(tmp_path / "empty.csv")


def test_duplicates_error_counts_and_names_the_first():
    t, w, lab = [1, 1, 2, 1, 2], [7, 8, 7, 7, 7], [0, 1, 0, 1, 1]
    with pytest.raises(ValueError, match=r"2 duplicate .*task 1, worker 7 at row 3"):
        Responses.from_arrays(t, w, lab)
    first = Responses.from_arrays(t, w, lab, duplicates="keep_first")
    last = Responses.from_arrays(t, w, lab, duplicates="keep_last")
    assert first.n_responses == last.n_responses == 3 and first.n_duplicates_ == 2
    m_first, m_last = first.to_matrix(), last.to_matrix()
    assert m_first[0, 0] == 0 and m_last[0, 0] == 1  # (task 1, worker 7): first said 0, last said 1
    assert m_first[0, 1] == 0 and m_last[0, 1] == 1  # (task 2, worker 7)


def test_to_matrix_and_subset_tasks(rng):
    t, w = unique_pairs(rng, 30, 8, 120)
    lab = rng.integers(0, 3, len(t))
    lab[:3] = [0, 1, 2]
    r = Responses.from_arrays(t, w, lab)
    m = r.to_matrix(fill_value=-1)
    assert m.shape == (r.n_workers, r.n_tasks) and (m >= 0).sum() == r.n_responses
    mask = np.arange(r.n_tasks) % 2 == 0
    s = r.subset_tasks(mask)
    assert list(s.task_ids) == list(r.task_ids[mask])
    assert s.n_workers == r.n_workers and list(s.classes_) == list(r.classes_)
    np.testing.assert_array_equal(s.to_matrix(), m[:, mask])
    s2 = r.subset_tasks(list(r.task_ids[mask]))
    np.testing.assert_array_equal(s2.to_matrix(), s.to_matrix())
    s3 = r.subset_tasks(mask, drop_unused_workers=True)
    assert s3.n_workers == len(np.unique(s.worker))
    with pytest.raises(ValueError, match="unknown task ids"):
        r.subset_tasks(["nope"])
    with pytest.raises(ValueError, match="selected no task"):
        r.subset_tasks(np.zeros(r.n_tasks, bool))


def test_immutable():
    r = Responses.from_arrays([1, 2], [1, 1], [0, 1])
    with pytest.raises(AttributeError, match="immutable"):
        r.n_duplicates_ = 3
    with pytest.raises(ValueError):
        r.task[0] = 5
    with pytest.raises(TypeError, match="from_dataframe"):
        Responses()


@pytest.mark.parametrize(
    "tasks,workers,labels,exc,match",
    [
        ([], [], [], ValueError, "empty"),
        ([1, 2], [1], [0, 1], ValueError, "same length"),
        ([1, 2], [1, 1], [0, 0], ValueError, "only one class"),
        ([1, 2], [1, 1], [0.5, 1.0], ValueError, "non-integer float"),
        ([1, 2], [1, 1], [0, np.nan], ValueError, "labels has 1 missing"),
        ([1, None], [1, 1], [0, 1], ValueError, "task ids has 1 missing"),
        ([1, 2], [1, np.inf], [0, 1], ValueError, "worker ids has 1 missing or non-finite"),
        (np.zeros((2, 2)), [1, 1], [0, 1], ValueError, "1-d"),
        ("ab", [1, 1], [0, 1], TypeError, "array-like"),
        ([1, 2], [1, 1], np.array([1 + 1j, 2]), TypeError, "complex"),
    ],
)
def test_bad_input(tasks, workers, labels, exc, match):
    with pytest.raises(exc, match=match):
        Responses.from_arrays(tasks, workers, labels)


def test_bad_dataframe_input():
    with pytest.raises(ValueError, match=r"column\(s\) \['label'\] not in the DataFrame"):
        Responses.from_dataframe(pd.DataFrame({"task": [1], "worker": [1]}))
    with pytest.raises(TypeError, match="DataFrame"):
        Responses.from_dataframe({"task": [1]})
    with pytest.raises(ValueError, match="duplicates must be one of"):
        Responses.from_arrays([1, 2], [1, 1], [0, 1], duplicates="drop")


def test_declared_classes():
    r = Responses.from_arrays([1, 2], [1, 1], ["y", "y"], classes=["n", "y", "maybe"])
    assert list(r.classes_) == ["n", "y", "maybe"] and r.label.tolist() == [1, 1]
    with pytest.raises(ValueError, match="not among classes"):
        Responses.from_arrays([1, 2], [1, 1], ["y", "z"], classes=["n", "y"])


def test_factorize_kernel_gives_sorted_codes():
    # (The 2^31-distinct-ids guard cannot be exercised within a test's memory.)
    codes, uniq = _core.factorize_int64(np.array([5, -3, 5, 2**62], dtype=np.int64))
    assert codes.tolist() == [1, 0, 1, 2] and uniq.tolist() == [-3, 5, 2**62]


def test_kernels_refuse_bad_arrays_without_crashing():
    with pytest.raises(TypeError):
        _core.factorize_int64(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="out of range"):
        _core.build_csr(np.array([0, 5], np.int32), np.zeros(2, np.int32), np.zeros(2, np.int32), 2)
    with pytest.raises(ValueError, match="length"):
        _core.build_csr(np.array([0, 1], np.int32), np.zeros(3, np.int32), np.zeros(2, np.int32), 2)
    with pytest.raises(ValueError, match="out of range"):
        _core.find_duplicates(np.array([0, 1], np.int32), np.array([0, 9], np.int32), 2, 2, 0)


@pytest.mark.data
@pytest.mark.parametrize("name", datasets.list_datasets())
def test_every_shared_dataset_loads_with_the_documented_counts(data_home, name):
    kind, n_resp, n_tasks, n_workers, n_classes, n_gold = datasets.DATASETS[name]
    r, truth = datasets.load(name, data_home)
    assert r.n_responses + r.n_duplicates_ == n_resp
    assert (r.n_tasks, r.n_workers, r.n_classes, len(truth)) == (n_tasks, n_workers, n_classes, n_gold)
    assert truth.index.isin(r.task_ids).all()


def test_missing_data_folder_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        datasets.load("rte", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("imagenet", tmp_path)


# ------------------------------------------------------------------ the index without the compiled core
needs_cpp = pytest.mark.skipif(_core is None, reason="the compiled core kdcore._core is not built")


@needs_cpp
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_index_kernels_match_numpy_twins(seed):
    from kdcore.crowd import _reference_responses as twin

    rng = np.random.default_rng(seed)
    n_tasks, n_workers, n = 40, 9, 600  # more answers than pairs: many repeats, in any order
    task = rng.integers(0, n_tasks, n).astype(np.int32)
    worker = rng.integers(0, n_workers, n).astype(np.int32)
    label = rng.integers(0, 3, n).astype(np.int32)
    for mode in (0, 1, 2):
        keep, n_dup, first = _core.find_duplicates(task, worker, n_tasks, n_workers, mode)
        keep2, n_dup2, first2 = twin.find_duplicates(task, worker, n_tasks, n_workers, mode)
        assert (n_dup, first) == (n_dup2, first2) and n_dup > 0
        assert keep.dtype == keep2.dtype and np.array_equal(keep, keep2)
    for group, a, b, n_groups in ((task, worker, label, n_tasks), (worker, task, label, n_workers)):
        for x, y in zip(_core.build_csr(group, a, b, n_groups), twin.build_csr(group, a, b, n_groups), strict=True):
            assert x.dtype == y.dtype and np.array_equal(x, y)
    ids = rng.integers(-(2**62), 2**62, 50).repeat(3)
    for x, y in zip(_core.factorize_int64(ids), twin.factorize_int64(ids), strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    with pytest.raises(ValueError, match="code out of range"):
        twin.build_csr(np.array([0, 5], np.int32), np.zeros(2, np.int32), np.zeros(2, np.int32), 3)


_WITHOUT_CORE = """
import sys
sys.modules["kdcore._core"] = None  # the compiled core cannot be imported
import numpy as np
from kdcore import backends
from kdcore.crowd import DawidSkene, MajorityVote, Responses, simulate
assert backends._core is None and not backends.HAS_CPP and backends.available_backends()[0] == "numpy"
r, truth = simulate.dawid_skene(400, 15, 3, answers_per_task=5, random_state=0)
df = r.to_dataframe()
dup = Responses.from_dataframe(df.iloc[list(range(len(df))) + [0, 7]], duplicates="keep_last")
mv = MajorityVote(random_state=0).fit(r)
ds = DawidSkene(backend="numpy").fit(r)
np.savez(sys.argv[1], task_indptr=r.task_indptr, worker_task=r.worker_task, dup_n=dup.n_duplicates_,
         dup_worker_label=dup.worker_label, mv=mv.probas_.to_numpy(), mv_labels=mv.labels_.to_numpy(),
         ds=ds.probas_.to_numpy(), ds_conf=ds.confusions_, truth=truth.to_numpy())
"""


@needs_cpp
def test_responses_and_numpy_backend_work_without_the_compiled_core(tmp_path):
    """Responses, MajorityVote and DawidSkene(backend="numpy") in a process where kdcore._core
    cannot be imported give what they give with the compiled index."""
    import os
    import subprocess
    import sys

    from kdcore.crowd import DawidSkene, MajorityVote, simulate

    out = tmp_path / "without_core.npz"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    run = subprocess.run([sys.executable, "-c", _WITHOUT_CORE, str(out)], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    got = np.load(out, allow_pickle=False)
    r, truth = simulate.dawid_skene(400, 15, 3, answers_per_task=5, random_state=0)
    df = r.to_dataframe()
    dup = Responses.from_dataframe(df.iloc[list(range(len(df))) + [0, 7]], duplicates="keep_last")
    mv = MajorityVote(random_state=0).fit(r)
    ds = DawidSkene(backend="numpy").fit(r)
    assert np.array_equal(got["truth"], truth.to_numpy())
    assert np.array_equal(got["task_indptr"], r.task_indptr) and np.array_equal(got["worker_task"], r.worker_task)
    assert int(got["dup_n"]) == dup.n_duplicates_ == 2
    assert np.array_equal(got["dup_worker_label"], dup.worker_label)
    assert np.array_equal(got["mv"], mv.probas_.to_numpy()) and np.array_equal(got["mv_labels"], mv.labels_)
    assert np.array_equal(got["ds"], ds.probas_.to_numpy()) and np.array_equal(got["ds_conf"], ds.confusions_)
