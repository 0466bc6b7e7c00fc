"""Loaders of kdcore.distill.datasets on the shared MNIST / CIFAR-10 files (skip without them)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from _tol import NOISE_MEAN, NOISE_VAR_REL, UNIT_NORM_F32, ZERO
from kdcore.distill import datasets as ds


def test_cache_dir_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("KDCORE_CACHE", str(tmp_path / "c"))
    assert ds.cache_dir() == tmp_path / "c"
    assert (tmp_path / "c").is_dir()


def test_missing_folder_names_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="looked in: .*nowhere"):
        ds.mnist_binary(data_home=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="looked in"):
        ds.cifar_pair(data_home=tmp_path / "nowhere")


def test_mnist_raw_shapes(data_home):
    Xtr, dtr = ds.load_mnist("train", data_home)
    Xte, dte = ds.load_mnist("test", data_home)
    assert Xtr.shape == (60000, 28, 28) and dtr.shape == (60000,)
    assert Xte.shape == (10000, 28, 28) and dte.shape == (10000,)
    assert Xtr.dtype == np.uint8 and set(np.unique(dte)) == set(range(10))


def test_mnist_binary_labels_and_variants(data_home):
    X, y, d = ds.mnist_binary("full", "test", return_digits=True, data_home=data_home)
    assert X.shape == (10000, 784) and X.dtype == np.float64
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert set(np.unique(y)) == {-1, 1}
    np.testing.assert_array_equal(y == 1, d > 4)
    assert 0.45 < np.mean(y == 1) < 0.55  # MNIST is close to balanced for digit > 4
    Xr, yr, dr = ds.mnist_binary("reduced", "test", return_digits=True, data_home=data_home)
    assert not np.isin(dr, [1, 7, 4, 9]).any()
    assert Xr.shape[0] == int(np.sum(~np.isin(d, [1, 7, 4, 9])))
    assert 0.4 < np.mean(yr == 1) < 0.6


def test_mnist_center_unit_norm_and_subsample(data_home):
    X, y = ds.mnist_binary(
        "reduced", "train", center=True, unit_norm=True, n_max=500, seed=3, dtype=np.float32, data_home=data_home
    )
    assert X.shape == (500, 784) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=UNIT_NORM_F32)
    X2, y2 = ds.mnist_binary(
        "reduced", "train", center=True, unit_norm=True, n_max=500, seed=3, dtype=np.float32, data_home=data_home
    )
    np.testing.assert_array_equal(X, X2)
    Xc, _ = ds.mnist_binary("full", "train", center=True, data_home=data_home)
    assert np.abs(Xc.mean(axis=0)).max() < ZERO  # centred on the training mean


def test_mnist_checksum_mismatch_is_clear(data_home, tmp_path):
    bad = tmp_path / "mnist"
    bad.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copyfile(data_home / "mnist" / name, bad / name)
    raw = bytearray((bad / "t10k-labels-idx1-ubyte.gz").read_bytes())
    raw[100] ^= 0xFF
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checksum mismatch for .*t10k-labels"):
        ds.mnist_binary("full", "test", data_home=tmp_path)


def test_mnist_bad_arguments(data_home):
    with pytest.raises(ValueError, match="variant"):
        ds.mnist_binary("half", data_home=data_home)
    with pytest.raises(ValueError, match="split"):
        ds.mnist_binary("full", "valid", data_home=data_home)
    with pytest.raises(TypeError, match="float dtype"):
        ds.mnist_binary("full", "test", dtype=np.int32, data_home=data_home)


def test_cifar_pair_split_labels_and_noise(data_home):
    clean = ds.cifar_pair("cat", "dog", noise_var=0.0, seed=5, n_max=400, data_home=data_home)
    assert clean.X_train.shape == (320, 3, 32, 32) and clean.X_val.shape[0] == 40 and clean.X_test.shape[0] == 40
    assert clean.X_train.dtype == np.float32 and 0.0 <= clean.X_train.min() and clean.X_train.max() <= 1.0
    assert set(np.unique(clean.y_train)) == {0, 1}
    assert 0.35 < clean.y_train.mean() < 0.65
    a = ds.cifar_pair("cat", "dog", noise_var=0.05, seed=5, n_max=400, data_home=data_home)
    b = ds.cifar_pair("cat", "dog", noise_var=0.05, seed=5, n_max=400, data_home=data_home)
    c = ds.cifar_pair("cat", "dog", noise_var=0.05, seed=6, n_max=400, data_home=data_home)
    np.testing.assert_array_equal(a.X_train, b.X_train)  # deterministic given the seed
    assert not np.array_equal(a.X_train, c.X_train)
    np.testing.assert_array_equal(a.y_train, clean.y_train)  # same seed: same split, only noise added
    noise = np.concatenate([(a.X_train - clean.X_train).ravel(), (a.X_test - clean.X_test).ravel()])
    assert abs(noise.mean()) < NOISE_MEAN
    assert noise.var() == pytest.approx(0.05, rel=NOISE_VAR_REL)


def test_cifar_full_pool_and_errors(data_home):
    full = ds.cifar_pair("cat", "dog", seed=0, data_home=data_home)
    assert (full.X_train.shape[0], full.X_val.shape[0], full.X_test.shape[0]) == (9600, 1200, 1200)
    assert ds.load_cifar_class("cat", "test", data_home).shape == (1000, 32, 32, 3)
    with pytest.raises(ValueError, match="unknown CIFAR-10 class"):
        ds.cifar_pair("cat", "wolf", data_home=data_home)
    with pytest.raises(ValueError, match="noise_var"):
        ds.cifar_pair(noise_var=-1.0, data_home=data_home)
    with pytest.raises(ValueError, match="split"):
        ds.cifar_pair(split=(0.5, 0.5, 0.5), data_home=data_home)
