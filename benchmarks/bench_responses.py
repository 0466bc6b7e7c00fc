"""Building Responses from 1,000,000 rows: kdcore (C++ codes + counting sort) vs the pandas route.

Goals: int ids at least 5x faster than pandas factorize + sort; peak
memory no more than 3x the input arrays.
Run: pytest benchmarks/bench_responses.py --benchmark-enable --benchmark-group-by=group
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from _ratios import ratio, record
from kdcore.crowd import Responses

N = 1_000_000
N_TASKS, N_WORKERS = 100_000, 1_000


def make_rows(kind: str):
    t, w, lab = int_rows(np.random.default_rng(0), N, N_TASKS, N_WORKERS)
    if kind == "str":
        t = np.array([f"task{i}" for i in t], dtype=object)
        w = np.array([f"worker{i}" for i in w], dtype=object)
    return t, w, lab


def int_rows(rng, n, n_tasks, n_workers):
    """n = n_tasks x k answers, k distinct workers per task, rows shuffled (no big temporaries)."""
    k = n // n_tasks
    t = np.repeat(np.arange(n_tasks), k)
    w = ((rng.integers(0, n_workers, n_tasks)[:, None] + 97 * np.arange(k)) % n_workers).ravel()
    perm = rng.permutation(n)
    return t[perm], w[perm], rng.integers(0, 2, n)


ROWS = {}


def rows(kind):
    if kind not in ROWS:
        ROWS[kind] = make_rows(kind)
    return ROWS[kind]


def pandas_route(t, w, lab):
    """What a user would write without kdcore: factorize, then a stable sort per view."""
    tc, tu = pd.factorize(t, sort=True)
    wc, wu = pd.factorize(w, sort=True)
    lc, lu = pd.factorize(lab, sort=True)
    ot = np.argsort(tc, kind="stable")
    ow = np.argsort(wc, kind="stable")
    task_indptr = np.concatenate([[0], np.cumsum(np.bincount(tc, minlength=len(tu)))])
    worker_indptr = np.concatenate([[0], np.cumsum(np.bincount(wc, minlength=len(wu)))])
    return task_indptr, wc[ot], lc[ot], worker_indptr, tc[ow], lc[ow]


@pytest.mark.parametrize("ids", ["int", "str"])
@pytest.mark.parametrize("route", ["kdcore", "pandas"])
def test_build_responses(benchmark, machine_info, route, ids):
    t, w, lab = rows(ids)
    group = f"responses build 1M rows, {ids} ids"
    benchmark.group = group
    benchmark.extra_info.update(machine_info)
    if route == "kdcore":
        out = benchmark(Responses.from_arrays, t, w, lab)
        indptr = out.task_indptr
    else:
        out = benchmark(pandas_route, t, w, lab)
        indptr = out[0]
    record(benchmark, group, route)
    assert indptr[-1] == N and len(indptr) == len(np.unique(np.asarray(t))) + 1


def test_goal_int_ids_5x_faster_than_pandas():
    r = ratio("responses build 1M rows, int ids", "pandas", "kdcore")
    print(f"int ids: kdcore is {r:.1f}x faster than pandas factorize + sort")
    assert r >= 5.0


PEAK_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    sys.path[:0] = {path!r}
    from kdcore.crowd import Responses
    Responses.from_arrays([1, 2], [1, 1], [0, 1])          # load everything first
    k = {n} // {n_tasks}
    rng = np.random.default_rng(0)
    t = np.repeat(np.arange({n_tasks}), k)
    w = ((rng.integers(0, {n_workers}, {n_tasks})[:, None] + 97 * np.arange(k)) % {n_workers}).ravel()
    perm = rng.permutation({n})
    t, w, lab = t[perm], w[perm], rng.integers(0, 2, {n})
    del perm
    from _memory import PeakRSS
    with PeakRSS() as mem:
        r = Responses.from_arrays(t, w, lab)
    print(json.dumps({{"extra_mb": mem.extra_mb, "input_mb": (t.nbytes + w.nbytes + lab.nbytes) / 2**20}}))
""")


def test_goal_peak_memory_at_most_3x_inputs(benchmark, machine_info):
    """Peak RSS growth while building (result included), in a fresh process, vs the three int64 inputs.

    Linux only: benchmarks/_memory.py returns freed heap pages and resets the peak just before the build."""
    if not sys.platform.startswith("linux"):
        pytest.skip("peak-RSS reset needs Linux /proc")
    script = PEAK_SCRIPT.format(path=sys.path, n=N, n_tasks=N_TASKS, n_workers=N_WORKERS)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    factor = res["extra_mb"] / res["input_mb"]
    benchmark.group = "responses peak memory"
    benchmark.extra_info.update(machine_info, peak_over_input=factor, **res)
    benchmark.pedantic(lambda: None, rounds=1)
    print(f"peak memory while building: {factor:.2f}x the input arrays ({res})")
    assert factor <= 3.0
