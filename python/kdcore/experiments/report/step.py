"""What the report runs: a :class:`Step` (one experiment of one paper), :class:`Skip`, and
:func:`call_with`, which calls a step's function with the keyword arguments it accepts."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Step", "Skip", "call_with"]


@dataclass
class Step:
    """One experiment of the report.

    Parameters
    ----------
    key : short id, used for figure names and results.json (``"crowd.phase"``).
    part : ``"crowd"`` or ``"distill"``.
    title : the section heading.
    claim : what the paper says or shows here (one or two sentences).
    run : ``run(profile=..., random_state=..., data_home=..., progress=...) -> result``;
        only the keyword arguments its signature names are passed. The result is a DataFrame, or
        anything ``tables`` turns into tables (e.g. one row per run).
    tables : ``tables(result) -> DataFrame | {caption: DataFrame}``; the first is the
        step's main table (default: the result itself).
    plots : functions ``plot(result)`` returning a figure (or axes); each becomes a PNG.
    compare : ``compare(main_table) -> (table_for_report, [statements][, headline])``: adds the
        paper's columns beside ours and says where they agree or differ; the headline (default: the
        first statement) is the one-line summary of the README's results section.
    needs : ``"crowd"``, ``"mnist"``, ``"cifar10"`` (the data folder) or ``"torch"``: the step is
        skipped, with the reason, when it is missing.
    """

    key: str
    part: str
    title: str
    claim: str
    run: Callable[..., object]
    plots: Sequence[Callable] = field(default_factory=tuple)
    tables: Callable | None = None
    compare: Callable | None = None
    needs: Sequence[str] = field(default_factory=tuple)


class Skip(Exception):
    """Raised by a step (or its requirement check) to skip it with a reason."""


def call_with(fn: Callable, **kwargs):
    """Call ``fn`` with the subset of ``kwargs`` its signature accepts (all of them if it takes ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins
        return fn(**kwargs)
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return fn(**kwargs)
    return fn(**{k: v for k, v in kwargs.items() if k in params})
