"""Tolerances, in one place."""

KERNEL_F64 = 1e-10  # compiled kernel vs numpy twin, float64
KERNEL_F32 = 1e-5  # compiled kernel vs numpy twin, float32
DASK_VS_MEMORY = 1e-10  # an aggregator fitted on a Dask cluster vs the same fit in memory
