// MACE's E-step and expected counts; the equations are in kdcore/mace.hpp.
#include "kdcore/mace.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "reduce.hpp"

namespace kdcore {

double mace_e_step(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, code_t n_tasks,
                   code_t n_workers, int K, const double* spam, const double* strat, double* post, int n_threads) {
    const int nt = threads_for(n_threads, t_indptr[n_tasks]);
    const double log_k = std::log(static_cast<double>(K));
    constexpr double kFloor = 1e-300;
    // The two logs depend only on (worker, answer): tabulate them once (W x K),
    // so the pass over the answers does no transcendental work.
    const std::size_t WK = static_cast<std::size_t>(n_workers) * static_cast<std::size_t>(K);
    std::vector<double> lg(WK), lboost(WK);
    for (std::size_t c = 0; c < WK; ++c) {
        const std::size_t i = c / static_cast<std::size_t>(K);
        const double g = spam[2 * i] * strat[c];
        lg[c] = std::log(std::max(g, kFloor));
        lboost[c] = std::log(std::max(g + spam[2 * i + 1], kFloor)) - lg[c];
    }
    std::vector<double> part(static_cast<std::size_t>(nt), 0.0);
    KDCORE_OMP(parallel num_threads(nt))
    {
    double loglik = 0.0;
    KDCORE_OMP(for schedule(static))
    for (code_t j = 0; j < n_tasks; ++j) {
        double* row = post + static_cast<std::size_t>(j) * K;
        double base = -log_k;  // sum of log(s0 xi_a): the term every class gets
        for (int k = 0; k < K; ++k) row[k] = 0.0;
        for (index_t p = t_indptr[j]; p < t_indptr[j + 1]; ++p) {
            const std::size_t c = static_cast<std::size_t>(t_worker[p]) * K + t_label[p];
            base += lg[c];
            row[t_label[p]] += lboost[c];
        }
        for (int k = 0; k < K; ++k) row[k] += base;
        loglik += normalise_log_row(row, K);
    }
    part[static_cast<std::size_t>(thread_num())] = loglik;
    }
    return sum_in_order(part);
}

void mace_counts(const index_t* w_indptr, const code_t* w_task, const code_t* w_label, code_t n_workers, int K,
                 const double* post, const double* spam, const double* strat, double* know_counts,
                 double* strat_counts, int n_threads) {
    [[maybe_unused]] const int nt = threads_for(n_threads, w_indptr[n_workers]);
    KDCORE_OMP(parallel for schedule(dynamic, 16) num_threads(nt))
    for (code_t i = 0; i < n_workers; ++i) {
        const double s0 = spam[2 * static_cast<std::size_t>(i)], s1 = spam[2 * static_cast<std::size_t>(i) + 1];
        double* sc = strat_counts + static_cast<std::size_t>(i) * K;
        const double* xi = strat + static_cast<std::size_t>(i) * K;
        for (int k = 0; k < K; ++k) sc[k] = 0.0;
        double n_spam = 0.0, n_know = 0.0;
        for (index_t p = w_indptr[i]; p < w_indptr[i + 1]; ++p) {
            const code_t a = w_label[p];
            const double q = post[static_cast<std::size_t>(w_task[p]) * K + a];
            const double g = s0 * xi[a];
            const double d = g + s1;
            double ps = 1.0, pk = 0.0;
            if (d > 0) {
                ps = (1.0 - q) + q * g / d;
                pk = q * s1 / d;
            }
            sc[a] += ps;
            n_spam += ps;
            n_know += pk;
        }
        know_counts[2 * static_cast<std::size_t>(i)] = n_spam;
        know_counts[2 * static_cast<std::size_t>(i) + 1] = n_know;
    }
}

}  // namespace kdcore
