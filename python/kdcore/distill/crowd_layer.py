"""CrowdLayer: the two-layer student trained straight from raw crowd answers (torch).

Rodrigues and Pereira, "Deep Learning from Crowds", AAAI 2018: put a per-worker layer on top
of the network's class probabilities and fit everything end to end on the answers, with no
aggregation step. kdcore uses the "MW" connection (a K x K matrix per worker) kept on the
simplex, so it *is* the worker's confusion matrix of the Dawid-Skene model (docs/maths.md B.1):

    sigma(x) = (1 - s(f(x)), s(f(x)))                          student's class probabilities, s = sigmoid
    P(worker r answers l | x) = sum_k sigma_k(x) C_r[k, l],      C_r[k, :] = softmax(V_r[k, :])
    loss = -(1/N) sum over answers (x_j, r, l) of ln P(r answers l | x_j)

The student is the two-layer ReLU network of docs/maths.md A.1 (``TwoLayerReLU``: symmetric
initialisation, output signs a fixed, only W trained) with the engine's full-batch projected
gradient descent on W (step ``lr``, optional radius B), so it is the same student as the
label-source arms of the experiment; the confusion logits V (initialised at ``init_skill``
on the diagonal) are fitted by Adam (step ``lr_confusion``): their gradient is a mean over
all answers of which a worker holds a small share, and plain steps would barely move them.
The student's output ``f`` is then used alone (the crowd layer is dropped) to predict.

torch is imported when :meth:`CrowdLayer.fit` runs.

Example
-------
>>> from kdcore.crowd import simulate
>>> from kdcore.distill import make_margin_data
>>> from kdcore.distill.crowd_layer import CrowdLayer
>>> X, y, _ = make_margin_data(400, 5, gamma=0.1, random_state=0)
>>> r, truth = simulate.dawid_skene(400, 20, 2, answers_per_task=3, random_state=0)  # doctest: +SKIP
>>> cl = CrowdLayer(m=8, n_steps=50, random_state=0).fit(X, r)  # doctest: +SKIP
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .._check import check_float, check_int
from ._validation import check_radius, check_X, from_torch
from .model import TwoLayerReLU
from .targets import task_index

__all__ = ["CrowdLayer"]


class CrowdLayer:
    """The two-layer student with a per-worker confusion layer, fitted on raw answers.

    Parameters
    ----------
    m : int, width of the student (even, symmetric initialisation)
    n_steps : int, full-batch steps
    lr : float, step of the projected gradient descent on W (the engine's scale)
    radius : float or None, projection radius B of ||W_j - W_j(0)|| <= B / sqrt(m)
    lr_confusion : float, Adam step of the confusion logits
    init_skill : float in (1/2, 1), diagonal of every worker's initial confusion matrix
    random_state : int or None, seed of the student's initialisation
    device : "cpu" or "cuda"
    n_threads : int, torch CPU threads (0 = torch's default)

    Attributes
    ----------
    model_ : TwoLayerReLU, the trained student
    confusions_ : ndarray (n_workers, 2, 2), C_r[k, l] = P(answer l | true class k)
    workers_ : Index of worker ids (rows of ``confusions_``)
    classes_ : ndarray of the two classes (the second is the student's +1)
    loss_history_ : ndarray (n_steps,), the answers' negative log-likelihood before each step
    """

    def __init__(
        self,
        m: int = 8,
        *,
        n_steps: int = 500,
        lr: float = 4.0,
        radius: float | None = None,
        lr_confusion: float = 0.05,
        init_skill: float = 0.8,
        random_state=None,
        device: str = "cpu",
        n_threads: int = 0,
    ):
        self.m = m
        self.n_steps = n_steps
        self.lr = lr
        self.radius = radius
        self.lr_confusion = lr_confusion
        self.init_skill = init_skill
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads

    def _answers(self, X, responses, task_ids):
        from ..crowd import Responses

        X = from_torch(X)
        if isinstance(X, pd.DataFrame):
            if task_ids is not None:
                raise ValueError("X is a DataFrame indexed by task id; do not also pass task_ids")
            index = task_index(X.index, name="X.index")
            X = X.to_numpy()
        elif task_ids is not None:
            index = task_index(task_ids, np.shape(X)[0])
        else:
            index = pd.RangeIndex(np.shape(X)[0])
        X = check_X(X)  # float32 stays float32 (and trains in float32), anything else float64
        r = Responses.coerce(responses)
        if r.n_classes != 2:
            raise ValueError(
                f"CrowdLayer with the two-layer student needs binary answers, got classes {list(r.classes_)}"
            )
        df = r.to_dataframe()
        rows = index.get_indexer(pd.Index(df["task"]))
        if (rows < 0).any():
            bad = pd.unique(df["task"][rows < 0])
            raise ValueError(
                f"{bad.size} answered task(s) have no row in X (e.g. {list(bad[:5])}); give X their features"
            )
        workers, worker_ids = pd.factorize(df["worker"], sort=True)
        label = pd.Index(np.asarray(r.classes_)).get_indexer(pd.Index(df["label"]))
        return X, np.asarray(r.classes_), rows, workers.astype(np.int64), pd.Index(worker_ids), label.astype(np.int64)

    def fit(self, X, responses, *, task_ids=None) -> CrowdLayer:
        """Fit on features X (rows matched to the answered tasks by task id) and the raw answers.

        X: array (task ids 0..n-1 = rows unless ``task_ids`` is given), torch tensor, or a
        DataFrame indexed by task id; responses: a :class:`kdcore.crowd.Responses` or a
        (task, worker, label) DataFrame. Every answered task needs a row of X.
        """
        import torch

        m = check_int(self.m, "m", minimum=1)
        n_steps = check_int(self.n_steps, "n_steps", minimum=0)
        lr = check_float(self.lr, "lr", minimum=0.0)
        lr_c = check_float(self.lr_confusion, "lr_confusion", minimum=0.0)
        skill = check_float(self.init_skill, "init_skill", minimum=0.5, maximum=1.0, strict_min=True)
        if skill >= 1.0:
            raise ValueError(f"init_skill must be < 1, got {skill}")
        radius = check_radius(self.radius)
        X, classes, rows, workers, worker_ids, label = self._answers(X, responses, task_ids)
        n, d = X.shape
        net = TwoLayerReLU(m, d, random_state=self.random_state, dtype=np.float64)
        dev = torch.device(self.device)
        old_threads = torch.get_num_threads()
        if self.n_threads:
            torch.set_num_threads(int(self.n_threads))
        try:
            tdt = torch.float32 if X.dtype == np.float32 else torch.float64
            Xt = torch.as_tensor(X, dtype=tdt, device=dev)
            W = torch.tensor(net.W, dtype=tdt, device=dev, requires_grad=True)
            W0 = torch.as_tensor(net.W0, dtype=tdt, device=dev)
            coef = torch.as_tensor(net.a / math.sqrt(m), dtype=tdt, device=dev)
            n_w = len(worker_ids)
            v0 = math.log(skill / (1.0 - skill))
            V = torch.zeros((n_w, 2, 2), dtype=tdt, device=dev)
            V[:, 0, 0] = V[:, 1, 1] = v0
            V.requires_grad_(True)
            opt = torch.optim.Adam([V], lr=lr_c)
            rt = torch.as_tensor(rows, device=dev)
            wt = torch.as_tensor(workers, device=dev)
            lt = torch.as_tensor(label, device=dev)
            bound = None if radius is None else radius / math.sqrt(m)
            hist = np.empty(n_steps)
            for step in range(n_steps):
                f = torch.relu(Xt @ W.T) @ coef  # (n,)
                logp = torch.stack([torch.nn.functional.logsigmoid(-f), torch.nn.functional.logsigmoid(f)], 1)
                logC = torch.log_softmax(V, dim=2)  # (W, k, l)
                # ln P(l | x, r) = logsumexp_k (ln sigma_k(x) + ln C_r[k, l])
                terms = logp[rt] + logC[wt, :, lt]  # (N, k)
                loss = -torch.logsumexp(terms, dim=1).mean()
                opt.zero_grad()
                if W.grad is not None:
                    W.grad = None
                loss.backward()
                hist[step] = float(loss.detach())
                opt.step()
                grad = W.grad
                assert grad is not None
                with torch.no_grad():
                    W -= lr * grad
                    if bound is not None:
                        D = W - W0
                        norm = torch.sqrt((D * D).sum(1))
                        shrink = torch.where(norm > bound, bound / torch.where(norm > 0, norm, 1.0), 1.0)
                        W.copy_(W0 + D * shrink[:, None])
            if not (np.isfinite(hist).all() and bool(torch.isfinite(W).all())):
                raise ValueError(f"CrowdLayer training diverged (lr = {lr:g}); lower lr or rescale X to ||x|| <= 1")
            net.W = np.ascontiguousarray(W.detach().cpu().numpy(), dtype=np.float64)
            self.confusions_ = torch.softmax(V.detach().double(), dim=2).cpu().numpy()
        finally:
            torch.set_num_threads(old_threads)
        self.model_ = net
        self.workers_ = worker_ids
        self.classes_ = classes
        self.loss_history_ = hist
        return self

    def decision_function(self, X) -> np.ndarray:
        """The student's output f(x) (float64); f > 0 is the second class."""
        return self.model_.decision_function(from_torch(X.to_numpy() if isinstance(X, pd.DataFrame) else X))

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) class probabilities of the student, columns in ``classes_`` order."""
        f = self.decision_function(X)
        p1 = 0.5 * (1.0 + np.tanh(0.5 * f))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X) -> np.ndarray:
        """The class (from ``classes_``) of each row of X."""
        return self.classes_[(self.decision_function(X) > 0).astype(int)]
