"""The deep validation experiment of the distillation paper (docs/maths.md A.5): soft vs hard
labels for VGG networks on noisy CIFAR-10 cat-vs-dog, in torch.

A VGG 8+3 teacher (:func:`kdcore.distill.vgg.make_teacher`) is trained on noisy
CIFAR-10 cat-vs-dog with hard labels; a small VGG 2+3 student
(:func:`kdcore.distill.vgg.make_student`) is then trained once on the hard
labels and once on the teacher's soft labels ``sigmoid(teacher_logit / T)``
(T = 1 in the paper), both with :func:`kdcore.distill.vgg.train_net` (Adam with
L2, early stopping on validation accuracy with the true labels, the same rule for
every arm). 80/10/10 split, i.i.d. Gaussian pixel noise of variance 0.01 ... 0.2,
several runs a point (a run = one seed for the split, the noise, the
initialisations and the batch order). ``teacher_width`` scales the teacher's
channels, the student width sweep uses multipliers 0.25, 0.5, 1, 2.

Device: ``device="auto"`` picks CUDA when torch sees one (mixed precision,
``cudnn.benchmark = True``), else the CPU with ``n_threads`` torch threads.

Profiles: ``tiny`` (tests, a few seconds), ``quick`` (noise 0.01 and 0.1, 2
seeds, 1,500 images pooled, teacher at width 0.25 for at most 6 epochs,
students at most 5 epochs with patience 3, width sweep 0.5/1/2 at noise 0.1:
a few minutes on 2 CPU cores; the default report). On so few images the quick teacher can stay
near chance at noise 0.1: measured there (seeds 0 and 1, batch 64, one torch thread), it reached 64.7 and 50.7 % test
accuracy; 3,000 images and 12 or 20 epochs gave 55.7 and 56.3 % (validation accuracy peaks at
epoch 2, so more epochs do not help), and width 0.5 on 3,000 images 62.3 and 60.0 % at about
2.5 minutes per teacher on one core, too slow for this profile. The report therefore withholds the
soft arm, and its soft-minus-hard gap, of any row whose teacher is less than 5 points above chance.
``full``: the paper's protocol: 5 noise levels, 10 runs,
all 12,000 images, at most 100 epochs, patience 20; meant for a GPU.

Command line: ``python -m kdcore.experiments.deep --profile quick --out results/deep``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .._check import check_float, check_int
from ..distill.vgg import (
    TorchThreads,
    accuracy,
    default_threads,
    make_student,
    make_teacher,
    predict_logits,
    resolve_device,
    to_device,
    train_net,
)
from .paper import DEEP_TABLE
from .profiles import check_profile

__all__ = [
    "DeepConfig",
    "deep_profile",
    "run_deep_experiment",
    "read_deep_log",
    "summarize_deep",
    "plot_deep",
    "plot_deep_width",
    "save_deep_results",
]


@dataclass
class DeepConfig:
    """Everything that defines a run of Experiment 2 (a profile fills it in)."""

    noise_vars: tuple = (0.01, 0.03, 0.05, 0.1, 0.2)
    seeds: tuple = tuple(range(10))
    n_max: int | None = None  # subsample the 12,000-image pool (None = all)
    max_epochs: int = 100
    patience: int = 20
    teacher_max_epochs: int | None = None  # None = max_epochs
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 5e-4
    teacher_width: float = 1.0
    widths: tuple = (1.0,)  # student width multipliers at every noise level
    width_sweep: tuple = (0.25, 0.5, 1.0, 2.0)
    width_sweep_noise: tuple = (0.01, 0.1)  # noise levels that get the whole width sweep
    temperature: float = 1.0
    classes: tuple = ("cat", "dog")

    def __post_init__(self):
        for name in ("max_epochs", "patience", "batch_size"):
            check_int(getattr(self, name), name, minimum=1)
        check_float(self.temperature, "temperature", minimum=0.0, strict_min=True)
        if not self.seeds or not self.noise_vars:
            raise ValueError("seeds and noise_vars must be non-empty")


def deep_profile(profile: str = "quick") -> DeepConfig:
    """The :class:`DeepConfig` of a named profile: ``"tiny"``, ``"quick"`` or ``"full"``."""
    check_profile(profile)
    if profile == "tiny":
        return DeepConfig(
            noise_vars=(0.01, 0.1),
            seeds=(0,),
            n_max=240,
            max_epochs=2,
            patience=2,
            batch_size=64,
            teacher_width=0.25,
            width_sweep=(0.5, 1.0),
            width_sweep_noise=(0.1,),
        )
    if profile == "quick":
        return DeepConfig(
            noise_vars=(0.01, 0.1),
            seeds=(0, 1),
            n_max=1500,
            max_epochs=5,
            patience=3,
            teacher_max_epochs=6,
            teacher_width=0.25,
            width_sweep=(0.5, 1.0, 2.0),
            width_sweep_noise=(0.1,),
        )
    return DeepConfig()


def run_deep_experiment(
    profile: str = "quick",
    *,
    config: DeepConfig | None = None,
    device: str = "auto",
    n_threads: int | None = None,
    progress: bool | None = None,
    data_home=None,
    out_dir: str | os.PathLike | None = None,
    shard: tuple[int, int] = (0, 1),
    log_path: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Run Experiment 2 and return one row per trained network.

    Columns: ``noise_var, seed, model`` (``teacher``/``hard``/``soft``), ``width``
    (student width multiplier; 1 for the teacher), ``test_acc, val_acc`` (in %),
    ``epochs, best_epoch, seconds, device``. At every noise level in
    ``config.noise_vars`` the students have the widths ``config.widths``; at the
    levels in ``config.width_sweep_noise`` also every width of
    ``config.width_sweep`` (all students of a (noise, seed) share one teacher).

    ``out_dir`` given: the table and its summary are written there as JSON
    together with the figures (:func:`save_deep_results`).

    Runs are the (noise level, seed) pairs, ordered seed by seed (all noise
    levels of seed 0, then of seed 1, ...), so a run cut short still covers
    every noise level. ``shard=(i, k)`` keeps every k-th run starting at the
    i-th: k processes (on k GPUs, or several on one GPU) share a profile, and
    :func:`read_deep_log` joins their logs. ``log_path`` appends every trained
    network as one JSON line the moment it finishes; runs whose networks are
    all in the log already are skipped (resume after an interruption).

    Example
    -------
    >>> df = run_deep_experiment("tiny", progress=False)  # doctest: +SKIP
    >>> summarize_deep(df)  # doctest: +SKIP
    """
    import torch
    from tqdm.auto import tqdm

    from ..distill.datasets import cifar_pair

    cfg = config if config is not None else deep_profile(profile)
    dev = resolve_device(device)
    amp = dev.type == "cuda"
    if progress is None:
        progress = sys.stderr.isatty()
    n_threads = default_threads() if n_threads is None else check_int(n_threads, "n_threads", minimum=1)
    if amp:
        torch.backends.cudnn.benchmark = True
    i_shard, n_shard = (int(v) for v in shard)
    if n_shard < 1 or not 0 <= i_shard < n_shard:
        raise ValueError(f"shard must be (i, k) with 0 <= i < k, got {shard!r}")
    jobs = [(nv, s) for s in cfg.seeds for nv in cfg.noise_vars][i_shard::n_shard]
    n_nets = {
        nv: 1 + 2 * len(set(cfg.widths) | (set(cfg.width_sweep) if nv in cfg.width_sweep_noise else set()))
        for nv in cfg.noise_vars
    }
    rows, log = [], None
    if log_path is not None:
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if log_path.is_file():
            old = read_deep_log(log_path)
            done = old.groupby(["noise_var", "seed"]).size() if len(old) else pd.Series(dtype=int)
            keep = {(nv, s) for nv, s in jobs if done.get((nv, s), 0) >= n_nets[nv]}
            rows = [r for r in old.to_dict("records") if (r["noise_var"], r["seed"]) in keep]
            jobs = [j for j in jobs if j not in keep]
        log = open(log_path, "a")

    def emit(row):
        rows.append(row)
        if log is not None:  # one write per line: safe for several processes appending to one file
            log.write(json.dumps(row) + "\n")
            log.flush()

    with TorchThreads(n_threads if dev.type == "cpu" else None):
        for nv, seed in tqdm(jobs, desc="runs", disable=not progress):
            data = cifar_pair(*cfg.classes, noise_var=nv, seed=seed, n_max=cfg.n_max, data_home=data_home)
            Xtr, Xva, Xte = (to_device(a, dev) for a in (data.X_train, data.X_val, data.X_test))
            ytr, yva, yte = (to_device(a, dev) for a in (data.y_train, data.y_val, data.y_test))
            common = dict(
                batch_size=cfg.batch_size,
                lr=cfg.lr,
                weight_decay=cfg.weight_decay,
                amp=amp,
                progress=progress,
                patience=cfg.patience,
            )
            torch.manual_seed(10_000 + seed)
            teacher = make_teacher(cfg.teacher_width).to(dev)
            tr = train_net(
                teacher,
                Xtr,
                ytr.float(),
                Xva,
                yva,
                random_state=seed,
                max_epochs=cfg.teacher_max_epochs or cfg.max_epochs,
                desc=f"teacher v={nv}",
                **common,
            )
            base = {"noise_var": nv, "seed": seed, "device": str(dev)}
            emit(
                {
                    **base,
                    "model": "teacher",
                    "width": cfg.teacher_width,
                    "test_acc": 100 * accuracy(teacher, Xte, yte, amp),
                    "val_acc": 100 * tr.best_val_acc,
                    "epochs": tr.epochs_run,
                    "best_epoch": tr.best_epoch,
                    "seconds": tr.seconds,
                }
            )
            soft = torch.sigmoid(predict_logits(teacher, Xtr, amp=amp) / cfg.temperature)
            widths = sorted(set(cfg.widths) | (set(cfg.width_sweep) if nv in cfg.width_sweep_noise else set()))
            for w in widths:
                for arm, targets in (("hard", ytr.float()), ("soft", soft)):
                    torch.manual_seed(20_000 + seed)  # same init for both arms
                    student = make_student(w).to(dev)
                    r = train_net(
                        student,
                        Xtr,
                        targets,
                        Xva,
                        yva,
                        random_state=seed,
                        max_epochs=cfg.max_epochs,
                        temperature=cfg.temperature if arm == "soft" else 1.0,
                        desc=f"{arm} w={w} v={nv}",
                        **common,
                    )
                    emit(
                        {
                            **base,
                            "model": arm,
                            "width": w,
                            "test_acc": 100 * accuracy(student, Xte, yte, amp),
                            "val_acc": 100 * r.best_val_acc,
                            "epochs": r.epochs_run,
                            "best_epoch": r.best_epoch,
                            "seconds": r.seconds,
                        }
                    )
    if log is not None:
        log.close()
    df = pd.DataFrame(rows)
    df.attrs["config"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
    df.attrs["profile"] = profile if config is None else "custom"
    if out_dir is not None:
        save_deep_results(df, out_dir)
    return df


def read_deep_log(*paths: str | os.PathLike) -> pd.DataFrame:
    """The networks logged by :func:`run_deep_experiment` (``log_path``), one row each.

    Several logs (shards) are joined; a network logged twice (a run restarted
    after it had logged part of its networks) keeps its last line.
    """
    recs = []
    for p in paths:
        with open(p) as fh:
            for ln, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    recs.append(json.loads(line))
                except json.JSONDecodeError as exc:  # a line cut by a killed process
                    warnings.warn(f"{p}:{ln}: skipping an unreadable line ({exc})", stacklevel=2)
    df = pd.DataFrame(recs)
    if len(df):
        df = df.drop_duplicates(["noise_var", "seed", "model", "width"], keep="last").reset_index(drop=True)
    return df


def summarize_deep(df: pd.DataFrame, width: float = 1.0) -> pd.DataFrame:
    """Mean and standard deviation of test accuracy per noise level (students at ``width``),
    beside the paper's numbers (docs/maths.md A.5); ``soft_minus_hard`` is ours."""
    sel = df[(df["model"] == "teacher") | (df["width"] == width)]
    g = sel.groupby(["noise_var", "model"])["test_acc"].agg(["mean", "std", "count"]).unstack("model")
    out = pd.DataFrame(index=g.index)
    for m in ("teacher", "hard", "soft"):
        if ("mean", m) in g.columns:
            out[m] = g[("mean", m)]
            out[f"{m}_std"] = g[("std", m)]
    out["runs"] = g[("count", "hard")] if ("count", "hard") in g.columns else np.nan
    out["soft_minus_hard"] = out.get("soft", np.nan) - out.get("hard", np.nan)
    paper = DEEP_TABLE.set_index("noise_var")
    for m in ("teacher", "hard", "soft"):
        out[f"paper_{m}"] = [paper[m].get(round(float(v), 4), np.nan) for v in out.index]
    out["paper_soft_minus_hard"] = out["paper_soft"] - out["paper_hard"]
    return out.reset_index()


def summarize_deep_width(df: pd.DataFrame) -> pd.DataFrame:
    """Student test accuracy (mean, std) per noise level, width and arm."""
    s = df[df["model"] != "teacher"]
    g = s.groupby(["noise_var", "width", "model"])["test_acc"].agg(["mean", "std", "count"]).unstack("model")
    out = pd.DataFrame(index=g.index)
    for m in ("hard", "soft"):
        out[m] = g[("mean", m)]
        out[f"{m}_std"] = g[("std", m)]
    out["soft_minus_hard"] = out["soft"] - out["hard"]
    out["runs"] = g[("count", "hard")]
    return out.reset_index()


def plot_deep(table: pd.DataFrame, path: str | os.PathLike | None = None):
    """Accuracy vs noise variance (teacher, hard, soft; error bars = std over runs), the paper's
    values dashed with hollow markers, the 50 % chance line; a noise level whose teacher is at
    chance (less than 5 points above it) is shaded: its soft labels carry no signal."""
    from . import plotting

    fig, ax = plotting.figure()
    teacher_ok = None
    if "teacher" in table:  # the report's rule: at least 5 points above chance
        teacher_ok = table["teacher"].to_numpy(float) >= 55.0
        if "soft" in table and (~teacher_ok).any():
            table = table.copy()
            table.loc[~teacher_ok, ["soft", "soft_std"]] = np.nan  # no soft-label result from a teacher at chance
    xs = sorted(set(table["noise_var"]) | set(DEEP_TABLE["noise_var"]))
    for m in ("teacher", "hard", "soft"):
        c = plotting.color(m)
        ax.plot(
            DEEP_TABLE["noise_var"],
            DEEP_TABLE[m],
            color=c,
            ls="--",
            marker="s",
            mfc="none",
            alpha=0.8,
            label=f"{m} (paper)",
        )
        if m in table:
            ax.errorbar(
                table["noise_var"],
                table[m],
                yerr=table[f"{m}_std"].fillna(0),
                color=c,
                marker="o",
                capsize=3,
                label=f"{m} (ours)",
            )
    if teacher_ok is not None and (~teacher_ok).any():
        for nv in table.loc[~teacher_ok, "noise_var"]:
            ax.axvspan(nv / 1.15, nv * 1.15, color="#f2c14e", alpha=0.3, lw=0)
            ax.text(nv, 97, "teacher at\nchance:\nno soft arm", ha="center", va="top", fontsize=7)
    plotting.chance_line(ax, 50.0, label="chance (50 %)")
    ax.set_xscale("log")
    plotting.log_ticks(ax, x=xs)
    ours = table[[m for m in ("teacher", "hard", "soft") if m in table]].to_numpy(float)
    low = np.nanmin(ours) if np.isfinite(ours).any() else 50.0
    ax.set_ylim(min(40.0, 5 * np.floor(low / 5) - 5), 100)
    ax.set_xlabel("pixel noise variance")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("CIFAR-10 cat vs dog: VGG 8+3 teacher,\nVGG 2+3 student on soft or hard labels", fontsize=10)
    ax.grid(True, alpha=0.3)
    plotting.legend_right(ax)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def plot_deep_width(table: pd.DataFrame, path: str | os.PathLike | None = None):
    """Student accuracy vs width multiplier (log x), hard and soft in their colours, one panel per
    noise level; the 50 % chance line."""
    from . import plotting

    levels = sorted(table["noise_var"].unique())
    fig, axes = plotting.figure(ncols=len(levels))
    axes = axes if isinstance(axes, list) else [axes]
    for ax, nv in zip(axes, levels):
        sub = table[table["noise_var"] == nv].sort_values("width")
        for m in ("hard", "soft"):
            ok = sub[m].notna()
            if ok.any():
                ax.errorbar(
                    sub["width"][ok],
                    sub[m][ok],
                    yerr=sub[f"{m}_std"][ok].fillna(0),
                    color=plotting.color(m),
                    marker="o",
                    capsize=3,
                    label=m,
                )
            elif m == "soft":
                ax.text(0.5, 0.9, "no soft arm: teacher at chance", transform=ax.transAxes, ha="center", fontsize=8)
        plotting.chance_line(ax, 50.0, label="chance (50 %)")
        ax.set_xscale("log", base=2)
        plotting.log_ticks(ax, x=sub["width"])
        ours = sub[["hard", "soft"]].to_numpy(float)
        low = np.nanmin(ours) if np.isfinite(ours).any() else 50.0
        ax.set_ylim(min(40.0, 5 * np.floor(low / 5) - 5), 100)
        ax.set_xlabel("student width multiplier")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"noise variance {nv:g}", fontsize=10)
    fig.suptitle("VGG 2+3 student: soft vs hard labels by width", fontsize=10)
    plotting.legend_below(fig, axes)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def save_deep_results(df: pd.DataFrame, out_dir: str | os.PathLike) -> dict:
    """Write ``deep_runs.json`` (every run + config), ``deep_summary.json`` and the two figures."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize_deep(df)
    payload = {
        "profile": df.attrs.get("profile"),
        "config": df.attrs.get("config"),
        "runs": json.loads(df.to_json(orient="records")),
    }
    (out / "deep_runs.json").write_text(json.dumps(payload, indent=1))
    (out / "deep_summary.json").write_text(summary.to_json(orient="records", indent=1))
    paths = {"runs": out / "deep_runs.json", "summary": out / "deep_summary.json"}
    import matplotlib.pyplot as plt

    plt.close(plot_deep(summary, out / "deep_noise.png"))
    paths["figure"] = out / "deep_noise.png"
    wt = summarize_deep_width(df)
    if wt["width"].nunique() > 1:
        plt.close(plot_deep_width(wt, out / "deep_width.png"))
        paths["width_figure"] = out / "deep_width.png"
    return paths


def main(argv=None) -> None:  # python -m kdcore.experiments.deep --profile quick --out results/deep
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m kdcore.experiments.deep",
        description="Experiment 2: soft vs hard labels, VGG on noisy CIFAR-10 cat/dog",
    )
    p.add_argument("--profile", default="quick", choices=["tiny", "quick", "full"])
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="results/deep")
    p.add_argument("--data-home", default=None)
    p.add_argument("--temperature", type=float, default=None, help="soft-label temperature (default: 1)")
    p.add_argument("--shard", default="0/1", help="I/K: run every K-th (noise, seed) run from the I-th")
    p.add_argument("--log", default=None, help="append each network as a JSON line here; resume from it")
    p.add_argument(
        "--from-logs",
        nargs="+",
        default=None,
        metavar="LOG",
        help="train nothing: join these logs (shards) and write the tables and figures",
    )
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    cfg = deep_profile(a.profile)
    if a.temperature is not None:
        cfg = replace(cfg, temperature=a.temperature)
    if a.from_logs:
        df = read_deep_log(*a.from_logs)
        if not len(df):
            raise SystemExit(f"no networks in {a.from_logs}")
        df.attrs["config"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
    else:
        try:
            i_shard, n_shard = (int(v) for v in a.shard.split("/"))
        except ValueError:
            raise SystemExit(f"--shard must look like I/K, got {a.shard!r}") from None
        df = run_deep_experiment(
            a.profile,
            config=cfg,
            device=a.device,
            n_threads=a.threads,
            data_home=a.data_home,
            shard=(i_shard, n_shard),
            log_path=a.log,
        )
    df.attrs["profile"] = a.profile if a.temperature is None else f"{a.profile}, temperature {a.temperature:g}"
    save_deep_results(df, a.out)
    pd.set_option("display.width", 200)
    print(summarize_deep(df).round(2).to_string(index=False))
    wt = summarize_deep_width(df)
    if wt["width"].nunique() > 1:
        print(wt.round(2).to_string(index=False))
    print(
        f"[{a.profile}] {len(df)} networks in {time.perf_counter() - t0:.0f} s on {df['device'].iloc[0]}; "
        f"results in {a.out}"
    )


if __name__ == "__main__":
    main()
