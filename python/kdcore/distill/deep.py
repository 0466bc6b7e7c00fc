"""Experiment 2 of the KD paper (PAPERS.md A.5): soft vs hard labels for deep nets, in torch.

A VGG-style teacher (8 conv + 3 FC) is trained on noisy CIFAR-10 cat-vs-dog
with hard labels; a small VGG-style student (2 conv + 3 FC) is then trained
once on the hard labels and once on the teacher's soft labels
``sigmoid(teacher_logit / T)`` (T = 1 in the paper). Adam with L2
(``weight_decay``, added to the gradient: L2, not AdamW's decoupled decay),
early stopping on validation accuracy (true labels, the same rule for every
arm) with the best weights restored, 80/10/10 split, i.i.d. Gaussian pixel
noise of variance 0.01 ... 0.2, several runs a point (a run = one seed for the
split, the noise, the initialisations and the batch order).

Architectures (one logit; binary cross-entropy on it):

* teacher ``VGG 8+3`` at width 1: conv channels 32-32-P-64-64-P-128-128-P-256-256-P
  (3x3, padding 1, BatchNorm, ReLU; P = 2x2 max-pool), then FC 1024-256-128-1
  with dropout 0.3. ``teacher_width`` scales every channel count.
* student ``VGG 2+3`` at width 1: conv 16-P-32-P (3x3, BatchNorm, ReLU), then
  FC 2048-128-64-1 with dropout 0.3 (a quarter of the teacher's first block, so
  it is clearly weaker than the teacher, as in the paper). ``width`` scales the conv channels and
  the two hidden FC layers (the width sweep uses 0.25, 0.5, 1, 2).

The channel counts are ours (the paper names only the depths).

Device: ``device="auto"`` picks CUDA when torch sees one (then mixed precision
with a gradient scaler, the data held on the GPU after a pinned-memory copy,
``cudnn.benchmark = True``), else the CPU with ``torch.set_num_threads(n_threads)``
so training never oversubscribes the cores (the previous count is restored).

Profiles: ``tiny`` (tests, a few seconds), ``quick`` (noise 0.01 and 0.1, 2
seeds, 1,500 images pooled, teacher at width 0.25 for at most 6 epochs,
students at most 5 epochs with patience 3, width sweep 0.5/1/2 at noise 0.1:
a few minutes on 2 CPU cores; the default report), ``full`` (the paper's protocol: 5 noise levels, 10 runs,
all 12,000 images, at most 100 epochs, patience 20; meant for a GPU).
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "DeepConfig",
    "PAPER_DEEP",
    "deep_profile",
    "make_teacher",
    "make_student",
    "train_net",
    "run_deep_experiment",
    "read_deep_log",
    "summarize_deep",
    "plot_deep",
    "plot_deep_width",
    "save_deep_results",
]

# Test accuracy (%) read off the paper's figure (about +-0.3), PAPERS.md A.5 Experiment 2.
PAPER_DEEP = pd.DataFrame(
    {
        "noise_var": [0.01, 0.03, 0.05, 0.10, 0.20],
        "teacher": [82.5, 78.4, 79.1, 77.7, 73.4],
        "hard": [74.6, 74.2, 73.7, 67.1, 62.1],
        "soft": [76.0, 75.2, 74.2, 75.0, 70.4],
    }
)


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
        if self.max_epochs < 1 or self.patience < 1 or self.batch_size < 1:
            raise ValueError("max_epochs, patience and batch_size must be >= 1")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not self.seeds or not self.noise_vars:
            raise ValueError("seeds and noise_vars must be non-empty")


def deep_profile(profile: str = "quick") -> DeepConfig:
    """The :class:`DeepConfig` of a named profile: ``"tiny"``, ``"quick"`` or ``"full"``."""
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
    if profile == "full":
        return DeepConfig()
    raise ValueError(f"profile must be 'tiny', 'quick' or 'full', got {profile!r}")


# ----------------------------------------------------------------------------- models


def _c(n: float) -> int:
    return max(1, int(round(n)))


def make_teacher(width: float = 1.0):
    """VGG 8+3: eight 3x3 conv layers (BatchNorm, ReLU), four max-pools, three FC layers, one logit."""
    import torch.nn as nn

    chans = [_c(width * c) for c in (32, 32, 64, 64, 128, 128, 256, 256)]
    layers, cin = [], 3
    for i, c in enumerate(chans):
        layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        if i % 2 == 1:
            layers.append(nn.MaxPool2d(2))
        cin = c
    h1, h2 = _c(256 * width), _c(128 * width)
    return nn.Sequential(
        *layers,
        nn.Flatten(),
        nn.Linear(cin * 2 * 2, h1),
        nn.ReLU(inplace=True),
        nn.Dropout(0.3),
        nn.Linear(h1, h2),
        nn.ReLU(inplace=True),
        nn.Dropout(0.3),
        nn.Linear(h2, 1),
    )


def make_student(width: float = 1.0):
    """VGG 2+3: two 3x3 conv layers (BatchNorm, ReLU, max-pool each), three FC layers, one logit."""
    import torch.nn as nn

    c1, c2 = _c(16 * width), _c(32 * width)
    h1, h2 = _c(128 * width), _c(64 * width)
    return nn.Sequential(
        nn.Conv2d(3, c1, 3, padding=1, bias=False),
        nn.BatchNorm2d(c1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1, bias=False),
        nn.BatchNorm2d(c2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * 8 * 8, h1),
        nn.ReLU(inplace=True),
        nn.Dropout(0.3),
        nn.Linear(h1, h2),
        nn.ReLU(inplace=True),
        nn.Dropout(0.3),
        nn.Linear(h2, 1),
    )


# ----------------------------------------------------------------------------- device handling


def _resolve_device(device: str):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device")
    return torch.device(device)


class _TorchThreads:
    """Set torch's intra-op thread count inside the block (CPU only), restore it after."""

    def __init__(self, n: int | None):
        self.n = n

    def __enter__(self):
        import torch

        self.old = torch.get_num_threads()
        if self.n:
            torch.set_num_threads(int(self.n))
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.old)


def _default_threads() -> int:
    env = os.environ.get("KDCORE_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _to_device(arr: np.ndarray, device):
    import torch

    t = torch.from_numpy(np.ascontiguousarray(arr))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t


# ----------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    model: object
    best_val_acc: float
    epochs_run: int
    best_epoch: int
    seconds: float
    history: list = field(default_factory=list)


def _predict_logits(model, X, batch: int = 1024, amp: bool = False):
    import torch

    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, X.shape[0], batch):
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=amp):
                outs.append(model(X[i : i + batch]).float().squeeze(1))
    return torch.cat(outs) if outs else torch.zeros(0, device=X.device)


def _accuracy(model, X, y, amp: bool = False) -> float:
    logits = _predict_logits(model, X, amp=amp)
    return float(((logits > 0).long() == y).float().mean().item())


def train_net(
    model,
    X_train,
    targets,
    X_val,
    y_val,
    *,
    max_epochs: int = 100,
    patience: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 5e-4,
    temperature: float = 1.0,
    seed: int = 0,
    amp: bool = False,
    progress: bool = False,
    desc: str = "epochs",
) -> TrainResult:
    """Train ``model`` (one logit) with Adam + L2 and early stopping on validation accuracy.

    ``targets`` are float probabilities in [0, 1] on the model's device: 0/1 for
    hard labels, ``sigmoid(z / T)`` for a teacher's soft labels. The loss is
    ``T^2 * BCE(sigmoid(s / T), targets)`` for student logit ``s`` (Hinton's
    scaling; for T = 1 it is the plain binary cross-entropy, whose gradient in
    ``s`` is ``sigmoid(s) - target`` as in PAPERS.md A.2). The weights with the
    best validation accuracy are restored at the end.
    """
    import copy

    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    device = X_train.device
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    gen = torch.Generator().manual_seed(int(seed))
    n = X_train.shape[0]
    best, best_state, best_epoch, bad = -1.0, None, 0, 0
    history = []
    t0 = time.perf_counter()
    bar = tqdm(range(max_epochs), desc=desc, leave=False, disable=not progress)
    epoch = 0
    for epoch in bar:
        model.train()
        perm = torch.randperm(n, generator=gen).to(device)
        total = torch.zeros((), device=device)  # summed on the device: no host sync per step
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            if idx.numel() < 2:  # BatchNorm needs two samples
                continue
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=amp):
                s = model(X_train[idx]).float().squeeze(1)
            loss = F.binary_cross_entropy_with_logits(s / temperature, targets[idx]) * temperature**2
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total += loss.detach().float() * idx.numel()
        total = float(total)
        val = _accuracy(model, X_val, y_val, amp)
        history.append({"epoch": epoch + 1, "train_loss": total / n, "val_acc": val})
        bar.set_postfix(loss=f"{total / n:.3f}", val=f"{val:.3f}")
        if val > best:
            best, best_epoch, bad = val, epoch + 1, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if bad >= patience:
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return TrainResult(model, best, epoch + 1, best_epoch, time.perf_counter() - t0, history)


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

    from .datasets import cifar_pair

    cfg = config if config is not None else deep_profile(profile)
    dev = _resolve_device(device)
    amp = dev.type == "cuda"
    if progress is None:
        progress = sys.stderr.isatty()
    n_threads = _default_threads() if n_threads is None else int(n_threads)
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1 or None, got {n_threads}")
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

    with _TorchThreads(n_threads if dev.type == "cpu" else None):
        for nv, seed in tqdm(jobs, desc="runs", disable=not progress):
            data = cifar_pair(*cfg.classes, noise_var=nv, seed=seed, n_max=cfg.n_max, data_home=data_home)
            Xtr, Xva, Xte = (_to_device(a, dev) for a in (data.X_train, data.X_val, data.X_test))
            ytr, yva, yte = (_to_device(a, dev) for a in (data.y_train, data.y_val, data.y_test))
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
                seed=seed,
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
                    "test_acc": 100 * _accuracy(teacher, Xte, yte, amp),
                    "val_acc": 100 * tr.best_val_acc,
                    "epochs": tr.epochs_run,
                    "best_epoch": tr.best_epoch,
                    "seconds": tr.seconds,
                }
            )
            soft = torch.sigmoid(_predict_logits(teacher, Xtr, amp=amp) / cfg.temperature)
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
                        seed=seed,
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
                            "test_acc": 100 * _accuracy(student, Xte, yte, amp),
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
    beside the paper's numbers (PAPERS.md A.5); ``soft_minus_hard`` is ours."""
    sel = df[(df["model"] == "teacher") | (df["width"] == width)]
    g = sel.groupby(["noise_var", "model"])["test_acc"].agg(["mean", "std", "count"]).unstack("model")
    out = pd.DataFrame(index=g.index)
    for m in ("teacher", "hard", "soft"):
        if ("mean", m) in g.columns:
            out[m] = g[("mean", m)]
            out[f"{m}_std"] = g[("std", m)]
    out["runs"] = g[("count", "hard")] if ("count", "hard") in g.columns else np.nan
    out["soft_minus_hard"] = out.get("soft", np.nan) - out.get("hard", np.nan)
    paper = PAPER_DEEP.set_index("noise_var")
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
    """Accuracy vs noise variance (teacher, hard, soft; error bars = std over runs), paper dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    colors = {"teacher": "k", "hard": "tab:red", "soft": "tab:blue"}
    for m, c in colors.items():
        if m in table:
            ax.errorbar(
                table["noise_var"],
                table[m],
                yerr=table[f"{m}_std"].fillna(0),
                color=c,
                marker="o",
                capsize=3,
                label=f"{m} (kdcore)",
            )
        ax.plot(PAPER_DEEP["noise_var"], PAPER_DEEP[m], color=c, ls="--", marker="x", alpha=0.6, label=f"{m} (paper)")
    ax.set_xscale("log")
    ax.set_xlabel("pixel noise variance")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("CIFAR-10 (JPEG q75) cat vs dog: VGG 8+3 teacher, VGG 2+3 student")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_deep_width(table: pd.DataFrame, path: str | os.PathLike | None = None):
    """Student accuracy vs width multiplier (log x), hard and soft, one line per noise level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for nv, sub in table.groupby("noise_var"):
        for m, ls in (("hard", "--"), ("soft", "-")):
            ax.errorbar(
                sub["width"],
                sub[m],
                yerr=sub[f"{m}_std"].fillna(0),
                ls=ls,
                marker="o",
                capsize=3,
                label=f"{m}, noise var {nv:g}",
            )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("student width multiplier (channels and FC units)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("VGG 2+3 student: soft vs hard labels by width")
    ax.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
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


def main(argv=None) -> None:  # python -m kdcore.distill.deep --profile quick --out results/deep
    import argparse

    p = argparse.ArgumentParser(description="Experiment 2: soft vs hard labels, VGG on noisy CIFAR-10 cat/dog")
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
