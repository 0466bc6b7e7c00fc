"""What every aggregator shares: scikit-learn's estimator rules in crowd-kit's shape.

``__init__`` only stores its keyword arguments; ``fit(data)`` accepts a
:class:`~kdcore.crowd.Responses` or a crowd-kit style DataFrame (task, worker,
label) and returns ``self``; fitted attributes end in ``_``:

- ``labels_``: pandas Series indexed by the original task ids, original label values;
- ``probas_``: DataFrame tasks x classes of posteriors (rows sum to one): the soft labels;
- ``classes_``: the label values in column order.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from ..backends import check_n_threads, resolve_backend
from ._responses import Responses

_Estimator = TypeVar("_Estimator", bound="BaseEstimator")


class BaseEstimator:
    """scikit-learn's parameter protocol, shared by every crowd estimator.

    The parameters are the keyword arguments of ``__init__``, stored under their own
    names. ``get_params(deep=True)`` adds ``name__param`` entries for a parameter that
    is itself an estimator; ``set_params`` accepts them, and for a nested estimator
    left at ``None`` (its default) it first builds that default (:meth:`_default_nested`).
    """

    #: backends this estimator implements, in order of preference for backend="auto"
    _backends: tuple[str, ...] = ("cpp", "numpy")
    backend: str
    n_threads: int

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The parameters by name (``deep``: with ``name__param`` entries of nested estimators)."""
        out = {name: getattr(self, name) for name in self._param_names()}
        if deep:
            for name, value in list(out.items()):
                if isinstance(value, BaseEstimator):
                    out.update({f"{name}__{k}": v for k, v in value.get_params(deep=True).items()})
        return out

    def set_params(self: _Estimator, **params: Any) -> _Estimator:
        """Set parameters by name; ``name__param`` sets ``param`` of the nested estimator ``name``."""
        valid = self._param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid: {valid}")
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            inner = getattr(self, name)
            if inner is None:
                inner = self._default_nested(name)
                setattr(self, name, inner)
            if not isinstance(inner, BaseEstimator):
                raise ValueError(
                    f"{name} of {type(self).__name__} is not an estimator ({type(inner).__name__}); "
                    f"cannot set {sorted(sub_params)} on it"
                )
            inner.set_params(**sub_params)
        return self

    def _default_nested(self, name: str) -> BaseEstimator:
        """The estimator a nested parameter left at None stands for (estimators with one override this)."""
        raise ValueError(f"{type(self).__name__}.{name} is not a nested estimator")

    def clone(self: _Estimator) -> _Estimator:
        """An unfitted copy with the same parameters (nested estimators cloned too)."""
        params = {k: v.clone() if isinstance(v, BaseEstimator) else v for k, v in self.get_params(deep=False).items()}
        return type(self)(**params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({args})"

    # -- what every fit resolves first ------------------------------------------------
    def _backend(self) -> str:
        return resolve_backend(self.backend, self._backends, what=type(self).__name__)

    def _threads(self) -> int:
        """The validated ``n_threads`` (0 = kdcore's default policy)."""
        check_n_threads(self.n_threads)
        return int(self.n_threads)


class BaseAggregator(BaseEstimator):
    """Base class of kdcore's aggregators (not used directly)."""

    #: True for methods defined only for two classes
    _binary_only: bool = False
    classes_: np.ndarray
    probas_: pd.DataFrame
    labels_: pd.Series

    # -- shared plumbing ------------------------------------------------------------
    def _prepare(self, data: Responses | pd.DataFrame) -> Responses:
        """Coerce the input and check that this method applies to it."""
        responses = Responses.coerce(data)
        if self._binary_only and responses.n_classes != 2:
            raise ValueError(
                f"{type(self).__name__} is defined for binary labels only; got {responses.n_classes} classes "
                f"{list(responses.classes_)}. Use DawidSkene, OneCoinDawidSkene, GLAD or MACE for multi-class data"
            )
        return responses

    def _set_posteriors(self, responses: Responses, proba: np.ndarray, labels: np.ndarray | None = None) -> None:
        """Store ``probas_``/``labels_``/``classes_`` from an (n_tasks, n_classes) posterior array.

        ``labels`` (class codes) overrides the argmax, e.g. for randomised tie-breaking.
        """
        proba = np.asarray(proba, dtype=np.float64)
        if proba.shape != (responses.n_tasks, responses.n_classes):
            raise RuntimeError(f"internal: posterior shape {proba.shape} != {(responses.n_tasks, responses.n_classes)}")
        if not np.all(np.isfinite(proba)):
            raise FloatingPointError(f"{type(self).__name__} produced non-finite posteriors")
        if labels is None:
            labels = np.argmax(proba, axis=1)
        index = pd.Index(responses.task_ids, name="task")
        self.classes_ = np.asarray(responses.classes_)
        self.probas_ = pd.DataFrame(proba, index=index, columns=pd.Index(self.classes_, name="label"))
        self.labels_ = pd.Series(self.classes_[labels], index=index, name="agg_label")

    # -- public API -----------------------------------------------------------------
    def fit(self, data: Responses | pd.DataFrame) -> BaseAggregator:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_predict(self, data: Responses | pd.DataFrame) -> pd.Series:
        """Fit and return the estimated label of each task (Series indexed by task id)."""
        return self.fit(data).labels_

    def fit_predict_proba(self, data: Responses | pd.DataFrame) -> pd.DataFrame:
        """Fit and return the posterior of each class for each task (DataFrame task x class)."""
        return self.fit(data).probas_

    def score(self, data: Responses | pd.DataFrame, truth: pd.Series) -> float:
        """Accuracy of ``fit_predict(data)`` on the tasks that have a gold label in ``truth``."""
        pred = self.fit_predict(data)
        return accuracy(pred, truth)


def accuracy(pred: pd.Series, truth: pd.Series) -> float:
    """Share of tasks in both ``pred`` and ``truth`` whose labels agree (compared as strings
    when the two use different types, e.g. 1 vs "1")."""
    common = pred.index.intersection(truth.index)
    if len(common) == 0:
        raise ValueError("no task of the prediction has a gold label")
    p, t = pred.loc[common], truth.loc[common]
    if p.dtype != t.dtype:
        p, t = p.astype(str), t.astype(str)
    return float((p.to_numpy() == t.to_numpy()).mean())
