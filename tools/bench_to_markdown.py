#!/usr/bin/env python
"""Turn a saved pytest-benchmark JSON into the markdown tables of benchmarks/README.md.

One table per benchmark group (kernel and size): one row per backend with the
median time, the interquartile range and the rounds, and the speed-up relative
to the numpy twin and to crowd-kit (their median / this median: 2.0x = twice as
fast; measured within the same run, so the ratios hold even when absolute times
drift on a shared machine).

Usage:
    pytest benchmarks/bench_crowd.py --benchmark-enable --benchmark-group-by=group \\
        --benchmark-json=bench.json
    python tools/bench_to_markdown.py bench.json                      # print the tables
    python tools/bench_to_markdown.py bench.json --readme benchmarks/README.md \\
        --section "Crowd aggregators" --command "pytest benchmarks/bench_crowd.py ..."

With ``--readme``, the tables replace the generated block under the ``## <section>``
heading (between ``<!-- bench:<section> -->`` markers, created on first use);
the rest of the file is kept as is.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

#: names a backend is known by in parameter ids, in the order they are tried
BACKEND_ALIASES = {
    "torch-cuda": "torch-cuda",
    "cuda": "torch-cuda",
    "cpp": "cpp",
    "numpy": "numpy",
    "torch": "torch",
    "crowd-kit": "crowd-kit",
    "crowdkit": "crowd-kit",
    "pandas": "pandas",
    "scipy": "scipy",
    "sklearn": "sklearn",
}
ORDER = ["cpp", "torch-cuda", "torch", "numpy", "crowd-kit", "pandas", "scipy", "sklearn"]


class InputError(Exception):
    pass


def backend_of(bench: dict) -> str:
    """The backend of one benchmark: its ``backend`` parameter, else a known name in its id."""
    params = bench.get("params") or {}
    if isinstance(params.get("backend"), str):
        return BACKEND_ALIASES.get(params["backend"], params["backend"])
    ident = str(bench.get("param") or bench.get("name", ""))
    tokens = re.split(r"[\[\]\-_,/ ]", ident.lower())
    if "torch" in tokens and "cuda" in tokens:
        return "torch-cuda"
    joined = ident.lower()
    for alias in ("crowd-kit", "crowdkit"):
        if alias in joined:
            return "crowd-kit"
    for t in tokens:
        if t in BACKEND_ALIASES:
            return BACKEND_ALIASES[t]
    return str(bench.get("param") or bench.get("name"))


def fmt_time(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            v = seconds / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return ""  # pragma: no cover


def fmt_ratio(ref: float | None, t: float) -> str:
    if ref is None or not t:
        return ""
    return f"{ref / t:.2f}x"


def load(path: str | Path) -> dict:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not a JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise InputError(f"{p}: not a pytest-benchmark JSON (no 'benchmarks' list); save one with --benchmark-json")
    if not data["benchmarks"]:
        raise InputError(f"{p}: holds no benchmark (were they run with --benchmark-enable?)")
    return data


def tables(data: dict) -> str:
    """Markdown: one table per group, rows ordered cpp, torch, numpy, crowd-kit."""
    groups: dict[str, list[dict]] = {}
    for b in data["benchmarks"]:
        groups.setdefault(b.get("group") or b.get("name"), []).append(b)
    out = []
    for group in sorted(groups, key=str):
        rows = []
        for b in groups[group]:
            st = b.get("stats") or {}
            if "median" not in st:
                raise InputError(f"benchmark {b.get('fullname') or b.get('name')} has no median in its stats")
            rows.append((backend_of(b), b, st))
        med = {be: st["median"] for be, _, st in rows}
        ref_np, ref_ck = med.get("numpy"), med.get("crowd-kit")
        rows.sort(key=lambda r: (ORDER.index(r[0]) if r[0] in ORDER else len(ORDER), r[0]))
        cols = ["backend", "median", "IQR", "rounds"]
        if ref_np is not None:
            cols.append("vs numpy")
        if ref_ck is not None:
            cols.append("vs crowd-kit")
        lines = [
            f"**{group}**",
            "",
            "| " + " | ".join(cols) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|",
        ]
        for be, _b, st in rows:
            cells = [be, fmt_time(st["median"]), fmt_time(st.get("iqr", float("nan"))), str(st.get("rounds", ""))]
            if ref_np is not None:
                cells.append(fmt_ratio(ref_np, st["median"]))
            if ref_ck is not None:
                cells.append(fmt_ratio(ref_ck, st["median"]))
            lines.append("| " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def header(data: dict, command: str | None) -> str:
    mi = data.get("machine_info") or {}
    cpu = mi.get("cpu") or {}
    brand = cpu.get("brand_raw") or cpu.get("brand") or mi.get("processor") or "unknown CPU"
    cores = cpu.get("count")
    bits = [brand + (f", {cores} cores" if cores else ""), f"Python {mi.get('python_version', '?')}"]
    when = data.get("datetime", "")[:16].replace("T", " ")
    lines = [
        f"Measured {when} UTC on {'; '.join(bits)} (pytest-benchmark {data.get('version', '?')}); "
        "speed-ups are the other backend's median over this row's, within this run."
    ]
    if command:
        lines.append(f"\nCommand: `{command}`")
    return "\n".join(lines)


def render(data: dict, command: str | None = None) -> str:
    return header(data, command) + "\n\n" + tables(data) + "\n"


def update_readme(readme: Path, section: str, body: str) -> str:
    """Replace the generated block under ``## section`` (markers created on first use)."""
    text = readme.read_text()
    start, end = f"<!-- bench:{section} -->", f"<!-- /bench:{section} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        i, j = text.index(start), text.index(end) + len(end)
        return text[:i] + block + text[j:]
    m = re.search(rf"^## {re.escape(section)}[ \t]*$", text, flags=re.M)
    if m is None:
        raise InputError(f"{readme}: no heading '## {section}'")
    rest = text[m.end() :]
    return text[: m.end()] + "\n\n" + block + "\n" + ("\n" + rest.lstrip("\n") if rest.strip() else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", help="file saved by pytest --benchmark-json=FILE")
    ap.add_argument("--readme", help="update this markdown file in place instead of printing")
    ap.add_argument("--section", help="with --readme: the '## ' heading whose generated block is replaced")
    ap.add_argument("--command", help="the exact command that produced the JSON (printed above the tables)")
    args = ap.parse_args(argv)
    try:
        data = load(args.json)
        body = render(data, args.command)
        if args.readme:
            if not args.section:
                raise InputError("--readme needs --section")
            readme = Path(args.readme)
            if not readme.is_file():
                raise InputError(f"{readme}: no such file")
            readme.write_text(update_readme(readme, args.section, body))
            print(f"updated '## {args.section}' in {readme}")
        else:
            sys.stdout.write(body)
    except InputError as exc:
        print(f"bench_to_markdown: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
