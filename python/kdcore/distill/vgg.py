"""VGG-style teacher and student networks and their training loop, in torch.

The networks of the deep validation experiment of the distillation paper
(docs/maths.md A.5); the experiment itself (noise levels, runs, tables, figures)
is :mod:`kdcore.experiments.deep`. torch is imported only inside the functions.

Architectures (one logit; binary cross-entropy on it):

* teacher ``VGG 8+3`` at width 1: conv channels 32-32-P-64-64-P-128-128-P-256-256-P
  (3x3, padding 1, BatchNorm, ReLU; P = 2x2 max-pool), then FC 1024-256-128-1
  with dropout 0.3. ``width`` scales every channel count.
* student ``VGG 2+3`` at width 1: conv 16-P-32-P (3x3, BatchNorm, ReLU), then
  FC 2048-128-64-1 with dropout 0.3 (a quarter of the teacher's first block, so
  it is clearly weaker than the teacher). ``width`` scales the conv channels and
  the two hidden FC layers.

The channel counts are ours (the paper names only the depths).

Training (:func:`train_net`): Adam with L2 (``weight_decay``, added to the
gradient: L2, not AdamW's decoupled decay), early stopping on validation
accuracy with the best weights restored. On CUDA: mixed precision with a
gradient scaler; data moved with :func:`to_device` (pinned-memory copy). On the
CPU, :class:`TorchThreads` sets torch's thread count for a block so training
never oversubscribes the cores (the previous count is restored).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from .._check import check_int

__all__ = [
    "make_teacher",
    "make_student",
    "train_net",
    "TrainResult",
    "resolve_device",
    "TorchThreads",
    "default_threads",
    "to_device",
    "predict_logits",
    "accuracy",
]


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


def resolve_device(device: str):
    """The ``torch.device`` for ``"auto"`` (CUDA when torch sees one, else the CPU), ``"cpu"`` or ``"cuda[:i]"``."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device")
    return torch.device(device)


class TorchThreads:
    """Set torch's intra-op thread count inside the block (``n`` None or 0: unchanged), restore it after."""

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


def default_threads() -> int:
    """``KDCORE_NUM_THREADS`` when set to a positive int, else the cores available to the process."""
    env = os.environ.get("KDCORE_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def to_device(arr: np.ndarray, device):
    """``arr`` as a torch tensor on ``device`` (through pinned memory for CUDA)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(arr))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t


# ----------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    """What :func:`train_net` returns: the model (best weights restored), its best validation
    accuracy (0-1), epochs run, the epoch of the best weights, seconds, and one dict per epoch."""

    model: object
    best_val_acc: float
    epochs_run: int
    best_epoch: int
    seconds: float
    history: list = field(default_factory=list)


def predict_logits(model, X, batch: int = 1024, amp: bool = False):
    """The model's logits on ``X`` (eval mode, no gradient), ``batch`` rows at a time."""
    import torch

    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, X.shape[0], batch):
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=amp):
                outs.append(model(X[i : i + batch]).float().squeeze(1))
    return torch.cat(outs) if outs else torch.zeros(0, device=X.device)


def accuracy(model, X, y, amp: bool = False) -> float:
    """Share of rows whose logit sign matches the 0/1 label ``y``."""
    logits = predict_logits(model, X, amp=amp)
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
    random_state: int = 0,
    amp: bool = False,
    progress: bool = False,
    desc: str = "epochs",
) -> TrainResult:
    """Train ``model`` (one logit) with Adam + L2 and early stopping on validation accuracy.

    ``targets`` are float probabilities in [0, 1] on the model's device: 0/1 for
    hard labels, ``sigmoid(z / T)`` for a teacher's soft labels. The loss is
    ``T^2 * BCE(sigmoid(s / T), targets)`` for student logit ``s`` (Hinton's
    scaling; for T = 1 it is the plain binary cross-entropy, whose gradient in
    ``s`` is ``sigmoid(s) - target`` as in docs/maths.md A.2). The weights with the
    best validation accuracy are restored at the end. ``random_state`` seeds the batch order.
    """
    import copy

    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    max_epochs = check_int(max_epochs, "max_epochs", minimum=1)
    patience = check_int(patience, "patience", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    random_state = check_int(random_state, "random_state")
    device = X_train.device
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    gen = torch.Generator().manual_seed(random_state)
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
        train_loss = float(total) / n
        val = accuracy(model, X_val, y_val, amp)
        history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_acc": val})
        bar.set_postfix(loss=f"{train_loss:.3f}", val=f"{val:.3f}")
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
