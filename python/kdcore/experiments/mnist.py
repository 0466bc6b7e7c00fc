"""Experiment 1 of the KD paper (docs/maths.md A.5): the MNIST two-layer table, and its regime.

Task: MNIST with ``y = +1`` when the digit is > 4; ``"full"`` = all digits,
``"reduced"`` = digits 1, 7, 4, 9 removed. Rows are centred (training mean) and
scaled to unit norm (the theory's ||x|| <= 1). Every network is the paper's
two-layer ReLU net f = (1/sqrt m) sum_j a_j relu(W_j . x) with symmetric
initialisation, trained by full-batch projected GD with the kdcore engine
(:func:`kdcore.distill.train_many`; only W is trained).

* Teacher: m = 512, hard labels, no projection.
* Label sources for the students: ``hard`` (logistic loss on y), ``T1``, ``T2``,
  ``T4``, ``T8`` (KL to p = sigmoid(teacher logit / T)) and ``kernel`` (KL to
  p = sigmoid(z) with z the kernel-limit teacher logit of docs/maths.md A.4:
  :func:`kdcore.distill.margin_gamma` (``method="l2"``: the q of the gamma_2
  QP) fitted on ``gamma_n`` training rows, then
  :func:`kdcore.distill.teacher_logits` with ``kernel_z`` Monte Carlo draws).
* Projection radius B of ||W_j - W_j(0)|| <= B / sqrt(m): the theory's B = 1
  up to ``None`` (no projection).
* The same learning-rate grid, the same step budget and the same validation
  split for every arm: for each (variant, m, label source, B, budget) the step
  size with the best mean validation accuracy over seeds is kept and its test
  accuracy reported (mean and standard deviation over seeds). "Averaged" is
  the test accuracy averaged over the evaluation checkpoints (evenly spaced,
  ``eval_every`` steps apart) up to the budget: the iteration average of A.3,
  sampled.

Functions (each takes ``profile="tiny"|"quick"|"medium"|"full"``; the tables are
pandas DataFrames; ``plot_*`` take those tables):

* :func:`mnist_table` -- m = 8, 6, 4, hard vs soft vs kernel, beside the paper.
* :func:`mnist_width_sweep` -- m = 2 ... 64; :func:`plot_mnist_width`.
* :func:`mnist_regime_sweep` -- B x label softness x step budget at fixed m;
  :func:`plot_mnist_regime`.
* :func:`mnist_gamma` -- gamma_2 of each variant on a subsample.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..distill import margin_gamma, teacher_logits, train_many
from ..distill.datasets import mnist_binary
from .paper import MNIST_TABLE
from .profiles import check_profile

__all__ = [
    "MnistConfig",
    "PAPER_MNIST",
    "mnist_profile",
    "prepare_mnist",
    "label_stats",
    "run_mnist_grid",
    "select_by_validation",
    "mnist_table",
    "mnist_width_sweep",
    "mnist_regime_sweep",
    "mnist_gamma",
    "plot_mnist_width",
    "plot_mnist_regime",
]

#: The paper's table (docs/maths.md A.5, Experiment 1) in the columns our tables merge on.
PAPER_MNIST = MNIST_TABLE.rename(columns={"teacher": "paper_teacher", "hard": "paper_hard", "soft": "paper_soft"})

LABELS = ("hard", "T1", "T2", "T4", "T8", "kernel")
_EPS = 1e-6  # soft labels are clipped into [eps, 1 - eps]: the engine needs them strictly inside (0, 1)


@dataclass(frozen=True)
class MnistConfig:
    """One profile of Experiment 1."""

    variants: tuple = ("full", "reduced")
    n_train: int | None = None  # training subsample per variant (None = all)
    n_val: int = 5000  # validation rows taken from the training split
    n_test: int | None = None  # test subsample (None = all)
    teacher_m: int = 512
    teacher_steps: int = 2000
    teacher_lr: float = 256.0
    widths: tuple = (8, 6, 4)
    width_sweep: tuple = (2, 4, 8, 16, 32, 64)
    width_labels: tuple = ("hard", "T1", "kernel")
    width_radii: tuple = (1.0, None)
    table_labels: tuple = ("hard", "T1", "kernel")
    table_radii: tuple = (1.0, None)
    regime_m: int = 4
    regime_radii: tuple = (1.0, 4.0, 16.0, None)
    regime_labels: tuple = LABELS
    lrs: tuple = (2.0, 8.0, 32.0, 128.0, 512.0)
    seeds: tuple = (0, 1, 2, 3, 4)
    n_steps: int = 2000
    eval_every: int = 100
    gamma_n: int = 600  # subsample for gamma_2 and the kernel teacher's q
    kernel_z: int = 2000  # Monte Carlo draws of z for the kernel teacher's logits
    dtype: str = "float64"
    seed: int = 0  # data subsampling and the kernel teacher


def mnist_profile(profile: str = "quick") -> MnistConfig:
    """The :class:`MnistConfig` of ``"tiny"``, ``"quick"``, ``"medium"`` (the paper's steps,
    seeds and lr grid on 5,000 training images per variant) or ``"full"``."""
    check_profile(profile, extra=("medium",))
    if profile == "tiny":
        return MnistConfig(
            n_train=300,
            n_val=200,
            n_test=500,
            teacher_m=64,
            teacher_steps=60,
            teacher_lr=64.0,
            widths=(4,),
            width_sweep=(2, 8),
            width_labels=("hard", "T1"),
            table_labels=("hard", "T1", "kernel"),
            table_radii=(1.0,),
            regime_radii=(1.0, None),
            regime_labels=("hard", "T4"),
            width_radii=(1.0,),
            lrs=(16.0, 64.0),
            seeds=(0,),
            n_steps=60,
            eval_every=20,
            gamma_n=100,
            kernel_z=200,
            dtype="float32",
        )
    if profile == "quick":
        return MnistConfig(
            n_train=500,
            n_val=400,
            n_test=2000,
            teacher_m=512,
            teacher_steps=100,
            teacher_lr=256.0,
            widths=(8, 6, 4),
            width_sweep=(2, 4, 8, 16, 32),
            width_labels=("hard", "T1", "kernel"),
            width_radii=(1.0,),
            table_labels=("hard", "T1", "kernel"),
            table_radii=(1.0, None),
            regime_radii=(1.0, 4.0, None),
            regime_labels=("hard", "T1", "T4", "kernel"),
            lrs=(4.0, 16.0, 64.0, 256.0),
            seeds=(0, 1),
            n_steps=200,
            eval_every=25,
            gamma_n=400,
            kernel_z=1000,
            dtype="float32",
        )
    if profile == "medium":
        # the paper's protocol (2,000 steps, >= 5 seeds, the full lr grid, 512-neuron teacher
        # trained 2,000 steps, all test images) on a 5,000-image training subsample per
        # variant, in float32: what 2 CPU cores can do in well under an hour (table and gamma)
        return MnistConfig(n_train=5000, n_val=1000, n_test=None, dtype="float32")
    return MnistConfig()


# ----------------------------------------------------------------------------- data + teachers

_PREP_CACHE: dict = {}


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def prepare_mnist(
    variant: str, cfg: MnistConfig, *, data_home=None, backend: str = "auto", n_threads: int = 0, progress: bool = False
) -> dict:
    """Data, teacher and every label source for one variant (cached per process).

    Returns a dict with ``X, y`` (train), ``X_val, y_val``, ``X_test, y_test``,
    ``soft`` (label source -> train targets in (0, 1)), ``teacher_test_acc``,
    ``teacher_logits`` (train), ``gamma2``, ``kernel_test_acc``.
    """

    key = (
        variant,
        cfg.n_train,
        cfg.n_val,
        cfg.n_test,
        cfg.teacher_m,
        cfg.teacher_steps,
        cfg.teacher_lr,
        cfg.gamma_n,
        cfg.kernel_z,
        cfg.dtype,
        cfg.seed,
        str(data_home),
    )
    if key in _PREP_CACHE:
        return _PREP_CACHE[key]
    dt = np.dtype(cfg.dtype)
    n_need = None if cfg.n_train is None else cfg.n_train + cfg.n_val
    X, y = mnist_binary(
        variant, "train", center=True, unit_norm=True, n_max=n_need, seed=cfg.seed, dtype=dt, data_home=data_home
    )
    perm = np.random.default_rng(cfg.seed + 1).permutation(X.shape[0])
    va, tr = perm[: cfg.n_val], perm[cfg.n_val :]
    X_val, y_val, X, y = X[va], y[va], X[tr], y[tr]
    X_test, y_test = mnist_binary(
        variant, "test", center=True, unit_norm=True, n_max=cfg.n_test, seed=cfg.seed, dtype=dt, data_home=data_home
    )
    t0 = time.perf_counter()
    (th,) = train_many(
        [{"m": cfg.teacher_m, "loss": "hard", "lr": cfg.teacher_lr, "radius": None, "random_state": 12345}],
        X,
        y,
        n_steps=cfg.teacher_steps,
        backend=backend,
        n_threads=n_threads,
    )
    teacher = th.model
    z_tr = teacher.decision_function(X)
    teacher_test_acc = 100 * float(np.mean(teacher.predict(X_test) == y_test))
    sub = np.random.default_rng(cfg.seed + 2).choice(X.shape[0], size=min(cfg.gamma_n, X.shape[0]), replace=False)
    mg = margin_gamma(X[sub], y[sub], method="l2")
    g2 = mg.gamma
    zk = teacher_logits(mg, X, n_samples=cfg.kernel_z, random_state=cfg.seed + 3)
    zk_test = teacher_logits(mg, X_test, n_samples=cfg.kernel_z, random_state=cfg.seed + 3)  # same draws of z
    kernel_test_acc = 100 * float(np.mean(np.where(zk_test > 0, 1, -1) == y_test))
    soft = {f"T{T}": np.clip(_sigmoid(z_tr / T), _EPS, 1 - _EPS) for T in (1, 2, 4, 8)}
    soft["kernel"] = np.clip(_sigmoid(zk), _EPS, 1 - _EPS)
    out = dict(
        X=X,
        y=y,
        X_val=X_val,
        y_val=y_val,
        X_test=X_test,
        y_test=y_test,
        soft=soft,
        teacher_logits=z_tr,
        teacher_test_acc=teacher_test_acc,
        teacher_train_acc=100 * float(np.mean(np.sign(z_tr) == y)),
        gamma2=g2,
        kernel_test_acc=kernel_test_acc,
        kernel_logits=zk,
        seconds=time.perf_counter() - t0,
    )
    if progress:
        print(
            f"[mnist {variant}] n={X.shape[0]} teacher test acc {teacher_test_acc:.2f}% "
            f"(kernel teacher {kernel_test_acc:.2f}%), gamma_2 = {g2:.4f}, {out['seconds']:.0f} s",
            file=sys.stderr,
        )
    _PREP_CACHE[key] = out
    return out


def label_stats(prep: dict) -> pd.DataFrame:
    """How soft each label source is: mean |p - 1/2| and mean min(p, 1 - p), and its training accuracy."""
    rows = []
    for k, p in prep["soft"].items():
        rows.append(
            {
                "label": k,
                "mean_abs_p_minus_half": float(np.mean(np.abs(p - 0.5))),
                "mean_distance_to_01": float(np.mean(np.minimum(p, 1 - p))),
                "train_acc": 100 * float(np.mean(np.where(p > 0.5, 1, -1) == prep["y"])),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the grid


def run_mnist_grid(
    variant: str,
    cfg: MnistConfig,
    ms,
    labels,
    radii,
    *,
    data_home=None,
    backend: str = "auto",
    n_threads: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Train every (m, label source, B, lr, seed) network; evaluate at every ``eval_every`` steps.

    Networks are trained together by :func:`kdcore.distill.train_many` in
    chunks of ``eval_every`` steps (projected GD has no state beyond W, so the
    chunks are exactly one run). Returns one row per network and checkpoint:
    ``variant, m, label, radius, lr, seed, step, val_acc, test_acc,
    avg_test_acc`` (running mean of the checkpoints' test accuracy),
    ``avg_train_err`` (exact iteration average of the training error, in %).
    The two arms of a comparison share seeds, hence initialisations.
    """
    from tqdm.auto import tqdm

    prep = prepare_mnist(variant, cfg, data_home=data_home, backend=backend, n_threads=n_threads, progress=progress)
    for lab in labels:
        if lab not in LABELS:
            raise ValueError(f"unknown label source {lab!r}; choose from {LABELS}")
    specs = [(m, lab, B, lr, s) for m in ms for lab in labels for B in radii for lr in cfg.lrs for s in cfg.seeds]
    configs = []
    for m, lab, B, lr, s in specs:
        c = {
            "m": int(m),
            "loss": "hard" if lab == "hard" else "soft",
            "lr": float(lr),
            "radius": B,
            "random_state": 1000 * int(s) + int(m),
        }
        if lab != "hard":
            c["targets"] = prep["soft"][lab]
        configs.append(c)
    n_chunks = max(1, int(math.ceil(cfg.n_steps / cfg.eval_every)))
    rows = []
    acc_sum = np.zeros(len(specs))
    err_sum = np.zeros(len(specs))
    steps_done = 0
    bar = tqdm(range(n_chunks), desc=f"mnist {variant} ({len(specs)} nets)", disable=not progress, leave=False)
    for chunk in bar:
        k = min(cfg.eval_every, cfg.n_steps - steps_done)
        hs = train_many(configs, prep["X"], prep["y"], n_steps=k, backend=backend, n_threads=n_threads)
        for c, h in zip(configs, hs):
            c["model"] = h.model  # keep training the same nets in the next chunk
        steps_done += k
        for i, ((m, lab, B, lr, s), h) in enumerate(zip(specs, hs)):
            err_sum[i] += float(h.error.sum())
            val = 100 * float(np.mean(h.model.predict(prep["X_val"]) == prep["y_val"]))
            test = 100 * float(np.mean(h.model.predict(prep["X_test"]) == prep["y_test"]))
            acc_sum[i] += test
            rows.append(
                {
                    "variant": variant,
                    "m": int(m),
                    "label": lab,
                    "radius": B,
                    "lr": lr,
                    "seed": s,
                    "step": steps_done,
                    "val_acc": val,
                    "test_acc": test,
                    "avg_test_acc": acc_sum[i] / (chunk + 1),
                    "avg_train_err": 100 * err_sum[i] / steps_done,
                    "diverged": not np.all(np.isfinite(h.model.W)),
                }
            )
    bar.close()
    df = pd.DataFrame(rows)
    df["radius"] = df["radius"].astype(object).where(df["radius"].notna(), None)
    return df


def _radius_name(B) -> str:
    return "none" if B is None or (isinstance(B, float) and math.isnan(B)) else f"{B:g}"


def select_by_validation(grid: pd.DataFrame, by=("variant", "m", "label", "radius", "step")) -> pd.DataFrame:
    """For each group of ``by``, keep the lr with the best mean validation accuracy over seeds
    (ties: the smaller lr); return mean and std over seeds of the test accuracies at that lr."""
    g = grid.copy()
    g["radius"] = g["radius"].map(_radius_name)
    keys = list(by)
    per_lr = (
        g.groupby(keys + ["lr"], dropna=False)
        .agg(
            val_acc=("val_acc", "mean"),
            test_acc=("test_acc", "mean"),
            test_std=("test_acc", "std"),
            avg_test_acc=("avg_test_acc", "mean"),
            avg_test_std=("avg_test_acc", "std"),
            avg_train_err=("avg_train_err", "mean"),
            seeds=("seed", "nunique"),
        )
        .reset_index()
    )
    per_lr = per_lr.sort_values(keys + ["val_acc", "lr"], ascending=[True] * len(keys) + [False, True])
    return per_lr.groupby(keys, dropna=False).head(1).reset_index(drop=True)


# ----------------------------------------------------------------------------- experiments


def _cfg(profile, config):
    return config if config is not None else mnist_profile(profile)


def mnist_table(
    profile: str = "quick",
    *,
    config: MnistConfig | None = None,
    data_home=None,
    backend: str = "auto",
    n_threads: int = 0,
    progress: bool | None = None,
) -> pd.DataFrame:
    """The paper's table: m = 8, 6, 4 x (hard, soft at T = 1, kernel-limit soft) x B, both variants.

    One row per (variant, m, B): ``teacher`` (our 512-neuron teacher's test
    accuracy), then for each label source the mean test accuracy at the full
    step budget (``<label>``), its std over seeds (``<label>_std``), the
    iteration-averaged accuracy (``<label>_avg``) and the chosen lr
    (``<label>_lr``); ``soft_minus_hard`` = T1 - hard; ``gamma2``; the
    paper's columns ``paper_teacher, paper_hard, paper_soft``.
    """
    cfg = _cfg(profile, config)
    progress = sys.stderr.isatty() if progress is None else progress
    out = []
    for variant in cfg.variants:
        grid = run_mnist_grid(
            variant,
            cfg,
            cfg.widths,
            cfg.table_labels,
            cfg.table_radii,
            data_home=data_home,
            backend=backend,
            n_threads=n_threads,
            progress=progress,
        )
        sel = select_by_validation(grid[grid["step"] == grid["step"].max()])
        prep = prepare_mnist(variant, cfg, data_home=data_home, backend=backend, n_threads=n_threads)
        for (m, B), sub in sel.groupby(["m", "radius"], sort=False):
            row = {
                "variant": variant,
                "m": m,
                "radius": B,
                "teacher": prep["teacher_test_acc"],
                "kernel_teacher": prep["kernel_test_acc"],
                "gamma2": prep["gamma2"],
                "seeds": int(sub["seeds"].iloc[0]),
                "steps": int(sub["step"].iloc[0]),
            }
            for _, r in sub.iterrows():
                lab = r["label"]
                row[lab] = r["test_acc"]
                row[f"{lab}_std"] = r["test_std"]
                row[f"{lab}_avg"] = r["avg_test_acc"]
                row[f"{lab}_lr"] = r["lr"]
            out.append(row)
    df = pd.DataFrame(out)
    if "T1" in df and "hard" in df:
        df["soft_minus_hard"] = df["T1"] - df["hard"]
    if "kernel" in df and "hard" in df:
        df["kernel_minus_hard"] = df["kernel"] - df["hard"]
    df = df.merge(PAPER_MNIST, on=["variant", "m"], how="left")
    df["paper_soft_minus_hard"] = df["paper_soft"] - df["paper_hard"]
    df = df.sort_values(["variant", "radius", "m"], ascending=[True, True, False]).reset_index(drop=True)
    df.attrs["config"] = asdict(cfg)
    return df


def mnist_width_sweep(
    profile: str = "quick",
    *,
    config: MnistConfig | None = None,
    data_home=None,
    backend: str = "auto",
    n_threads: int = 0,
    progress: bool | None = None,
    radii=None,
) -> pd.DataFrame:
    """Accuracy against the student width m (``config.width_sweep``) for ``width_labels`` and each B.

    Columns: ``variant, m, radius, label, test_acc, test_std, avg_test_acc, lr, seeds``.
    """
    cfg = _cfg(profile, config)
    progress = sys.stderr.isatty() if progress is None else progress
    radii = cfg.width_radii if radii is None else tuple(radii)
    frames = []
    for variant in cfg.variants:
        grid = run_mnist_grid(
            variant,
            cfg,
            cfg.width_sweep,
            cfg.width_labels,
            radii,
            data_home=data_home,
            backend=backend,
            n_threads=n_threads,
            progress=progress,
        )
        frames.append(select_by_validation(grid[grid["step"] == grid["step"].max()]))
    df = pd.concat(frames, ignore_index=True)
    return df[["variant", "m", "radius", "label", "test_acc", "test_std", "avg_test_acc", "lr", "seeds", "step"]]


def mnist_regime_sweep(
    profile: str = "quick",
    *,
    config: MnistConfig | None = None,
    data_home=None,
    backend: str = "auto",
    n_threads: int = 0,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Where does soft beat hard? B x label source x step budget at m = ``config.regime_m``.

    Every checkpoint is a step budget; the lr is chosen on validation for each
    (variant, label, B, budget) separately, from the same grid for every arm.
    Columns: ``variant, m, radius, step, label, test_acc, test_std,
    avg_test_acc, lr, hard`` (the hard arm at the same B and budget) and
    ``gain`` = test_acc - hard (positive: soft labels win), ``gain_se``
    (standard error of the difference of the two means over seeds).
    """
    cfg = _cfg(profile, config)
    progress = sys.stderr.isatty() if progress is None else progress
    labels = tuple(dict.fromkeys(("hard",) + tuple(cfg.regime_labels)))
    frames = []
    for variant in cfg.variants:
        grid = run_mnist_grid(
            variant,
            cfg,
            (cfg.regime_m,),
            labels,
            cfg.regime_radii,
            data_home=data_home,
            backend=backend,
            n_threads=n_threads,
            progress=progress,
        )
        frames.append(select_by_validation(grid))
    sel = pd.concat(frames, ignore_index=True)
    hard = sel[sel["label"] == "hard"][["variant", "m", "radius", "step", "test_acc", "test_std"]]
    hard = hard.rename(columns={"test_acc": "hard", "test_std": "hard_std"})
    df = sel.merge(hard, on=["variant", "m", "radius", "step"], how="left")
    df["gain"] = df["test_acc"] - df["hard"]
    n = df["seeds"].clip(lower=1)
    df["gain_se"] = np.sqrt((df["test_std"].fillna(0) ** 2 + df["hard_std"].fillna(0) ** 2) / n)
    return df[
        [
            "variant",
            "m",
            "radius",
            "step",
            "label",
            "test_acc",
            "test_std",
            "avg_test_acc",
            "lr",
            "hard",
            "gain",
            "gain_se",
            "seeds",
        ]
    ]


def mnist_gamma(
    profile: str = "quick",
    *,
    config: MnistConfig | None = None,
    data_home=None,
    backend: str = "auto",
    n_threads: int = 0,
) -> pd.DataFrame:
    """gamma_2 of each variant (on ``gamma_n`` centred unit-norm training rows), the teachers'
    accuracies and how soft each label source is."""
    cfg = _cfg(profile, config)
    rows = []
    for variant in cfg.variants:
        prep = prepare_mnist(variant, cfg, data_home=data_home, backend=backend, n_threads=n_threads)
        st = label_stats(prep).set_index("label")
        row = {
            "variant": variant,
            "gamma2": prep["gamma2"],
            "gamma_n": min(cfg.gamma_n, prep["X"].shape[0]),
            "teacher_test_acc": prep["teacher_test_acc"],
            "teacher_train_acc": prep["teacher_train_acc"],
            "kernel_teacher_test_acc": prep["kernel_test_acc"],
            "n_train": prep["X"].shape[0],
        }
        for lab in st.index:
            row[f"softness_{lab}"] = st.loc[lab, "mean_distance_to_01"]
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- figures


def plot_mnist_width(table: pd.DataFrame, path=None):
    """Test accuracy against m (log2 axis) for each label source, one panel per variant; B as line style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(table["variant"]))
    fig, axes = plt.subplots(1, len(variants), figsize=(5 * len(variants), 4), squeeze=False)
    styles = {r: ls for r, ls in zip(sorted(table["radius"].unique(), key=str), ("-", "--", ":", "-."))}
    colors = {
        "hard": "tab:red",
        "T1": "tab:blue",
        "T2": "tab:cyan",
        "T4": "tab:purple",
        "T8": "tab:pink",
        "kernel": "tab:green",
    }
    for ax, v in zip(axes[0], variants):
        sub = table[table["variant"] == v]
        for (lab, B), s in sub.groupby(["label", "radius"]):
            s = s.sort_values("m")
            ax.errorbar(
                s["m"],
                s["test_acc"],
                yerr=s["test_std"].fillna(0),
                marker="o",
                capsize=3,
                color=colors.get(lab),
                ls=styles.get(B, "-"),
                label=f"{lab}, B={B}",
            )
        p = PAPER_MNIST[PAPER_MNIST["variant"] == v]
        ax.plot(p["m"], p["paper_hard"], "x", color="tab:red", ms=9, label="paper hard")
        ax.plot(p["m"], p["paper_soft"], "+", color="tab:blue", ms=11, label="paper soft")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("student width m (neurons)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"MNIST {v}: digit > 4")
        ax.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_mnist_regime(table: pd.DataFrame, path=None):
    """Soft-minus-hard gain (points) against the step budget (log x), one panel per (variant, B)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = table[table["label"] != "hard"]
    variants = list(dict.fromkeys(t["variant"]))
    radii = list(dict.fromkeys(t["radius"]))
    fig, axes = plt.subplots(
        len(variants), len(radii), figsize=(3.6 * len(radii), 3.2 * len(variants)), squeeze=False, sharey=True
    )
    for i, v in enumerate(variants):
        for j, B in enumerate(radii):
            ax = axes[i][j]
            sub = t[(t["variant"] == v) & (t["radius"] == B)]
            for lab, s in sub.groupby("label"):
                s = s.sort_values("step")
                ax.errorbar(s["step"], s["gain"], yerr=s["gain_se"], marker="o", capsize=2, label=lab)
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_title(f"{v}, B = {B}, m = {int(sub['m'].iloc[0]) if len(sub) else '?'}", fontsize=9)
            if i == len(variants) - 1:
                ax.set_xlabel("step budget T")
            if j == 0:
                ax.set_ylabel("soft - hard test acc. (points)")
            ax.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def main(argv=None) -> None:  # python -m kdcore.experiments.mnist --profile quick --out results/mnist
    import argparse
    import json
    from pathlib import Path

    p = argparse.ArgumentParser(
        prog="python -m kdcore.experiments.mnist",
        description="Experiment 1: MNIST two-layer soft vs hard table and regime sweep",
    )
    p.add_argument("--profile", default="quick", choices=["tiny", "quick", "medium", "full"])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--backend", default="auto")
    p.add_argument("--out", default="results/mnist")
    p.add_argument("--data-home", default=None)
    p.add_argument("--parts", default="gamma,table,width,regime")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    kw = dict(data_home=a.data_home, backend=a.backend, n_threads=a.threads)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 40)
    parts = a.parts.split(",")
    t0 = time.perf_counter()
    import matplotlib.pyplot as plt

    if "gamma" in parts:
        g = mnist_gamma(a.profile, **kw)
        g.to_json(out / "mnist_gamma.json", orient="records", indent=1)
        print(g.round(4).to_string(index=False), flush=True)
    if "table" in parts:
        t = mnist_table(a.profile, **kw)
        t.to_json(out / "mnist_table.json", orient="records", indent=1)
        print(t.round(2).to_string(index=False), flush=True)
    if "width" in parts:
        w = mnist_width_sweep(a.profile, **kw)
        w.to_json(out / "mnist_width.json", orient="records", indent=1)
        plt.close(plot_mnist_width(w, out / "mnist_width.png"))
        print(w.round(2).to_string(index=False), flush=True)
    if "regime" in parts:
        r = mnist_regime_sweep(a.profile, **kw)
        r.to_json(out / "mnist_regime.json", orient="records", indent=1)
        plt.close(plot_mnist_regime(r, out / "mnist_regime.png"))
        print(r.round(2).to_string(index=False), flush=True)
    (out / "mnist_config.json").write_text(json.dumps(asdict(mnist_profile(a.profile)), indent=1, default=str))
    print(f"[{a.profile}] done in {time.perf_counter() - t0:.0f} s; results in {out}")


if __name__ == "__main__":
    main()
