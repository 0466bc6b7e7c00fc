"""crowd-kit's ``crowdkit.aggregation`` (categorical methods) on kdcore's kernels."""

from ._dawid_skene import DawidSkene, OneCoinDawidSkene

__all__ = ["DawidSkene", "OneCoinDawidSkene"]
