"""Seeded, vectorised simulators of crowd answers with a known truth.

Three generative models (docs/maths.md B.1, B.5):

- :func:`dawid_skene`: a full K x K confusion matrix per worker (Dawid & Skene, 1979);
- :func:`one_coin`: one skill per worker, wrong answers spread evenly over the other classes;
- :func:`two_type`: binary labels {-1, +1} with a hidden task type; a worker's
  reliability depends on the type (Kong, Mandal, Katselis, Srikant 2023).

Who answers what: either ``answers_per_task`` distinct workers per task (chosen
uniformly, Floyd's sampling vectorised over tasks), or each (worker, task) pair
independently with probability ``alpha``. In the ``alpha`` design a task may get
no answer at all; :class:`~kdcore.crowd.Responses` holds no task without an
answer, so ``empty="drop"`` (default) leaves such tasks out of the responses and
of the returned truth (task ids keep their original integer values, so there are
gaps), and ``empty="answer"`` gives each of them one answer from a worker drawn
uniformly (a small departure from the model, documented so it can be chosen).

Everything is drawn with one ``numpy.random.Generator`` seeded by
``random_state``: same seed, same data. Task ids are ``0..n_tasks-1``, worker ids
``0..n_workers-1``; all classes are declared in the returned ``Responses`` even
when no answer uses one.

Example
-------
>>> from kdcore.crowd import simulate
>>> responses, truth = simulate.one_coin(1000, 30, 3, answers_per_task=5, random_state=0)
>>> responses.n_responses
5000
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._check import check_float, check_int
from ._responses import Responses

__all__ = ["dawid_skene", "one_coin", "two_type", "random_confusions"]


# ---------------------------------------------------------------------------- checks
def check_range(rng_, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in rng_)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a pair (low, high) of floats, got {rng_!r}") from exc
    if not (0.0 <= lo <= hi <= 1.0):
        raise ValueError(f"{name} must satisfy 0 <= low <= high <= 1, got ({lo}, {hi})")
    return lo, hi


def _check_priors(priors, n_classes: int) -> np.ndarray:
    if priors is None:
        return np.full(n_classes, 1.0 / n_classes)
    p = np.asarray(priors, dtype=np.float64)
    if p.shape != (n_classes,):
        raise ValueError(f"priors must have shape ({n_classes},), got {p.shape}")
    if not np.all(np.isfinite(p)) or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"priors must be finite, non-negative and not all zero, got {p}")
    return p / p.sum()


# ---------------------------------------------------------------------------- who answers what
def distinct_workers(rng: np.random.Generator, n_tasks: int, n_workers: int, m: int) -> np.ndarray:
    """(n_tasks, m) distinct worker codes per row, each m-subset equally likely (Floyd's algorithm)."""
    out = np.empty((n_tasks, m), dtype=np.int64)
    for col, i in enumerate(range(n_workers - m, n_workers)):
        r = rng.integers(0, i + 1, size=n_tasks)
        if col:
            taken = (out[:, :col] == r[:, None]).any(axis=1)
            r[taken] = i
        out[:, col] = r
    return out


def _design(rng, n_tasks: int, n_workers: int, answers_per_task, alpha, empty: str):
    """Task and worker codes of the answered pairs, sorted by task."""
    if (answers_per_task is None) == (alpha is None):
        raise ValueError("give exactly one of answers_per_task (answers per task) or alpha (answer probability)")
    if empty not in ("drop", "answer"):
        raise ValueError(f"empty must be 'drop' or 'answer', got {empty!r}")
    if answers_per_task is not None:
        m = check_int(answers_per_task, "answers_per_task", minimum=1)
        if m > n_workers:
            raise ValueError(f"answers_per_task={m} exceeds n_workers={n_workers} (each worker answers a task once)")
        workers = distinct_workers(rng, n_tasks, n_workers, m)
        tasks = np.repeat(np.arange(n_tasks, dtype=np.int64), m)
        return tasks, workers.ravel()
    alpha = check_float(alpha, "alpha", minimum=0.0, maximum=1.0, strict_min=True)
    total = n_tasks * n_workers
    n = int(rng.binomial(total, alpha))
    if alpha == 1.0:
        flat = np.arange(total, dtype=np.int64)
    else:
        flat = np.sort(rng.choice(total, size=n, replace=False))
    tasks, workers = np.divmod(flat, n_workers)
    if empty == "answer":
        has = np.zeros(n_tasks, bool)
        has[tasks] = True
        missing = np.flatnonzero(~has)
        if missing.size:
            extra_w = rng.integers(0, n_workers, size=missing.size)
            tasks = np.concatenate([tasks, missing])
            workers = np.concatenate([workers, extra_w])
            order = np.argsort(tasks, kind="stable")
            tasks, workers = tasks[order], workers[order]
    if tasks.size == 0:
        raise ValueError(f"alpha={alpha} gave no answer at all for {n_tasks} tasks x {n_workers} workers")
    return tasks, workers


def _draw_rows(rng, cum: np.ndarray) -> np.ndarray:
    """One class per row of cumulative probabilities ``cum`` (N, K)."""
    u = rng.random(cum.shape[0]) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), cum.shape[1] - 1)


def _build(tasks, workers, labels, classes, n_tasks, truth_codes, name="truth"):
    responses = Responses.from_arrays(tasks, workers, labels, classes=classes)
    ids = responses.task_ids.to_numpy()
    truth = pd.Series(np.asarray(classes)[truth_codes[ids]], index=pd.Index(ids, name="task"), name=name)
    return responses, truth, ids


# ---------------------------------------------------------------------------- models
def random_confusions(n_workers: int, n_classes: int, skill_range=(0.6, 0.9), random_state=None) -> np.ndarray:
    """(n_workers, K, K) row-stochastic confusions: diagonal ~ U(skill_range), the
    rest of each row split over the other classes by a flat Dirichlet draw."""
    n_workers = check_int(n_workers, "n_workers", minimum=1)
    n_classes = check_int(n_classes, "n_classes", minimum=2)
    lo, hi = check_range(skill_range, "skill_range")
    rng = np.random.default_rng(random_state)
    diag = rng.uniform(lo, hi, size=(n_workers, n_classes))
    off = rng.dirichlet(np.ones(n_classes - 1), size=(n_workers, n_classes))
    conf = np.empty((n_workers, n_classes, n_classes))
    for k in range(n_classes):
        others = [c for c in range(n_classes) if c != k]
        conf[:, k, k] = diag[:, k]
        conf[:, k, others] = (1.0 - diag[:, k])[:, None] * off[:, k, :]
    return conf


def dawid_skene(
    n_tasks: int = 1000,
    n_workers: int = 50,
    n_classes: int = 2,
    *,
    answers_per_task: int | None = None,
    alpha: float | None = None,
    confusions: np.ndarray | None = None,
    skill_range=(0.6, 0.9),
    priors=None,
    empty: str = "drop",
    return_params: bool = False,
    random_state=None,
):
    """Answers from the Dawid-Skene model: P(answer l | truth k, worker w) = confusions[w, k, l].

    Parameters
    ----------
    n_tasks, n_workers, n_classes : int
    answers_per_task : int, optional
        Distinct workers per task (each worker answers a task at most once).
    alpha : float, optional
        Instead: each (worker, task) pair is answered with probability alpha.
    confusions : ndarray (n_workers, K, K), optional
        Row-stochastic confusions; by default :func:`random_confusions` with ``skill_range``.
    priors : array (K,), optional
        Class prior of the truth; uniform by default.
    empty : {"drop", "answer"}
        What to do with tasks nobody answered (``alpha`` design only); see the module doc.
    return_params : bool
        Also return ``{"confusions": ..., "priors": ...}``.

    Returns
    -------
    responses : Responses, with classes ``0..K-1``
    truth : pd.Series of true classes indexed by task id (answered tasks only)
    params : dict, only if ``return_params``
    """
    n_tasks = check_int(n_tasks, "n_tasks", minimum=1)
    n_workers = check_int(n_workers, "n_workers", minimum=1)
    n_classes = check_int(n_classes, "n_classes", minimum=2)
    rng = np.random.default_rng(random_state)
    if confusions is None:
        conf = random_confusions(n_workers, n_classes, skill_range, random_state=rng)
    else:
        conf = np.asarray(confusions, dtype=np.float64)
        if conf.shape != (n_workers, n_classes, n_classes):
            raise ValueError(f"confusions must have shape {(n_workers, n_classes, n_classes)}, got {conf.shape}")
        if not np.all(np.isfinite(conf)) or (conf < 0).any() or not np.allclose(conf.sum(-1), 1.0):
            raise ValueError("confusions must be finite, non-negative, and each row must sum to 1")
    prior = _check_priors(priors, n_classes)
    truth_codes = rng.choice(n_classes, size=n_tasks, p=prior)
    tasks, workers = _design(rng, n_tasks, n_workers, answers_per_task, alpha, empty)
    cum = np.cumsum(conf, axis=-1)[workers, truth_codes[tasks]]
    labels = _draw_rows(rng, cum)
    responses, truth, _ = _build(tasks, workers, labels, list(range(n_classes)), n_tasks, truth_codes)
    if return_params:
        return responses, truth, {"confusions": conf, "priors": prior}
    return responses, truth


def one_coin(
    n_tasks: int = 1000,
    n_workers: int = 50,
    n_classes: int = 2,
    *,
    answers_per_task: int | None = None,
    alpha: float | None = None,
    skills=None,
    skill_range=(0.6, 0.9),
    priors=None,
    empty: str = "drop",
    return_params: bool = False,
    random_state=None,
):
    """Answers from the one-coin model: worker w is right with probability skills[w],
    otherwise answers one of the other K-1 classes uniformly.

    ``skills`` (n_workers,) defaults to U(skill_range) draws. Same design options
    and returns as :func:`dawid_skene` (``params`` = ``{"skills": ..., "priors": ...}``).
    """
    n_tasks = check_int(n_tasks, "n_tasks", minimum=1)
    n_workers = check_int(n_workers, "n_workers", minimum=1)
    n_classes = check_int(n_classes, "n_classes", minimum=2)
    rng = np.random.default_rng(random_state)
    if skills is None:
        lo, hi = check_range(skill_range, "skill_range")
        p = rng.uniform(lo, hi, size=n_workers)
    else:
        p = np.asarray(skills, dtype=np.float64)
        if p.shape != (n_workers,):
            raise ValueError(f"skills must have shape ({n_workers},), got {p.shape}")
        if not np.all(np.isfinite(p)) or (p < 0).any() or (p > 1).any():
            raise ValueError("skills must be probabilities in [0, 1]")
    prior = _check_priors(priors, n_classes)
    truth_codes = rng.choice(n_classes, size=n_tasks, p=prior)
    tasks, workers = _design(rng, n_tasks, n_workers, answers_per_task, alpha, empty)
    y = truth_codes[tasks]
    right = rng.random(tasks.size) < p[workers]
    wrong = (y + rng.integers(1, n_classes, size=tasks.size)) % n_classes  # uniform over the other classes
    labels = np.where(right, y, wrong)
    responses, truth, _ = _build(tasks, workers, labels, list(range(n_classes)), n_tasks, truth_codes)
    if return_params:
        return responses, truth, {"skills": p, "priors": prior}
    return responses, truth


_REGIME_DEFAULTS = {
    "easy_hard": ((0.7, 0.95), (0.5, 0.65)),
    "specialist": ((0.9, 0.9), (0.55, 0.55)),
}


def two_type(
    n_tasks: int = 1000,
    n_workers: int = 50,
    alpha: float = 0.2,
    *,
    regime: str = "easy_hard",
    r1_range=None,
    r2_range=None,
    type_share: float = 0.5,
    reliabilities=None,
    class_share: float = 0.5,
    empty: str = "drop",
    random_state=None,
):
    """Binary answers from the two-type model of docs/maths.md B.1 (Kong et al. 2023).

    Each task j has a true label y_j in {-1, +1} (P(+1) = ``class_share``) and a hidden
    type t_j in {0, 1} (P(type 0) = ``type_share``; type 0 is the paper's type 1).
    Worker i answers each task with probability ``alpha`` and, when it does, is right
    with probability r[i, t_j] (otherwise it answers -y_j).

    Regimes (``reliabilities`` (n_workers, 2) overrides both):

    - ``"easy_hard"``: r[i, 0] ~ U(r1_range), r[i, 1] ~ U(r2_range); defaults
      (0.7, 0.95) and (0.5, 0.65), so type 0 is easy and type 1 hard for everybody.
    - ``"specialist"``: the first half of the workers have r = (U(r1_range), U(r2_range)),
      the other half the swapped pair; defaults (0.9, 0.9) and (0.55, 0.55), i.e.
      half the workers are (0.9, 0.55) and half (0.55, 0.9).

    Returns
    -------
    responses : Responses with classes ``[-1, 1]``
    truth : pd.Series of -1/+1 indexed by task id
    types : pd.Series of 0/1 indexed by task id
    reliabilities : ndarray (n_workers, 2); row i belongs to worker id i (a worker who
        happened to answer nothing is absent from ``responses.worker_ids`` but keeps its row)

    Tasks nobody answered follow ``empty`` (see the module doc).
    """
    n_tasks = check_int(n_tasks, "n_tasks", minimum=1)
    n_workers = check_int(n_workers, "n_workers", minimum=1)
    if regime not in _REGIME_DEFAULTS:
        raise ValueError(f"regime must be one of {list(_REGIME_DEFAULTS)}, got {regime!r}")
    for name, val in (("type_share", type_share), ("class_share", class_share)):
        check_float(val, name, minimum=0.0, maximum=1.0)
    rng = np.random.default_rng(random_state)
    if reliabilities is not None:
        rel = np.asarray(reliabilities, dtype=np.float64)
        if rel.shape != (n_workers, 2):
            raise ValueError(f"reliabilities must have shape ({n_workers}, 2), got {rel.shape}")
        if not np.all(np.isfinite(rel)) or (rel < 0).any() or (rel > 1).any():
            raise ValueError("reliabilities must be probabilities in [0, 1]")
    else:
        d1, d2 = _REGIME_DEFAULTS[regime]
        lo1, hi1 = check_range(d1 if r1_range is None else r1_range, "r1_range")
        lo2, hi2 = check_range(d2 if r2_range is None else r2_range, "r2_range")
        a = rng.uniform(lo1, hi1, size=n_workers)
        b = rng.uniform(lo2, hi2, size=n_workers)
        rel = np.column_stack([a, b])
        if regime == "specialist":
            half = n_workers // 2
            rel[half:] = rel[half:, ::-1]
    y = np.where(rng.random(n_tasks) < class_share, 1, -1)
    t = (rng.random(n_tasks) >= type_share).astype(np.int64)
    tasks, workers = _design(rng, n_tasks, n_workers, None, alpha, empty)
    yt = y[tasks]
    right = rng.random(tasks.size) < rel[workers, t[tasks]]
    labels = np.where(right, yt, -yt)
    responses = Responses.from_arrays(tasks, workers, labels, classes=[-1, 1])
    ids = responses.task_ids.to_numpy()
    index = pd.Index(ids, name="task")
    truth = pd.Series(y[ids], index=index, name="truth")
    types = pd.Series(t[ids], index=index, name="type")
    return responses, truth, types, rel
