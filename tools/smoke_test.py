"""Smoke test of an installed kdcore: the compiled core with OpenMP, and two parallel fits
checked against their numpy twins.

Run it against an installed wheel from outside the source tree, so that the installed
package is the one imported (cibuildwheel's test command and ``.ci/run`` do)::

    python tools/smoke_test.py                # kdcore alone
    python tools/smoke_test.py --torch first  # import torch, then kdcore
    python tools/smoke_test.py --torch last   # import kdcore and fit, then import torch

The fits: ``DawidSkene`` with ``n_threads=2`` on answers simulated from a planted
Dawid-Skene model (the compiled EM must match the numpy EM and recover the planted truth),
and ``train_many`` of two two-layer networks with ``n_threads=2`` (the compiled steps must
match the numpy steps). With ``--torch`` a torch fit with two intra-op threads runs
between two rounds of the kdcore fits, so both OpenMP runtimes (kdcore's and torch's) run
parallel regions in one process; the OpenMP libraries that threadpoolctl finds are printed.
Tolerances come from ``tests/_tol.py`` next to this file. Exit status 0 means every check
held; a failed check raises.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _load_tolerances() -> ModuleType:
    path = ROOT / "tests" / "_tol.py"
    spec = importlib.util.spec_from_file_location("_tol", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise FileNotFoundError(f"tolerances not found: expected {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check_install(installed: bool = True) -> None:
    """The imported kdcore has its compiled core with OpenMP (and, if ``installed``, is not the source tree)."""
    import kdcore
    from kdcore import backends

    where = Path(kdcore.__file__).resolve().parent
    if installed and ROOT / "python" in where.parents:
        raise RuntimeError(f"kdcore was imported from the source tree ({where}), not from an installed wheel")
    if not backends.HAS_CPP:
        raise RuntimeError(f"the compiled core does not import: {backends._CORE_ERROR}")
    if not backends.HAS_OPENMP:
        raise RuntimeError("the compiled core was built without OpenMP")
    from importlib.metadata import version

    if installed and kdcore.__version__ != version("kdcore"):
        raise RuntimeError(f"kdcore.__version__ is {kdcore.__version__}, the metadata says {version('kdcore')}")
    print(f"kdcore {kdcore.__version__} from {where}: compiled core with OpenMP")


def fit_dawid_skene(tol: ModuleType) -> float:
    """DawidSkene, compiled with 2 threads vs numpy, on a planted model; returns the accuracy."""
    import numpy as np

    from kdcore.crowd import DawidSkene, simulate

    r, truth = simulate.dawid_skene(600, 12, 3, answers_per_task=5, random_state=0)
    a = DawidSkene(backend="cpp", n_threads=2).fit(r)
    b = DawidSkene(backend="numpy").fit(r)
    if a.n_iter_ != b.n_iter_:
        raise AssertionError(f"EM iterations differ: cpp {a.n_iter_}, numpy {b.n_iter_}")
    np.testing.assert_allclose(a.probas_.to_numpy(), b.probas_.to_numpy(), atol=tol.FIT_F64)
    np.testing.assert_allclose(a.confusions_, b.confusions_, atol=tol.FIT_F64)
    acc = float((a.labels_ == truth).mean())
    # five answers from workers of skill 0.6-0.9 on three classes: EM recovers ~0.95
    # (chance is 1/3); a broken kernel that still matched its twin would not.
    if acc < 0.85:
        raise AssertionError(f"DawidSkene accuracy {acc:.3f} on the planted truth, expected >= 0.85")
    return acc


def fit_two_layer(tol: ModuleType, backend: str = "cpp") -> float:
    """train_many of two networks with 2 threads vs the numpy twin; returns the final training error."""
    import numpy as np

    from kdcore.distill import make_margin_data, train_many

    X, y, p = make_margin_data(300, 10, gamma=0.1, random_state=0)
    configs = [
        {"m": 16, "loss": "hard", "lr": 2.0, "random_state": 1},
        {"m": 24, "loss": "soft", "lr": 2.0, "radius": 4.0, "random_state": 2},
    ]
    got = train_many([dict(c) for c in configs], X, y, p, n_steps=40, backend=backend, n_threads=2)
    ref = train_many([dict(c) for c in configs], X, y, p, n_steps=40, backend="numpy")
    for g, e in zip(got, ref):
        scale = float(np.abs(e.model.W).max())
        np.testing.assert_allclose(g.model.W, e.model.W, rtol=tol.KERNEL_F64, atol=tol.KERNEL_F64 * scale)
        np.testing.assert_allclose(g.loss, e.loss, rtol=tol.KERNEL_F64, atol=tol.KERNEL_F64)
        if not g.loss[-1] < g.loss[0]:
            raise AssertionError(f"{backend}: the training loss did not fall ({g.loss[0]:.4f} -> {g.loss[-1]:.4f})")
    return max(h.final_error for h in got)


def openmp_libraries() -> list[str]:
    """The OpenMP runtimes loaded in this process, as threadpoolctl finds them."""
    from threadpoolctl import threadpool_info

    return [
        f"{d['internal_api']} {d['filepath']} ({d['num_threads']} threads)"
        for d in threadpool_info()
        if d["user_api"] == "openmp"
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--torch", choices=["first", "last"], help="also import torch, before or after kdcore, and fit with it"
    )
    ap.add_argument("--source-tree", action="store_true", help="accept kdcore imported from python/ (development tree)")
    args = ap.parse_args(argv)
    tol = _load_tolerances()
    t0 = time.perf_counter()
    if args.torch == "first":
        import torch

        print(f"torch {torch.__version__} imported before kdcore")
    check_install(installed=not args.source_tree)
    if args.torch == "last" and "torch" in sys.modules:
        raise RuntimeError("import kdcore imported torch: the 'last' order cannot be tested")
    print(f"DawidSkene n_threads=2: matches numpy, accuracy {fit_dawid_skene(tol):.3f}")
    print(f"train_many n_threads=2: matches numpy, final training error {fit_two_layer(tol):.3f}")
    if args.torch:
        import torch

        torch.set_num_threads(2)
        print(f"torch train_many with 2 threads: matches numpy, final training error {fit_two_layer(tol, 'torch'):.3f}")
        print(f"DawidSkene n_threads=2 after torch ran: accuracy {fit_dawid_skene(tol):.3f}")
        print(f"train_many n_threads=2 after torch ran: final training error {fit_two_layer(tol):.3f}")
    for lib in openmp_libraries():
        print(f"OpenMP runtime loaded: {lib}")
    print(f"smoke test passed in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
