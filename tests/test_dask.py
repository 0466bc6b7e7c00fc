"""The aggregators on a real Dask cluster (kdcore.crowd.distributed) and train_many on executors.

One ``distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` is
started for the module and shut down at its end; the fault test kills one of its worker
processes with SIGKILL in the middle of a fit.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from _tol import DASK_VS_MEMORY, KERNEL_F64

dd = pytest.importorskip("dask.dataframe", reason="kdcore[dask] (dask[distributed]) is not installed")
distributed = pytest.importorskip("distributed", reason="kdcore[dask] (dask[distributed]) is not installed")
pytest.importorskip("pyarrow", reason="kdcore[dask] needs pyarrow for Parquet")

from kdcore.backends import _core  # noqa: E402
from kdcore.crowd import (  # noqa: E402
    BayesianDawidSkene,
    CommunityDawidSkene,
    DawidSkene,
    MajorityVote,
    OneCoinDawidSkene,
    Responses,
    WeightedMajorityVote,
    simulate,
)
from kdcore.crowd import distributed as kd  # noqa: E402
from kdcore.crowd import parquet as kp  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def data():
    r, _ = simulate.dawid_skene(1500, 30, 3, answers_per_task=5, random_state=3)
    return r, r.to_dataframe()


def _by_task(df: pd.DataFrame, n_parts: int, empty_at: int | None = None):
    """A Dask DataFrame whose partitions hold whole tasks (contiguous task ranges), optionally one empty."""
    tasks = np.sort(df["task"].unique())
    cuts = np.array_split(tasks, n_parts)
    parts = [df[df["task"].isin(c)].sample(frac=1, random_state=i) for i, c in enumerate(cuts)]
    if empty_at is not None:
        parts.insert(empty_at, df.iloc[:0])
    from dask import delayed

    return dd.from_delayed([delayed(p.copy)() for p in parts], meta=df.iloc[:0])


def _check_em(d, mem, tol=DASK_VS_MEMORY):
    assert d.n_iter_ == mem.n_iter_
    assert d.converged_ == mem.converged_
    np.testing.assert_allclose(d.loss_history_, mem.loss_history_, rtol=tol, atol=0)
    np.testing.assert_allclose(d.confusions_, mem.confusions_, rtol=0, atol=tol)
    np.testing.assert_allclose(d.priors_.to_numpy(), mem.priors_.to_numpy(), rtol=0, atol=tol)
    assert list(d.worker_ids_) == list(mem.worker_ids_)
    pr = d.probas_.compute()
    assert sorted(pr.index) == sorted(mem.probas_.index)
    pr = pr.loc[mem.probas_.index]
    assert list(pr.columns) == [str(c) for c in mem.classes_]
    np.testing.assert_allclose(pr.to_numpy(), mem.probas_.to_numpy(), rtol=0, atol=tol)
    lab = d.labels_.compute().loc[mem.labels_.index]
    assert (lab.to_numpy() == mem.labels_.to_numpy()).all()


# ----------------------------------------------------------------------------- the compiled map step
def test_partition_stats_sum_to_the_whole_and_match_numpy(data):
    r, _ = data
    K, W = r.n_classes, r.n_workers
    rng = np.random.default_rng(0)
    conf = rng.dirichlet(np.ones(K), size=(1, W, K))
    log_conf, log_prior = np.log(conf), np.log(np.full((1, K), 1 / K))
    code = (r.task_worker.astype(np.int64) * K + r.task_label).astype(np.int32)
    # numpy oracle: E-step then counts
    post_ref, ll_ref = _core.em_e_step(r.task_indptr, r.task_worker, r.task_label, r.n_tasks, W, log_conf, log_prior)
    tj = np.repeat(np.arange(r.n_tasks), np.diff(r.task_indptr))
    counts_ref = np.zeros((1, W, K, K))
    np.add.at(counts_ref[0], (r.task_worker, slice(None), r.task_label), post_ref[tj, 0, :])
    # two partitions at an arbitrary task split, one of them empty of nothing
    split = 611
    tot_c, tot_m, tot_ll = 0.0, 0.0, 0.0
    for lo, hi in ((0, split), (split, r.n_tasks), (r.n_tasks, r.n_tasks)):
        a, b = r.task_indptr[lo], r.task_indptr[hi]
        ip = np.ascontiguousarray(r.task_indptr[lo : hi + 1] - a)
        post = np.empty((hi - lo, 1, K))
        c, m, ll = _core.em_partition_stats(ip, np.ascontiguousarray(code[a:b]), W, log_conf, log_prior, post)
        np.testing.assert_allclose(post, post_ref[lo:hi], rtol=0, atol=KERNEL_F64)
        tot_c, tot_m, tot_ll = tot_c + c, tot_m + m, tot_ll + ll
    np.testing.assert_allclose(tot_c, counts_ref, rtol=0, atol=KERNEL_F64)
    np.testing.assert_allclose(tot_m[0], post_ref[:, 0, :].sum(0), rtol=0, atol=KERNEL_F64)
    assert tot_ll == pytest.approx(ll_ref, rel=KERNEL_F64)
    # counts of given posteriors (no E-step): ll is 0 and post is untouched
    p0 = post_ref.copy()
    c, m, ll = _core.em_partition_stats(r.task_indptr, code, W, None, None, p0)
    assert ll == 0.0 and np.array_equal(p0, post_ref)
    np.testing.assert_allclose(c, counts_ref, rtol=0, atol=KERNEL_F64)


def test_partition_stats_vote_start_is_the_vote_shares(data):
    r, _ = data
    K, W = r.n_classes, r.n_workers
    code = (r.task_worker.astype(np.int64) * K + r.task_label).astype(np.int32)
    scores, _, _ = _core.vote_scores(r.task_indptr, r.task_worker, r.task_label, r.n_tasks, W, K, None, 1)
    shares = scores / np.diff(r.task_indptr).astype(np.float64)[:, None]
    post = np.full((r.n_tasks, 1, K), np.nan)
    c, m, ll = _core.em_partition_stats(r.task_indptr, code, W, None, None, post, True, 1, vote_start=True)
    assert np.array_equal(post[:, 0, :], shares)  # the same divisions: bit for bit
    c_ref, m_ref, _ = _core.em_partition_stats(r.task_indptr, code, W, None, None, shares[:, None, :].copy())
    assert np.array_equal(c, c_ref) and np.array_equal(m, m_ref) and ll == 0.0
    lc, lp = np.zeros((1, W, K, K)), np.zeros((1, K))
    with pytest.raises(ValueError, match="vote_start"):
        _core.em_partition_stats(r.task_indptr, code, W, lc, lp, post, vote_start=True)


def test_partitions_in_task_order_are_grouped_in_place(data):
    _, df = data
    srt = df.sort_values("task", kind="stable").reset_index(drop=True)
    assert kd._sorted_int_tasks(srt["task"]) is not None
    fast = kd._pack_local(srt, kd.COLUMNS, 0)
    # the same rows with object task ids take the general path (factorize, stable sort by task)
    slow = kd._pack_local(srt.assign(task=srt["task"].astype(object)), kd.COLUMNS, 0)
    assert kd._sorted_int_tasks(srt["task"].astype(object)) is None
    assert list(fast.task_ids) == list(slow.task_ids)
    assert np.array_equal(fast.indptr, slow.indptr) and np.array_equal(fast.code, slow.code)
    assert (fast.task_min, fast.task_max) == (srt["task"].min(), srt["task"].max())
    assert kd._sorted_int_tasks(df.sample(frac=1, random_state=0)["task"]) is None
    # a duplicate inside a task-ordered partition is found as in the general path
    dup = pd.concat([srt.iloc[:4], srt.iloc[3:4]]).sort_values("task", kind="stable")
    with pytest.raises(ValueError, match="1 duplicate"):
        kd._pack_local(dup, kd.COLUMNS, 0)


def test_shard_stats_with_and_without_the_scratch_buffer(data, monkeypatch):
    _, df = data
    srt = df.sort_values("task", kind="stable")
    cut = srt["task"].searchsorted(srt["task"].iloc[len(srt) // 3])
    locs = [kd._pack_local(srt.iloc[:cut], kd.COLUMNS, 0), kd._pack_local(srt.iloc[cut:], kd.COLUMNS, 1)]
    root = kd._dicts_merge(kd._dicts_leaf(locs[0]), kd._dicts_leaf(locs[1]))
    parts = [kd._pack_global(p, root) for p in locs]
    W, K = len(root[1]), len(root[2])
    rng = np.random.default_rng(1)
    lc = np.ascontiguousarray(np.log(rng.dirichlet(np.ones(K), size=(1, W, K))))
    lp = np.log(np.full((1, K), 1.0 / K))
    fresh = [_core.em_partition_stats(p.indptr, p.code, W, lc, lp, np.empty((p.n_tasks, 1, K))) for p in parts]
    for limit in (kd.SCRATCH_BYTES, 0):  # the reused buffer, then a new array every call
        monkeypatch.setattr(kd, "SCRATCH_BYTES", limit)
        kd._SCRATCH.__dict__.pop("post", None)
        for _ in range(2):  # twice: the second round reuses what the first wrote
            c, m, ll, _ = kd._shard_stats(lc, lp, True, 1, *parts)
            assert np.array_equal(c, fresh[0][0] + fresh[1][0]) and np.array_equal(m, fresh[0][1] + fresh[1][1])
            assert ll == fresh[0][2] + fresh[1][2]
        assert (getattr(kd._SCRATCH, "post", None) is not None) == (limit > 0)


def test_partition_stats_refuses_bad_codes():
    ip = np.array([0, 2], dtype=np.int64)
    post = np.zeros((1, 1, 2))
    with pytest.raises(ValueError, match=r"answer \(worker \* K \+ label\) code 6 at index 1 is out of range"):
        _core.em_partition_stats(ip, np.array([0, 6], dtype=np.int32), 3, None, None, post)
    with pytest.raises(ValueError, match="task_indptr"):
        _core.em_partition_stats(np.array([0, 3], dtype=np.int64), np.array([0, 1], np.int32), 3, None, None, post)


# ----------------------------------------------------------------------------- the same answer as in memory
@pytest.mark.parametrize("cls", [DawidSkene, OneCoinDawidSkene])
@pytest.mark.parametrize("layout", ["one", "by_task_with_empty", "shuffled"])
def test_em_matches_in_memory(client, data, cls, layout):
    r, df = data
    est = cls(n_iter=60, tol=1e-7)
    mem = est.clone().fit(r)
    if layout == "one":
        ddf = dd.from_pandas(df, npartitions=1)
    elif layout == "by_task_with_empty":
        ddf = _by_task(df, 5, empty_at=2)
    else:  # rows in random order: every task spread over the partitions
        ddf = dd.from_pandas(df.sample(frac=1, random_state=7), npartitions=6, sort=False)
    d = est.clone().fit(ddf)
    assert d.cluster_stats_["shuffled"] == (layout == "shuffled")
    assert 1 < mem.n_iter_ < 60  # the stopping rule decided, not n_iter
    _check_em(d, mem)
    if cls is OneCoinDawidSkene:
        np.testing.assert_allclose(d.skills_.to_numpy(), mem.skills_.to_numpy(), rtol=0, atol=DASK_VS_MEMORY)


def test_em_full_rounds_and_smoothing(client, data, monkeypatch):
    r, df = data
    monkeypatch.setattr(kd, "SCATTER_BYTES", 0)  # the parameters as a task's result, fetched by the shards
    monkeypatch.setattr(kd, "LOCAL_REDUCE_SHARDS", 0)  # the statistics added up a tree of tasks on the cluster
    est = DawidSkene(n_iter=25, tol=0.0, smoothing=0.5)
    mem = est.clone().fit(r)
    d = est.clone().fit(_by_task(df, 3))
    assert d.n_iter_ == 25 and not d.converged_
    st = d.cluster_stats_
    assert 0 < st["compute_round_s"] <= st["round_s"]
    assert st["overhead_round_s"] == pytest.approx(st["round_s"] - st["compute_round_s"])
    W, K, S = r.n_workers, r.n_classes, d.cluster_stats_["n_shards"]
    assert d.cluster_stats_["bytes_per_round"] == S * ((8 * W * K * K + 8 * K) + (8 * W * K * K + 8 * K + 8))
    _check_em(d, mem)


@pytest.mark.parametrize(
    "params, layout",
    [
        ({"prior_strength": 4.0, "prior_accuracy": 0.8}, "shuffled"),
        ({"method": "map", "prior_strength": 6.0, "prior_accuracy": 0.75}, "by_task_with_empty"),
        ({}, "shuffled"),  # strength and accuracy estimated from the reduced counts every round
        ({"method": "map", "prior_strength": 3.0}, "one"),  # accuracy estimated, strength fixed
        ({"prior": "pooled"}, "by_task_with_empty"),
        ({"prior": np.array([[5.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 5.0]])}, "shuffled"),
    ],
)
def test_bayesian_matches_in_memory(client, data, params, layout):
    r, df = data
    est = BayesianDawidSkene(n_iter=60, tol=1e-7, **params)
    mem = est.clone().fit(r)
    if layout == "one":
        ddf = dd.from_pandas(df, npartitions=1)
    elif layout == "by_task_with_empty":
        ddf = _by_task(df, 5, empty_at=2)
    else:
        ddf = dd.from_pandas(df.sample(frac=1, random_state=7), npartitions=6, sort=False)
    d = est.clone().fit(ddf)
    assert 1 < mem.n_iter_ < 60  # the stopping rule decided, not n_iter
    _check_em(d, mem)
    np.testing.assert_allclose(d.prior_pseudo_counts_, mem.prior_pseudo_counts_, rtol=DASK_VS_MEMORY, atol=0)
    assert d.prior_strength_ == pytest.approx(mem.prior_strength_, rel=DASK_VS_MEMORY)
    assert d.prior_accuracy_ == pytest.approx(mem.prior_accuracy_, rel=DASK_VS_MEMORY)
    # only fitted state (and the packed partitions behind the lazy outputs) stays on the estimator
    assert sorted(k for k in vars(d) if k.startswith("_")) == ["_plan"]
    if "prior" not in params and params.get("prior_strength") is None:
        assert d.prior_strength_ != pytest.approx(2.0 * r.n_classes)  # estimated: moved from its start


def test_bayesian_full_rounds_count_the_last_posteriors(client, data, monkeypatch):
    r, df = data
    monkeypatch.setattr(kd, "SCATTER_BYTES", 0)
    monkeypatch.setattr(kd, "LOCAL_REDUCE_SHARDS", 0)
    est = BayesianDawidSkene(n_iter=12, tol=0.0, prior_strength=2.0)
    mem = est.clone().fit(r)
    d = est.clone().fit(_by_task(df, 3))
    assert d.n_iter_ == 12 and not d.converged_
    _check_em(d, mem)


def test_bayesian_settings_the_cluster_cannot_take(client, data):
    _, df = data
    ddf = dd.from_pandas(df, npartitions=2)
    with pytest.raises(TypeError, match="CommunityDawidSkene has no Dask fit"):
        CommunityDawidSkene().fit(ddf)
    gold = pd.Series({df["task"].iloc[0]: df["label"].iloc[0]})
    with pytest.raises(ValueError, match="true_labels .* not available on a Dask DataFrame"):
        BayesianDawidSkene(true_labels=gold).fit(ddf)
    with pytest.raises(ValueError, match="method must be 'vb' or 'map'"):
        BayesianDawidSkene(method="gibbs").fit(ddf)
    with pytest.raises(ValueError, match=r"prior must have shape \(3, 3\)"):
        BayesianDawidSkene(prior=np.ones((2, 2))).fit(ddf)
    with pytest.raises(ValueError, match="class_prior must be > 0"):
        BayesianDawidSkene(class_prior=0.0).fit(ddf)


def test_refit_is_bit_identical(client, data):
    _, df = data
    ddf = _by_task(df, 4)
    a = DawidSkene(n_iter=20, tol=0).fit(ddf)
    b = DawidSkene(n_iter=20, tol=0).fit(ddf)
    assert a.loss_history_ == b.loss_history_
    assert np.array_equal(a.confusions_, b.confusions_)


def test_string_ids_and_labels(client):
    r, _ = simulate.one_coin(400, 12, 2, answers_per_task=4, random_state=5)
    df = r.to_dataframe()
    df = pd.DataFrame(
        {
            "task": "t" + df["task"].astype(str),
            "worker": "w" + df["worker"].astype(str),
            "label": df["label"].map({0: "no", 1: "yes"}),
        }
    )
    mem = DawidSkene(n_iter=30).fit(df)
    d = DawidSkene(n_iter=30).fit(dd.from_pandas(df.sample(frac=1, random_state=0), npartitions=3, sort=False))
    assert list(d.classes_) == ["no", "yes"]
    _check_em(d, mem)


# ----------------------------------------------------------------------------- votes
def test_votes_match_in_memory(client, data):
    r, df = data
    ddf = _by_task(df, 3)
    rel = pd.Series(np.linspace(0.55, 0.95, r.n_workers), index=r.worker_ids)
    for est in (
        MajorityVote(tie_break="first"),
        WeightedMajorityVote(reliabilities=rel, tie_break="first"),
        WeightedMajorityVote(weights=rel, tie_break="first"),
    ):
        mem = est.clone().fit(r)
        d = est.clone().fit(ddf)
        lab = d.labels_.compute().loc[mem.labels_.index]
        assert (lab.to_numpy() == mem.labels_.to_numpy()).all()
        pr = d.probas_.compute().loc[mem.probas_.index]
        np.testing.assert_allclose(pr.to_numpy(), mem.probas_.to_numpy(), rtol=0, atol=DASK_VS_MEMORY)


def test_random_ties_are_the_same_for_any_partitioning(client):
    # 2 answers per binary task: many ties
    r, _ = simulate.one_coin(600, 10, 2, answers_per_task=2, random_state=2)
    df = r.to_dataframe()
    a = MajorityVote(random_state=4).fit(_by_task(df, 2)).labels_.compute().sort_index()
    b = MajorityVote(random_state=4).fit(dd.from_pandas(df.sample(frac=1, random_state=1), npartitions=5)).labels_
    b = b.compute().sort_index()
    c = MajorityVote(random_state=5).fit(_by_task(df, 2)).labels_.compute().sort_index()
    assert a.equals(b)
    mem = MajorityVote(tie_break="first").fit(r)
    tied = mem.probas_.max(axis=1) == 0.5
    assert tied.sum() > 100
    assert (a[~tied] == mem.labels_[~tied]).all()  # untied tasks: the vote
    assert 0.3 < (a[tied] == 1).mean() < 0.7  # tied tasks: a fair draw
    assert not a[tied].equals(c[tied])  # another seed, other draws


# ----------------------------------------------------------------------------- faults
def test_killed_worker_mid_fit_gives_the_same_result(client, tmp_path):
    r, _ = simulate.dawid_skene(20000, 50, 2, answers_per_task=5, random_state=11)
    df = r.to_dataframe()
    tasks = np.sort(df["task"].unique())
    for i, cut in enumerate(np.array_split(tasks, 8)):
        df[df["task"].isin(cut)].to_parquet(tmp_path / f"part-{i:02d}.parquet", index=False)
    est = DawidSkene(n_iter=30, tol=0)
    mem = est.clone().fit(r)
    before = set(client.scheduler_info()["workers"])
    pids = client.run(os.getpid)
    victim = sorted(pids)[1]
    killed: dict = {}

    def on_round(n, ll):
        if n == 5:  # packed partitions on both workers, a round about to start
            os.kill(pids[victim], signal.SIGKILL)
            killed["at"] = n

    d = kd.fit_dask(est.clone(), dd.read_parquet(str(tmp_path)), on_round=on_round)
    assert killed == {"at": 5}
    _check_em(d, mem)
    # the worker process is gone (its nanny starts a new one)
    deadline = time.time() + 60
    while victim in client.scheduler_info()["workers"] and time.time() < deadline:
        time.sleep(0.2)
    assert victim not in client.scheduler_info()["workers"]
    assert victim in before
    client.wait_for_workers(2, timeout=60)


# ----------------------------------------------------------------------------- bad input
def test_missing_columns_fail_before_any_work(client):
    from dask import delayed

    ran = threading.Event()

    def part():
        ran.set()
        raise RuntimeError("a partition was computed")

    meta = pd.DataFrame({"task": pd.Series([], dtype=int), "worker": pd.Series([], dtype=int)})
    ddf = dd.from_delayed([delayed(part)()], meta=meta)
    with pytest.raises(ValueError, match=r"column\(s\) \['label'\] not in the Dask DataFrame"):
        DawidSkene().fit(ddf)
    with pytest.raises(ValueError, match="label"):
        MajorityVote().fit(ddf)
    assert not ran.is_set()
    with pytest.raises(TypeError, match="dask.dataframe.DataFrame"):
        kd.fit_dask(DawidSkene(), dd.from_pandas(pd.Series([1, 2]), npartitions=1))


def test_nan_labels_follow_the_in_memory_rule(client):
    df = pd.DataFrame({"task": [1, 1, 2, 2], "worker": [1, 2, 1, 2], "label": [0.0, 1.0, np.nan, 1.0]})
    with pytest.raises(ValueError, match="labels has 1 missing or non-finite values"):
        Responses.from_dataframe(df)
    with pytest.raises(ValueError, match=r"labels \(partition 0\) has 1 missing or non-finite values"):
        DawidSkene().fit(dd.from_pandas(df, npartitions=1))
    df2 = df.assign(label=[0.0, 1.0, 0.5, 1.0])  # a non-integer float label: refused as in memory
    with pytest.raises(ValueError, match="non-integer float values"):
        MajorityVote().fit(dd.from_pandas(df2, npartitions=1))


def test_other_bad_input(client, data):
    _, df = data
    ddf = dd.from_pandas(df, npartitions=2)
    with pytest.raises(ValueError, match="init='spectral' is not available"):
        DawidSkene(init="spectral").fit(ddf)
    with pytest.raises(ValueError, match="backend='numpy' is not available"):
        DawidSkene(backend="numpy").fit(ddf)
    with pytest.raises(ValueError, match="n_iter must be >= 1"):
        DawidSkene(n_iter=0).fit(ddf)
    dup = pd.concat([df.iloc[:3], df.iloc[:1]])
    with pytest.raises(ValueError, match="1 duplicate"):
        DawidSkene().fit(dd.from_pandas(dup, npartitions=1))
    one = df.assign(label=0)
    with pytest.raises(ValueError, match="only one class"):
        DawidSkene().fit(dd.from_pandas(one, npartitions=2))
    with pytest.raises(TypeError, match="random_state must be an int"):
        MajorityVote(random_state=np.random.default_rng(0)).fit(ddf)
    with pytest.raises(TypeError, match="client must be a distributed.Client"):
        kd.fit_dask(DawidSkene(), ddf, client="tcp://x")
    # DawidSkene.fit's in-memory arguments are refused, not ignored
    gold = pd.Series({df["task"].iloc[0]: df["label"].iloc[0]})
    with pytest.raises(ValueError, match="true_labels not available on a Dask DataFrame"):
        DawidSkene().fit(ddf, true_labels=gold)
    with pytest.raises(ValueError, match="initial_error not available"):
        OneCoinDawidSkene().fit(ddf, initial_error=np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="duplicates='keep_first' not available"):
        DawidSkene().fit(ddf, duplicates="keep_first")


def test_unreachable_scheduler_is_one_line(monkeypatch):
    monkeypatch.setattr(kd, "CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises(ConnectionError) as err:
        kd.connect("tcp://127.0.0.1:9")
    assert isinstance(err.value, ValueError)  # the command line's bad-input path: one line, exit 2
    msg = str(err.value)
    assert "\n" not in msg and "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in msg
    with pytest.raises(ValueError, match="local:N"):
        kd.connect("local:zero")


# ----------------------------------------------------------------------------- Parquet in, Parquet out
def test_aggregate_parquet(client, data, tmp_path):
    r, df = data
    src = tmp_path / "answers"
    src.mkdir()
    srt = df.sort_values("task", kind="stable")
    for i, (a, b) in enumerate(((0, 2000), (2000, 5000), (5000, len(srt)))):
        srt.iloc[a:b].to_parquet(src / f"part-{i}.parquet", index=False)
    out = tmp_path / "labels.parquet"
    import argparse

    parser = argparse.ArgumentParser()
    kp.add_aggregate_arguments(parser)
    args = parser.parse_args(
        [
            str(src / "*.parquet"),
            "--scheduler",
            client.scheduler.address,
            "--out",
            str(out),
            "--n-iter",
            "40",
            "--probas",
        ]
    )
    assert kp.run_aggregate(args) == 0
    got = pd.read_parquet(out).sort_index()
    mem = DawidSkene(n_iter=40).fit(r)
    assert (got["agg_label"].to_numpy() == mem.labels_.sort_index().to_numpy()).all()
    np.testing.assert_allclose(
        got[[str(c) for c in mem.classes_]].to_numpy(), mem.probas_.sort_index().to_numpy(), rtol=0, atol=DASK_VS_MEMORY
    )
    res = kp.aggregate_parquet(str(src), client=client, out=str(tmp_path / "bayes"), method="bayes", n_iter=40)
    mem = BayesianDawidSkene(n_iter=40).fit(r)
    assert res["n_iter"] == mem.n_iter_ and res["converged"] == mem.converged_
    got = pd.read_parquet(tmp_path / "bayes").sort_index()
    assert (got["agg_label"].to_numpy() == mem.labels_.sort_index().to_numpy()).all()


# ----------------------------------------------------------------------------- train_many on executors
def _nets():
    from kdcore.distill import make_margin_data

    X, y, p = make_margin_data(150, 6, gamma=0.1, random_state=0)
    cfgs = [
        {"m": m, "loss": loss, "lr": 2.0, "radius": rad, "random_state": s}
        for m in (2, 4, 8)
        for s in (0, 1)
        for loss, rad in (("soft", 1.0), ("hard", None))
    ]
    return X, y, p, cfgs


def _same_histories(a, b):
    assert len(a) == len(b)
    for ha, hb in zip(a, b):
        assert ha.config == hb.config
        for f in ("loss", "error", "test_error"):
            assert np.array_equal(getattr(ha, f), getattr(hb, f), equal_nan=True)
        assert np.array_equal(ha.model.W, hb.model.W)


@pytest.mark.parametrize("kind", ["threads", "dask"])
def test_train_many_on_an_executor_is_identical(client, kind):
    from kdcore.distill import train_many

    X, y, p, cfgs = _nets()
    local = train_many(cfgs, X, y, p, n_steps=30, X_test=X[:40], y_test=y[:40], n_threads=1)
    if kind == "threads":
        with ThreadPoolExecutor(max_workers=3) as ex:
            spread = train_many(cfgs, X, y, p, n_steps=30, X_test=X[:40], y_test=y[:40], n_threads=1, executor=ex)
    else:
        spread = train_many(cfgs, X, y, p, n_steps=30, X_test=X[:40], y_test=y[:40], n_threads=1, executor=client)
    _same_histories(local, spread)


def test_scheduler_executor_spreads_every_train_many(client):
    from kdcore.distill import train_many
    from kdcore.distill.executor import current_executor, scheduler_executor

    X, y, p, cfgs = _nets()
    local = train_many(cfgs, X, y, p, n_steps=10, n_threads=1)
    with scheduler_executor(client.scheduler.address) as ex:
        assert current_executor() is ex and isinstance(ex, distributed.Client)
        spread = train_many(cfgs, X, y, p, n_steps=10, n_threads=1)
    assert current_executor() is None
    _same_histories(local, spread)
    with scheduler_executor(None) as ex:
        assert ex is None and current_executor() is None


def test_scaling_study_on_an_executor_is_identical(client):
    from kdcore.distill import make_margin_data, scaling_study
    from kdcore.distill.scaling import Arm

    X, y, p = make_margin_data(120, 5, gamma=0.2, random_state=1)
    ds = [{"task": "t", "gamma": 0.2, "X": X, "y": y, "p": p}]
    arms = [Arm("soft", "soft", 1.0, 2.0), Arm("hard", "hard", None, 2.0)]
    kw = dict(widths=(2, 4), seeds=(0, 1), eps_list=(0.2, 0.1), n_steps=20, n_threads=1)
    a = scaling_study(ds, arms, **kw)
    b = scaling_study(ds, arms, executor=client, **kw)
    pd.testing.assert_frame_equal(a.curves, b.curves)
    pd.testing.assert_frame_equal(a.mstar, b.mstar)
