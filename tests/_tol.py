"""Tolerances, in one place."""

KERNEL_F64 = 1e-10  # compiled kernel vs numpy twin, float64
KERNEL_F32 = 1e-5  # compiled kernel vs numpy twin, float32
FIT_F64 = 1e-8  # a whole fit (tens of EM iterations), compiled vs numpy twin, float64
