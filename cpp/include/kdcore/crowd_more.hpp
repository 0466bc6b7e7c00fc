// kdcore/crowd_more.hpp: kernels of the "more" crowd aggregators: Triangular
// Estimation's pairwise agreement moments (Bonald & Combes, NIPS 2017), KOS
// message passing (Karger, Oh & Shah, NIPS 2011), GLAD's E-step and M-step
// objective/gradient (Whitehill et al., NIPS 2009) and MACE's E-step and
// expected counts (Hovy et al., NAACL 2013).
//
// All kernels stream over the two compressed views of kdcore.crowd.Responses
// (task-major: t_indptr/t_worker/t_label; worker-major: w_indptr/w_task/w_label;
// see responses.hpp). No dense tasks x workers matrix is formed. Python validates
// every code range first; the kernels trust them. Every parallel kernel takes
// n_threads (0 = the default policy of parallel.hpp) and never lets an
// exception leave an OpenMP region (nothing inside the regions allocates).
#pragma once

#include "kdcore/parallel.hpp"

namespace kdcore {
namespace crowd_more {

// ---- Triangular Estimation: pairwise agreement moments ----------------------
// Binary labels coded 0/1 are read as X = -1/+1. For each pair of workers (a, b):
//   sum[a, b]   = sum over tasks j answered by both of X_aj X_bj,
//   count[a, b] = number of such tasks,
// so C_ab = sum/count estimates v_a v_b (v = 2 r - 1). Cost O(sum_j n_j^2) time,
// O(n_threads * W^2) memory (one private W x W pair of buffers per thread, then
// a parallel reduction over cells). Diagonal entries are left at 0.
// sum and count are W x W row-major, overwritten.
void pairwise_agreement(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, code_t n_tasks,
                        code_t n_workers, double* sum, double* count, int n_threads);

// ---- KOS message passing --------------------------------------------------------
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
void kos(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, code_t n_tasks, code_t n_workers,
         int n_iter, double* y, double* score, int n_threads);

// ---- GLAD ---------------------------------------------------------------------
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

// ---- MACE -------------------------------------------------------------------------
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

}  // namespace crowd_more
}  // namespace kdcore
