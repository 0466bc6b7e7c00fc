"""One figure style for the reproduction report: readable at a glance.

Every figure has labelled axes (with units), a title saying what is compared,
the paper's values drawn beside ours (hollow markers, dashed, "paper" in the
legend), and log scales where the theory is a power law, ticked at the data's own
values (:func:`log_ticks`). A series keeps its colour in every figure
(:func:`color`: soft labels blue, hard labels red, the teacher dark grey, each
label source and aggregation method its own), legends sit outside the data
(:func:`legend_below`, :func:`legend_right`), a model that can sit at chance
gets the chance line (:func:`chance_line`), and accuracy axes either start at 0
or show differences in points, so that gaps are not magnified. matplotlib is
imported lazily with the Agg backend, so ``import kdcore.experiments.plotting``
works without it.

Example
-------
>>> import pandas as pd
>>> from kdcore.experiments import plotting
>>> t = pd.DataFrame({"m": [4, 6, 8], "ours": [95.0, 96.0, 96.5], "paper": [95.6, 96.0, 96.6]})
>>> fig = plotting.paper_vs_ours(t, x="m", ours=["ours"], paper=["paper"], xlabel="student width m",
...                              ylabel="test accuracy (%)", title="MNIST")
>>> plotting.save(fig, "mnist.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence

#: colours for series that have no fixed colour in :data:`SERIES_COLORS` (picked by a stable hash of the name)
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")

#: one colour per series name, the same in every figure: soft labels blue, hard labels red, the
#: teacher and the truth dark, each crowd label source and each aggregation method its own colour
SERIES_COLORS = {
    # training targets
    "soft": "#1f77b4",
    "soft (T1)": "#1f77b4",
    "soft B=1": "#1f77b4",
    "soft B=4": "#6baed6",
    "hard": "#d62728",
    "hard B=Prop5": "#d62728",
    "hard unprojected": "#fd8d3c",
    "kernel": "#9467bd",
    "teacher": "#4d4d4d",
    # label sources of the crowd students
    "truth": "#000000",
    "mv": "#e6550d",
    "ds-map": "#8c6d31",
    "ds-soft": "#3182bd",
    "typeaware-soft": "#756bb1",
    "crowdlayer": "#31a354",
    # aggregation: plain vs type-aware
    "plain": "#7f7f7f",
    "type-aware": "#2ca02c",
    "type-aware (guard)": "#2ca02c",
    "type-aware (no guard)": "#98df8a",
    "type-aware auto": "#17becf",
    "type-aware auto (guard)": "#17becf",
    "type-aware soft (guard)": "#9467bd",
    "type-aware soft (no guard)": "#c5b0d5",
    "oracle types": "#ff7f0e",
    # task typing methods
    "spectral": "#1f77b4",
    "refined": "#ff7f0e",
    "mixture": "#2ca02c",
    "degraded (soft model)": "#8c564b",
    "oracle (params+labels)": "#7f7f7f",
    "oracle (params)": "#bdbdbd",
}

#: reader-facing names for the experiments' column names
DISPLAY_NAMES = {
    "type_aware_guard": "type-aware (guard)",
    "type_aware_no_guard": "type-aware (no guard)",
    "type_aware_auto": "type-aware auto (guard)",
    "type_aware_soft_guard": "type-aware soft (guard)",
    "type_aware_soft_no_guard": "type-aware soft (no guard)",
    "T1": "soft (T1)",
    "easy_hard": "easy/hard tasks",
    "specialist": "specialists",
}

CHANCE_STYLE = dict(color="#555555", linestyle=":", linewidth=1.2)


def display_name(name: str) -> str:
    """The reader's name of a series or column (``"type_aware_guard"`` -> ``"type-aware (guard)"``)."""
    return DISPLAY_NAMES.get(str(name), str(name))


def color(name: str) -> str:
    """The colour of series ``name``: fixed in :data:`SERIES_COLORS`, else a stable pick from
    :data:`PALETTE` (the same name gets the same colour in every figure and every run)."""
    import zlib

    key = display_name(name)
    for k in (key, key.removeprefix("DS ").removeprefix("MV ")):
        if k in SERIES_COLORS:
            return SERIES_COLORS[k]
    return PALETTE[zlib.crc32(key.encode()) % len(PALETTE)]


def chance_line(ax, level: float, *, label: str = "chance", axis: str = "y") -> None:
    """A dotted line where a model that learnt nothing sits (50 % on balanced binary data)."""
    if axis == "y":
        ax.axhline(level, label=label, zorder=0.5, **CHANCE_STYLE)
    else:
        ax.axvline(level, label=label, zorder=0.5, **CHANCE_STYLE)


def legend_below(fig, axes, *, ncol: int | None = None, fontsize: float = 8) -> None:
    """One legend for the whole figure, below the panels (never over the data); entries of all
    ``axes`` joined by label."""
    seen: dict[str, object] = {}
    for ax in axes if isinstance(axes, (list, tuple)) else [axes]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if not seen:
        return
    n = len(seen)
    ncol = ncol or min(n, 4)
    fig.legend(
        list(seen.values()),
        list(seen.keys()),
        loc="lower center",
        ncol=ncol,
        fontsize=fontsize,
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    rows = -(-n // ncol)
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, min(0.3, (0.22 * rows + 0.1) / height), 1, 1))
    fig._kd_layout_done = True


def legend_right(ax, *, fontsize: float = 8) -> None:
    """The legend to the right of the axes, outside the data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))


FIGSIZE = (6.4, 4.2)
DPI = 130


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def figure(ncols: int = 1, nrows: int = 1, **kw):
    """A new figure in the report style: ``(fig, axes)`` (axes flattened when several)."""
    plt = _plt()
    w, h = FIGSIZE
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(w * ncols * (0.8 if ncols > 1 else 1), h * nrows), squeeze=False, **kw
    )
    flat = list(axes.ravel())
    for ax in flat:
        ax.grid(True, which="major", alpha=0.3)
    return fig, (flat[0] if len(flat) == 1 else flat)


def style(
    ax,
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    logx: bool = False,
    logy: bool = False,
    legend: bool = True,
) -> None:
    """Label the axes (mandatory: a figure without labels is refused), set log scales, add the legend."""
    if not xlabel or not ylabel:
        raise ValueError("every report figure needs both axis labels")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    _plain_log_ticks(ax, logx or ax.get_xscale() == "log", logy or ax.get_yscale() == "log")
    if legend:
        legend_right(ax)  # outside the data, never over a line or a bar


def _plain_log_ticks(ax, x: bool, y: bool) -> None:
    """Log axes labelled 0.5, 2, 40 rather than 5x10^-1: readable at a glance."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    def fmt(v, _pos):
        return f"{v:g}"

    def minor(v, _pos):  # label 2x and 5x minor ticks only
        if v <= 0:
            return ""
        lead = round(v / 10 ** np.floor(np.log10(v)), 6)
        return f"{v:g}" if lead in (2.0, 5.0) else ""

    import numpy as np

    for on, axis in ((x, ax.xaxis), (y, ax.yaxis)):
        if on:
            axis.set_major_locator(LogLocator(base=10))
            axis.set_major_formatter(FuncFormatter(fmt))
            axis.set_minor_formatter(FuncFormatter(minor))


def grouped_bars(ax, table, *, zero_line: bool = False) -> None:
    """One group of bars per row of ``table`` (a DataFrame: rows = groups, columns = series), each
    series in its :func:`color`, reader names in the legend; a MultiIndex row reads ``a (b)``.
    Empty (NaN) bars are left out; with ``zero_line`` a bar of exactly 0 is drawn as a short tick
    so that "no change" is visible."""
    import numpy as np

    n_rows, n_cols = table.shape
    width = 0.8 / max(n_cols, 1)
    x = np.arange(n_rows)
    for k, col in enumerate(table.columns):
        name = display_name(col)
        v = table[col].to_numpy(dtype=float)
        pos = x - 0.4 + width * (k + 0.5)
        ax.bar(pos, v, width=width * 0.95, color=color(name), label=name)
        if zero_line:
            z = np.isfinite(v) & (v == 0)
            ax.plot(pos[z], v[z], "_", color=color(name), ms=8, mew=2)
    labels = [f"{r[0]} ({r[1]})" if isinstance(r, tuple) and len(r) == 2 else str(r) for r in table.index]
    ax.set_xticks(x, labels, rotation=0 if n_rows <= 4 else 30, ha="center" if n_rows <= 4 else "right")
    if zero_line:
        ax.axhline(0, color="black", lw=0.8)
        lo, hi = ax.get_ylim()
        ax.set_ylim(min(lo, -0.5), max(hi, 0.5))  # "no change" reads as such, not as a full-height axis


def log_ticks(ax, *, x=None, y=None) -> None:
    """Put the ticks of a log axis exactly at the given values, labelled plainly (2, 4, 8, 16
    or 0.01, 0.1), no minor labels: clean ticks when the data sit on a short grid."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    for vals, axis in ((x, ax.xaxis), (y, ax.yaxis)):
        if vals is None:
            continue
        v = sorted({float(t) for t in vals if t is not None and float(t) > 0})
        if not v:
            continue
        axis.set_major_locator(FixedLocator(v))
        axis.set_major_formatter(FuncFormatter(lambda t, _pos: f"{t:g}"))
        axis.set_minor_locator(NullLocator())
        axis.set_minor_formatter(NullFormatter())


def paper_vs_ours(
    table,
    *,
    x: str,
    ours: Sequence[str],
    paper: Sequence[str | None],
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    err: Sequence[str | None] | None = None,
    logx: bool = False,
    logy: bool = False,
    ax=None,
    labels: Sequence[str] | None = None,
):
    """Lines of our columns (solid, filled markers, optional error bars) with the paper's
    matching columns beside them (dashed, hollow markers). Returns the figure."""
    if ax is None:
        fig, ax = figure()
    else:
        fig = ax.figure
    t = table.sort_values(x)
    err = list(err) if err is not None else [None] * len(ours)
    labels = list(labels) if labels is not None else list(ours)
    for col, pcol, ecol, lab in zip(ours, paper, err, labels):
        c = color(lab)
        if ecol is not None and ecol in t:
            ax.errorbar(t[x], t[col], yerr=t[ecol], color=c, marker="o", capsize=3, label=f"{lab} (ours)")
        else:
            ax.plot(t[x], t[col], color=c, marker="o", label=f"{lab} (ours)")
        if pcol is not None and pcol in t and t[pcol].notna().any():
            ax.plot(t[x], t[pcol], color=c, marker="s", markerfacecolor="none", linestyle="--", label=f"{lab} (paper)")
    xs = t[x].dropna().unique()
    if not logx and 0 < len(xs) <= 12 and all(float(v).is_integer() for v in xs):
        ax.set_xticks(sorted(xs))
    style(ax, xlabel=xlabel, ylabel=ylabel, title=title, logx=logx, logy=logy)
    return fig


def power_law(ax, x, y, *, label: str, color: str | None = None, slope_ref: float | None = None):
    """Plot y vs x on log-log axes with a least-squares power-law fit; returns the fitted exponent.

    ``slope_ref``: draw a dotted reference line of that exponent through the data's first point
    (e.g. the theory's 2 for soft labels, 4 for hard)."""
    import numpy as np

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    color = color or _color_of(label)
    ax.plot(x[ok], y[ok], "o", color=color, label=label)
    slope = float("nan")
    if ok.sum() >= 2 and np.ptp(np.log(x[ok])) > 0:
        slope, icpt = np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)
        xs = np.geomspace(x[ok].min(), x[ok].max(), 50)
        ax.plot(xs, np.exp(icpt) * xs**slope, "-", color=color, alpha=0.7, label=f"{label} fit: slope {slope:.2f}")
    if slope_ref is not None and ok.any():
        x0, y0 = x[ok][0], y[ok][0]
        xs = np.geomspace(x[ok].min(), x[ok].max(), 50)
        ax.plot(xs, y0 * (xs / x0) ** slope_ref, ":", color=color, alpha=0.6, label=f"theory slope {slope_ref:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    return float(slope)


_color_of = color


def save(fig, path: str | os.PathLike) -> str:
    """Write ``fig`` as PNG (tight layout) and close it; returns the path."""
    plt = _plt()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if not getattr(fig, "_kd_layout_done", False):
        try:
            fig.tight_layout()
        except Exception:  # pragma: no cover - layout failure is cosmetic
            pass
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def figure_of(obj):
    """The matplotlib Figure behind whatever a ``plot_*`` function returned (Figure, Axes,
    a tuple/list holding one, or None = the current figure)."""
    plt = _plt()
    from matplotlib.figure import Figure

    if isinstance(obj, Figure):
        return obj
    if hasattr(obj, "figure") and isinstance(obj.figure, Figure):
        return obj.figure
    if isinstance(obj, (tuple, list)):
        for o in obj:
            try:
                return figure_of(o)
            except TypeError:
                continue
    if hasattr(obj, "ravel"):  # array of axes
        return figure_of(list(obj.ravel()))
    if obj is None and plt.get_fignums():
        return plt.gcf()
    raise TypeError(f"cannot find a matplotlib figure in {type(obj).__name__}")
