"""Collect medians of one benchmark run so a goal (a speed ratio) can be checked
at the end of the same run, where both sides were measured under the same load."""

from __future__ import annotations

import pytest

MEDIANS: dict[tuple[str, str], float] = {}


def record(benchmark, group: str, name: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        MEDIANS[(group, name)] = stats.stats.median


def ratio(group: str, slow: str, fast: str) -> float:
    key_s, key_f = (group, slow), (group, fast)
    if key_s not in MEDIANS or key_f not in MEDIANS:
        pytest.skip(f"{group}: {slow} and {fast} were not both timed in this run (run with --benchmark-enable)")
    return MEDIANS[key_s] / MEDIANS[key_f]
