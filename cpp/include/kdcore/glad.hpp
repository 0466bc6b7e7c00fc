// kdcore/glad.hpp: GLAD's E-step and M-step objective and gradient (Whitehill
// et al., "Whose vote should count more", NIPS 2009; docs/maths.md B.5).
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

// Whitehill et al., "Whose vote should count more" (NIPS 2009), in crowd-kit's
// multi-class form: worker i (ability alpha_i) answers task j (b_j = log beta_j,
// so beta_j = exp(b_j) > 0 is the inverse difficulty) correctly with
// probability sigma(s), s = alpha_i exp(b_j); a wrong answer is uniform over the
// other K - 1 classes.
//
// E-step: log q_jk = log prior_k + sum_{e in j} [l_e == k] log sigma(s_e)
//                    + [l_e != k] (log sigma(-s_e) - log(K - 1)),
// normalised with a max shift (log-sum-exp). log sigma(x) = -softplus(-x),
// softplus(x) = max(x, 0) + log1p(exp(-|x|)) (no overflow). Writes post
// (n_tasks x K) and returns sum_j log sum_k exp(log q_jk) (log-likelihood).
double glad_e_step(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, code_t n_tasks, int K,
                   const double* alpha, const double* logbeta, const double* log_prior, double* post, int n_threads);

// M-step objective and its gradient (the expected complete log-likelihood with
// N(mu, 1) priors on alpha_i and b_j, as crowd-kit's GLAD):
//   Q = sum_e [p_e log sigma(s_e) + (1 - p_e)(log sigma(-s_e) - log(K-1))]
//       - sum_i (alpha_i - mu_a_i)^2 / 2 - sum_j (b_j - mu_b_j)^2 / 2 - (W + T) log(2 pi) / 2,
// p_e = post[j, l_e] (the posterior of the answered label; the sum over k of the
// posterior-weighted terms collapses to this). Gradient:
//   dQ/dalpha_i = sum_{e in i} (p_e - sigma(s_e)) exp(b_j) - (alpha_i - mu_a_i)
//   dQ/db_j     = sum_{e in j} (p_e - sigma(s_e)) s_e     - (b_j - mu_b_j)
// in one task-major pass (the alpha sums go to a private W-vector per thread,
// reduced after the region), one exp and one log1p per answer.
// Returns Q, writes grad_alpha (W) and grad_logbeta (T).
double glad_objective(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, code_t n_tasks,
                      code_t n_workers, int K,
                      const double* post, const double* alpha, const double* logbeta, const double* mu_alpha,
                      const double* mu_logbeta, double* grad_alpha, double* grad_logbeta, int n_threads);

}  // namespace kdcore
