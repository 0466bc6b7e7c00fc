"""Type-aware aggregation: type the tasks, then aggregate each type with its own worker weights.

:class:`TypeAware` wraps any kdcore aggregator (docs/maths.md B.3: "apply any
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
answer), their mean and the separation. As every condition must hold, the test stops at
the first that fails: the first fold runs before the clustering of all tasks (needed only
for the separation and the type sizes), and a fold without gain ends the folds.

``split="soft"`` (Dawid-Skene family bases only: DawidSkene, OneCoinDawidSkene, SpectralEM)
does not split the tasks. It fits one two-type Dawid-Skene mixture in which the
hard type is a degraded copy of the easy one (each worker answers a hard task by
its own confusion with probability lambda_w, by a coin otherwise; see
``kdcore.crowd._typed_em.degraded_em``), started from the fitted base, and returns
the label posterior marginalised over the type, P(y_j = k) = sum_t post[j, t, k].
A task whose type is uncertain is labelled under both types in proportion, instead
of being committed to one. Its guard is the same held-out test, with both sides
scored as the base's own model family (the mixture predicts a hidden answer by
sum_{t,k} post[j, t, k] C[t, w, k, l]), plus a test that the *labels* it changes
are backed by the hidden answers: on each task whose label differs between the two
fits, count the task's hidden answers that agree with the soft label minus those that
agree with the plain one, summed over the folds; a task is "won" when positive and
"lost" when negative, and a one-sided sign test (binomial, p = 1/2) over won vs lost
tasks must reach ``sign_level``. The task is the unit because hidden answers of one
task share its true label (they are not independent evidence). Reason for the second
test: on real data the degraded model often predicts hidden answers better (real
tasks do differ in difficulty) while changing a handful of labels, so the likelihood
alone would accept changes that the data cannot support (measured: docs/reproducing.md, "Crowdsourcing with task types").
No separation threshold (nothing is split).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._check import check_bool, check_float, check_int
from ._base import BaseAggregator, BaseEstimator
from ._dawid_skene import DawidSkene
from ._gold import fit_with_gold, gold_codes
from ._responses import Responses
from ._typed_em import degraded_em, em_fit, mixture_heldout_loglik, vote_post
from ._types import TaskTypeClustering

_SPLITS = ("hard", "soft", "auto")

__all__ = ["TypeAware"]


def _ds_params(
    r: Responses, types: np.ndarray | None, n_types: int, smoothing: float, be: str, nt: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dawid-Skene (one per type when ``types`` is given): label posteriors of each task under
    its own type (n_tasks, K) and log confusions (T, W, K, K)."""
    vote = vote_post(r)
    if types is None:
        post, log_conf, _, _ = em_fit(
            r, vote[:, None, :], n_iter=100, tol=1e-6, smoothing=smoothing, backend=be, n_threads=nt
        )
        return post[:, 0, :], log_conf, np.zeros(r.n_tasks, dtype=np.int64)
    post0 = np.zeros((r.n_tasks, n_types, r.n_classes))
    post0[np.arange(r.n_tasks), types] = vote
    post, log_conf, _, _ = em_fit(
        r, post0, n_iter=100, tol=1e-6, smoothing=smoothing, backend=be, n_threads=nt, fixed_types=types
    )
    return post[np.arange(r.n_tasks), types], log_conf, types


def _heldout_loglik(
    label_post: np.ndarray,
    log_conf: np.ndarray,
    types: np.ndarray,
    task: np.ndarray,
    worker: np.ndarray,
    label: np.ndarray,
) -> float:
    """sum over hidden answers (j, w, l) of log sum_k P(y_j = k) C[t_j, w, k, l]."""
    lc = log_conf[types[task], worker, :, label]  # (H, K)
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
    random_state : int, Generator or None
    backend : {"auto", "cpp", "numpy"}
        Of the guard's and the soft model's EM (and of the default clustering).
    n_threads : int, default 0
        Threads of those kernels; 0: one thread below 200,000 answers (an OpenMP region
        costs more than such small work), kdcore's default policy above.
    split : {"auto", "hard", "soft"}, default "auto"
        ``"hard"``: type the tasks with ``clustering`` and fit ``base`` on each type.
        ``"soft"``: the degraded two-type mixture, label posterior marginalised over the
        type (module docstring); ``base`` must be of the Dawid-Skene family (DawidSkene,
        OneCoinDawidSkene, SpectralEM: the mixture starts from its fitted confusions; anything
        else raises ValueError); ``clustering`` is not used.
        ``"auto"``: with ``guard=True`` and a Dawid-Skene family base, the hard split when its
        guard supports it, else the soft model when *its* guard supports it (run on a fresh
        random stream from ``random_state``, so the same folds as ``split="soft"``), else the
        plain fit; any other base, ``guard=False`` or a clustering with ``n_types != 2`` (the soft
        model has two types) behaves as ``"hard"``.
    sign_level : float, default 0.05
        Level of the soft guard's one-sided task-level sign test (module docstring).

    Attributes
    ----------
    labels_, probas_, classes_ : as every aggregator
    types_ : Series, the task types found (all zeros when the split was not used)
    split_used_ : bool
    evidence_ : dict — the guard's per-fold gains, their mean, the separation (NaN when the clustering
        of all tasks was not needed), the reason, ``folds_run`` and, when the test stopped before the
        last fold, ``stopped`` (why: every condition must hold, so the first that fails ends it)
    plain_ : the fitted clone of ``base`` on all tasks
    type_models_ : list of the fitted per-type clones (empty when not split)
    skills_by_type_ : DataFrame workers x types, expected share of a worker's answers that are
        right on each type under the fitted posteriors (NaN where the worker answered none)
    split_kind_ : "hard", "soft" or "none" — what the returned fit is
    clustering_ : the fitted TaskTypeClustering of all tasks (hard split; None for split="soft", and
        None when the guard's first held-out fold already ruled the split out, so it was not needed)
    type_proba_ : DataFrame tasks x 2, P(type) under the soft model (soft split only)
    hard_retention_ : Series, lambda_w per worker, the share of a worker's answers on hard tasks
        that follow its own confusion rather than a coin (soft split only)

    Example
    -------
    >>> from kdcore.crowd import simulate, TypeAware, DawidSkene
    >>> r, truth, types, rel = simulate.two_type(2000, 40, 0.3, regime="specialist", random_state=0)
    >>> ta = TypeAware(DawidSkene(), random_state=0).fit(r)
    >>> ta.split_used_
    True
    """

    _backends = ("cpp", "numpy")
    plain_: BaseAggregator
    clustering_: TaskTypeClustering | None
    type_models_: list[BaseAggregator]

    def __init__(
        self,
        base: BaseAggregator | None = None,
        clustering: TaskTypeClustering | None = None,
        guard: bool = True,
        holdout: float = 0.2,
        n_folds: int = 3,
        min_separation: float = 0.1,
        smoothing: float = 0.01,
        random_state: int | np.random.Generator | None = None,
        backend: str = "auto",
        n_threads: int = 0,
        split: str = "auto",
        sign_level: float = 0.05,
    ):
        self.base = base
        self.clustering = clustering
        self.guard = guard
        self.holdout = holdout
        self.n_folds = n_folds
        self.min_separation = min_separation
        self.smoothing = smoothing
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads
        self.split = split
        self.sign_level = sign_level

    def _default_nested(self, name: str) -> BaseEstimator:
        """What ``base=None`` and ``clustering=None`` stand for (so ``set_params(base__n_iter=5)`` works)."""
        if name == "base":
            return DawidSkene()
        if name == "clustering":
            return self._make_clustering()
        return super()._default_nested(name)

    def _check(self) -> None:
        if self.base is not None and not isinstance(self.base, BaseAggregator):
            raise TypeError(f"base must be a kdcore aggregator, got {type(self.base).__name__}")
        if self.clustering is not None and not isinstance(self.clustering, TaskTypeClustering):
            raise TypeError(f"clustering must be a TaskTypeClustering, got {type(self.clustering).__name__}")
        check_bool(self.guard, "guard")
        holdout = check_float(self.holdout, "holdout", minimum=0.0, maximum=1.0, strict_min=True)
        if holdout == 1.0:
            raise ValueError(f"holdout must be < 1 (some answers must stay to fit on), got {self.holdout!r}")
        check_int(self.n_folds, "n_folds", minimum=1)
        check_float(self.sign_level, "sign_level", minimum=0.0, maximum=1.0, strict_min=True)
        check_float(self.min_separation, "min_separation")
        check_float(self.smoothing, "smoothing", minimum=0.0)
        if self.split not in _SPLITS:
            raise ValueError(f"split must be one of {list(_SPLITS)}, got {self.split!r}")
        if self.split == "soft" and self.base is not None and not isinstance(self.base, DawidSkene):
            raise ValueError(
                f"split='soft' fits a Dawid-Skene mixture and needs a Dawid-Skene family base "
                f"(DawidSkene, OneCoinDawidSkene, SpectralEM), got {type(self.base).__name__}; "
                "use split='hard'"
            )

    @staticmethod
    def _one_coin_base(base: BaseAggregator) -> bool:
        return bool(getattr(base, "_one_coin", False))

    def _make_clustering(self) -> TaskTypeClustering:
        if self.clustering is not None:
            return self.clustering.clone()
        return TaskTypeClustering(
            method="refined", random_state=self.random_state, backend=self.backend, n_threads=self.n_threads
        )

    def _guard(self, r: Responses, rng: np.random.Generator, be: str, nt: int) -> tuple[dict[str, Any], Any]:
        """The hard split's held-out test, and the clustering of all tasks (None when not needed).

        The split needs a positive held-out gain in every fold, a separation of at least
        ``min_separation`` and no type of fewer than 2 tasks, so the test stops as soon as one fails:
        the first fold runs before the clustering of all tasks (which only gives the separation and
        the sizes), a fold without gain ends the folds, and a separation or sizes that rule the split
        out end it before the next fold. ``folds_run`` and ``stopped`` in the evidence say so. The
        folds are drawn from ``rng`` in the same order whatever stops, so the decision is the one of
        running everything."""
        gains: list[float] = []
        tc: TaskTypeClustering | None = None
        stopped = ""
        reason = ""
        n_folds = int(self.n_folds)
        for fold in range(n_folds):
            split = self._holdout_split(r, rng)
            if split is None:
                continue
            train, ht, hw, hl = split
            lp1, lc1, t1 = _ds_params(train, None, 1, self.smoothing, be, nt)
            ll1 = _heldout_loglik(lp1, lc1, t1, ht, hw, hl)
            ftc = self._make_clustering().fit(train)
            types = ftc.types_.to_numpy()
            k = int(types.max()) + 1
            lp2, lc2, t2 = _ds_params(train, types, k, self.smoothing, be, nt)
            ll2 = _heldout_loglik(lp2, lc2, t2, ht, hw, hl)
            gains.append((ll2 - ll1) / ht.size)
            if gains[-1] <= 0:
                reason = "typed model does not predict held-out answers better in every fold"
                if fold + 1 < n_folds or tc is None:
                    stopped = f"fold {fold + 1} has no held-out gain ({gains[-1]:.4g} nats): the split is ruled out"
                    stopped += "" if tc is not None else " before the clustering of all tasks (clustering_ is None)"
                break
            if tc is None:  # a first fold with gain: the separation and sizes of the full clustering decide on
                tc = self._make_clustering().fit(r)
                full_types = tc.types_.to_numpy()
                sizes = np.bincount(full_types, minlength=int(full_types.max()) + 1)
                sep = float(tc.separation_)
                if len(sizes) < 2 or (sizes < 2).any():
                    reason = f"the clustering found types of sizes {sizes.tolist()}"
                elif sep < float(self.min_separation):
                    reason = f"separation {sep:.3f} below min_separation {self.min_separation}"
                if reason:
                    if fold + 1 < n_folds:
                        stopped = f"{reason}: later folds skipped"
                    break
        gains_arr = np.asarray(gains)
        ok = not reason and gains_arr.size > 0 and bool((gains_arr > 0).all()) and tc is not None
        if not reason:
            reason = (
                "held-out likelihood and separation support the split"
                if ok
                else "typed model does not predict held-out answers better in every fold"
            )
        out: dict[str, Any] = {
            "split": ok,
            "fold_gains": gains_arr.tolist(),
            "mean_gain": float(gains_arr.mean()) if gains_arr.size else float("nan"),
            "separation": float(tc.separation_) if tc is not None else float("nan"),
            "reason": reason,
            "folds_run": int(gains_arr.size),
        }
        if stopped:
            out["stopped"] = stopped
        return out, tc

    def _plain_fit(self, r: Responses, one_coin: bool, be: str, nt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dawid-Skene (or one-coin) on ``r`` with the guard's smoothing: (post (n, 1, K), conf, prior)."""
        post, log_conf, log_prior, _ = em_fit(
            r,
            vote_post(r)[:, None, :],
            n_iter=100,
            tol=1e-6,
            smoothing=self.smoothing,
            backend=be,
            n_threads=nt,
            onecoin=one_coin,
        )
        return post, log_conf, log_prior

    def _soft_guard(self, r: Responses, one_coin: bool, rng: np.random.Generator, be: str, nt: int) -> dict[str, Any]:
        """Held-out test of the soft model (module docstring): every fold's likelihood gain > 0 and a
        one-sided task-level sign test on the label changes at level ``sign_level``."""
        from scipy.special import bdtrc  # P(X > k), X ~ Binomial(n, p); lighter to import than scipy.stats

        gains = []
        score = np.zeros(r.n_tasks)  # per task: hidden answers agreeing with the soft label minus with the plain
        stopped = ""
        for fold in range(int(self.n_folds)):
            split = self._holdout_split(r, rng)
            if split is None:
                continue
            train, ht, hw, hl = split
            post1, lc1, lp1 = self._plain_fit(train, one_coin, be, nt)
            ll1 = mixture_heldout_loglik(post1, lc1, ht, hw, hl)
            post2, lc2, *_ = degraded_em(
                train,
                np.exp(lc1[0]),
                np.exp(lp1[0]),
                one_coin=one_coin,
                smoothing=self.smoothing,
                backend=be,
                n_threads=nt,
            )
            ll2 = mixture_heldout_loglik(post2, lc2, ht, hw, hl)
            gains.append((ll2 - ll1) / ht.size)
            y1, y2 = post1[:, 0, :].argmax(1), post2.sum(1).argmax(1)
            dif = y1[ht] != y2[ht]
            score += np.bincount(
                ht[dif],
                weights=(y2[ht[dif]] == hl[dif]).astype(np.float64) - (y1[ht[dif]] == hl[dif]),
                minlength=r.n_tasks,
            )
            if gains[-1] <= 0:  # every fold must gain: this one rules the soft model out
                if fold + 1 < int(self.n_folds):
                    stopped = f"fold {fold + 1} has no held-out gain ({gains[-1]:.4g} nats): later folds skipped"
                break
        g = np.asarray(gains)
        won, lost = int((score > 0).sum()), int((score < 0).sum())
        p_value = float(bdtrc(won - 1, won + lost, 0.5)) if won > 0 else 1.0
        ok_lik = g.size > 0 and bool((g > 0).all())
        ok_sign = p_value < float(self.sign_level)
        if not ok_lik:
            reason = "the degraded two-type model does not predict held-out answers better in every fold"
        elif not ok_sign:
            reason = (
                f"the label changes are not backed by the held-out answers (tasks won {won}, lost {lost}, "
                f"sign test p = {p_value:.3g} >= {self.sign_level})"
            )
        else:
            reason = (
                f"soft two-type model used: held-out likelihood gain in every fold and label changes "
                f"backed by held-out answers (tasks won {won}, lost {lost}, p = {p_value:.3g})"
            )
        return {
            "split": ok_lik and ok_sign,
            "fold_gains": g.tolist(),
            "mean_gain": float(g.mean()) if g.size else float("nan"),
            "tasks_won": won,
            "tasks_lost": lost,
            "p_value": p_value,
            "separation": float("nan"),
            "reason": reason,
            "folds_run": int(g.size),
            **({"stopped": stopped} if stopped else {}),
        }

    def _holdout_split(
        self, r: Responses, rng: np.random.Generator
    ) -> tuple[Responses, np.ndarray, np.ndarray, np.ndarray] | None:
        """Hide a random ``holdout`` share of the answers (each task keeps one): (train, hidden task,
        hidden worker (train codes), hidden label), or None when nothing scorable is hidden.
        Hidden answers of workers absent from train are left out (nothing to score them with)."""
        hide = rng.random(r.n_responses) < float(self.holdout)
        kept = np.bincount(r.task, weights=~hide, minlength=r.n_tasks)
        empty = np.flatnonzero(kept == 0)
        if empty.size:  # each such task keeps one answer at random (answer positions in increasing order)
            order = np.argsort(r.task, kind="stable")
            start = np.concatenate(([0], np.cumsum(np.bincount(r.task, minlength=r.n_tasks))))
            for j in empty:
                idx = order[start[j] : start[j + 1]]
                hide[idx[rng.integers(len(idx))]] = False
        if not hide.any():
            return None
        keep = ~hide
        # the kept answers keep their task codes (every task keeps one) and labels; workers are renumbered
        # among those left, in code order: built from codes (no id factorisation of a new answer table)
        present = np.zeros(r.n_workers, dtype=bool)
        present[r.worker[keep]] = True
        pos = np.cumsum(present, dtype=np.int64) - 1
        pos[~present] = -1
        wmap = np.flatnonzero(present)
        train = Responses._from_codes(
            np.ascontiguousarray(r.task[keep], dtype=np.int32),
            np.ascontiguousarray(pos[r.worker[keep]], dtype=np.int32),
            np.ascontiguousarray(r.label[keep], dtype=np.int32),
            pd.Index(np.arange(r.n_tasks, dtype=np.int32)),
            pd.Index(wmap.astype(np.int32)),
            np.arange(r.n_classes),
        )
        ht, hw, hl = r.task[hide], r.worker[hide], r.label[hide]
        ok = pos[hw] >= 0
        if not ok.any():
            return None
        return train, ht[ok], pos[hw[ok]], hl[ok]

    def _fit_soft(
        self,
        r: Responses,
        base: BaseAggregator,
        be: str,
        nt: int,
        rng: np.random.Generator | None,
        evidence: dict[str, Any] | None = None,
    ) -> TypeAware:
        one_coin = self._one_coin_base(base)
        if evidence is None:  # split="soft"; split="auto" comes with the soft guard's evidence and its plain_
            self.plain_ = fit_with_gold(base.clone(), r, self._gold_labels)
            self.clustering_ = None
            self.type_models_ = []
            if self.guard:
                assert rng is not None  # only split="auto" (which passes its evidence) calls without one
                evidence = self._soft_guard(r, one_coin, rng, be, nt)
            else:
                evidence = {"split": True, "reason": "guard=False", "separation": float("nan")}
        self.evidence_ = evidence
        self.split_used_ = bool(self.evidence_["split"])
        self.split_kind_ = "soft" if self.split_used_ else "none"
        index = pd.Index(r.task_ids, name="task")
        workers = pd.Index(r.worker_ids, name="worker")
        if self.split_used_:
            plain = self.plain_
            assert isinstance(plain, DawidSkene)  # _check and fit admit only that family here
            conf0 = np.asarray(plain.confusions_, dtype=np.float64)
            prior0 = plain.priors_.to_numpy(dtype=np.float64)
            post, log_conf, log_prior, lam, hist = degraded_em(
                r, conf0, prior0, one_coin=one_coin, smoothing=self.smoothing, backend=be, n_threads=nt, gold=self._gold
            )
            self.soft_history_ = hist
            tp = post.sum(2)
            proba = post.sum(1)
            proba /= proba.sum(1, keepdims=True)
            types = tp.argmax(1)
            self.type_proba_ = pd.DataFrame(tp, index=index, columns=pd.RangeIndex(2, name="type"))
            self.hard_retention_ = pd.Series(lam, index=workers, name="retention")
            self.types_ = pd.Series(types.astype(np.int64), index=index, name="type")
            self._set_posteriors(r, proba)
            right = post[r.task, :, r.label]  # (N, T): P(type t and answer right)
            typ = tp[r.task]
            skills = np.full((r.n_workers, 2), np.nan)
            for t in range(2):
                num = np.bincount(r.worker, weights=right[:, t], minlength=r.n_workers)
                den = np.bincount(r.worker, weights=typ[:, t], minlength=r.n_workers)
                with np.errstate(invalid="ignore", divide="ignore"):
                    skills[:, t] = np.where(den > 1e-12, num / np.maximum(den, 1e-300), np.nan)
            k = 2
        else:
            proba = self.plain_.probas_.to_numpy()
            classes = pd.Index(np.asarray(r.classes_))
            self.types_ = pd.Series(np.zeros(r.n_tasks, dtype=np.int64), index=index, name="type")
            self.type_proba_ = pd.DataFrame(np.ones((r.n_tasks, 1)), index=index, columns=pd.RangeIndex(1, name="type"))
            self.hard_retention_ = pd.Series(np.ones(r.n_workers), index=workers, name="retention")
            self._set_posteriors(r, proba, labels=classes.get_indexer(self.plain_.labels_.to_numpy()))
            right = proba[r.task, r.label]
            num = np.bincount(r.worker, weights=right, minlength=r.n_workers)
            den = np.bincount(r.worker, minlength=r.n_workers)
            with np.errstate(invalid="ignore", divide="ignore"):
                skills = np.where(den > 0, num / np.maximum(den, 1), np.nan)[:, None]
            k = 1
        self.skills_by_type_ = pd.DataFrame(skills, index=workers, columns=pd.RangeIndex(k, name="type"))
        return self

    def fit(self, data: Responses | pd.DataFrame, true_labels=None) -> TypeAware:
        """Fit on ``data``; ``true_labels`` (task id -> label, optional): gold tasks, clamped in every
        E-step of the fitted models (the plain fit, each type's fit, the soft two-type EM) and kept in
        ``labels_``/``probas_``. The guards' held-out folds decide the split from the answers alone."""
        self._check()
        r = self._prepare(data)
        gt, gk = gold_codes(r, true_labels)
        self._gold = (gt, gk) if gt.size else None
        self._gold_labels = (
            pd.Series(np.asarray(r.classes_)[gk], index=pd.Index(np.asarray(r.task_ids)[gt])) if gt.size else None
        )
        try:
            return self._fit(r)
        finally:
            del self._gold, self._gold_labels

    def _fit(self, r: Responses) -> TypeAware:
        be = self._backend()
        nt = self._threads() or (1 if r.n_responses < 200_000 else 0)
        rng = np.random.default_rng(self.random_state)
        base = self.base if self.base is not None else DawidSkene()
        if self.split == "soft":
            return self._fit_soft(r, base, be, nt, rng)
        two_types = self.clustering is None or self.clustering.n_types == 2  # the soft model has two types
        if self.split == "auto" and self.guard and isinstance(base, DawidSkene) and two_types:
            self._fit_hard(r, base, be, nt, rng)
            if self.split_used_:
                return self
            # the hard split was refused: try the soft model, its guard on its own random stream
            # (the same folds as split="soft" with this random_state)
            hard_evidence = self.evidence_
            soft = self._soft_guard(r, self._one_coin_base(base), np.random.default_rng(self.random_state), be, nt)
            soft["hard_guard"] = hard_evidence
            if soft["split"]:
                return self._fit_soft(r, base, be, nt, None, evidence=soft)
            hard_evidence["soft_guard"] = {k: v for k, v in soft.items() if k != "hard_guard"}
            return self
        return self._fit_hard(r, base, be, nt, rng)

    def _fit_hard(self, r: Responses, base: BaseAggregator, be: str, nt: int, rng: np.random.Generator) -> TypeAware:
        self.plain_ = fit_with_gold(base.clone(), r, self._gold_labels)
        tc: TaskTypeClustering | None
        if self.guard:
            self.evidence_, tc = self._guard(r, rng, be, nt)
        else:
            tc = self._make_clustering().fit(r)
            sizes = np.bincount(tc.types_.to_numpy())
            if len(sizes) < 2 or (sizes < 2).any():
                self.evidence_ = {
                    "split": False,
                    "reason": f"the clustering found types of sizes {sizes.tolist()}",
                    "separation": float(tc.separation_),
                }
            else:
                self.evidence_ = {"split": True, "reason": "guard=False", "separation": float(tc.separation_)}
        self.clustering_ = tc
        if self.evidence_["split"]:
            assert tc is not None  # a split needs the clustering of all tasks
            types = tc.types_.to_numpy()
            k = int(types.max()) + 1
        self.split_used_ = bool(self.evidence_["split"])
        self.split_kind_ = "hard" if self.split_used_ else "none"
        index = pd.Index(r.task_ids, name="task")
        self.type_models_ = []
        classes = pd.Index(np.asarray(r.classes_))

        def codes(model: BaseAggregator) -> np.ndarray:  # the model's own labels (keeps e.g. its random tie-breaks)
            return classes.get_indexer(model.labels_.to_numpy())

        if self.split_used_:
            proba = np.zeros((r.n_tasks, r.n_classes))
            label_codes = np.zeros(r.n_tasks, dtype=np.int64)
            for t in range(k):
                mask = types == t
                sub = r.subset_tasks(mask)
                gold = self._gold_labels
                if gold is not None:
                    gold = gold[gold.index.isin(pd.Index(sub.task_ids))]
                    gold = gold if len(gold) else None
                m = fit_with_gold(base.clone(), sub, gold)
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
        self.skills_by_type_ = pd.DataFrame(
            skills, index=pd.Index(r.worker_ids, name="worker"), columns=pd.RangeIndex(k, name="type")
        )
        return self
