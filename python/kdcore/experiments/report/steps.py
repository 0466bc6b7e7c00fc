"""The report's steps: each experiment of the two papers, wired to the function that
runs it, the tables and figures it gives, and the comparison with the published
numbers. The experiment modules are imported only when a step runs (torch and
matplotlib stay out of ``import kdcore.experiments.report``).
"""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd

from .. import paper
from . import compare
from .step import Step, call_with

__all__ = ["STEPS"]


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


# ----------------------------------------------------------------------------- crowd
def _phase_table(raw: pd.DataFrame) -> pd.DataFrame:
    s = raw[raw["sweep"] == "phase"]
    t = s.groupby(["regime", "d", "n_workers"])[["exact", "accuracy"]].mean().reset_index()
    t = t.rename(columns={"exact": "exact recovery rate", "accuracy": "typing accuracy"})
    t["n / ln d"] = t["n_workers"] / np.log(t["d"])
    return t


def _typing_table(raw: pd.DataFrame, sweep: str, x: str) -> pd.DataFrame:
    s = raw[raw["sweep"] == sweep]
    t = s.pivot_table(index=["regime", x], columns="method", values="accuracy", aggfunc="mean")
    t.columns.name = None
    return t.reset_index()


def _typing_tables(raw: pd.DataFrame) -> dict:
    raw = raw.copy()
    raw["answers_per_task"] = raw["answers_per_task"].round(1)
    return {
        "Spectral step: exact type recovery (share of seeds) as workers n grow, dense answers": _phase_table(raw),
        "Typing accuracy vs answers per task": _typing_table(raw, "alpha", "answers_per_task"),
        "Typing accuracy vs workers": _typing_table(raw, "n_workers", "n_workers"),
    }


def _phase_compare(t: pd.DataFrame):
    st = []
    for regime, g in t.groupby("regime", sort=False):
        parts, ratios = [], []
        for d, h in g.groupby("d"):
            ok = h.loc[h["exact recovery rate"] >= 1.0, "n_workers"]
            if len(ok):
                n_star = int(ok.min())
                ln_d = float(np.log(float(d)))  # type: ignore[arg-type]  # d: the group's key, a number
                parts.append(f"n* = {n_star} at d = {d:g} (n*/ln d = {n_star / ln_d:.2f})")
                ratios.append(n_star / ln_d)
            else:
                top = h.iloc[int(h["n_workers"].to_numpy().argmax())]
                parts.append(
                    f"no exact recovery up to n = {int(top['n_workers'])} at d = {d:g} (typing accuracy "
                    f"there {top['typing accuracy']:.3f})"
                )
        st.append(f"{regime}: " + "; ".join(parts) + ".")
        if len(ratios) >= 2:
            spread = max(ratios) / min(ratios)
            st.append(
                f"{regime}: n*/ln d varies by a factor {spread:.2f} across d "
                + (
                    "(close to constant: consistent with the paper's n ~ C log d)."
                    if spread <= 1.5
                    else "(not constant: this grid does not show n ~ C log d; the paper's claim is asymptotic "
                    "and the grid of n is coarse)."
                )
            )
    st.append(
        "The paper proves exact recovery once n >= C log d (C depends on the reliabilities); it prints "
        "no numeric threshold, so the comparison is of the scaling only."
    )
    heads = []
    for regime, g in t.groupby("regime", sort=False):
        exact = g[g["exact recovery rate"] >= 1.0]
        widest = g[g["n_workers"] == g["n_workers"].max()]
        acc = (
            f"typing accuracy {widest['typing accuracy'].min():.3f}-{widest['typing accuracy'].max():.3f} at n = "
            f"{int(widest['n_workers'].iloc[0])}"
        )
        if len(exact):
            found = ", ".join(f"n* = {int(h['n_workers'].min())} at d = {d:g}" for d, h in exact.groupby("d"))
            heads.append(f"{regime}: exact recovery {found} ({acc})")
        else:
            heads.append(f"{regime}: no exact recovery on this grid ({acc})")
    return t, st, "Spectral typing, " + "; ".join(heads) + "."


def _typing_plots(raw):
    from .. import crowd

    return crowd.plot_typing_accuracy(raw)


def _phase_plot(raw):
    from .. import plotting

    t = _phase_table(raw)
    regimes = list(dict.fromkeys(t["regime"]))
    fig, axes = plotting.figure(ncols=len(regimes), nrows=2)
    axes = axes if isinstance(axes, list) else [axes]
    for col, regime in enumerate(regimes):
        for row, (what, lo) in enumerate((("exact recovery rate", -0.03), ("typing accuracy", 0.45))):
            ax = axes[row * len(regimes) + col]
            sub = t[t.regime == regime]
            for d, h in sub.groupby("d"):
                ax.plot(h["n / ln d"], h[what], marker="o", color=plotting.color(f"d = {d:g}"), label=f"d = {d:g}")
            if row == 1:
                plotting.chance_line(ax, 0.5, label="chance")
            ax.set_ylim(lo, 1.03)
            ax.set_xscale("log")
            plotting.log_ticks(ax, x=np.round(sub["n / ln d"].unique(), 2))
            ax.set_xlabel("workers n / ln d")
            ax.set_ylabel(f"{what} (spectral)")
            ax.set_title(plotting.display_name(regime), fontsize=10)
    fig.suptitle("Spectral typing as workers grow: the curves for different d collapse if n* ~ C ln d", fontsize=10)
    plotting.legend_below(fig, axes)
    return fig


def _label_error_table(raw: pd.DataFrame) -> pd.DataFrame:
    s = raw[raw["variant"] != "error"]
    t = s.pivot_table(index=["regime", "alpha", "aggregator"], columns="variant", values="error", aggfunc="mean")
    t.columns.name = None
    t = (100 * t).reset_index()
    if "plain" in t and "type-aware" in t:
        t["type-aware - plain"] = t["type-aware"] - t["plain"]
    su = s[s["variant"] == "type-aware"].groupby(["regime", "alpha", "aggregator"])["split_used"].mean()
    t = t.merge(su.rename("split used").reset_index(), on=["regime", "alpha", "aggregator"], how="left")
    return t


def _label_error_tables(raw):
    out = {
        "Label error (%) on synthetic two-type data: plain, type-aware (guard on), oracle types": _label_error_table(
            raw
        )
    }
    failed = raw[raw["variant"] == "error"]
    if len(failed):
        out["Fits that failed"] = failed[["regime", "alpha", "seed", "aggregator", "note"]]
    return out


def _gain_statements(
    t: pd.DataFrame, plain: str, typed: str, unit: str, lower_is_better: bool, what: str, scale: float = 1.0
):
    d = (scale * (t[typed] - t[plain])).dropna()
    if d.empty:
        return []
    better = (d < -1e-9) if lower_is_better else (d > 1e-9)
    worse = (d > 1e-9) if lower_is_better else (d < -1e-9)
    worst = d.max() if lower_is_better else d.min()
    verdict = (
        "consistent with the paper's claim"
        if better.sum() > len(d) / 2
        else 'this differs from the paper, where clustering first improved accuracy "in most scenarios"'
    )
    return [
        f"{what}: type-aware was better than plain in {int(better.sum())} of {len(d)} settings, equal in "
        f"{int(len(d) - better.sum() - worse.sum())}, worse in {int(worse.sum())} (worst change "
        f"{worst:+.2f}{unit}): {verdict}."
    ]


def _label_error_compare(t: pd.DataFrame):
    st = _gain_statements(t, "plain", "type-aware", " points of error", True, "Synthetic")
    for regime, g in t.groupby("regime", sort=False):
        if "oracle types" in g and "plain" in g:
            st.append(
                f"{regime}: with the true types, the error changes by "
                f"{(g['oracle types'] - g['plain']).mean():+.2f} points on average "
                "(what a perfect clustering could give)."
            )
    return t, st


def _pseudo_tables(raw: pd.DataFrame) -> dict:
    lab = raw[raw["what"] == "label"].pivot_table(
        index=["dataset", "scenario"], columns="method", values="value", aggfunc="mean"
    )
    typ = raw[raw["what"] == "typing"].pivot_table(
        index=["dataset", "scenario"], columns="method", values="value", aggfunc="mean"
    )
    lab.columns.name = typ.columns.name = None
    return {
        "Label accuracy of Dawid-Skene with a planted hard type (40% of tasks; a: answers flipped w.p. 0.3, "
        "b: half the workers answer at random there; typed: type-aware, with the guard on or off, or the "
        "default split='auto'; soft: type-aware with split='soft')": lab.reset_index(),
        "Typing accuracy of the planted types (0.5 = chance)": typ.reset_index(),
    }


def _pseudo_compare(t: pd.DataFrame):
    st = []
    if "DS type-aware auto (guard)" in t:  # the default TypeAware(DawidSkene()) (split="auto")
        st += _gain_statements(
            t,
            "DS plain",
            "DS type-aware auto (guard)",
            " points",
            False,
            "Pseudo-real, DS, TypeAware default (split='auto')",
            100,
        )
    st += _gain_statements(
        t, "DS plain", "DS type-aware (guard)", " points", False, "Pseudo-real, DS, hard split only", 100
    )
    if "DS oracle types" in t:
        gain = 100 * (t["DS oracle types"] - t["DS plain"]).mean()
        st.append(f"With the planted types known, DS changes by {gain:+.2f} points of accuracy on average.")
    st.append(
        "Planted types have been recovered at chance level by the label-free spectral split on 9 of 10 "
        "pseudo-real datasets (docs/maths.md B.3); the typing table shows ours."
    )
    return t, st


def _real_table(raw: pd.DataFrame) -> pd.DataFrame:
    t = raw.merge(paper.CROWDKIT_REAL, on="dataset", how="left")
    t["crowd-kit"] = np.where(
        t["aggregator"] == "DS", t["crowdkit_ds"], np.where(t["aggregator"] == "MV", t["crowdkit_mv"], np.nan)
    )
    cols = [
        "dataset",
        "aggregator",
        "plain",
        "crowd-kit",
        "type_aware_guard",
        "type_aware_no_guard",
        "split_used",
        "type_aware_auto",
        "soft_split_used",
    ]
    return t[[c for c in cols if c in t.columns]]


def _real_tables(raw: pd.DataFrame) -> dict:
    """The accuracies (main table) and, apart, what the guard measured and why it split or not:
    two tables that each fit a terminal."""
    why = [c for c in ("dataset", "aggregator", "split_used", "separation", "class_gap", "reason") if c in raw]
    return {
        "Accuracy on the gold tasks (typed: type-aware aggregation with the guard on, off, or TypeAware's "
        "default split='auto')": _real_table(raw),
        "What the guard measured": raw[why],
    }


def _real_compare(t: pd.DataFrame):
    st = []
    ds = t[(t["aggregator"] == "DS") & t["crowd-kit"].notna()]
    if len(ds):
        diff = 100 * (ds["plain"] - ds["crowd-kit"])
        st.append(
            f"Plain DS vs crowd-kit's DawidSkene (reference accuracies, crowd-kit 1.4.2): within 0.5 "
            f"points on {int((diff.abs() <= 0.5).sum())} of {len(ds)} datasets, better on "
            f"{int((diff > 0.5).sum())}, worse on {int((diff < -0.5).sum())} "
            f"(largest gap {diff.abs().max():.2f})."
        )
    if "type_aware_auto" in t:
        st += _gain_statements(
            t,
            "plain",
            "type_aware_auto",
            " points",
            False,
            "Real data, TypeAware default (split='auto', guard on)",
            100,
        )
    st += _gain_statements(t, "plain", "type_aware_guard", " points", False, "Real data, guard on", 100)
    st += _gain_statements(t, "plain", "type_aware_no_guard", " points", False, "Real data, guard off", 100)
    st.append(f"The guard split the tasks on {int(t['split_used'].sum())} of {len(t)} (dataset, aggregator) pairs.")
    head = next(
        (x for x in st if x.startswith("Real data, TypeAware default")),
        next((x for x in st if x.startswith("Real data, guard on")), st[0] if st else None),
    )
    return t, st, head


def _plot(module: str, name: str, transform=None):
    def plot(raw):
        fn = getattr(importlib.import_module(module), name)
        return fn(transform(raw) if transform is not None else raw)

    return plot


# ----------------------------------------------------------------------------- distill: scaling
def _scaling_tables(res) -> dict:
    from .. import scaling

    wins = scaling.where_soft_wins(res)
    sl = res.slopes
    if len(sl):
        sl = sl[sl["metric"] == "avg_error"].drop(columns=["metric"]).reset_index(drop=True)
        fit = [c for c in ("slope", "ci_low", "ci_high") if c in sl]
        sl[fit] = sl[fit].round(2)  # slopes read at two decimals (a fit through equal points gives 0, not 4e-16)
    wins.attrs["slope_statements"] = _scaling_slope_statements(res)
    out = {
        "Neuron requirement m*(eps): smallest width whose iteration-averaged training error reaches eps "
        "(best soft arm vs best hard arm)": wins,
        "Fitted log-log slopes of m* (95% CI) beside the theory's upper-bound scaling": sl,
    }
    return out


def _scaling_compare(t: pd.DataFrame):
    st = []
    counts = t["verdict"].value_counts()
    st.append(
        "Where soft labels needed fewer neurons: "
        + ", ".join(f"{v}: {int(n)}" for v, n in counts.items())
        + f" (of {len(t)} task x gamma x eps settings)."
    )
    lin = t[t["task"] == "linear"]
    if len(lin):
        c = lin["verdict"].value_counts()
        st.append(
            "On linearly separable margin data: "
            + ", ".join(f"{v}: {int(n)}" for v, n in c.items())
            + ". The theory's soft O(1/(gamma^2 eps)) vs hard O(ln(1/eps)/gamma^4) are upper bounds; "
            "docs/maths.md A.4 notes that hard labels already separate such data with one neuron pair."
        )
    st += t.attrs.get("slope_statements", [])
    return t, st


def _scaling_slope_statements(res) -> list[str]:
    sl = res.slopes
    out: list[str] = []
    if len(sl) == 0:
        return out
    g = sl[(sl["metric"] == "avg_error") & (sl["versus"] == "gamma")].dropna(subset=["slope"])
    for arm, h in g.groupby("arm", sort=False):
        out.append(
            f"{arm}: m* vs gamma slope {h['slope'].median():+.2f} (median over tasks/eps; theory bound "
            f"{h['theory'].iloc[0]})."
        )
    return out


# ----------------------------------------------------------------------------- distill: MNIST
_MNIST_COLS = [
    "variant",
    "m",
    "radius",
    "teacher",
    "paper_teacher",
    "hard",
    "hard_std",
    "paper_hard",
    "T1",
    "T1_std",
    "paper_soft",
    "kernel",
    "kernel_std",
    "soft_minus_hard",
    "paper_soft_minus_hard",
    "gamma2",
    "seeds",
    "steps",
]


def _radius_str(b) -> str:
    """Projection radius B as printed: '1', '4' or 'none' (no projection)."""
    if b is None or (isinstance(b, float) and np.isnan(b)) or str(b).lower() in ("none", "nan", "inf"):
        return "none"
    try:
        return f"{float(b):g}"
    except (TypeError, ValueError):
        return str(b)


#: the MNIST step's main table: ours beside the paper's (11 columns, fits a terminal); the seed
#: spread, the kernel-limit teacher and the margin go to a second table
_MNIST_MAIN = [
    "variant",
    "m",
    "radius",
    "teacher",
    "paper_teacher",
    "hard",
    "paper_hard",
    "T1",
    "paper_soft",
    "soft_minus_hard",
    "paper_soft_minus_hard",
    "teacher learnt",
]
_MNIST_DETAIL = ["variant", "m", "radius", "hard_std", "T1_std", "kernel", "kernel_std", "gamma2", "seeds", "steps"]


def _mnist_tables(table: pd.DataFrame) -> dict:
    detail = table[[c for c in _MNIST_DETAIL if c in table.columns]].copy()
    if "radius" in detail:
        detail["radius"] = detail["radius"].map(_radius_str)
    detail = detail.rename(columns={"T1_std": "soft_std", "kernel": "soft (kernel)", "kernel_std": "kernel_std"})
    return {
        "Test accuracy (%) of the students, ours beside the paper's": table,
        "Seed spread (std, points), the kernel-limit teacher's soft labels, the margin gamma2": detail,
    }


def _mnist_compare(table: pd.DataFrame):
    t = table[[c for c in _MNIST_COLS if c in table.columns]].copy()
    t["radius"] = t["radius"].map(_radius_str)
    t, invalid = compare.mark_invalid_teacher(t, ["variant", "m", "radius"], soft=("T1", "T1_std"))
    pairs = {"teacher": "paper_teacher", "hard": "paper_hard", "T1": "paper_soft"}
    st = compare.compare_columns(t, ["variant", "m", "radius"], pairs, spread={"hard": "hard_std", "T1": "T1_std"})
    st += compare.gap_statement(t, ["variant", "m", "radius"], "T1", "hard", "paper_soft", "paper_hard")
    cfg = table.attrs.get("config") or {}
    if cfg.get("n_train"):
        st.append(
            f"This profile trains on {cfg['n_train']} images per variant for {cfg.get('n_steps')} steps with "
            f"{len(cfg.get('seeds', ()))} seed(s) (the paper: the whole training set); our teacher is weaker "
            "than the paper's, so lower accuracies are expected. `--profile full` uses all the data."
        )
    st.append(
        "Our soft labels are the teacher's sigmoid(f) at temperature 1 (T1) and the kernel-limit teacher "
        "(kernel); the paper's learning rate, steps, soft-label form and radius are unpublished, so both arms "
        "get the same tuned budget (lr chosen on validation) and every radius is shown."
    )
    st[1:1] = invalid
    head = compare.gap_headline(t, "T1", "hard", "paper_soft", "paper_hard", st[0])
    shown = t[[c for c in _MNIST_MAIN if c in t.columns]]
    return shown.rename(columns={"T1": "soft (T1)"}), st, head


def _mnist_plot(table: pd.DataFrame):
    """Accuracy vs student width, hard and soft, ours beside the paper's: one panel per variant
    (columns) and projection radius (rows)."""
    from .. import plotting

    variants = list(dict.fromkeys(table["variant"]))
    radius = table["radius"].map(_radius_str)
    radii = list(dict.fromkeys(radius))
    fig, axes = plotting.figure(ncols=len(variants), nrows=len(radii))
    axes = axes if isinstance(axes, list) else [axes]
    for i, B in enumerate(radii):
        for j, v in enumerate(variants):
            t = table[(table["variant"] == v) & (radius == B)]
            plotting.paper_vs_ours(
                t,
                x="m",
                ours=["hard", "T1"],
                paper=["paper_hard", "paper_soft"],
                err=["hard_std", "T1_std"],
                labels=["hard", "soft"],
                xlabel="student width m",
                ylabel="test accuracy (%)",
                title=f"MNIST {v}, radius B = {B}",
                ax=axes[i * len(variants) + j],
            )
            plotting.chance_line(axes[i * len(variants) + j], 50.0, label="chance (50 %)")
            axes[i * len(variants) + j].set_ylim(45, 100)
            axes[i * len(variants) + j].get_legend().remove()
    plotting.legend_below(fig, axes, ncol=5)
    return fig


# ----------------------------------------------------------------------------- distill: deep
def _deep_tables(raw: pd.DataFrame) -> dict:
    from .. import deep

    main = deep.summarize_deep(raw)
    out = {"Test accuracy (%) by pixel noise, student width 1 (mean over runs)": main}
    if raw.loc[raw["model"] != "teacher", "width"].nunique() > 1:
        wt = deep.summarize_deep_width(raw)
        at_chance = main.loc[~compare.teacher_learnt(main["teacher"]), "noise_var"] if "teacher" in main else []
        bad = wt["noise_var"].isin(list(at_chance))
        wt.loc[bad, ["soft", "soft_std", "soft_minus_hard"]] = np.nan  # no signal in a teacher at chance
        if bad.any():
            wt["teacher learnt"] = ~bad
        out["Student width sweep (test accuracy %; soft arms blank where the teacher is at chance)"] = wt
    spread = [c for c in ("noise_var", "teacher_std", "hard_std", "soft_std", "runs") if c in main]
    out["Spread over runs (standard deviation of test accuracy, points; width 1)"] = main[spread]
    return out


def _deep_compare(table: pd.DataFrame):
    table, invalid = compare.mark_invalid_teacher(table, ["noise_var"], soft=("soft", "soft_std"))
    pairs = {m: f"paper_{m}" for m in ("teacher", "hard", "soft")}
    spread = {m: f"{m}_std" for m in ("teacher", "hard", "soft")}
    st = compare.compare_columns(table, ["noise_var"], pairs, spread=spread)
    st += invalid
    st += compare.gap_statement(table, ["noise_var"], "soft", "hard", "paper_soft", "paper_hard")
    if table["soft"].notna().any():
        head = compare.gap_headline(table, "soft", "hard", "paper_soft", "paper_hard", st[0])
    else:
        head = (
            "No soft-vs-hard result: the teacher did not learn (at chance) at every noise level of this profile; "
            "`--profile full` trains it on all the data."
        )
    shown = compare.interleave(table, {**pairs, "soft_minus_hard": "paper_soft_minus_hard"})
    shown = shown.drop(columns=[c for c in spread.values() if c in shown] + ["runs"], errors="ignore")
    return shown, st, head


def _deep_plot(raw):
    from .. import deep

    return deep.plot_deep(deep.summarize_deep(raw))


def _deep_width_plot(raw):
    from .. import deep

    if raw.loc[raw["model"] != "teacher", "width"].nunique() < 2:
        return None  # one student width only: no width figure
    width = next(t for name, t in _deep_tables(raw).items() if name.startswith("Student width"))
    return deep.plot_deep_width(width)  # soft arms blank where the teacher is at chance


STEPS: list[Step] = [
    Step(
        key="crowd.typing",
        part="crowd",
        title="Synthetic: recovering the hidden task types (phase transition in n vs log d)",
        claim="The spectral partition recovers the two task types exactly once the number of workers n grows "
        "like C log d (d tasks), in both the easy/hard and the specialist regimes.",
        run=_lazy("kdcore.experiments.crowd", "typing_accuracy"),
        tables=_typing_tables,
        compare=_phase_compare,
        plots=[_phase_plot, _typing_plots],
    ),
    Step(
        key="crowd.synthetic",
        part="crowd",
        title="Synthetic: label error of Dawid-Skene methods with and without type clustering",
        claim="Any Dawid-Skene algorithm is limited by the hard tasks; clustering the tasks by type first and "
        "aggregating each type separately lowers the label error (MV, DS-EM, TE+WMV, Spectral-EM).",
        run=_lazy("kdcore.experiments.crowd", "label_error"),
        tables=_label_error_tables,
        compare=_label_error_compare,
        plots=[_plot("kdcore.experiments.crowd", "plot_label_error")],
    ),
    Step(
        key="crowd.pseudo_real",
        part="crowd",
        title="Pseudo-real: real datasets with a planted hard type",
        claim="On real answers degraded on a random subset of tasks (known planted types), clustering first "
        "improves label accuracy in most scenarios.",
        run=_lazy("kdcore.experiments.crowd", "pseudo_real"),
        tables=_pseudo_tables,
        compare=_pseudo_compare,
        plots=[_plot("kdcore.experiments.crowd", "plot_pseudo_real")],
        needs=("crowd",),
    ),
    Step(
        key="crowd.real",
        part="crowd",
        title="Real datasets: plain vs type-aware aggregation",
        claim="On real crowdsourcing datasets, type-aware aggregation improves on plain Dawid-Skene in most "
        "scenarios (crowd-kit's accuracies are shown as a reference implementation).",
        run=_lazy("kdcore.experiments.crowd", "real"),
        tables=_real_tables,
        compare=_real_compare,
        plots=[_plot("kdcore.experiments.crowd", "plot_real")],
        needs=("crowd",),
    ),
    Step(
        key="crowd.accuracy",
        part="crowd",
        title="Which aggregator gives the best labels: every method on the nine real datasets, no tuning",
        claim="No single model fits every dataset; an automatic choice by the predictive likelihood of held-out "
        "answers (Auto) should stay close to the best method everywhere (docs/choosing.md).",
        run=_lazy("kdcore.experiments.accuracy", "run_protocol"),
        tables=_lazy("kdcore.experiments.accuracy", "report_tables"),
        compare=_lazy("kdcore.experiments.accuracy", "report_compare"),
        plots=[_plot("kdcore.experiments.accuracy", "plot_loss_to_best")],
        needs=("crowd",),
    ),
    Step(
        key="distill.scaling",
        part="distill",
        title="Neuron requirement of soft vs hard labels as the margin gamma and the target error eps shrink",
        claim="Soft labels need O(1/(gamma^2 eps)) neurons, hard labels O(ln(1/eps)/gamma^4) (Theorem 2, "
        "Corollary 4, Proposition 5): soft labels win by ~1/gamma when gamma < eps. The bounds are upper "
        "bounds; we measure the empirical requirement and its log-log slopes.",
        run=_lazy("kdcore.experiments.scaling", "soft_vs_hard"),
        tables=_scaling_tables,
        compare=_scaling_compare,
        plots=[_plot("kdcore.experiments.scaling", "plot_soft_vs_hard")],
    ),
    Step(
        key="distill.mnist",
        part="distill",
        title="MNIST 'digit > 4': two-layer students of width 8, 6, 4 on soft vs hard labels",
        claim="With a 512-neuron teacher, small students trained on soft labels beat the same students on hard "
        "labels, most at m = 4 on the full data (95.62 vs 88.84 %).",
        run=_lazy("kdcore.experiments.mnist", "mnist_table"),
        tables=_mnist_tables,
        compare=_mnist_compare,
        plots=[_mnist_plot],
        needs=("mnist",),
    ),
    Step(
        key="distill.crowd_students",
        part="distill",
        title="Learning from crowds: crowd posteriors as the student's soft labels",
        claim="Soft labels let a smaller student learn (docs/maths.md A.5); do crowd posteriors used as soft "
        "labels beat majority-vote labels, and lower the neuron requirement?",
        run=_lazy("kdcore.experiments.crowd_students", "run_crowd_students"),
        tables=_lazy("kdcore.experiments.crowd_students", "tables"),
        compare=_lazy("kdcore.experiments.crowd_students", "compare"),
        plots=[
            _plot("kdcore.experiments.crowd_students", "plot_accuracy"),
            _plot("kdcore.experiments.crowd_students", "plot_requirement"),
            _plot("kdcore.experiments.crowd_students", "plot_cifar_accuracy"),
        ],
        needs=("mnist", "torch"),
    ),
    Step(
        key="distill.deep",
        part="distill",
        title="Deep validation: CIFAR-10 cat vs dog under pixel noise (VGG 8+3 teacher, VGG 2+3 student)",
        claim="Soft labels from the teacher give a student more accurate than the same student on hard labels, "
        "and the gap widens as the noise makes the data harder (paper: +1.4 points at variance 0.01, "
        "+7.9 at 0.1, +8.3 at 0.2; read off its figure, about +-0.3).",
        run=_lazy("kdcore.experiments.deep", "run_deep_experiment"),
        tables=_deep_tables,
        compare=_deep_compare,
        plots=[_deep_plot, _deep_width_plot],
        needs=("torch", "cifar10"),
    ),
]
