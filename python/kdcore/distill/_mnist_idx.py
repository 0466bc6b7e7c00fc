"""Private MNIST reader for the gamma check: reads the IDX .gz files in place
(never copies them). The full loaders live in ``kdcore.distill.datasets``
(the realdata helper's module); this is the minimum the margin check needs."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {int(np.prod(shape))} values, found {data.size}")
    return data.reshape(shape)


def load_mnist_pair(data_home, a: int, b: int, n: int = 600, split: str = "train", random_state=0):
    """n images of digits a (y = -1) and b (y = +1), n/2 each, centred (mean image
    removed) and scaled to unit norm; returns X (n, 784) float64, y (n,)."""
    root = Path(data_home) / "mnist"
    prefix = "train" if split == "train" else "t10k"
    imgs = _read_idx(root / f"{prefix}-images-idx3-ubyte.gz").reshape(-1, 784)
    labels = _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(random_state)
    ia = rng.choice(np.flatnonzero(labels == a), n // 2, replace=False)
    ib = rng.choice(np.flatnonzero(labels == b), n - n // 2, replace=False)
    idx = np.concatenate([ia, ib])
    X = imgs[idx].astype(np.float64) / 255.0
    X -= X.mean(axis=0)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.concatenate([-np.ones(ia.size), np.ones(ib.size)])
    return X, y
