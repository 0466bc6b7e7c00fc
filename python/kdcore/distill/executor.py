"""Independent networks spread over an executor: a Dask ``distributed.Client`` or any
``concurrent.futures.Executor``.

:func:`train_many` trains networks that share nothing but the data, so a sweep splits into
chunks trained anywhere. ``train_many(configs, X, y, p, n_steps=..., executor=ex)`` (or any
code run inside ``with use_executor(ex):``, e.g. the scaling study and the report's sweeps)
groups the networks that the compiled engine trains side by side (same width and seed: the
soft and hard arms of one initialisation), deals the groups into as many chunks as the
executor has slots (longest first, by total width), trains each chunk with the local
``train_many`` on a worker, and returns the histories in the order of ``configs``. Every
network's result is exactly the local one: the engine's results do not depend on which
networks share a call. Each chunk resolves ``backend`` on its worker, so
``backend="torch-cuda"`` trains on the workers' GPUs (start GPU workers with
``--resources GPU=1`` and pass ``resources={"GPU": 1}`` to keep the chunks on them).

Example
-------
>>> from concurrent.futures import ThreadPoolExecutor
>>> from kdcore.distill import make_margin_data, train_many
>>> X, y, p = make_margin_data(100, 5, gamma=0.1, random_state=0)
>>> cfgs = [{"m": m, "loss": "hard", "lr": 1.0, "random_state": s} for m in (2, 4) for s in (0, 1)]
>>> with ThreadPoolExecutor(2) as ex:
...     hs = train_many(cfgs, X, y, n_steps=5, n_threads=1, executor=ex)
>>> len(hs)
4
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

__all__ = ["use_executor", "current_executor", "train_many_on", "scheduler_executor"]

_CURRENT: ContextVar[Any] = ContextVar("kdcore_executor", default=None)


@contextmanager
def use_executor(executor) -> Iterator[None]:
    """Within the block, every :func:`~kdcore.distill.train_many` without an explicit
    ``executor=`` spreads its networks over ``executor`` (None: train locally)."""
    _check_executor(executor, allow_none=True)
    token = _CURRENT.set(executor)
    try:
        yield
    finally:
        _CURRENT.reset(token)


@contextmanager
def scheduler_executor(scheduler: str | None) -> Iterator[Any]:
    """Connect to a Dask scheduler ("tcp://host:8786", or "local:N" for N local one-thread
    worker processes), spread every train_many in the block over it, and close the
    connection (and a local cluster) after; None: train locally. What a command line's
    ``--scheduler`` needs (``with scheduler_executor(args.scheduler): run_the_sweeps()``).
    An unreachable address raises ``kdcore.crowd.distributed.SchedulerUnreachable`` (one line)."""
    if scheduler is None:
        yield None
        return
    from ..crowd.distributed import close_client, connect

    client = connect(scheduler)
    try:
        with use_executor(client):
            yield client
    finally:
        close_client(client)


def current_executor():
    """The executor set by :func:`use_executor` in this context, or None."""
    return _CURRENT.get()


def _is_dask_client(executor) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed" and hasattr(executor, "scatter")


def _check_executor(executor, allow_none: bool = False) -> None:
    if executor is None and allow_none:
        return
    from concurrent.futures import Executor

    if not (isinstance(executor, Executor) or _is_dask_client(executor)):
        raise TypeError(
            f"executor must be a concurrent.futures.Executor or a distributed.Client, got {type(executor).__name__}"
        )


def _slots(executor, n_groups: int) -> int:
    if _is_dask_client(executor):
        return max(1, sum(executor.nthreads().values()))
    n = getattr(executor, "_max_workers", None)
    return int(n) if isinstance(n, int) and n > 0 else n_groups


def _chunks(configs: Sequence[Mapping[str, Any]], n_slots: int) -> list[list[int]]:
    """Config indices in chunks: twins (same width, seed and init) together, longest groups first."""
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        model = c.get("model")
        key = (
            ("model", i)
            if model is not None
            else ("net", c.get("m"), c.get("random_state", c.get("seed")), c.get("init", "symmetric"))
        )
        groups.setdefault(key, []).append(i)

    def width(i: int) -> int:
        c = configs[i]
        model = c.get("model")
        m = model.m if model is not None else c.get("m", 1)
        return int(m) if isinstance(m, (int, np.integer)) else 1

    order = sorted(groups.values(), key=lambda g: (-sum(width(i) for i in g), g[0]))
    n = max(1, min(n_slots, len(order)))
    load = [0] * n
    out: list[list[int]] = [[] for _ in range(n)]
    for g in order:  # longest processing time first: the least loaded chunk takes the next group
        k = int(np.argmin(load))
        out[k].extend(g)
        load[k] += sum(width(i) for i in g)
    return [sorted(c) for c in out if c]


def _train_chunk(train_many, configs, X, y, p, kwargs):
    with use_executor(None):
        return train_many(configs, X, y, p, **kwargs)


def train_many_on(executor, configs, X, y, p=None, *, train, resources: Mapping[str, float] | None = None, **kwargs):
    """:func:`~kdcore.distill.train_many` with the networks spread over ``executor``.

    Parameters
    ----------
    executor : distributed.Client or concurrent.futures.Executor
    configs, X, y, p, kwargs : as :func:`~kdcore.distill.train_many` (n_steps, X_test, y_test,
        p_test, backend, n_threads, dtype).
    train : the function each chunk runs, :func:`~kdcore.distill.train_many` (passed in, so this module
        does not import the engine that calls it).
    resources : Dask worker resources each chunk needs (e.g. ``{"GPU": 1}``); Dask clients only.

    Returns
    -------
    list of History in the order of ``configs``, identical to the local run. A config's
    ``model`` is updated in place as in the local run.
    """
    _check_executor(executor)
    if isinstance(configs, Mapping) or not isinstance(configs, Sequence) or isinstance(configs, str):
        raise TypeError("configs must be a list of dicts")
    if len(configs) == 0:
        raise ValueError("configs is empty")
    for i, c in enumerate(configs):
        if not isinstance(c, Mapping):
            raise TypeError(f"configs[{i}] must be a dict, got {type(c).__name__}")
    chunks = _chunks(configs, _slots(executor, len(configs)))
    if _is_dask_client(executor):
        data = executor.scatter(
            [X, y, p, kwargs.get("X_test"), kwargs.get("y_test"), kwargs.get("p_test")], broadcast=True
        )
        Xf, yf, pf, xt, yt, pt = data
        kw = dict(kwargs)
        for name, fut in (("X_test", xt), ("y_test", yt), ("p_test", pt)):
            if name in kw:
                kw[name] = fut
        futures = [
            executor.submit(
                _train_chunk,
                train,
                [configs[i] for i in ch],
                Xf,
                yf,
                pf,
                kw,
                pure=False,
                resources=dict(resources or {}) or None,
            )
            for ch in chunks
        ]
    else:
        if resources:
            raise ValueError("resources= is for Dask clients; a concurrent.futures.Executor has none")
        futures = [executor.submit(_train_chunk, train, [configs[i] for i in ch], X, y, p, kwargs) for ch in chunks]
    out: list = [None] * len(configs)
    for ch, fut in zip(chunks, futures):
        for i, h in zip(ch, fut.result()):
            mine = configs[i].get("model")
            if mine is not None and mine is not h.model:  # trained in another process: update the caller's model
                mine.W, mine.W0, mine.a = h.model.W, h.model.W0, h.model.a
                h.model = mine
            out[i] = h
    return out
