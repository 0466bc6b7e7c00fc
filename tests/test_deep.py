"""Experiment 2 (torch VGG teacher/student) in a tiny configuration, plus its building blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the deep experiment needs torch")

from kdcore.distill import vgg  # noqa: E402
from kdcore.experiments import deep  # noqa: E402


def _count(model, kind):
    return sum(isinstance(m, kind) for m in model.modules())


def test_architectures_have_the_papers_depths():
    t, s = vgg.make_teacher(0.25), vgg.make_student(0.5)
    assert _count(t, torch.nn.Conv2d) == 8 and _count(t, torch.nn.Linear) == 3
    assert _count(s, torch.nn.Conv2d) == 2 and _count(s, torch.nn.Linear) == 3
    x = torch.zeros(5, 3, 32, 32)
    t.eval(), s.eval()
    assert t(x).shape == (5, 1) and s(x).shape == (5, 1)
    n2 = sum(p.numel() for p in vgg.make_student(2.0).parameters())
    n1 = sum(p.numel() for p in vgg.make_student(1.0).parameters())
    assert n2 > 3 * n1  # width scales channels and FC units


def _blobs(n, seed):
    """Images whose class is the sign of the mean brightness of the red channel: learnable in an epoch or two."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    X = torch.rand(n, 3, 32, 32, generator=g) * 0.5
    X[:, 0] += 0.5 * y[:, None, None].float()
    return X, y


@pytest.mark.parametrize("soft", [False, True])
def test_train_net_learns_hard_and_soft_targets(soft):
    torch.manual_seed(0)
    X, y = _blobs(256, 1)
    Xv, yv = _blobs(128, 2)
    targets = torch.where(y == 1, 0.8, 0.2) if soft else y.float()  # soft: calibrated but not 0/1
    with vgg.TorchThreads(2):
        r = vgg.train_net(
            vgg.make_student(0.5), X, targets, Xv, yv, max_epochs=3, patience=3, batch_size=16, lr=3e-3, random_state=0
        )
    assert r.best_val_acc > 0.9
    assert r.epochs_run <= 3 and 1 <= r.best_epoch <= r.epochs_run
    assert len(r.history) == r.epochs_run


def test_early_stopping_stops_after_patience():
    torch.manual_seed(0)
    X = torch.rand(64, 3, 32, 32)
    y = torch.randint(0, 2, (64,))
    r = vgg.train_net(
        vgg.make_student(0.25), X, y.float(), X[:32], y[:32], max_epochs=50, patience=2, lr=0.0, batch_size=32
    )
    assert r.epochs_run == 3  # lr = 0: no improvement after epoch 1, stop after 2 more


def test_bad_arguments():
    with pytest.raises(ValueError, match="profile"):
        deep.deep_profile("huge")
    with pytest.raises(ValueError, match="temperature"):
        deep.DeepConfig(temperature=0.0)
    with pytest.raises(ValueError, match="device"):
        vgg.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            vgg.resolve_device("cuda")


def test_deep_experiment_tiny_end_to_end(data_home, tmp_path):
    cfg = deep.DeepConfig(
        noise_vars=(0.05,),
        seeds=(0,),
        n_max=160,
        max_epochs=1,
        patience=1,
        batch_size=64,
        teacher_width=0.25,
        widths=(1.0,),
        width_sweep=(0.5, 1.0),
        width_sweep_noise=(0.05,),
    )
    torch_threads = torch.get_num_threads()
    df = deep.run_deep_experiment(
        config=cfg, device="cpu", n_threads=1, progress=False, data_home=data_home, out_dir=tmp_path
    )
    assert torch.get_num_threads() == torch_threads  # thread count restored
    assert sorted(df["model"]) == ["hard", "hard", "soft", "soft", "teacher"]
    assert df["test_acc"].between(0, 100).all() and (df["device"] == "cpu").all()
    summ = deep.summarize_deep(df)
    assert list(summ["noise_var"]) == [0.05]
    assert summ["paper_soft"].iloc[0] == 74.2 and summ["paper_hard"].iloc[0] == 73.7
    assert summ["soft_minus_hard"].iloc[0] == pytest.approx(summ["soft"].iloc[0] - summ["hard"].iloc[0])
    runs = json.loads((tmp_path / "deep_runs.json").read_text())
    assert len(runs["runs"]) == 5 and runs["config"]["teacher_width"] == 0.25
    assert (tmp_path / "deep_noise.png").stat().st_size > 0 and (tmp_path / "deep_width.png").is_file()


def test_deep_shards_and_log_resume(data_home, tmp_path):
    """Two shards logging to one file give the unsharded run's networks; a rerun resumes from the log."""
    cfg = deep.DeepConfig(
        noise_vars=(0.01, 0.2),
        seeds=(0, 1),
        n_max=96,
        max_epochs=1,
        patience=1,
        batch_size=32,
        teacher_width=0.125,
        widths=(0.25,),
        width_sweep=(),
        width_sweep_noise=(),
    )
    kw = dict(config=cfg, device="cpu", n_threads=1, progress=False, data_home=data_home)
    whole = deep.run_deep_experiment(**kw)
    log = tmp_path / "runs.jsonl"
    parts = [deep.run_deep_experiment(**kw, shard=(i, 2), log_path=log) for i in range(2)]
    # seed-major order, every 2nd run: shard 0 has both seeds at noise 0.01, shard 1 at noise 0.2
    assert set(parts[0]["noise_var"]) == {0.01} and set(parts[1]["noise_var"]) == {0.2}
    joined = deep.read_deep_log(log)
    key = ["noise_var", "seed", "model", "width"]
    a = whole.sort_values(key).reset_index(drop=True)
    b = joined.sort_values(key).reset_index(drop=True)
    assert len(b) == len(a) == 12
    np.testing.assert_array_equal(b["test_acc"], a["test_acc"])  # same seeds, same networks, on the CPU
    n_lines = len(log.read_text().splitlines())
    again = deep.run_deep_experiment(**kw, log_path=log)  # everything logged: nothing is trained again
    assert len(log.read_text().splitlines()) == n_lines and len(again) == 12
    with log.open("a") as fh:
        fh.write('{"noise_var": 0.01, "se')  # a line cut short by a killed process
    with pytest.warns(UserWarning, match="unreadable line"):
        assert len(deep.read_deep_log(log)) == 12
    with pytest.raises(ValueError, match="shard"):
        deep.run_deep_experiment(**kw, shard=(2, 2))


@pytest.mark.slow
def test_deep_quick_profile_runs(data_home, tmp_path):
    """The quick profile (minutes on 2 CPU cores): teacher, hard and soft at both noise levels."""
    df = deep.run_deep_experiment("quick", progress=False, data_home=data_home, out_dir=tmp_path)
    summ = deep.summarize_deep(df)
    assert list(summ["noise_var"]) == [0.01, 0.1] and (summ["runs"] == 2).all()
    assert summ[["teacher", "hard", "soft"]].gt(50).all().all()  # above chance on cat vs dog
