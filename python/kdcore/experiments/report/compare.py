"""How our numbers are set beside the papers' (:mod:`kdcore.experiments.paper`).

Each comparison says in plain words where our measurement agrees with the paper
and where it does not. A difference is called a difference when it exceeds
``tol`` (default: 1 accuracy point, or twice our seed spread when that is
larger); nothing is tuned to make a table match.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "side_by_side",
    "interleave",
    "compare_columns",
    "gap_statement",
    "gap_headline",
    "teacher_learnt",
    "mark_invalid_teacher",
]


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
    out: list[str] = []
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
        top = pg.to_numpy().argmax()  # the row of the largest paper gap
        out.append(
            f"The paper: soft beats hard in {int((pg > 0).sum())} of {len(pt)} of these rows "
            f"(gap {pg.min():+.2f} to {pg.max():+.2f}); the largest paper gap is at "
            f"{_key_str(pt.iloc[top], keys)} ({pg.max():+.2f}), where ours is "
            f"{og.iloc[top]:+.2f}."
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


#: a teacher whose mean test accuracy is less than this many points above chance has not learnt
#: (on the quick deep profile's 150 test images one binomial standard error at 50 % is 4.1 points)
TEACHER_MARGIN = 5.0


def teacher_learnt(acc, chance: float = 50.0, margin: float = TEACHER_MARGIN) -> np.ndarray:
    """True where a teacher's test accuracy (%) is at least ``margin`` points above ``chance``.

    Soft labels from a teacher at chance carry no information about the task, so a
    soft-minus-hard gap measured with them says nothing about soft labels.

    Examples
    --------
    >>> teacher_learnt([47.7, 61.3, 55.0]).tolist()
    [False, True, True]
    """
    a = np.asarray(acc, dtype=float)
    return np.isfinite(a) & (a >= chance + margin)


def mark_invalid_teacher(
    table: pd.DataFrame,
    keys: Sequence[str],
    *,
    teacher: str = "teacher",
    soft: Sequence[str] = ("soft",),
    gaps: Sequence[str] = ("soft_minus_hard",),
    chance: float = 50.0,
    margin: float = TEACHER_MARGIN,
) -> tuple[pd.DataFrame, list[str]]:
    """Rows whose teacher has not learnt (:func:`teacher_learnt`): their soft-label accuracy and
    soft-minus-hard gap are blanked (a comparison with no signal is not a result), a column
    ``teacher learnt`` says which rows, and one statement per such row says why.

    Returns the marked copy of ``table`` and the statements; a table without ``teacher`` is returned as is.
    """
    if teacher not in table:
        return table, []
    t = table.copy()
    ok = teacher_learnt(t[teacher].to_numpy(dtype=float), chance, margin)
    if not ok.all():  # the column is only worth its width when some row failed
        t["teacher learnt"] = ok
    st = []
    for i in np.flatnonzero(~ok):
        row = t.iloc[i]
        st.append(
            f"{_key_str(row, keys)}: the teacher is at {float(row[teacher]):.1f} % (chance {chance:g} %, "
            f"needed {chance + margin:g} %): its soft labels carry no signal, so this row's soft-label "
            "accuracy and soft-minus-hard gap are not reported."
        )
    for c in list(soft) + list(gaps):
        if c in t:
            t.loc[~ok, c] = np.nan
    return t, st
