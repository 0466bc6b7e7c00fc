// kdcore/triangular.hpp: Triangular Estimation's pairwise agreement moments
// (Bonald & Combes, "A minimax optimal algorithm for crowdsourcing", NIPS 2017;
// docs/maths.md B.4).
//
// Input: the compressed views of kdcore.crowd.Responses (responses.hpp), task-major
// (t_indptr / t_worker / t_label) or worker-major (w_indptr / w_task / w_label), with
// every code in range: the kernels trust validated input (see "Validated input" in
// responses.hpp). Every parallel kernel takes n_threads (0 = the policy of
// parallel.hpp); cross-thread sums are added in thread order (bit-identical for a
// given thread count); nothing inside a parallel region allocates or throws.
#pragma once

#include "kdcore/parallel.hpp"

namespace kdcore {

// Binary labels coded 0/1 are read as X = -1/+1. For each pair of workers (a, b):
//   sum[a, b]   = sum over tasks j answered by both of X_aj X_bj,
//   count[a, b] = number of such tasks,
// so C_ab = sum/count estimates v_a v_b (v = 2 r - 1). Cost O(sum_j n_j^2) time,
// O(n_threads * W^2) memory (one private W x W pair of buffers per thread, then
// a parallel reduction over cells). Diagonal entries are left at 0.
// sum and count are W x W row-major, overwritten.
void te_pairwise_agreement(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, code_t n_tasks,
                           code_t n_workers, double* sum, double* count, int n_threads);

}  // namespace kdcore
