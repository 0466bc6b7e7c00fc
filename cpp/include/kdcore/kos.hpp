// kdcore/kos.hpp: KOS message passing (Karger, Oh & Shah, "Iterative learning
// for reliable crowdsourcing systems", NIPS 2011; docs/maths.md B.5).
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

// Karger, Oh & Shah, "Iterative learning for reliable crowdsourcing systems"
// (NIPS 2011), Algorithm 1, on the bipartite task-worker graph with A_e = +-1:
//   x_{j->i} = sum_{i' in d(j) \ i} A_{i'j} y_{i'->j}        (task update)
//   y_{i->j} = sum_{j' in d(i) \ j} A_{ij'} x_{j'->i}        (worker update)
// each computed as (full sum) - (own term). Messages live in task-major edge
// order and every pass streams that order: the worker sums T_i = sum_e A_e x_e
// go to a private W-vector per thread (reduced after the region), then
// y_e = T_{i(e)} - A_e x_e; no random access over the edges. Both updates are
// linear, so dividing every message vector by its root mean square after each
// half-step changes no sign (the decision) but keeps magnitudes at O(1): no
// overflow however many iterations.
// y (n_edges) holds the initial worker messages on entry and the final ones on
// exit; score[j] = sum_{i in d(j)} A_ij y_{i->j} (sign = the KOS label).
// check_interrupt() runs between iterations.
void kos_messages(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, code_t n_tasks,
                  code_t n_workers, int n_iter, double* y, double* score, int n_threads);

}  // namespace kdcore
