"""The numbers the papers printed (PAPERS.md), and how ours are set beside them.

Only published numbers live here; each comparison says in plain words where our
measurement agrees with the paper and where it does not. A difference is called
a difference when it exceeds ``tol`` (default: 1 accuracy point, or twice our
seed spread when that is larger); nothing is tuned to make a table match.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Mandal, Lin, Srikant (L4DC 2025), Experiment 1: MNIST "digit > 4", two-layer ReLU,
#: teacher 512 neurons; test accuracy (%).
MNIST_TABLE = pd.DataFrame(
    [
        ("reduced", 8, 98.75, 97.19, 97.67),
        ("reduced", 6, 98.75, 96.84, 97.26),
        ("reduced", 4, 98.75, 93.04, 95.83),
        ("full", 8, 98.34, 95.77, 96.58),
        ("full", 6, 98.34, 95.33, 96.00),
        ("full", 4, 98.34, 88.84, 95.62),
    ],
    columns=["data", "m", "teacher", "hard", "soft"],
)

#: Experiment 2: CIFAR-10 cat vs dog, VGG 8+3 teacher, VGG 2+3 student, Gaussian pixel
#: noise; test accuracy (%) read off the paper's figure (about +-0.3).
DEEP_TABLE = pd.DataFrame(
    [
        (0.01, 82.5, 74.6, 76.0),
        (0.03, 78.4, 74.2, 75.2),
        (0.05, 79.1, 73.7, 74.2),
        (0.10, 77.7, 67.1, 75.0),
        (0.20, 73.4, 62.1, 70.4),
    ],
    columns=["noise_var", "teacher", "hard", "soft"],
)

#: Reference accuracies on the real crowd data (crowd-kit 1.4.2 MajorityVote and
#: DawidSkene(n_iter=100, tol=1e-5); shared/data/README.md); not the paper's, a widely
#: used implementation's.
CROWDKIT_REAL = pd.DataFrame(
    [
        ("bluebirds", 0.759, 0.889),
        ("rte", 0.875, 0.928),
        ("temp", 0.939, 0.942),
        ("product", 0.897, 0.940),
        ("wsd", 0.994, 0.994),
        ("dog", 0.812, 0.843),
        ("web", 0.688, 0.829),
        ("face", 0.634, 0.640),
        ("adult2", 0.766, 0.766),
    ],
    columns=["dataset", "crowdkit_mv", "crowdkit_ds"],
)


def _key_str(row, keys) -> str:
    return ", ".join(f"{k}={row[k]}" for k in keys)


def side_by_side(
    ours: pd.DataFrame,
    paper: pd.DataFrame,
    keys: Sequence[str],
    pairs: dict[str, str],
    *,
    spread: dict[str, str] | None = None,
    tol: float = 1.0,
    unit: str = " points",
    scale: float = 1.0,
) -> tuple[pd.DataFrame, list[str]]:
    """Merge the paper's columns beside ours and list where they differ.

    ``pairs`` maps our column -> the paper's column; the paper's column appears as
    ``"paper <name>"`` right after ours. ``spread`` maps our column -> its seed spread
    column (std). ``scale`` multiplies our values first (e.g. 100 for a 0-1 accuracy).
    Rows of ours that the paper does not have keep empty paper cells.
    """
    ours = ours.copy()
    for col in pairs:
        if scale != 1.0:
            ours[col] = ours[col] * scale
            if spread and col in spread and spread[col] in ours:
                ours[spread[col]] = ours[spread[col]] * scale
    p = paper[list(keys) + list(pairs.values())].rename(columns={v: f"paper {v}" for v in pairs.values()})
    for k in keys:  # align key dtypes (e.g. 0.1 vs "0.1")
        if ours[k].dtype != p[k].dtype:
            try:
                p[k] = p[k].astype(ours[k].dtype)
            except (TypeError, ValueError):
                ours[k], p[k] = ours[k].astype(str), p[k].astype(str)
    merged = ours.merge(p, on=list(keys), how="left")
    order = []
    for c in ours.columns:
        order.append(c)
        if c in pairs:
            order.append(f"paper {pairs[c]}")
    merged = merged[order + [c for c in merged.columns if c not in order]]
    return merged, compare_columns(
        merged, keys, {o: f"paper {p}" for o, p in pairs.items()}, spread=spread, tol=tol, unit=unit
    )


def interleave(table: pd.DataFrame, pairs: dict[str, str]) -> pd.DataFrame:
    """Columns reordered so that each paper column sits right after ours."""
    order = []
    for c in table.columns:
        if c in pairs.values():
            continue
        order.append(c)
        if c in pairs and pairs[c] in table.columns:
            order.append(pairs[c])
    order += [c for c in table.columns if c not in order]
    return table[order]


def compare_columns(
    table: pd.DataFrame,
    keys: Sequence[str],
    pairs: dict[str, str],
    *,
    spread: dict[str, str] | None = None,
    tol: float = 1.0,
    unit: str = " points",
    max_listed: int = 6,
) -> list[str]:
    """Statements comparing our columns with paper columns already in ``table``
    (``pairs``: our column -> its paper column)."""
    statements, n_cmp, n_diff, diffs = [], 0, 0, []
    for _, row in table.iterrows():
        for ocol, pcol in pairs.items():
            if ocol not in row or pcol not in row:
                continue
            pv = row[pcol]
            ov = row[ocol]
            if pd.isna(pv) or pd.isna(ov):
                continue
            n_cmp += 1
            sd = row[spread[ocol]] if spread and ocol in spread and spread[ocol] in row else np.nan
            t = max(tol, 2 * sd) if np.isfinite(sd) else tol
            diff = ov - pv
            if abs(diff) > t:
                n_diff += 1
                diffs.append(
                    (
                        abs(diff),
                        diff,
                        f"{_key_str(row, keys)}: our {ocol} {ov:.2f} vs the paper's {pv:.2f} "
                        f"({diff:+.2f}{unit}): differs.",
                    )
                )
    if len(diffs) > max_listed:  # many differences: the largest, and a summary of all
        d = np.array([x[1] for x in diffs])
        statements.append(
            f"Of the {n_diff} that differ, ours is lower in {int((d < 0).sum())} and higher in "
            f"{int((d > 0).sum())} (by {np.abs(d).min():.2f} to {np.abs(d).max():.2f}{unit}, median "
            f"{np.median(np.abs(d)):.2f}); the {max_listed} largest follow."
        )
        diffs = sorted(diffs, key=lambda x: -x[0])[:max_listed]
    statements += [x[2] for x in diffs]
    if n_cmp:
        statements.insert(
            0,
            f"{n_cmp - n_diff} of {n_cmp} numbers agree with the paper within "
            f"max({tol:g}{unit}, twice our seed spread); {n_diff} "
            f"{'differs' if n_diff == 1 else 'differ'}" + ".",
        )
    else:
        statements.insert(0, "No row of ours matches a row the paper printed: nothing to compare.")
    return statements


def gap_statement(
    table: pd.DataFrame, keys: Sequence[str], soft: str, hard: str, paper_soft: str, paper_hard: str
) -> list[str]:
    """Compare the soft-minus-hard gap row by row with the paper's gap."""
    out = []
    t = table.dropna(subset=[soft, hard])
    if t.empty:
        return out
    gaps = t[soft] - t[hard]
    out.append(
        f"Soft labels beat hard labels in {int((gaps > 0).sum())} of {len(t)} rows of ours "
        f"(gap {gaps.min():+.2f} to {gaps.max():+.2f} points)."
    )
    if paper_soft in t and t[paper_soft].notna().any():
        pt = t.dropna(subset=[paper_soft, paper_hard])
        pg = pt[paper_soft] - pt[paper_hard]
        og = pt[soft] - pt[hard]
        out.append(
            f"The paper: soft beats hard in {int((pg > 0).sum())} of {len(pt)} of these rows "
            f"(gap {pg.min():+.2f} to {pg.max():+.2f}); the largest paper gap is at "
            f"{_key_str(pt.loc[pg.idxmax()], keys)} ({pg.max():+.2f}), where ours is "
            f"{og.loc[pg.idxmax()]:+.2f}."
        )
    return out


def gap_headline(
    table: pd.DataFrame, soft: str, hard: str, paper_soft: str, paper_hard: str, agreement: str | None = None
) -> str:
    """One line: our soft-minus-hard gap range beside the paper's, and how many numbers agree."""
    t = table.dropna(subset=[soft, hard])
    if t.empty:
        return agreement or ""
    g = t[soft] - t[hard]
    line = f"Soft minus hard labels: ours {g.min():+.2f} to {g.max():+.2f} points"
    pt = t.dropna(subset=[paper_soft, paper_hard]) if paper_soft in t and paper_hard in t else t.iloc[:0]
    if len(pt):
        pg = pt[paper_soft] - pt[paper_hard]
        line += f", the paper's {pg.min():+.2f} to {pg.max():+.2f}"
    line += "."
    if agreement:
        line += " " + agreement.split(";")[0] + "."
    return line
