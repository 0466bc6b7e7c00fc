"""Networks spread over a Dask worker that has a GPU train there with ``torch-cuda``.

Runs only where torch sees a CUDA device (skipped elsewhere, with the reason). A real
``distributed.LocalCluster`` with one worker process is started; the worker reports its
device, trains the networks of ``train_many(..., backend="torch-cuda", executor=client)``
and the histories are compared with the same call run locally on the same GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
distributed = pytest.importorskip("distributed")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device: the GPU-worker check runs on a machine with one", allow_module_level=True)

from _tol import THREADS_F64  # noqa: E402
from kdcore.distill import make_margin_data, train_many  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None, silence_logs=50
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _worker_device() -> str:
    import torch as t

    return t.cuda.get_device_name(0) if t.cuda.is_available() else "cpu"


def test_a_gpu_worker_trains_with_torch_cuda(client):
    devices = client.run(_worker_device)
    assert all(d != "cpu" for d in devices.values()), devices

    X, y, p = make_margin_data(2000, 20, gamma=0.05, random_state=0)
    cfgs = [
        {"m": m, "loss": loss, "lr": 2.0, "radius": rad, "random_state": s}
        for m in (4, 16, 64)
        for s in (0, 1)
        for loss, rad in (("soft", 1.0), ("hard", None))
    ]
    kw = dict(n_steps=200, X_test=X[:300], y_test=y[:300], backend="torch-cuda", dtype=np.float64)
    local = train_many(cfgs, X, y, p, **kw)
    spread = train_many(cfgs, X, y, p, executor=client, **kw)
    assert len(local) == len(spread) == len(cfgs)
    for a, b in zip(local, spread):
        assert a.config == b.config
        for f in ("loss", "error", "test_error"):
            np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=THREADS_F64, atol=THREADS_F64)
        np.testing.assert_allclose(a.model.W, b.model.W, rtol=THREADS_F64, atol=THREADS_F64)
    # the networks learned something on the GPU worker (not a run of zeros)
    assert min(h.final_error for h in spread) < 0.4
    print(f"\nGPU worker: {devices}; {len(cfgs)} networks, final errors {[round(h.final_error, 3) for h in spread]}")
