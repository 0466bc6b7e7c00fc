"""A drop-in for crowd-kit 1.4.2's categorical aggregation, metrics and post-processing.

Replace ``crowdkit`` by ``kdcore.crowdkit`` in the imports of a crowd-kit script and it
prints the same results: the same constructor parameters, ``fit``/``fit_predict``/
``fit_predict_proba``/``predict`` signatures, attribute names, dtypes, index names,
row and column order (first appearance in the data) and numbers, computed by kdcore's
compiled kernels. docs/crowdkit.md lists what differs from kdcore's native API.
"""

from . import aggregation, metrics, postprocessing

__all__ = ["aggregation", "metrics", "postprocessing"]
