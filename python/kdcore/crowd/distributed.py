"""The aggregators on a Dask cluster: answers as a Dask DataFrame, EM rounds as map + tree reduction.

``MajorityVote``, ``WeightedMajorityVote``, ``DawidSkene``, ``OneCoinDawidSkene`` and
``BayesianDawidSkene`` accept a ``dask.dataframe.DataFrame`` with columns task, worker, label
(for example ``dd.read_parquet("answers/*.parquet")``) and fit on the cluster of the current
``distributed.Client``. The fit:

1. checks the columns (no work is scheduled before);
2. packs each partition on a worker: local codes of its workers and labels, the answers
   grouped by task (the same missing-value, float-label and duplicate rules as the
   in-memory :class:`~kdcore.crowd.Responses`); a partition whose integer task column is
   already in order (Parquet written by task) is grouped where it lies, any other is
   factorized and sorted by task; the partitions' task ranges tell whether every task
   lives in one partition, and when they overlap the answers are shuffled by task once
   (``cluster_stats_["shuffle_s"]``) and packed again;
3. builds the global worker and class dictionaries by one tree of small tasks (sorted
   unions, with every partition's size and task range), and re-codes every answer as
   ``code = worker * K + label`` (4 bytes an answer) by one gather through a small
   table, kept in the workers' memory for the whole fit;
4. runs each EM round as a map and a reduction: every shard (the partitions one Dask
   worker holds) runs the compiled fused pass ``_core.em_partition_stats`` on its
   partitions (E-step under the current parameters, then the expected counts of the next
   M-step: worker x class x class counts, class totals, log-likelihood,
   docs/maths.md B.1), the shards' statistics are added in a fixed binary tree, the client
   runs the M-step on the totals (W K K numbers) and sends the new parameters. For
   ``BayesianDawidSkene`` the client's step is the estimator's own (docs/maths.md B.5):
   the empirical-Bayes update of the prior pseudo-counts from the reduced counts
   (``prior_strength="auto"``, ``prior="pooled"`` included: the totals are the global
   sufficient statistics), then E[log C] (``method="vb"``) or log C (``"map"``).

Counts, class totals and log-likelihood are sums over tasks, so the totals equal the
in-memory fit's up to the order of the additions: the fit matches
``DawidSkene().fit(responses)`` (and each other estimator's in-memory fit) to 1e-10 with
the same rounds and stopping decision, for any partitioning. Partitions are grouped into
shards by index (shard s holds a contiguous range), and sums run in partition order within
a shard and in a fixed tree across shards, so a refit on the same partitions and the same
number of workers gives the same bits wherever the partitions live. A worker lost in the
middle of a fit is recovered by Dask: the scheduler recomputes the packed partitions it
held from their lineage (read, pack), and the round is rerun; the result does not change.

The labels and posteriors stay on the cluster: ``labels_`` is a Dask Series and
``probas_`` a Dask DataFrame indexed by task, computed (the last E-step, on the workers)
only when asked, e.g. ``est.labels_.to_frame().to_parquet(path)``. The fitted parameters
(``confusions_``, ``priors_``, ``skills_``, ``weights_``) are small and live on the client.

Not on a Dask DataFrame: ``init="spectral"`` and ``backend="numpy"`` (ValueError),
``duplicates`` other than "error", gold labels and prior error counts
(``DawidSkene.fit(ddf, true_labels=..., initial_error=...)``,
``BayesianDawidSkene(true_labels=...)``: ValueError) and ``CommunityDawidSkene``
(TypeError: its start ranks the workers by their agreement with the vote, in memory only).
``tie_break="random"`` in the votes draws each tied task's class from a hash of
(random_state, task id): reproducible and the same for any partitioning, but not the
draws of the in-memory fit ("first" is identical).

Example
-------
>>> import dask.dataframe as dd                                       # doctest: +SKIP
>>> from distributed import Client, LocalCluster                      # doctest: +SKIP
>>> from kdcore.crowd import DawidSkene                               # doctest: +SKIP
>>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))  # doctest: +SKIP
>>> ds = DawidSkene(n_iter=100).fit(dd.read_parquet("answers/"))      # doctest: +SKIP
>>> ds.labels_.to_frame().to_parquet("labels/")                       # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from .._check import check_float, check_int
from ..backends import _core, check_n_threads
from . import _em

__all__ = [
    "is_dask_dataframe",
    "fit_dask",
    "connect",
    "current_client",
    "close_client",
    "SchedulerUnreachable",
]

COLUMNS = ("task", "worker", "label")
#: EM parameters larger than this are sent once a round as the result of a task (not with
#: client.scatter: scattered data has no lineage, and a lost worker would lose it for good)
#: that the shards fetch; smaller ones travel inside the round's tasks (one message fewer)
SCATTER_BYTES = 1 << 20
#: up to this many shards, a round's statistics are gathered and added on the client (in
#: the fixed tree order); more go up a tree of sum tasks on the cluster
LOCAL_REDUCE_SHARDS = 8
#: the dictionaries' tree: partitions per leaf (on one worker) and nodes per merge
DICT_FAN_IN = 8
#: a worker keeps one posterior scratch buffer per thread up to this size, reused by every round
SCRATCH_BYTES = 64 << 20
#: seconds to wait for a scheduler before :func:`connect` gives up
CONNECT_TIMEOUT_S = 10.0


def is_dask_dataframe(obj: Any) -> bool:
    """True for a Dask DataFrame (or any Dask collection with ``columns``), without importing Dask."""
    return type(obj).__module__.split(".")[0] == "dask" and hasattr(obj, "__dask_graph__")


def _need_dask():
    try:
        import dask  # noqa: F401
        import distributed
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "fitting a Dask DataFrame needs dask[distributed] and pyarrow: pip install 'kdcore[dask]'"
        ) from exc
    return distributed


def current_client(client=None):
    distributed = _need_dask()
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
        return client
    try:
        return distributed.default_client()
    except ValueError:
        raise ValueError(
            "fitting a Dask DataFrame needs a running distributed.Client (e.g. Client('tcp://host:8786') "
            "or Client(LocalCluster(n_workers=2))); none was found"
        ) from None


# ----------------------------------------------------------------------------- partition packing
@dataclass
class _Local:
    """One partition with local codes: answers sorted by task, code = local worker * Kp + local label."""

    task_ids: pd.Index
    indptr: np.ndarray  # int64 (n_tasks + 1)
    code: np.ndarray  # int32, local worker * Kp + local label
    workers: pd.Index  # the partition's distinct worker ids, sorted
    labels: pd.Index  # the partition's distinct labels, sorted
    task_min: Any
    task_max: Any


@dataclass
class _Packed:
    """One partition in global codes, kept in a worker's memory for the whole fit."""

    task_ids: pd.Index
    indptr: np.ndarray  # int64 (n_tasks + 1)
    code: np.ndarray  # int32, global worker * K + class

    @property
    def n_tasks(self) -> int:
        return int(self.indptr.shape[0] - 1)


def _sorted_int_tasks(col: pd.Series) -> np.ndarray | None:
    """The task column as a numpy integer array when it is already in task order (non-decreasing):
    the answers are then grouped by task as they are, with no factorizing and no reordering."""
    if not isinstance(col.dtype, np.dtype) or col.dtype.kind not in "iu":
        return None
    tv = col.to_numpy()
    if len(tv) > 1 and not bool((tv[1:] >= tv[:-1]).all()):
        return None
    return tv


def _pack_local(df: pd.DataFrame, columns: tuple[str, str, str], index: int) -> _Local:
    from ._responses import factorize_column

    where = f" (partition {index})"
    tc, wc, lc = (df[c] for c in columns)
    w, workers = factorize_column(wc, "worker ids" + where, is_label=False)
    lab, labels = factorize_column(lc, "labels" + where, is_label=True)
    n_workers = len(workers)
    kp = max(len(labels), 1)
    if n_workers * kp >= 2**31:
        raise ValueError(f"{n_workers} workers x {kp} classes{where}: kdcore codes at most 2^31 - 1 cells")
    tv = _sorted_int_tasks(tc)
    if tv is not None:  # already grouped by task (Parquet written by task): the answers stay in place
        n = len(tv)
        cut = np.flatnonzero(tv[1:] != tv[:-1]) + 1 if n else np.zeros(0, np.int64)
        indptr = np.empty(len(cut) + 2 if n else 1, np.int64)
        indptr[0] = 0
        if n:
            indptr[1:-1] = cut
            indptr[-1] = n
        task_ids = pd.Index(tv[indptr[:-1]])
        n_tasks = len(task_ids)
        t = np.repeat(np.arange(n_tasks, dtype=np.int32), np.diff(indptr))
        tw: np.ndarray | None = np.ascontiguousarray(w, np.int32)
        tl: np.ndarray | None = np.ascontiguousarray(lab, np.int32)
    else:
        t, task_ids = factorize_column(tc, "task ids" + where, is_label=False)
        n_tasks = len(task_ids)
        t = np.ascontiguousarray(t, np.int32)
        tw = tl = None
    if len(t):
        _, n_dup, first = _core.find_duplicates(t, np.ascontiguousarray(w, np.int32), n_tasks, n_workers, 0)
        if n_dup:
            raise ValueError(
                f"{n_dup} duplicate (task, worker) answers{where}; the first repeats task "
                f"{task_ids[t[first]]!r}, worker {workers[w[first]]!r}. Drop them before fitting"
            )
    if tw is None or tl is None:  # answers sorted by task (stable)
        indptr, tw, tl = _core.build_csr(
            t, np.ascontiguousarray(w, np.int32), np.ascontiguousarray(lab, np.int32), n_tasks
        )
    del t, w, lab
    code = tw * np.int32(kp)  # < 2^31: checked above
    code += tl
    try:
        lo, hi = (task_ids.min(), task_ids.max()) if n_tasks else (None, None)
    except TypeError:  # unorderable ids: the ranges cannot prove the partitions disjoint
        lo = hi = TypeError
    return _Local(task_ids, indptr, code, workers, labels, lo, hi)


def _summary(part: _Local) -> dict:
    return {
        "n_answers": int(part.code.shape[0]),
        "n_tasks": len(part.task_ids),
        "task_min": part.task_min,
        "task_max": part.task_max,
    }


def _union(a: pd.Index, b: pd.Index) -> pd.Index:
    if len(a) == 0:
        return b
    if len(b) == 0:
        return a
    try:
        return a.union(b, sort=None).sort_values()
    except TypeError:  # mixed types: keep the order of first appearance (as the in-memory factorize)
        return a.append(b.difference(a, sort=False))


def _dicts_leaf(*parts: _Local) -> tuple[list[dict], pd.Index, pd.Index]:
    """(summaries, distinct workers, distinct labels) of a few partitions on one worker, in their order."""
    workers, labels = pd.Index([]), pd.Index([])
    for p in parts:
        workers, labels = _union(workers, p.workers), _union(labels, p.labels)
    return [_summary(p) for p in parts], workers, labels


def _dicts_merge(*nodes: tuple) -> tuple[list[dict], pd.Index, pd.Index]:
    """The same for consecutive groups: summaries concatenated, dictionaries united, in list order."""
    summaries: list[dict] = []
    workers, labels = pd.Index([]), pd.Index([])
    for sm, w, lab in nodes:
        summaries += sm
        workers, labels = _union(workers, w), _union(labels, lab)
    return summaries, workers, labels


def _pack_global(part: _Local, dicts: tuple) -> _Packed:
    """Global codes by one gather through a small table: local code (w * Kp + l) -> global w * K + class."""
    _, workers, classes = dicts
    K = len(classes)
    wmap = workers.get_indexer(part.workers).astype(np.int64)
    cmap = classes.get_indexer(part.labels).astype(np.int64)
    lut = (wmap[:, None] * K + cmap[None, :]).astype(np.int32).ravel()
    code = lut.take(part.code) if len(part.code) else np.zeros(0, np.int32)
    return _Packed(part.task_ids, part.indptr, code)


def _disjoint(summaries: list[dict]) -> bool:
    """True when the partitions' task ranges prove that no task is in two partitions."""
    ranges = [(s["task_min"], s["task_max"]) for s in summaries if s["n_tasks"]]
    if any(lo is TypeError for lo, _ in ranges):
        return False
    try:
        ranges.sort(key=lambda r: r[0])
        return all(ranges[i][1] < ranges[i + 1][0] for i in range(len(ranges) - 1))
    except TypeError:  # ids of different types across partitions
        return False


# ----------------------------------------------------------------------------- the map and the reduction
_SCRATCH = threading.local()


def _post_buffer(n_tasks: int, T: int, K: int) -> np.ndarray:
    """(n_tasks, T, K) posteriors to be overwritten: a view of this thread's scratch buffer, kept
    between rounds (no fresh pages to fault in every round; Dask's workers return freed memory to
    the system eagerly), or a new array when larger than :data:`SCRATCH_BYTES`."""
    size = n_tasks * T * K
    buf = getattr(_SCRATCH, "post", None)
    if buf is None or buf.size < size:
        buf = np.empty(size)
        if 8 * size <= SCRATCH_BYTES:
            _SCRATCH.post = buf
    return buf[:size].reshape(n_tasks, T, K)


def _shard_stats(log_conf, log_prior, count: bool, n_threads: int, *parts: _Packed):
    """Sum of em_partition_stats over one shard's partitions, in partition order; the last item
    is the seconds the shard computed (the reduction keeps the slowest shard's)."""
    t0 = time.perf_counter()
    W, K = log_conf.shape[1], log_conf.shape[2]
    T = log_conf.shape[0]
    counts, mass = np.zeros((T, W, K, K)), np.zeros((T, K))
    ll = 0.0
    for p in parts:
        post = _post_buffer(p.n_tasks, T, K)
        c, m, part_ll = _core.em_partition_stats(p.indptr, p.code, W, log_conf, log_prior, post, count, n_threads)
        ll += part_ll
        if c is not None and m is not None:
            counts += c
            mass += m
    dt = time.perf_counter() - t0
    return (counts, mass, ll, dt) if count else (None, None, ll, dt)


def _init_stats(W: int, K: int, n_threads: int, *parts: _Packed):
    """Counts of the majority-vote posteriors (vote shares), DawidSkene's init="mv"."""
    t0 = time.perf_counter()
    counts, mass = np.zeros((1, W, K, K)), np.zeros((1, K))
    for p in parts:
        post = _post_buffer(p.n_tasks, 1, K)
        c, m, _ = _core.em_partition_stats(p.indptr, p.code, W, None, None, post, True, n_threads, vote_start=True)
        assert c is not None and m is not None  # count=True
        counts += c
        mass += m
    return counts, mass, 0.0, time.perf_counter() - t0


def _identity(x):
    return x


def _add_stats(a: tuple, b: tuple) -> tuple:
    ca, ma, la, ta = a
    cb, mb, lb, tb = b
    if ca is None:
        return None, None, la + lb, max(ta, tb)
    return ca + cb, ma + mb, la + lb, max(ta, tb)


def _vote(p: _Packed, W: int, K: int, weight, n_threads: int):
    w, lab = np.divmod(p.code, K)
    return _core.vote_scores(
        p.indptr, w.astype(np.int32, copy=False), lab.astype(np.int32, copy=False), p.n_tasks, W, K, weight, n_threads
    )


def _tree_sum(items: list) -> tuple:
    """The same fixed binary tree as :func:`_tree_reduce`, on the client."""
    while len(items) > 1:
        nxt = [_add_stats(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]


def _reduce_round(client, futures: list, key: str) -> tuple:
    """The round's total: a few shards' statistics are gathered and added here (one message
    hop fewer), many go up a tree of sum tasks on the cluster; the same tree either way."""
    if len(futures) <= LOCAL_REDUCE_SHARDS:
        return _tree_sum(client.gather(futures))
    return client.gather(_tree_reduce(client, futures, key))


def _tree_reduce(client, futures: list, key: str):
    """Pairwise sums in a fixed binary tree over the list order: ((0 + 1) + (2 + 3)) + ..."""
    level = 0
    while len(futures) > 1:
        nxt = []
        for i in range(0, len(futures) - 1, 2):
            nxt.append(client.submit(_add_stats, futures[i], futures[i + 1], key=f"{key}-l{level}-{i // 2}"))
        if len(futures) % 2:
            nxt.append(futures[-1])
        futures = nxt
        level += 1
    return futures[0]


# ----------------------------------------------------------------------------- M-step on the totals
def _m_step(counts: np.ndarray, mass: np.ndarray, smoothing: float, one_coin: bool):
    """em_m_step / onecoin_m_step from reduced counts (T, W, K, K) and mass (T, K)."""
    K = counts.shape[-1]
    s = smoothing
    if one_coin:
        right = np.einsum("twkk->tw", counts)
        total = counts.sum(axis=(-2, -1))
        z = total + 2.0 * s
        params = np.where(z > 0, (right + s) / np.where(z > 0, z, 1.0), 0.5)
        log_conf = _em.onecoin_log_conf_unchecked(params, K)
    else:
        row = counts + s
        z = row.sum(axis=-1, keepdims=True)
        params = np.where(z > 0, row / np.where(z > 0, z, 1.0), 1.0 / K)
        log_conf = _em.log_clip(params)
    pz = float((mass + s).sum())
    prior = (mass + s) / pz if pz > 0 else np.full_like(mass, 1.0 / mass.size)
    return params, prior, np.ascontiguousarray(log_conf), np.ascontiguousarray(_em.log_clip(prior))


# ----------------------------------------------------------------------------- final outputs (lazy)
def _posteriors_frame(p: _Packed, log_conf, log_prior, classes, n_threads: int) -> pd.DataFrame:
    T, K = log_conf.shape[0], log_conf.shape[2]
    post = np.empty((p.n_tasks, T, K))
    _core.em_partition_stats(p.indptr, p.code, log_conf.shape[1], log_conf, log_prior, post, False, n_threads)
    return pd.DataFrame(post[:, 0, :], index=pd.Index(p.task_ids, name="task"), columns=_columns(classes))


def _columns(classes) -> pd.Index:
    return pd.Index([str(c) for c in classes], name="label")


def _labels_of(probas: pd.DataFrame, classes) -> pd.Series:
    lab = np.asarray(classes)[np.argmax(probas.to_numpy(), axis=1)] if len(probas) else np.asarray(classes)[:0]
    return pd.Series(lab, index=probas.index, name="agg_label")


def _vote_frame(p: _Packed, W: int, classes, weight, proba_rule: str, tie_break: str, seed, n_threads: int):
    """(probas, labels) of the (weighted) vote on one partition, as the in-memory estimator."""
    K = len(classes)
    scores, best, n_tied = _vote(p, W, K, weight, n_threads)
    if proba_rule == "shares":
        proba = scores / np.diff(p.indptr).astype(np.float64)[:, None]
    elif proba_rule == "softmax":
        e = np.exp(scores - scores.max(axis=1, keepdims=True)) if len(scores) else scores
        proba = e / e.sum(axis=1, keepdims=True) if len(scores) else scores
    else:  # weight shares, uniform when every voter weighs 0
        z = scores.sum(axis=1, keepdims=True)
        proba = np.where(z > 0, scores / np.where(z > 0, z, 1.0), 1.0 / K)
    labels = best.astype(np.intp)
    if tie_break == "random":
        rows = np.flatnonzero(n_tied > 1)
        if rows.size:
            h = pd.util.hash_array(np.asarray(p.task_ids[rows], dtype=object), hash_key=_hash_key(seed))
            u = (h >> np.uint64(11)).astype(np.float64) / float(2**53)
            pick = np.minimum((u * n_tied[rows]).astype(np.int64), n_tied[rows] - 1)
            sc = scores[rows]
            top = sc.max(axis=1, keepdims=True)
            tied = (top - sc) <= 1e-12 * np.maximum(1.0, np.abs(top))  # the kernel's tie rule
            labels[rows] = np.argmax(np.cumsum(tied, axis=1) > pick[:, None], axis=1)
    idx = pd.Index(p.task_ids, name="task")
    return pd.DataFrame(proba, index=idx, columns=_columns(classes)), pd.Series(
        np.asarray(classes)[labels], index=idx, name="agg_label"
    )


def _hash_key(seed) -> str:
    if seed is None:
        return "kdcore-vote-ties-00"
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"random_state must be an int or None on a Dask DataFrame (ties are drawn per task), got {type(seed).__name__}"
        )
    return f"{int(seed) & 0xFFFFFFFFFFFFFFFF:016x}"[:16]


# ----------------------------------------------------------------------------- the fit
class _Plan:
    """The packed partitions of one fit, grouped into shards (one per Dask worker)."""

    def __init__(self, client, packed: list, shards: list[list[int]], addrs: list[str], threads: list[int]):
        self.client = client
        self.packed = packed
        self.shards = shards
        self.addrs = addrs
        self.threads = threads

    def shard_args(self, s: int) -> list:
        return [self.packed[i] for i in self.shards[s]]

    def submit(self, fn, s: int, *args, key: str):
        return self.client.submit(
            fn, *args, *self.shard_args(s), key=key, workers=[self.addrs[s]], allow_other_workers=True
        )


def _check_frame(ddf, columns: tuple[str, str, str]) -> None:
    import dask.dataframe as dd

    if not isinstance(ddf, dd.DataFrame):
        raise TypeError(f"expected a dask.dataframe.DataFrame with columns {list(columns)}, got {type(ddf).__name__}")
    missing = [c for c in columns if c not in ddf.columns]
    if missing:
        raise ValueError(
            f"column(s) {missing} not in the Dask DataFrame; it has {list(ddf.columns)}. "
            "Rename them to task, worker, label (ddf.rename(columns={...}))"
        )


def _shards_for(client, n_parts: int) -> tuple[list[list[int]], list[str], list[int]]:
    info = (
        client.scheduler_info(n_workers=-1)["workers"]
        if _takes_n_workers(client)
        else client.scheduler_info()["workers"]
    )
    addrs = sorted(info)
    if not addrs:
        raise ValueError("the Dask cluster has no workers")
    n_shards = max(1, min(len(addrs), n_parts))
    bounds = np.linspace(0, n_parts, n_shards + 1).round().astype(int)
    shards = [list(range(bounds[s], bounds[s + 1])) for s in range(n_shards)]
    threads = [int(info[a].get("nthreads", 1)) for a in addrs[:n_shards]]
    return shards, addrs[:n_shards], threads


def _takes_n_workers(client) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def _pack(client, ddf, columns, shuffle, stats: dict) -> tuple[_Plan, pd.Index, pd.Index, int]:
    import dask

    t0 = time.perf_counter()
    tag = uuid.uuid4().hex[:10]

    def local_futures(frame, step: str):
        parts = frame.to_delayed()
        shards, addrs, threads = _shards_for(client, len(parts))
        futs: list = [None] * len(parts)
        for s, idx in enumerate(shards):
            ds = [
                dask.delayed(_pack_local)(parts[i], columns, i, dask_key_name=f"kdcore-local{step}-{tag}-{i}")
                for i in idx
            ]
            got = client.compute(ds, workers=[addrs[s]], allow_other_workers=True)
            for i, f in zip(idx, got):
                futs[i] = f
        return futs, shards, addrs, threads

    def dictionaries(local: list, shards, addrs, step: str):
        """One tree of small tasks: leaves of up to DICT_FAN_IN partitions of one shard (no answers
        move), then merges of DICT_FAN_IN nodes in partition order; its root holds every partition's
        summary (size, task range) and the worker and class dictionaries."""
        nodes = []
        for s, idx in enumerate(shards):
            for c in range(0, len(idx), DICT_FAN_IN):
                grp = idx[c : c + DICT_FAN_IN]
                nodes.append(
                    client.submit(
                        _dicts_leaf,
                        *[local[i] for i in grp],
                        key=f"kdcore-dicts{step}-{tag}-{grp[0]}",
                        workers=[addrs[s]],
                        allow_other_workers=True,
                    )
                )
        level = 0
        while len(nodes) > 1:
            nodes = [
                client.submit(_dicts_merge, *nodes[i : i + DICT_FAN_IN], key=f"kdcore-dicts{step}-{tag}-l{level}-{i}")
                for i in range(0, len(nodes), DICT_FAN_IN)
            ]
            level += 1
        return nodes[0], client.gather(nodes[0])

    frame = ddf[list(columns)]
    if shuffle is True:
        t1 = time.perf_counter()
        frame = frame.shuffle(on=columns[0])
        stats["shuffled"] = True
    local, shards, addrs, threads = local_futures(frame, "")
    root, (summaries, workers, classes) = dictionaries(local, shards, addrs, "")
    if shuffle is None and not _disjoint(summaries):
        del local, root
        t1 = time.perf_counter()
        frame = frame.shuffle(on=columns[0])
        stats["shuffled"] = True
        local, shards, addrs, threads = local_futures(frame, "2")
        root, (summaries, workers, classes) = dictionaries(local, shards, addrs, "2")
        stats["shuffle_s"] = time.perf_counter() - t1
    elif shuffle is True:
        stats["shuffle_s"] = time.perf_counter() - t1
    else:
        stats.setdefault("shuffled", False)
    # (read, local codes and dictionaries: one wait, the dictionaries' root)
    stats["local_s"] = time.perf_counter() - t0 - stats.get("shuffle_s", 0.0)
    n_answers = sum(s["n_answers"] for s in summaries)
    if n_answers == 0:
        raise ValueError("no responses: the Dask DataFrame has no rows")
    if len(classes) < 2:
        raise ValueError(f"only one class ({classes[0]!r}) appears in the labels; aggregation needs at least two")
    if len(workers) * len(classes) >= 2**31:
        raise ValueError(f"{len(workers)} workers x {len(classes)} classes: kdcore codes at most 2^31 - 1 cells")
    # the dictionaries stay on the cluster as the result of the tree's root, not scattered: a worker
    # lost later recomputes them (and the packed partitions) from their lineage
    packed: list = [None] * len(local)
    for s, idx in enumerate(shards):
        for i in idx:
            packed[i] = client.submit(
                _pack_global,
                local[i],
                root,
                key=f"kdcore-packed-{tag}-{i}",
                workers=[addrs[s]],
                allow_other_workers=True,
            )
    distributed = _need_dask()
    distributed.wait(packed)
    del local  # the local codes are released; the packed partitions keep their lineage
    stats.update(
        n_partitions=len(packed),
        n_shards=len(shards),
        n_answers=n_answers,
        n_tasks=sum(s["n_tasks"] for s in summaries),
        pack_s=time.perf_counter() - t0 - stats.get("shuffle_s", 0.0),
    )
    stats["global_s"] = stats["pack_s"] - stats["local_s"]
    return _Plan(client, packed, shards, addrs, threads), workers, classes, n_answers


def fit_dask(
    est: Any,
    ddf,
    *,
    client=None,
    shuffle: bool | None = None,
    on_round=None,
    true_labels=None,
    initial_error=None,
    duplicates: str = "error",
):
    """Fit ``est`` (MajorityVote, WeightedMajorityVote, DawidSkene, OneCoinDawidSkene or
    BayesianDawidSkene) on a Dask DataFrame.

    What ``est.fit(ddf)`` calls. Parameters
    ----------
    est : an unfitted aggregator; its parameters are used as in memory.
    ddf : dask.dataframe.DataFrame with columns task, worker, label.
    client : distributed.Client, default the current one.
    shuffle : None (shuffle by task only when the partitions' task ranges overlap),
        True (always), False (never: the caller guarantees every task is in one partition).
    on_round : callable (round, loglik), optional, called after each EM round (progress).
    true_labels, initial_error, duplicates : ``DawidSkene.fit``'s other arguments, passed on by
        it: only their defaults are available on a Dask DataFrame (ValueError otherwise, before
        any work is scheduled).

    Returns
    -------
    est, fitted: ``labels_`` (Dask Series) and ``probas_`` (Dask DataFrame) lazy on the
    cluster; parameters on the client; ``cluster_stats_`` with the partition count, shard
    count, timings (``pack_s``, ``shuffle_s``, ``rounds_s``, ``round_s``, and per round the slowest
    shard's compiled pass ``compute_round_s`` and the rest ``overhead_round_s``; ``pack_s`` is
    ``local_s``, reading + local codes + dictionaries, and ``global_s``, the global codes) and the bytes sent
    per round (``bytes_per_round``: parameters to every worker plus statistics up the tree).
    """
    # "em" (Dawid-Skene, one-coin), "bayes" (BayesianDawidSkene), "vote", "weighted_vote"
    model = getattr(type(est), "_dask_model", None)
    if model not in ("em", "bayes", "vote", "weighted_vote"):
        raise TypeError(
            f"{type(est).__name__} has no Dask fit; MajorityVote, WeightedMajorityVote, DawidSkene, "
            "OneCoinDawidSkene and BayesianDawidSkene do"
        )
    if shuffle not in (None, True, False):
        raise TypeError(f"shuffle must be None, True or False, got {shuffle!r}")
    given = [n for n, v in (("true_labels", true_labels), ("initial_error", initial_error)) if v is not None]
    if duplicates != "error":
        given.append(f"duplicates={duplicates!r}")
    if given:
        raise ValueError(
            f"{', '.join(given)} not available on a Dask DataFrame (gold labels, prior error counts and "
            "duplicate answers are in-memory features); fit a Responses, or drop them"
        )
    columns = COLUMNS
    _check_frame(ddf, columns)
    if getattr(est, "backend", "auto") not in ("auto", "cpp"):
        raise ValueError(f"backend={est.backend!r} is not available on a Dask DataFrame; use 'auto' or 'cpp'")
    check_n_threads(est.n_threads)
    if model == "em":
        check_int(est.n_iter, "n_iter", minimum=1)
        check_float(est.tol, "tol", minimum=0.0)
        _em.check_smoothing(est.smoothing)
        if est.init != "mv":
            raise ValueError(f"init={est.init!r} is not available on a Dask DataFrame; use init='mv'")
    elif model == "bayes":
        _check_bayes(est)
    else:
        if est.tie_break not in ("random", "first"):
            raise ValueError(f"tie_break must be 'random' or 'first', got {est.tie_break!r}")
        if est.tie_break == "random":
            _hash_key(est.random_state)
    client = current_client(client)
    stats: dict = {}
    plan, workers, classes, n_answers = _pack(client, ddf, columns, shuffle, stats)
    fitted: Any = est
    fitted.classes_ = np.asarray(classes)
    fitted.cluster_stats_ = stats
    fitted._plan = plan  # keeps the packed partitions alive while labels_/probas_ may be computed
    if model == "em":
        _fit_em(est, plan, workers, classes, n_answers, _DawidSkeneStep(est), on_round)
    elif model == "bayes":
        _fit_bayes(est, plan, workers, classes, n_answers, on_round)
    else:
        _fit_vote(est, plan, workers, classes, model == "weighted_vote")
    return est


def _nt(est, plan: _Plan, s: int) -> int:
    return int(est.n_threads) if est.n_threads else plan.threads[s]


class _DawidSkeneStep:
    """The M-step of DawidSkene / OneCoinDawidSkene on the reduced totals (smoothed counts)."""

    #: the last round's E-step needs no counts: the fitted parameters are those it used
    count_last = False

    def __init__(self, est) -> None:
        self.smoothing = float(est.smoothing)
        self.one_coin = bool(est._one_coin)
        self.params: Any = None
        self.prior: Any = None

    def __call__(self, counts: np.ndarray, mass: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.params, self.prior, log_conf, log_prior = _m_step(counts, mass, self.smoothing, self.one_coin)
        return log_conf, log_prior

    def finish(self, est, workers: pd.Index, classes: pd.Index, counts, mass) -> None:
        K = len(classes)
        est.priors_ = pd.Series(self.prior[0], index=pd.Index(np.asarray(classes), name="label"), name="prior")
        if self.one_coin:
            est.skills_ = pd.Series(self.params[0], index=workers, name="skill")
            conf = np.exp(_em.onecoin_log_conf_unchecked(self.params, K))[0]
            est.confusions_ = conf / conf.sum(-1, keepdims=True)
        else:
            est.confusions_ = self.params[0]


class _BayesStep:
    """BayesianDawidSkene's round on the reduced totals, by the estimator's own methods (the same
    code as in memory): the empirical-Bayes update of the prior pseudo-counts from the expected
    counts (diagonal strength / accuracy or pooled, docs/maths.md B.5; the counts are the
    global sufficient statistics, so "auto" needs no extra pass), then E[log C] (vb) or
    log C (map) and the class log-prior for the next E-step."""

    #: the fitted confusions are the posterior means at the final posteriors: the last round counts
    count_last = True

    def __init__(self, est) -> None:
        self.est = est

    def __call__(self, counts: np.ndarray, mass: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        est = self.est
        est._update_prior(counts[0])
        log_conf = est._worker_log_conf(counts[0])
        log_prior = est._log_class_prior(mass[0])
        return np.ascontiguousarray(log_conf[None], dtype=np.float64), np.ascontiguousarray(
            log_prior[None], dtype=np.float64
        )

    def finish(self, est, workers: pd.Index, classes: pd.Index, counts, mass) -> None:
        est.confusions_ = est._posterior_mean(counts[0])
        cp = mass[0] + est._nu
        est.priors_ = pd.Series(cp / cp.sum(), index=pd.Index(np.asarray(classes), name="label"), name="prior")
        K = len(classes)
        est.prior_pseudo_counts_ = np.array(est._A_out(), dtype=np.float64)
        A = est.prior_pseudo_counts_.reshape(-1, K, K)
        est.prior_strength_ = float(A.sum(-1).mean())
        est.prior_accuracy_ = float((np.einsum("mkk->mk", A) / A.sum(-1)).mean())


def _check_bayes(est) -> None:
    """BayesianDawidSkene's settings that do not depend on the classes, before any work is scheduled
    (the rest, e.g. a prior array's shape, once the classes are known)."""
    if est.method not in ("vb", "map"):
        raise ValueError(f"method must be 'vb' or 'map', got {est.method!r}")
    check_int(est.n_iter, "n_iter", minimum=1)
    check_float(est.tol, "tol", minimum=0.0)
    check_float(est.class_prior, "class_prior", minimum=0.0, strict_min=True)
    if est.true_labels is not None:
        raise ValueError(
            "true_labels (gold tasks) is not available on a Dask DataFrame; fit the Responses in memory or drop them"
        )


def _fit_bayes(est, plan: _Plan, workers: pd.Index, classes: pd.Index, n_answers: int, on_round) -> None:
    """BayesianDawidSkene on the cluster: the estimator's checks and prior on the classes found,
    the rounds of :func:`_fit_em`, and only the fitted state left on the estimator (as in memory)."""
    before = set(vars(est))
    ns = SimpleNamespace(n_classes=len(classes), n_workers=len(workers))
    try:
        est._check(ns)
        est._be = est._backend()  # the prior's empirical-Bayes step runs on the estimator's backend, as in memory
        est._init_prior(ns)
        _fit_em(est, plan, workers, classes, n_answers, _BayesStep(est), on_round, n_iter=est._n_iter, tol=est._tol)
    finally:  # the run's working state (checked settings, current prior) is not fitted state
        for name in [k for k in vars(est) if k not in before and k.startswith("_") and k != "_plan"]:
            delattr(est, name)


def _fit_em(
    est,
    plan: _Plan,
    workers: pd.Index,
    classes: pd.Index,
    n_answers: int,
    step,
    on_round,
    n_iter: int | None = None,
    tol: float | None = None,
) -> None:
    """The EM rounds: ``step(counts, mass)`` (on the client) gives the next E-step's log parameters
    from the reduced totals; each round maps the fused E-step + counts over the shards and adds
    the statistics in the fixed tree; ``step.finish`` sets the fitted parameters."""
    client = plan.client
    K, W = len(classes), len(workers)
    tag = uuid.uuid4().hex[:10]
    n_iter = int(est.n_iter) if n_iter is None else n_iter
    tol = float(est.tol) if tol is None else tol
    S = len(plan.shards)
    t0 = time.perf_counter()
    maps = [plan.submit(_init_stats, s, W, K, _nt(est, plan, s), key=f"kdcore-em-{tag}-r0-s{s}") for s in range(S)]
    counts, mass, _, _ = _reduce_round(client, maps, f"kdcore-em-{tag}-r0")
    stats = est.cluster_stats_
    stats["init_s"] = time.perf_counter() - t0
    history: list[float] = []
    ll: float | None = None
    converged = False
    n = 0
    t_rounds = time.perf_counter()
    lcf: Any = None
    lpf: Any = None
    param_bytes = stat_bytes = 0
    compute_s = 0.0
    for n in range(1, n_iter + 1):  # noqa: B007 (n is the round count after the loop)
        log_conf, log_prior = step(counts, mass)
        count = step.count_last or n < n_iter
        param_bytes = log_conf.nbytes + log_prior.nbytes
        if param_bytes > SCATTER_BYTES:  # one task holds them; the shards fetch them from its worker
            lcf = client.submit(_identity, log_conf, key=f"kdcore-em-{tag}-r{n}-log-conf")
            lpf = client.submit(_identity, log_prior, key=f"kdcore-em-{tag}-r{n}-log-prior")
        else:  # small: inside the round's tasks (one message fewer per round)
            lcf, lpf = log_conf, log_prior
        maps = [
            plan.submit(_shard_stats, s, lcf, lpf, count, _nt(est, plan, s), key=f"kdcore-em-{tag}-r{n}-s{s}")
            for s in range(S)
        ]
        new_counts, new_mass, new_ll, shard_s = _reduce_round(client, maps, f"kdcore-em-{tag}-r{n}")
        compute_s += shard_s
        if new_counts is not None:  # (DawidSkene's last round sends its log-likelihood only)
            counts, mass = new_counts, new_mass
            stat_bytes = counts.nbytes + mass.nbytes + 8
        history.append(-new_ll / n_answers)
        if on_round is not None:
            on_round(n, new_ll)
        if ll is not None and abs(new_ll - ll) < tol * abs(ll):
            converged = True
            break
        ll = new_ll
    rounds_s = time.perf_counter() - t_rounds
    stats.update(
        rounds=n,
        rounds_s=rounds_s,
        round_s=rounds_s / max(n, 1),
        # the slowest shard's compiled pass per round, and the rest of a round: scheduling,
        # messages, the M-step on the client
        compute_round_s=compute_s / max(n, 1),
        overhead_round_s=(rounds_s - compute_s) / max(n, 1),
        # the parameters to each shard's worker, each shard's statistics up the tree (at most S - 1
        # moves) and the total to the client; the answers themselves never move after packing
        bytes_per_round=int((param_bytes + stat_bytes) * S),
    )
    est.n_iter_ = n
    est.converged_ = converged
    est.loss_history_ = history
    est.worker_ids_ = workers
    step.finish(est, workers, classes, counts, mass)
    _set_lazy_em(est, plan, lcf, lpf, classes)


def _set_lazy_em(est, plan: _Plan, lcf, lpf, classes: pd.Index) -> None:
    import dask
    import dask.dataframe as dd

    cols = _columns(classes)
    meta = pd.DataFrame({c: pd.Series([], dtype=np.float64) for c in cols}, index=_meta_index(plan))
    meta.columns = cols
    parts = []
    for s, idx in enumerate(plan.shards):
        for i in idx:
            parts.append(dask.delayed(_posteriors_frame)(plan.packed[i], lcf, lpf, list(classes), _nt(est, plan, s)))
    probas = dd.from_delayed(parts, meta=meta, verify_meta=False)
    est.probas_ = probas
    est.labels_ = probas.map_partitions(_labels_of, list(classes), meta=_label_meta(classes, meta.index))


def _meta_index(plan: _Plan) -> pd.Index:
    first = plan.client.submit(lambda p: p.task_ids[:0], plan.packed[0]).result()
    return pd.Index(first, name="task")


def _label_meta(classes: pd.Index, index: pd.Index) -> pd.Series:
    return pd.Series(np.asarray(classes)[:0], index=index, name="agg_label")


def _fit_vote(est, plan: _Plan, workers: pd.Index, classes: pd.Index, weighted: bool) -> None:
    import dask
    import dask.dataframe as dd

    K, W = len(classes), len(workers)
    weight = None
    rule = "shares"
    if weighted:
        ns = SimpleNamespace(worker_ids=workers, n_workers=W, n_classes=K)
        weight = est._weights(ns)
        rule = "softmax" if est.reliabilities is not None else "weights"
    est.worker_ids_ = workers
    cols = _columns(classes)
    meta_p = pd.DataFrame({c: pd.Series([], dtype=np.float64) for c in cols}, index=_meta_index(plan))
    meta_p.columns = cols
    w_fut = plan.client.submit(_identity, weight) if weight is not None else None
    pairs = []
    for s, idx in enumerate(plan.shards):
        for i in idx:
            pairs.append(
                dask.delayed(_vote_frame, nout=2)(
                    plan.packed[i], W, list(classes), w_fut, rule, est.tie_break, est.random_state, _nt(est, plan, s)
                )
            )
    est.probas_ = dd.from_delayed([p[0] for p in pairs], meta=meta_p, verify_meta=False)
    est.labels_ = dd.from_delayed([p[1] for p in pairs], meta=_label_meta(classes, meta_p.index), verify_meta=False)


# ----------------------------------------------------------------------------- connecting and the CLI
class SchedulerUnreachable(ConnectionError, ValueError):
    """No Dask scheduler answered at the address given (a ConnectionError, and a ValueError so
    that a command line reports it as bad input: one line, exit code 2)."""


def connect(scheduler: str):
    """A ``distributed.Client`` for ``scheduler``: "local:N" starts a LocalCluster of N one-thread
    worker processes (closed with the client), anything else is a scheduler address
    ("tcp://host:8786"). An address that cannot be reached within :data:`CONNECT_TIMEOUT_S`
    raises :class:`SchedulerUnreachable` (a ConnectionError and a ValueError) with one line naming it."""
    distributed = _need_dask()
    if not isinstance(scheduler, str) or not scheduler:
        raise TypeError(f"scheduler must be an address or 'local:N', got {scheduler!r}")
    if scheduler.startswith("local:"):
        n = scheduler.split(":", 1)[1]
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"scheduler 'local:N' needs a number of workers N >= 1, got {scheduler!r}")
        cluster = distributed.LocalCluster(
            n_workers=int(n), threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = distributed.Client(cluster)
        client._kdcore_cluster = cluster  # closed by close_client
        return client
    try:
        return distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SchedulerUnreachable(
            f"cannot reach the Dask scheduler at {scheduler!r} within {CONNECT_TIMEOUT_S:g} s ({reason})"
        ) from None


def close_client(client) -> None:
    """Close a client from :func:`connect` (and the LocalCluster it started)."""
    cluster = getattr(client, "_kdcore_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()
