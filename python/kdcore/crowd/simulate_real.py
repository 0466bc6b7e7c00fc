"""Crowds of simulated answers on real inputs, under the two-type model (docs/maths.md B.1).

:func:`kdcore.crowd.simulate.two_type` draws the hidden task type at random. On real inputs
the type should follow the inputs: a hard task is one that people find hard, i.e. a
genuinely ambiguous example. :func:`crowd_on_inputs` takes the true binary label of every
example and a *hardness score* supplied by the caller (for instance minus the absolute logit
of a trained teacher, so low-margin examples are hard, or 1 for the digits people confuse),
puts the ``round(hard_share * n)`` hardest examples in the hard type (type 1) and the rest in
the easy type (type 0), and gives every example ``answers_per_task`` answers from distinct
workers: worker i is right with probability r[i, t] on a task of type t, otherwise it gives
the other label (the two-type model of Kong, Mandal, Katselis and Srikant, 2023).

Worker skills: r[i, 0] ~ U(``easy_skill``), r[i, 1] ~ U(``hard_skill``), or a given
``reliabilities`` (n_workers, 2). Seeded (one ``numpy.random.Generator``) and vectorised.

Example
-------
>>> import numpy as np
>>> from kdcore.crowd.simulate_real import crowd_on_inputs
>>> y = np.where(np.arange(1000) % 2, 1, -1)
>>> hardness = np.random.default_rng(0).random(1000)
>>> sim = crowd_on_inputs(y, hardness, answers_per_task=5, hard_share=0.3, random_state=0)
>>> sim.responses.n_responses, int(sim.types.sum())
(5000, 300)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._check import check_float, check_int
from ._responses import Responses
from .simulate import check_range, distinct_workers

__all__ = ["CrowdOnInputs", "crowd_on_inputs"]


@dataclass(frozen=True)
class CrowdOnInputs:
    """A simulated crowd on real inputs.

    Attributes
    ----------
    responses : Responses with classes ``[-1, 1]``; task ids are the given ``task_ids``
    truth : Series of -1/+1 indexed by task id
    types : Series of 0 (easy) / 1 (hard) indexed by task id
    reliabilities : ndarray (n_workers, 2), r[i, t] = P(worker i right | type t)
    """

    responses: Responses
    truth: pd.Series
    types: pd.Series
    reliabilities: np.ndarray


def crowd_on_inputs(
    y,
    hardness,
    *,
    answers_per_task: int = 5,
    hard_share: float = 0.3,
    n_workers: int = 50,
    easy_skill=(0.7, 0.95),
    hard_skill=(0.5, 0.65),
    reliabilities=None,
    task_ids=None,
    random_state=None,
) -> CrowdOnInputs:
    """Answers of a simulated crowd for every example, the hardest ones of the hard type.

    Parameters
    ----------
    y : array (n,) of true labels in {-1, +1}
    hardness : array (n,) of floats, larger = harder (ties broken by position, stably)
    answers_per_task : int, distinct workers per example (<= n_workers)
    hard_share : float in [0, 1], share of examples in the hard type
    n_workers : int
    easy_skill, hard_skill : (low, high), ranges of the uniform per-worker skills per type
    reliabilities : ndarray (n_workers, 2), optional; overrides the two ranges
    task_ids : array (n,), optional; task ids of the examples (default 0..n-1)
    random_state : int, Generator or None

    Returns
    -------
    CrowdOnInputs
    """
    yv = np.asarray(y)
    if yv.ndim != 1 or yv.size == 0:
        raise ValueError(f"y must be a non-empty 1-d array of labels in {{-1, +1}}, got shape {yv.shape}")
    if yv.dtype.kind not in "iuf" or not np.all((yv == 1) | (yv == -1)):
        raise ValueError("y must hold labels in {-1, +1}")
    n = yv.size
    h = np.asarray(hardness, dtype=np.float64)
    if h.shape != (n,):
        raise ValueError(f"hardness must have shape ({n},) like y, got {h.shape}")
    if not np.all(np.isfinite(h)):
        raise ValueError("hardness contains NaN or infinite values")
    n_workers = check_int(n_workers, "n_workers", minimum=1)
    m = check_int(answers_per_task, "answers_per_task", minimum=1)
    if m > n_workers:
        raise ValueError(f"answers_per_task={m} exceeds n_workers={n_workers} (each worker answers a task once)")
    hard_share = check_float(hard_share, "hard_share", minimum=0.0, maximum=1.0)
    rng = np.random.default_rng(random_state)
    if reliabilities is not None:
        rel = np.asarray(reliabilities, dtype=np.float64)
        if rel.shape != (n_workers, 2):
            raise ValueError(f"reliabilities must have shape ({n_workers}, 2), got {rel.shape}")
        if not np.all(np.isfinite(rel)) or (rel < 0).any() or (rel > 1).any():
            raise ValueError("reliabilities must be probabilities in [0, 1]")
    else:
        lo1, hi1 = check_range(easy_skill, "easy_skill")
        lo2, hi2 = check_range(hard_skill, "hard_skill")
        rel = np.column_stack([rng.uniform(lo1, hi1, n_workers), rng.uniform(lo2, hi2, n_workers)])
    ids = np.arange(n) if task_ids is None else np.asarray(task_ids)
    if ids.shape != (n,):
        raise ValueError(f"task_ids must have shape ({n},), got {ids.shape}")
    if pd.Index(ids).has_duplicates:
        raise ValueError("task_ids must be unique")
    n_hard = int(round(hard_share * n))
    types = np.zeros(n, dtype=np.int64)
    types[np.argsort(-h, kind="stable")[:n_hard]] = 1
    workers = distinct_workers(rng, n, n_workers, m).ravel()
    tasks = np.repeat(np.arange(n, dtype=np.int64), m)
    yt = yv.astype(np.int64)[tasks]
    right = rng.random(tasks.size) < rel[workers, types[tasks]]
    labels = np.where(right, yt, -yt)
    responses = Responses.from_arrays(ids[tasks], workers, labels, classes=[-1, 1])
    index = pd.Index(ids, name="task")
    truth = pd.Series(yv.astype(np.int64), index=index, name="truth")
    typ = pd.Series(types, index=index, name="type")
    order = responses.task_ids
    return CrowdOnInputs(responses, truth.loc[order], typ.loc[order], rel)
