"""Crowd truth inference: the response data model, the Dawid-Skene family, task types."""
from __future__ import annotations

from . import datasets, simulate
from ._base import accuracy
from ._dawid_skene import DawidSkene
from ._majority_vote import MajorityVote, WeightedMajorityVote, nitzan_paroush_weights
from ._one_coin import OneCoinDawidSkene
from ._responses import Responses

__all__ = [
    "Responses", "datasets", "simulate", "accuracy",
    "MajorityVote", "WeightedMajorityVote", "nitzan_paroush_weights", "DawidSkene", "OneCoinDawidSkene",
]
