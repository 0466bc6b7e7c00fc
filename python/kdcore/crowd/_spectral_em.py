"""``SpectralEM``: Dawid-Skene EM started from the spectral initialisation
(Zhang, Chen, Zhou, Jordan, "Spectral methods meet EM", NIPS 2014 / JMLR 2016):
:func:`~kdcore.crowd._spectral_init.spectral_init`, then DawidSkene's EM loop."""

from __future__ import annotations

import warnings

import numpy as np

from . import _em
from ._dawid_skene import DawidSkene
from ._responses import Responses
from ._spectral_init import spectral_init

__all__ = ["SpectralEM"]


class SpectralEM(DawidSkene):
    """Dawid-Skene EM started from :func:`spectral_init` (multi-class).

    The same estimator as ``DawidSkene(init="spectral")`` (its EM loop, E-step and
    M-step), plus the spectral start's own settings and diagnostics.

    Parameters
    ----------
    n_iter : int, default 100
    tol : float, default 1e-5 (DawidSkene's relative log-likelihood rule)
    smoothing : float, DawidSkene's default (kdcore.crowd._em.DEFAULT_SMOOTHING)
    random_state : int or None (worker split and tensor power starts)
    floor : float, default 1e-3 (spectral_init's clipping)
    backend : {"auto", "cpp", "numpy"} (of the EM)
    n_threads : int, default 0

    Fitted: ``init_confusions_``, ``init_priors_``, ``init_fallback_`` (None, or
    why spectral_init fell back to the majority-vote start), then DawidSkene's
    ``confusions_``, ``priors_``, ``loss_history_``, ``n_iter_``, ``labels_``, ``probas_``.

    Examples
    --------
    >>> from kdcore.crowd import simulate
    >>> r, truth = simulate.dawid_skene(2000, 30, 3, answers_per_task=5, random_state=0)   # doctest: +SKIP
    >>> float((SpectralEM(random_state=0).fit_predict(r) == truth).mean()) > 0.9           # doctest: +SKIP
    True
    """

    init = "spectral"  # read by DawidSkene.fit; not a parameter here

    def __init__(
        self,
        n_iter: int = 100,
        tol: float = 1e-5,
        smoothing: float = _em.DEFAULT_SMOOTHING,
        random_state: int | None = None,
        floor: float = 1e-3,
        backend: str = "auto",
        n_threads: int = 0,
    ):
        self.n_iter = n_iter
        self.tol = tol
        self.smoothing = smoothing
        self.random_state = random_state
        self.floor = floor
        self.backend = backend
        self.n_threads = n_threads

    def _spectral_start(self, r: Responses) -> tuple[np.ndarray, np.ndarray]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            conf, prior, info = spectral_init(r, self.random_state, floor=self.floor, return_info=True)
        self.init_confusions_, self.init_priors_, self.init_fallback_ = conf, prior, info["fallback"]
        return self._from_confusions(conf[None], prior[None])
