"""Hidden task types from crowd answers (PAPERS.md B.1-B.3, Kong et al. 2023).

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

import numbers
import warnings

import numpy as np
import pandas as pd

from .._limits import check_memory
from ..backends import _core, check_n_threads, resolve_backend
from . import _em
from . import _reference_types as ref
from ._responses import Responses

__all__ = ["TaskTypeClustering", "answer_values", "spectral_embedding", "kmeans"]

_METHODS = ("spectral", "refined", "mixture")
_READOUTS = ("kmeans", "magnitude", "sign")
_CENTRINGS = ("worker", "class", "none")
_SMALL = 200_000  # answers below which the EM steps and the operator run on one thread


# ---------------------------------------------------------------------------- small numerics
def simplex_codes(n_classes: int) -> np.ndarray:
    """(K, K-1) vertices of a regular simplex with z_c . z_c = 1 and z_c . z_c' = -1/(K-1).
    For K = 2: [[-1], [+1]] (class code 0 -> -1, class code 1 -> +1)."""
    K = int(n_classes)
    if K == 2:
        return np.array([[-1.0], [1.0]])
    E = np.eye(K) - 1.0 / K
    # orthonormal basis of the sum-zero subspace, signs fixed for reproducibility
    q, _ = np.linalg.qr(E[:, : K - 1])
    Z = E @ q * np.sqrt(K / (K - 1))
    return Z


def kmeans(
    X: np.ndarray, k: int, rng: np.random.Generator, n_init: int = 10, n_iter: int = 100
) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd's k-means with k-means++ seeding, best of ``n_init``: (labels, centres, inertia)."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    best = (None, None, np.inf)
    for init in range(n_init):
        c = [X[rng.integers(n)]]
        for _ in range(1, k):
            d2 = np.min(((X[:, None, :] - np.array(c)[None]) ** 2).sum(-1), axis=1)
            tot = d2.sum()
            c.append(X[rng.choice(n, p=d2 / tot)] if tot > 0 else X[rng.integers(n)])
        C = np.array(c)
        lab = np.zeros(n, dtype=np.int64)
        sq = (X * X).sum(1)
        for it in range(n_iter):
            d2 = sq[:, None] - 2.0 * X @ C.T + (C * C).sum(1)[None]
            new = d2.argmin(1)
            if it > 0 and np.array_equal(new, lab):
                break
            lab = new
            for t in range(k):
                if (lab == t).any():
                    C[t] = X[lab == t].mean(0)
        inertia = float(((X - C[lab]) ** 2).sum())
        if n > 50_000 and init >= 2:  # large inputs: three seedings are plenty
            if inertia < best[2]:
                best = (lab.copy(), C.copy(), inertia)
            break
        if inertia < best[2]:
            best = (lab.copy(), C.copy(), inertia)
    return best


def _gmm_proba(X: np.ndarray, labels: np.ndarray, k: int, n_iter: int = 30, tol: float = 1e-6) -> np.ndarray:
    """Soft assignment of a spherical Gaussian mixture (one variance per component) started from ``labels``."""
    n, p = X.shape
    R = np.eye(k)[labels]
    floor = 1e-12 * max(float(X.var()), 1e-300)
    sq = (X * X).sum(1)
    prev = None
    for _ in range(n_iter):
        nk = R.sum(0) + 1e-12
        mu = (R.T @ X) / nk[:, None]
        d2 = np.maximum(sq[:, None] - 2.0 * X @ mu.T + (mu * mu).sum(1)[None], 0.0)
        var = np.maximum((R * d2).sum(0) / (nk * p), floor)
        logp = np.log(nk / n) - 0.5 * p * np.log(var) - 0.5 * d2 / var
        logp -= logp.max(1, keepdims=True)
        R = np.exp(logp)
        R /= R.sum(1, keepdims=True)
        if prev is not None and np.abs(R - prev).max() < tol:
            break
        prev = R
    return R


def _separation(proba: np.ndarray) -> float:
    k = proba.shape[1]
    if k < 2:
        return 0.0
    p = np.clip(proba, 1e-300, 1.0)
    ent = -(p * np.log(p)).sum(1) / np.log(k)
    return float(np.clip(1.0 - ent.mean(), 0.0, 1.0))


# ---------------------------------------------------------------------------- EM helpers on the typed core
def _vote_post(r: Responses) -> np.ndarray:
    counts = np.zeros((r.n_tasks, r.n_classes))
    np.add.at(counts, (r.task, r.label), 1.0)
    counts += 1e-3
    return counts / counts.sum(1, keepdims=True)


def _em_fit(
    r: Responses,
    post: np.ndarray,
    *,
    n_iter: int,
    tol: float,
    smoothing: float,
    backend: str,
    n_threads: int,
    onecoin: bool = False,
    fixed_types: np.ndarray | None = None,
):
    """EM of the typed Dawid-Skene model from an initial post (n_tasks, T, K).

    With ``fixed_types`` the type of each task is held (post masked to it): that is
    one independent Dawid-Skene per type. Returns (post, log_conf, log_prior, history)
    where history holds the penalised log-likelihood (loglik + smoothing * sum of log
    parameters, the MAP objective that EM never decreases)."""
    T, K = post.shape[1], post.shape[2]
    if backend == "cpp" and not onecoin and fixed_types is None:  # the same loop, compiled (_core.em_run)
        post, conf, prior, history, _, _ = _em._run(r, post, smoothing, n_iter, tol, None, n_threads, penalised=True)
        return post, _em.log_clip(conf), _em.log_clip(prior), history
    mask = None
    if fixed_types is not None:
        mask = np.zeros((r.n_tasks, T, 1))
        mask[np.arange(r.n_tasks), fixed_types] = 1.0
    history = []
    log_conf = log_prior = None
    for _ in range(n_iter):
        if onecoin:
            skill, prior = _em.onecoin_m_step(r, post, smoothing=smoothing, backend=backend, n_threads=n_threads)
            log_conf = _em.onecoin_log_conf(skill, K)
            penalty = smoothing * (
                np.log(np.clip(skill, 1e-300, 1)).sum() + np.log(np.clip(1 - skill, 1e-300, 1)).sum()
            )
        else:
            conf, prior = _em.m_step(r, post, smoothing=smoothing, backend=backend, n_threads=n_threads)
            log_conf = _em.log_clip(conf)
            penalty = smoothing * log_conf.sum()
        log_prior = _em.log_clip(prior)
        if mask is not None:
            # per-type DS: the type of each task is known, so only its own prior row counts
            log_prior_t = log_prior - np.log(np.clip(prior.sum(1, keepdims=True), 1e-300, None))
            post, ll = _em.e_step(r, log_conf, log_prior_t, backend=backend, n_threads=n_threads)
            post = post * mask
            post /= np.clip(post.sum((1, 2), keepdims=True), 1e-300, None)
        else:
            post, ll = _em.e_step(r, log_conf, log_prior, backend=backend, n_threads=n_threads)
        history.append(ll + penalty + smoothing * log_prior.sum())
        if len(history) > 1 and abs(history[-1] - history[-2]) <= tol * max(1.0, abs(history[-1])):
            break
    return post, log_conf, log_prior, history


def answer_values(r: Responses, centring: str = "worker", label_post: np.ndarray | None = None) -> np.ndarray:
    """The value vector z_e (nnz x p) of each answer, centred as documented in the module."""
    Z = simplex_codes(r.n_classes)
    if centring == "worker":
        # z_e - mean_w(z) takes one of W K values: build that (W, K, p) table from the answer
        # counts n[w, l] and gather it once (no answer-length temporaries but the index)
        K = r.n_classes
        code = r.worker.astype(np.int64) * K + r.label
        n_wl = np.bincount(code, minlength=r.n_workers * K).reshape(r.n_workers, K).astype(np.float64)
        mean = (n_wl @ Z) / np.maximum(n_wl.sum(1), 1)[:, None]  # (W, p)
        table = (Z[None, :, :] - mean[:, None, :]).reshape(r.n_workers * K, -1)  # (W K, p)
        return np.ascontiguousarray(table[code])
    z = Z[r.label]
    if centring == "none":
        return np.ascontiguousarray(z)
    if centring == "class":
        if label_post is None:
            raise ValueError("centring='class' needs label posteriors")
        wpost = label_post[r.task]  # (N, K)
        K, p = r.n_classes, z.shape[1]
        num = np.zeros((r.n_workers, K, p))
        den = np.zeros((r.n_workers, K))
        for k in range(K):
            for c in range(p):
                num[:, k, c] = np.bincount(r.worker, weights=wpost[:, k] * z[:, c], minlength=r.n_workers)
            den[:, k] = np.bincount(r.worker, weights=wpost[:, k], minlength=r.n_workers)
        mu = num / np.maximum(den, 1e-12)[:, :, None]  # (W, K, p)
        expected = np.einsum("nk,nkp->np", wpost, mu[r.worker])
        return np.ascontiguousarray(z - expected)
    raise ValueError(f"centring must be one of {list(_CENTRINGS)}, got {centring!r}")


def spectral_embedding(
    r: Responses,
    values: np.ndarray,
    k: int,
    *,
    backend: str = "cpp",
    operator: str = "auto",
    tol: float = 1e-6,
    ncv: int = 80,
    seed: int = 0,
    n_threads: int = 0,
):
    """Top-k eigenpairs of the hollow task-task matrix G of ``values``.

    ``backend="cpp"``: compiled implicit operator + Lanczos; ``"numpy"``: scipy ``eigsh``
    on a ``LinearOperator`` (the reference route). ``operator``: "dense" (O(n^2 d),
    binary answers only), "sparse" (O(sum_j c_j^2) = O(n nnz)) or "auto".
    Returns (eigenvalues (k,), eigenvectors (d, k), info dict)."""
    task = np.ascontiguousarray(r.task, dtype=np.int32)
    worker = np.ascontiguousarray(r.worker, dtype=np.int32)
    d, n = r.n_tasks, r.n_workers
    if backend == "numpy":
        vals, vecs, nm = ref.spectral_eigs_scipy(task, worker, values, d, n, k, tol=tol, seed=seed)
        return vals, vecs, {"n_matvec": nm, "converged": True, "operator": "numpy", "residual": float("nan")}
    cnt = np.diff(r.task_indptr).astype(np.float64)
    if operator == "auto":
        dense = values.shape[1] == 1 and 8.0 * float((cnt**2).sum()) > float(n) ** 2 * d and n * d <= 5e7
    elif operator in ("dense", "sparse"):
        dense = operator == "dense"
        if dense and values.shape[1] != 1:
            raise ValueError("operator='dense' needs binary answers (one value per answer)")
    else:
        raise ValueError(f"operator must be 'auto', 'dense' or 'sparse', got {operator!r}")
    # dense intermediates of the compiled operator: worker x worker M (per thread, plus the
    # transposed copy) and, on the dense path, the padded worker x task answer matrix
    nt = check_n_threads(n_threads)
    need = 8.0 * float(n) ** 2 * ((nt + 2) if dense else 2) + (8.0 * n * d if dense else 0.0)
    check_memory(
        need,
        f"the {'dense' if dense else 'sparse'} task-task operator for {n} workers x {d} tasks",
        "use operator='sparse' (when dense) or backend='numpy' (scipy, sparse matrices)",
    )
    vals, vecs, nm, conv, res = _core.spectral_eigs(
        task, worker, values, d, n, int(k), bool(dense), int(ncv), float(tol), int(seed), int(n_threads)
    )
    if not conv:
        warnings.warn(
            f"Lanczos did not reach tol={tol} in {ncv} vectors (residual {res:.3g}); using the best Ritz pairs",
            RuntimeWarning,
            stacklevel=3,
        )
    return (
        vals,
        vecs,
        {
            "n_matvec": int(nm),
            "converged": bool(conv),
            "operator": "dense" if dense else "sparse",
            "residual": float(res),
        },
    )


def _align_types(r: Responses, full: np.ndarray, log_conf: np.ndarray, log_prior: np.ndarray):
    """Pair the types across classes.

    With a skill (or confusion row) per (type, worker, class), the likelihood does not
    change when the type labels are permuted *within one class*: (type 0, class +1) and
    (type 1, class +1) can swap while class -1 stays. EM from a random start can land on
    such a crossed labelling, where "type 0" means different worker profiles for the two
    classes. Fix it: for each class c > 0, permute its types so that the worker skill
    profiles s[t, :, c] = C[t, w, c, c] are closest (answer-count weighted squared
    distance) to those of class 0. Likelihood unchanged."""
    from itertools import permutations

    T, K = full.shape[1], full.shape[2]
    if T < 2:
        return full, log_conf, log_prior
    skill = np.exp(np.einsum("twkk->twk", log_conf))
    wts = np.bincount(r.worker, minlength=r.n_workers).astype(np.float64)
    perms = list(permutations(range(T))) if T <= 6 else [tuple(range(T))]
    full, log_conf, log_prior = full.copy(), log_conf.copy(), log_prior.copy()
    for c in range(1, K):
        cost = [
            sum(float((wts * (skill[t, :, 0] - skill[pt, :, c]) ** 2).sum()) for t, pt in enumerate(P)) for P in perms
        ]
        P = np.asarray(perms[int(np.argmin(cost))])
        full[:, :, c] = full[:, P, c]
        log_conf[:, :, c, :] = log_conf[P, :, c, :]
        log_prior[:, c] = log_prior[P, c]
    return full, log_conf, log_prior


# ---------------------------------------------------------------------------- the estimator
class TaskTypeClustering:
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

    def get_params(self, deep: bool = True) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "n_types",
                "method",
                "readout",
                "centring",
                "n_iter",
                "tol",
                "smoothing",
                "n_init",
                "random_state",
                "backend",
                "n_threads",
            )
        }

    def set_params(self, **params):
        for k, v in params.items():
            if k not in self.get_params():
                raise ValueError(f"invalid parameter {k!r} for TaskTypeClustering")
            setattr(self, k, v)
        return self

    def clone(self) -> TaskTypeClustering:
        return TaskTypeClustering(**self.get_params())

    def __repr__(self) -> str:
        return "TaskTypeClustering(" + ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()) + ")"

    # ------------------------------------------------------------------ validation
    def _validate(self, data) -> Responses:
        r = Responses.coerce(data)
        k = self.n_types
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"n_types must be an int, got {type(k).__name__}")
        if k < 1:
            raise ValueError(f"n_types must be >= 1, got {k}")
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
        if self.centring not in _CENTRINGS:
            raise ValueError(f"centring must be one of {list(_CENTRINGS)}, got {self.centring!r}")
        if isinstance(self.n_iter, bool) or not isinstance(self.n_iter, numbers.Integral) or self.n_iter < 1:
            raise ValueError(f"n_iter must be a positive int, got {self.n_iter!r}")
        if isinstance(self.n_init, bool) or not isinstance(self.n_init, numbers.Integral) or self.n_init < 0:
            raise ValueError(f"n_init must be an int >= 0, got {self.n_init!r}")
        if not np.isfinite(self.smoothing) or self.smoothing < 0:
            raise ValueError(f"smoothing must be finite and >= 0, got {self.smoothing!r}")
        return r

    # ------------------------------------------------------------------ the three methods
    def _spectral(self, r: Responses, rng, be: str):
        k = self.n_types
        label_post = None
        if self.centring == "class":
            label_post = self._plain_ds(r, be)
        values = answer_values(r, self.centring, label_post)
        ke = min(k + 1, r.n_tasks)
        seed = int(rng.integers(2**31))
        vals, vecs, info = spectral_embedding(r, values, ke, backend=be, seed=seed, n_threads=self._nt)
        # scale by the top eigenvalue; when the operator is numerically zero (no two answers
        # of a task carry signal) dividing by it blew round-off up to 1e284 and k-means then
        # produced NaN: no signal gives an all-zero embedding (found by test_properties)
        top = max(abs(vals[0]), float(np.abs(vals).max(initial=0.0)))
        signal = top > 1e-10 * max(1.0, float((values * values).sum()))
        emb = vecs * vals[None, :] / top * np.sqrt(r.n_tasks) if signal else np.zeros_like(vecs)
        # fix signs: the largest-|.| entry of each eigenvector positive (reproducible output)
        for c in range(emb.shape[1]):
            if emb[np.argmax(np.abs(emb[:, c])), c] < 0:
                emb[:, c] *= -1
        if k == 1:
            labels = np.zeros(r.n_tasks, dtype=np.int64)
        elif self.readout == "kmeans":
            labels = kmeans(emb[:, :k], k, rng)[0]
        elif self.readout == "magnitude":
            labels = kmeans(np.abs(emb[:, :1]), k, rng)[0]
        else:  # sign of u_2
            labels = (emb[:, 1] > 0).astype(np.int64)
        feat = (
            emb[:, :k]
            if self.readout == "kmeans"
            else (np.abs(emb[:, :1]) if self.readout == "magnitude" else emb[:, 1:2])
        )
        proba = _gmm_proba(feat, labels, k) if k > 1 else np.ones((r.n_tasks, 1))
        self.eigenvalues_ = vals[:k] if k > 1 else vals[:1]
        self.embedding_ = emb[:, :k] if k > 1 else emb[:, :1]
        self.spectral_info_ = info
        # relative eigengap between the last signal eigenvalue and the first bulk one
        lam = np.asarray(vals)
        self.spectral_gap_ = (
            float(np.clip(1.0 - lam[k] / lam[k - 1], 0.0, 1.0)) if (len(lam) > k and lam[k - 1] > 0) else 0.0
        )
        return labels, proba

    def _plain_ds(self, r: Responses, be: str) -> np.ndarray:
        post, *_ = _em_fit(
            r,
            _vote_post(r)[:, None, :],
            n_iter=self.n_iter,
            tol=self.tol,
            smoothing=self.smoothing,
            backend=be,
            n_threads=self._nt,
        )
        return post[:, 0, :]

    def _shrunk_skills(self, r: Responses, post: np.ndarray, be: str):
        """Class-conditional skills per (type, worker, class) s[t, w, k] = P(right | type t, class k)
        (wrong answers spread evenly over the other classes), shrunk toward the worker's
        per-class skill over all tasks by 4 pseudo-answers. Class-conditional, so that workers
        whose accuracy depends on the class do not make the types follow the class; shrunk, so
        that a type fitted on a handful of tasks cannot take extreme skills (classification EM
        would otherwise let one type swallow a few tasks and stop). Returns (log_conf, prior)."""
        b = 4.0
        T, K = post.shape[1], post.shape[2]
        conf, prior = _em.m_step(r, post, smoothing=0.0, backend=be, n_threads=self._nt)
        diag = np.einsum("twkk->twk", conf)  # (T, W, K)
        pa = post[r.task]  # (N, T, K)
        total = np.zeros((T, r.n_workers, K))
        for t in range(T):
            for k in range(K):
                total[t, :, k] = np.bincount(r.worker, weights=pa[:, t, k], minlength=r.n_workers)
        right = diag * total
        s_all = (right.sum(0) + 1.0) / (total.sum(0) + 2.0)  # (W, K)
        skill = (right + b * s_all[None]) / (total + b)
        skill = np.clip(skill, 1e-6, 1 - 1e-6)
        log_conf = np.empty((T, r.n_workers, K, K))
        log_conf[...] = np.log((1.0 - skill) / max(K - 1, 1))[..., None]
        idx = np.arange(K)
        log_conf[:, :, idx, idx] = np.log(skill)
        prior = (prior + self.smoothing) / (prior + self.smoothing).sum()
        return log_conf, prior

    def _cem(self, r: Responses, types: np.ndarray, label_post: np.ndarray, be: str):
        """Classification EM of the k-type one-coin model from hard types: re-fit labels and
        (shrunk) skills per type with the types held, then move each task to its most likely type."""
        k = self.n_types
        types = types.copy()
        idx = np.arange(r.n_tasks)
        post = np.zeros((r.n_tasks, k, r.n_classes))
        post[idx, types] = label_post
        for _ in range(min(self.n_iter, 30)):
            for _inner in range(3):  # per-type re-fit (labels and skills), types held
                log_conf, prior = self._shrunk_skills(r, post, be)
                # equal type priors in the reassignment: with a weak signal, log pi_t would make the
                # larger type grow every round until it holds every task
                log_prior = _em.log_clip(prior) - _em.log_clip(prior.sum(1, keepdims=True)) - np.log(k)
                full, ll = _em.e_step(r, log_conf, log_prior, backend=be, n_threads=self._nt)
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
        return types, tp, full, ll, log_conf, log_prior

    def _correctness_split(self, r: Responses, label_post: np.ndarray, rng) -> np.ndarray:
        """k-means on the task rows of the correctness matrix's top singular subspace."""
        from scipy.sparse import csr_matrix
        from scipy.sparse.linalg import ArpackError, svds

        k = self.n_types
        Z = simplex_codes(r.n_classes)
        ez = label_post @ Z  # E[z_j]
        c = (Z[r.label] * ez[r.task]).sum(1)  # estimated correctness of each answer
        C = csr_matrix((c, (r.worker, r.task)), shape=(r.n_workers, r.n_tasks))
        kk = min(k, min(C.shape) - 1)
        if kk < 1:
            return np.zeros(r.n_tasks, dtype=np.int64)
        try:
            U, s, Vt = svds(C, k=kk, v0=rng.uniform(-1, 1, min(C.shape)))
        except ArpackError:  # e.g. an all-zero correctness matrix on tiny inputs: dense SVD (found by fuzzing)
            U = np.linalg.svd(C.toarray(), full_matrices=False)[0][:, :kk]
        cnt = np.maximum(np.diff(r.task_indptr), 1)
        emb = (C.T @ U) / cnt[:, None]  # per-task mean correctness in the worker factors
        emb = (emb - emb.mean(0)) / np.maximum(emb.std(0), 1e-12)
        return kmeans(emb, k, rng)[0]

    def fit(self, data) -> TaskTypeClustering:
        r = self._validate(data)
        be = resolve_backend(self.backend, ("cpp", "numpy"), what="TaskTypeClustering")
        check_n_threads(self.n_threads)
        # small problems run single-threaded: an OpenMP region costs more than the work on a busy machine
        self._nt = self.n_threads if self.n_threads or r.n_responses >= _SMALL else 1
        rng = np.random.default_rng(self.random_state)
        k = self.n_types
        labels, proba = self._spectral(r, rng, be)
        self.label_proba_ = None
        self.loss_history_ = []
        if self.method in ("refined", "mixture") and k > 1:
            label_post = self._plain_ds(r, be)
            best = None
            inits = [labels, self._correctness_split(r, label_post, rng)]
            # random restarts: the likelihood has local optima (on planted real data the planted
            # split scores higher than what the two structured starts reach)
            inits += [rng.integers(0, k, r.n_tasks) for _ in range(int(self.n_init))]
            for init in inits:
                types0, _, full, *_ = self._cem(r, init, label_post, be)
                # polish: soft EM of the same k-type class-conditional-skill mixture (skills from every task)
                ll_old = -np.inf
                for _ in range(max(self.n_iter, 100)):
                    log_conf, prior = self._shrunk_skills(r, full, be)
                    log_prior = _em.log_clip(prior)
                    full, ll = _em.e_step(r, log_conf, log_prior, backend=be, n_threads=self._nt)
                    if abs(ll - ll_old) <= self.tol * max(1.0, abs(ll)):
                        break
                    ll_old = ll
                if best is None or ll > best[3]:
                    best = (None, full.sum(2), full, ll, log_conf, log_prior)
            _, tp, full, ll, log_conf, log_prior = best
            full, log_conf, log_prior = _align_types(r, full, log_conf, log_prior)
            tp = full.sum(2)
            types = tp.argmax(1)
            labels = types
            proba = tp
            self.label_proba_ = full.sum(1)
            self.log_conf_, self.log_prior_ = log_conf, log_prior
            if self.method == "mixture":
                post = full.copy()
                post, log_conf, log_prior, hist = _em_fit(
                    r, post, n_iter=self.n_iter, tol=self.tol, smoothing=self.smoothing, backend=be, n_threads=self._nt
                )
                self.loss_history_ = hist
                post, log_conf, log_prior = _align_types(r, post, log_conf, log_prior)
                proba = post.sum(2)
                labels = proba.argmax(1)
                self.label_proba_ = post.sum(1)
                self.log_conf_, self.log_prior_ = log_conf, log_prior
        index = pd.Index(r.task_ids, name="task")
        self.types_ = pd.Series(np.asarray(labels, dtype=np.int64), index=index, name="type")
        self.type_proba_ = pd.DataFrame(proba, index=index, columns=pd.RangeIndex(proba.shape[1], name="type"))
        self.separation_ = self.spectral_gap_ if self.method == "spectral" else _separation(np.asarray(proba))
        if k < 2 or len(np.unique(labels)) < 2:  # no split: nothing is separated
            self.separation_ = 0.0
        self.n_tasks_, self.n_workers_ = r.n_tasks, r.n_workers
        return self

    def fit_predict(self, data) -> pd.Series:
        """Fit and return ``types_``."""
        return self.fit(data).types_


# ---------------------------------------------------------------------------- the degraded two-type model
def _answer_incidence(r: Responses):
    """Sparse (W K) x n_tasks matrix A with A[w K + l, j] = 1 when worker w answered l on task j."""
    from scipy.sparse import csr_matrix

    K = r.n_classes
    rows = r.worker.astype(np.int64) * K + r.label
    return csr_matrix((np.ones(r.n_responses), (rows, r.task.astype(np.int64))), shape=(r.n_workers * K, r.n_tasks))


def _answer_counts(r: Responses, post: np.ndarray, incidence=None) -> np.ndarray:
    """Expected answer counts c[t, w, k, l] = sum over answers (j, w, l) of post[j, t, k]
    (one sparse product A @ post, A from :func:`_answer_incidence`)."""
    n, T, K = post.shape
    A = _answer_incidence(r) if incidence is None else incidence
    c = np.asarray(A @ post.reshape(n, T * K)).reshape(r.n_workers, K, T, K)  # [w, l, t, k]
    return np.ascontiguousarray(c.transpose(2, 0, 3, 1))  # [t, w, k, l]


def _degraded_em(
    r: Responses,
    conf0: np.ndarray,
    prior0: np.ndarray,
    *,
    one_coin: bool = False,
    smoothing: float = 0.01,
    n_iter: int = 200,
    tol: float = 1e-7,
    backend: str = "cpp",
    n_threads: int = 1,
):
    """EM of the two-type Dawid-Skene mixture whose second type is a *degraded* copy of the first.

    Model: task j has a type t in {0 (easy), 1 (hard)} and a class k, joint prior pi[t, k].
    On easy tasks worker w answers by its confusion C0[w]; on hard tasks it answers by
    C0[w] with probability lambda_w and uniformly at random otherwise:
    C1[w] = lambda_w C0[w] + (1 - lambda_w) / K. (PAPERS.md B.1 with r_{i2} pulled toward
    chance by a worker-specific share: the easy/hard model; it cannot express specialists.)
    One parameter per worker more than Dawid-Skene (the free mixture has W K (K-1) more),
    and the hard type's confusions inherit the easy type's orientation, so no class can swap
    inside one type (the free mixture did exactly that on few answers per task).

    EM with a latent "answered from C0" indicator on hard tasks: its responsibility for an
    answer (w, l) of a task in (hard, k) is rho = lambda_w C0[w, k, l] / C1[w, k, l];
    M-step C0[w, k, :] ∝ c0[w, k, :] + rho c1[w, k, :] + s (one-coin: the skill is the
    share of these counts on the diagonal), lambda_w = (sum rho c1[w] + s) / (sum c1[w] + 2 s),
    pi ∝ sum_j post[j] + s. E-step in the typed compiled core (kdcore.crowd._em.e_step,
    log space with the max shift). The likelihood never decreases (up to the smoothing).

    Starts from a fitted Dawid-Skene (``conf0`` (W, K, K), ``prior0`` (K,)) with lambda = 1/2
    and equal type priors. Returns (post (n_tasks, 2, K), log_conf (2, W, K, K),
    log_prior (2, K), lam (W,), history of the log-likelihood)."""
    K, W = r.n_classes, r.n_workers
    s = float(smoothing)
    C0 = np.clip(np.asarray(conf0, dtype=np.float64), 0.0, None)
    C0 = C0 / np.clip(C0.sum(-1, keepdims=True), 1e-300, None)
    lam = np.full(W, 0.5)
    prior = np.stack([np.asarray(prior0, dtype=np.float64) * 0.5] * 2)
    prior = np.clip(prior, 1e-12, None)
    prior /= prior.sum()
    history: list[float] = []
    post = log_conf = None
    incidence = _answer_incidence(r)
    for _ in range(int(n_iter)):
        C1 = lam[:, None, None] * C0 + (1.0 - lam[:, None, None]) / K
        log_conf = _em.log_clip(np.stack([C0, C1]))
        log_prior = _em.log_clip(prior)
        post, ll = _em.e_step(r, log_conf, log_prior, backend=backend, n_threads=n_threads)
        history.append(ll)
        if len(history) > 1 and abs(history[-1] - history[-2]) <= tol * abs(history[-1]):
            break
        c = _answer_counts(r, post, incidence)
        rho = lam[:, None, None] * C0 / np.clip(C1, 1e-300, None)
        real1 = c[1] * rho
        n0 = c[0] + real1
        if one_coin:
            diag = np.einsum("wkk->w", n0)
            skill = (diag + s) / (n0.sum((1, 2)) + 2.0 * s) if s > 0 else diag / np.clip(n0.sum((1, 2)), 1e-300, None)
            skill = np.where(n0.sum((1, 2)) > 0, skill, 0.5)
            C0 = np.empty((W, K, K))
            C0[...] = ((1.0 - skill) / max(K - 1, 1))[:, None, None]
            C0[:, np.arange(K), np.arange(K)] = skill[:, None]
        else:
            n0 = n0 + s
            tot = n0.sum(-1, keepdims=True)
            C0 = np.where(tot > 0, n0 / np.clip(tot, 1e-300, None), 1.0 / K)
        tot1 = c[1].sum((1, 2))
        lam = np.clip((real1.sum((1, 2)) + s) / np.clip(tot1 + 2.0 * s, 1e-300, None), 0.0, 1.0)
        lam = np.where(tot1 + 2.0 * s > 0, lam, 0.5)
        prior = post.sum(0) + s
        prior /= prior.sum()
    return post, log_conf, _em.log_clip(prior), lam, history


def _mixture_heldout_loglik(post: np.ndarray, log_conf: np.ndarray, task, worker, label) -> float:
    """sum over hidden answers (j, w, l) of log sum_{t,k} post[j, t, k] C[t, w, k, l]."""
    s = log_conf[:, worker, :, label]  # (H, T, K): advanced indices first
    s = (s + np.log(np.clip(post[task], 1e-300, None))).reshape(len(task), -1)
    m = s.max(1, keepdims=True)
    return float((m[:, 0] + np.log(np.exp(s - m).sum(1))).sum())
