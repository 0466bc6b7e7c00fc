"""Tolerances of the test suite, in one place, named by what a comparison claims.

Each name says whether it is relative (``rtol``/``rel``) or absolute (``atol``/``abs``)
only where the call sites use it one way; a call that scales an absolute tolerance by
the size of the values (``KERNEL_F64 * max(1, |x|)``) says so where it does it.
"""

# --- Same computation, another order of floating-point sums (threads, tiles, blocks).
# float64: one pass of sums over the same terms, reordered
REORDER_F64 = 1e-12
# float64: per-thread partial tables summed, then iterated (EM rounds, power steps)
THREADS_F64 = 1e-9
# float32: the same, in single precision
THREADS_F32 = 1e-4
# float64: a quantity accumulated over iterations of a fixed-point loop (loss histories)
ITERATED_F64 = 1e-10
# GLAD's M-step is a gradient ascent whose line search branches on the reordered sums
GLAD_THREADS = 1e-6

# --- Compiled kernel against its numpy twin (docs/maths.md equations, two implementations).
KERNEL_F64 = 1e-10  # one kernel call, float64
KERNEL_F32 = 1e-5  # one kernel call, float32
EM_TWIN_F64 = 1e-9  # fifteen EM rounds of the fused kernel against the step-by-step loop
FIT_TWIN_F64 = 1e-8  # a whole fit (many EM rounds, a stopping rule) on two backends

# --- Finite differences (central, step FD_STEP) against an analytic gradient.
FD_STEP = 1e-6
FD_RTOL = 1e-5
FD_ATOL = 1e-8  # two-layer loss: values of order one
FD_ATOL_GLAD = 1e-7  # GLAD's Q: a sum over every answer, larger in magnitude

# --- Invariants of the model (exact in exact arithmetic).
PROB_SUM = 1e-10  # posteriors of a fit sum to one over the classes
PROB_SUM_ANY_INPUT = 1e-8  # the same on generated inputs of any scale (property-based tests)
MONOTONE_REL = 1e-9  # EM never lowers its objective: slack relative to the objective
MONOTONE_REL_MAP = 1e-8  # the same for the smoothed (MAP) objective over 300 rounds
MONOTONE_ABS = 1e-12  # the same, absolute, on a small problem
MONOTONE_ABS_GLAD = 1e-9  # the same for GLAD, whose M-step is an inexact gradient ascent
EMPTY_CLASS_PRIOR = 1e-6  # the prior of a class no answer uses (zero up to the smoothing)
TIE = 1e-6  # two posteriors closer than this are a tie that may break either way
BOUND_SLACK = 1e-12  # a quantity at most (or at least) a bound it meets with equality
BOUND_SLACK_REL = 1e-9  # the same, relative, after many projected steps
AT_BOUNDARY_REL = 1e-6  # a weight counts as on the projection's boundary within this
RELABEL = 1e-6  # a fit on relabelled, duplicated or permuted data against the original fit
NULL_STEP_REL = 1e-6  # a run that cannot move keeps its loss
ZERO = 1e-10  # a quantity that is zero up to rounding (a centred mean)
PROJ_F32_REL = 1e-5  # a float32 projection onto a ball: relative slack on the radius
PROJ_F32_ABS = 1e-6  # ... and its absolute floor
UNIT_NORM_F32 = 1e-5  # rows scaled to unit norm in float32
QP_OPTIMUM = 1e-6  # the max-margin QP's solution against any other feasible direction
LSTSQ_EXACT = 1e-9  # a least-squares line through points that lie exactly on it
FEW_HUNDRED_ULP = 1e-14  # absolute floor for a float64 bound that can be zero

# --- Eigen-solvers (Lanczos on the hollow Gram operator, docs/maths.md B.3).
EIGVAL = 1e-9  # eigenvalues against numpy's, relative to the largest
EIGVEC = 1e-7  # |<u, v>| = 1 and A u = lambda u, relative to the largest eigenvalue
EIG_TWIN = 1e-8  # two backends' embeddings: eigenvalues, relative
EIGVEC_TWIN = 1e-6  # two backends' embeddings: eigenvector alignment

# --- Agreement with another library on the same model.
CROWDKIT_GLAD = 1e-6  # crowd-kit's GLAD alphas

# --- Statistical recovery (a planted answer, finite samples).
MC_NTK = 5e-3  # Monte-Carlo NTK Gram (many random features) against the closed form
QP_VS_GRID = 5e-3  # the margin QP against a brute-force grid over the simplex
MARGIN_UPPER = 0.02  # the margin's upper bound against the planted margin
PLANTED_PRIORS = 0.03  # type priors recovered from simulated answers
NOISE_VAR_REL = 0.02  # empirical variance of planted pixel noise
SLOPE = 0.05  # a fitted log-log slope against the planted one
NOISE_MEAN = 0.003  # empirical mean of planted zero-mean pixel noise
DS_CONFUSION_ERR = 0.045  # Dawid-Skene confusions at 16,000 tasks: mean |error| (sd ~ 0.008 a cell)
ONE_COIN_SKILL = 0.03  # one-coin skills recovered from 16,000 tasks: max |error|
TRIANGULAR_SKILL = 0.1  # Triangular Estimation's reliabilities from 10,000 tasks: max |error|
SPECTRAL_INIT_CONF = 0.015  # Spectral-EM's initial confusions from 20,000 tasks: mean |error|
SIM_CONFUSION = 0.03  # a simulator's empirical confusion (>= 6,000 draws a cell) against its planted one
SIM_SKILL = 0.02  # a simulator's empirical one-coin skill against its planted one
SIM_SHARE = 0.01  # each worker's share of 90,000 answers against its expected share
SIM_ANSWER_RATE = 0.005  # the share of answered (task, worker) pairs against alpha
SIM_TYPED_RELIABILITY = 0.06  # empirical reliability per (worker, type) against the planted one
CLASS_SHARE_GAP = 0.2  # a split independent of the class: the two parts' class shares differ by less

# --- Real crowd data (accuracy on the gold tasks).
REAL_DATA_REGRESSION = 0.02  # an aggregator's accuracy against the value measured with the same settings
BELOW_MAJORITY_VOTE = 0.03  # ... and against majority vote's (10 of adult2's 333 gold tasks)
FIT_F64 = 1e-8  # a whole fit (tens of EM iterations), compiled vs numpy twin, float64
CROWDKIT_RTOL = 1e-6  # kdcore.crowdkit vs live crowd-kit 1.4.2 (pandas.testing rtol)
CROWDKIT_AGREEMENT = 0.99  # share of equal labels where the optimiser's rounding path differs (GLAD)
DASK_VS_MEMORY = 1e-10  # an aggregator fitted on a Dask cluster vs the same fit in memory
CROWD_INPUT_SKILL = 0.08  # per-(worker, type) skills recovered from 4,000 simulated tasks: mean |error|
CROWD_INPUT_TYPES = 0.85  # share of tasks whose recovered type is the planted one (specialist crowd)
CROWD_LAYER_CONFUSION = 0.1  # CrowdLayer's per-worker confusions recovered from 3,000 tasks: mean |error|
VB_FIXED_POINT = 1e-6  # a converged variational fit vs its own update equations
BACKENDS_EM = 1e-8  # one estimator, compiled vs numpy backend, same number of EM rounds
EMPIRICAL_BAYES = 1e-5  # estimators whose hyper-parameters come from an optimiser (L-BFGS-B), backend vs backend

# --- Decisions kept across a restructuring (tests/test_types_decisions.py).
DECISION_ACCURACY = 1e-3  # "the same accuracy within 0.1 points" (accuracies are fractions)
