"""The crowd-kit drop-in (kdcore.crowdkit) against crowd-kit 1.4.2 and against the native
kdcore estimators, on simulated answers, one pytest run.

Data: ``simulate.dawid_skene(100_000 tasks, 1_000 workers, 2 classes, answers_per_task=10,
random_state=0)`` as a crowd-kit DataFrame (1,000,000 answers); crowd-kit runs on its first
10,000 tasks (100,000 answers) where it is slow and its time is scaled by 10 (its cost is
linear in the answers). Iterative methods are compared per round (for DawidSkene,
OneCoinDawidSkene and GLAD the rounds each fit actually ran: a native fit at ``tol=0``
may stop early): DawidSkene and
OneCoinDawidSkene run 20 rounds (``tol=-inf``: no early stop), ZeroBasedSkill 20, GLAD
3 EM rounds (``tol=-inf``; its M-step is scipy's conjugate gradient, at most 25 steps a
round on both sides; crowd-kit's pandas objective is so slow that it runs on the first
1,000 tasks, 10,000 answers), MACE one restart of 20 rounds (``n_restarts=1``: crowd-kit's
restarts from an int seed are one run repeated, which the drop-in runs once, so the
default would flatter it by another factor of ten). BinaryRelevance runs a majority vote
per label on the same answers turned into label sets (``["class<label>", "any"]``:
two labels).
MMSR: crowd-kit's dense covariation loop is quadratic in the workers, so both run on a
20,000-answer table with 100 workers, and the drop-in also alone on the 1M table (time
and peak extra resident memory).

    PYTHONPATH=python python -m pytest benchmarks/bench_crowdkit.py --benchmark-enable \\
        --benchmark-group-by=group -q -s
"""

from __future__ import annotations

import importlib.util
import time
import warnings

import numpy as np
import pytest

from _memory import PeakRSS
from kdcore.crowd import GLAD as NativeGLAD
from kdcore.crowd import KOS as NativeKOS
from kdcore.crowd import MACE as NativeMACE
from kdcore.crowd import BinaryRelevance as NativeBR
from kdcore.crowd import DawidSkene as NativeDS
from kdcore.crowd import MajorityVote as NativeMV
from kdcore.crowd import OneCoinDawidSkene as NativeOC
from kdcore.crowd import simulate
from kdcore.crowdkit import aggregation as kc

HAS_CROWDKIT = importlib.util.find_spec("crowdkit") is not None
ROUNDS = 20
RESULTS: dict[tuple[str, str], float] = {}  # (method, who) -> seconds per answer (per round if iterative)


@pytest.fixture(scope="module")
def frames():
    r, _ = simulate.dawid_skene(100_000, 1_000, 2, answers_per_task=10, skill_range=(0.55, 0.9), random_state=0)
    df = r.to_dataframe()
    small = df[df.task.isin(df.task.drop_duplicates().iloc[:10_000])].reset_index(drop=True)
    r2, _ = simulate.dawid_skene(2_000, 100, 2, answers_per_task=10, skill_range=(0.55, 0.9), random_state=1)
    gold = df.groupby("task").label.first().iloc[::10]
    tiny = df[df.task.isin(df.task.drop_duplicates().iloc[:1_000])].reset_index(drop=True)
    sets = {"1M": df, "100k": small, "10k": tiny, "mmsr": r2.to_dataframe(), "gold": gold}
    for size in ("1M", "100k"):  # multi-label answers: the label and "any"
        d = sets[size]
        sets[f"{size} sets"] = d.assign(label=[[f"class{x}", "any"] for x in d.label])
    return sets


def _run(fn, frame, *args):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(frame, *args)
    return time.perf_counter() - t0, out


# (name, drop-in call, crowd-kit call or None, native call or None, rounds)
def _cases():
    import crowdkit.aggregation as ck

    inf = -np.inf
    return {
        "DawidSkene": (
            lambda d: kc.DawidSkene(ROUNDS, inf).fit(d),
            lambda d: ck.DawidSkene(ROUNDS, inf).fit(d),
            lambda d: NativeDS(n_iter=ROUNDS, tol=0.0).fit(d),
            ROUNDS,
        ),
        "OneCoinDawidSkene": (
            lambda d: kc.OneCoinDawidSkene(ROUNDS, inf).fit(d),
            lambda d: ck.OneCoinDawidSkene(ROUNDS, inf).fit(d),
            lambda d: NativeOC(n_iter=ROUNDS, tol=0.0).fit(d),
            ROUNDS,
        ),
        "MajorityVote": (
            lambda d: kc.MajorityVote().fit(d),
            lambda d: ck.MajorityVote().fit(d),
            lambda d: NativeMV(tie_break="first").fit(d),
            1,
        ),
        "Wawa": (lambda d: kc.Wawa().fit_predict(d), lambda d: ck.Wawa().fit_predict(d), None, 1),
        "KOS": (lambda d: kc.KOS().fit(d), lambda d: ck.KOS().fit(d), lambda d: NativeKOS().fit(d), 100),
        "ZeroBasedSkill": (
            lambda d: kc.ZeroBasedSkill(n_iter=ROUNDS).fit(d),
            lambda d: ck.ZeroBasedSkill(n_iter=ROUNDS).fit(d),
            None,
            ROUNDS,
        ),
        "GLAD": (
            lambda d: kc.GLAD(GLAD_ROUNDS, inf).fit(d),
            lambda d: ck.GLAD(GLAD_ROUNDS, inf).fit(d),
            lambda d: NativeGLAD(n_iter=GLAD_ROUNDS, tol=0.0).fit(d),
            GLAD_ROUNDS,
        ),
        "MACE": (
            lambda d: kc.MACE(n_restarts=1, n_iter=ROUNDS).fit(d),
            lambda d: ck.MACE(n_restarts=1, n_iter=ROUNDS).fit(d),
            lambda d: NativeMACE(n_init=1, n_iter=ROUNDS, random_state=0).fit(d),
            ROUNDS,
        ),
        "BinaryRelevance": (
            lambda d: kc.BinaryRelevance(kc.MajorityVote()).fit(d),
            lambda d: ck.BinaryRelevance(ck.MajorityVote()).fit(d),
            lambda d: NativeBR(NativeMV(tie_break="first")).fit(d),
            1,
        ),
    }


GLAD_ROUNDS = 3
METHODS = [
    "DawidSkene",
    "OneCoinDawidSkene",
    "MajorityVote",
    "Wawa",
    "ZeroBasedSkill",
    "KOS",
    "GLAD",
    "MACE",
    "BinaryRelevance",
]


@pytest.mark.skipif(not HAS_CROWDKIT, reason="crowd-kit is the comparator")
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("who", ["kdcore.crowdkit", "native", "crowd-kit"])
def test_bench(benchmark, frames, method, who):
    drop, orig, native, rounds = _cases()[method]
    fn = {"kdcore.crowdkit": drop, "native": native, "crowd-kit": orig}[who]
    if fn is None:
        pytest.skip(f"no native kdcore estimator for {method}")
    size = "100k" if who == "crowd-kit" and method != "MajorityVote" else "1M"
    if who == "crowd-kit" and method == "GLAD":
        size = "10k"
    frame = frames[f"{size} sets" if method == "BinaryRelevance" else size]
    benchmark.group = f"crowdkit {method}"
    box: dict = {}
    benchmark.pedantic(lambda: box.update(out=_run(fn, frame)[1]), rounds=1 if who == "crowd-kit" else 3, iterations=1)
    if method in ("DawidSkene", "OneCoinDawidSkene", "GLAD"):  # stopping rules that differ between the two
        rounds = _rounds_run(box["out"], rounds)
    RESULTS[(method, who)] = benchmark.stats.stats.min / len(frame) / rounds
    benchmark.extra_info.update({"answers": len(frame), "rounds": rounds, "s_per_answer_round": RESULTS[(method, who)]})


def _rounds_run(fitted, planned: int) -> int:
    """The EM rounds a fit ran (a native fit may stop before ``planned`` at tol=0), else ``planned``."""
    n = getattr(fitted, "n_iter_", None)
    if isinstance(n, (int, np.integer)) and n > 0:
        return int(n)
    history = getattr(fitted, "loss_history_", None)
    return len(history) if isinstance(history, list) and history else planned


@pytest.mark.skipif(not HAS_CROWDKIT, reason="crowd-kit is the comparator")
@pytest.mark.parametrize("who", ["kdcore.crowdkit", "crowd-kit"])
def test_bench_gold_and_mmsr_small(benchmark, frames, who):
    import crowdkit.aggregation as ck

    lib = kc if who == "kdcore.crowdkit" else ck
    df = frames["mmsr"]
    benchmark.group = "crowdkit MMSR (20k answers, 100 workers)"
    benchmark.pedantic(lambda: _run(lambda d: lib.MMSR().fit(d), df), rounds=1, iterations=1)
    RESULTS[("MMSR", who)] = benchmark.stats.stats.min / len(df)
    df1 = frames["1M"] if who == "kdcore.crowdkit" else frames["100k"]
    t, _ = _run(lambda d: lib.GoldMajorityVote().fit(d, frames["gold"]).predict(d), df1)
    RESULTS[("GoldMajorityVote", who)] = t / len(df1)


def test_mmsr_one_million_answers(frames):
    df = frames["1M"]
    with PeakRSS() as mem:
        t, m = _run(lambda d: kc.MMSR().fit(d), df)
    print(f"\nMMSR 1M answers: {t:.2f} s, {len(m.loss_history_)} rounds, peak extra RSS {mem.extra_mb} MB")
    RESULTS[("MMSR 1M", "time")] = t
    RESULTS[("MMSR 1M", "mb")] = float(mem.extra_mb) if mem.extra_mb is not None else float("nan")


def test_summary():
    """Print the ratios (crowd-kit / drop-in per answer and round; drop-in / native)."""
    if not RESULTS:
        pytest.skip("nothing measured")
    print("\n| method | drop-in (1M) | crowd-kit / drop-in | drop-in / native |")
    print("|---|---|---|---|")
    for m in [*METHODS, "GoldMajorityVote", "MMSR"]:
        d = RESULTS.get((m, "kdcore.crowdkit"))
        c = RESULTS.get((m, "crowd-kit"))
        n = RESULTS.get((m, "native"))
        if d is None:
            continue
        ratio = f"{c / d:.0f}x" if c else "-"
        nat = f"{d / n:.2f}x" if n else "-"
        print(f"| {m} | {d * 1e9:.1f} ns/answer/round | {ratio} | {nat} |")
    if ("MMSR 1M", "time") in RESULTS:
        print(f"MMSR 1M: {RESULTS[('MMSR 1M', 'time')]:.2f} s, {RESULTS[('MMSR 1M', 'mb')]} MB extra peak RSS")
