"""crowd-kit's ``crowdkit.metrics``: ``data`` (uncertainty, consistency, alpha_krippendorff)
and ``workers`` (accuracy_on_aggregates)."""

from . import data, workers

__all__ = ["data", "workers"]
