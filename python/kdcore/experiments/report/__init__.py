"""The one-command reproduction report of both papers.

>>> from kdcore.experiments.report import reproduce
>>> res = reproduce(parts=("crowd", "distill"), profile="quick", out="report")  # doctest: +SKIP

writes ``report/report.md`` (every table, our number beside the paper's, plain
statements where they differ), ``report/figures/*.png`` and
``report/results.json`` (versions, seeds, backend, timings, every table). The
same from the shell: ``kdcore reproduce all --profile quick --out report``.

Modules: :mod:`.step` (what a step is), :mod:`.steps` (the papers' steps),
:mod:`.compare` (our numbers beside the published ones), :mod:`.reproduce` (the driver).
"""

from __future__ import annotations

from ..profiles import PROFILES
from .reproduce import PARTS, markdown_table, reproduce
from .step import Skip, Step, call_with
from .steps import STEPS

__all__ = ["reproduce", "Step", "Skip", "call_with", "PARTS", "PROFILES", "STEPS", "markdown_table"]
