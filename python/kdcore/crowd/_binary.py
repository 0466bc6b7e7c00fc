"""Binary answers as signs: what Triangular Estimation, KOS and the eigenvector ratio share.

Class code 1 is the answer +1 and class code 0 the answer -1. A method's task score
s_j (a weighted sum of signed answers) decides the label by its sign; a zero score
falls back to the plain majority vote, and an exact tie of that to the first class.
"""

from __future__ import annotations

import numpy as np

from ._responses import Responses

__all__ = ["signs", "sign_labels"]


def signs(labels: np.ndarray) -> np.ndarray:
    """Binary class codes 0/1 as -1/+1 floats."""
    return np.where(np.asarray(labels) == 1, 1.0, -1.0)


def sign_labels(r: Responses, score: np.ndarray) -> np.ndarray:
    """Class code of each task: 1 where ``score`` > 0, 0 where < 0; a zero score takes the
    sign of the plain vote sum_i A_ij, and a zero vote the first class (code 0)."""
    mv = np.bincount(r.task, weights=signs(r.label), minlength=r.n_tasks)
    decide = np.where(score != 0, score, mv)
    return (decide > 0).astype(np.int64)
