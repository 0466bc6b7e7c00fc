"""Aggregate a Parquet dataset of answers on a Dask cluster and write the labels as Parquet.

The logic of ``kdcore aggregate "answers/*.parquet" --scheduler ADDRESS|local:N --out DIR``
(kdcore.cli), on top of :mod:`kdcore.crowd.distributed`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._bayesian import BayesianDawidSkene
from ._dawid_skene import DawidSkene
from ._majority_vote import MajorityVote
from ._one_coin import OneCoinDawidSkene
from .distributed import close_client, connect, current_client, fit_dask

METHODS = {
    "bayes": "BayesianDawidSkene",
    "mv": "MajorityVote",
    "ds": "DawidSkene",
    "onecoin": "OneCoinDawidSkene",
}


def aggregate_parquet(
    path,
    scheduler: str | None = None,
    out=None,
    method: str = "ds",
    *,
    n_iter: int = 100,
    tol: float = 1e-5,
    smoothing: float = 0.0,
    probas: bool = False,
    shuffle: bool | None = None,
    client=None,
) -> dict:
    """Aggregate a Parquet dataset of answers on a Dask cluster and write the labels to Parquet.

    Parameters
    ----------
    path : str, a Parquet file, folder or glob ("answers/*.parquet") with columns task, worker, label.
    scheduler : "ADDRESS" or "local:N" (see :func:`connect`); None uses ``client`` or the current client.
    out : str, the output Parquet folder (one file per partition): columns task, agg_label
        (and one column per class with the posteriors when ``probas``). None writes nothing.
    method : "mv", "ds", "onecoin" or "bayes" (BayesianDawidSkene, variational, prior estimated).
    n_iter, tol, smoothing : the EM settings of DawidSkene / OneCoinDawidSkene (n_iter and tol
        also of BayesianDawidSkene, which takes no smoothing).

    Returns
    -------
    dict with method, n_answers, n_tasks, n_workers, classes, n_iter, converged, cluster_stats.
    """
    import dask.dataframe as dd

    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    own = None
    if scheduler is not None:
        own = client = connect(scheduler)
    try:
        client = current_client(client)
        ddf = dd.read_parquet(path)
        est: Any
        if method == "mv":
            est = MajorityVote(tie_break="first")
        elif method == "ds":
            est = DawidSkene(n_iter=n_iter, tol=tol, smoothing=smoothing)
        elif method == "bayes":
            est = BayesianDawidSkene(n_iter=n_iter, tol=tol)
        else:
            est = OneCoinDawidSkene(n_iter=n_iter, tol=tol, smoothing=smoothing)
        fit_dask(est, ddf, client=client, shuffle=shuffle)
        if out is not None:
            frame = est.labels_.to_frame()
            if probas:
                frame = frame.join(est.probas_) if method != "mv" else est.probas_.assign(agg_label=est.labels_)
            frame.to_parquet(out, write_index=True, compute_kwargs={"scheduler": client})
        result = {
            "method": method,
            "n_answers": est.cluster_stats_["n_answers"],
            "n_tasks": est.cluster_stats_["n_tasks"],
            "n_workers": len(est.worker_ids_),
            "classes": [c.item() if isinstance(c, np.generic) else c for c in est.classes_],
            "cluster_stats": dict(est.cluster_stats_),
        }
        if method != "mv":
            result.update(n_iter=est.n_iter_, converged=est.converged_)
        return result
    finally:
        if own is not None:
            close_client(own)


def add_aggregate_arguments(parser) -> None:
    """The options of ``kdcore aggregate`` on an argparse parser."""
    parser.add_argument(
        "path", help='Parquet answers (task, worker, label): a file, folder or glob "answers/*.parquet"'
    )
    parser.add_argument("--scheduler", required=True, help="a Dask scheduler address (tcp://host:8786) or local:N")
    parser.add_argument("--out", required=True, help="output Parquet folder of labels (task, agg_label)")
    parser.add_argument("--method", choices=sorted(METHODS), default="ds")
    parser.add_argument("--n-iter", type=int, default=100)
    parser.add_argument("--tol", type=float, default=1e-5)
    parser.add_argument("--smoothing", type=float, default=0.0)
    parser.add_argument("--probas", action="store_true", help="also write the posterior of every class")
    parser.add_argument(
        "--shuffle",
        choices=("auto", "yes", "no"),
        default="auto",
        help="shuffle the answers by task: auto = only when the files' task ranges overlap",
    )


def run_aggregate(args) -> int:
    """Run ``kdcore aggregate`` from parsed arguments; prints one summary line. Bad input and an
    unreachable scheduler raise ValueError / TypeError (the CLI prints one line, exit 2)."""
    shuffle = {"auto": None, "yes": True, "no": False}[args.shuffle]
    res = aggregate_parquet(
        args.path,
        args.scheduler,
        args.out,
        args.method,
        n_iter=args.n_iter,
        tol=args.tol,
        smoothing=args.smoothing,
        probas=args.probas,
        shuffle=shuffle,
    )
    rounds = f", {res['n_iter']} rounds" if "n_iter" in res else ""
    print(
        f"{res['method']}: {res['n_answers']} answers, {res['n_tasks']} tasks, {res['n_workers']} workers{rounds} "
        f"-> {args.out}"
    )
    return 0
