"""Type stubs of the compiled core kdcore._core (one section per area of cpp/)."""

from typing import Any

import numpy as np
from numpy.typing import NDArray

# ---------------------------------------------------------------- threads
def have_openmp() -> bool: ...
def available_cores() -> int: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def resolve_threads(n_threads: int) -> int: ...
def simd_level() -> str:
    """Per kernel family, the ISA variant that runs (e.g. "twolayer x86-64-v4; crowd-em x86-64-v3; ...")."""

# ---------------------------------------------------------------- responses
def factorize_int64(ids: NDArray[np.int64]) -> tuple[NDArray[np.int32], NDArray[np.int64]]: ...
def find_duplicates(
    task: NDArray[np.int32], worker: NDArray[np.int32], n_tasks: int, n_workers: int, mode: int
) -> tuple[NDArray[np.uint8], int, int]: ...
def build_csr(
    group: NDArray[np.int32], payload_a: NDArray[np.int32], payload_b: NDArray[np.int32], n_groups: int
) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int32]]: ...

# ---------------------------------------------------------------- crowd: Dawid-Skene EM and vote (crowd.hpp)
def em_e_step(
    task_indptr: NDArray[np.int64],
    task_worker: NDArray[np.int32],
    task_label: NDArray[np.int32],
    n_tasks: int,
    n_workers: int,
    log_conf: NDArray[np.float64],
    log_prior: NDArray[np.float64],
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], float]: ...
def em_m_step(
    worker_indptr: NDArray[np.int64],
    worker_task: NDArray[np.int32],
    worker_label: NDArray[np.int32],
    n_tasks: int,
    n_workers: int,
    post: NDArray[np.float64],
    smoothing: float,
    one_coin: bool = False,
    n_threads: int = 0,
    task_indptr: NDArray[np.int64] | None = None,
    task_worker: NDArray[np.int32] | None = None,
    task_label: NDArray[np.int32] | None = None,
    strategy: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
def em_counts(
    worker_indptr: NDArray[np.int64],
    worker_task: NDArray[np.int32],
    worker_label: NDArray[np.int32],
    task_indptr: NDArray[np.int64],
    task_worker: NDArray[np.int32],
    task_label: NDArray[np.int32],
    n_tasks: int,
    n_workers: int,
    post: NDArray[np.float64],
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
def dirichlet_fixed_point(
    counts: NDArray[np.float64],
    weights: NDArray[np.float64],
    A: NDArray[np.float64],
    n_steps: int,
    tol: float,
    a_min: float,
    a_max: float,
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], int]: ...
def digamma(x: NDArray[np.float64]) -> NDArray[np.float64]: ...
def skill_em_polish(
    worker_indptr: NDArray[np.int64],
    worker_task: NDArray[np.int32],
    worker_label: NDArray[np.int32],
    task_indptr: NDArray[np.int64],
    task_worker: NDArray[np.int32],
    task_label: NDArray[np.int32],
    n_tasks: int,
    n_workers: int,
    post: NDArray[np.float64],
    shrink: float,
    smoothing: float,
    tol: float,
    n_max: int,
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float, int]: ...
def skill_em_cem(
    worker_indptr: NDArray[np.int64],
    worker_task: NDArray[np.int32],
    worker_label: NDArray[np.int32],
    task_indptr: NDArray[np.int64],
    task_worker: NDArray[np.int32],
    task_label: NDArray[np.int32],
    n_tasks: int,
    n_workers: int,
    types: NDArray[np.int64],
    label_post: NDArray[np.float64],
    n_types: int,
    shrink: float,
    smoothing: float,
    n_outer: int,
    n_threads: int = 0,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float, int]: ...
def lloyd_kmeans(
    X: NDArray[np.float64], centres: NDArray[np.float64], n_iter: int
) -> tuple[NDArray[np.int64], NDArray[np.float64], int]: ...
def lloyd_kmeans_runs(
    X: NDArray[np.float64], centres: NDArray[np.float64], n_iter: int, n_threads: int = 0
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int32]]: ...
def skill_em_starts(
    worker_indptr: NDArray[np.int64],
    worker_task: NDArray[np.int32],
    worker_label: NDArray[np.int32],
    task_indptr: NDArray[np.int64],
    task_worker: NDArray[np.int32],
    task_label: NDArray[np.int32],
    n_tasks: int,
    n_workers: int,
    inits: NDArray[np.int64],
    label_post: NDArray[np.float64],
    n_types: int,
    shrink: float,
    smoothing: float,
    n_outer: int,
    tol: float,
    n_max: int,
    n_threads: int = 0,
) -> tuple[
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    int,
    NDArray[np.float64],
    NDArray[np.int32],
    NDArray[np.int32],
]: ...
def em_run(
    task_indptr: NDArray[np.int64],
    task_worker: NDArray[np.int32],
    task_label: NDArray[np.int32],
    worker_indptr: NDArray[np.int64],
    worker_task: NDArray[np.int32],
    worker_label: NDArray[np.int32],
    n_tasks: int,
    n_workers: int,
    post: NDArray[np.float64],
    smoothing: float,
    one_coin: bool,
    n_iter: int,
    tol: float,
    init_loglik: float,
    prob_floor: float,
    n_threads: int = 0,
    strategy: int = 0,
    stop_rule: int = 0,
    gold_task: NDArray[np.int32] | None = None,
    gold_class: NDArray[np.int32] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], list[float], int, bool, float]: ...
def vote_scores(
    task_indptr: NDArray[np.int64],
    task_worker: NDArray[np.int32],
    task_label: NDArray[np.int32],
    n_tasks: int,
    n_workers: int,
    n_classes: int,
    weight: NDArray[np.float64] | None = None,
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.int32], NDArray[np.int32]]: ...

# ---------------------------------------------------------------- crowd: TE, KOS, GLAD, MACE (triangular, kos, glad, mace.hpp)
def te_pairwise_agreement(
    t_indptr: NDArray[np.int64],
    t_worker: NDArray[np.int32],
    t_label: NDArray[np.int32],
    n_workers: int,
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
def kos_messages(
    t_indptr: NDArray[np.int64],
    t_worker: NDArray[np.int32],
    t_label: NDArray[np.int32],
    n_workers: int,
    y0: NDArray[np.float64],
    n_iter: int,
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
def glad_e_step(
    t_indptr: NDArray[np.int64],
    t_worker: NDArray[np.int32],
    t_label: NDArray[np.int32],
    n_classes: int,
    alpha: NDArray[np.float64],
    logbeta: NDArray[np.float64],
    log_prior: NDArray[np.float64],
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], float]: ...
def glad_objective(
    t_indptr: NDArray[np.int64],
    t_worker: NDArray[np.int32],
    t_label: NDArray[np.int32],
    n_classes: int,
    post: NDArray[np.float64],
    alpha: NDArray[np.float64],
    logbeta: NDArray[np.float64],
    mu_alpha: NDArray[np.float64],
    mu_logbeta: NDArray[np.float64],
    n_threads: int = 0,
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]: ...
def mace_e_step(
    t_indptr: NDArray[np.int64],
    t_worker: NDArray[np.int32],
    t_label: NDArray[np.int32],
    n_classes: int,
    spam: NDArray[np.float64],
    strat: NDArray[np.float64],
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], float]: ...
def mace_counts(
    w_indptr: NDArray[np.int64],
    w_task: NDArray[np.int32],
    w_label: NDArray[np.int32],
    n_classes: int,
    post: NDArray[np.float64],
    spam: NDArray[np.float64],
    strat: NDArray[np.float64],
    n_threads: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...

# ---------------------------------------------------------------- task types: hollow Gram operator, Lanczos
def hollow_gram_matvec(
    task: NDArray[np.int32],
    worker: NDArray[np.int32],
    values: NDArray[np.float64],
    n_tasks: int,
    n_workers: int,
    u: NDArray[np.float64],
    dense: bool,
    n_threads: int = 0,
) -> NDArray[np.float64]: ...
def spectral_eigs(
    task: NDArray[np.int32],
    worker: NDArray[np.int32],
    values: NDArray[np.float64],
    n_tasks: int,
    n_workers: int,
    k: int,
    dense: bool,
    ncv: int,
    tol: float,
    seed: int,
    n_threads: int = 0,
    n_vec: int = -1,
    min_gap: float = 0.0,
) -> tuple[Any, ...]: ...
def lanczos_dense(
    A: NDArray[np.float64], k: int, ncv: int, tol: float, seed: int, n_threads: int = 0
) -> tuple[NDArray[np.float64], NDArray[np.float64], int, bool, float]: ...

# ---------------------------------------------------------------- twolayer (distillation)
def twolayer_train(
    X: NDArray[np.floating],
    n_train: int,
    W: NDArray[np.floating],
    W0: NDArray[np.floating],
    a: NDArray[np.floating],
    offsets: NDArray[np.int64],
    loss_type: NDArray[np.int32],
    targets: NDArray[np.floating],
    y: NDArray[np.floating],
    lr: NDArray[np.float64],
    radius: NDArray[np.float64],
    n_steps: int,
    n_threads: int = 0,
    *,
    skip_inactive: bool = True,
    return_skip_stats: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | tuple[NDArray[np.float64], NDArray[np.float64], float]: ...

# ---------------------------------------------------------------- mmsr
def mmsr_pairs(
    task_indptr: NDArray[np.int64],
    task_worker: NDArray[np.int32],
    task_label: NDArray[np.int32],
    worker_indptr: NDArray[np.int64],
    worker_task: NDArray[np.int32],
    worker_label: NDArray[np.int32],
    n_tasks: int,
    n_workers: int,
) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int32], NDArray[np.int32]]: ...
def mmsr_iterate(
    indptr: NDArray[np.int64],
    idx: NDArray[np.int32],
    x: NDArray[np.float64],
    u: NDArray[np.float64],
    v: NDArray[np.float64],
    F: int,
    n_tasks: int,
    n_iter: int,
    tol: float,
    n_threads: int = 0,
) -> tuple[int, list[float]]: ...
def class_counts(
    worker_indptr: NDArray[np.int64],
    worker_task: NDArray[np.int32],
    worker_label: NDArray[np.int32],
    n_tasks: int,
    n_workers: int,
    post: NDArray[np.float64],
    n_threads: int = 0,
) -> NDArray[np.float64]: ...

# ---------------------------------------------------------------- crowd (distributed EM)
def em_partition_stats(
    task_indptr: NDArray[np.int64],
    code: NDArray[np.int32],
    n_workers: int,
    log_conf: NDArray[np.float64] | None,
    log_prior: NDArray[np.float64] | None,
    post: NDArray[np.float64],
    count: bool = True,
    n_threads: int = 0,
    vote_start: bool = False,
) -> tuple[NDArray[np.float64] | None, NDArray[np.float64] | None, float]: ...
