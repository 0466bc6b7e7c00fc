"""The ``kdcore`` command: every capability without writing code.

Subcommands (``kdcore <command> --help`` for each):

- ``aggregate ANSWERS``: truth inference on a crowd-kit style CSV/Parquet file;
- ``types ANSWERS``: the hidden task-type clustering alone, with its diagnostic;
- ``distill sweep``: width sweep soft vs hard labels, the neuron requirement table;
- ``reproduce [crowd|distill|all]``: the papers' tables and figures in one report;
- ``info`` (= ``kdcore.show_config()``) and ``datasets`` (the real crowd data;
  ``datasets fetch NAME|all`` downloads it).

A user error (a bad file, a missing column, an unknown method) prints one line
``kdcore <command>: error: ...`` on stderr and exits with code 2; an unexpected
failure prints one line and exits with 1 (``KDCORE_DEBUG=1`` shows the traceback).
``reproduce`` exits with 3 when steps were skipped because their real data is missing
and could not be downloaded (a warning on stderr names them), unless
``--allow-missing-data``.
"""

from __future__ import annotations

import argparse
import inspect
import operator
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

#: --method name -> class name in kdcore.crowd (imported when the command runs)
METHODS = {
    "mv": "MajorityVote",
    "ds": "DawidSkene",
    "onecoin": "OneCoinDawidSkene",
    "spectral-em": "SpectralEM",
    "te": "TriangularEstimation",
    "kos": "KOS",
    "roe": "RatioOfEigenvectors",
    "glad": "GLAD",
    "mace": "MACE",
    "bayes": "BayesianDawidSkene",
    "community": "CommunityDawidSkene",
    "wawa": "Wawa",
    "zbs": "ZeroBasedSkill",
    "mmsr": "MMSR",
    "auto": "Auto",
}

#: a cell longer than this is not an id or a label: the file is not a crowd answers table
MAX_FIELD_CHARS = 4096
_PARQUET_SUFFIXES = (".parquet", ".pq")


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2, as argparse's own)."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _one_line(text: object, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------- files
def read_table(path: str | os.PathLike, what: str = "file") -> pd.DataFrame:
    """Read a CSV or Parquet table with the column types ``Responses.read_csv`` gives
    (numbers stay numbers: labels 0/1 are the integers 0 and 1, as in ``pandas.read_csv``).

    Every way a file can be unusable (missing, a folder, empty, binary, not UTF-8,
    malformed rows, absurdly long fields, no rows) raises :class:`CliError` with a
    one-line reason.
    """
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise CliError(f"{what} {p}: no such file")
    if p.is_dir():
        raise CliError(f"{what} {p}: is a folder, expected a CSV or Parquet file")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(8192)
    except OSError as exc:
        raise CliError(f"{what} {p}: cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise CliError(f"{what} {p}: the file is empty")
    is_parquet = head.startswith(b"PAR1")
    if p.suffix.lower() in _PARQUET_SUFFIXES and not is_parquet:
        raise CliError(f"{what} {p}: not a Parquet file (no PAR1 magic bytes)")
    try:
        if is_parquet:
            df = pd.read_parquet(p)
        else:
            if b"\x00" in head:
                raise CliError(f"{what} {p}: looks like a binary file (NUL bytes), not a CSV")
            df = pd.read_csv(p, keep_default_na=False, na_values=[""], encoding="utf-8", skipinitialspace=True)
    except CliError:
        raise
    except ImportError as exc:
        raise CliError(f"{what} {p}: reading Parquet needs pyarrow: pip install 'kdcore[parquet]'") from exc
    except pd.errors.EmptyDataError as exc:
        raise CliError(f"{what} {p}: no columns (the file holds no CSV header)") from exc
    except pd.errors.ParserError as exc:
        raise CliError(f"{what} {p}: malformed CSV ({_one_line(exc, 200)})") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{what} {p}: not UTF-8 text (byte {exc.start}); is it a CSV?") from exc
    except (OSError, ValueError, MemoryError) as exc:
        raise CliError(f"{what} {p}: cannot be read ({_one_line(exc, 200)})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise CliError(f"{what} {p}: has a header ({', '.join(df.columns)}) but no rows")
    for col in df.columns:
        if pd.api.types.is_numeric_dtype(df[col].dtype):  # numbers: no long text hides there
            continue
        lengths = df[col].str.len()
        if lengths.max() > MAX_FIELD_CHARS:
            row = int(lengths.to_numpy().argmax())
            raise CliError(
                f"{what} {p}: a field of {int(lengths.max())} characters in column {col!r} "
                f"(data row {row + 1}); ids and labels are short: is this a crowd answers table?"
            )
    return df


def _need_columns(df, cols: dict, path, flags: str) -> None:
    missing = [c for c in cols.values() if c not in df.columns]
    if missing:
        raise CliError(f"{path}: missing column(s) {missing}; the file has {list(df.columns)}. Name them with {flags}")


def read_answers(path, task_col="task", worker_col="worker", label_col="label", duplicates="error"):
    """A :class:`~kdcore.crowd.Responses` from an answers file, or :class:`CliError`."""
    from .crowd import Responses

    df = read_table(path, "answers")
    cols = {"task": task_col, "worker": worker_col, "label": label_col}
    _need_columns(df, cols, path, "--task-col, --worker-col, --label-col")
    for role, col in cols.items():
        bad = df[col].isna()
        if bad.any():
            raise CliError(
                f"{path}: {int(bad.sum())} empty value(s) in column {col!r} ({role}); "
                f"first at data row {int(bad.to_numpy().argmax()) + 1}"
            )
    try:  # Responses finds duplicate (task, worker) pairs itself, in one pass over integer codes
        return Responses.from_dataframe(df, task_col, worker_col, label_col, duplicates=duplicates)
    except (ValueError, TypeError) as exc:
        msg = str(exc).replace(
            "Pass duplicates='keep_first' or 'keep_last'", "Pass --duplicates keep_first or keep_last"
        )
        raise CliError(f"{path}: {_one_line(msg)}") from exc


def read_truth(path, task_col="task", truth_col="truth"):
    """Gold labels as a Series indexed by task id, from the columns ``task_col`` and ``truth_col``."""
    df = read_table(path, "truth")
    if task_col not in df.columns:
        raise CliError(f"{path}: missing column {task_col!r}; the file has {list(df.columns)}")
    if truth_col not in df.columns:
        raise CliError(
            f"{path}: missing column {truth_col!r} (the gold labels); the file has {list(df.columns)}. "
            "Name the gold label column with --truth-col"
        )
    df = df.dropna(subset=[task_col, truth_col]).drop_duplicates(task_col)
    return df.set_index(task_col)[truth_col].rename("truth")


_OUT_SUFFIXES = (".csv", *_PARQUET_SUFFIXES)


def _check_out(path, flag: str = "--out") -> None:
    """Refuse an output file kdcore cannot write (e.g. .xlsx) before any work is done."""
    if path is not None and Path(path).suffix.lower() not in _OUT_SUFFIXES:
        raise CliError(f"{flag} {path}: unknown file type {Path(path).suffix or '(none)'!r}; expected .csv or .parquet")


def _write_table(df, path, index: bool = True) -> None:
    _check_out(path)
    p = Path(path)
    try:
        if p.parent and not p.parent.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix.lower() in _PARQUET_SUFFIXES:
            df.to_parquet(p, index=index)
        else:
            df.to_csv(p, index=index)
    except OSError as exc:
        raise CliError(f"cannot write {p}: {exc.strerror or exc}") from exc
    except ImportError as exc:
        raise CliError(f"cannot write {p}: Parquet needs pyarrow: pip install 'kdcore[parquet]'") from exc


# ----------------------------------------------------------------------------- estimators
def _crowd_class(name: str):
    """The estimator class ``name`` of :mod:`kdcore.crowd` (its public names only)."""
    import kdcore.crowd as crowd

    return getattr(crowd, name)


def make_aggregator(method: str, seed: int | None = None):
    """The estimator behind ``--method`` (its ``random_state`` set when it has one)."""
    if method not in METHODS:
        raise CliError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    cls = _crowd_class(METHODS[method])
    kwargs = {}
    if seed is not None and "random_state" in inspect.signature(cls.__init__).parameters:
        kwargs["random_state"] = seed
    return cls(**kwargs)


def _fit_info(model) -> dict:
    """Iterations and convergence of a fitted aggregator, whichever attributes it has."""
    info: dict[str, Any] = {}
    for attr in ("n_iter_", "n_iter", "iterations_"):
        v = getattr(model, attr, None)
        if v is not None and (isinstance(v, int) or hasattr(v, "__index__")):
            info["iterations"] = operator.index(v)
            break
    hist = getattr(model, "loss_history_", None)
    if "iterations" not in info and hist is not None:
        info["iterations"] = len(hist)
    conv = getattr(model, "converged_", None)
    if conv is not None:
        info["converged"] = bool(conv)
    return info


def _types_info(clustering) -> dict:
    """Sizes and separation diagnostic of a fitted TaskTypeClustering."""
    import numpy as np

    info: dict[str, Any] = {}
    types = getattr(clustering, "types_", None)
    if types is not None:
        vals = np.asarray(types)
        info["sizes"] = [int((vals == k).sum()) for k in np.unique(vals)]
    sep = getattr(clustering, "separation_", None)
    if sep is not None:
        info["separation"] = float(sep)
    return info


def _fmt_types(info: dict) -> str:
    parts = []
    if "sizes" in info:
        parts.append(f"{len(info['sizes'])} types, sizes {'/'.join(map(str, info['sizes']))}")
    if "separation" in info:
        parts.append(f"separation {info['separation']:.3g}")
    elif "separation_note" in info:
        parts.append(f"separation {info['separation_note']}")
    if "used_types" in info:
        kind = info.get("kind", "hard")
        parts.append(
            "plain aggregator kept (split not supported)"
            if not info["used_types"]
            else "soft two-type model used (labels summed over the type)"
            if kind == "soft"
            else "per-type aggregation used"
        )
    if info.get("reason"):
        parts.append(f"reason: {info['reason']}")
    return ", ".join(parts) or "n/a"


def _make_clustering(n_types: int, seed: int | None, method: str | None = None):
    cls = _crowd_class("TaskTypeClustering")
    kwargs: dict[str, Any] = {"n_types": n_types}
    params = inspect.signature(cls.__init__).parameters
    if seed is not None and "random_state" in params:
        kwargs["random_state"] = seed
    if method is not None:
        kwargs["method"] = method
    return cls(**kwargs)


def _n_types(text: str) -> int:
    """``--types K``: the number of hidden task types, an integer >= 2."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--types must be an integer >= 2, got {text!r}") from None
    if v < 2:
        raise argparse.ArgumentTypeError(
            f"--types must be >= 2 (the number of hidden task types), got {v}; leave it out for no types"
        )
    return v


class _DeprecatedAlias(argparse.Action):
    """An old flag name that still works and says which one to use."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: warning: {option_string} is deprecated, use {self.metavar}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


# ----------------------------------------------------------------------------- commands
def _cmd_info(args) -> int:
    from .backends import show_config

    show_config()
    return 0


def _cmd_datasets(args) -> int:
    if getattr(args, "datasets_command", None) == "fetch":
        return _cmd_datasets_fetch(args)
    from .crowd import datasets

    print(f"{'dataset':<10} {'responses':>9} {'tasks':>6} {'workers':>7} {'classes':>7} {'gold':>5} {'ans/task':>8}")
    for name in datasets.list_datasets():
        r, truth = datasets.load(name, args.data_home)
        print(
            f"{name:<10} {r.n_responses:>9} {r.n_tasks:>6} {r.n_workers:>7} {r.n_classes:>7} {len(truth):>5} "
            f"{r.n_responses / r.n_tasks:>8.1f}"
        )
    return 0


def _cmd_datasets_fetch(args) -> int:
    from ._fetch import FetchError, fetch

    try:
        root = fetch(
            args.names,
            dest=args.dest,
            base_url=args.base_url,
            force=args.force,
            progress=False if args.quiet else None,
            log=print,
        )
    except FetchError as exc:
        raise CliError(str(exc)) from None
    print(f"data folder: {root} (loaders find it there; or point KDCORE_DATA at it)")
    return 0


def _print_data_summary(r, path) -> None:
    classes = list(r.classes_)
    shown = ", ".join(map(str, classes[:8])) + (", ..." if len(classes) > 8 else "")
    print(
        f"{path}: {r.n_responses} answers, {r.n_tasks} tasks, {r.n_workers} workers, "
        f"{r.n_classes} classes [{shown}]" + (f", {r.n_duplicates_} duplicates dropped" if r.n_duplicates_ else "")
    )


def _cmd_aggregate(args) -> int:
    if args.scheduler:
        return _aggregate_on_cluster(args)
    if args.method not in METHODS:
        raise CliError(f"unknown method {args.method!r}; choose one of {', '.join(METHODS)}")
    for flag in ("out", "proba", "skills"):
        _check_out(getattr(args, flag), f"--{flag}")
    truth = read_truth(args.truth, truth_col=args.truth_col) if args.truth else None  # fail early
    r = read_answers(args.answers, args.task_col, args.worker_col, args.label_col, args.duplicates)
    _print_data_summary(r, args.answers)
    base = make_aggregator(args.method, args.seed)
    name = type(base).__name__
    type_info = None
    if args.types:
        wrapper = _crowd_class("TypeAware")
        model = wrapper(
            base, clustering=_make_clustering(args.types, args.seed), guard=not args.no_guard, random_state=args.seed
        )
    else:
        model = base
    model.fit(r)
    fitted = model
    if args.types:
        clus = getattr(model, "clustering_", None)
        type_info = _types_info(clus) if clus is not None else {}
        if clus is None and "stopped" in (getattr(model, "evidence_", None) or {}):
            type_info["separation_note"] = "not computed (a held-out fold ruled the split out first)"
        type_info["used_types"] = bool(model.split_used_)
        type_info["kind"] = str(getattr(model, "split_kind_", "hard"))
        ev = getattr(model, "evidence_", None) or {}
        if ev.get("reason"):
            type_info["reason"] = str(ev["reason"])
        per_type = list(getattr(model, "type_models_", None) or [])
        fitted = per_type if model.split_used_ and per_type else [model.plain_]
    else:
        fitted = [model]
    infos = [_fit_info(f) for f in fitted]
    info = (
        infos[0]
        if len(infos) == 1
        else {k: ([i.get(k) for i in infos] if k == "iterations" else all(i.get(k) for i in infos)) for k in infos[0]}
    )
    it = info.get("iterations")
    conv = info.get("converged")
    it = "/".join(map(str, it)) + " (per type)" if isinstance(it, list) else it
    print(
        f"method: {args.method} ({name})"
        + (f", wrapped in TypeAware({args.types} types)" if args.types else "")
        + f"; iterations: {it if it is not None else 'n/a'}"
        + f"; converged: {'n/a' if conv is None else ('yes' if conv else 'NO')}"
    )
    chosen = getattr(model, "chosen_", None)
    if chosen is not None:
        scores = ", ".join(f"{k} {v:.4f}" for k, v in model.scores_.dropna().items())
        print(f"chosen: {chosen} (held-out log-likelihood per answer: {scores})")
    if type_info is not None:
        print(f"types: {_fmt_types(type_info)}")
    labels = model.labels_
    _warn_if_chance(args.method, labels, r, args.seed)
    if truth is not None:
        from .crowd import accuracy

        common = labels.index.intersection(truth.index)
        if len(common) == 0:
            raise CliError(f"{args.truth}: no task of the answers has a gold label (task ids differ)")
        print(f"accuracy: {accuracy(labels, truth):.4f} on {len(common)} gold tasks")
    if args.out:
        _write_table(labels.rename("agg_label").rename_axis("task").to_frame(), args.out)
        print(f"wrote {args.out} ({len(labels)} tasks)")
    if args.proba:
        probas = getattr(model, "probas_", None)
        if probas is None:
            raise CliError(f"{name} gives no posteriors (probas_); drop --proba")
        _write_table(probas.rename_axis("task"), args.proba)
        print(f"wrote {args.proba}")
    if args.skills:
        skills = getattr(model, "skills_by_type_", None) if args.types else None
        if skills is not None:
            skills = skills.rename_axis("worker").add_prefix("skill_type_")
        else:
            skills = _skills_frame(fitted[0], r)
        if skills is None:
            raise CliError(f"{name} estimates no per-worker skill; drop --skills")
        _write_table(skills, args.skills)
        print(f"wrote {args.skills} ({len(skills)} workers)")
    return 0


#: Cohen's kappa between an aggregator's labels and majority vote below which the labels are
#: called no better than chance (measured on the real data: KOS and ratio-of-eigenvectors on
#: rte and temp sit at -0.06..0.08, one-coin on bluebirds at 0.13; every working method >= 0.39)
CHANCE_KAPPA = 0.2
_CHANCE_MIN_TASKS = 20


def chance_agreement(labels, reference) -> tuple[float, float, float]:
    """Agreement of two labelings of the same tasks: ``(observed, expected by chance, Cohen's kappa)``.

    Chance agreement is that of two independent labelings with these label frequencies,
    sum_k p_k q_k; kappa = (observed - chance) / (1 - chance) is 0 at chance and 1 when they agree.
    """
    a, b = labels.align(reference, join="inner")
    if len(a) == 0:
        raise ValueError("the two labelings share no task")
    observed = float((a.to_numpy() == b.to_numpy()).mean())
    pa, pb = a.value_counts(normalize=True), b.value_counts(normalize=True)
    chance = float(sum(pa[k] * pb.get(k, 0.0) for k in pa.index))
    kappa = 1.0 if chance >= 1.0 else (observed - chance) / (1.0 - chance)
    return observed, chance, kappa


def _warn_if_chance(method: str, labels, r, seed) -> None:
    """A warning on stderr when the labels agree with majority vote no more than chance would."""
    if method == "mv" or r.n_tasks < _CHANCE_MIN_TASKS:
        return
    mv = make_aggregator("mv", seed).fit(r).labels_
    observed, chance, kappa = chance_agreement(labels, mv)
    if kappa < CHANCE_KAPPA:
        print(
            f"kdcore aggregate: warning: the {method} labels look no better than chance: they agree with majority "
            f"vote on {observed:.1%} of the tasks where chance gives {chance:.1%} (Cohen's kappa {kappa:.2f} < "
            f"{CHANCE_KAPPA}); try --method mv or ds",
            file=sys.stderr,
        )


def _skills_frame(model, r):
    """Per-worker skill table: ``skills_`` when the model has it, else the diagonal
    of its confusion matrices (accuracy under each true class)."""
    import numpy as np
    import pandas as pd

    s = getattr(model, "skills_", None)
    if s is not None:
        df = s.to_frame() if isinstance(s, pd.Series) else pd.DataFrame(s)
        if not isinstance(s, (pd.Series, pd.DataFrame)):
            df.index = r.worker_ids
        return df.rename_axis("worker")
    for attr in ("confusions_", "errors_", "confusion_"):
        c = getattr(model, attr, None)
        if isinstance(c, np.ndarray) and c.ndim == 3 and c.shape[0] == r.n_workers:
            diag = np.einsum("wkk->wk", c)
            return pd.DataFrame(
                diag, index=pd.Index(r.worker_ids, name="worker"), columns=[f"p_correct_{k}" for k in r.classes_]
            )
    return None


def _aggregate_on_cluster(args) -> int:
    """``aggregate --scheduler``: a Parquet dataset fitted on a Dask cluster (kdcore.crowd.parquet)."""
    if args.method not in ("mv", "ds", "onecoin", "bayes"):
        raise CliError(f"--scheduler takes --method mv, ds, onecoin or bayes, got {args.method!r}")
    if not args.out:
        raise CliError("--scheduler needs --out (a Parquet folder for the labels)")
    if args.types or args.truth or args.skills:
        raise CliError("--scheduler takes no --types, --truth or --skills")
    try:
        from .crowd.parquet import aggregate_parquet
    except ImportError as exc:
        raise CliError(f"--scheduler needs Dask: pip install 'kdcore[dask]' ({_one_line(exc)})") from exc
    res = aggregate_parquet(args.answers, args.scheduler, args.out, args.method, probas=bool(args.proba))
    print(
        f"{res['method']}: {res['n_answers']} answers, {res['n_tasks']} tasks, {res['n_workers']} workers -> {args.out}"
    )
    return 0


def _cmd_types(args) -> int:
    _check_out(args.out)
    r = read_answers(args.answers, args.task_col, args.worker_col, args.label_col, args.duplicates)
    _print_data_summary(r, args.answers)
    clus = _make_clustering(args.n_types, args.seed, args.method)
    clus.fit(r)
    info = _types_info(clus)
    print(
        f"types: {_fmt_types(info)} (method {getattr(clus, 'method', '?')}; separation near 1 = well "
        "separated, near 0 = no type structure)"
    )
    if args.out:
        import numpy as np
        import pandas as pd

        types = np.asarray(clus.types_)
        _write_table(pd.DataFrame({"type": types}, index=pd.Index(r.task_ids, name="task")), args.out)
        print(f"wrote {args.out} ({len(types)} tasks)")
    return 0


def _cmd_distill_sweep(args) -> int:
    _check_out(args.out)
    from .experiments import sweep

    table = sweep.run_sweep(
        data=args.data,
        widths=args.widths,
        seeds=args.seeds,
        n_steps=args.steps,
        n=args.n,
        d=args.d,
        gamma=args.gamma,
        target_error=args.target_error,
        radius=args.radius,
        lr=args.lr,
        data_home=args.data_home,
        progress=not args.quiet,
    )
    print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    print(sweep.requirement_line(table))
    if args.out:
        _write_table(table, args.out)
        print(f"wrote {args.out}")
    return 0


def _cmd_distill_from_crowd(args) -> int:
    from ._from_crowd import from_crowd

    from_crowd(
        args.answers,
        args.features,
        task_ids=args.task_ids,
        width=args.width,
        labels=args.labels,
        truth=args.truth,
        out=args.out,
        n_steps=args.steps,
        lr=args.lr,
        radius=args.radius or None,
        scale=args.scale,
        seed=args.seed,
    )
    return 0


#: ``kdcore reproduce`` exit code when steps were skipped because their real data is missing
EXIT_MISSING_DATA = 3


def _check_data_home(path) -> None:
    """``--data-home`` (or ``$KDCORE_DATA``) that names no folder is a user error, not missing data."""
    for value, what in ((path, "--data-home"), (None if path else os.environ.get("KDCORE_DATA"), "$KDCORE_DATA")):
        if value and not Path(value).is_dir():
            kind = "is a file, not a folder" if Path(value).exists() else "no such folder"
            raise CliError(f"{what} {value}: {kind} (expected the folder holding crowd/, mnist/, cifar10/)")


def _cmd_reproduce(args) -> int:
    import warnings

    from .distill.executor import scheduler_executor
    from .experiments.report import reproduce
    from .experiments.report.reproduce import missing_data_message

    _check_data_home(args.data_home)
    parts = ("crowd", "distill") if args.part == "all" else (args.part,)
    only = [k.strip() for k in args.only.split(",") if k.strip()] if args.only else None
    with scheduler_executor(args.scheduler), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="real data missing", category=UserWarning)
        res = reproduce(
            parts=parts,
            profile=args.profile,
            out=args.out,
            data_home=args.data_home,
            progress=False if args.quiet else None,
            seed=args.seed,
            only=only,
        )
    print(f"wrote {res['report']} ({res['n_sections']} sections, {res['n_figures']} figures, {res['seconds']:.0f} s)")
    missing = res.get("missing_data") or {}
    if missing:
        print(f"kdcore reproduce: warning: {missing_data_message(missing)}", file=sys.stderr)
    if res["failed"]:
        print(f"{len(res['failed'])} step(s) failed: {', '.join(res['failed'])} (see the report)", file=sys.stderr)
        return 1
    if missing and not args.allow_missing_data:
        return EXIT_MISSING_DATA
    return 0


def _widths(text: str) -> list[int]:
    try:
        out = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated even widths like 2,4,8, got {text!r}") from None
    if not out or any(w < 2 or w % 2 for w in out):
        raise argparse.ArgumentTypeError(f"widths must be even integers >= 2 (symmetric init), got {text!r}")
    return sorted(set(out))


def _steps_epilog() -> str:
    try:
        from .experiments.report import STEPS

        return "steps (for --only): " + ", ".join(st.key for st in STEPS)
    except Exception as exc:  # pragma: no cover - a broken step registry must not break the command
        return f"(step list unavailable: {type(exc).__name__})"


def _answer_args(s) -> None:
    s.add_argument("answers", metavar="ANSWERS", help="answers file: CSV or Parquet, one (task, worker, label) a row")
    s.add_argument("--task-col", default="task", help="task id column (default: task)")
    s.add_argument("--worker-col", default="worker", help="worker id column (default: worker)")
    s.add_argument("--label-col", default="label", help="label column (default: label)")
    s.add_argument(
        "--duplicates",
        choices=("error", "keep_first", "keep_last"),
        default="error",
        help="a worker answering a task twice: refuse (default) or keep one answer",
    )
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def build_parser() -> argparse.ArgumentParser:
    from .experiments.profiles import PROFILES

    p = _Parser(prog="kdcore", description="Crowd truth inference with task types; soft vs hard labels.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser(
        "aggregate",
        help="estimate true labels from crowd answers",
        description="Run a truth-inference method on a crowd-kit style answers file and write "
        "the labels (and posteriors, worker skills). Prints tasks, workers, classes, "
        "iterations, convergence, and with --types the type-separation diagnostic.",
        epilog="methods: mv = majority vote; ds = Dawid-Skene EM (full confusion matrices); "
        "onecoin = one-coin Dawid-Skene EM; spectral-em = Dawid-Skene EM started from the "
        "spectral (tensor) estimate; te = triangular estimation + weighted majority vote "
        "(binary); kos = Karger-Oh-Shah message passing (binary); roe = ratio of "
        "eigenvectors (binary); glad = GLAD (worker ability, task difficulty); mace = MACE "
        "(spammer model); bayes = Bayesian Dawid-Skene (Dirichlet priors, strength estimated); "
        "community = community Dawid-Skene (workers pooled in communities); wawa = majority vote "
        "weighted by each worker's agreement with the plain vote; zbs = zero-based skill (vote weighted "
        "by skills that agree with it); mmsr = M-MSR robust skills, then the log-odds weighted vote; "
        "auto = the candidate that best predicts held-out answers (Auto).",
    )
    _answer_args(s)
    s.add_argument(
        "--method",
        default="ds",
        metavar="{" + ",".join(METHODS) + "}",
        help="aggregator (default: ds = Dawid-Skene EM)",
    )
    s.add_argument(
        "--types",
        type=_n_types,
        default=None,
        metavar="K",
        help="cluster the tasks into K >= 2 hidden types first and aggregate each type separately",
    )
    s.add_argument(
        "--no-guard",
        action="store_true",
        help="with --types: always aggregate per type (default: a guard keeps the plain "
        "aggregator when the two-type model is not supported)",
    )
    s.add_argument("--out", help="write labels (task, agg_label) here (.csv or .parquet)")
    s.add_argument("--proba", help="write the posterior of each class for each task here")
    s.add_argument("--skills", help="write the estimated per-worker skills here")
    s.add_argument("--truth", help="gold labels (task, truth): print the accuracy on the gold tasks")
    s.add_argument("--truth-col", default="truth", help="gold label column of --truth (default: truth)")
    s.add_argument(
        "--scheduler",
        metavar="ADDRESS|local:N",
        help="fit on a Dask cluster (tcp://host:8786, or local:N worker processes); ANSWERS is then a Parquet "
        "file, folder or glob and --out a Parquet folder (kdcore[dask]; methods mv, ds, onecoin, bayes)",
    )
    s.set_defaults(func=_cmd_aggregate)

    s = sub.add_parser(
        "types",
        help="cluster tasks into hidden types (the diagnostic alone)",
        description="Spectral clustering of the tasks into hidden types from the answers alone; "
        "prints the type sizes and the separation diagnostic.",
    )
    _answer_args(s)
    s.add_argument(
        "--types", dest="n_types", type=_n_types, default=2, metavar="K", help="number of types (default: 2)"
    )
    s.add_argument(
        "--n-types", dest="n_types", type=_n_types, action=_DeprecatedAlias, metavar="--types", help=argparse.SUPPRESS
    )
    s.add_argument("--method", default=None, help="clustering method of TaskTypeClustering (default: its own)")
    s.add_argument("--out", help="write (task, type) here")
    s.set_defaults(func=_cmd_types)

    s = sub.add_parser(
        "distill",
        help="soft- vs hard-label training of two-layer ReLU networks",
        description="Two-layer ReLU students trained on soft or hard labels.",
    )
    dsub = s.add_subparsers(dest="distill_command", required=True, parser_class=_Parser)
    w = dsub.add_parser(
        "sweep",
        help="width sweep soft vs hard: the neuron requirement table",
        description="Train students of each width on soft and on hard labels (projected GD) and "
        "print test error per width and the smallest width reaching the target error.",
    )
    w.add_argument(
        "--data",
        default="margin",
        choices=("margin", "mnist-full", "mnist-reduced"),
        help="synthetic linearly separable data with margin gamma, or MNIST 'digit > 4' "
        "(full, or reduced: digits 1, 7, 4, 9 removed)",
    )
    w.add_argument("--widths", type=_widths, default=[2, 4, 8, 16, 32], help="even widths (default: 2,4,8,16,32)")
    w.add_argument("--seeds", type=_positive_int, default=3, help="seeds per width and arm (default: 3)")
    w.add_argument("--steps", type=_positive_int, default=300, help="gradient steps (default: 300)")
    w.add_argument("--n", type=_positive_int, default=500, help="training points (default: 500)")
    w.add_argument("--d", type=_positive_int, default=20, help="dimension of synthetic data (default: 20)")
    w.add_argument("--gamma", type=float, default=0.05, help="margin of the synthetic data (default: 0.05)")
    w.add_argument("--target-error", type=float, default=0.05, help="error defining the requirement (default 0.05)")
    w.add_argument("--radius", type=float, default=1.0, help="projection radius B (default: 1.0; 0 = none)")
    w.add_argument("--lr", type=float, default=None, help="step size (default: 4 on margin data, 64 on MNIST)")
    w.add_argument("--data-home", default=None, help="folder holding mnist/ (default: $KDCORE_DATA)")
    w.add_argument("--out", help="write the table here (.csv)")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    w.set_defaults(func=_cmd_distill_sweep)

    from ._from_crowd import LABEL_SOURCES

    f = dsub.add_parser(
        "from-crowd",
        help="train a student on aggregated crowd answers",
        description="Aggregate crowd answers (task,worker,label CSV), train the two-layer student on the answered "
        "tasks' features (matched by task id), write DIR/weights.npz and DIR/soft_labels.csv, print the accuracy "
        "on --truth.",
    )
    f.add_argument("answers", help="answers CSV with columns task,worker,label")
    f.add_argument("--features", required=True, help=".npy (with --task-ids) or .parquet (a 'task' column)")
    f.add_argument("--task-ids", default=None, help="task id of each row of a .npy features file (.npy or text)")
    f.add_argument("--width", type=_positive_int, required=True, help="student width m (even)")
    f.add_argument("--labels", default="ds-soft", choices=LABEL_SOURCES, help="targets (default: ds-soft)")
    f.add_argument("--truth", default=None, help="task,truth CSV: print the student's accuracy on the gold tasks")
    f.add_argument("--out", required=True, help="output folder")
    f.add_argument("--steps", type=_positive_int, default=500, help="gradient steps (default: 500)")
    f.add_argument("--lr", type=float, default=16.0, help="step size (default: 16)")
    f.add_argument("--radius", type=float, default=0.0, help="projection radius B (0 = none)")
    f.add_argument("--scale", default="unit", choices=("unit", "none"), help="scale feature rows to unit norm")
    f.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    f.set_defaults(func=_cmd_distill_from_crowd)

    s = sub.add_parser(
        "reproduce",
        help="regenerate the papers' tables and figures in one report",
        description="Run the experiments of both papers and write DIR/report.md (our numbers "
        "beside the published ones), PNG figures and DIR/results.json. The real data is read from "
        "--data-home, $KDCORE_DATA, a shared/data folder above the working directory or the cache, and "
        "downloaded into the cache when none has it (KDCORE_FETCH=0 turns that off).",
        epilog="exit codes: 0 every step ran; 1 a step failed (see the report); 2 bad input (e.g. --data-home "
        f"names no folder); {EXIT_MISSING_DATA} real data missing and not downloadable: the steps that need it were "
        "skipped, a warning on stderr names them (--allow-missing-data makes that exit 0). " + _steps_epilog(),
    )
    s.add_argument(
        "part", nargs="?", default="all", choices=("crowd", "distill", "all"), help="which paper (default: all)"
    )
    s.add_argument(
        "--profile",
        default="quick",
        choices=PROFILES,
        help="quick: < 10 min on 2 cores (default); full: the papers' protocol (hours); tiny: seconds",
    )
    s.add_argument("--out", default="report", help="output folder (default: ./report)")
    s.add_argument("--data-home", default=None, help="folder holding crowd/, mnist/, cifar10/ (default: $KDCORE_DATA)")
    s.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    s.add_argument("--only", metavar="KEYS", help="comma-separated step keys to run (e.g. crowd.real,distill.mnist)")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.add_argument(
        "--allow-missing-data",
        action="store_true",
        help=f"exit 0, not {EXIT_MISSING_DATA}, when steps are skipped because their real data is missing",
    )
    s.add_argument(
        "--scheduler",
        metavar="ADDRESS|local:N",
        help="spread the networks of the sweeps over a Dask cluster (tcp://host:8786 or local:N; kdcore[dask])",
    )
    s.set_defaults(func=_cmd_reproduce)

    s = sub.add_parser(
        "info",
        help="versions, backends, threads, SIMD, BLAS (= kdcore.show_config())",
        description="Print what this machine has: versions, backends, threads, SIMD level, BLAS.",
    )
    s.set_defaults(func=_cmd_info)
    from ._fetch import DEFAULT_DATA_URL, DEFAULT_MNIST_URL, dataset_names

    s = sub.add_parser(
        "datasets",
        help="summary of the real crowd datasets; 'datasets fetch NAME' downloads data",
        description="One line per real crowd dataset found in the data folder (downloaded into the cache "
        "first when no copy is found). 'kdcore datasets fetch NAME|all' downloads data files.",
    )
    s.add_argument("--data-home", default=None, help="folder holding crowd/ (default: $KDCORE_DATA)")
    s.set_defaults(func=_cmd_datasets)
    dsub = s.add_subparsers(dest="datasets_command", required=False, parser_class=_Parser)
    f = dsub.add_parser(
        "fetch",
        help="download data files into the cache, checksums verified",
        description="Download the files of the named datasets into the cache data folder ($KDCORE_CACHE/data, "
        "else ~/.cache/kdcore/data), verifying each against the sha256 sums kdcore ships; a corrupted or "
        "interrupted download leaves nothing behind. Files already there are verified and kept.",
        epilog=f"sources: MNIST from $KDCORE_MNIST_URL, else $KDCORE_DATA_URL/mnist/, else {DEFAULT_MNIST_URL}; "
        f"crowd/ and cifar10/ from $KDCORE_DATA_URL, else {DEFAULT_DATA_URL} (a copy of the data folder). "
        "Loaders download on first use as well; KDCORE_FETCH=0 turns that off.",
    )
    f.add_argument("names", nargs="+", choices=dataset_names(), metavar="NAME", help=", ".join(dataset_names()))
    f.add_argument("--base-url", default=None, help="download every file from this copy of the data folder")
    f.add_argument("--dest", default=None, help="data folder to fill (default: the cache data folder)")
    f.add_argument("--force", action="store_true", help="download again files that are already there")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"kdcore {args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`kdcore datasets | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (CliError, ValueError, TypeError, FileNotFoundError, MemoryError) as exc:
        if os.environ.get("KDCORE_DEBUG"):
            raise
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # an internal failure: still one line, code 1
        if os.environ.get("KDCORE_DEBUG"):
            raise
        print(
            f"{prog}: internal error: {type(exc).__name__}: {_one_line(exc)} "
            "(rerun with KDCORE_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
