"""Dawid-Skene on a 2-worker Dask LocalCluster vs in memory, from Parquet partitioned by task.

For each dataset written by ``benchmarks/make_answers.py`` (binary answers, 10 per task):

- **Dask**: ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``;
  ``DawidSkene(n_iter=100, tol=0).fit(dd.read_parquet(path))``: reading and packing the
  partitions (``pack_s`` = ``local_s``: Parquet read, local codes, dictionaries, +
  ``global_s``: global codes), the first counts (``init_s``) and 100 EM rounds
  (``rounds_s``, split per round into the slowest shard's compiled pass
  ``compute_round_s`` and the rest ``overhead_round_s``); bytes sent per round
  (parameters to each shard, statistics up the reduction tree, counted from the
  message payloads); each worker process's peak resident memory (Linux VmHWM, reset
  before the fit) beside its share of the answers as read from Parquet (12 bytes an
  answer: three int32 columns);
- **in memory**, in this process after the cluster is closed: ``pd.read_parquet`` +
  ``Responses.from_dataframe`` (``build_s``) and ``DawidSkene(n_iter=100, tol=0,
  n_threads=2).fit`` (``fit_s``), peak memory of the whole (benchmarks/_memory.py);
- the two fits' posteriors compared (max absolute difference).

A script (under a minute at 1e7, several at 1e8, which needs about 8 GB free for the
in-memory side), plus one pytest-benchmark test at 1e6 (below): run

    PYTHONPATH=python python benchmarks/make_answers.py --n 1e7 --out /tmp/answers-1e7
    cd benchmarks && PYTHONPATH=../python python bench_dask.py /tmp/answers-1e7 [--json results.jsonl]

and ``python benchmarks/bench_dask.py --model results.jsonl`` fits the cost model to the
rows of the JSON file and predicts 1e10 answers on 100 workers (docs/cluster.md).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

BYTES_PER_ANSWER_READ = 12  # task, worker, label as int32


def _reset_peak() -> float:
    """In a worker process: return freed heap, reset VmHWM, return the resting RSS in MB."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mb("VmRSS")


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return _status_mb("VmHWM")


def run(path: str, n_iter: int = 100, n_workers: int = 2, in_memory: bool = True) -> dict:
    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client, LocalCluster

    from _memory import PeakRSS
    from kdcore.crowd import DawidSkene, Responses

    row: dict = {"path": path, "n_iter": n_iter, "n_workers": n_workers}
    cluster = LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit=None
    )
    client = Client(cluster)
    try:
        # imports on the workers (kdcore, pandas, pyarrow) before the clock starts
        client.run(lambda: __import__("kdcore.crowd.distributed") and __import__("pyarrow.parquet"))
        rest = client.run(_reset_peak)
        t0 = time.perf_counter()
        est = DawidSkene(n_iter=n_iter, tol=0.0).fit(dd.read_parquet(path))
        wall = time.perf_counter() - t0
        peaks = client.run(_peak_mb)
        st = est.cluster_stats_
        N = st["n_answers"]
        row.update(
            n_answers=N,
            n_tasks=st["n_tasks"],
            n_annotators=len(est.worker_ids_),
            n_partitions=st["n_partitions"],
            dask_wall_s=wall,
            pack_s=st["pack_s"],
            local_s=st["local_s"],
            global_s=st["global_s"],
            init_s=st["init_s"],
            rounds_s=st["rounds_s"],
            round_s=st["round_s"],
            compute_round_s=st["compute_round_s"],
            overhead_round_s=st["overhead_round_s"],
            bytes_per_round=st["bytes_per_round"],
            worker_rest_mb=sorted(rest.values()),
            worker_peak_mb=sorted(peaks.values()),
            worker_share_read_mb=BYTES_PER_ANSWER_READ * N / n_workers / 2**20,
        )
        t1 = time.perf_counter()
        probas_dask = est.probas_.compute().sort_index() if in_memory else None
        row["probas_compute_s"] = time.perf_counter() - t1
        del est
    finally:
        client.close()
        cluster.close()
    if in_memory:
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            df = pd.read_parquet(path)
            r = Responses.from_dataframe(df)
            del df
            build = time.perf_counter() - t0
            t1 = time.perf_counter()
            ds = DawidSkene(n_iter=n_iter, tol=0.0, n_threads=2).fit(r)
            fit = time.perf_counter() - t1
        assert probas_dask is not None
        diff = float(np.abs(probas_dask.to_numpy() - ds.probas_.sort_index().to_numpy()).max())
        row.update(
            mem_build_s=build, mem_fit_s=fit, mem_round_s=fit / n_iter, mem_peak_mb=mem.peak_mb, max_abs_diff=diff
        )
        row["rounds_ratio"] = row["rounds_s"] / fit
        row["end_to_end_ratio"] = row["dask_wall_s"] / (build + fit)
    return row


# ----------------------------------------------------------------------------- pytest-benchmark (1e6)
def test_dask_vs_memory_1e6(benchmark, tmp_path, machine_info):
    """1e6 answers, 100 rounds: the Dask fit (2 workers) and the in-memory fit (2 threads) in one
    run, their ratio in extra_info; the posteriors compared after timing.

    PYTHONPATH=python python -m pytest benchmarks/bench_dask.py --benchmark-enable -q -s
    """
    import pytest

    pytest.importorskip("distributed")
    from make_answers import write

    path = str(tmp_path / "answers")
    write(1_000_000, path, rows_per_file=200_000)
    holder: dict = {}

    def once():
        holder["row"] = run(path, 100, 2, True)

    benchmark.pedantic(once, rounds=1, iterations=1)
    row = holder["row"]
    assert row["max_abs_diff"] < 1e-10
    benchmark.extra_info.update(machine_info)
    benchmark.extra_info.update({k: v for k, v in row.items() if k != "path"})


# ----------------------------------------------------------------------------- cost model
#: assumptions of the 1e10-answer prediction (docs/cluster.md writes them out)
ASSUME = {
    "n_answers": 1e10,
    "n_workers": 100,  # one thread each, each as fast as one core here
    "n_annotators": 1e6,  # W: the statistics are W x K x K doubles
    "n_classes": 2,
    "bandwidth_Bps": 1.25e9,  # 10 Gbit/s between workers
    "hop_latency_s": 0.002,  # one worker-to-worker message
}


def fit_model(rows: list[dict]) -> dict:
    """round_s = a + b * answers per worker, with a the mean measured overhead of a round (the
    round minus its slowest shard's pass, in the runs that record it) and b by least squares
    through the origin on round_s - a; pack_s = c + d * answers per worker by least squares."""
    n = np.array([r["n_answers"] / r["n_workers"] for r in rows], dtype=float)
    A = np.c_[np.ones_like(n), n]
    over = [r["overhead_round_s"] for r in rows if "overhead_round_s" in r]
    if over:
        a = float(np.mean(over))
        y = np.array([r["round_s"] for r in rows]) - a
        b = float(n @ y / (n @ n))
    else:
        a, b = np.linalg.lstsq(A, np.array([r["round_s"] for r in rows]), rcond=None)[0]
    c, d = np.linalg.lstsq(A, np.array([r["pack_s"] for r in rows]), rcond=None)[0]
    return {
        "round_overhead_s": float(a),
        "round_s_per_answer": float(b),
        "pack_fixed_s": float(c),
        "pack_s_per_answer": float(d),
    }


def predict(model: dict, assume: dict = ASSUME, n_iter: int = 100) -> dict:
    P, N, W, K = assume["n_workers"], assume["n_answers"], assume["n_annotators"], assume["n_classes"]
    per_worker = N / P
    stats_bytes = 8.0 * W * K * K + 8.0 * K + 8.0
    depth = int(np.ceil(np.log2(P)))
    reduce_s = depth * (assume["hop_latency_s"] + stats_bytes / assume["bandwidth_Bps"])
    # the parameters (same size) reach the P shards through Dask's peer fetches: a shard that has
    # them serves the next ones, modelled as a binary broadcast tree of the same depth
    params_s = depth * (assume["hop_latency_s"] + 8.0 * W * K * K / assume["bandwidth_Bps"])
    compute_s = model["round_s_per_answer"] * per_worker
    round_s = model["round_overhead_s"] + compute_s + reduce_s + params_s
    pack_s = model["pack_fixed_s"] + model["pack_s_per_answer"] * per_worker
    return {
        "answers_per_worker": per_worker,
        "stats_bytes": stats_bytes,
        "compute_s_per_round": compute_s,
        "reduce_s_per_round": reduce_s,
        "params_s_per_round": params_s,
        "round_s": round_s,
        "pack_s": pack_s,
        "total_s": pack_s + n_iter * round_s,
        "bytes_per_round": P * (stats_bytes + 8.0 * W * K * K),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", help="Parquet folders written by make_answers.py")
    ap.add_argument("--n-iter", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-memory", action="store_true", help="skip the in-memory fit")
    ap.add_argument("--json", help="append one JSON line per run to this file")
    ap.add_argument("--model", help="fit the cost model to the runs in this JSON-lines file and predict")
    a = ap.parse_args()
    for p in a.paths:
        row = run(p, a.n_iter, a.workers, not a.no_memory)
        print(json.dumps(row))
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(row) + "\n")
    if a.model:
        with open(a.model) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        m = fit_model(rows)
        print(json.dumps({"model": m, "assume": ASSUME, "prediction": predict(m)}, indent=1))


if __name__ == "__main__":
    main()
