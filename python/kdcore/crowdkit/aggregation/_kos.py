"""crowd-kit's KOS on kdcore's compiled KOS message passing (kdcore.crowd.KOS).

The random start differs (kdcore draws its messages from numpy's Generator, crowd-kit
from the legacy global RandomState), so the labels agree with crowd-kit's rather than
being computed the same way: on the four binary datasets of the tests, all of them.
"""

from __future__ import annotations

import pandas as pd

from ...crowd import Responses
from ...crowd._kos import KOS as _NativeKOS
from .._frame import check_frame
from ._majority_vote import estimator_repr

__all__ = ["KOS"]


class KOS:
    """crowd-kit 1.4.2's KOS (Karger, Oh & Shah): binary labels only.

    Parameters
    ----------
    n_iter : int, default 100
    random_state : int or None, default 0

    Attributes
    ----------
    labels_ : Series (task, sorted) named "agg_label"
    """

    _params = ("n_iter", "random_state")

    def __init__(self, n_iter: int = 100, random_state: int | None = 0) -> None:
        self.n_iter = n_iter
        self.random_state = random_state

    def __repr__(self) -> str:
        return estimator_repr(self, self._params)

    def fit(self, data: pd.DataFrame) -> KOS:
        """Run the message passing; returns self."""
        frame = check_frame(data)
        if len(frame) == 0:
            self.labels_ = pd.Series([], dtype="O", name="agg_label")
            return self
        if frame["label"].nunique(dropna=False) != 2:
            raise ValueError("KOS aggregation method is for binary classification only.")
        r = Responses.from_dataframe(frame, duplicates="keep_all")
        native = _NativeKOS(n_iter=self.n_iter, random_state=self.random_state).fit(r)
        labels = native.labels_
        self.labels_ = pd.Series(labels.to_numpy(), index=pd.Index(labels.index, name="task"), name="agg_label").astype(
            frame["label"].dtype
        )
        return self

    def fit_predict(self, data: pd.DataFrame) -> pd.Series:
        """Fit and return ``labels_``."""
        return self.fit(data).labels_
