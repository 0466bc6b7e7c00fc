"""Type-aware aggregation: type the tasks, then aggregate each type with its own worker weights.

:class:`TypeAware` wraps any kdcore aggregator (PAPERS.md B.3: "apply any
aggregator to each part separately"). With ``guard=True`` it first tests whether
the split is supported by the data and otherwise returns the plain fit.

The guard (held-out likelihood): ``n_folds`` times, a random ``holdout`` share of
the answers is hidden (each task keeps at least one answer); on the rest it fits
plain Dawid-Skene and the typed model (the clustering, then one Dawid-Skene per
type), and scores the hidden answers by their predictive probability
sum_k P(y_j = k | seen answers) C[w, k, l] under each. Both sides are scored as
Dawid-Skene models, whatever ``base`` is (the paper's model; a proxy for other
bases). The split is used only when the typed model predicts the hidden answers
better in *every* fold and the clustering's ``separation_`` is at least
``min_separation``. ``evidence_`` keeps the per-fold gains (nats per hidden
answer), their mean and the separation.
"""
from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from . import _em
from ._base import BaseAggregator
from ._responses import Responses
from ._types import TaskTypeClustering, _em_fit, _vote_post

__all__ = ["TypeAware"]


def _ds_params(r: Responses, types: np.ndarray | None, n_types: int, smoothing: float, be: str, nt: int):
    """Dawid-Skene (one per type when ``types`` is given): label posteriors of each task under
    its own type (n_tasks, K) and log confusions (T, W, K, K)."""
    vote = _vote_post(r)
    if types is None:
        post, log_conf, _, _ = _em_fit(r, vote[:, None, :], n_iter=100, tol=1e-6, smoothing=smoothing, backend=be,
                                       n_threads=nt)
        return post[:, 0, :], log_conf, np.zeros(r.n_tasks, dtype=np.int64)
    post0 = np.zeros((r.n_tasks, n_types, r.n_classes))
    post0[np.arange(r.n_tasks), types] = vote
    post, log_conf, _, _ = _em_fit(r, post0, n_iter=100, tol=1e-6, smoothing=smoothing, backend=be, n_threads=nt,
                                   fixed_types=types)
    return post[np.arange(r.n_tasks), types], log_conf, types


def _heldout_loglik(label_post, log_conf, types, task, worker, label) -> float:
    """sum over hidden answers (j, w, l) of log sum_k P(y_j = k) C[t_j, w, k, l]."""
    lc = log_conf[types[task], worker, :, label]          # (H, K)
    lp = np.log(np.clip(label_post[task], 1e-300, None))  # (H, K)
    s = lc + lp
    m = s.max(1, keepdims=True)
    return float((m[:, 0] + np.log(np.exp(s - m).sum(1))).sum())


class TypeAware(BaseAggregator):
    """Meta-aggregator: type the tasks, fit a clone of ``base`` on each type.

    Parameters
    ----------
    base : aggregator, default DawidSkene()
        Any kdcore aggregator (cloned; never fitted in place).
    clustering : TaskTypeClustering, default TaskTypeClustering(method="refined")
    guard : bool, default True
        Split only when a held-out likelihood test supports it (module docstring).
    holdout : float, default 0.2 — share of answers hidden per fold
    n_folds : int, default 3
    min_separation : float, default 0.1 — least ``separation_`` of the clustering to split
    smoothing : float — smoothing of the guard's Dawid-Skene fits
    random_state : int or None

    Attributes
    ----------
    labels_, probas_, classes_ : as every aggregator
    types_ : Series, the task types found (all zeros when the split was not used)
    split_used_ : bool
    evidence_ : dict — the guard's per-fold gains, their mean, the separation, the reason
    plain_ : the fitted clone of ``base`` on all tasks
    type_models_ : list of the fitted per-type clones (empty when not split)
    skills_by_type_ : DataFrame workers x types, expected share of a worker's answers that are
        right on each type under the fitted posteriors (NaN where the worker answered none)
    clustering_ : the fitted TaskTypeClustering

    Example
    -------
    >>> from kdcore.crowd import simulate, TypeAware, DawidSkene
    >>> r, truth, types, rel = simulate.two_type(2000, 40, 0.3, regime="specialist", random_state=0)
    >>> ta = TypeAware(DawidSkene(), random_state=0).fit(r)
    >>> ta.split_used_
    True
    """

    _backends = ("cpp", "numpy")

    def __init__(self, base=None, clustering=None, guard: bool = True, holdout: float = 0.2, n_folds: int = 3,
                 min_separation: float = 0.1, smoothing: float = 0.01, random_state=None, backend: str = "auto"):
        self.base = base
        self.clustering = clustering
        self.guard = guard
        self.holdout = holdout
        self.n_folds = n_folds
        self.min_separation = min_separation
        self.smoothing = smoothing
        self.random_state = random_state
        self.backend = backend

    def clone(self) -> "TypeAware":
        params = self.get_params()
        if params["base"] is not None:
            params["base"] = params["base"].clone()
        if params["clustering"] is not None:
            params["clustering"] = params["clustering"].clone()
        return type(self)(**params)

    def _check(self):
        if self.base is not None and not isinstance(self.base, BaseAggregator):
            raise TypeError(f"base must be a kdcore aggregator, got {type(self.base).__name__}")
        if self.clustering is not None and not isinstance(self.clustering, TaskTypeClustering):
            raise TypeError(f"clustering must be a TaskTypeClustering, got {type(self.clustering).__name__}")
        if not isinstance(self.guard, (bool, np.bool_)):
            raise TypeError(f"guard must be a bool, got {type(self.guard).__name__}")
        if not (isinstance(self.holdout, numbers.Real) and 0.0 < float(self.holdout) < 1.0):
            raise ValueError(f"holdout must be in (0, 1), got {self.holdout!r}")
        if isinstance(self.n_folds, bool) or not isinstance(self.n_folds, numbers.Integral) or self.n_folds < 1:
            raise ValueError(f"n_folds must be a positive int, got {self.n_folds!r}")

    def _make_clustering(self) -> TaskTypeClustering:
        if self.clustering is not None:
            return self.clustering.clone()
        return TaskTypeClustering(method="refined", random_state=self.random_state, backend=self.backend)

    def _guard(self, r: Responses, sep: float, rng, be: str, nt: int) -> dict:
        gains = []
        holdout = float(self.holdout)
        for _ in range(int(self.n_folds)):
            hide = rng.random(r.n_responses) < holdout
            # every task keeps one answer: un-hide a random answer of any fully hidden task
            kept = np.bincount(r.task, weights=~hide, minlength=r.n_tasks)
            for j in np.flatnonzero(kept == 0):
                idx = np.flatnonzero(r.task == j)
                hide[idx[rng.integers(len(idx))]] = False
            if not hide.any():
                continue
            keep = ~hide
            train = Responses.from_arrays(r.task[keep], r.worker[keep], r.label[keep],
                                          classes=np.arange(r.n_classes))
            wmap = np.asarray(train.worker_ids, dtype=np.int64)        # train worker code -> full worker code
            ht, hw, hl = r.task[hide], r.worker[hide], r.label[hide]
            # hidden answers of workers absent from train: scored with a uniform confusion on both sides
            pos = np.full(r.n_workers, -1, dtype=np.int64)
            pos[wmap] = np.arange(len(wmap))
            ok = pos[hw] >= 0
            ht, hw, hl = ht[ok], pos[hw[ok]], hl[ok]
            if ht.size == 0:
                continue
            lp1, lc1, t1 = _ds_params(train, None, 1, self.smoothing, be, nt)
            ll1 = _heldout_loglik(lp1, lc1, t1, ht, hw, hl)
            tc = self._make_clustering().fit(train)
            types = tc.types_.to_numpy()
            k = int(types.max()) + 1
            lp2, lc2, t2 = _ds_params(train, types, k, self.smoothing, be, nt)
            ll2 = _heldout_loglik(lp2, lc2, t2, ht, hw, hl)
            gains.append((ll2 - ll1) / ht.size)
        gains_arr = np.asarray(gains)
        ok_lik = gains_arr.size > 0 and bool((gains_arr > 0).all())
        ok_sep = sep >= float(self.min_separation)
        if not ok_lik:
            reason = "typed model does not predict held-out answers better in every fold"
        elif not ok_sep:
            reason = f"separation {sep:.3f} below min_separation {self.min_separation}"
        else:
            reason = "held-out likelihood and separation support the split"
        return {"split": ok_lik and ok_sep, "fold_gains": gains_arr.tolist(),
                "mean_gain": float(gains_arr.mean()) if gains_arr.size else float("nan"),
                "separation": float(sep), "reason": reason}

    def fit(self, data) -> "TypeAware":
        self._check()
        r = self._prepare(data)
        be = self._backend()
        nt = 1 if r.n_responses < 200_000 else 0
        rng = np.random.default_rng(self.random_state)
        from ._dawid_skene import DawidSkene

        base = self.base if self.base is not None else DawidSkene()
        self.plain_ = base.clone().fit(r)
        tc = self._make_clustering().fit(r)
        self.clustering_ = tc
        types = tc.types_.to_numpy()
        k = int(types.max()) + 1
        sizes = np.bincount(types, minlength=k)
        if k < 2 or (sizes < 2).any():
            self.evidence_ = {"split": False, "reason": f"the clustering found types of sizes {sizes.tolist()}",
                              "separation": float(tc.separation_)}
        elif self.guard:
            self.evidence_ = self._guard(r, float(tc.separation_), rng, be, nt)
        else:
            self.evidence_ = {"split": True, "reason": "guard=False", "separation": float(tc.separation_)}
        self.split_used_ = bool(self.evidence_["split"])
        index = pd.Index(r.task_ids, name="task")
        self.type_models_ = []
        classes = pd.Index(np.asarray(r.classes_))

        def codes(model) -> np.ndarray:  # the model's own labels (keeps e.g. its random tie-breaks)
            return classes.get_indexer(model.labels_.to_numpy())

        if self.split_used_:
            proba = np.zeros((r.n_tasks, r.n_classes))
            label_codes = np.zeros(r.n_tasks, dtype=np.int64)
            for t in range(k):
                mask = types == t
                m = base.clone().fit(r.subset_tasks(mask))
                self.type_models_.append(m)
                proba[mask] = m.probas_.to_numpy()
                label_codes[mask] = codes(m)
        else:
            proba = self.plain_.probas_.to_numpy()
            label_codes = codes(self.plain_)
            types = np.zeros(r.n_tasks, dtype=np.int64)
            k = 1
        self.types_ = pd.Series(types, index=index, name="type")
        self._set_posteriors(r, proba, labels=label_codes)
        # expected correctness of each worker's answers, per type
        right = proba[r.task, r.label]
        skills = np.full((r.n_workers, k), np.nan)
        for t in range(k):
            sel = types[r.task] == t
            num = np.bincount(r.worker[sel], weights=right[sel], minlength=r.n_workers)
            den = np.bincount(r.worker[sel], minlength=r.n_workers)
            with np.errstate(invalid="ignore", divide="ignore"):
                skills[:, t] = np.where(den > 0, num / np.maximum(den, 1), np.nan)
        self.skills_by_type_ = pd.DataFrame(skills, index=pd.Index(r.worker_ids, name="worker"),
                                            columns=pd.RangeIndex(k, name="type"))
        return self
