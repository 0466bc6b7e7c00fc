"""Agreement and quality metrics of crowd answers, and the entropy filter of workers.

All take crowd-kit's answer table (a DataFrame with ``task``, ``worker``, ``label``
columns) or a :class:`~kdcore.crowd.Responses`, and are vectorised over the answers
(no Python loop over tasks or workers). Worker skills enter through the one-coin
model: a worker of skill s gives the right label with probability s and each of the
L - 1 others with probability (1 - s) / (L - 1), L = the number of distinct labels.

- :func:`uncertainty`: entropy of the skill-weighted label scores of each task (or
  worker): sum over the answers of the one-coin probabilities of each label, normalised.
- :func:`consistency`: posterior of the aggregated label under the one-coin model with
  a uniform prior: prod_answers P(answer | label), normalised over labels.
- :func:`alpha_krippendorff`: Krippendorff's alpha, 1 - D_o / D_e, over the tasks with at
  least two answers (Krippendorff 1980; the definition of nltk's ``AnnotationTask.alpha``).
- :func:`accuracy_on_aggregates`: share of answers equal to the aggregated label.
- :func:`entropy_threshold`: drop the workers whose answers are the least uncertain
  (near-uniform answers give near-constant labels; crowd-kit's post-processing).

>>> import pandas as pd
>>> from kdcore.crowd.metrics import alpha_krippendorff
>>> df = pd.DataFrame({"task": [1, 1, 2, 2], "worker": ["a", "b", "a", "b"], "label": [0, 0, 1, 1]})
>>> alpha_krippendorff(df)
1.0
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ._responses import Responses

__all__ = ["uncertainty", "consistency", "alpha_krippendorff", "accuracy_on_aggregates", "entropy_threshold"]


def _frame(data: Any) -> pd.DataFrame:
    if isinstance(data, Responses):
        return data.to_dataframe()
    if not isinstance(data, pd.DataFrame):
        raise TypeError(
            "data must be a pandas DataFrame with 'task', 'worker', 'label' columns or a kdcore.crowd.Responses, "
            f"got {type(data).__name__}"
        )
    missing = [c for c in ("task", "worker", "label") if c not in data.columns]
    if missing:
        raise KeyError(f"data has no column(s) {missing}; expected 'task', 'worker', 'label', got {list(data.columns)}")
    return data


def _labels(frame: pd.DataFrame) -> tuple[np.ndarray, int]:
    """Label codes in order of first appearance (-1 for a missing label) and the number of
    distinct values, a missing label counting as one value that no answer matches."""
    codes, uniques = pd.factorize(frame["label"], sort=False)
    n = len(uniques) + int((codes < 0).any())
    return codes, n


def _row_skills(frame: pd.DataFrame, skills: pd.Series | None, missing: str) -> np.ndarray:
    """Each answer's worker skill (1 without skills). ``missing``: "error" or "nan"."""
    if skills is None:
        return np.ones(len(frame))
    if not isinstance(skills, pd.Series):
        raise TypeError(f"skills must be a pandas Series indexed by worker, got {type(skills).__name__}")
    if skills.index.has_duplicates:
        raise ValueError("skills has repeated workers")
    s = skills.reindex(pd.Index(frame["worker"])).to_numpy(dtype=np.float64)
    if missing == "error" and np.isnan(s).any():
        absent = set(frame["worker"].to_numpy()[np.isnan(s)].tolist())
        raise ValueError(f"no skill for workers {sorted(map(str, absent))[:10]}; give a skill for every worker")
    return s


def _groups(frame: pd.DataFrame, by: str) -> tuple[np.ndarray, pd.Index]:
    """Group codes of each answer in the sorted order of the ``by`` values (-1: a missing key)."""
    if by not in frame.columns:
        raise KeyError(f"cannot group by {by!r}: no such column in {list(frame.columns)}")
    codes, uniques = pd.factorize(frame[by], sort=True)
    return codes, pd.Index(uniques, name=by)


def _one_coin_table(codes: np.ndarray, n_labels: int, s: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """S[g, j] = sum over the answers of group g of P(label j | answer, skill)."""
    if n_labels < 2:
        raise ZeroDivisionError("one distinct label only: the one-coin probabilities (1 - s) / (L - 1) are undefined")
    base = (1.0 - s) / (n_labels - 1)
    on = groups >= 0
    table = np.repeat(np.bincount(groups[on], weights=base[on], minlength=n_groups)[:, None], n_labels, axis=1)
    hit = on & (codes >= 0)
    table += np.bincount(
        groups[hit].astype(np.int64) * n_labels + codes[hit], weights=(s - base)[hit], minlength=n_groups * n_labels
    ).reshape(n_groups, n_labels)
    return table


def _entropy(table: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row normalised to sum 1 (NaN for a row of zeros)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p = table / (table.sum(axis=1, keepdims=True) + 1e-6)
        p = p / p.sum(axis=1, keepdims=True)
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), np.where(p < 0, -np.inf, 0.0))
    return np.where(np.isnan(p).any(axis=1), np.nan, terms.sum(axis=1))


def uncertainty(data: Any, skills: pd.Series | None = None, *, by: str = "task", aggregate: bool = True):
    """Entropy of the skill-weighted label scores per task (or worker, ``by="worker"``).

    Parameters
    ----------
    data : DataFrame (task, worker, label) or Responses
    skills : Series by worker, optional
        One-coin skills; without them every answer counts 1 for its label.
    by : column to group the answers by ("task" or "worker")
    aggregate : bool
        True: the mean over the groups (float); False: a Series by group, sorted.
    """
    frame = _frame(data)
    codes, n_labels = _labels(frame)
    s = _row_skills(frame, skills, "error")
    groups, index = _groups(frame, by)
    h = pd.Series(_entropy(_one_coin_table(codes, n_labels, s, groups, len(index))), index=index)
    return float(h.mean()) if aggregate else h


def consistency(data: Any, labels: pd.Series, skills: pd.Series, *, by_task: bool = False):
    """Posterior probability of each task's aggregated label under the one-coin model.

    P(label j | answers) ∝ prod_answers (s if answer = j else (1 - s) / (L - 1)), uniform
    prior; 0 where every label has probability 0 (underflow). Answers of workers
    without a skill are left out.

    Parameters
    ----------
    data : DataFrame (task, worker, label) or Responses
    labels : Series by task, the aggregated labels
    skills : Series by worker
    by_task : bool
        False: the mean over tasks (float); True: a Series by task, sorted.
    """
    frame = _frame(data)
    codes, n_labels = _labels(frame)
    if n_labels < 2:
        raise ZeroDivisionError("one distinct label only: the one-coin probabilities (1 - s) / (L - 1) are undefined")
    s = _row_skills(frame, skills, "nan")
    groups, index = _groups(frame, "task")
    base = (1.0 - s) / (n_labels - 1)
    v = np.repeat(base[:, None], n_labels, axis=1)
    rows = np.flatnonzero(codes >= 0)
    v[rows, codes[rows]] = s[rows]
    v[np.isnan(s)] = 1.0  # pandas' prod skips the missing skills
    on = groups >= 0
    order = np.argsort(groups[on], kind="stable")
    g_sorted = groups[on][order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    prod = np.multiply.reduceat(v[on][order], starts, axis=0) if len(starts) else np.empty((0, n_labels))
    _, uniques = pd.factorize(frame["label"], sort=False)
    col = pd.Index(uniques).get_indexer(pd.Index(labels.reindex(index).to_numpy()))
    if (col < 0).any():
        raise ValueError(f"labels has no label (or one no worker gave) for {int((col < 0).sum())} tasks")
    den = prod.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den != 0, prod[np.arange(len(prod)), col] / np.where(den != 0, den, 1.0), 0.0)
    result = pd.Series(out, index=index)
    return result if by_task else float(result.mean())


def _binary_distance(a: Any, b: Any) -> float:
    return 0.0 if a == b else 1.0


def alpha_krippendorff(data: Any, distance: Callable[[Any, Any], float] | None = None) -> float:
    """Krippendorff's alpha = 1 - D_o / D_e over the tasks with at least two answers.

    D_o = sum_t sum_{j,l} n_tj n_tl d(j, l) / (m_t - 1) / sum_t m_t, D_e = sum_{j,l} N_j N_l d(j, l) /
    (M (M - 1)), n_tj the answers j of task t (m_t in all), N_j = sum_t n_tj (M in all);
    ``distance`` d defaults to 0 for equal labels and 1 otherwise. 1.0 when one label
    only is used.
    """
    frame = _frame(data)
    if frame["label"].isna().any():
        raise ValueError("alpha_krippendorff: the labels have missing values (NaN); drop those answers first")
    if len(frame) == 0:
        raise ValueError("Cannot calculate alpha, no data present!")
    codes, uniques = pd.factorize(frame["label"], sort=False)
    K = len(uniques)
    if K == 1:
        return 1.0
    t, tasks = pd.factorize(frame["task"], sort=False)
    if frame["worker"].nunique(dropna=False) == 1 and len(tasks) == 1:
        raise ValueError("Cannot calculate alpha, only one coder and item present!")
    n = np.bincount(t.astype(np.int64) * K + codes, minlength=len(tasks) * K).reshape(len(tasks), K).astype(float)
    m = n.sum(axis=1)
    n = n[m >= 2]
    m = m[m >= 2]
    total = n.sum(axis=0)
    if (total > 0).sum() == 1:
        return 1.0
    d = np.ones((K, K)) - np.eye(K)
    if distance is not None:
        values = list(uniques)
        d = np.array([[float(distance(values[j], values[i])) for j in range(K)] for i in range(K)])
    do = float(np.sum(((n @ d) * n).sum(axis=1) / (m - 1)) / m.sum())
    M = total.sum()
    de = float(total @ d @ total / (M * (M - 1)))
    return 1.0 - do / de


def accuracy_on_aggregates(data: Any, aggregates: pd.Series, *, by: str | None = None):
    """Share of the answers equal to their task's aggregated label (tasks without one left out).

    Identical (task, worker, label) answers count once. ``by="worker"`` (or "task", "label"):
    a Series by that column, sorted; ``by=None``: one float.
    """
    frame = _frame(data)
    if not isinstance(aggregates, pd.Series):
        raise TypeError(f"aggregates must be a pandas Series indexed by task, got {type(aggregates).__name__}")
    if "weight" in frame.columns:
        raise NotImplementedError("answers with a 'weight' column are not supported; drop the column")
    frame = frame[["task", "worker", "label"]].drop_duplicates()
    truth = aggregates[~aggregates.index.duplicated(keep="first")].reindex(pd.Index(frame["task"]))
    keep = truth.notna().to_numpy()
    frame = frame[keep]
    score = (frame["label"].to_numpy() == truth.to_numpy()[keep]).astype(np.float64)
    if by is None:
        return float(score.sum() / len(score)) if len(score) else float("nan")
    groups, index = _groups(frame, by)
    on = groups >= 0
    n = np.bincount(groups[on], minlength=len(index))
    right = np.bincount(groups[on], weights=score[on], minlength=len(index))
    with np.errstate(invalid="ignore"):
        return pd.Series(right / n, index=index)


def entropy_threshold(
    data: Any, skills: pd.Series | None = None, *, percentile: float = 10, min_answers: int = 2
) -> pd.DataFrame:
    """The answers without those of the workers whose answers are least uncertain.

    Among the workers with at least ``min_answers`` labelled answers, those whose
    :func:`uncertainty` (``by="worker"``) is at or below its ``percentile``-th percentile
    are removed. Warns when half the answers or more are removed.
    """
    frame = _frame(data)
    counts = frame.dropna(subset=["label"]).groupby("worker").size()
    kept = counts[counts >= min_answers].index
    candidates = frame[frame["worker"].isin(kept)]
    u = uncertainty(candidates, skills, by="worker", aggregate=False)
    cutoff = np.percentile(u, percentile)
    removed = u[u <= cutoff].index
    out = frame[~frame["worker"].isin(removed)]
    if out.shape[0] <= frame.shape[0] // 2:
        warnings.warn(
            "Removed >= 1/2 of answers with entropy_threshold. This might lead to poor annotation quality. "
            "Try decreasing percentile or min_answers.",
            stacklevel=2,
        )
    return out
