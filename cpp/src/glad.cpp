// GLAD's E-step and M-step objective; the equations are in kdcore/glad.hpp.
#include "kdcore/glad.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "reduce.hpp"

namespace kdcore {
namespace {

constexpr double kLog2Pi = 1.8378770664093454835606594728112;  // log(2 pi)

}  // namespace

double glad_e_step(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, code_t n_tasks, int K,
                   const double* alpha, const double* logbeta, const double* log_prior, double* post, int n_threads) {
    const int nt = threads_for(n_threads, t_indptr[n_tasks]);
    const double log_km1 = std::log(static_cast<double>(K - 1));
    std::vector<double> part(static_cast<std::size_t>(nt), 0.0);
    KDCORE_OMP(parallel num_threads(nt))
    {
    double loglik = 0.0;
    KDCORE_OMP(for schedule(static))
    for (code_t j = 0; j < n_tasks; ++j) {
        double* row = post + static_cast<std::size_t>(j) * K;
        const double beta = std::exp(logbeta[j]);
        double base = 0.0;  // every answer's "wrong" term, added to all classes
        for (int k = 0; k < K; ++k) row[k] = log_prior[k];
        for (index_t p = t_indptr[j]; p < t_indptr[j + 1]; ++p) {
            const double s = alpha[t_worker[p]] * beta;
            const double l = std::log1p(std::exp(-std::fabs(s)));
            const double right = -(std::max(-s, 0.0) + l);          // log sigma(s)
            const double wrong = -(std::max(s, 0.0) + l) - log_km1;  // log sigma(-s) - log(K-1)
            base += wrong;
            row[t_label[p]] += right - wrong;
        }
        for (int k = 0; k < K; ++k) row[k] += base;
        loglik += normalise_log_row(row, K);
    }
    part[static_cast<std::size_t>(thread_num())] = loglik;
    }
    return sum_in_order(part);
}

double glad_objective(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, code_t n_tasks,
                      code_t n_workers, int K,
                      const double* post, const double* alpha, const double* logbeta, const double* mu_alpha,
                      const double* mu_logbeta, double* grad_alpha, double* grad_logbeta, int n_threads) {
    // One task-major pass computes Q, dQ/db_j and dQ/dalpha_i; the alpha gradient is
    // accumulated in a private W-vector per thread and reduced after the region
    // (W is small next to N), so no worker-major pass is needed.
    // Per answer one exp and one log1p: with e = exp(-|s|), l = log1p(e),
    // log sigma(s) = -(max(-s, 0) + l), log sigma(-s) = -(max(s, 0) + l),
    // sigma(s) = 1/(1+e) if s >= 0 else e/(1+e).
    const int nt = threads_for(n_threads, t_indptr[n_tasks]);
    const double log_km1 = std::log(static_cast<double>(K - 1));
    const std::size_t W = static_cast<std::size_t>(n_workers);
    std::vector<double> priv(W * static_cast<std::size_t>(nt), 0.0);
    std::vector<double> q_part(static_cast<std::size_t>(nt), 0.0);
    int used = 1;
    KDCORE_OMP(parallel num_threads(nt))
    {
        double q = 0.0;
        const int tid = thread_num();
        KDCORE_OMP(single)
        used = team_size();
        double* ga = priv.data() + W * static_cast<std::size_t>(tid);
        KDCORE_OMP(for schedule(static))
        for (code_t j = 0; j < n_tasks; ++j) {
            const double beta = std::exp(logbeta[j]);
            const double* pj = post + static_cast<std::size_t>(j) * K;
            double g = 0.0;
            for (index_t p = t_indptr[j]; p < t_indptr[j + 1]; ++p) {
                const code_t i = t_worker[p];
                const double s = alpha[i] * beta;
                const double e = std::exp(-std::fabs(s));
                const double l = std::log1p(e);
                const double log_right = -(std::max(-s, 0.0) + l);
                const double log_wrong = -(std::max(s, 0.0) + l);
                const double sig = s >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
                const double pe = pj[t_label[p]];
                q += pe * log_right + (1.0 - pe) * (log_wrong - log_km1);
                const double resid = pe - sig;
                g += resid * s;
                ga[i] += resid * beta;
            }
            const double d = logbeta[j] - mu_logbeta[j];
            grad_logbeta[j] = g - d;
            q -= 0.5 * d * d;
        }
        q_part[static_cast<std::size_t>(tid)] = q;
    }
    double q = sum_in_order(q_part);
    for (std::size_t i = 0; i < W; ++i) {
        double g = 0.0;
        for (int t = 0; t < used; ++t) g += priv[W * static_cast<std::size_t>(t) + i];
        const double d = alpha[i] - mu_alpha[i];
        grad_alpha[i] = g - d;
        q -= 0.5 * d * d;
    }
    return q - 0.5 * kLog2Pi * (static_cast<double>(n_workers) + static_cast<double>(n_tasks));
}

}  // namespace kdcore
