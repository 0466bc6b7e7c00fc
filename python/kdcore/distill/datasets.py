"""Real data for the soft- vs hard-label experiments (docs/maths.md A.5).

Both loaders read the shared data *in place* (``data_home`` argument, else
``$KDCORE_DATA``, see :func:`kdcore._data.data_home`) and never write into it or
into the repository. Decoded arrays are cached as ``.npy`` in a user cache
folder: ``$KDCORE_CACHE`` when set, else ``~/.cache/kdcore``.

* :func:`mnist_binary` -- MNIST from the four IDX ``.gz`` files (sha256 checked
  against the values in ``data/README.md`` on every call; a mismatch raises
  ``ValueError`` naming the file). Label ``y = +1`` when the digit is > 4, else
  ``-1`` (the paper's convention, A.1). The ``"reduced"`` variant drops digits
  1, 7, 4 and 9. :func:`mnist_pair` -- two digits against each other (the
  margin check of docs/maths.md A.4), from the same checked reader.
* :func:`cifar_pair` -- two classes of CIFAR-10 (JPEG q75) read from the tarball
  with :mod:`tarfile` and Pillow, decoded once per class and cached, then split
  and corrupted by i.i.d. Gaussian pixel noise (deterministic given ``seed``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._check import check_int
from .._data import data_home as _data_home

__all__ = [
    "MNIST_SHA256",
    "CIFAR_SHA256",
    "CIFAR_CLASSES",
    "cache_dir",
    "load_mnist",
    "mnist_binary",
    "mnist_pair",
    "CifarPair",
    "cifar_pair",
    "load_cifar_class",
]

MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
}
CIFAR_TARBALL = "CIFAR-10-images-jpg.tar.gz"
CIFAR_SHA256 = "1eeb753345949d7d9fecc3c6a53562608d45ba5b6f282cd58053eabc3928ea0b"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
REDUCED_DROP = (1, 7, 4, 9)

_verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, per process


def cache_dir() -> Path:
    """The user cache folder for decoded arrays: ``$KDCORE_CACHE`` or ``~/.cache/kdcore``."""
    env = os.environ.get("KDCORE_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / "kdcore"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _verified[key] = h.hexdigest()
    return _verified[key]


def _content_ok(path: Path, expected: str) -> bool:
    """An MNIST ``.gz`` compressed differently (the public mirror's) but holding the registry's bytes."""
    from .._fetch import REGISTRY, verify_file

    rel = next((k for k, v in REGISTRY.items() if v[1] == expected and v[2] is not None), None)
    if rel is None:
        return False
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    try:
        verify_file(path, rel)
    except ValueError:
        return False
    _verified[key] = expected
    return True


def _verify(path: Path, expected: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"expected data file {path} is missing")
    got = _sha256(path)
    if got != expected and not _content_ok(path, expected):
        raise ValueError(
            f"checksum mismatch for {path}: sha256 {got}, expected {expected} "
            "(corrupted or different file; see data/README.md)"
        )


def _save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, arr)
    os.replace(tmp, path)  # atomic: parallel readers never see half a file


def _read_idx(path: Path) -> np.ndarray:
    """Parse a gzipped IDX file (big-endian header: magic, then one uint32 per dimension)."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {raw[:4]!r})")
    shape = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape}, file holds {data.size} values")
    return data.reshape(shape)


def load_mnist(split: str = "train", data_home=None) -> tuple[np.ndarray, np.ndarray]:
    """Raw MNIST: ``(images uint8 (n, 28, 28), digits uint8 (n,))`` for ``split`` in train/test.

    The ``.gz`` files are sha256-verified on every call (cached per process);
    the decoded arrays are cached as ``.npy`` under :func:`cache_dir`.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = _data_home(data_home, "mnist")
    prefix = "train" if split == "train" else "t10k"
    files = (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz")
    for name in files:
        _verify(folder / name, MNIST_SHA256[name])
    out = []
    for name in files:
        cached = cache_dir() / f"mnist-{MNIST_SHA256[name][:16]}.npy"
        if cached.is_file():
            arr = np.load(cached)
        else:
            arr = _read_idx(folder / name)
            _save_npy(cached, arr)
        out.append(arr)
    images, digits = out
    if images.shape[0] != digits.shape[0]:
        raise ValueError(f"MNIST {split}: {images.shape[0]} images but {digits.shape[0]} labels")
    return images, digits


def mnist_binary(
    variant: str = "full",
    split: str = "train",
    *,
    center: bool = False,
    unit_norm: bool = False,
    n_max: int | None = None,
    seed: int = 0,
    dtype=np.float64,
    return_digits: bool = False,
    data_home=None,
):
    """MNIST as the binary task of the paper: ``y = +1`` if the digit is > 4, else ``-1``.

    Parameters
    ----------
    variant : ``"full"`` (all digits) or ``"reduced"`` (digits 1, 7, 4, 9 removed; easier).
    split : ``"train"`` (60,000 images before the variant filter) or ``"test"`` (10,000).
    center : subtract the mean image of the *training* split of this variant
        (the same vector for both splits, so test data sees no test statistics).
    unit_norm : scale every row to Euclidean norm 1 (the theory assumes ||x|| <= 1).
        Applied after centring. Rows that are all zero stay zero.
    n_max : keep a random subset of at most ``n_max`` rows (drawn with ``seed``),
        taken before the conversion to float so memory stays small.
    dtype : float dtype of ``X`` (pixels scaled to [0, 1] before centring).
    return_digits : also return the original digit of each row.

    Returns
    -------
    X : (n, 784) array of ``dtype``; y : (n,) int64 in {-1, +1}; [digits : (n,) int64].

    Example
    -------
    >>> X, y = mnist_binary("reduced", "test", center=True, unit_norm=True)  # doctest: +SKIP
    """
    if variant not in ("full", "reduced"):
        raise ValueError(f"variant must be 'full' or 'reduced', got {variant!r}")
    if n_max is not None:
        n_max = check_int(n_max, "n_max", minimum=1)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a float dtype, got {dtype}")
    images, digits = load_mnist(split, data_home)
    keep = np.ones(digits.shape[0], bool) if variant == "full" else ~np.isin(digits, REDUCED_DROP)
    idx = np.flatnonzero(keep)
    if n_max is not None and idx.size > n_max:
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=int(n_max), replace=False))
    X = images[idx].reshape(idx.size, -1).astype(dtype) / dtype.type(255.0)
    d = digits[idx].astype(np.int64)
    if center:
        mean = _train_mean(variant, data_home)
        X -= mean.astype(dtype)
    if unit_norm:
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        np.divide(X, norms, out=X, where=norms > 0)
    y = np.where(d > 4, 1, -1).astype(np.int64)
    return (X, y, d) if return_digits else (X, y)


def mnist_pair(
    a: int, b: int, n: int = 600, split: str = "train", random_state: int | None = 0, data_home=None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` MNIST images of digit ``a`` (y = -1) and digit ``b`` (y = +1), half each.

    The rows are drawn without replacement with ``random_state``, scaled to [0, 1],
    centred (the mean of these ``n`` rows removed) and scaled to unit norm.

    Returns
    -------
    X : (n, 784) float64; y : (n,) float64 in {-1, +1} (the ``a`` rows first).
    """
    for name, v in (("a", a), ("b", b)):
        if check_int(v, name) > 9:
            raise ValueError(f"{name} must be a digit 0-9, got {v}")
    if a == b:
        raise ValueError(f"a and b must be different digits, got {a} twice")
    n = check_int(n, "n", minimum=2)
    images, digits = load_mnist(split, data_home)
    imgs = images.reshape(images.shape[0], -1)
    rng = np.random.default_rng(random_state)
    ia = rng.choice(np.flatnonzero(digits == a), n // 2, replace=False)
    ib = rng.choice(np.flatnonzero(digits == b), n - n // 2, replace=False)
    X = imgs[np.concatenate([ia, ib])].astype(np.float64) / 255.0
    X -= X.mean(axis=0)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.concatenate([-np.ones(ia.size), np.ones(ib.size)])
    return X, y


def _train_mean(variant: str, data_home) -> np.ndarray:
    images, digits = load_mnist("train", data_home)
    keep = np.ones(digits.shape[0], bool) if variant == "full" else ~np.isin(digits, REDUCED_DROP)
    return images[keep].reshape(int(keep.sum()), -1).mean(axis=0, dtype=np.float64) / 255.0


# ----------------------------------------------------------------------------- CIFAR-10


def _cifar_cache(split: str, cls: str) -> Path:
    return cache_dir() / f"cifar10jpg-{CIFAR_SHA256[:16]}-{split}-{cls}.npy"


def _decode_cifar(tar_path: Path, wanted: set[tuple[str, str]]) -> None:
    """One pass over the tarball, decoding the (split, class) folders in ``wanted`` into the cache.

    Members are sorted by file name so the row order is the same on every machine.
    """
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover
        raise ImportError("decoding CIFAR-10 JPEGs needs Pillow: pip install pillow") from exc
    found: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {k: [] for k in wanted}
    with tarfile.open(tar_path, "r:gz") as tf:
        for member in tf:
            if not member.isfile() or not member.name.endswith(".jpg"):
                continue
            parts = member.name.split("/")
            if len(parts) < 3 or (parts[-3], parts[-2]) not in found:
                continue
            fh = tf.extractfile(member)
            if fh is None:
                continue
            data = fh.read()
            with Image.open(io.BytesIO(data)) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
            if arr.shape != (32, 32, 3):
                raise ValueError(f"{member.name}: expected a 32x32 RGB image, got shape {arr.shape}")
            found[(parts[-3], parts[-2])].append((parts[-1], arr))
    for (split, cls), items in found.items():
        if not items:
            raise ValueError(f"{tar_path} holds no images under {split}/{cls}/")
        items.sort(key=lambda t: t[0])
        _save_npy(_cifar_cache(split, cls), np.stack([a for _, a in items]))


def load_cifar_class(cls: str, split: str = "train", data_home=None) -> np.ndarray:
    """All images of one CIFAR-10 class: uint8 (n, 32, 32, 3), decoded once and cached."""
    return _load_cifar_classes([cls], split, data_home)[0]


def _load_cifar_classes(classes, split, data_home) -> list[np.ndarray]:
    for cls in classes:
        if cls not in CIFAR_CLASSES:
            raise ValueError(f"unknown CIFAR-10 class {cls!r}; choose from {CIFAR_CLASSES}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    tar_path = _data_home(data_home, "cifar10") / CIFAR_TARBALL
    _verify(tar_path, CIFAR_SHA256)
    missing = {(split, c) for c in classes if not _cifar_cache(split, c).is_file()}
    if missing:
        _decode_cifar(tar_path, missing)
    return [np.load(_cifar_cache(split, c)) for c in classes]


@dataclass
class CifarPair:
    """Noisy two-class CIFAR-10 split. Images are float32 NCHW; labels int64 (0 = first class)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, str]
    noise_var: float
    seed: int


def cifar_pair(
    class_a: str = "cat",
    class_b: str = "dog",
    *,
    noise_var: float = 0.0,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    n_max: int | None = None,
    clip: bool = False,
    data_home=None,
) -> CifarPair:
    """Two CIFAR-10 classes with i.i.d. Gaussian pixel noise, split train/val/test.

    The paper's protocol (A.5, Experiment 2): pool both classes' images (the
    tarball's train and test folders together, 6,000 a class), shuffle with
    ``seed``, split by ``split`` fractions, scale pixels to [0, 1] and add
    N(0, ``noise_var``) noise to every pixel of every split (drawn from
    ``seed``: the same seed gives the same noisy data). ``clip=True`` clips
    back to [0, 1] (off by default: the paper does not say it clips).
    ``n_max`` keeps a random subset of the pool first (quick profiles).

    Example
    -------
    >>> d = cifar_pair("cat", "dog", noise_var=0.1, seed=0)  # doctest: +SKIP
    >>> d.X_train.shape  # doctest: +SKIP
    (9600, 3, 32, 32)
    """
    if class_a == class_b:
        raise ValueError(f"the two classes must differ, got {class_a!r} twice")
    noise_var = float(noise_var)
    if not np.isfinite(noise_var) or noise_var < 0:
        raise ValueError(f"noise_var must be a finite number >= 0, got {noise_var}")
    fr = np.asarray(split, dtype=float)
    if fr.shape != (3,) or np.any(fr <= 0) or abs(fr.sum() - 1.0) > 1e-9:
        raise ValueError(f"split must be three positive fractions summing to 1, got {split!r}")
    imgs, labels = [], []
    for lab, cls in enumerate((class_a, class_b)):
        for part in ("train", "test"):
            arr = _load_cifar_classes([cls], part, data_home)[0]
            imgs.append(arr)
            labels.append(np.full(arr.shape[0], lab, np.int64))
    X = np.concatenate(imgs)
    y = np.concatenate(labels)
    rng = np.random.default_rng(seed)
    order = rng.permutation(X.shape[0])
    if n_max is not None:
        order = order[: check_int(n_max, "n_max", minimum=3)]
    X = X[order].transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    y = y[order]
    if noise_var > 0:
        X += rng.normal(0.0, np.sqrt(noise_var), size=X.shape).astype(np.float32)
        if clip:
            np.clip(X, 0.0, 1.0, out=X)
    n = X.shape[0]
    n_tr = int(round(fr[0] * n))
    n_va = int(round(fr[1] * n))
    sl = (slice(0, n_tr), slice(n_tr, n_tr + n_va), slice(n_tr + n_va, n))
    return CifarPair(
        X[sl[0]], y[sl[0]], X[sl[1]], y[sl[1]], X[sl[2]], y[sl[2]], (class_a, class_b), noise_var, int(seed)
    )
