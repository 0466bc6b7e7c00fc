"""Auto: choose the aggregator by how well it predicts answers it has not seen.

No gold labels are needed. ``n_folds`` times, a share ``holdout`` of each task's
answers is hidden (task j with n_j >= 2 answers hides floor(holdout n_j + u_j)
of them, u_j ~ U(0, 1), so the expected share is ``holdout``; at least one answer
always stays). Every candidate is fitted on the rest, and scored by the mean log
predictive probability of the hidden answers,

    score = mean over hidden (j, w, l) of log sum_k P(y_j = k | seen answers) P(l | y_j = k, w),

with the candidate's own answer model P(l | k, w): the confusion matrices of the
Dawid-Skene family (posterior means for the Bayesian ones), sigma(alpha_w beta_j)
for a right answer under GLAD (a wrong one uniform over the other K - 1 classes),
theta_w [l = k] + (1 - theta_w) xi_w[l] under MACE, one shared confusion matrix
(every worker alike) for majority vote, one skill per worker for the weighted
vote, and for any other aggregator (TypeAware) the confusion matrices of one
Dawid-Skene M-step from its posteriors with one pseudo-count per cell. All
candidates see the same hidden answers (a paired comparison). A task with a
single answer cannot hide one: it stays in training and is not scored (a
``UserWarning`` says how many). The candidate with the highest mean score is
refitted on all answers and its labels and posteriors are returned.

Gold labels (``true_labels``) go to every candidate that takes them and are clamped
in its E-steps; in the score, every candidate's P(y_j = k | ...) of a gold task is the
one-hot gold label.

Candidates that raise are reported in a ``UserWarning`` (name and error) and
left out (``scores_`` is NaN for them); ``Auto`` fails only when every candidate
fails. Given a seed, the hidden answers and every candidate's randomness are
fixed, so the choice and the labels are reproducible.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from .._check import check_float, check_int
from ._base import BaseAggregator
from ._gold import clamp, fit_with_gold, gold_codes
from ._majority_vote import MajorityVote, WeightedMajorityVote
from ._responses import Responses

__all__ = ["Auto", "AgreementWeightedVote", "CANDIDATES", "DEFAULT_CANDIDATES", "heldout_split", "predictive_loglik"]


class AgreementWeightedVote(BaseAggregator):
    """Weighted majority vote with one-step reliabilities.

    Each worker's reliability is its share of answers agreeing with the reference
    labels, (agree + 1) / (n + 2), and its vote weighs the Nitzan-Paroush log-odds
    ln(p (K - 1) / (1 - p)) (as crowd-kit's Wawa, with optimal one-coin weights);
    ``probas_`` is the one-coin posterior (softmax of the scores). The reference is
    the majority vote, and on gold tasks the gold label.

    Parameters
    ----------
    tie_break, random_state, backend, n_threads : as :class:`~kdcore.crowd.MajorityVote`
    true_labels : pd.Series or dict (task id -> label), optional
        Gold tasks: the reference label that the reliabilities are measured against,
        and returned unchanged (posterior one-hot).

    Attributes
    ----------
    skills_ : pd.Series, the reliabilities by worker; labels_, probas_, classes_

    Example
    -------
    >>> from kdcore.crowd import simulate
    >>> r, truth = simulate.one_coin(500, 20, 2, answers_per_task=5, random_state=0)
    >>> AgreementWeightedVote(random_state=0).fit(r).skills_.shape
    (20,)
    """

    def __init__(
        self, tie_break: str = "random", random_state=None, backend: str = "auto", n_threads: int = 0, true_labels=None
    ):
        self.tie_break = tie_break
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads
        self.true_labels = true_labels

    def fit(self, data) -> AgreementWeightedVote:
        r = self._prepare(data)
        gold_t, gold_k = gold_codes(r, self.true_labels)
        params = {k: v for k, v in self.get_params().items() if k != "true_labels"}
        mv = MajorityVote(**params).fit(r)
        best = pd.Index(mv.classes_).get_indexer(mv.labels_.to_numpy())
        best[gold_t] = gold_k
        agree = np.bincount(r.worker, weights=(best[r.task] == r.label).astype(np.float64), minlength=r.n_workers)
        n_w = np.bincount(r.worker, minlength=r.n_workers).astype(np.float64)
        skill = (agree + 1.0) / (n_w + 2.0)
        wmv = WeightedMajorityVote(reliabilities=skill, **params).fit(r)
        self.skills_ = pd.Series(skill, index=r.worker_ids, name="skill")
        labels = pd.Index(wmv.classes_).get_indexer(wmv.labels_.to_numpy())
        labels[gold_t] = gold_k
        self._set_posteriors(r, clamp(wmv.probas_.to_numpy().copy(), gold_t, gold_k), labels)
        return self


def _make(name: str, seed: int | None, n_threads: int, backend: str = "auto") -> BaseAggregator:
    from ._bayesian import BayesianDawidSkene, CommunityDawidSkene
    from ._dawid_skene import DawidSkene
    from ._glad import GLAD
    from ._mace import MACE
    from ._one_coin import OneCoinDawidSkene
    from ._type_aware import TypeAware

    factories: dict[str, Callable[[], BaseAggregator]] = {
        "majority_vote": lambda: MajorityVote(random_state=seed, n_threads=n_threads),
        "weighted_vote": lambda: AgreementWeightedVote(random_state=seed, n_threads=n_threads),
        "one_coin": lambda: OneCoinDawidSkene(n_threads=n_threads),
        "dawid_skene": lambda: DawidSkene(n_threads=n_threads),
        "bayesian_ds": lambda: BayesianDawidSkene(n_threads=n_threads),
        "pooled_ds": lambda: BayesianDawidSkene(prior="pooled", n_threads=n_threads),
        "community_ds": lambda: CommunityDawidSkene(n_threads=n_threads),
        "glad": lambda: GLAD(n_threads=n_threads),
        "mace": lambda: MACE(n_init=3, random_state=seed, n_threads=n_threads),
        "type_aware": lambda: TypeAware(random_state=seed),
    }
    est = factories[name]()
    if backend != "auto" and "backend" in est.get_params(deep=False):
        est.set_params(backend=backend)
    return est


#: the names Auto knows, in its order of tie-breaking (earlier wins a tie)
CANDIDATES = (
    "majority_vote",
    "weighted_vote",
    "one_coin",
    "dawid_skene",
    "bayesian_ds",
    "pooled_ds",
    "community_ds",
    "glad",
    "mace",
    "type_aware",
)
#: the default set: all but "type_aware", whose guard refits Dawid-Skene many times
#: (17 s on the 8,000 answers of rte where the others together take 6 s)
DEFAULT_CANDIDATES = CANDIDATES[:-1]


def heldout_split(responses: Responses, holdout: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of hidden answers: task j (n_j >= 2) hides floor(holdout n_j + u), u ~ U(0, 1),
    at most n_j - 1 of its answers, chosen uniformly; tasks with one answer hide none."""
    r = responses
    n_j = np.diff(r.task_indptr)
    h = np.floor(holdout * n_j + rng.random(r.n_tasks)).astype(np.int64)
    h = np.minimum(h, np.maximum(n_j - 1, 0))
    order = np.lexsort((rng.random(r.n_responses), r.task))  # answers grouped by task, random order within
    start = np.repeat(r.task_indptr[:-1], n_j)  # r.task sorted by lexsort: first answer of each task's run
    rank = np.empty(r.n_responses, dtype=np.int64)
    rank[order] = np.arange(r.n_responses) - start
    return rank < h[r.task]


def _train_responses(r: Responses, keep: np.ndarray) -> Responses:
    """The kept answers with the same task, worker and class codes as ``r`` (workers may have no answer)."""
    return Responses._from_codes(
        np.ascontiguousarray(r.task[keep]),
        np.ascontiguousarray(r.worker[keep]),
        np.ascontiguousarray(r.label[keep]),
        r.task_ids,
        r.worker_ids,
        r.classes_,
    )


def _plugin_confusions(train: Responses, post: np.ndarray, pseudo: float = 1.0) -> np.ndarray:
    """Per-worker confusions of one Dawid-Skene M-step from posteriors, ``pseudo`` added to every cell."""
    K = train.n_classes
    counts = np.zeros((train.n_workers, K, K))
    np.add.at(counts, (train.worker, slice(None), train.label), post[train.task])  # type: ignore[arg-type]
    counts += pseudo
    return counts / counts.sum(-1, keepdims=True)


def predictive_loglik(
    model: BaseAggregator,
    train: Responses,
    task,
    worker,
    label,
    gold: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """log P(answer l of worker w on task j | the answers ``model`` was fitted on), one per hidden answer.

    ``model`` is fitted on ``train``; ``task``, ``worker``, ``label`` are codes of
    ``train`` (the hidden answers). The answer model is the candidate's own (module
    docstring). ``gold`` (task codes, class codes): tasks whose true class is known;
    their P(y_j = k | ...) is the one-hot label whatever the candidate's posterior.
    """
    from ._bayesian import BayesianDawidSkene
    from ._dawid_skene import DawidSkene
    from ._glad import GLAD
    from ._mace import MACE

    post = model.probas_.to_numpy()
    if gold is not None and len(gold[0]):
        post = clamp(post.copy(), *gold)
    q = post[task]  # (H, K)
    K = train.n_classes
    if isinstance(model, (DawidSkene, BayesianDawidSkene)):
        conf = np.asarray(model.confusions_)
        p = np.einsum("hk,hk->h", q, conf[worker, :, label])
    elif isinstance(model, GLAD):
        s = model.alphas_.to_numpy()[worker] * np.exp(model.betas_.to_numpy()[task])
        right = 1.0 / (1.0 + np.exp(-s))
        ql = q[np.arange(len(task)), label]
        p = ql * right + (1.0 - ql) * (1.0 - right) / (K - 1)
    elif isinstance(model, MACE):
        theta = model.skills_.to_numpy()[worker]
        xi = model.spam_strategies_.to_numpy()[worker, label]
        p = theta * q[np.arange(len(task)), label] + (1.0 - theta) * xi
    elif isinstance(model, AgreementWeightedVote):
        sk = np.clip(model.skills_.to_numpy()[worker], 1e-6, 1 - 1e-6)
        ql = q[np.arange(len(task)), label]
        p = ql * sk + (1.0 - ql) * (1.0 - sk) / (K - 1)
    elif type(model) is MajorityVote:
        counts = np.zeros((K, K))
        np.add.at(counts, (slice(None), train.label), post[train.task].T)  # type: ignore[arg-type]
        counts += 1.0
        conf = counts / counts.sum(-1, keepdims=True)
        p = np.einsum("hk,hk->h", q, conf[:, label].T)
    else:
        conf = _plugin_confusions(train, post)
        p = np.einsum("hk,hk->h", q, conf[worker, :, label])
    return np.log(np.maximum(p, 1e-300))


class Auto(BaseAggregator):
    """Fit several aggregators and keep the one that best predicts held-out answers (no gold needed).

    Parameters
    ----------
    candidates : sequence of names or of aggregators, or a dict name -> aggregator, optional
        Names from :data:`CANDIDATES` ("majority_vote", "weighted_vote", "one_coin",
        "dawid_skene", "bayesian_ds", "pooled_ds", "community_ds", "glad", "mace",
        "type_aware"); default all of them. Aggregators are cloned, never fitted in place.
        At least two.
    holdout : float in (0, 1), default 0.2
        Expected share of each task's answers hidden in a fold.
    n_folds : int >= 1, default 2
        Number of random hidden sets; the score is the mean over folds.
    max_answers : int or None, default 50_000
        Score on a random subset of tasks holding about this many answers when the data
        hold more (the winner is still refitted on all answers); None: all answers.
    true_labels : pd.Series or dict, optional
        Gold labels: given to every candidate that takes them (as its ``true_labels``
        parameter, or as ``fit``'s ``true_labels`` argument: DawidSkene, OneCoinDawidSkene,
        TypeAware), so they are clamped in its E-steps; the others (MajorityVote) are fitted
        without. In the scoring every candidate's posterior of a gold task is its one-hot
        label (the hidden answers there score the worker model alone), and the returned
        labels and posteriors keep the gold labels.
    random_state : int or None
        Seeds the hidden answers and the candidates' randomness.
    backend : {"auto", "cpp", "numpy"}, the backend of every named candidate ("auto": each its default).
    n_threads : int, default 0
        Threads of the candidates' compiled kernels.

    Attributes
    ----------
    labels_, probas_, classes_ : the chosen candidate's, refitted on all answers
    scores_ : pd.Series, mean log predictive probability per hidden answer of each
        candidate (NaN where it failed), in the order given
    fold_scores_ : pd.DataFrame, the same per fold
    chosen_ : str, the winner's name
    model_ : the winner, fitted on all answers
    errors_ : dict name -> error message of the candidates that failed
    n_single_answer_tasks_ : int, tasks kept in training because they have one answer
    n_hidden_ : float, hidden answers per fold (mean)
    fit_times_ : pd.Series, seconds each candidate took to fit and score, all folds

    Example
    -------
    >>> from kdcore.crowd import simulate
    >>> r, truth = simulate.one_coin(2000, 50, 2, answers_per_task=5, random_state=0)
    >>> auto = Auto(["majority_vote", "one_coin", "dawid_skene"], random_state=0).fit(r)
    >>> auto.chosen_ in auto.scores_.index
    True
    """

    def __init__(
        self,
        candidates=None,
        holdout: float = 0.2,
        n_folds: int = 2,
        max_answers: int | None = 50_000,
        true_labels=None,
        random_state=None,
        backend: str = "auto",
        n_threads: int = 0,
    ):
        self.candidates = candidates
        self.holdout = holdout
        self.n_folds = n_folds
        self.max_answers = max_answers
        self.true_labels = true_labels
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads

    def clone(self) -> Auto:
        params = self.get_params()
        c = params["candidates"]
        if isinstance(c, dict):
            params["candidates"] = {k: v.clone() for k, v in c.items()}
        elif c is not None and not isinstance(c, str):
            params["candidates"] = [v.clone() if isinstance(v, BaseAggregator) else v for v in c]
        return type(self)(**params)

    def _candidate_makers(self, seed: int | None, n_threads: int) -> dict[str, Callable[[], BaseAggregator]]:
        c = self.candidates
        if c is None:
            c = DEFAULT_CANDIDATES
        if isinstance(c, (str, BaseAggregator)):
            raise TypeError(f"candidates must be a sequence or a dict of two or more candidates, got one: {c!r}")
        items: list[tuple[str, object]]
        if isinstance(c, dict):
            items = list(c.items())
        else:
            items = []
            for v in c:
                items.append((v if isinstance(v, str) else type(v).__name__, v))
        makers: dict[str, Callable[[], BaseAggregator]] = {}
        for name, v in items:
            if not isinstance(name, str):
                raise TypeError(f"candidate names must be strings, got {type(name).__name__}")
            if name in makers:
                raise ValueError(f"candidate {name!r} is given twice; name them with a dict to compare variants")
            if isinstance(v, str):
                if v not in CANDIDATES:
                    raise ValueError(f"unknown candidate {v!r}; known: {list(CANDIDATES)}")
                makers[name] = functools.partial(_make, v, seed, n_threads, self.backend)
            elif isinstance(v, BaseAggregator):
                makers[name] = v.clone
            else:
                raise TypeError(f"a candidate must be a name or a kdcore aggregator, got {type(v).__name__}")
        if len(makers) < 2:
            raise ValueError(
                f"Auto needs at least two candidates to choose from, got {len(makers)} ({list(makers)}); "
                "fit that aggregator directly"
            )
        return makers

    def fit(self, data) -> Auto:
        r = self._prepare(data)
        holdout = check_float(self.holdout, "holdout", minimum=0.0, strict_min=True)
        if holdout >= 1.0:
            raise ValueError(f"holdout must be in (0, 1), got {holdout}")
        n_folds = check_int(self.n_folds, "n_folds", minimum=1)
        n_threads = check_int(self.n_threads, "n_threads", minimum=0)
        max_answers = None if self.max_answers is None else check_int(self.max_answers, "max_answers", minimum=1)
        gold_t, gold_k = gold_codes(r, self.true_labels)
        rng = np.random.default_rng(self.random_state)
        seed = int(rng.integers(2**31 - 1))
        makers = self._candidate_makers(seed, n_threads)
        names = list(makers)

        n_single = int(np.sum(np.diff(r.task_indptr) == 1))
        if n_single:
            warnings.warn(
                f"Auto: {n_single} of {r.n_tasks} tasks have a single answer; they cannot hide one, so they stay "
                "in training and are not scored",
                UserWarning,
                stacklevel=2,
            )
        scored = r
        if max_answers is not None and r.n_responses > max_answers:
            # a random subset of tasks with about max_answers answers (tasks whole, ids and codes kept)
            perm = rng.permutation(r.n_tasks)
            n_keep = int(np.searchsorted(np.cumsum(np.diff(r.task_indptr)[perm]), max_answers)) + 1
            keep_task = np.zeros(r.n_tasks, dtype=bool)
            keep_task[perm[:n_keep]] = True
            scored = r.subset_tasks(keep_task)
        gold_scored = self.true_labels
        if gold_t.size and scored is not r:  # the gold tasks that are in the scored subset, as checked codes
            ids = np.asarray(r.task_ids)[gold_t]
            inside = np.isin(ids, np.asarray(scored.task_ids))
            gold_scored = pd.Series(np.asarray(r.classes_)[gold_k[inside]], index=ids[inside])
        gold_in_scored = gold_codes(scored, gold_scored)
        errors: dict[str, str] = {}
        for name in names:  # build each candidate once first (imports its module; a bad one fails here)
            try:
                makers[name]()
            except Exception as exc:  # noqa: BLE001
                errors[name] = f"{type(exc).__name__}: {exc}"
        times = np.zeros(len(names))
        fold_scores = np.full((n_folds, len(names)), np.nan)
        n_hidden = []
        for f in range(n_folds):
            hide = heldout_split(scored, holdout, rng)
            if not hide.any():
                raise ValueError(
                    "Auto: no answer can be held out (every task has a single answer); it needs tasks with two "
                    "or more answers to score the candidates"
                )
            n_hidden.append(int(hide.sum()))
            train = _train_responses(scored, ~hide)
            ht, hw, hl = scored.task[hide], scored.worker[hide], scored.label[hide]
            for i, name in enumerate(names):
                if name in errors:
                    continue
                t0 = time.perf_counter()
                try:
                    est = fit_with_gold(makers[name](), train, gold_scored)
                    ll = predictive_loglik(est, train, ht, hw, hl, gold_in_scored)
                    times[i] += time.perf_counter() - t0
                    if not np.all(np.isfinite(ll)):
                        raise FloatingPointError("non-finite predictive log-likelihood")
                    fold_scores[f, i] = float(ll.mean())
                except Exception as exc:  # noqa: BLE001 (a failing candidate is reported, the others go on)
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    fold_scores[:, i] = np.nan
        for name, msg in errors.items():
            warnings.warn(f"Auto: candidate {name!r} failed and is left out ({msg})", UserWarning, stacklevel=2)
        scores = pd.Series(np.nan, index=pd.Index(names, name="candidate"), name="heldout_loglik")
        ok: list[int] = [i for i, n in enumerate(names) if n not in errors]
        if not ok:
            raise RuntimeError(f"Auto: every candidate failed: {errors}")
        scores.iloc[ok] = fold_scores[:, ok].mean(axis=0)
        order = sorted(ok, key=lambda i: (-scores.iloc[i], i))  # ties go to the earlier candidate
        model = None
        for i in order:  # the winner, refitted on all answers (the next one if it fails there)
            try:
                model = fit_with_gold(makers[names[i]](), r, self.true_labels)
                chosen = names[i]
                break
            except Exception as exc:  # noqa: BLE001
                errors[names[i]] = f"{type(exc).__name__}: {exc}"
                warnings.warn(
                    f"Auto: candidate {names[i]!r} won but failed on all answers ({errors[names[i]]}); "
                    "taking the next best",
                    UserWarning,
                    stacklevel=2,
                )
        if model is None:
            raise RuntimeError(f"Auto: every candidate failed: {errors}")
        self.scores_ = scores
        self.fold_scores_ = pd.DataFrame(fold_scores, columns=scores.index, index=pd.RangeIndex(n_folds, name="fold"))
        self.fit_times_ = pd.Series(times, index=scores.index, name="seconds")
        self.chosen_ = chosen
        self.model_ = model
        self.errors_ = errors
        self.n_single_answer_tasks_ = n_single
        self.n_hidden_ = float(np.mean(n_hidden))
        proba = clamp(model.probas_.to_numpy().copy(), gold_t, gold_k)
        labels = pd.Index(model.classes_).get_indexer(model.labels_.to_numpy())
        if gold_t.size:
            labels[gold_t] = gold_k
        self._set_posteriors(r, proba, labels)
        return self
