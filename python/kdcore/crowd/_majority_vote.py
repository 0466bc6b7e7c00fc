"""Majority vote and weighted majority vote (one C++ vote kernel, kdcore/crowd.hpp).

``MajorityVote``: each task's label is the class most workers gave; ``probas_`` is
the share of votes (crowd-kit's convention). ``WeightedMajorityVote``: each worker's
vote counts ``weight[w]``; with reliabilities (probability p_w of a right answer)
the weights are Nitzan-Paroush log-odds w = ln(p (K-1) / (1 - p)) (docs/maths.md B.4;
for two classes ln(p / (1 - p))), optimal for one-coin workers, and ``probas_`` is
then the one-coin posterior under a uniform class prior, softmax of the scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..backends import _core, check_n_threads
from . import _reference as ref
from ._base import BaseAggregator
from ._responses import Responses
from .distributed import fit_dask, is_dask_dataframe

__all__ = ["MajorityVote", "WeightedMajorityVote", "nitzan_paroush_weights"]

#: reliabilities are clipped to [P_CLIP, 1 - P_CLIP] before taking log-odds (|w| <= 13.8)
P_CLIP = 1e-6


def vote(
    responses: Responses, weight: np.ndarray | None, backend: str, n_threads: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores (n_tasks, K), best class codes (first among ties), number of tied classes)."""
    if backend == "numpy":
        return ref.vote_scores(
            responses.task, responses.worker, responses.label, responses.n_tasks, responses.n_classes, weight
        )
    check_n_threads(n_threads)
    return _core.vote_scores(
        responses.task_indptr,
        responses.task_worker,
        responses.task_label,
        responses.n_tasks,
        responses.n_workers,
        responses.n_classes,
        weight,
        int(n_threads),
    )


def pick_winners(scores: np.ndarray, best: np.ndarray, n_tied: np.ndarray, tie_break: str, random_state) -> np.ndarray:
    """The winner of each task: ``best`` (the first tied class in label order) for
    "first"; for "random", a class drawn uniformly among the tied ones (seeded)."""
    if tie_break not in ("random", "first"):
        raise ValueError(f"tie_break must be 'random' or 'first', got {tie_break!r}")
    labels = best.astype(np.intp)
    if tie_break == "random":
        rows = np.flatnonzero(n_tied > 1)
        if rows.size:
            rng = np.random.default_rng(random_state)
            pick = rng.integers(0, n_tied[rows])  # the pick-th tied class of each row
            sc = scores[rows]
            top = sc.max(axis=1, keepdims=True)
            tied = (top - sc) <= 1e-12 * np.maximum(1.0, np.abs(top))  # the kernel's tie rule
            labels[rows] = np.argmax(np.cumsum(tied, axis=1) > pick[:, None], axis=1)
    return labels


def nitzan_paroush_weights(reliabilities, n_classes: int = 2) -> np.ndarray:
    """w = ln(p (K-1) / (1 - p)) with p clipped to [P_CLIP, 1 - P_CLIP]; negative for
    workers worse than chance (1/K), so their votes count against what they say."""
    p = np.asarray(reliabilities, dtype=np.float64)
    if p.ndim != 1 or not np.all(np.isfinite(p)) or (p < 0).any() or (p > 1).any():
        raise ValueError("reliabilities must be a 1-d array of probabilities in [0, 1]")
    p = np.clip(p, P_CLIP, 1 - P_CLIP)
    return np.log(p * (n_classes - 1) / (1 - p))


def _per_worker(values, responses: Responses, name: str) -> np.ndarray:
    """A per-worker array aligned with responses.worker_ids from an array, Series or dict."""
    if isinstance(values, dict):
        values = pd.Series(values)
    if isinstance(values, pd.Series):
        missing = responses.worker_ids.difference(values.index)
        if len(missing):
            raise ValueError(f"{name} has no value for workers {list(missing[:5])}")
        arr = values.reindex(responses.worker_ids).to_numpy(dtype=np.float64)
    else:
        arr = np.asarray(values)
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if arr.shape != (responses.n_workers,):
            raise ValueError(f"{name} must have one value per worker ({responses.n_workers}), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN/inf)")
    return np.ascontiguousarray(arr)


class MajorityVote(BaseAggregator):
    """The most frequent answer of each task.

    Parameters
    ----------
    tie_break : {"random", "first"}
        "random": a tied task gets one of its tied classes uniformly at random
        (seeded by ``random_state``); "first": the first tied class in label order
        (crowd-kit's behaviour).
    random_state : int, Generator or None
    backend : {"auto", "cpp", "numpy"}
    n_threads : int, 0 = default

    Attributes
    ----------
    labels_, probas_ (vote shares), classes_, scores_ (ndarray n_tasks x K of vote counts)

    Example
    -------
    >>> from kdcore.crowd import MajorityVote, simulate
    >>> r, truth = simulate.one_coin(500, 20, 2, answers_per_task=5, random_state=0)
    >>> MajorityVote(random_state=0).fit(r).labels_.shape
    (500,)
    """

    _dask_model = "vote"  # kdcore.crowd.distributed fits it on a Dask DataFrame

    def __init__(self, tie_break: str = "random", random_state=None, backend: str = "auto", n_threads: int = 0):
        self.tie_break = tie_break
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads

    def _weights(self, responses: Responses):
        return None

    def fit(self, data) -> MajorityVote:
        if is_dask_dataframe(data):  # the votes on the Dask cluster (kdcore.crowd.distributed)
            return fit_dask(self, data)
        r = self._prepare(data)
        weight = self._weights(r)
        scores, best, n_tied = vote(r, weight, self._backend(), self.n_threads)
        labels = pick_winners(scores, best, n_tied, self.tie_break, self.random_state)
        self.scores_ = scores
        self._set_posteriors(r, self._proba(scores, r), labels)
        return self

    def _proba(self, scores: np.ndarray, r: Responses) -> np.ndarray:
        # vote shares: the total of each row is the task's number of answers (>= 1)
        return scores / np.diff(r.task_indptr).astype(np.float64)[:, None]


class WeightedMajorityVote(MajorityVote):
    """Each worker's vote weighs ``weights[w]`` (or Nitzan-Paroush log-odds of ``reliabilities``).

    Parameters
    ----------
    weights : array (n_workers,), pd.Series or dict by worker id, optional
        Non-negative vote weights; ``probas_`` is each class's share of the weight
        (uniform for a task whose voters all weigh 0).
    reliabilities : array, Series or dict, optional
        Instead of ``weights``: each worker's probability of a right answer; the
        weights are :func:`nitzan_paroush_weights` (negative below chance) and
        ``probas_`` the softmax of the scores.
    tie_break, random_state, backend, n_threads : as in :class:`MajorityVote`.
    """

    _dask_model = "weighted_vote"

    def __init__(
        self,
        weights=None,
        reliabilities=None,
        tie_break: str = "random",
        random_state=None,
        backend: str = "auto",
        n_threads: int = 0,
    ):
        self.weights = weights
        self.reliabilities = reliabilities
        self.tie_break = tie_break
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads

    def _weights(self, r: Responses):
        if (self.weights is None) == (self.reliabilities is None):
            raise ValueError("give exactly one of weights= or reliabilities=")
        if self.weights is not None:
            w = _per_worker(self.weights, r, "weights")
            if (w < 0).any():
                raise ValueError(
                    "weights must be >= 0; for workers worse than chance pass reliabilities= "
                    "(Nitzan-Paroush weights may be negative)"
                )
        else:
            w = nitzan_paroush_weights(_per_worker(self.reliabilities, r, "reliabilities"), r.n_classes)
        self.weights_ = pd.Series(w, index=r.worker_ids, name="weight")
        return w

    def _proba(self, scores: np.ndarray, r: Responses) -> np.ndarray:
        if self.reliabilities is not None:  # log-odds weights (fit refused giving both or neither)
            e = np.exp(scores - scores.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        z = scores.sum(axis=1, keepdims=True)
        K = scores.shape[1]
        return np.where(z > 0, scores / np.where(z > 0, z, 1.0), 1.0 / K)
