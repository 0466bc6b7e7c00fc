"""Which aggregator gives the best labels? The accuracy protocol of docs/choosing.md.

Every method, with the settings fixed here once (no per-dataset tuning), on

- the nine real datasets of ``kdcore.crowd.datasets`` (accuracy on the gold tasks), and
- simulated data with planted truth (:data:`SIMULATIONS`: Dawid-Skene with dense and
  with sparse workers, one-coin, two-type; accuracy on every task, mean over
  ``seeds``),

and one table: accuracy per dataset, the mean over the datasets, and each method's
loss to the best method of each dataset (its largest loss, in points). crowd-kit's
aggregators are included when crowd-kit is installed (they are named ``ck.*``); a
method that does not apply (KOS and crowd-kit's binary-only methods on multi-class
data) or fails leaves a blank cell and a note.

Run ``python -m kdcore.experiments.accuracy --out results.json --markdown table.md``
(``--real`` / ``--simulated`` for one half; results are cached in ``--out``, so an
interrupted run resumes where it stopped; ``--no-run`` only renders the tables of a
results file, e.g. ``docs/results/accuracy_protocol.json``, the run behind docs/choosing.md).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "METHODS",
    "SIMULATIONS",
    "kdcore_methods",
    "crowdkit_methods",
    "load",
    "evaluate",
    "table",
    "paired",
    "main",
]

SEED = 0


def kdcore_methods() -> dict[str, Callable[[], Any]]:
    """kdcore's aggregators with their default settings (seeded where random)."""
    from ..crowd import GLAD, MACE, DawidSkene, MajorityVote, OneCoinDawidSkene, TypeAware
    from ..crowd._auto import AgreementWeightedVote, Auto
    from ..crowd._bayesian import BayesianDawidSkene, CommunityDawidSkene

    return {
        "majority_vote": lambda: MajorityVote(random_state=SEED),
        "weighted_vote": lambda: AgreementWeightedVote(random_state=SEED),
        "one_coin": OneCoinDawidSkene,
        "dawid_skene": DawidSkene,
        "bayesian_ds": BayesianDawidSkene,
        "bayesian_ds_map": lambda: BayesianDawidSkene(method="map"),
        "pooled_ds": lambda: BayesianDawidSkene(prior="pooled"),
        "community_ds": CommunityDawidSkene,
        "glad": GLAD,
        "mace": lambda: MACE(random_state=SEED),
        "type_aware": lambda: TypeAware(random_state=SEED),
        "auto": lambda: Auto(random_state=SEED),
    }


class _CrowdKit:
    """A crowd-kit aggregator behind kdcore's ``fit(responses).labels_``."""

    def __init__(self, cls_name: str, binary_only: bool = False, **kwargs):
        self.cls_name, self.binary_only, self.kwargs = cls_name, binary_only, kwargs

    def fit(self, responses):
        import crowdkit.aggregation as ck

        if self.binary_only and responses.n_classes != 2:
            raise NotImplementedError("binary labels only")
        df = responses.to_dataframe()
        self.labels_ = getattr(ck, self.cls_name)(**self.kwargs).fit_predict(df)
        return self


def crowdkit_methods() -> dict[str, Callable[[], Any]]:
    """crowd-kit 1.4's aggregators for categorical labels (empty when crowd-kit is missing)."""
    try:
        import crowdkit.aggregation  # noqa: F401
    except ImportError:
        return {}
    return {
        "ck.MajorityVote": lambda: _CrowdKit("MajorityVote"),
        "ck.Wawa": lambda: _CrowdKit("Wawa"),
        "ck.ZeroBasedSkill": lambda: _CrowdKit("ZeroBasedSkill"),
        "ck.OneCoinDawidSkene": lambda: _CrowdKit("OneCoinDawidSkene"),
        "ck.DawidSkene": lambda: _CrowdKit("DawidSkene"),
        "ck.GLAD": lambda: _CrowdKit("GLAD"),
        "ck.MACE": lambda: _CrowdKit("MACE"),
        "ck.MMSR": lambda: _CrowdKit("MMSR", binary_only=True),
        "ck.KOS": lambda: _CrowdKit("KOS", binary_only=True),
    }


def METHODS() -> dict[str, Callable[[], Any]]:  # noqa: N802 (a table of the protocol, built on demand)
    """Every method of the protocol: kdcore's, then crowd-kit's."""
    return {**kdcore_methods(), **crowdkit_methods()}


#: simulated settings with planted truth: name -> (generator, keyword arguments)
SIMULATIONS: dict[str, tuple[str, dict]] = {
    # 200 workers with about 50 answers each, full confusions
    "sim.ds": ("dawid_skene", {"n_tasks": 2000, "n_workers": 200, "n_classes": 3, "answers_per_task": 5}),
    # 500 workers with about 8 answers each (25 free parameters per worker at K = 5 in the real analogue)
    "sim.ds_sparse": ("dawid_skene", {"n_tasks": 1000, "n_workers": 500, "n_classes": 4, "answers_per_task": 4}),
    "sim.one_coin": ("one_coin", {"n_tasks": 2000, "n_workers": 100, "n_classes": 2, "answers_per_task": 5}),
    "sim.two_type": ("two_type", {"n_tasks": 2000, "n_workers": 50, "alpha": 0.1, "regime": "easy_hard"}),
}


def load(name: str, seed: int = 0, data_home=None):
    """``(responses, truth)`` of a real dataset or of a simulated setting (``seed`` for the latter)."""
    from ..crowd import datasets, simulate

    if name in SIMULATIONS:
        gen, kwargs = SIMULATIONS[name]
        out = getattr(simulate, gen)(**kwargs, random_state=seed)
        return out[0], out[1]
    return datasets.load(name, data_home)


def _accuracy(labels: pd.Series, truth: pd.Series) -> float:
    from ..crowd import accuracy

    return accuracy(labels, truth)


def evaluate(
    datasets: list[str],
    methods: dict[str, Callable[[], Any]],
    *,
    seeds: tuple[int, ...] = (0, 1, 2),
    cache: str | Path | None = None,
    data_home=None,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Long table of results: one row per (dataset, method, seed) with accuracy, seconds and a note.

    Real datasets are run once (seed 0); simulated settings once per seed. With
    ``cache`` (a JSON file) finished rows are read back instead of recomputed.
    """
    rows: dict[str, dict] = {}
    path = Path(cache) if cache is not None else None
    if path is not None and path.exists():
        rows = {r["key"]: r for r in json.loads(path.read_text())}
    for ds in datasets:
        for seed in seeds if ds in SIMULATIONS else (0,):
            data = None
            for name, make in methods.items():
                key = f"{ds}|{name}|{seed}"
                if key in rows:
                    continue
                if data is None:
                    data = load(ds, seed, data_home)
                r, truth = data
                t0 = time.perf_counter()
                acc, note = float("nan"), ""
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        est = make().fit(r)
                    acc = _accuracy(est.labels_, truth)
                    if name == "auto":
                        note = f"chose {est.chosen_}"
                except Exception as exc:  # noqa: BLE001 (a method that fails is a blank cell with a note)
                    note = f"{type(exc).__name__}: {str(exc)[:120]}"
                row = {
                    "key": key,
                    "dataset": ds,
                    "method": name,
                    "seed": seed,
                    "accuracy": acc,
                    "seconds": time.perf_counter() - t0,
                    "note": note,
                }
                rows[key] = row
                if log is not None:
                    log(f"{ds:14s} {name:18s} seed {seed}  acc {acc:.4f}  {row['seconds']:.1f}s  {note}")
                if path is not None:
                    path.write_text(json.dumps(list(rows.values()), indent=0))
    out = pd.DataFrame(list(rows.values()))
    keep = out["dataset"].isin(datasets) & out["method"].isin(list(methods))
    return out[keep].reset_index(drop=True)


def paired(dataset: str, method_a: str, method_b: str, seed: int = 0, data_home=None) -> dict[str, float]:
    """The paired comparison of two methods on one dataset's gold (or planted) labels.

    Both methods are fitted as in :func:`evaluate`; over the tasks with a known label,
    ``a_only`` counts those that only ``method_a`` labels right, ``b_only`` those that
    only ``method_b`` does, and ``p_value`` is the exact two-sided sign test of
    a_only against b_only (McNemar's exact test): the chance of a split at least this
    uneven if the two methods were equally accurate.

    Returns
    -------
    dict with ``accuracy_a``, ``accuracy_b``, ``a_only``, ``b_only``, ``p_value``
    """
    from scipy.stats import binomtest

    methods = METHODS()
    for m in (method_a, method_b):
        if m not in methods:
            raise ValueError(f"unknown method {m!r}; known: {list(methods)}")
    r, truth = load(dataset, seed, data_home)
    right = []
    for m in (method_a, method_b):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels = methods[m]().fit(r).labels_
        right.append((labels.reindex(truth.index) == truth).to_numpy())
    a_only, b_only = int(np.sum(right[0] & ~right[1])), int(np.sum(right[1] & ~right[0]))
    p_value = float(binomtest(a_only, a_only + b_only).pvalue) if a_only + b_only else 1.0
    return {
        "accuracy_a": float(right[0].mean()),
        "accuracy_b": float(right[1].mean()),
        "a_only": a_only,
        "b_only": b_only,
        "p_value": p_value,
    }


def table(results: pd.DataFrame, methods: list[str] | None = None) -> pd.DataFrame:
    """Methods x (datasets, mean, worst loss, mean loss): accuracy (mean over seeds) and the loss,
    in points, to the best method of each dataset among ``methods`` (all by default).

    Methods that fail or do not apply on some dataset get no mean (NaN) and are not
    counted in the best of that dataset.
    """
    acc = results.pivot_table(index="method", columns="dataset", values="accuracy", aggfunc="mean", dropna=False)
    if methods is not None:
        acc = acc.reindex([m for m in methods if m in acc.index])
    best = acc.max(axis=0)
    loss = (best - acc) * 100.0
    out = acc.copy()
    out["mean"] = acc.mean(axis=1, skipna=False)
    out["worst_loss_pts"] = loss.max(axis=1, skipna=False)
    out["mean_loss_pts"] = loss.mean(axis=1, skipna=False)
    return out.sort_values("mean", ascending=False, na_position="last")


def to_markdown(tab: pd.DataFrame, digits: int = 3) -> str:
    """The table as GitHub markdown (accuracies to ``digits``, losses to one decimal)."""
    cols = list(tab.columns)
    lines = ["| method | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for method, row in tab.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if pd.isna(v):
                cells.append("-")
            elif c.endswith("_pts"):
                cells.append(f"{v:.1f}")
            else:
                cells.append(f"{v:.{digits}f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: the report's profiles: (datasets, methods); ``full`` is the whole protocol (:func:`main`)
_QUICK_METHODS = (
    "majority_vote",
    "one_coin",
    "dawid_skene",
    "bayesian_ds",
    "community_ds",
    "glad",
    "mace",
    "auto",
    "ck.DawidSkene",
)


def run_protocol(profile: str = "quick", random_state: int = 0, data_home=None) -> pd.DataFrame:
    """The protocol as a step of ``kdcore reproduce``: its long table (:func:`evaluate`).

    ``tiny``: rte and bluebirds, three methods; ``quick``: the nine real datasets and
    :data:`_QUICK_METHODS` (crowd-kit's Dawid-Skene when crowd-kit is installed);
    ``full``: every method of :func:`METHODS` on the real datasets and the simulations.
    """
    from ..crowd import datasets as ds_mod
    from .profiles import check_profile

    profile = check_profile(profile)
    methods = METHODS()
    names: list[str]
    keep: tuple[str, ...]
    if profile == "tiny":
        names, keep = ["rte", "bluebirds"], ("majority_vote", "dawid_skene", "auto")
    elif profile == "quick":
        names, keep = list(ds_mod.DATASETS), _QUICK_METHODS
    else:
        names, keep = [*ds_mod.DATASETS, *SIMULATIONS], tuple(methods)
    chosen = {k: methods[k] for k in keep if k in methods}
    return evaluate(names, chosen, seeds=(random_state,), data_home=data_home)


def report_tables(results: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The report's table: accuracy per dataset, the mean and each method's loss to the best."""
    return {"Accuracy on the gold tasks (loss in points to the best method of each dataset)": table(results).round(3)}


def plot_loss_to_best(results: pd.DataFrame, path=None):
    """Methods x datasets: the loss in accuracy points to the best method of each dataset
    (0 = the best; darker = further behind), the number written in each cell; methods ordered by
    mean accuracy, the automatic choice in bold."""
    from . import plotting

    tab = table(results)
    datasets = [c for c in tab.columns if c not in ("mean", "worst_loss_pts", "mean_loss_pts")]
    acc = tab[datasets]
    loss = 100.0 * (acc.max(axis=0) - acc)
    plt = plotting._plt()
    fig, ax = plt.subplots(figsize=(max(5.5, 2.6 + 0.8 * len(datasets)), max(2.8, 1.4 + 0.4 * len(loss))))
    vals = loss.to_numpy(dtype=float)
    im = ax.imshow(np.minimum(vals, 10.0), cmap="Greys", vmin=0, vmax=12, aspect="auto")
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            v = vals[i, j]
            txt = "n/a" if not np.isfinite(v) else ("best" if v < 0.05 else f"{v:.1f}")
            ax.text(j, i, txt, ha="center", va="center", fontsize=7, color="white" if v > 6 else "black")
    ax.set_xticks(range(len(datasets)), datasets, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(loss)), [str(m).replace("_", " ") for m in loss.index], fontsize=8)
    for lab in ax.get_yticklabels():
        if lab.get_text() == "auto":
            lab.set_fontweight("bold")
    ax.set_xlabel("dataset")
    ax.set_ylabel("method")
    ax.set_title("Gold-task accuracy: points behind the best method of each dataset", fontsize=10)
    cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cb.set_label("points behind the best (capped at 10)", fontsize=8)
    if path is not None:
        plotting.save(fig, path)
    return fig


def report_compare(tab: pd.DataFrame) -> tuple[pd.DataFrame, list[str], str]:
    """Statements for the report: the best mean, and whether any method stays within 1 point everywhere."""
    within = [str(m) for m in tab.index[tab["worst_loss_pts"] <= 1.0]]
    i_best = int(np.nanargmax(tab["mean"].to_numpy(dtype=float)))
    best = str(tab.index[i_best])
    best_mean, best_loss = float(tab["mean"].iloc[i_best]), float(tab["worst_loss_pts"].iloc[i_best])
    statements = [
        f"Highest mean accuracy: {best} ({best_mean:.3f}); its largest loss to the best method of a "
        f"dataset is {best_loss:.1f} points.",
        "Within 1 point of the best on every dataset: " + (", ".join(within) if within else "no method") + ".",
    ]
    return tab, statements, statements[0]


def main(argv: list[str] | None = None) -> int:
    from ..crowd import datasets as ds_mod

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="accuracy_results.json", help="JSON cache of the results")
    p.add_argument("--markdown", default=None, help="write the tables here")
    p.add_argument("--real", action="store_true", help="only the nine real datasets")
    p.add_argument("--simulated", action="store_true", help="only the simulated settings")
    p.add_argument("--methods", nargs="*", default=None, help="a subset of the methods")
    p.add_argument("--seeds", type=int, default=3, help="seeds per simulated setting")
    p.add_argument("--no-run", action="store_true", help="only render the tables of what --out already holds")
    p.add_argument(
        "--paired",
        nargs=3,
        metavar=("DATASET", "A", "B"),
        default=None,
        help="only the paired sign test of methods A and B on DATASET (tasks only one of them labels right)",
    )
    args = p.parse_args(argv)
    methods = METHODS()
    if args.paired:
        ds, a, b = args.paired
        if ds not in [*ds_mod.list_datasets(), *SIMULATIONS]:
            p.error(f"unknown dataset {ds!r}; known: {[*ds_mod.list_datasets(), *SIMULATIONS]}")
        for m in (a, b):
            if m not in methods:
                p.error(f"unknown method {m!r}; known: {list(methods)}")
        pair = paired(ds, a, b)
        print(
            f"{ds}: {a} {pair['accuracy_a']:.3f}, {b} {pair['accuracy_b']:.3f}; right only by {a}: {pair['a_only']}, "
            f"only by {b}: {pair['b_only']}; exact sign test p = {pair['p_value']:.3f}"
        )
        return 0
    if args.methods:
        unknown = [m for m in args.methods if m not in methods]
        if unknown:
            p.error(f"unknown methods {unknown}; known: {list(methods)}")
        methods = {m: methods[m] for m in args.methods}
    real = ds_mod.list_datasets()
    sims = list(SIMULATIONS)
    chosen = real if args.real else sims if args.simulated else real + sims
    if args.no_run:
        if not Path(args.out).is_file():
            p.error(f"--no-run needs the results file {args.out}, which does not exist")
        res = pd.DataFrame(json.loads(Path(args.out).read_text()))
        res = res[res["dataset"].isin(chosen) & res["method"].isin(list(methods))]
    else:
        res = evaluate(chosen, methods, seeds=tuple(range(args.seeds)), cache=args.out, log=print)
    parts = []
    for title, names in (("real datasets (gold tasks)", real), ("simulated, planted truth", sims)):
        sub = res[res["dataset"].isin(names)]
        if len(sub):
            parts.append(f"### Accuracy, {title}\n\n" + to_markdown(table(sub)))
            notes = sub[sub["note"].astype(bool)][["dataset", "method", "note"]].drop_duplicates()
            if len(notes):
                parts.append("\n".join(f"- {r.dataset} / {r.method}: {r.note}" for r in notes.itertuples()))
    text = "\n\n".join(parts)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
