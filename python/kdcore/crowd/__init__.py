"""Crowd truth inference: the response data model, the Dawid-Skene family, task types.

Every aggregator takes a :class:`Responses` or a crowd-kit style DataFrame
(task, worker, label) and follows scikit-learn's rules (``fit`` returns self;
fitted attributes ``labels_``, ``probas_``, ...).

>>> from kdcore.crowd import DawidSkene, simulate
>>> responses, truth = simulate.dawid_skene(500, 20, 3, answers_per_task=5, random_state=0)
>>> labels = DawidSkene().fit_predict(responses)
"""

from __future__ import annotations

import importlib

from . import datasets, simulate
from ._base import accuracy
from ._dawid_skene import DawidSkene
from ._majority_vote import MajorityVote, WeightedMajorityVote, nitzan_paroush_weights
from ._one_coin import OneCoinDawidSkene
from ._responses import Responses

# Loaded on first use (PEP 562), so `import kdcore.crowd` does not pay for
# scipy.optimize & co. until one of these is asked for.
_LAZY = {
    "SpectralEM": "._spectral_em",
    "spectral_init": "._spectral_init",
    "TriangularEstimation": "._triangular",
    "KOS": "._kos",
    "RatioOfEigenvectors": "._kos",
    "GLAD": "._glad",
    "MACE": "._mace",
    "BinaryRelevance": "._binary_relevance",
    "TypeAware": "._type_aware",
    "TaskTypeClustering": "._types",
    "BayesianDawidSkene": "._bayesian",
    "CommunityDawidSkene": "._bayesian",
    "Auto": "._auto",
    "Wawa": "._skill_vote",
    "ZeroBasedSkill": "._skill_vote",
    "GoldMajorityVote": "._skill_vote",
    "MMSR": "._mmsr",
}

__all__ = [
    "Responses",
    "datasets",
    "simulate",
    "accuracy",
    "MajorityVote",
    "WeightedMajorityVote",
    "nitzan_paroush_weights",
    "DawidSkene",
    "OneCoinDawidSkene",
    *_LAZY,
    "metrics",
]


def __getattr__(name: str):
    if name == "metrics":  # agreement and quality metrics (kdcore.crowd.metrics)
        value = importlib.import_module(".metrics", __name__)
        globals()[name] = value
        return value
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
