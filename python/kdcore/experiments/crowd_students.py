"""Learning from crowds: crowd posteriors as the student's soft labels, end to end.

The question: when a set of inputs is labelled by a noisy crowd, does training a small
student on the aggregator's *posteriors* (soft labels) beat training it on majority-vote
labels, by how much, and does it lower the neuron requirement, as the distillation theory
predicts for soft labels (docs/maths.md A.3-A.5)? And do type-aware posteriors
(docs/maths.md B.1-B.6) help further?

Protocol (one *cell* = variant x answers per task x hard share x seed):

1. Data: MNIST "digit > 4" (:func:`kdcore.distill.mnist_binary`; ``full`` or ``reduced``),
   rows centred and scaled to unit norm; a training subsample and a test subsample.
2. Teacher (per variant): the two-layer network of width ``teacher_m`` trained on the true
   labels (hard loss, no projection) by :func:`kdcore.distill.train_many`. Its logit z
   gives the hardness of every training image (-|z|: low margin = hard) and the
   ``teacher`` soft labels sigmoid(z).
3. Crowd: :func:`kdcore.crowd.simulate_real.crowd_on_inputs` gives every training image
   ``answers`` answers from ``n_workers`` workers under the two-type model, the
   ``hard_share`` lowest-margin images in the hard type (skills U(easy_skill) and
   U(hard_skill)); the crowd is drawn with the cell's seed.
4. Label sources: ``truth`` (the true labels), ``mv`` (majority vote, ties broken at
   random), ``ds-map`` (Dawid-Skene's most probable label), ``ds-soft`` (Dawid-Skene
   posteriors), ``typeaware-soft`` (``TypeAware(DawidSkene())`` posteriors), ``teacher``
   (sigmoid of the teacher's logit) and ``crowdlayer`` (:class:`kdcore.distill.crowd_layer.
   CrowdLayer`: the student fitted on the raw answers with per-worker confusions).
5. Students: two-layer ReLU networks of every width in ``widths``, with and without the
   projection radius B, initialised with the cell's seed, trained ``n_steps`` full-batch
   steps with step ``lr`` (the same for every source). Hard labels are trained as soft
   targets in {0, 1}: KL(p || sigmoid f) with p in {0, 1} *is* the logistic loss
   ln(1 + exp(-y f)) (same value, same gradient), so every source goes through one call of
   the engine with the posteriors aligned by task id.
6. Measured: the final test accuracy on the true test labels; per (source, width, B,
   crowd setting) its mean and standard deviation over seeds; the *neuron requirement*: the
   smallest width whose mean test error is at most the target error, the true-label
   student's best mean test error (over widths, same variant and B) plus ``target_slack``.

CIFAR (``cifar=True``: the ``cifar`` variant, in the full and tiny profiles): the same crowd
settings on CIFAR-10 cat (-1) vs dog (+1) (:func:`prepare_cifar`, :func:`run_cifar_cell`).
The VGG 8+3 teacher (:mod:`kdcore.distill.vgg`), trained on the true labels, gives the
hardness (-|z|) and the ``teacher`` soft labels; the VGG 2+3 student, initialised alike for
every source, is trained with Adam on each label source, and as ``crowdlayer``
(:class:`kdcore.distill.crowd_layer.CrowdLayerNet`: the same VGG 2+3 under a per-worker
2 x 2 confusion layer, fitted on the raw answers). Early stopping sees no true label: the
last tenth of the training images is held out and scored on the source's own labels, or, for
``crowdlayer``, on the negative log-likelihood of their answers. On CUDA the VGG networks
train in mixed precision.

Multi-class: every task here is binary, where the one-vs-rest reduction of
:mod:`kdcore.distill.targets` is the binary student itself.

Profiles: ``tiny`` (tests: seconds; MNIST and a 300-image CIFAR smoke run), ``quick`` (CPU,
a few minutes: the ``full`` variant, 800 training images, widths 2-8, answers 1/3/5/9, hard
share 0/0.3/0.6, 2 seeds; no CIFAR: one VGG 2+3 epoch on 8,640 images takes about 10 s on
one CPU thread, so the 84 VGG networks of one seed would not fit), and ``full`` (both MNIST
variants, 10,000 training images, widths 2-64, 5 seeds, and CIFAR on all 12,000 images; for
a GPU with ``device="cuda"``, ``backend="torch-cuda"``). Runs append one JSON line per cell
to ``out`` and skip the cells already there, so a run stopped by ``budget_s`` resumes; a
cell is resumed when the settings it depends on match, so a run may add seeds, crowd
settings or variants to a folder. ``variants=`` runs a subset of the variants and
``shard=(i, k)`` every k-th cell, for k processes on one GPU.

Entry points: :func:`run_crowd_students` (one row per trained network), :func:`tables`,
:func:`compare`, :func:`vgg_table`, :func:`plot_accuracy`, :func:`plot_requirement`,
:func:`plot_cifar_accuracy`, :func:`report_section`;
``python -m kdcore.experiments.crowd_students --profile quick --out DIR`` (``--variants cifar
--seeds 0 --shard 0/4`` and ``--answers``, ``--hard-shares`` pick cells).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "SOURCES",
    "CrowdStudentsConfig",
    "crowd_students_profile",
    "prepare",
    "label_sources",
    "run_cell",
    "prepare_cifar",
    "run_cifar_cell",
    "run_crowd_students",
    "accuracy_table",
    "requirement_table",
    "gap_table",
    "vgg_table",
    "requirement_statements",
    "tables",
    "compare",
    "plot_accuracy",
    "plot_requirement",
    "plot_cifar_accuracy",
    "report_section",
]

SOURCES = ("truth", "mv", "ds-map", "ds-soft", "typeaware-soft", "teacher", "crowdlayer")
SOFT_SOURCES = ("ds-soft", "typeaware-soft", "teacher")


@dataclass(frozen=True)
class CrowdStudentsConfig:
    """One profile of the crowd-students experiment (module docstring)."""

    variants: tuple = ("full",)
    n_train: int = 1000
    n_test: int | None = 2000
    teacher_m: int = 256
    teacher_steps: int = 200
    teacher_lr: float = 256.0
    widths: tuple = (2, 4, 8, 16)
    radii: tuple = (4.0, None)
    crowdlayer_radii: tuple = (None,)
    answers: tuple = (1, 3, 5, 9)
    hard_shares: tuple = (0.0, 0.3, 0.6)
    n_workers: int = 50
    easy_skill: tuple = (0.7, 0.95)
    hard_skill: tuple = (0.5, 0.65)
    sources: tuple = SOURCES
    seeds: tuple = (0, 1)
    n_steps: int = 200
    lr: float = 128.0
    lr_confusion: float = 0.05
    target_slack: float = 0.02
    dtype: str = "float32"
    # the VGG 2+3 student on CIFAR-10 cat (-1) vs dog (+1); off unless cifar=True
    cifar: bool = False
    cifar_n_max: int | None = None  # images of the pooled pair kept (None = all 12,000)
    cifar_teacher_width: float = 1.0
    cifar_teacher_epochs: int = 60
    cifar_teacher_patience: int = 60  # epochs without a better (true-label) validation accuracy
    cifar_epochs: int = 60
    cifar_patience: int = 60  # epochs without a better validation score before a student stops
    cifar_batch: int = 128
    cifar_lr: float = 1e-3
    cifar_lr_confusion: float = 1e-2  # Adam step of CrowdLayer's confusion logits on the VGG student
    cifar_sources: tuple = ("truth", "mv", "ds-map", "ds-soft", "typeaware-soft", "teacher", "crowdlayer")


def crowd_students_profile(profile: str = "quick") -> CrowdStudentsConfig:
    """The configuration of ``"tiny"``, ``"quick"`` or ``"full"``."""
    if profile == "tiny":
        return CrowdStudentsConfig(
            n_train=200,
            n_test=300,
            teacher_m=32,
            teacher_steps=40,
            widths=(2, 8),
            radii=(None,),
            answers=(3,),
            hard_shares=(0.3,),
            n_workers=20,
            seeds=(0,),
            n_steps=30,
            cifar=True,
            cifar_n_max=300,
            cifar_teacher_width=0.25,
            cifar_teacher_epochs=2,
            cifar_epochs=2,
            cifar_patience=2,
            cifar_batch=32,
        )
    if profile == "quick":
        return CrowdStudentsConfig(n_train=800, widths=(2, 4, 8), n_steps=150)
    if profile == "full":
        return CrowdStudentsConfig(
            variants=("full", "reduced"),
            n_train=10000,
            n_test=None,
            teacher_m=512,
            teacher_steps=2000,
            teacher_lr=256.0,
            widths=(2, 4, 8, 16, 32, 64),
            crowdlayer_radii=(4.0, None),
            seeds=(0, 1, 2, 3, 4),
            n_steps=2000,
            cifar=True,
            cifar_teacher_patience=10,
            cifar_epochs=40,
            cifar_patience=10,
        )
    raise ValueError(f"profile must be 'tiny', 'quick' or 'full', got {profile!r}")


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


# ----------------------------------------------------------------------------- data, teacher, crowd
def prepare(variant: str, cfg: CrowdStudentsConfig, *, data_home=None, backend: str = "auto", n_threads: int = 0):
    """Training and test images of one variant, the teacher's logits, hardness and soft labels."""
    from kdcore.distill import mnist_binary, train_many

    dt = np.dtype(cfg.dtype)
    X, y = mnist_binary(
        variant, "train", center=True, unit_norm=True, n_max=cfg.n_train, seed=0, dtype=dt, data_home=data_home
    )
    X_test, y_test = mnist_binary(
        variant, "test", center=True, unit_norm=True, n_max=cfg.n_test, seed=0, dtype=dt, data_home=data_home
    )
    (th,) = train_many(
        [{"m": cfg.teacher_m, "loss": "hard", "lr": cfg.teacher_lr, "radius": None, "random_state": 12345}],
        X,
        y,
        n_steps=cfg.teacher_steps,
        backend=backend,
        n_threads=n_threads,
    )
    z = th.model.decision_function(X)
    return {
        "variant": variant,
        "X": X,
        "y": y.astype(np.int64),
        "X_test": X_test,
        "y_test": y_test.astype(np.int64),
        "task_ids": np.arange(X.shape[0]),
        "teacher_logits": z,
        "hardness": -np.abs(z),
        "teacher_soft": _sigmoid(z),
        "teacher_test_acc": float(np.mean(th.model.predict(X_test) == y_test)),
    }


def label_sources(responses, prep: dict, cfg: CrowdStudentsConfig, seed: int) -> dict:
    """Training targets of every label source but ``crowdlayer``: source -> pandas object
    indexed by task id (Series of -1/+1 labels, or a DataFrame of class posteriors)."""
    from kdcore.crowd import DawidSkene, MajorityVote, TypeAware

    ids = pd.Index(prep["task_ids"], name="task")
    out: dict = {}
    want = set(cfg.sources)
    if "truth" in want:
        out["truth"] = pd.Series(prep["y"], index=ids)
    if "mv" in want:
        out["mv"] = MajorityVote(random_state=seed).fit_predict(responses)
    if want & {"ds-map", "ds-soft"}:
        ds = DawidSkene().fit(responses)
        if "ds-map" in want:
            out["ds-map"] = ds.labels_
        if "ds-soft" in want:
            out["ds-soft"] = ds.probas_
    if "typeaware-soft" in want:
        ta = TypeAware(DawidSkene(), random_state=seed).fit(responses)
        out["typeaware-soft"] = ta.probas_
        out["typeaware-soft"].attrs["split"] = ta.split_kind_  # "hard", "soft" or "none" (the guard kept the plain fit)
    if "teacher" in want:
        out["teacher"] = pd.Series(prep["teacher_soft"], index=ids)
    return out


def _as_p(source_value, ids) -> pd.Series:
    """P(+1) per task: labels -> {0, 1}; posteriors -> the +1 column."""
    from kdcore.distill.targets import hard_targets, soft_targets

    if isinstance(source_value, pd.DataFrame):
        return pd.Series(soft_targets(source_value, ids, positive=1), index=ids)
    if source_value.dtype.kind == "f" and not set(np.unique(source_value)) <= {-1.0, 1.0}:
        return pd.Series(soft_targets(source_value, ids), index=ids)
    return pd.Series((hard_targets(source_value, ids, classes=[-1, 1]) + 1.0) / 2.0, index=ids)


def _draw_crowd(prep: dict, cfg: CrowdStudentsConfig, answers, hard_share, seed):
    """One crowd on the prepared inputs (the two-type model, the hardest ``hard_share`` hard)."""
    from kdcore.crowd.simulate_real import crowd_on_inputs

    return crowd_on_inputs(
        prep["y"],
        prep["hardness"],
        answers_per_task=int(answers),
        hard_share=float(hard_share),
        n_workers=cfg.n_workers,
        easy_skill=cfg.easy_skill,
        hard_skill=cfg.hard_skill,
        task_ids=prep["task_ids"],
        random_state=seed,
    )


def run_cell(
    prep: dict,
    cfg: CrowdStudentsConfig,
    answers: int,
    hard_share: float,
    seed: int,
    *,
    backend: str = "auto",
    device: str = "cpu",
    n_threads: int = 0,
) -> list[dict]:
    """Every student of one crowd draw; one dict per trained network."""
    from kdcore.distill import train_many

    t0 = time.perf_counter()
    sim = _draw_crowd(prep, cfg, answers, hard_share, seed)
    ids = pd.Index(prep["task_ids"], name="task")
    sources = label_sources(sim.responses, prep, cfg, seed)
    targets = {k: _as_p(v, ids) for k, v in sources.items()}
    y = prep["y"]
    base = {"variant": prep["variant"], "answers": int(answers), "hard_share": float(hard_share), "seed": int(seed)}
    label_acc = {k: float(np.mean(np.where(p.to_numpy() >= 0.5, 1, -1) == y)) for k, p in targets.items()}
    # how soft the targets are: mean min(p, 1 - p) (0 for hard labels, 1/2 for coin flips)
    softness = {k: float(np.mean(np.minimum(p.to_numpy(), 1.0 - p.to_numpy()))) for k, p in targets.items()}
    ta_split = sources["typeaware-soft"].attrs.get("split") if "typeaware-soft" in sources else None
    base["typeaware_split"] = ta_split
    configs, keys = [], []
    for src, p in targets.items():
        for m in cfg.widths:
            for B in cfg.radii:
                configs.append(
                    {
                        "m": int(m),
                        "loss": "soft",
                        "lr": cfg.lr,
                        "radius": B,
                        "random_state": 1000 * seed + m,
                        "targets": p,
                    }
                )
                keys.append((src, int(m), B))
    rows = []
    if configs:
        hs = train_many(
            configs,
            pd.DataFrame(prep["X"], index=ids),
            pd.Series(y, index=ids),
            n_steps=cfg.n_steps,
            X_test=prep["X_test"],
            y_test=prep["y_test"],
            backend=backend,
            n_threads=n_threads,
        )
        for (src, m, B), h in zip(keys, hs):
            rows.append(
                {
                    **base,
                    "source": src,
                    "student": "two-layer",
                    "m": m,
                    "radius": B,
                    "test_acc": 1.0 - h.final_test_error,
                    "label_acc": label_acc[src],
                    "label_softness": softness[src],
                }
            )
    if "crowdlayer" in cfg.sources:
        from kdcore.distill.crowd_layer import CrowdLayer

        for m in cfg.widths:
            for B in cfg.crowdlayer_radii:
                cl = CrowdLayer(
                    int(m),
                    n_steps=cfg.n_steps,
                    lr=cfg.lr,
                    radius=B,
                    lr_confusion=cfg.lr_confusion,
                    random_state=1000 * seed + int(m),
                    device=device,
                    n_threads=n_threads,
                ).fit(prep["X"], sim.responses, task_ids=prep["task_ids"])
                rows.append(
                    {
                        **base,
                        "source": "crowdlayer",
                        "student": "two-layer",
                        "m": int(m),
                        "radius": B,
                        "test_acc": float(np.mean(cl.predict(prep["X_test"]) == prep["y_test"])),
                        "label_acc": float(np.mean(cl.predict(prep["X"]) == y)),
                        "label_softness": float(np.mean(np.min(cl.predict_proba(prep["X"]), axis=1))),
                    }
                )
    sec = time.perf_counter() - t0
    for r in rows:
        r["cell_seconds"] = sec
        r["teacher_test_acc"] = prep["teacher_test_acc"]
    return rows


def prepare_cifar(
    cfg: CrowdStudentsConfig, *, data_home=None, device: str = "cpu", n_threads: int = 0, cache=None
) -> dict:
    """CIFAR-10 cat (-1) vs dog (+1) (``cifar_pair``: train/val/test 80/10/10 of the pooled
    images), the VGG 8+3 teacher trained on the true labels (early stopping on the true
    validation labels), its logits, hardness (-|z|) and soft labels on the training images.

    ``cache``: an ``.npz`` path. The teacher's logits are read from it when it holds those of
    the same CIFAR settings, else computed and written there (under a file lock), so parallel
    shards of a run share one teacher rather than each training its own.
    """
    from kdcore.distill.datasets import cifar_pair

    d = cifar_pair("cat", "dog", n_max=cfg.cifar_n_max, seed=0, data_home=data_home)
    tag = json.dumps(_cell_config(cfg, "cifar"), sort_keys=True)
    if cache is None:
        z, zt = _cifar_teacher(cfg, d, device, n_threads)
    else:
        import fcntl

        cache = Path(cache)
        cache.parent.mkdir(parents=True, exist_ok=True)
        with open(cache.with_name(cache.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            got = None
            if cache.is_file():
                with np.load(cache) as f:
                    if str(f["config"]) == tag and f["z"].shape == (d.X_train.shape[0],):
                        got = (f["z"], f["zt"])
            if got is None:
                got = _cifar_teacher(cfg, d, device, n_threads)
                tmp = cache.with_name(cache.name + ".tmp.npz")
                np.savez(tmp, z=got[0], zt=got[1], config=np.array(tag))
                tmp.replace(cache)
            z, zt = got
    y = np.where(d.y_train == 1, 1, -1).astype(np.int64)
    y_test = np.where(d.y_test == 1, 1, -1).astype(np.int64)
    return {
        "variant": "cifar",
        "X": d.X_train,
        "y": y,
        "X_test": d.X_test,
        "y_test": y_test,
        "task_ids": np.arange(d.X_train.shape[0]),
        "teacher_logits": z,
        "hardness": -np.abs(z),
        "teacher_soft": _sigmoid(z),
        "teacher_test_acc": float(np.mean(np.where(zt > 0, 1, -1) == y_test)),
    }


def _cifar_teacher(cfg: CrowdStudentsConfig, d, device: str, n_threads: int):
    """The VGG 8+3 teacher's logits on the training and test images (float64)."""
    import torch

    from kdcore.distill.vgg import TorchThreads, make_teacher, predict_logits, train_net

    dev = torch.device(device)
    amp = dev.type == "cuda"
    with TorchThreads(n_threads or None):
        Xtr = torch.as_tensor(d.X_train, device=dev)
        Xva = torch.as_tensor(d.X_val, device=dev)
        torch.manual_seed(12345)
        teacher = make_teacher(cfg.cifar_teacher_width).to(dev)
        train_net(
            teacher,
            Xtr,
            torch.as_tensor(d.y_train, device=dev).float(),
            Xva,
            torch.as_tensor(d.y_val, device=dev),
            max_epochs=cfg.cifar_teacher_epochs,
            patience=cfg.cifar_teacher_patience,
            batch_size=cfg.cifar_batch,
            lr=cfg.cifar_lr,
            random_state=12345,
            amp=amp,
        )
        z = predict_logits(teacher, Xtr, amp=amp).double().cpu().numpy()
        zt = predict_logits(teacher, torch.as_tensor(d.X_test, device=dev), amp=amp).double().cpu().numpy()
    return z, zt


def run_cifar_cell(
    prep: dict,
    cfg: CrowdStudentsConfig,
    answers: int,
    hard_share: float,
    seed: int,
    *,
    device: str = "cpu",
    n_threads: int = 0,
) -> list[dict]:
    """The VGG 2+3 student on every label source of one crowd draw (one row per source).

    The last 10% of the training images are held out for early stopping, and no true label
    is seen there either: a label source's students are scored on the source's own most
    probable labels of those images; ``crowdlayer`` (:class:`kdcore.distill.crowd_layer.
    CrowdLayerNet` on the same VGG 2+3, same initialisation) on the negative log-likelihood of
    their raw answers, which it never trains on. On CUDA the students train in mixed precision.
    """
    import torch

    from kdcore.distill.vgg import TorchThreads, make_student, predict_logits, train_net

    t0 = time.perf_counter()
    sim = _draw_crowd(prep, cfg, answers, hard_share, seed)
    ids = pd.Index(prep["task_ids"], name="task")
    sub = CrowdStudentsConfig(**{**asdict(cfg), "sources": tuple(s for s in cfg.cifar_sources if s != "crowdlayer")})
    sources = label_sources(sim.responses, prep, sub, seed)
    dev = torch.device(device)
    amp = dev.type == "cuda"
    n = len(ids)
    n_fit = n - max(2, n // 10)
    base = {"variant": "cifar", "answers": int(answers), "hard_share": float(hard_share), "seed": int(seed)}
    base["typeaware_split"] = sources["typeaware-soft"].attrs.get("split") if "typeaware-soft" in sources else None
    rows = []
    with TorchThreads(n_threads or None):
        X = torch.as_tensor(prep["X"], device=dev)
        Xte = torch.as_tensor(prep["X_test"], device=dev)
        for src, val in sources.items():
            p = _as_p(val, ids).to_numpy(copy=True)
            torch.manual_seed(1000 * seed + 7)
            student = make_student().to(dev)
            tr = train_net(
                student,
                X[:n_fit],
                torch.as_tensor(p[:n_fit], dtype=torch.float32, device=dev),
                X[n_fit:],
                torch.as_tensor((p[n_fit:] >= 0.5).astype(np.int64), device=dev),
                max_epochs=cfg.cifar_epochs,
                patience=cfg.cifar_patience,
                batch_size=cfg.cifar_batch,
                lr=cfg.cifar_lr,
                random_state=seed,
                amp=amp,
            )
            f = predict_logits(tr.model, Xte, amp=amp).cpu().numpy()
            rows.append(
                {
                    **base,
                    "source": src,
                    "m": 1,
                    "radius": None,
                    "test_acc": float(np.mean(np.where(f > 0, 1, -1) == prep["y_test"])),
                    "label_acc": float(np.mean(np.where(p >= 0.5, 1, -1) == prep["y"])),
                    "label_softness": float(np.mean(np.minimum(p, 1.0 - p))),
                    "student": "vgg2+3",
                    "epochs": tr.epochs_run,
                    "best_epoch": tr.best_epoch,
                }
            )
        if "crowdlayer" in cfg.cifar_sources:
            from kdcore.distill.crowd_layer import CrowdLayerNet

            torch.manual_seed(1000 * seed + 7)
            cl = CrowdLayerNet(
                make_student(),
                n_epochs=cfg.cifar_epochs,
                patience=cfg.cifar_patience,
                batch_size=cfg.cifar_batch,
                lr=cfg.cifar_lr,
                lr_confusion=cfg.cifar_lr_confusion,
                random_state=seed,
                device=device,
                amp=amp,
            ).fit(X, sim.responses, task_ids=prep["task_ids"], val_tasks=prep["task_ids"][n_fit:])
            proba = cl.predict_proba(X)
            rows.append(
                {
                    **base,
                    "source": "crowdlayer",
                    "m": 1,
                    "radius": None,
                    "test_acc": float(np.mean(cl.predict(Xte) == prep["y_test"])),
                    "label_acc": float(np.mean(cl.classes_[np.argmax(proba, 1)] == prep["y"])),
                    "label_softness": float(np.mean(np.min(proba, axis=1))),
                    "student": "vgg2+3",
                    "epochs": int(cl.loss_history_.size),
                    "best_epoch": cl.best_epoch_,
                }
            )
    sec = time.perf_counter() - t0
    for r in rows:
        r["cell_seconds"] = sec
        r["teacher_test_acc"] = prep["teacher_test_acc"]
    return rows


def _cell_key(variant, answers, hard_share, seed) -> str:
    return f"{variant}|{int(answers)}|{float(hard_share):g}|{int(seed)}"


_GRID = ("variants", "cifar", "seeds", "answers", "hard_shares")  # which cells run, not what a cell computes
_CROWD = ("n_workers", "easy_skill", "hard_skill")


def _cell_config(cfg, variant: str) -> dict:
    """The settings one cell of ``variant`` depends on (a config or its JSON dict): the crowd's and
    that variant's, not the grid's, so a run may add seeds or variants and still resume."""
    d = _jsonable(asdict(cfg) if not isinstance(cfg, dict) else cfg)
    if variant == "cifar":
        return {k: v for k, v in d.items() if k.startswith("cifar_") or k in _CROWD}
    return {k: v for k, v in d.items() if not k.startswith("cifar_") and k not in _GRID}


def _shard_path(path: Path, shard: tuple[int, int]) -> Path:
    i, k = shard
    return path if k == 1 else path.with_name(f"{path.stem}.shard{i}of{k}{path.suffix}")


def run_crowd_students(
    profile: str = "quick",
    *,
    config: CrowdStudentsConfig | None = None,
    data_home=None,
    backend: str = "auto",
    device: str = "cpu",
    n_threads: int = 0,
    out=None,
    budget_s: float | None = None,
    progress: bool = False,
    variants=None,
    shard: tuple[int, int] = (0, 1),
) -> pd.DataFrame:
    """Run every cell of a profile; one row per trained network.

    ``out``: a JSON-lines file; each finished cell is appended as one line and cells already
    in it (or in its shard files ``<stem>.shard<i>of<k>.jsonl`` beside it) are not run again
    (resume); a cell is resumed only when the settings it depends on are those of this
    configuration. The rows of finished cells outside this grid (other seeds, answers or hard
    shares) are returned after the grid's. ``budget_s``: stop starting new cells after that many seconds (the rows of
    finished cells are returned). ``variants``: run only the cells of these variants of the
    profile (``"full"``, ``"reduced"``, ``"cifar"``); the finished cells of the others are
    still returned. ``shard=(i, k)``: run only every k-th cell from the i-th, writing to the
    shard file, so k processes (one GPU, many cores) share a profile; the CIFAR teacher is then
    trained once and read from ``cifar_teacher.npz`` beside ``out``. CIFAR cells are skipped,
    with a message, when the CIFAR-10 data is not found.
    """
    cfg = config if config is not None else crowd_students_profile(profile)
    i_shard, n_shard = (int(v) for v in shard)
    if n_shard < 1 or not 0 <= i_shard < n_shard:
        raise ValueError(f"shard must be (i, k) with 0 <= i < k, got {shard!r}")
    all_variants = (*cfg.variants, "cifar") if cfg.cifar else tuple(cfg.variants)
    if variants is not None:
        variants = (variants,) if isinstance(variants, str) else tuple(variants)
        bad = [v for v in variants if v not in all_variants]
        if bad:
            raise ValueError(f"variants {bad} are not in this profile; it has {list(all_variants)}")
    run_variants = all_variants if variants is None else variants
    done: dict = {}
    path = Path(out) if out is not None else None
    if path is not None:
        want = {v: _cell_config(cfg, v) for v in all_variants}
        files = [path] + sorted(path.parent.glob(f"{path.stem}.shard*of*{path.suffix}"))
        for f in files:
            if not f.is_file():
                continue
            for line in f.read_text().splitlines():
                if not line.strip():
                    continue
                rec = json.loads(line)
                variant = rec["cell"].split("|")[0]
                if variant not in want:
                    continue
                if _cell_config(rec["config"], variant) != want[variant]:
                    raise ValueError(
                        f"{f} holds cells of another configuration ({rec['cell']}); "
                        "give a new out= or the profile it was run with"
                    )
                done[rec["cell"]] = rec["rows"]
        write = _shard_path(path, (i_shard, n_shard))
    t0 = time.perf_counter()
    rows: list = []
    stopped = False
    preps: dict = {}
    skipped: set = set()
    todo = 0  # cells of the variants to run, done or not
    # seeds outermost: a run stopped by the budget has every setting with the first seeds
    for seed in cfg.seeds:
        for variant in all_variants:
            for answers in cfg.answers:
                for hs in cfg.hard_shares:
                    key = _cell_key(variant, answers, hs, seed)
                    if variant in run_variants:  # the shard of a cell does not depend on what is done
                        todo += 1
                    if key in done:
                        rows += done.pop(key)
                        continue
                    if variant not in run_variants or variant in skipped or (todo - 1) % n_shard != i_shard:
                        continue
                    if budget_s is not None and time.perf_counter() - t0 > budget_s:
                        stopped = True
                        continue
                    if variant not in preps:
                        if variant == "cifar":
                            try:
                                preps[variant] = prepare_cifar(
                                    cfg,
                                    data_home=data_home,
                                    device=device,
                                    n_threads=n_threads,
                                    cache=None if path is None else path.parent / "cifar_teacher.npz",
                                )
                            except FileNotFoundError as e:
                                print(f"[crowd students] CIFAR cells skipped: {e}", file=sys.stderr)
                                skipped.add(variant)
                                continue
                        else:
                            preps[variant] = prepare(
                                variant, cfg, data_home=data_home, backend=backend, n_threads=n_threads
                            )
                    if variant == "cifar":
                        cell = run_cifar_cell(
                            preps[variant], cfg, answers, hs, seed, device=device, n_threads=n_threads
                        )
                    else:
                        cell = run_cell(
                            preps[variant], cfg, answers, hs, seed, backend=backend, device=device, n_threads=n_threads
                        )
                    rows += cell
                    if path is not None:
                        write.parent.mkdir(parents=True, exist_ok=True)
                        with write.open("a") as fh:
                            fh.write(json.dumps({"cell": key, "config": _jsonable(asdict(cfg)), "rows": cell}) + "\n")
                    if progress:
                        print(
                            f"[crowd students] {key}: {len(cell)} networks, {cell[0]['cell_seconds']:.1f} s "
                            f"(total {time.perf_counter() - t0:.0f} s)",
                            file=sys.stderr,
                        )
    for cell_rows in done.values():  # finished cells of settings or seeds outside this grid
        rows += cell_rows
    if stopped and progress:
        print(f"[crowd students] budget of {budget_s} s reached; rerun with the same out= to resume", file=sys.stderr)
    df = pd.DataFrame(rows)
    if len(df):
        df["radius"] = df["radius"].astype(object).where(df["radius"].notna(), None)
    df.attrs["config"] = asdict(cfg)
    return df


def _jsonable(d):
    return json.loads(json.dumps(d, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


# ----------------------------------------------------------------------------- tables
def _rname(B) -> str:
    return "none" if B is None or (isinstance(B, float) and np.isnan(B)) else f"{float(B):g}"


def _with_rname(raw: pd.DataFrame) -> pd.DataFrame:
    raw = raw.copy()
    raw["B"] = [_rname(b) for b in raw["radius"]]
    return raw


def accuracy_table(raw: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy (%) mean and std over seeds per (variant, B, answers, hard share, source, width)."""
    raw = _with_rname(raw)
    keys = ["variant", "B", "answers", "hard_share", "source", "m"]
    g = raw.groupby(keys, sort=True)
    t = g["test_acc"].agg(["mean", "std", "count"]).reset_index()
    t["mean"] *= 100
    t["std"] = (t["std"] * 100).fillna(0.0)
    t["label_acc"] = 100 * g["label_acc"].mean().to_numpy()
    t["label_softness"] = g["label_softness"].mean().to_numpy()
    return t.rename(columns={"mean": "test_acc", "std": "test_acc_std", "count": "n_seeds"})


def requirement_table(raw: pd.DataFrame, target_slack: float | None = None) -> pd.DataFrame:
    """Neuron requirement per (variant, B, answers, hard share, source): the smallest width
    whose mean test error is at most the target (the true-label student's best mean test
    error over widths, same variant and B, plus ``target_slack``); NaN when no width does."""
    if target_slack is None:
        target_slack = float(raw.attrs.get("config", {}).get("target_slack", 0.02))
    acc = accuracy_table(raw)
    acc = acc[acc["variant"] != "cifar"].copy()  # the VGG student has one size: no width to require
    acc["err"] = 1.0 - acc["test_acc"] / 100
    truth = acc[acc["source"] == "truth"].groupby(["variant", "B"])["err"].min().to_dict()
    rows = []
    for (variant, B, answers, hs, src), g in acc.groupby(["variant", "B", "answers", "hard_share", "source"]):
        if (variant, B) not in truth:
            continue
        target = float(truth[(variant, B)]) + target_slack
        ok = g[g["err"] <= target]["m"]
        rows.append(
            {
                "variant": variant,
                "B": B,
                "answers": answers,
                "hard_share": hs,
                "source": src,
                "target_err": 100 * target,
                "neurons": float(ok.min()) if len(ok) else np.nan,
                "max_width": int(g["m"].max()),
            }
        )
    return pd.DataFrame(rows)


def gap_table(raw: pd.DataFrame) -> pd.DataFrame:
    """Soft crowd posteriors against majority vote, per (variant, B, answers, hard share): test
    accuracy gap in points, averaged over widths, at the smallest width, and the best over widths."""
    acc = accuracy_table(raw)
    piv = acc.pivot_table(index=["variant", "B", "answers", "hard_share", "m"], columns="source", values="test_acc")
    rows = []
    for (variant, B, answers, hs), g in piv.groupby(level=[0, 1, 2, 3]):
        if "mv" not in g:
            continue
        row = {"variant": variant, "B": B, "answers": answers, "hard_share": hs}
        for src in ("ds-soft", "typeaware-soft", "ds-map", "crowdlayer", "teacher", "truth"):
            if src in g:
                d = (g[src] - g["mv"]).to_numpy()
                row[f"{src} - mv (mean over m)"] = float(np.mean(d))
                row[f"{src} - mv (smallest m)"] = float(d[0])
        if "typeaware_split" in raw:
            sel = (raw["variant"] == variant) & (raw["answers"] == answers) & (raw["hard_share"] == hs)
            kinds = raw.loc[sel, "typeaware_split"].dropna().astype(str)
            row["typeaware split"] = "/".join(sorted(set(kinds))) if len(kinds) else ""
        rows.append(row)
    return pd.DataFrame(rows)


def requirement_statements(req: pd.DataFrame) -> list[str]:
    """Plain-words comparison of the neuron requirement of soft posteriors and majority vote."""
    out: list[str] = []
    if req.empty or "mv" not in set(req["source"]):
        return out
    key = ["variant", "B", "answers", "hard_share"]
    req = req.assign(n_=req["neurons"].fillna(float("inf")))  # not reached -> inf; not run -> absent
    piv = req.pivot_table(index=key, columns="source", values="n_")
    for src in ("ds-soft", "typeaware-soft", "crowdlayer", "teacher", "truth"):
        if src not in piv:
            continue
        both = piv[[src, "mv"]].dropna()
        a, b = both[src], both["mv"]
        out.append(
            f"neuron requirement of {src} against majority vote over the {len(both)} settings both ran: lower in "
            f"{int((a < b).sum())}, equal in {int((a == b).sum())}, higher in {int((a > b).sum())}; {src} reaches "
            f"the target in {int(np.isfinite(a).sum())} of them, majority vote in {int(np.isfinite(b).sum())}."
        )
    return out


def tables(raw: pd.DataFrame) -> dict:
    """The report's tables: the gap table first (the question), then accuracy and requirement."""
    gap, req = gap_table(raw), requirement_table(raw)
    gap.attrs["requirement_statements"] = requirement_statements(req)  # read by compare()
    out = {
        "Soft crowd posteriors against majority vote (test accuracy gap, points)": gap,
        "Test accuracy (%) per label source, width and crowd setting (mean and std over seeds)": accuracy_table(raw),
        "Neuron requirement per label source (two-layer students)": req,
    }
    vgg = vgg_table(raw)
    if not vgg.empty:
        out["VGG 2+3 student on CIFAR-10 cat vs dog: test accuracy (%) per label source (mean ± std over seeds)"] = vgg
    return out


def _gap_statements(gap: pd.DataFrame, sources, who: str, over: str, with_B: bool = True) -> list[str]:
    out = []
    for src in sources:
        c = f"{src} - mv (mean over m)"
        if c not in gap or gap[c].isna().all():
            continue
        g = gap[gap[c].notna()]
        wins = int((g[c] > 0).sum())
        best = g.iloc[int(np.argmax(g[c].to_numpy()))]
        worst = g.iloc[int(np.argmin(g[c].to_numpy()))]
        label = "posteriors" if src.endswith("-soft") else "(trained on the raw answers)" if src == "crowdlayer" else ""
        out.append(
            f"{who}{src} {label + ' ' if label else ''}beat majority-vote labels in {wins} of {len(g)} settings "
            f"(mean gap {g[c].mean():+.2f} points{over}); largest at {int(best['answers'])} answers "
            f"per task, hard share {best['hard_share']:g}{f', B = {best.B}' if with_B else ''} "
            f"({best[c]:+.2f} points); smallest at {int(worst['answers'])} answers, hard share "
            f"{worst['hard_share']:g}{f', B = {worst.B}' if with_B else ''} ({worst[c]:+.2f})."
        )
    return out


def compare(gap: pd.DataFrame):
    """Statements that answer the question from the gap table: (table, statements, headline).

    The two-layer students on MNIST and the VGG 2+3 student on CIFAR-10 (``variant == "cifar"``)
    are stated apart."""
    col = "ds-soft - mv (mean over m)"
    if col not in gap or gap.empty:
        return gap, ["no majority-vote or Dawid-Skene arm was run"], None
    two_layer, vgg = gap[gap["variant"] != "cifar"], gap[gap["variant"] == "cifar"]
    statements = _gap_statements(two_layer, ("ds-soft", "typeaware-soft"), "", " over widths")
    headline = statements[0] if statements else None
    statements += list(gap.attrs.get("requirement_statements", []))
    statements += _gap_statements(
        vgg,
        ("ds-soft", "typeaware-soft", "crowdlayer", "teacher"),
        "VGG 2+3 student on CIFAR-10 cat vs dog: ",
        "",
        False,
    )
    if headline is None and statements:
        headline = statements[0]
    return long_gaps(gap), statements, headline


def vgg_table(raw: pd.DataFrame) -> pd.DataFrame:
    """The VGG 2+3 student on CIFAR-10 cat vs dog: test accuracy (%, "mean ± std" over seeds) per
    crowd setting (rows) and label source (columns), with the seeds and the teacher's test
    accuracy; empty when no CIFAR cell ran."""
    c = raw[raw["variant"] == "cifar"] if "variant" in raw else raw.iloc[:0]
    if c.empty:
        return pd.DataFrame()
    g = c.groupby(["answers", "hard_share", "source"])["test_acc"]
    t = g.agg(["mean", "std"]).reset_index()
    t["cell"] = [f"{100 * m:.1f} ± {100 * (0.0 if np.isnan(sd) else sd):.1f}" for m, sd in zip(t["mean"], t["std"])]
    piv = t.pivot(index=["answers", "hard_share"], columns="source", values="cell")
    piv = piv[[s for s in SOURCES if s in piv.columns]]
    piv.columns.name = None
    out = piv.reset_index()
    out["seeds"] = c.groupby(["answers", "hard_share"])["seed"].nunique().to_numpy()
    out["teacher test acc."] = f"{100 * float(c['teacher_test_acc'].iloc[0]):.1f}"
    return out


def long_gaps(gap: pd.DataFrame) -> pd.DataFrame:
    """The gap table with one row per crowd setting and label source (columns: the setting, ``source``,
    ``gap, mean over m``, ``gap, smallest m``): eight columns that fit a terminal, where the wide
    form has two per source."""
    suffix = " - mv (mean over m)"
    sources = [c[: -len(suffix)] for c in gap.columns if c.endswith(suffix)]
    keys = [c for c in gap.columns if " - mv (" not in c]
    parts = []
    for src in sources:
        part = gap[keys].copy()
        part.insert(len([k for k in keys if k != "typeaware split"]), "source", src)
        part["gap, mean over m"] = gap[f"{src}{suffix}"]
        part["gap, smallest m"] = gap.get(f"{src} - mv (smallest m)", np.nan)
        parts.append(part)
    if not parts:
        return gap
    out = pd.concat(parts, ignore_index=True)
    order = [k for k in keys if k != "typeaware split"]
    out = out.sort_values(order, kind="stable").reset_index(drop=True)
    return out[order + ["source", "gap, mean over m", "gap, smallest m"] + [k for k in keys if k not in order]]


# ----------------------------------------------------------------------------- figures
_STYLE = {
    "truth": ("black", "-"),
    "mv": ("tab:red", "-"),
    "ds-map": ("tab:orange", "--"),
    "ds-soft": ("tab:blue", "-"),
    "typeaware-soft": ("tab:purple", "-"),
    "teacher": ("tab:green", ":"),
    "crowdlayer": ("tab:brown", "-."),
}


def _main_variant(t: pd.DataFrame) -> str:
    """The variant a figure shows: the first MNIST one (``full`` before ``reduced``), else CIFAR."""
    have = list(dict.fromkeys(t["variant"]))
    for v in ("full", "reduced", "cifar"):
        if v in have:
            return v
    return str(have[0])


def plot_accuracy(raw: pd.DataFrame, path=None, *, widths=None, B: str | None = None):
    """Test accuracy against answers per task, one line per label source (error bars: std over
    seeds); one column per hard share, one row per width (default the smallest and the largest;
    radius ``B``, default no projection)."""
    from . import plotting

    plt = plotting._plt()

    acc = accuracy_table(raw)
    acc = acc[acc["variant"] != "cifar"]  # the VGG student: plot_cifar_accuracy
    if acc.empty:
        return None
    ms = sorted({int(acc["m"].min()), int(acc["m"].max())}) if widths is None else [int(w) for w in widths]
    B = B if B is not None else ("none" if "none" in set(acc["B"]) else str(acc["B"].iloc[0]))
    variant = _main_variant(acc)
    a = acc[(acc["B"] == B) & (acc["variant"] == variant)]
    shares = sorted(a["hard_share"].unique())
    fig, axes = plt.subplots(
        len(ms), len(shares), figsize=(4.2 * len(shares), 3.3 * len(ms)), sharey="row", squeeze=False
    )
    for i, m in enumerate(ms):
        for ax, hs in zip(axes[i], shares):
            for src in [s for s in SOURCES if s in set(a["source"])]:
                s = a[(a["m"] == m) & (a["hard_share"] == hs) & (a["source"] == src)].sort_values("answers")
                _, ls = _STYLE.get(src, (None, "-"))
                ax.errorbar(
                    s["answers"],
                    s["test_acc"],
                    yerr=s["test_acc_std"],
                    label=src,
                    color=plotting.color(src),
                    ls=ls,
                    marker="o",
                    ms=4,
                )
            plotting.chance_line(ax, 50.0, label="chance (50 %)")
            ax.grid(True, alpha=0.3)
            ax.set_title(f"width m = {m}, hard share {hs:g}", fontsize=9)
            ax.set_xticks(sorted(a["answers"].unique()))
            if i == len(ms) - 1:
                ax.set_xlabel("answers per task")
        axes[i][0].set_ylabel(f"test accuracy (%), B = {B}")
    fig.suptitle(f"MNIST {variant} (digit > 4):\nstudents trained on crowd labels", fontsize=10)
    plotting.legend_below(fig, [ax for row in axes for ax in row], ncol=4)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def plot_requirement(raw: pd.DataFrame, path=None, *, B: str | None = None):
    """Neuron requirement against label source, one group of bars per (answers, hard share);
    a bar at the top marks "no width reached the target"."""
    from . import plotting

    plt = plotting._plt()

    req = requirement_table(raw)
    if req.empty:
        return None
    B = B if B is not None else ("none" if "none" in set(req["B"]) else str(req["B"].iloc[0]))
    variant = _main_variant(req)
    r = req[(req["B"] == B) & (req["variant"] == variant)]
    settings = sorted({(a, h) for a, h in zip(r["answers"], r["hard_share"])})
    srcs = [s for s in SOURCES if s in set(r["source"])]
    top = 2 * int(r["max_width"].max())
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(settings) + 2), 3.8))
    w = 0.8 / max(len(srcs), 1)
    for i, src in enumerate(srcs):
        vals = []
        for a, h in settings:
            v = r[(r["answers"] == a) & (r["hard_share"] == h) & (r["source"] == src)]["neurons"]
            vals.append(float(v.iloc[0]) if len(v) and np.isfinite(v.iloc[0]) else top)
        ax.bar(np.arange(len(settings)) + i * w, vals, width=w, label=src, color=plotting.color(src))
    ax.set_yscale("log", base=2)
    ax.set_ylim(1, top * 1.2)
    pow2 = [2**k for k in range(int(np.log2(top // 2)) + 1)]
    ax.set_yticks(sorted(set(pow2) | {int(v) for v in r["neurons"].dropna()}) + [top])
    ax.set_yticklabels([str(int(w)) for w in ax.get_yticks()[:-1]] + ["not reached"])
    ax.set_xticks(np.arange(len(settings)) + 0.4 - w / 2)
    ax.set_xticklabels([f"{a} answers/task\nhard share {h:g}" for a, h in settings], fontsize=7)
    ax.set_ylabel(f"neuron requirement (B = {B})")
    ax.set_title(f"MNIST {variant}: smallest width reaching the target test error", fontsize=9)
    ax.legend(fontsize=7, ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_cifar_accuracy(raw: pd.DataFrame, path=None):
    """The VGG 2+3 student on CIFAR-10 cat vs dog: test accuracy against answers per task, one
    line per label source (error bars: std over seeds), one panel per hard share; None when no
    CIFAR cell ran."""
    from . import plotting

    c = raw[raw["variant"] == "cifar"] if "variant" in raw else raw.iloc[:0]
    if c.empty:
        return None
    plt = plotting._plt()
    t = c.groupby(["hard_share", "source", "answers"])["test_acc"].agg(["mean", "std"]).reset_index()
    t["std"] = t["std"].fillna(0.0)
    shares = sorted(t["hard_share"].unique())
    fig, axes = plt.subplots(1, len(shares), figsize=(4.2 * len(shares), 3.4), sharey=True, squeeze=False)
    for ax, hs in zip(axes[0], shares):
        for src in [s for s in SOURCES if s in set(t["source"])]:
            s = t[(t["hard_share"] == hs) & (t["source"] == src)].sort_values("answers")
            _, ls = _STYLE.get(src, (None, "-"))
            ax.errorbar(
                s["answers"],
                100 * s["mean"],
                yerr=100 * s["std"],
                label=src,
                color=plotting.color(src),
                ls=ls,
                marker="o",
                ms=4,
            )
        plotting.chance_line(ax, 50.0, label="chance (50 %)")
        ax.grid(True, alpha=0.3)
        ax.set_title(f"hard share {hs:g}", fontsize=9)
        ax.set_xticks(sorted(t["answers"].unique()))
        ax.set_xlabel("answers per task")
    axes[0][0].set_ylabel("test accuracy (%)")
    fig.suptitle("CIFAR-10 cat vs dog: the VGG 2+3 student trained on crowd labels", fontsize=10)
    plotting.legend_below(fig, list(axes[0]), ncol=4)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


# ----------------------------------------------------------------------------- report
def _md(df: pd.DataFrame, floatfmt: str = ".2f") -> str:
    cols = list(df.columns)
    out = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, float):
                cells.append("" if np.isnan(v) else format(v, floatfmt))
            else:
                cells.append(str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def report_section(results: pd.DataFrame, out_dir) -> tuple[str, list[Path]]:
    """Markdown of the experiment (the question's answer, the tables) and its figures (the CIFAR one when it ran),
    written under ``out_dir``; returns ``(markdown, [figure paths])``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tabs = tables(results)
    gap_name = next(iter(tabs))
    gap, statements, _ = compare(tabs[gap_name])
    figs = []
    for name, fn in (
        ("crowd_students_accuracy.png", plot_accuracy),
        ("crowd_students_requirement.png", plot_requirement),
        ("crowd_students_cifar_accuracy.png", plot_cifar_accuracy),
    ):
        fig = fn(results, out_dir / name)
        if fig is not None:
            figs.append(out_dir / name)
            import matplotlib.pyplot as plt

            plt.close(fig)
    cfg = results.attrs.get("config", {})
    lines = [
        "## Learning from crowds: crowd posteriors as the student's soft labels",
        "",
        "Students (two-layer ReLU networks) trained on labels from a simulated crowd on MNIST "
        "(digit > 4): the hardest images (lowest teacher margin) are the hard type of the two-type model. "
        f"Widths {list(cfg.get('widths', []))}, radii {list(cfg.get('radii', []))}, seeds {list(cfg.get('seeds', []))}, "
        f"{cfg.get('n_train')} training images, {cfg.get('n_steps')} steps of step size {cfg.get('lr')}.",
        "",
    ]
    if "variant" in results and (results["variant"] == "cifar").any():
        pool = cfg.get("cifar_n_max") or 12000
        lines += [
            "The VGG 2+3 student on CIFAR-10 (JPEG q75) cat vs dog: the same crowds, the hardness from the margin "
            f"of a VGG 8+3 teacher (width {cfg.get('cifar_teacher_width', 1.0)}) trained on the true labels; "
            f"{pool} pooled images split 80/10/10, of the training part the last tenth held out for early stopping "
            "without true labels (each source's own labels; CrowdLayer: the held-out tasks' answers); Adam, "
            f"step {cfg.get('cifar_lr')}, batch {cfg.get('cifar_batch')}, at most {cfg.get('cifar_epochs')} epochs, "
            f"patience {cfg.get('cifar_patience', cfg.get('cifar_epochs'))}. CrowdLayer is the same network and "
            "initialisation with a per-worker 2 x 2 confusion layer, trained on the raw answers.",
            "",
        ]
    lines += [
        *[f"- {s}" for s in statements],
        "",
    ]
    for name, t in tabs.items():
        lines += [f"### {name}", "", _md(gap if name == gap_name else t), ""]
    for p in figs:
        lines += [f"![{p.stem}]({p.name})", ""]
    return "\n".join(lines), figs


def main(argv=None) -> None:  # python -m kdcore.experiments.crowd_students --profile quick --out DIR
    import argparse

    ap = argparse.ArgumentParser(prog="python -m kdcore.experiments.crowd_students")
    ap.add_argument("--profile", default="quick", choices=("tiny", "quick", "full"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n-threads", type=int, default=0)
    ap.add_argument("--budget-s", type=float, default=None)
    ap.add_argument("--data-home", default=None)
    ap.add_argument("--variants", default=None, help="comma-separated subset of the profile's variants to run")
    ap.add_argument("--shard", default="0/1", help="i/k: run every k-th cell from the i-th (k parallel processes)")
    for name in ("seeds", "answers", "hard-shares"):
        ap.add_argument(f"--{name}", default=None, help=f"comma-separated {name} replacing the profile's (same cells)")
    a = ap.parse_args(argv)
    try:
        i_shard, n_shard = (int(v) for v in a.shard.split("/"))
    except ValueError:
        ap.error(f"--shard must be i/k, got {a.shard!r}")
    cfg = crowd_students_profile(a.profile)
    grid: dict[str, Any] = {}
    for name, field, kind in (
        ("seeds", "seeds", int),
        ("answers", "answers", int),
        ("hard_shares", "hard_shares", float),
    ):
        text = getattr(a, name)
        if text is not None:
            try:
                grid[field] = tuple(kind(v) for v in text.split(","))
            except ValueError:
                ap.error(f"--{name.replace('_', '-')} must be comma-separated numbers, got {text!r}")
    if grid:
        from dataclasses import replace

        cfg = replace(cfg, **grid)
    out = Path(a.out)
    t0 = time.perf_counter()
    try:
        raw = run_crowd_students(
            config=cfg,
            data_home=a.data_home,
            backend=a.backend,
            device=a.device,
            n_threads=a.n_threads,
            out=out / "cells.jsonl",
            budget_s=a.budget_s,
            progress=True,
            variants=None if a.variants is None else a.variants.split(","),
            shard=(i_shard, n_shard),
        )
    except ValueError as e:
        ap.error(str(e))
    if n_shard > 1:  # the shards share the folder: the report is written by a run without --shard
        print(f"[crowd students] shard {i_shard}/{n_shard} done ({len(raw)} rows in the folder)", file=sys.stderr)
        return
    if raw.empty:
        print(f"no cell finished yet in {out / 'cells.jsonl'}; nothing to report", file=sys.stderr)
        return
    raw.to_csv(out / "runs.csv", index=False)
    md, figs = report_section(raw, out)
    (out / "crowd_students.md").write_text(md + f"\n({time.perf_counter() - t0:.0f} s, profile {a.profile})\n")
    print(md)


if __name__ == "__main__":
    main()
