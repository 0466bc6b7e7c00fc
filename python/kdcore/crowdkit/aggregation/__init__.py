"""crowd-kit's ``crowdkit.aggregation`` (categorical methods) on kdcore's kernels."""

from ._binary_relevance import BinaryRelevance
from ._dawid_skene import DawidSkene, OneCoinDawidSkene
from ._glad import GLAD
from ._kos import KOS
from ._mace import MACE
from ._majority_vote import GoldMajorityVote, MajorityVote, Wawa, ZeroBasedSkill
from ._mmsr import MMSR

__all__ = [
    "DawidSkene",
    "OneCoinDawidSkene",
    "MajorityVote",
    "Wawa",
    "ZeroBasedSkill",
    "GoldMajorityVote",
    "MMSR",
    "GLAD",
    "KOS",
    "MACE",
    "BinaryRelevance",
]
