"""The ``kdcore`` command."""
from __future__ import annotations

import argparse
import sys


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


def _cmd_info(args) -> int:
    from .backends import show_config

    show_config()
    return 0


def _cmd_datasets(args) -> int:
    from .crowd import datasets

    print(f"{'dataset':<10} {'responses':>9} {'tasks':>6} {'workers':>7} {'classes':>7} {'gold':>5} {'ans/task':>8}")
    for name in datasets.list_datasets():
        r, truth = datasets.load(name, args.data_home)
        print(f"{name:<10} {r.n_responses:>9} {r.n_tasks:>6} {r.n_workers:>7} {r.n_classes:>7} {len(truth):>5} "
              f"{r.n_responses / r.n_tasks:>8.1f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kdcore", description="Crowd truth inference with task types; soft vs hard labels.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("info", help="versions, backends, threads, SIMD, BLAS (= kdcore.show_config())")
    s.set_defaults(func=_cmd_info)
    s = sub.add_parser("datasets", help="summary of the real crowd datasets in the data folder")
    s.add_argument("--data-home", default=None, help="folder holding crowd/ (default: $KDCORE_DATA)")
    s.set_defaults(func=_cmd_datasets)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, ValueError, TypeError, FileNotFoundError, MemoryError) as exc:
        print(f"kdcore {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
