"""The reproduction driver: run experiment steps, write report.md, figures and results.json.

A :class:`Step` is one experiment of one paper: a function returning a table
(pandas DataFrame), optional plot functions taking that table, and an optional
``compare`` that puts the paper's numbers beside ours and states in plain words
where they differ. :func:`reproduce` runs the steps of the chosen parts, times
each, keeps going when one fails (the report says so), and writes

- ``DIR/report.md``: every table, our number beside the paper's, the statements;
- ``DIR/figures/*.png``;
- ``DIR/results.json``: versions, seeds, backend, timings and every table.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..._check import check_int
from ..profiles import check_profile
from .step import Skip, Step, call_with
from .steps import STEPS

PARTS = ("crowd", "distill")
PART_TITLES = {
    "crowd": "Crowdsourcing with hard and easy tasks (Kong, Mandal, Katselis, Srikant; TMLR 2025)",
    "distill": "Soft-label vs hard-label training (Mandal, Lin, Srikant; L4DC 2025)",
}


class MissingData(Skip):
    """A step skipped because its real data is not there and could not be downloaded."""

    def __init__(self, need: str, reason: str):
        super().__init__(f"needs the {need}/ data folder: {reason}")
        self.need = need


def _check_needs(needs: Sequence[str], data_home, found: dict[str, str | None] | None = None) -> None:
    """Raise :class:`Skip` for a missing backend, :class:`MissingData` for missing data.

    ``found`` remembers, within one run, each data folder's outcome (None = there), so a
    download that cannot happen is tried once, not once per step.
    """
    from ... import backends
    from ..._data import data_home as find

    found = {} if found is None else found
    for need in needs:
        if need == "torch":
            if not backends.HAS_TORCH:
                raise Skip("needs torch (pip install 'kdcore[torch]')")
            continue
        if need not in found:
            try:
                find(data_home, need)
                found[need] = None
            except FileNotFoundError as exc:
                found[need] = str(exc)
        if found[need] is not None:
            raise MissingData(need, str(found[need]))


#: a float smaller than this share of its column's largest magnitude (or of 1, whichever is larger)
#: is rounding noise of a fit (a slope of -4.3e-16 through equal points) and prints as 0
NOISE_FLOOR = 1e-9


def _fmt(v, scale: float = 1.0) -> str:
    """One table cell: floats rounded for reading (2 decimals from 1 up, 4 significant digits below 1),
    values below ``NOISE_FLOOR * max(1, scale)`` printed as 0 (``scale``: the column's largest magnitude)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        a = abs(float(v))
        if 1 <= scale < 1e5:  # a column of accuracies in %, gaps in points: 2 decimals throughout
            return "0.00" if a < 0.005 else f"{float(v):.2f}"
        if a == 0 or a < NOISE_FLOOR * max(1.0, scale):
            return "0"
        if a >= 1e5 or a < 1e-3:
            return f"{float(v):.3g}"
        return f"{float(v):.4g}" if a < 1 else f"{float(v):.2f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


#: column names as the report prints them (results.json keeps the names the experiments use);
#: any other snake_case name prints with spaces
READER_COLUMNS = {
    "paper_soft_minus_hard": "paper gap",
    "soft_minus_hard": "soft - hard",
    "radius": "B",
    "noise_var": "noise var",
    "type_aware_guard": "typed, guard",
    "type_aware_no_guard": "typed, no guard",
    "type_aware_auto": "typed, auto",
    "soft_split_used": "soft split",
    # the pseudo-real label table: Dawid-Skene throughout (said in its caption)
    "DS oracle types": "oracle types",
    "DS plain": "plain",
    "DS type-aware (guard)": "typed, guard",
    "DS type-aware (no guard)": "typed, no guard",
    "DS type-aware auto (guard)": "typed, auto",
    "DS type-aware soft (guard)": "soft, guard",
    "DS type-aware soft (no guard)": "soft, no guard",
    "T1": "soft (T1)",
    "T1_std": "soft std",
}


def reader_column(name) -> str:
    """The printed name of a table column: ``paper_hard`` -> ``paper hard``, ``soft_minus_hard`` ->
    ``soft - hard``; names the experiments never use internally are kept."""
    s = str(name)
    if s in READER_COLUMNS:
        return READER_COLUMNS[s]
    return s.replace("_", " ") if s.isidentifier() else s


def _column_scale(col: pd.Series) -> float:
    """The largest finite magnitude of a numeric column (0 for text or empty columns)."""
    v = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    v = np.abs(v[np.isfinite(v)])
    return float(v.max()) if v.size else 0.0


def markdown_table(df: pd.DataFrame, max_rows: int = 200) -> str:
    """A GitHub markdown table of ``df`` (index included when it is named or not a RangeIndex)."""
    t = df
    if not isinstance(t.index, pd.RangeIndex) or any(n is not None for n in t.index.names):
        t = t.reset_index()
    cols = [reader_column(c) for c in t.columns]
    scales = [_column_scale(t.iloc[:, j]) for j in range(t.shape[1])]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in t.head(max_rows).itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v, sc) for v, sc in zip(row, scales)) + " |")
    if len(t) > max_rows:
        lines.append(f"\n({len(t) - max_rows} more rows in results.json)")
    return "\n".join(lines)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if obj is None or isinstance(obj, (str, int)):
        return obj
    if obj is pd.NA or obj is pd.NaT:
        return None
    return str(obj)


def table_json(df: pd.DataFrame) -> dict:
    """A table as {"columns": [...], "rows": [[...], ...]} (index reset, NaN -> null)."""
    t = df
    if not isinstance(t.index, pd.RangeIndex) or any(n is not None for n in t.index.names):
        t = t.reset_index()
    return {"columns": [str(c) for c in t.columns], "rows": _jsonable(t.to_numpy(dtype=object).tolist())}


def environment() -> dict:
    """Versions, backends, threads and machine: what results.json records."""
    from ... import __version__
    from ...backends import config

    versions: dict[str, str | None] = {"kdcore": __version__, "python": sys.version.split()[0]}
    for mod in ("numpy", "scipy", "pandas", "torch", "matplotlib", "crowdkit"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                import importlib.metadata as md

                versions[mod] = md.version("crowd-kit" if mod == "crowdkit" else mod)
                continue
            except Exception:
                versions[mod] = None
                continue
        versions[mod] = getattr(m, "__version__", None)
    cfg = config()
    return {
        "versions": versions,
        "backends": cfg["backends"],
        "backend": cfg["backends"][0] if cfg["backends"] else None,
        "threads": cfg["threads"],
        "cores_available": cfg["cores_available"],
        "openmp": cfg["openmp"],
        "simd": cfg["simd"],
        "blas": cfg["blas"],
        "machine": f"{platform.machine()} {platform.system()} {platform.release()}",
        "processor": platform.processor() or None,
    }


def _progress(iterable, enabled: bool | None, **kw):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kw)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def step_line(i: int, n: int, rec: dict) -> str:
    """The stderr line written when step ``i`` of ``n`` ends (output not on a terminal):
    ``[3/9] crowd.real: ok in 12.3 s``, with the reason when it was skipped or failed."""
    text = f"[{i}/{n}] {rec['key']}: {rec['status']} in {rec['seconds']:.1f} s"
    if rec["status"] != "ok" and rec.get("error"):
        text += f" ({rec['error']})"
    return text


def _run_step(
    step: Step, profile: str, seed: int, data_home, progress, fig_dir: Path, found: dict | None = None
) -> dict:
    rec: dict[str, Any] = {
        "key": step.key,
        "part": step.part,
        "title": step.title,
        "claim": step.claim,
        "seed": seed,
        "profile": profile,
        "status": "ok",
        "seconds": None,
        "statements": [],
        "figures": [],
        "error": None,
    }
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        _check_needs(step.needs, data_home, found)
        raw = call_with(step.run, profile=profile, random_state=seed, data_home=data_home, progress=progress)
        rec["seconds_run"] = time.perf_counter() - t0
        tabs = step.tables(raw) if step.tables is not None else raw
        if isinstance(tabs, pd.DataFrame):
            tabs = {"": tabs}
        if not isinstance(tabs, dict) or not tabs or not all(isinstance(t, pd.DataFrame) for t in tabs.values()):
            raise TypeError(f"{step.key}: the experiment gave {type(tabs).__name__}, expected DataFrame tables")
        main_name = next(iter(tabs))
        if step.compare is not None:
            cmp = step.compare(tabs[main_name])
            shown, statements = cmp[0], cmp[1]
            tabs[main_name] = shown
            rec["statements"] = [str(s) for s in statements]
            rec["headline"] = str(cmp[2]) if len(cmp) > 2 and cmp[2] else (rec["statements"] or [None])[0]
        rec["table"] = table_json(tabs[main_name])
        rec["tables"] = {name: table_json(t) for name, t in tabs.items() if name != main_name}
        rec["_tabs"] = tabs
        for i, plot in enumerate(step.plots):
            name = f"{step.key.replace('.', '_')}{'' if i == 0 else f'_{i + 1}'}.png"
            try:
                from .. import plotting

                drawn = plot(raw)
                if drawn is None:  # the plot does not apply to this result (e.g. one width only)
                    continue
                fig = plotting.figure_of(drawn)
                plotting.save(fig, fig_dir / name)
                rec["figures"].append(f"figures/{name}")
            except Exception as exc:  # a broken figure must not lose the table
                rec["statements"].append(f"(figure {name} could not be drawn: {type(exc).__name__}: {exc})")
    except Skip as exc:
        rec["status"] = "skipped"
        rec["error"] = str(exc)
        if isinstance(exc, MissingData):
            rec["missing_data"] = exc.need
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        rec["status"] = "failed"
        rec["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        rec["traceback"] = traceback.format_exc(limit=8)
    rec["seconds"] = time.perf_counter() - t0
    rec["cpu_seconds"] = time.process_time() - c0  # all threads of this process: comparable on a shared machine
    return rec


def missing_data_message(missing: dict[str, str]) -> str:
    """One line naming the steps skipped for want of data and how to get it."""
    folders = sorted(set(missing.values()))
    steps = ", ".join(f"{k} ({v}/)" for k, v in missing.items())
    return (
        f"real data missing ({', '.join(f + '/' for f in folders)}), so {len(missing)} step(s) were skipped: {steps}. "
        "Set KDCORE_DATA or --data-home to the data folder, or run: kdcore datasets fetch all"
    )


# ----------------------------------------------------------------------------- report
def _write_markdown(path: Path, meta: dict, records: list[dict]) -> list[str]:
    """report.md; returns the section headings written (what tests check)."""
    env = meta["environment"]
    out = [
        "# kdcore reproduction report",
        "",
        f"Profile **{meta['profile']}** (parts: {', '.join(meta['parts'])}), base seed {meta['seed']}, "
        f"made {meta['created']} in {meta['total_seconds']:.0f} s ({meta['total_cpu_seconds']:.0f} CPU s) on "
        f"{env['cores_available']} cores "
        f"(kdcore {env['versions']['kdcore']}, backend {env['backend']}, {env['threads']} threads, "
        f"SIMD {env['simd']}).",
        "",
        "Each section states the paper's claim, shows our table (the paper's numbers beside ours where the "
        "paper printed some), says plainly where the two differ, and shows the figure. "
        + (
            "The quick profile uses fewer seeds, sizes and epochs than the papers: its numbers are noisier "
            "and a difference of a point or two is within that noise. `--profile full` runs the papers' "
            "protocol."
            if meta["profile"] != "full"
            else "The full profile follows the papers' protocol."
        ),
        "",
    ]
    headings = []
    status_rows = []
    for part in meta["parts"]:
        recs = [r for r in records if r["part"] == part]
        if not recs:
            continue
        h = f"## {PART_TITLES.get(part, part)}"
        out += [h, ""]
        headings.append(h)
        for r in recs:
            h = f"### {r['title']}"
            headings.append(h)
            out += [h, "", f"*Paper:* {r['claim']}", ""]
            if r["status"] != "ok":
                verb = "Skipped" if r["status"] == "skipped" else "FAILED"
                out += [f"**{verb}**: {r['error']}", ""]
            else:
                for i, (name, t) in enumerate(r["_tabs"].items()):
                    out += ([f"**{name}**", ""] if name else []) + [markdown_table(t), ""]
                    if i == 0 and r["statements"]:
                        out += ["*Ours vs the paper:*", ""] + [f"- {s}" for s in r["statements"]] + [""]
                        if r.get("headline") and r["headline"] not in r["statements"]:
                            out += [f"*In short:* {r['headline']}", ""]
                for f in r["figures"]:
                    out += [f"![{r['title']}]({f})", ""]
            out += [f"<sub>{r['key']}: {r['seconds']:.1f} s, seed {r['seed']}, profile {r['profile']}</sub>", ""]
            status_rows.append(
                {
                    "step": r["key"],
                    "status": r["status"],
                    "seconds": round(r["seconds"], 1),
                    "CPU seconds": round(r["cpu_seconds"], 1),
                }
            )
    h = "## Run summary"
    headings.append(h)
    out += [h, "", markdown_table(pd.DataFrame(status_rows)) if status_rows else "(no steps)", ""]
    h = "## Environment"
    headings.append(h)
    out += (
        [h, ""]
        + [f"- {k}: {v}" for k, v in env["versions"].items()]
        + [
            f"- backends: {', '.join(env['backends'])}",
            f"- threads: {env['threads']} (OpenMP: {env['openmp']})",
            f"- SIMD: {env['simd']}",
            f"- BLAS: {'; '.join(env['blas']) or 'none found'}",
            f"- machine: {env['machine']}",
            "",
        ]
    )
    path.write_text("\n".join(out))
    return headings


def reproduce(
    parts: Sequence[str] = PARTS,
    profile: str = "quick",
    out: str | os.PathLike = "report",
    *,
    data_home=None,
    progress: bool | None = None,
    seed: int = 0,
    steps: Sequence[Step] | None = None,
    only: Sequence[str] | None = None,
) -> dict:
    """Run the papers' experiments and write the reproduction report.

    Parameters
    ----------
    parts : subset of ("crowd", "distill").
    profile : "tiny" (seconds, used by the tests), "quick" (< 10 minutes on 2 cores:
        the README's main job) or "full" (the papers' protocols: hours).
    out : output folder; ``report.md``, ``results.json`` and ``figures/`` are written there.
    data_home : folder holding crowd/, mnist/, cifar10/ (default: ``$KDCORE_DATA``, else a
        ``shared/data`` folder above the working directory, else the cache, else a download
        into the cache; see :func:`kdcore._data.data_home`). Steps whose data is missing are
        skipped with the reason, listed in ``missing_data`` and named in a ``UserWarning``.
    progress : True: tqdm bars; False: silent; None (default): bars when stderr is a terminal,
        otherwise one line per step on stderr (``[3/9] crowd.real: ok in 12.3 s``) so a piped run
        shows where it is.
    seed : base seed, passed to every experiment.
    steps : the steps to run (default: :data:`kdcore.experiments.report.steps.STEPS`).
    only : keys of the steps to run (e.g. ``["crowd.real"]``); default all of ``parts``.

    Returns
    -------
    dict with ``report`` (path of report.md), ``results`` (path of results.json),
    ``sections`` (headings written), ``n_sections``, ``n_figures``, ``failed``
    (keys of failed steps), ``skipped``, ``missing_data`` (``{step key: data folder}`` of the
    steps skipped for want of data) and ``seconds``.

    Examples
    --------
    >>> from kdcore.experiments.report import reproduce
    >>> res = reproduce(parts=("crowd",), profile="tiny", out="kd-report")  # doctest: +SKIP
    >>> res["failed"]  # doctest: +SKIP
    []
    """
    if isinstance(parts, str):
        parts = (parts,)
    parts = tuple(parts)
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise ValueError(f"parts must be a non-empty subset of {PARTS}, got {list(parts)}")
    check_profile(profile)
    seed = check_int(seed, "seed")
    if steps is None:
        steps = STEPS
    todo = [s for s in steps if s.part in parts]
    if only is not None:
        only = [only] if isinstance(only, str) else list(only)
        unknown = [k for k in only if k not in {s.key for s in todo}]
        if unknown:
            raise ValueError(f"unknown step(s) {unknown} for parts {list(parts)}; choose among {[s.key for s in todo]}")
        todo = [s for s in todo if s.key in only]
    outdir = Path(out)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        (outdir / "figures").mkdir(exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the output folder {outdir}: {exc.strerror or exc}") from exc
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    t0, c0 = time.perf_counter(), time.process_time()
    records = []
    found: dict[str, str | None] = {}
    bar = _progress(todo, progress, desc="reproduce", unit="step")
    lines = progress is None and bar is todo  # not on a terminal: one plain line per step instead of bars
    for i, step in enumerate(bar, 1):
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(step.key)
        if lines:
            _say(f"[{i}/{len(todo)}] {step.key}: running")
        rec = _run_step(step, profile, int(seed), data_home, progress, outdir / "figures", found)
        records.append(rec)
        if lines:
            _say(step_line(i, len(todo), rec))
    total = time.perf_counter() - t0
    env = environment()
    meta = {
        "profile": profile,
        "parts": list(parts),
        "seed": int(seed),
        "created": created,
        "total_seconds": total,
        "total_cpu_seconds": time.process_time() - c0,
        "environment": env,
    }
    headings = _write_markdown(outdir / "report.md", meta, records)
    results = dict(meta)
    results["steps"] = {r["key"]: {k: v for k, v in r.items() if not k.startswith("_")} for r in records}
    results["timings"] = {r["key"]: r["seconds"] for r in records}
    (outdir / "results.json").write_text(json.dumps(_jsonable(results), indent=1))
    missing = {r["key"]: r["missing_data"] for r in records if r.get("missing_data")}
    if missing:
        warnings.warn(missing_data_message(missing), UserWarning, stacklevel=2)
    return {
        "report": str(outdir / "report.md"),
        "results": str(outdir / "results.json"),
        "sections": headings,
        "n_sections": len(headings),
        "n_figures": sum(len(r["figures"]) for r in records),
        "failed": [r["key"] for r in records if r["status"] == "failed"],
        "skipped": [r["key"] for r in records if r["status"] == "skipped"],
        "missing_data": missing,
        "seconds": total,
    }
