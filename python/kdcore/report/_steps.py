"""The report's steps: each experiment of the two papers, wired to the function that
runs it, the tables and figures it gives, and the comparison with the published
numbers. Modules are imported only when a step runs (torch and matplotlib stay
out of ``import kdcore.report``).
"""
from __future__ import annotations

import importlib

import pandas as pd

from . import _paper
from ._reproduce import Step, call_with


def _lazy(module: str, name: str):
    """``module.name`` imported at call time, called with the keyword arguments it accepts."""
    def call(*args, **kwargs):
        fn = getattr(importlib.import_module(module), name)
        if args:
            return fn(*args, **kwargs)
        return call_with(fn, **kwargs)

    call.__name__ = call.__qualname__ = f"{module}.{name}"
    return call


def _both(first, second):
    """Statements of two comparisons of the same table."""
    def compare(table):
        t, s1 = first(table)
        _, s2 = second(t)
        return t, s1 + s2

    return compare


# ----------------------------------------------------------------------------- distill: deep
def _deep_tables(raw: pd.DataFrame) -> dict:
    from ..distill import deep

    out = {"Test accuracy (%) by pixel noise, student width 1 (mean and std over runs)": deep.summarize_deep(raw)}
    if raw.loc[raw["model"] != "teacher", "width"].nunique() > 1:
        out["Student width sweep (test accuracy %)"] = deep.summarize_deep_width(raw)
    return out


def _deep_compare(table: pd.DataFrame):
    pairs = {m: f"paper_{m}" for m in ("teacher", "hard", "soft")}
    spread = {m: f"{m}_std" for m in ("teacher", "hard", "soft")}
    st = _paper.compare_columns(table, ["noise_var"], pairs, spread=spread)
    st += _paper.gap_statement(table, ["noise_var"], "soft", "hard", "paper_soft", "paper_hard")
    return _paper.interleave(table, {**pairs, "soft_minus_hard": "paper_soft_minus_hard"}), st


def _deep_plot(raw):
    from ..distill import deep

    return deep.plot_deep(deep.summarize_deep(raw))


def _deep_width_plot(raw):
    from ..distill import deep

    if raw.loc[raw["model"] != "teacher", "width"].nunique() < 2:
        return None  # one student width only: no width figure
    return deep.plot_deep_width(deep.summarize_deep_width(raw))


STEPS: list[Step] = [
    Step(
        key="distill.deep", part="distill",
        title="Deep validation: CIFAR-10 cat vs dog under pixel noise (VGG 8+3 teacher, VGG 2+3 student)",
        claim="Soft labels from the teacher give a student more accurate than the same student on hard labels, "
              "and the gap widens as the noise makes the data harder (paper: +1.4 points at variance 0.01, "
              "+7.9 at 0.1, +8.3 at 0.2; read off its figure, about +-0.3).",
        run=_lazy("kdcore.distill.deep", "run_deep_experiment"),
        tables=_deep_tables, compare=_deep_compare, plots=[_deep_plot, _deep_width_plot],
        needs=("torch", "cifar10"),
    ),
]
