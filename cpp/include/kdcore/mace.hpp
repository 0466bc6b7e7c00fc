// kdcore/mace.hpp: MACE's E-step and expected counts (Hovy, Berg-Kirkpatrick,
// Vaswani & Hovy, "Learning whom to trust with MACE", NAACL 2013; docs/maths.md B.5).
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

// Hovy, Berg-Kirkpatrick, Vaswani & Hovy, "Learning whom to trust with MACE"
// (NAACL 2013). Worker i spams with probability s0_i = spam[i, 0] (then answers
// a ~ xi_i = strat[i, :]) and knows with s1_i = spam[i, 1] (then answers the
// truth): P(a | y = k) = s0_i xi_ia + s1_i [a == k]. Uniform prior on y.
//
// E-step: log m_jk = -log K + sum_{e in j} log(s0 xi_{l_e} + s1 [l_e == k])
// (the argument floored at 1e-300 so a zero never gives -inf - -inf), q_j =
// softmax(log m_j) with a max shift. Both logs depend only on (worker, answer)
// and are tabulated first (W x K), so the answer pass has no log. Writes post (n_tasks x K), returns the log
// marginal likelihood sum_j log sum_k m_jk.
double mace_e_step(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, code_t n_tasks,
                   code_t n_workers, int K, const double* spam, const double* strat, double* post, int n_threads);

// Expected counts for the M-step, per answer e = (i, j, a) with q = post[j, a],
// g = s0 xi_a, d = g + s1:
//   P(spam | data)  = (1 - q) + q g / d,     P(know | data) = q s1 / d
// (they sum to one; d == 0 gives spam = 1). Accumulated worker by worker
// (no atomics): know_counts[i] = (sum spam, sum know), strat_counts[i, a] += P(spam).
void mace_counts(const index_t* w_indptr, const code_t* w_task, const code_t* w_label, code_t n_workers, int K,
                 const double* post, const double* spam, const double* strat, double* know_counts,
                 double* strat_counts, int n_threads);

}  // namespace kdcore
