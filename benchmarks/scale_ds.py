"""DawidSkene at 1,000,000 and 10,000,000 answers: time and peak memory (does it scale linearly?).

Binary data from ``simulate.dawid_skene`` with 10 answers per task and 100 answers
per worker on average (1M: 100,000 tasks x 1,000 workers; 10M: 1,000,000 tasks x
10,000 workers); a fixed 100 EM rounds (``tol=0``), ``n_threads`` threads.
Not a pytest file (it takes a minute): run

    PYTHONPATH=python python benchmarks/scale_ds.py [--threads 2] [--sizes 1e6 1e7]

Peak memory: Linux VmHWM minus VmRSS around the fit (benchmarks/_memory.py: freed
heap returned with malloc_trim, then the peak reset through /proc/self/clear_refs):
everything the fit allocates, C++ included. The
Responses object itself (built before) is reported separately.
"""

from __future__ import annotations

import argparse
import time

from _memory import PeakRSS
from kdcore.crowd import DawidSkene, accuracy, simulate


def _responses_mb(r) -> float:
    arrays = [
        r.task,
        r.worker,
        r.label,
        r.task_indptr,
        r.task_worker,
        r.task_label,
        r.worker_indptr,
        r.worker_task,
        r.worker_label,
    ]
    return sum(a.nbytes for a in arrays) / 2**20


def run(n_responses: int, n_threads: int, n_iter: int = 100) -> dict:
    n_tasks = n_responses // 10
    n_workers = max(n_responses // 1000, 10)
    t0 = time.perf_counter()
    r, truth = simulate.dawid_skene(n_tasks, n_workers, 2, answers_per_task=10, skill_range=(0.55, 0.9), random_state=0)
    t_sim = time.perf_counter() - t0
    with PeakRSS() as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        ds = DawidSkene(n_iter=n_iter, tol=0.0, n_threads=n_threads).fit(r)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = mem.extra_mb
    return {
        "responses": r.n_responses,
        "tasks": n_tasks,
        "workers": n_workers,
        "simulate_s": t_sim,
        "fit_s": wall,
        "cpu_s": cpu,
        "per_round_ms": wall / n_iter * 1e3,
        "peak_extra_mb": peak,
        "responses_mb": _responses_mb(r),
        "accuracy": accuracy(ds.labels_, truth),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7])
    ap.add_argument("--n-iter", type=int, default=100)
    args = ap.parse_args()
    rows = [run(int(n), args.threads, args.n_iter) for n in args.sizes]
    print(f"DawidSkene, {args.n_iter} rounds, {args.threads} threads")
    print("| answers | tasks | workers | fit (s) | CPU (s) | ms / round | peak extra (MB) | Responses (MB) | acc |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        peak = "n/a" if row["peak_extra_mb"] is None else f"{row['peak_extra_mb']:.0f}"
        print(
            f"| {row['responses']:,} | {row['tasks']:,} | {row['workers']:,} | {row['fit_s']:.2f} | "
            f"{row['cpu_s']:.2f} | {row['per_round_ms']:.1f} | {peak} | {row['responses_mb']:.0f} | "
            f"{row['accuracy']:.4f} |"
        )
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(f"time ratio {b['fit_s'] / a['fit_s']:.1f}x for {b['responses'] / a['responses']:.0f}x the answers")


if __name__ == "__main__":
    main()
