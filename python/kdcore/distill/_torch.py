"""torch backend of the two-layer engine (CPU, and CUDA when available).

Networks of equal width are stacked into (K, m, d) tensors and trained together
with batched matrix products (torch.matmul broadcasting X over the batch):
the same equations as ``_reference.step`` (docs/maths.md A.1-A.3). torch is
imported lazily, only when this backend is used.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np


@contextlib.contextmanager
def _torch_threads(torch, n):
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def train_batch(X, n_train, models, losses, T, y, lrs, radii, n_steps, n_threads, cuda=False):
    """Returns (hist K x n_steps x 4, final K x 4) like the compiled kernel; updates models[k].W."""
    import torch

    dev = torch.device("cuda" if cuda else "cpu")
    tdt = torch.float32 if X.dtype == np.float32 else torch.float64
    K = len(models)
    n = X.shape[0]
    hist = np.empty((K, n_steps, 4))
    final = np.empty((K, 4))
    widths = sorted({mdl.m for mdl in models})
    with _torch_threads(torch, n_threads), torch.no_grad():
        Xt = torch.as_tensor(X, device=dev)
        Xtr = Xt[:n_train]
        yt = torch.as_tensor(y, device=dev, dtype=torch.float64)
        groups = []
        for m in widths:
            idx = [k for k, mdl in enumerate(models) if mdl.m == m]
            W = torch.as_tensor(np.stack([models[k].W for k in idx]), device=dev).to(tdt).contiguous()
            W0 = torch.as_tensor(np.stack([models[k].W0 for k in idx]), device=dev).to(tdt)
            a = torch.as_tensor(np.stack([models[k].a for k in idx]), device=dev).to(torch.float64)
            coef64 = a / math.sqrt(m)
            groups.append(
                dict(
                    idx=idx,
                    m=m,
                    W=W,
                    W0=W0,
                    coef64=coef64,
                    coef=coef64.to(tdt),
                    soft=torch.as_tensor(losses[idx] == 0, device=dev)[:, None],
                    tgt=torch.as_tensor(T[idx], device=dev, dtype=torch.float64),
                    lr=torch.as_tensor(lrs[idx], device=dev, dtype=tdt)[:, None, None],
                    bound=torch.as_tensor(
                        np.where(radii[idx] > 0, radii[idx] / math.sqrt(m), np.inf), device=dev, dtype=torch.float64
                    )[:, None],
                )
            )

        def forward(g):
            H = torch.matmul(Xt, g["W"].transpose(1, 2))  # (K, n, m)
            R = torch.relu(H).to(torch.float64) * g["coef64"][:, None, :]
            h = g["m"] // 2
            f = (R[..., :h] + R[..., h : 2 * h]).sum(-1)
            if g["m"] % 2:
                f = f + R[..., -1]
            t = g["tgt"]
            sp = torch.nn.functional.softplus
            ent = t * torch.log(t.clamp_min(1e-300)) + (1 - t) * torch.log((1 - t).clamp_min(1e-300))
            l_soft = ent + t * sp(-f) + (1 - t) * sp(f)
            l_hard = sp(-t * f)
            li = torch.where(g["soft"], l_soft, l_hard)
            dl = torch.where(g["soft"], torch.sigmoid(f) - t, -t * torch.sigmoid(-t * f))
            err = (yt[None, :] * f <= 0).to(torch.float64)
            return H, li, dl, err

        def record(g, li, err):
            vals = [li[:, :n_train].mean(1), err[:, :n_train].mean(1)]
            if n > n_train:
                vals += [li[:, n_train:].mean(1), err[:, n_train:].mean(1)]
            else:
                nan = torch.full_like(vals[0], float("nan"))
                vals += [nan, nan]
            return torch.stack(vals, 1)  # (K_g, 4)

        # the history stays on the device until the end: no host sync per step (CUDA)
        for g in groups:
            g["hist"] = torch.empty((len(g["idx"]), n_steps, 4), device=dev, dtype=torch.float64)
        for t_ in range(n_steps):
            for g in groups:
                H, li, dl, err = forward(g)
                g["hist"][:, t_] = record(g, li, err)
                c = (dl[:, :n_train] / n_train).to(tdt)  # (K, n_train)
                C = (c[:, :, None] * (H[:, :n_train] > 0)) * g["coef"][:, None, :]
                grad = torch.matmul(C.transpose(1, 2), Xtr)  # (K, m, d)
                W = g["W"] - g["lr"] * grad
                D = W - g["W0"]
                norm = torch.sqrt((D * D).sum(-1)).to(torch.float64)
                shrink = torch.where(norm > g["bound"], g["bound"] / torch.where(norm > 0, norm, 1.0), 1.0)
                g["W"] = g["W0"] + D * shrink.to(tdt)[..., None]
        for g in groups:
            _, li, _, err = forward(g)
            final[g["idx"]] = record(g, li, err).cpu().numpy()
            hist[g["idx"]] = g["hist"].cpu().numpy()
            Wn = g["W"].cpu().numpy()
            for pos, k in enumerate(g["idx"]):
                models[k].W = np.ascontiguousarray(Wn[pos])
    return hist, final
