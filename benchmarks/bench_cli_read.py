"""Reading an answers CSV: the command line's reader (``kdcore.cli.read_answers``, with its
checks for unusable files) against ``Responses.read_csv``, at 1M and 5M rows.

Goal: the command line reads a 5M-row CSV in at most 1.5x the time of ``Responses.read_csv``,
and both give the same Responses (same ids, same label values and types).
Run: pytest benchmarks/bench_cli_read.py --benchmark-enable --benchmark-group-by=group
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _ratios import ratio, record
from kdcore.cli import read_answers
from kdcore.crowd import Responses

SIZES = (1_000_000, 5_000_000)
ANSWERS_PER_TASK = 10
N_WORKERS = 1009


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory):
    """n rows of (task "t<i>", worker "w<j>", label 0/1), 10 distinct workers per task, shuffled. Seeded."""
    d = tmp_path_factory.mktemp("cli-read")
    out = {}
    rng = np.random.default_rng(0)
    for n in SIZES:
        n_tasks = n // ANSWERS_PER_TASK
        t = np.repeat(np.arange(n_tasks), ANSWERS_PER_TASK)
        w = ((rng.integers(0, N_WORKERS, n_tasks)[:, None] + 97 * np.arange(ANSWERS_PER_TASK)) % N_WORKERS).ravel()
        perm = rng.permutation(n)
        df = pd.DataFrame(
            {
                "task": pd.Series(t[perm]).map("t{}".format),
                "worker": pd.Series(w[perm]).map("w{}".format),
                "label": rng.integers(0, 2, n),
            }
        )
        path = d / f"answers-{n}.csv"
        df.to_csv(path, index=False)
        out[n] = path
    return out


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("route", ["cli", "read_csv"])
def test_read_answers(benchmark, machine_info, csv_files, route, n):
    group = f"read answers CSV, {n // 1_000_000}M rows"
    benchmark.group = group
    benchmark.extra_info.update(machine_info, rows=n)
    fn = (lambda: read_answers(csv_files[n])) if route == "cli" else (lambda: Responses.read_csv(csv_files[n]))
    r = benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=0)
    record(benchmark, group, route)
    assert r.n_responses == n and list(r.classes_) == [0, 1]


def test_same_responses_both_routes(csv_files):
    a, b = read_answers(csv_files[SIZES[0]]), Responses.read_csv(csv_files[SIZES[0]])
    assert list(a.classes_) == list(b.classes_) and a.n_tasks == b.n_tasks and a.n_workers == b.n_workers
    assert np.array_equal(a.task, b.task) and np.array_equal(a.label, b.label)


@pytest.mark.parametrize("n", SIZES)
def test_goal_cli_at_most_1_5x_read_csv(n):
    r = ratio(f"read answers CSV, {n // 1_000_000}M rows", "cli", "read_csv")
    print(f"{n:,} rows: the command line's reader takes {r:.2f}x the time of Responses.read_csv")
    if n == SIZES[-1]:
        assert r <= 1.5
