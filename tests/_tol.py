"""Tolerances, in one place."""

KERNEL_F64 = 1e-10  # compiled kernel vs numpy twin, float64
KERNEL_F32 = 1e-5  # compiled kernel vs numpy twin, float32
VB_FIXED_POINT = 1e-6  # a converged variational fit vs its own update equations
BACKENDS_EM = 1e-8  # one estimator, compiled vs numpy backend, same number of EM rounds
EMPIRICAL_BAYES = 1e-5  # estimators whose hyper-parameters come from an optimiser (L-BFGS-B), backend vs backend
