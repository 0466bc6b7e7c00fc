"""Hidden task types from crowd answers (docs/maths.md B.1-B.3, Kong et al. 2023).

:class:`TaskTypeClustering` splits the tasks of a :class:`~kdcore.crowd.Responses`
into ``n_types`` groups whose workers' reliabilities differ. Three methods:

- ``"spectral"``: the paper's label-free construction, made robust to class-biased
  workers. Each answer becomes a value z (binary: +1/-1; K > 2 classes: the class's
  vertex of a regular simplex in R^(K-1), so z_a . z_b = 1 when two answers agree
  and -1/(K-1) when they differ: the typing uses *agreement* statistics), centred
  (``centring="worker"``: minus the worker's mean answer, i.e. its label
  frequencies; ``"class"``: minus the worker's mean answer within each estimated
  class, from a quick Dawid-Skene fit; ``"none"``: the published construction).
  The top eigenpairs of the hollow task-task matrix G_jl = <F_j, F_l> (never
  formed: compiled implicit operator + Lanczos, kdcore/spectral.hpp) give the
  embedding rows [lambda_1 u_1j, ..., lambda_k u_kj], read out by k-means,
  by |u_1| (``"magnitude"``, easy/hard workers) or by sign(u_2) (``"sign"``, specialists).
- ``"refined"``: label-aware. Given label posteriors, each answer's estimated
  correctness z_a . E[z_j] has mean v_{i, t_j}: a first-order, rank-k worker x task
  structure, far stronger than the second-order one with few answers per task. It
  runs classification EM of a k-type model with a skill per worker, type and true
  class (wrong answers spread evenly; skills shrunk toward the worker's overall
  per-class skill; label posteriors re-fitted per type, each task moved to its most
  likely type), then soft EM of the same mixture, from the spectral split and from the
  split of the correctness matrix's top singular vectors, and keeps the one with
  the higher penalised likelihood.
- ``"mixture"``: the k-type Dawid-Skene mixture (latent label and type per task, a
  confusion matrix per worker per type, a joint (type, class) prior), fitted by EM
  in the same typed EM core as plain Dawid-Skene (:mod:`kdcore.crowd._em`, T =
  n_types), started from ``refined``. Its penalised log-likelihood
  (``loss_history_``) never decreases.

``separation_`` in [0, 1] says how confidently the tasks are typed: 1 - (mean
normalised entropy of ``type_proba_``). Near 0: the split is not meaningful (for
``spectral`` the soft assignment comes from a spherical Gaussian mixture on the
embedding). :class:`~kdcore.crowd.TypeAware` adds a held-out likelihood test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._check import check_float, check_int
from ..backends import _core
from . import _em
from ._base import BaseEstimator
from ._kmeans import gmm_proba, kmeans, separation
from ._responses import Responses
from ._spectral_embedding import CENTRINGS, answer_values, simplex_codes, spectral_embedding
from ._typed_em import align_types, answer_counts, answer_incidence, em_fit, vote_post

__all__ = ["TaskTypeClustering", "answer_values", "spectral_embedding", "kmeans"]

_METHODS = ("spectral", "refined", "mixture")
_READOUTS = ("kmeans", "magnitude", "sign")
_SMALL = 200_000  # answers below which the EM steps and the operator run on one thread
#: relative eigengap after the n_types-th eigenvalue below which the spectral split is unsupported:
#: Lanczos stops as soon as the gap is provably smaller (``spectral_info_["reason"]`` says so)
MIN_EIGENGAP = 0.05
_SHRINK = 4.0  # pseudo-answers shrinking a type's skills toward the worker's overall skill


class TaskTypeClustering(BaseEstimator):
    """Find hidden task types from crowd answers.

    Parameters
    ----------
    n_types : int, default 2
    method : {"spectral", "refined", "mixture"}, default "refined"
        See the module docstring.
    readout : {"kmeans", "magnitude", "sign"}, default "kmeans"
        How the spectral embedding becomes types (``sign`` needs ``n_types=2``).
    centring : {"worker", "class", "none"}, default "worker"
        Class-bias removal of the spectral step (``none`` = the published construction).
    n_iter, tol, smoothing : EM settings of ``refined`` (classification EM) and ``mixture``.
    n_init : int, default 8
        Random starting splits of ``refined`` besides the spectral and the correctness-SVD
        splits; the start reaching the highest penalised likelihood is kept.
    random_state : int or None
    backend : {"auto", "cpp", "numpy"}
    n_threads : int, 0 = default

    Attributes
    ----------
    types_ : Series of int type codes indexed by task id
    type_proba_ : DataFrame tasks x types
    embedding_ : ndarray (n_tasks, n_types), the spectral embedding [lambda_i u_i] (scaled by sqrt(d))
    eigenvalues_ : ndarray (n_types,)
    separation_ : float in [0, 1], 1 - mean normalised entropy of type_proba_
    label_proba_ : ndarray (n_tasks, K) label posteriors of the typed model (refined, mixture)
    loss_history_ : list of the penalised log-likelihood per EM iteration (mixture)
    n_cem_rounds_, n_polish_rounds_ : per start, the classification EM's re-fits and the soft EM's
        rounds (refined, mixture)
    log_conf_, log_prior_ : fitted typed model (refined: one-coin; mixture: full confusions)

    Example
    -------
    >>> from kdcore.crowd import simulate, TaskTypeClustering
    >>> r, truth, types, rel = simulate.two_type(2000, 40, 0.3, regime="specialist", random_state=0)
    >>> tt = TaskTypeClustering(method="refined", random_state=0).fit(r)
    >>> tt.types_.shape
    (2000,)
    """

    def __init__(
        self,
        n_types: int = 2,
        method: str = "refined",
        readout: str = "kmeans",
        centring: str = "worker",
        n_iter: int = 50,
        tol: float = 1e-6,
        smoothing: float = 0.01,
        n_init: int = 8,
        random_state=None,
        backend: str = "auto",
        n_threads: int = 0,
    ):
        self.n_types = n_types
        self.method = method
        self.readout = readout
        self.centring = centring
        self.n_iter = n_iter
        self.tol = tol
        self.smoothing = smoothing
        self.n_init = n_init
        self.random_state = random_state
        self.backend = backend
        self.n_threads = n_threads

    # ------------------------------------------------------------------ validation
    def _validate(self, data: Responses | pd.DataFrame) -> Responses:
        r = Responses.coerce(data)
        k = check_int(self.n_types, "n_types", minimum=1)
        if r.n_tasks < 2:
            raise ValueError(f"task typing needs at least 2 tasks, got {r.n_tasks}")
        if k > r.n_tasks:
            raise ValueError(f"n_types={k} is larger than the number of tasks ({r.n_tasks})")
        if r.n_workers < 2:
            raise ValueError(f"task typing needs at least 2 workers (pairs of answers), got {r.n_workers}")
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {list(_METHODS)}, got {self.method!r}")
        if self.readout not in _READOUTS:
            raise ValueError(f"readout must be one of {list(_READOUTS)}, got {self.readout!r}")
        if self.readout == "sign" and k != 2:
            raise ValueError("readout='sign' splits by the sign of u_2 and needs n_types=2")
        if self.centring not in CENTRINGS:
            raise ValueError(f"centring must be one of {list(CENTRINGS)}, got {self.centring!r}")
        check_int(self.n_iter, "n_iter", minimum=1)
        check_int(self.n_init, "n_init", minimum=0)
        check_float(self.tol, "tol", minimum=0.0)
        _em.check_smoothing(self.smoothing)
        return r

    # ------------------------------------------------------------------ the three methods
    def _spectral(self, r: Responses, rng: np.random.Generator, be: str, nt: int) -> tuple[np.ndarray, np.ndarray]:
        k = self.n_types
        label_post = None
        if self.centring == "class":
            label_post = self._plain_ds(r, be, nt)
        values = answer_values(r, self.centring, label_post)
        ke = min(k + 1, r.n_tasks)
        seed = int(rng.integers(2**31))
        # the vectors the readout reads: u_1 alone (magnitude) or the top k (k-means, sign of u_2)
        n_vec = min(1 if self.readout == "magnitude" else k, ke)
        vals, vecs, info = spectral_embedding(
            r, values, ke, backend=be, seed=seed, n_threads=nt, n_vec=n_vec, min_gap=MIN_EIGENGAP
        )
        # scale by the top eigenvalue; when the operator is numerically zero (no two answers
        # of a task carry signal) dividing by it blew round-off up to 1e284 and k-means then
        # produced NaN: no signal gives an all-zero embedding
        top = max(abs(vals[0]), float(np.abs(vals).max(initial=0.0)))
        signal = top > 1e-10 * max(1.0, float((values * values).sum()))
        emb = vecs * vals[None, :] / top * np.sqrt(r.n_tasks) if signal else np.zeros_like(vecs)
        # fix signs: the largest-|.| entry of each eigenvector positive (reproducible output)
        for c in range(emb.shape[1]):
            if emb[np.argmax(np.abs(emb[:, c])), c] < 0:
                emb[:, c] *= -1
        # a near-degenerate spectrum (relative eigengap provably < MIN_EIGENGAP): Lanczos stopped early
        # and spectral_info_["unsupported"] says so; the split is still read from the best Ritz vectors,
        # which separate planted types well even where the gap is small (the phase-transition grid)
        unsupported = False
        if k == 1 or unsupported:
            labels = np.zeros(r.n_tasks, dtype=np.int64)
        elif self.readout == "kmeans":
            labels = kmeans(emb[:, :k], k, rng, backend=be, n_threads=nt)[0]
        elif self.readout == "magnitude":
            labels = kmeans(np.abs(emb[:, :1]), k, rng, backend=be, n_threads=nt)[0]
        else:  # sign of u_2
            labels = (emb[:, 1] > 0).astype(np.int64)
        feat = (
            emb[:, :k]
            if self.readout == "kmeans"
            else (np.abs(emb[:, :1]) if self.readout == "magnitude" else emb[:, 1:2])
        )
        if unsupported:
            proba = np.full((r.n_tasks, k), 1.0 / k)
        elif k > 1 and self.method == "spectral":
            proba = gmm_proba(feat, labels, k)
        else:  # refined and mixture replace the soft assignment by their own (it would be discarded)
            proba = np.ones((r.n_tasks, 1)) if k == 1 else np.eye(k)[labels]
        self.eigenvalues_ = vals[:k] if k > 1 else vals[:1]
        self.embedding_ = emb[:, :k] if k > 1 else emb[:, :1]
        self.spectral_info_ = info
        # relative eigengap between the last signal eigenvalue and the first bulk one
        lam = np.asarray(vals)
        self.spectral_gap_ = (
            float(np.clip(1.0 - lam[k] / lam[k - 1], 0.0, 1.0)) if (len(lam) > k and lam[k - 1] > 0) else 0.0
        )
        return labels, proba

    def _plain_ds(self, r: Responses, be: str, nt: int) -> np.ndarray:
        post, *_ = em_fit(
            r,
            vote_post(r)[:, None, :],
            n_iter=self.n_iter,
            tol=self.tol,
            smoothing=self.smoothing,
            backend=be,
            n_threads=nt,
        )
        return post[:, 0, :]

    @staticmethod
    def _counter(r: Responses, be: str, nt: int) -> Any:
        """post (n_tasks, T, K) -> expected answer counts c[t, w, k, l]: the compiled counting pass
        (threads, both answer views) or one sparse product with the answer incidence, built once."""
        if be == "cpp":
            views = (r.worker_indptr, r.worker_task, r.worker_label, r.task_indptr, r.task_worker, r.task_label)
            return lambda post: _core.em_counts(*views, r.n_tasks, r.n_workers, post, nt)[0]
        incidence = answer_incidence(r)
        return lambda post: answer_counts(r, post, incidence)

    def _shrunk_skills(self, r: Responses, post: np.ndarray, counter: Any) -> tuple[np.ndarray, np.ndarray]:
        """Class-conditional skills per (type, worker, class) s[t, w, k] = P(right | type t, class k)
        (wrong answers spread evenly over the other classes), shrunk toward the worker's
        per-class skill over all tasks by 4 pseudo-answers. Class-conditional, so that workers
        whose accuracy depends on the class do not make the types follow the class; shrunk, so
        that a type fitted on a handful of tasks cannot take extreme skills (classification EM
        would otherwise let one type swallow a few tasks and stop). The expected counts come
        from ``counter`` (:meth:`_counter`, one pass over the answers). Returns (log_conf, prior)."""
        b = _SHRINK
        T, K = post.shape[1], post.shape[2]
        c = counter(post)  # c[t, w, k, l]
        total = c.sum(-1)  # (T, W, K): expected answers of w on (type t, class k) tasks
        idx = np.arange(K)
        right = c[:, :, idx, idx]
        s_all = (right.sum(0) + 1.0) / (total.sum(0) + 2.0)  # (W, K)
        skill = (right + b * s_all[None]) / (total + b)
        skill = np.clip(skill, 1e-6, 1 - 1e-6)
        log_conf = np.empty((T, r.n_workers, K, K))
        log_conf[...] = np.log((1.0 - skill) / max(K - 1, 1))[..., None]
        log_conf[:, :, idx, idx] = np.log(skill)
        prior = post.sum(0)
        prior = prior / prior.sum()
        prior = (prior + self.smoothing) / (prior + self.smoothing).sum()
        return log_conf, prior

    def _cem(
        self, r: Responses, types: np.ndarray, label_post: np.ndarray, counter: Any, be: str, nt: int
    ) -> tuple[Any, ...]:
        """Classification EM of the k-type one-coin model from hard types: re-fit labels and
        (shrunk) skills per type with the types held, then move each task to its most likely type."""
        k = self.n_types
        types = types.copy()
        idx = np.arange(r.n_tasks)
        post = np.zeros((r.n_tasks, k, r.n_classes))
        post[idx, types] = label_post
        refits = 0
        for _ in range(min(self.n_iter, 30)):
            for _inner in range(3):  # per-type re-fit (labels and skills), types held
                refits += 1
                log_conf, prior = self._shrunk_skills(r, post, counter)
                # equal type priors in the reassignment: with a weak signal, log pi_t would make the
                # larger type grow every round until it holds every task
                log_prior = _em.log_clip(prior) - _em.log_clip(prior.sum(1, keepdims=True)) - np.log(k)
                full, ll = _em.e_step_unchecked(r, log_conf, log_prior, be, nt)
                lp = full[idx, types]
                post = np.zeros_like(full)
                post[idx, types] = lp / np.clip(lp.sum(1, keepdims=True), 1e-300, None)
            tp = full.sum(2)
            new = tp.argmax(1)
            for t in range(k):  # a type may not vanish: keep its most likely task
                if not (new == t).any():
                    new[np.argmax(tp[:, t])] = t
            changed = int((new != types).sum())
            types = new
            lp = full[idx, types]
            post = np.zeros_like(full)
            post[idx, types] = lp / np.clip(lp.sum(1, keepdims=True), 1e-300, None)
            if changed <= r.n_tasks // 1000:
                break
        return types, tp, full, ll, log_conf, log_prior, refits

    def _polish(
        self, r: Responses, full: np.ndarray, counter: Any, be: str, nt: int
    ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, int]:
        """Soft EM of the k-type class-conditional-skill mixture (skills from every task) from ``full``,
        until the relative log-likelihood change is <= tol or max(n_iter, 100) rounds.
        Returns (ll, full, log_conf, log_prior, rounds).

        Every start is polished to the end: the shrunk skills make this no exact EM, its gains can
        grow again after a slow stretch, and a start stopped early by a bound on its remaining gain
        (tried) was, on real data (dog), the start that would have won."""
        n_max = max(self.n_iter, 100)
        ll_old = -np.inf
        ll = -np.inf
        log_conf = log_prior = np.empty(0)
        for m in range(n_max):
            log_conf, prior = self._shrunk_skills(r, full, counter)
            log_prior = _em.log_clip(prior)
            full, ll = _em.e_step_unchecked(r, log_conf, log_prior, be, nt)
            if abs(ll - ll_old) <= self.tol * max(1.0, abs(ll)):
                return ll, full, log_conf, log_prior, m + 1
            ll_old = ll
        return ll, full, log_conf, log_prior, n_max

    def _cem_compiled(self, r: Responses, types: np.ndarray, label_post: np.ndarray, nt: int) -> np.ndarray:
        """:meth:`_cem` in the compiled core (kdcore/crowd.hpp skill_em_cem): the posterior ``full``."""
        out = _core.skill_em_cem(
            r.worker_indptr,
            r.worker_task,
            r.worker_label,
            r.task_indptr,
            r.task_worker,
            r.task_label,
            r.n_tasks,
            r.n_workers,
            np.ascontiguousarray(types, dtype=np.int64),
            np.ascontiguousarray(label_post, dtype=np.float64),
            self.n_types,
            _SHRINK,
            float(self.smoothing),
            min(int(self.n_iter), 30),
            nt,
        )
        return out[1]

    def _polish_compiled(
        self, r: Responses, full: np.ndarray, nt: int
    ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, int]:
        """:meth:`_polish` in the compiled core (kdcore/crowd.hpp skill_em_polish)."""
        post, log_conf, log_prior, ll, rounds = _core.skill_em_polish(
            r.worker_indptr,
            r.worker_task,
            r.worker_label,
            r.task_indptr,
            r.task_worker,
            r.task_label,
            r.n_tasks,
            r.n_workers,
            np.ascontiguousarray(full, dtype=np.float64),
            _SHRINK,
            float(self.smoothing),
            float(self.tol),
            max(int(self.n_iter), 100),
            nt,
        )
        return float(ll), post, log_conf, log_prior, int(rounds)

    def _starts_compiled(
        self, r: Responses, inits: list[np.ndarray], label_post: np.ndarray, nt: int
    ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, list[int]]:
        """:meth:`_cem_compiled` then :meth:`_polish_compiled` from every start, in one compiled call
        (kdcore/crowd.hpp skill_em_starts: the starts run side by side, one thread each; the highest
        final log-likelihood wins, the earlier start on a tie). Returns (ll, full, log_conf, log_prior,
        soft EM rounds per start); ``n_cem_rounds_`` keeps the classification EM's re-fits per start."""
        full, log_conf, log_prior, best, ll, cem_rounds, polish_rounds = _core.skill_em_starts(
            r.worker_indptr,
            r.worker_task,
            r.worker_label,
            r.task_indptr,
            r.task_worker,
            r.task_label,
            r.n_tasks,
            r.n_workers,
            np.ascontiguousarray(np.stack(inits), dtype=np.int64),
            np.ascontiguousarray(label_post, dtype=np.float64),
            self.n_types,
            _SHRINK,
            float(self.smoothing),
            min(int(self.n_iter), 30),
            float(self.tol),
            max(int(self.n_iter), 100),
            nt,
        )
        self.n_cem_rounds_ = cem_rounds.tolist()
        return float(ll[best]), full, log_conf, log_prior, polish_rounds.tolist()

    def _correctness_split(
        self, r: Responses, label_post: np.ndarray, rng: np.random.Generator, be: str = "auto", nt: int = 1
    ) -> np.ndarray:
        """k-means on the task rows of the correctness matrix's top singular subspace."""
        from scipy.sparse import csr_matrix
        from scipy.sparse.linalg import ArpackError, svds

        k = self.n_types
        Z = simplex_codes(r.n_classes)
        ez = label_post @ Z  # E[z_j]
        # estimated correctness z_l . E[z_j] of each answer, gathered from the (K, n_tasks) table in the
        # worker-major order of the Responses' own CSR view (no coordinate-format copy of the answers)
        c = (Z @ ez.T)[r.worker_label, r.worker_task]
        C = csr_matrix((c, r.worker_task, r.worker_indptr), shape=(r.n_workers, r.n_tasks))
        kk = min(k, min(C.shape) - 1)
        if kk < 1:
            return np.zeros(r.n_tasks, dtype=np.int64)
        try:
            U, s, Vt = svds(C, k=kk, v0=rng.uniform(-1, 1, min(C.shape)))
        except ArpackError:  # e.g. an all-zero correctness matrix on tiny inputs: dense SVD
            U = np.linalg.svd(C.toarray(), full_matrices=False)[0][:, :kk]
        cnt = np.maximum(np.diff(r.task_indptr), 1)
        emb = (C.T @ U) / cnt[:, None]  # per-task mean correctness in the worker factors
        emb = (emb - emb.mean(0)) / np.maximum(emb.std(0), 1e-12)
        return kmeans(emb, k, rng, backend=be, n_threads=nt)[0]

    def fit(self, data: Responses | pd.DataFrame) -> TaskTypeClustering:
        r = self._validate(data)
        be = self._backend()
        # small problems run single-threaded: an OpenMP region costs more than the work on a busy machine
        nt = self._threads() or (0 if r.n_responses >= _SMALL else 1)
        rng = np.random.default_rng(self.random_state)
        k = self.n_types
        labels, proba = self._spectral(r, rng, be, nt)
        self.label_proba_ = None
        self.loss_history_ = []
        if self.method in ("refined", "mixture") and k > 1:
            label_post = self._plain_ds(r, be, nt)
            inits = [labels, self._correctness_split(r, label_post, rng, be, nt)]
            # random restarts: the likelihood has local optima (on planted real data the planted
            # split scores higher than what the two structured starts reach)
            inits += [rng.integers(0, k, r.n_tasks) for _ in range(int(self.n_init))]
            if be == "cpp":  # every start's two loops compiled, the starts side by side (one thread each)
                ll, full, log_conf, log_prior, rounds = self._starts_compiled(r, inits, label_post, nt)
            else:
                counter = self._counter(r, be, nt)
                best: tuple[Any, ...] | None = None
                rounds = []
                self.n_cem_rounds_ = []
                for init in inits:
                    cem = self._cem(r, init, label_post, counter, be, nt)
                    full = cem[2]
                    self.n_cem_rounds_.append(cem[-1])
                    ll, full, log_conf, log_prior, m = self._polish(r, full, counter, be, nt)
                    rounds.append(m)
                    if best is None or ll > best[0]:  # the first start wins a tie
                        best = (ll, full, log_conf, log_prior)
                assert best is not None  # at least the spectral and the correctness starts ran
                ll, full, log_conf, log_prior = best
            self.n_polish_rounds_ = rounds
            full, log_conf, log_prior = align_types(r, full, log_conf, log_prior)
            tp = full.sum(2)
            types = tp.argmax(1)
            labels = types
            proba = tp
            self.label_proba_ = full.sum(1)
            self.log_conf_, self.log_prior_ = log_conf, log_prior
            if self.method == "mixture":
                post = full.copy()
                post, log_conf, log_prior, hist = em_fit(
                    r, post, n_iter=self.n_iter, tol=self.tol, smoothing=self.smoothing, backend=be, n_threads=nt
                )
                self.loss_history_ = hist
                post, log_conf, log_prior = align_types(r, post, log_conf, log_prior)
                proba = post.sum(2)
                labels = proba.argmax(1)
                self.label_proba_ = post.sum(1)
                self.log_conf_, self.log_prior_ = log_conf, log_prior
        index = pd.Index(r.task_ids, name="task")
        self.types_ = pd.Series(np.asarray(labels, dtype=np.int64), index=index, name="type")
        self.type_proba_ = pd.DataFrame(proba, index=index, columns=pd.RangeIndex(proba.shape[1], name="type"))
        self.separation_ = self.spectral_gap_ if self.method == "spectral" else separation(np.asarray(proba))
        if k < 2 or len(np.unique(labels)) < 2:  # no split: nothing is separated
            self.separation_ = 0.0
        self.n_tasks_, self.n_workers_ = r.n_tasks, r.n_workers
        return self

    def fit_predict(self, data: Responses | pd.DataFrame) -> pd.Series:
        """Fit and return ``types_``."""
        return self.fit(data).types_
