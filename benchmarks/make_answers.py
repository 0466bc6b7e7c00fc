"""Write a benchmark dataset of binary crowd answers as Parquet files partitioned by task.

N answers, 10 per task (N / 10 tasks), from W one-coin annotators (W prime, default
1009: each task's 10 annotators are w_i = (b + i s) mod W with a random start b and
step s, so they are distinct), skills uniform in [0.55, 0.95], true classes fair coins.
Columns task, worker, label as int32; file ``part-XXXXX.parquet`` holds the tasks
[k T, (k + 1) T) of ``--rows-per-file`` / 10 tasks each, so every task lives in one
file and the task ranges of the files do not overlap (what the Dask fit reads without
shuffling). Also writes ``truth.parquet`` (task, truth) beside them. Seeded.

    PYTHONPATH=python python benchmarks/make_answers.py --n 1e7 --out /tmp/answers-1e7
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ANSWERS_PER_TASK = 10


def write(n: int, out: str, rows_per_file: int = 1_000_000, n_workers: int = 1009, seed: int = 0) -> dict:
    if n % ANSWERS_PER_TASK or rows_per_file % ANSWERS_PER_TASK:
        raise ValueError(f"n and rows_per_file must be multiples of {ANSWERS_PER_TASK}")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    skill = rng.uniform(0.55, 0.95, n_workers)
    n_tasks, per_file = n // ANSWERS_PER_TASK, rows_per_file // ANSWERS_PER_TASK
    truth_parts = []
    offs = np.arange(ANSWERS_PER_TASK, dtype=np.int64)
    for k, t0 in enumerate(range(0, n_tasks, per_file)):
        t1 = min(n_tasks, t0 + per_file)
        m = t1 - t0
        frng = np.random.default_rng([seed, k])
        truth = frng.integers(0, 2, m, dtype=np.int32)
        b = frng.integers(0, n_workers, m)
        s = frng.integers(1, n_workers, m)
        w = ((b[:, None] + offs[None, :] * s[:, None]) % n_workers).astype(np.int32).ravel()
        right = frng.random(m * ANSWERS_PER_TASK) < skill[w]
        t = np.repeat(np.arange(t0, t1, dtype=np.int32), ANSWERS_PER_TASK)
        lab = np.where(right, truth[t - t0], 1 - truth[t - t0]).astype(np.int32)
        table = pa.table({"task": t, "worker": w, "label": lab})
        pq.write_table(table, os.path.join(out, f"part-{k:05d}.parquet"), row_group_size=rows_per_file)
        truth_parts.append(truth)
    pq.write_table(
        pa.table({"task": np.arange(n_tasks, dtype=np.int32), "truth": np.concatenate(truth_parts)}),
        os.path.join(os.path.dirname(os.path.abspath(out)), os.path.basename(out.rstrip("/")) + "-truth.parquet"),
    )
    return {"n_answers": n, "n_tasks": n_tasks, "n_workers": n_workers, "files": -(-n_tasks // per_file)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=float, required=True, help="number of answers (e.g. 1e7)")
    ap.add_argument("--out", required=True, help="output folder of part-*.parquet")
    ap.add_argument("--rows-per-file", type=float, default=1e6)
    ap.add_argument("--workers", type=int, default=1009, help="number of annotators (a prime)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t = time.perf_counter()
    info = write(int(a.n), a.out, int(a.rows_per_file), a.workers, a.seed)
    print(f"{info} written to {a.out} in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
