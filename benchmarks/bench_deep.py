"""One training epoch of the VGG 2+3 student on the CIFAR-10 (JPEG q75) cat/dog pair.

torch on the CPU (thread count = kdcore's default, so 2 on the reference
machine) and on CUDA with mixed precision when a GPU is present (skipped
with the reason otherwise). Data: the paper's 80 % training split (9,600
images, noise variance 0.1), hard labels, batch 128, Adam + L2.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the deep benchmark needs torch")

from kdcore.distill import deep  # noqa: E402
from kdcore.distill.datasets import cifar_pair  # noqa: E402


def _data_home():
    from kdcore._data import data_home

    try:
        return data_home(None, "cifar10").parent
    except FileNotFoundError as exc:
        pytest.skip(f"shared data folder not found ({exc})")


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("width", [1.0])
def test_student_epoch(benchmark, machine_info, device, width):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device visible to torch")
    data = cifar_pair("cat", "dog", noise_var=0.1, seed=0, data_home=_data_home())
    dev = deep._resolve_device(device)
    amp = dev.type == "cuda"
    if amp:
        torch.backends.cudnn.benchmark = True
    X, y = deep._to_device(data.X_train, dev), deep._to_device(data.y_train, dev).float()
    Xv, yv = deep._to_device(data.X_val, dev), deep._to_device(data.y_val, dev)
    threads = deep._default_threads()
    benchmark.group = f"student epoch cifar cat/dog n={X.shape[0]}"
    benchmark.extra_info.update(machine_info)
    benchmark.extra_info.update(
        device=str(dev),
        torch=torch.__version__,
        torch_threads=threads,
        amp=amp,
        width=width,
        cuda_device=torch.cuda.get_device_name(0) if amp else None,
    )

    def one_epoch():
        torch.manual_seed(0)
        model = deep.make_student(width).to(dev)
        r = deep.train_net(model, X, y, Xv, yv, max_epochs=1, patience=1, batch_size=128, amp=amp, seed=0)
        if amp:
            torch.cuda.synchronize()
        return r

    with deep._TorchThreads(threads if dev.type == "cpu" else None):
        r = benchmark.pedantic(one_epoch, rounds=2, iterations=1, warmup_rounds=0)
    # after one epoch on 9,600 noisy images the student is above chance on validation
    assert r.epochs_run == 1 and r.best_val_acc > 0.52
    benchmark.extra_info["val_acc_after_one_epoch"] = r.best_val_acc
