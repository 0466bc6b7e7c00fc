"""The one-command reproduction report of both papers.

>>> from kdcore.report import reproduce
>>> res = reproduce(parts=("crowd", "distill"), profile="quick", out="report")  # doctest: +SKIP

writes ``report/report.md`` (every table, our number beside the paper's, plain
statements where they differ), ``report/figures/*.png`` and
``report/results.json`` (versions, seeds, backend, timings, every table). The
same from the shell: ``kdcore reproduce all --profile quick --out report``.
"""

from __future__ import annotations

from ._reproduce import PARTS, PROFILES, Skip, Step, markdown_table, reproduce

__all__ = ["reproduce", "Step", "Skip", "PARTS", "PROFILES", "markdown_table", "steps"]


def steps():
    """The report's steps (imports nothing heavy until a step runs)."""
    from ._steps import STEPS

    return list(STEPS)
