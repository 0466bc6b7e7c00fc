"""The typed Dawid-Skene EM steps, shared by DawidSkene, OneCoinDawidSkene and the
two-type mixture of kdcore.crowd.types.

Model (Dawid & Skene 1979; typed as in docs/maths.md B.1/B.3): task j has a hidden
type t in [0, T) and a true class k in [0, K) with joint prior pi[t, k]; worker w
answers l with probability C[t, w, k, l]. Plain Dawid-Skene is T = 1.

- :func:`e_step`: post[j, t, k] ∝ pi[t, k] prod_{answers (w, l) of j} C[t, w, k, l],
  in log space with the max shift, and the log-likelihood sum_j log sum_{t,k} (...).
- :func:`m_step`: C[t, w, k, l] ∝ sum_{answers (j, l) of w} post[j, t, k] + smoothing,
  normalised over l; pi[t, k] ∝ sum_j post[j, t, k] + smoothing, normalised over (t, k).
- :func:`onecoin_m_step` / :func:`onecoin_log_conf`: one skill per (type, worker),
  the other classes sharing the rest evenly.

Smoothing is the MAP estimate under a symmetric Dirichlet(1 + smoothing) prior on
every row. A row with no mass (a worker with no answers, e.g. after
``Responses.subset_tasks``, or smoothing = 0 and a class never estimated) is set to
the uniform row 1/K (one-coin: skill 1/2), which is finite and does not move any
posterior. Backends: ``"cpp"`` (OpenMP kernels, GIL released) and ``"numpy"``
(the twins in :mod:`kdcore.crowd._reference`).

Example
-------
>>> import numpy as np
>>> from kdcore.crowd import simulate
>>> from kdcore.crowd._em import e_step, m_step
>>> r, truth = simulate.dawid_skene(200, 10, 3, answers_per_task=5, random_state=0)
>>> log_conf = np.log(np.full((1, r.n_workers, 3, 3), 1 / 3))
>>> post, ll = e_step(r, log_conf, np.log(np.full((1, 3), 1 / 3)))
>>> post.shape
(200, 1, 3)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._check import check_float
from ..backends import _core, check_n_threads, resolve_backend
from . import _reference as ref
from ._responses import Responses

__all__ = ["e_step", "m_step", "onecoin_m_step", "onecoin_log_conf", "log_clip", "DEFAULT_SMOOTHING"]

#: smallest probability taken to the log by :func:`log_clip` (log = -690.8): keeps
#: zero-probability answers finite so a task never becomes impossible under every class
PROB_FLOOR = 1e-300
DEFAULT_SMOOTHING = 0.0  # the Dawid-Skene MLE (what crowd-kit fits); > 0 gives the Dirichlet MAP


class EMSettings(NamedTuple):
    """What one fit's EM rounds run with, resolved once by the estimator's ``fit``."""

    backend: str  # "cpp" or "numpy"
    n_threads: int  # 0 = kdcore's default policy
    smoothing: float  # pseudo-count of every confusion row and prior class
    prob_floor: float = PROB_FLOOR  # smallest probability the E-step takes the log of


def _responses(responses: object) -> Responses:
    if not isinstance(responses, Responses):
        raise TypeError(f"responses must be a kdcore.crowd.Responses, got {type(responses).__name__}")
    return responses


def _float_array(a: object, name: str, ndim: int, allow_neg_inf: bool = False) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    if a.dtype.kind not in "fiu" or a.dtype.kind == "b":
        raise TypeError(f"{name} must be a real float array, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-d, got shape {a.shape}")
    bad = np.isnan(a) | (a == np.inf) | (~np.isfinite(a) if not allow_neg_inf else False)
    if bad.any():
        raise ValueError(f"{name} has {int(bad.sum())} NaN or +inf values" + ("" if allow_neg_inf else " (or -inf)"))
    return a


def check_smoothing(smoothing: object) -> float:
    """``smoothing`` as a finite float >= 0 (TypeError for a non-number, ValueError for a bad value)."""
    return check_float(smoothing, "smoothing", minimum=0.0)


def log_clip(p: np.ndarray) -> np.ndarray:
    """log(max(p, PROB_FLOOR)): the log of a probability array, never -inf."""
    return np.log(np.maximum(p, PROB_FLOOR))


def e_step(
    responses: Responses, log_conf, log_prior, *, backend: str = "auto", n_threads: int = 0
) -> tuple[np.ndarray, float]:
    """Posterior over (type, class) of every task, and the log-likelihood.

    Parameters
    ----------
    responses : Responses
    log_conf : ndarray (T, W, K, K)
        log C[t, w, k, l]; W = responses.n_workers, K = responses.n_classes. -inf is
        allowed (probability zero), NaN and +inf are not.
    log_prior : ndarray (T, K)
        log of the joint prior over (type, class); need not be normalised (the
        log-likelihood is then shifted by the log of its total).

    Returns
    -------
    post : ndarray (n_tasks, T, K), each task's slice sums to 1
    loglik : float, sum_j log sum_{t,k} exp(log_prior[t,k] + sum_answers log_conf[t,w,k,l])
        (-inf if some task is impossible under every (t, k); such a task's posterior is uniform)
    """
    r = _responses(responses)
    log_conf = _float_array(log_conf, "log_conf", 4, allow_neg_inf=True)
    log_prior = _float_array(log_prior, "log_prior", 2, allow_neg_inf=True)
    T, W, K, K2 = log_conf.shape
    if T < 1 or (W, K, K2) != (r.n_workers, r.n_classes, r.n_classes):
        raise ValueError(
            f"log_conf must have shape (T, n_workers={r.n_workers}, K={r.n_classes}, "
            f"K={r.n_classes}), got {log_conf.shape}"
        )
    if log_prior.shape != (T, K):
        raise ValueError(f"log_prior must have shape (T={T}, K={K}), got {log_prior.shape}")
    be = resolve_backend(backend, ("cpp", "numpy"), what="e_step")
    check_n_threads(n_threads)
    return e_step_unchecked(r, log_conf, log_prior, be, int(n_threads))


# The unchecked steps: estimators validate once in fit and call these every round
# (arrays they made themselves: float64, C-contiguous, right shapes, finite).
def e_step_unchecked(
    r: Responses, log_conf: np.ndarray, log_prior: np.ndarray, be: str, n_threads: int
) -> tuple[np.ndarray, float]:
    if be == "numpy":
        return ref.em_e_step(r.task, r.worker, r.label, r.n_tasks, log_conf, log_prior)
    post, ll = _core.em_e_step(
        r.task_indptr, r.task_worker, r.task_label, r.n_tasks, r.n_workers, log_conf, log_prior, n_threads
    )
    return post, float(ll)


def m_step_unchecked(
    r: Responses, post: np.ndarray, smoothing: float, be: str, n_threads: int, one_coin: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    if be == "numpy":
        fn = ref.onecoin_m_step if one_coin else ref.em_m_step
        return fn(r.task, r.worker, r.label, r.n_workers, post, smoothing)
    return _core.em_m_step(
        r.worker_indptr,
        r.worker_task,
        r.worker_label,
        r.n_tasks,
        r.n_workers,
        post,
        smoothing,
        one_coin,
        n_threads,
        r.task_indptr,
        r.task_worker,
        r.task_label,
        _M_STRATEGY,
    )


def run(
    r: Responses,
    post: np.ndarray,
    smoothing: float,
    n_iter: int,
    tol: float,
    init_ll: float | None,
    n_threads: int,
    one_coin: bool = False,
    penalised: bool = False,
    prob_floor: float = PROB_FLOOR,
    gold: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float], int, bool]:
    """The whole EM loop in the compiled core (``_core.em_run``): rounds of M-step then
    E-step from ``post``, stopping as DawidSkene.fit does (``penalised``: as the typed
    mixture's loop ``kdcore.crowd._typed_em.em_fit``, history = penalised log-likelihood).
    ``gold`` (task codes, class codes, checked by ``_gold.gold_codes``): gold tasks, their
    posterior clamped at the start and after every E-step.
    Returns ``(post, params, prior, history, n_iter, converged)``."""
    gold_args = {}
    if gold is not None and len(gold[0]):
        gold_args = {
            "gold_task": np.ascontiguousarray(gold[0], dtype=np.int32),
            "gold_class": np.ascontiguousarray(gold[1], dtype=np.int32),
        }
    post, params, prior, history, n, converged, _ = _core.em_run(
        r.task_indptr,
        r.task_worker,
        r.task_label,
        r.worker_indptr,
        r.worker_task,
        r.worker_label,
        r.n_tasks,
        r.n_workers,
        np.ascontiguousarray(post, dtype=np.float64),
        smoothing,
        one_coin,
        n_iter,
        tol,
        float("nan") if init_ll is None else float(init_ll),
        prob_floor,
        n_threads,
        _RUN_STRATEGY,
        int(penalised),
        **gold_args,
    )
    return post, params, prior, list(history), int(n), bool(converged)


#: how the compiled EM loop counts: 0 = automatic, 1 = E-step then worker-major
#: counts, 2 = fused task-major pass (kdcore/crowd.hpp em_run; tests set it)
_RUN_STRATEGY = 0


#: how the compiled M-step streams the answers: 0 = automatic, 1 = worker-major,
#: 2 = task-major into per-thread buffers (kdcore/crowd.hpp MStepStrategy; tests set it)
_M_STRATEGY = 0


def _check_post(r: Responses, post) -> np.ndarray:
    post = _float_array(post, "post", 3)
    if post.shape[0] != r.n_tasks or post.shape[2] != r.n_classes or post.shape[1] < 1:
        raise ValueError(f"post must have shape (n_tasks={r.n_tasks}, T, K={r.n_classes}), got {post.shape}")
    if (post < 0).any():
        raise ValueError("post must be non-negative")
    return post


def m_step(
    responses: Responses, post, *, smoothing: float = DEFAULT_SMOOTHING, backend: str = "auto", n_threads: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Confusions and joint prior from task posteriors.

    Parameters
    ----------
    post : ndarray (n_tasks, T, K), non-negative (normally each task's slice sums to 1)
    smoothing : float >= 0
        Added to every expected count (confusion rows and prior) before normalising.

    Returns
    -------
    conf : ndarray (T, W, K, K), rows sum to 1 over the last axis (uniform where empty)
    prior : ndarray (T, K), sums to 1
    """
    r = _responses(responses)
    post = _check_post(r, post)
    s = check_smoothing(smoothing)
    be = resolve_backend(backend, ("cpp", "numpy"), what="m_step")
    check_n_threads(n_threads)
    return m_step_unchecked(r, post, s, be, int(n_threads))


def onecoin_m_step(
    responses: Responses, post, *, smoothing: float = DEFAULT_SMOOTHING, backend: str = "auto", n_threads: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One-coin M-step: ``(skill (T, W), prior (T, K))``, skill[t, w] = expected share of
    w's answers that are right on type-t tasks, (right + s) / (total + 2 s); 1/2 when empty."""
    r = _responses(responses)
    post = _check_post(r, post)
    s = check_smoothing(smoothing)
    be = resolve_backend(backend, ("cpp", "numpy"), what="onecoin_m_step")
    check_n_threads(n_threads)
    return m_step_unchecked(r, post, s, be, int(n_threads), one_coin=True)


def onecoin_log_conf(skill, n_classes: int) -> np.ndarray:
    """log C (T, W, K, K) of one-coin workers: log skill on the diagonal, log((1 - skill)/(K - 1))
    elsewhere (clipped at :data:`PROB_FLOOR`, so perfect and always-wrong workers stay finite)."""
    skill = _float_array(skill, "skill", 2)
    if (skill < 0).any() or (skill > 1).any():
        raise ValueError("skill must hold probabilities in [0, 1]")
    return onecoin_log_conf_unchecked(skill, n_classes)


def onecoin_log_conf_unchecked(skill: np.ndarray, n_classes: int) -> np.ndarray:
    K = int(n_classes)
    T, W = skill.shape
    right = log_clip(skill)
    wrong = log_clip((1.0 - skill) / (K - 1))
    out = np.empty((T, W, K, K))
    out[...] = wrong[:, :, None, None]
    idx = np.arange(K)
    out[:, :, idx, idx] = right[:, :, None]
    return out
