"""Tolerances, in one place."""

KERNEL_F64 = 1e-10  # compiled kernel vs numpy twin, float64
KERNEL_F32 = 1e-5  # compiled kernel vs numpy twin, float32
CROWDKIT_RTOL = 1e-6  # kdcore.crowdkit vs live crowd-kit 1.4.2 (pandas.testing rtol)
