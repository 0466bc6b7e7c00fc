"""CrowdLayer: students trained straight from raw crowd answers through a per-worker confusion layer (torch).

Rodrigues and Pereira, "Deep Learning from Crowds", AAAI 2018: put a per-worker layer on top
of the network's class probabilities and fit everything end to end on the answers, with no
aggregation step. kdcore uses the "MW" connection (a K x K matrix per worker) kept on the
simplex, so it *is* the worker's confusion matrix of the Dawid-Skene model (docs/maths.md B.1):

    sigma(x) = softmax(g(x))                                   the network's class probabilities
    P(worker r answers l | x) = sum_k sigma_k(x) C_r[k, l],      C_r[k, :] = softmax(V_r[k, :])
    loss = -(1/N) sum over answers (x_j, r, l) of ln P(r answers l | x_j)

computed in log space, ln P = logsumexp_k (ln sigma_k(x) + ln C_r[k, l]), so an answer the
network thinks impossible costs a finite amount. A network with one output f is the binary
case with logits (0, f): sigma = (1 - s(f), s(f)), s the sigmoid.

The confusion layer is three functions that any torch network returning class logits can use
(:func:`log_class_probs`, :func:`initial_confusion_logits`, :func:`answer_log_likelihood`), and
two fitters built on them:

* :class:`CrowdLayer`: the two-layer ReLU student of docs/maths.md A.1 (``TwoLayerReLU``:
  symmetric initialisation, output signs a fixed, only W trained) with the engine's
  full-batch projected gradient descent on W (step ``lr``, optional radius B), so it is the
  same student as the label-source arms of the crowd-students experiment; the confusion
  logits V (initialised at ``init_skill`` on the diagonal) are fitted by Adam (step
  ``lr_confusion``): their gradient is a mean over all answers of which a worker holds a
  small share, and plain steps would barely move them.
* :class:`CrowdLayerNet`: any torch backbone (a module mapping a batch of inputs to one logit
  or K class logits, e.g. the VGG 2+3 student of :mod:`kdcore.distill.vgg`) trained by
  mini-batch Adam over tasks, the confusion logits in the same optimiser with their own
  step; early stopping, when asked, on the answers of held-out tasks (their negative
  log-likelihood), so no true label is ever seen.

Either way the network is then used alone (the crowd layer is dropped) to predict.
torch is imported when a fit runs.

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

import copy
import math

import numpy as np
import pandas as pd

from .._check import check_bool, check_float, check_int
from ._validation import check_radius, check_X, from_torch
from .model import TwoLayerReLU
from .targets import task_index

__all__ = [
    "CrowdLayer",
    "CrowdLayerNet",
    "log_class_probs",
    "initial_confusion_logits",
    "answer_log_likelihood",
]


# ----------------------------------------------------------------------------- the confusion layer
def log_class_probs(logits):
    """The network's log class probabilities from its logits (torch).

    Parameters
    ----------
    logits : tensor (n,) or (n, 1): one logit f, the binary case with logits (0, f); or (n, K),
        K >= 2 class logits.

    Returns
    -------
    tensor (n, K): ``(logsigmoid(-f), logsigmoid(f))`` for one logit, else ``log_softmax``.
    """
    import torch
    import torch.nn.functional as F

    if logits.ndim == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if logits.ndim == 1:
        return torch.stack([F.logsigmoid(-logits), F.logsigmoid(logits)], 1)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must have shape (n,), (n, 1) or (n, K) with K >= 2, got {tuple(logits.shape)}")
    return torch.log_softmax(logits, dim=1)


def initial_confusion_logits(n_workers: int, n_classes: int, init_skill: float, *, dtype=None, device=None):
    """Confusion logits V (n_workers, K, K) whose softmax rows put ``init_skill`` on the diagonal
    and (1 - init_skill) / (K - 1) on every other answer (torch, not yet a parameter)."""
    import torch

    n_workers = check_int(n_workers, "n_workers", minimum=1)
    K = check_int(n_classes, "n_classes", minimum=2)
    skill = check_float(init_skill, "init_skill", minimum=1.0 / K, maximum=1.0, strict_min=True)
    if skill >= 1.0:
        raise ValueError(f"init_skill must be < 1, got {skill}")
    V = torch.zeros((n_workers, K, K), dtype=dtype, device=device)
    idx = torch.arange(K, device=device)
    V[:, idx, idx] = math.log(skill * (K - 1) / (1.0 - skill))
    return V


def answer_log_likelihood(log_probs, confusion_logits, tasks, workers, labels):
    """ln P(worker r answers l | x) = logsumexp_k (ln sigma_k(x) + ln C_r[k, l]) for each answer (torch).

    Parameters
    ----------
    log_probs : tensor (n, K), the network's log class probabilities (:func:`log_class_probs`).
    confusion_logits : tensor (W, K, K), C_r = softmax of V_r over its last axis.
    tasks, workers, labels : integer tensors of one shape S: the row of ``log_probs``, the
        worker and the class code of every answer.

    Returns
    -------
    tensor of shape S.
    """
    import torch

    log_c = torch.log_softmax(confusion_logits, dim=2)
    # advanced indices around a slice: the answers' dimensions first, then k
    return torch.logsumexp(log_probs[tasks] + log_c[workers, :, labels], dim=-1)


def _encode_answers(responses, index: pd.Index):
    """Answers as integer codes: (classes, rows of X, worker codes, worker ids, label codes)."""
    from ..crowd import Responses

    r = Responses.coerce(responses)
    df = r.to_dataframe()
    rows = index.get_indexer(pd.Index(df["task"]))
    if (rows < 0).any():
        bad = pd.unique(df["task"][rows < 0])
        raise ValueError(f"{bad.size} answered task(s) have no row in X (e.g. {list(bad[:5])}); give X their features")
    workers, worker_ids = pd.factorize(df["worker"], sort=True)
    label = pd.Index(np.asarray(r.classes_)).get_indexer(pd.Index(df["label"]))
    return (
        np.asarray(r.classes_),
        rows.astype(np.int64),
        workers.astype(np.int64),
        pd.Index(worker_ids),
        label.astype(np.int64),
    )


# ----------------------------------------------------------------------------- the two-layer student
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
        classes, rows, workers, worker_ids, label = _encode_answers(responses, index)
        if classes.size != 2:
            raise ValueError(f"CrowdLayer with the two-layer student needs binary answers, got classes {list(classes)}")
        return X, classes, rows, workers, worker_ids, label

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
            V = initial_confusion_logits(len(worker_ids), 2, skill, dtype=tdt, device=dev)
            V.requires_grad_(True)
            opt = torch.optim.Adam([V], lr=lr_c)
            rt = torch.as_tensor(rows, device=dev)
            wt = torch.as_tensor(workers, device=dev)
            lt = torch.as_tensor(label, device=dev)
            bound = None if radius is None else radius / math.sqrt(m)
            hist = np.empty(n_steps)
            for step in range(n_steps):
                f = torch.relu(Xt @ W.T) @ coef  # (n,)
                loss = -answer_log_likelihood(log_class_probs(f), V, rt, wt, lt).mean()
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


# ----------------------------------------------------------------------------- any torch backbone
class CrowdLayerNet:
    """A torch network with a per-worker confusion layer, trained by mini-batch Adam on raw answers.

    Parameters
    ----------
    backbone : torch.nn.Module mapping a batch of inputs (n, ...) to class logits: (n,) or (n, 1)
        for two classes (the logit of the second), (n, K) for K classes. It is trained in place
        (moved to ``device``) and kept as ``backbone_``.
    n_epochs : int, passes over the training tasks
    batch_size : int, tasks per step (every answer of a task is in its task's batch)
    lr : float, Adam step of the backbone
    weight_decay : float, L2 penalty of the backbone, added to its gradient (as in
        :func:`kdcore.distill.vgg.train_net`)
    lr_confusion : float, Adam step of the confusion logits
    init_skill : float in (1/K, 1), diagonal of every worker's initial confusion matrix
    patience : int or None, with validation tasks: stop after that many epochs without a
        better validation loss (None: run every epoch)
    random_state : int, seed of the batch order
    device : "cpu", "cuda", "cuda:i" or "auto" (CUDA when torch sees one)
    amp : bool, mixed precision (float16 autocast of the backbone) on CUDA
    n_threads : int, torch CPU threads during the fit (0 = torch's default)

    Attributes
    ----------
    backbone_ : the trained backbone (best validation epoch restored when there are validation tasks)
    confusions_ : ndarray (n_workers, K, K), C_r[k, l] = P(answer l | true class k), of the same epoch
    workers_ : Index of worker ids (rows of ``confusions_``)
    classes_ : ndarray of the K classes (for one logit, the second is the logit's positive side)
    loss_history_ : ndarray (epochs run,), mean negative log-likelihood of the training answers per epoch
    val_history_ : ndarray (epochs run,), that of the validation tasks' answers (empty without them)
    best_epoch_ : int, the epoch (1-based) whose weights were kept

    Example
    -------
    >>> from kdcore.distill.vgg import make_student  # doctest: +SKIP
    >>> cl = CrowdLayerNet(make_student(), n_epochs=30).fit(images, responses, val_tasks=held_out)  # doctest: +SKIP
    >>> cl.predict(test_images)  # doctest: +SKIP
    """

    def __init__(
        self,
        backbone,
        *,
        n_epochs: int = 60,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 5e-4,
        lr_confusion: float = 1e-2,
        init_skill: float = 0.8,
        patience: int | None = None,
        random_state: int = 0,
        device: str = "cpu",
        amp: bool = False,
        n_threads: int = 0,
    ):
        self.backbone = backbone
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_confusion = lr_confusion
        self.init_skill = init_skill
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.amp = amp
        self.n_threads = n_threads

    def fit(self, X, responses, *, task_ids=None, val_tasks=None) -> CrowdLayerNet:
        """Fit on inputs X (one row per task) and the raw answers.

        Parameters
        ----------
        X : ndarray or torch tensor (n, ...), the backbone's inputs; row j is task ``task_ids[j]``
            (default: task j).
        responses : :class:`kdcore.crowd.Responses` or a (task, worker, label) DataFrame; every
            answered task needs a row of X (rows without answers are not trained on).
        task_ids : array-like of n unique task ids, or None.
        val_tasks : task ids held out: their answers are not trained on, and after every epoch
            their mean negative log-likelihood picks the epoch whose weights are kept.
        """
        import torch

        from .vgg import resolve_device

        n_epochs = check_int(self.n_epochs, "n_epochs", minimum=1)
        batch_size = check_int(self.batch_size, "batch_size", minimum=2)
        lr = check_float(self.lr, "lr", minimum=0.0)
        wd = check_float(self.weight_decay, "weight_decay", minimum=0.0)
        lr_c = check_float(self.lr_confusion, "lr_confusion", minimum=0.0)
        patience = None if self.patience is None else check_int(self.patience, "patience", minimum=1)
        seed = check_int(self.random_state, "random_state")
        amp = check_bool(self.amp, "amp")
        if not isinstance(self.backbone, torch.nn.Module):
            raise TypeError(f"backbone must be a torch.nn.Module, got {type(self.backbone).__name__}")
        if isinstance(X, pd.DataFrame):
            raise TypeError("X must be an array or a torch tensor of inputs (give the task ids as task_ids)")
        n = int(np.shape(X)[0]) if hasattr(X, "shape") else -1
        if n < 0:
            raise TypeError(f"X must be an ndarray or a torch tensor, got {type(X).__name__}")
        index = pd.RangeIndex(n) if task_ids is None else task_index(task_ids, n)
        classes, rows, workers, worker_ids, label = _encode_answers(responses, index)
        K = classes.size
        if K < 2:
            raise ValueError(f"the answers must hold at least two classes, got {list(classes)}")
        is_val = np.zeros(n, dtype=bool)
        if val_tasks is not None:
            vpos = index.get_indexer(pd.Index(np.asarray(from_torch(val_tasks))))
            if (vpos < 0).any():
                raise ValueError(f"{int((vpos < 0).sum())} of val_tasks are not task ids of X")
            is_val[vpos] = True
        n_answers = np.bincount(rows, minlength=n)
        fit_rows = np.flatnonzero((n_answers > 0) & ~is_val)
        val_rows = np.flatnonzero((n_answers > 0) & is_val)
        if fit_rows.size < 2:
            raise ValueError(f"CrowdLayerNet needs at least 2 answered training tasks, got {fit_rows.size}")
        dev = resolve_device(self.device)
        amp = amp and dev.type == "cuda"
        # answers per task as padded (n, A) arrays: a batch of tasks gathers its answers by row
        A = int(n_answers.max())
        order = np.argsort(rows, kind="stable")
        slot = np.arange(rows.size) - np.repeat(np.cumsum(n_answers) - n_answers, n_answers)
        pad_w = np.zeros((n, A), np.int64)
        pad_l = np.zeros((n, A), np.int64)
        mask = np.zeros((n, A), np.float32)
        pad_w[rows[order], slot] = workers[order]
        pad_l[rows[order], slot] = label[order]
        mask[rows[order], slot] = 1.0

        old_threads = torch.get_num_threads()
        if self.n_threads:
            torch.set_num_threads(int(self.n_threads))
        try:
            Xt = X.to(dev) if isinstance(X, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(X), device=dev)
            if not torch.is_floating_point(Xt):
                raise TypeError(f"X must hold floating-point inputs, got {Xt.dtype}")
            Wt, Lt = torch.as_tensor(pad_w, device=dev), torch.as_tensor(pad_l, device=dev)
            Mt = torch.as_tensor(mask, device=dev)
            net = self.backbone.to(dev)
            V = initial_confusion_logits(len(worker_ids), K, self.init_skill, dtype=torch.float32, device=dev)
            V = torch.nn.Parameter(V)
            opt = torch.optim.Adam(
                [
                    {"params": list(net.parameters()), "lr": lr, "weight_decay": wd},
                    {"params": [V], "lr": lr_c, "weight_decay": 0.0},
                ]
            )
            scaler = torch.amp.GradScaler("cuda", enabled=amp)
            gen = torch.Generator().manual_seed(seed)
            fit_t = torch.as_tensor(fit_rows, device=dev)
            val_t = torch.as_tensor(val_rows, device=dev)

            def nll(idx):
                """Summed negative log-likelihood of the answers of tasks ``idx``, and their count."""
                with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=amp):
                    logits = net(Xt[idx])
                logp = log_class_probs(logits.float())
                local = torch.arange(idx.numel(), device=dev)[:, None].expand(-1, A)
                ll = answer_log_likelihood(logp, V, local, Wt[idx], Lt[idx])
                m = Mt[idx]
                return -(ll * m).sum(), m.sum()

            # the backbone's class count against the answers', once, before training
            net.eval()
            with torch.no_grad():
                k_out = log_class_probs(net(Xt[fit_t[:2]]).float()).shape[1]
            if k_out != K:
                raise ValueError(f"the backbone gives {k_out} class(es), the answers have {K}: {list(classes)}")

            hist, vhist = [], []
            best, best_state, best_V, best_epoch, bad = math.inf, None, None, 0, 0
            for epoch in range(n_epochs):
                net.train()
                perm = fit_t[torch.randperm(fit_t.numel(), generator=gen).to(dev)]
                tot = torch.zeros((), device=dev)
                cnt = torch.zeros((), device=dev)
                for i in range(0, perm.numel(), batch_size):
                    idx = perm[i : i + batch_size]
                    if idx.numel() < 2:  # BatchNorm needs two samples
                        continue
                    s, c = nll(idx)
                    opt.zero_grad(set_to_none=True)
                    scaler.scale(s / c).backward()
                    scaler.step(opt)
                    scaler.update()
                    tot += s.detach()
                    cnt += c
                hist.append(float(tot / cnt))
                if val_rows.size:
                    net.eval()
                    with torch.no_grad():
                        vs = torch.zeros((), device=dev)
                        vc = torch.zeros((), device=dev)
                        for i in range(0, val_t.numel(), 1024):
                            s, c = nll(val_t[i : i + 1024])
                            vs += s
                            vc += c
                    v = float(vs / vc)
                    vhist.append(v)
                    if v < best:
                        best, best_epoch, bad = v, epoch + 1, 0
                        best_state = copy.deepcopy(net.state_dict())
                        best_V = V.detach().clone()
                    else:
                        bad += 1
                        if patience is not None and bad >= patience:
                            break
                else:
                    best_epoch = epoch + 1
            if not np.isfinite(hist).all():
                raise ValueError(f"CrowdLayerNet training diverged (lr = {lr:g}); lower lr")
            V_final = V.detach()
            if best_state is not None and best_V is not None:
                net.load_state_dict(best_state)
                V_final = best_V
            net.eval()
            self.confusions_ = torch.softmax(V_final.double(), dim=2).cpu().numpy()
        finally:
            torch.set_num_threads(old_threads)
        self.backbone_ = net
        self.workers_ = worker_ids
        self.classes_ = classes
        self.loss_history_ = np.asarray(hist)
        self.val_history_ = np.asarray(vhist)
        self.best_epoch_ = int(best_epoch)
        return self

    def _log_probs(self, X, batch: int = 1024) -> np.ndarray:
        import torch

        net = self.backbone_
        dev = next(net.parameters()).device
        Xt = X.to(dev) if isinstance(X, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(X), device=dev)
        net.eval()
        out = []
        with torch.no_grad():
            for i in range(0, Xt.shape[0], batch):
                out.append(log_class_probs(net(Xt[i : i + batch]).double()).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.classes_.size))

    def predict_proba(self, X) -> np.ndarray:
        """(n, K) class probabilities of the trained backbone (the crowd layer dropped), columns in ``classes_`` order."""
        return np.exp(self._log_probs(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class (from ``classes_``) of each row of X."""
        return self.classes_[np.argmax(self._log_probs(X), axis=1)]
