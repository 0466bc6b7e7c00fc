"""crowd-kit's answer tables as kdcore codes, in crowd-kit's order.

crowd-kit orders tasks, workers and labels by first appearance in the data (its
pandas ``groupby(sort=False)`` and ``value_counts().unstack()``), keeps repeated
(task, worker) answers as separate votes, and lets a missing label (NaN) carry no
information. :func:`code_answers` reproduces that once, up front: every id is
factorised in order of first appearance, answers with a label become a
:class:`~kdcore.crowd.Responses` (repeats kept) for the compiled kernels, and the
original values are kept to label the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..backends import _core
from ..crowd._responses import Responses

__all__ = ["Coded", "code_answers", "check_frame", "first_order", "sorted_order"]


def check_frame(data: Any, what: str = "data") -> pd.DataFrame:
    """``data[["task", "worker", "label"]]``, with crowd-kit's errors made explicit."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(
            f"{what} must be a pandas DataFrame with 'task', 'worker' and 'label' columns, got {type(data).__name__}"
        )
    missing = [c for c in ("task", "worker", "label") if c not in data.columns]
    if missing:
        raise KeyError(
            f"{what} has no column(s) {missing}; expected 'task', 'worker', 'label', got {list(data.columns)}"
        )
    return data[["task", "worker", "label"]]


@dataclass
class Coded:
    """The answers of a crowd-kit DataFrame as codes in order of first appearance.

    ``responses`` holds the answers with a label (repeated (task, worker) pairs kept),
    its task, worker and class codes numbered by first appearance in ``frame``;
    ``tasks``/``workers`` list every id of the frame (also those whose only answers
    have no label), ``classes`` every label. ``n_rows`` counts every row, labelled or not;
    ``nan_task``/``nan_worker`` are the task and worker codes of the rows without a label.
    """

    frame: pd.DataFrame
    responses: Responses
    tasks: pd.Index
    workers: pd.Index
    classes: pd.Index
    n_rows: int
    label_dtype: Any
    nan_task: np.ndarray
    nan_worker: np.ndarray
    #: the distinct (task, worker, label) answers, computed once on first use (crowdkit.aggregation)
    unique: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)


def _codes(col: pd.Series, what: str, allow_missing: bool) -> tuple[np.ndarray, pd.Index]:
    if isinstance(col.dtype, np.dtype) and col.dtype.kind == "i" and len(col) and _core is not None:
        # int ids: kdcore's sorting factoriser, then renumbered by first appearance
        arr = np.ascontiguousarray(col.to_numpy(), dtype=np.int64)
        sorted_codes, uniq = _core.factorize_int64(arr)
        order = first_order(sorted_codes, len(uniq))
        if len(order) == len(uniq) and np.array_equal(order, np.arange(len(order))):
            # sorted order is the order of first appearance: the codes need no renumbering
            return sorted_codes.astype(np.int32, copy=False), pd.Index(uniq.astype(col.dtype, copy=False))
        remap = np.empty(len(uniq), dtype=np.int32)
        remap[order] = np.arange(len(order), dtype=np.int32)
        return remap[sorted_codes], pd.Index(uniq[order].astype(col.dtype, copy=False))
    codes, uniques = pd.factorize(col, sort=False, use_na_sentinel=True)
    if not allow_missing and (codes < 0).any():
        pos = int(np.flatnonzero(codes < 0)[0])
        raise ValueError(
            f"the {what} column has {int((codes < 0).sum())} missing values (NaN/None); first at row {pos}"
        )
    if isinstance(uniques, pd.Index):
        index = uniques
    else:
        index = pd.Index(uniques)
    return codes.astype(np.int32, copy=False), index


def code_answers(data: Any, what: str = "data") -> Coded:
    """Code a crowd-kit answer table (see :class:`Coded`)."""
    frame = check_frame(data, what)
    if len(frame) == 0:
        raise ValueError(f"{what} has no rows")
    t, tasks = _codes(frame["task"], "task", False)
    w, workers = _codes(frame["worker"], "worker", False)
    lab, classes = _codes(frame["label"], "label", True)
    keep = lab >= 0
    if not keep.all():
        t_k, w_k, l_k = t[keep], w[keep], lab[keep]
    else:
        t_k, w_k, l_k = t, w, lab
    if len(l_k) == 0:
        raise ValueError(f"{what} has no labelled answer (every label is missing)")
    r = Responses._from_codes(
        np.ascontiguousarray(t_k, np.int32),
        np.ascontiguousarray(w_k, np.int32),
        np.ascontiguousarray(l_k, np.int32),
        tasks,
        workers,
        np.asarray(classes.to_numpy(dtype=object) if classes.dtype == object else classes.to_numpy()),
    )
    return Coded(frame, r, tasks, workers, classes, len(frame), frame["label"].dtype, t[~keep], w[~keep])


def first_order(codes: np.ndarray, n: int) -> np.ndarray:
    """The distinct values of ``codes`` (in [0, n)) in order of first appearance.

    The first appearances are looked for in a prefix of ``codes`` that grows until it holds
    every value (few distinct values, e.g. labels or workers, are all seen early).
    """
    N = len(codes)
    size = N if 4 * n >= N else min(N, max(4096, 4 * n))
    while True:
        first = np.full(n, size, dtype=np.int64)
        first[codes[:size][::-1]] = np.arange(size - 1, -1, -1)
        seen = first < size
        n_seen = int(seen.sum())
        if n_seen == n or size == N:
            break
        size = min(N, 4 * size)
    if n_seen == n and (n < 2 or bool(np.all(first[1:] > first[:-1]))):
        return np.arange(n)  # already in order of first appearance
    order = np.argsort(first, kind="stable")
    return order[:n_seen]


def sorted_order(index: pd.Index) -> np.ndarray:
    """Positions of ``index`` in pandas' sorted order (what groupby(sort=True) uses)."""
    return np.asarray(index.argsort(), dtype=np.intp)
