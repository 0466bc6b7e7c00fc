"""Readable numpy twins of the index kernels behind :class:`~kdcore.crowd.Responses`
(cpp/src/responses.cpp, contracts in kdcore/responses.hpp).

They are the test oracle of those kernels and the path :class:`Responses` takes when
the compiled core is not built, so the ``numpy`` backend works on its own. Each takes
and returns what the compiled kernel does (int32 codes, int64 offsets, uint8 masks).
"""

from __future__ import annotations

import numpy as np

__all__ = ["factorize_int64", "find_duplicates", "build_csr"]

_MAX_CODES = 2**31 - 1


def factorize_int64(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes int32, uniques int64): codes[e] is the rank of ids[e] among the sorted distinct ids."""
    uniques, codes = np.unique(np.asarray(ids, dtype=np.int64), return_inverse=True)
    if len(uniques) > _MAX_CODES:
        raise ValueError(f"{len(uniques)} distinct ids; kdcore indexes at most 2^31 - 1")
    return codes.reshape(-1).astype(np.int32), uniques


def _check_codes(codes: np.ndarray, n: int, what: str) -> None:
    bad = (codes < 0) | (codes >= n)
    if bad.any():
        raise ValueError(f"{what} code out of range [0, {n}) at answer {int(np.flatnonzero(bad)[0])}")


def find_duplicates(
    task: np.ndarray, worker: np.ndarray, n_tasks: int, n_workers: int, mode: int
) -> tuple[np.ndarray, int, int]:
    """Repeated (task, worker) pairs: (keep uint8, number of repeats, index of the first repeat or -1).

    A repeat is an answer whose pair occurred at an earlier index. ``mode`` 0 keeps every
    answer (only counts), 1 keeps the first answer of each pair, 2 the last.
    """
    if mode not in (0, 1, 2):
        raise ValueError(f"mode must be 0, 1 or 2, got {mode}")
    _check_codes(task, n_tasks, "task")
    _check_codes(worker, n_workers, "worker")
    n = len(task)
    key = np.asarray(task, dtype=np.int64) * n_workers + worker
    order = np.argsort(key, kind="stable")  # each pair's answers together, in input order
    same_as_previous = key[order][1:] == key[order][:-1]
    repeat = np.zeros(n, dtype=bool)
    repeat[order[1:][same_as_previous]] = True
    n_dup = int(repeat.sum())
    first = int(np.flatnonzero(repeat)[0]) if n_dup else -1
    if mode == 1:
        keep = ~repeat
    elif mode == 2:
        keep = np.ones(n, dtype=bool)
        keep[order[:-1][same_as_previous]] = False  # an answer followed by one of its own pair
    else:
        keep = np.ones(n, dtype=bool)
    return keep.astype(np.uint8), n_dup, first


def build_csr(
    group: np.ndarray, payload_a: np.ndarray, payload_b: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stable sort by ``group``: (indptr int64 (n_groups + 1), payload_a and payload_b reordered)."""
    if n_groups < 0:
        raise ValueError(f"n_groups must be >= 0, got {n_groups}")
    _check_codes(group, n_groups, "group")
    order = np.argsort(group, kind="stable")
    indptr = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(group, minlength=n_groups), out=indptr[1:])
    return indptr, np.asarray(payload_a, dtype=np.int32)[order], np.asarray(payload_b, dtype=np.int32)[order]
