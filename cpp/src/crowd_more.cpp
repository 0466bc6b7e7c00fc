// Kernels of kdcore's "more" crowd aggregators; the equations are in
// kdcore/crowd_more.hpp next to each declaration.
#include "kdcore/crowd_more.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kdcore {
namespace crowd_more {

namespace {

// Sums in this file that cross threads are kept per thread and added in thread
// order afterwards, never with an OpenMP reduction (which adds the partials in
// arrival order): the same thread count gives bit-identical results.
inline double sum_in_order(const std::vector<double>& part) {
    double s = 0.0;
    for (double v : part) s += v;
    return s;
}

constexpr double kLog2Pi = 1.8378770664093454835606594728112;  // log(2 pi)


// In-place log-sum-exp normalisation of one row: returns log sum exp(row) and
// turns row into softmax(row) (max shift, so no overflow or 0/0).
inline double normalise_log_row(double* row, int K) {
    double m = row[0];
    for (int k = 1; k < K; ++k) m = std::max(m, row[k]);
    double s = 0.0;
    for (int k = 0; k < K; ++k) {
        row[k] = std::exp(row[k] - m);
        s += row[k];
    }
    for (int k = 0; k < K; ++k) row[k] /= s;
    return m + std::log(s);
}

void scale(double* v, index_t n, double f, int nt) {
    KDCORE_OMP(parallel for schedule(static) num_threads(nt))
    for (index_t e = 0; e < n; ++e) v[e] *= f;
}

}  // namespace

// ============================================================================ Triangular Estimation
void pairwise_agreement(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, code_t n_tasks,
                        code_t n_workers, double* sum, double* count, int n_threads) {
    const int nt = threads_for(n_threads, t_indptr[n_tasks]);
    const std::size_t W = static_cast<std::size_t>(n_workers);
    const std::size_t cells = W * W;
    // Thread 0 writes straight into the outputs; the others get private buffers.
    std::vector<double> priv(2 * cells * static_cast<std::size_t>(std::max(nt - 1, 0)), 0.0);
    std::fill(sum, sum + cells, 0.0);
    std::fill(count, count + cells, 0.0);
    int used = 1;
    KDCORE_OMP(parallel num_threads(nt))
    {
        const int tid = thread_num(), nthr = team_size();
        KDCORE_OMP(single)
        used = nthr;
        double* S = tid == 0 ? sum : priv.data() + 2 * cells * static_cast<std::size_t>(tid - 1);
        double* C = tid == 0 ? count : S + cells;
        KDCORE_OMP(for schedule(static))
        for (code_t j = 0; j < n_tasks; ++j) {
            const index_t lo = t_indptr[j], hi = t_indptr[j + 1];
            for (index_t p = lo; p < hi; ++p) {
                const std::size_t a = static_cast<std::size_t>(t_worker[p]);
                const double xa = t_label[p] == 1 ? 1.0 : -1.0;
                for (index_t q = p + 1; q < hi; ++q) {
                    const std::size_t b = static_cast<std::size_t>(t_worker[q]);
                    const double xab = xa * (t_label[q] == 1 ? 1.0 : -1.0);
                    S[a * W + b] += xab;
                    S[b * W + a] += xab;
                    C[a * W + b] += 1.0;
                    C[b * W + a] += 1.0;
                }
            }
        }
        (void)nthr;
    }
    if (used > 1) {
        const index_t n_cells = static_cast<index_t>(cells);
        KDCORE_OMP(parallel for schedule(static) num_threads(nt))
        for (index_t c = 0; c < n_cells; ++c) {
            double s = sum[c], n = count[c];
            for (int t = 1; t < used; ++t) {
                const double* S = priv.data() + 2 * cells * static_cast<std::size_t>(t - 1);
                s += S[c];
                n += S[cells + c];
            }
            sum[c] = s;
            count[c] = n;
        }
    }
}

// ============================================================================ KOS
void kos(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, code_t n_tasks, code_t n_workers,
         int n_iter, double* y, double* score, int n_threads) {
    // Two streaming passes per iteration. The normalisations are carried as
    // scalars: pass A reads y * fy (fy = 1/rms(y) of the previous pass B), writes
    // the raw x and accumulates sum x^2 and the worker sums T_i = sum A x; pass B
    // writes y = (T_i - A x) / rms(x) and accumulates sum y^2. y is scaled once
    // more at the end, so it leaves with unit RMS.
    const index_t n_edges = t_indptr[n_tasks];
    const int nt = threads_for(n_threads, n_edges);
    const std::size_t W = static_cast<std::size_t>(n_workers);
    const double n_d = n_edges > 0 ? static_cast<double>(n_edges) : 1.0;
    std::vector<double> x(static_cast<std::size_t>(n_edges), 0.0);
    std::vector<double> priv(W * static_cast<std::size_t>(nt), 0.0), wsum(W, 0.0);
    auto sgn = [&](index_t p) { return t_label[p] == 1 ? 1.0 : -1.0; };
    double fy = 1.0;
    for (int it = 0; it < n_iter; ++it) {
        check_interrupt();
        std::fill(priv.begin(), priv.end(), 0.0);
        int used = 1;
        std::vector<double> ssx_part(static_cast<std::size_t>(nt), 0.0);
        KDCORE_OMP(parallel num_threads(nt))
        {
            double ssx = 0.0;
            const int tid = thread_num();
            KDCORE_OMP(single)
            used = team_size();
            double* T = priv.data() + W * static_cast<std::size_t>(tid);
            KDCORE_OMP(for schedule(static))
            for (code_t j = 0; j < n_tasks; ++j) {
                double s = 0.0;
                for (index_t p = t_indptr[j]; p < t_indptr[j + 1]; ++p) s += sgn(p) * y[p];
                for (index_t p = t_indptr[j]; p < t_indptr[j + 1]; ++p) {
                    const double xe = (s - sgn(p) * y[p]) * fy;
                    x[p] = xe;
                    ssx += xe * xe;
                    T[t_worker[p]] += sgn(p) * xe;
                }
            }
            ssx_part[static_cast<std::size_t>(tid)] = ssx;
        }
        const double ssx = sum_in_order(ssx_part);
        for (std::size_t i = 0; i < W; ++i) {
            double t = 0.0;
            for (int k = 0; k < used; ++k) t += priv[W * static_cast<std::size_t>(k) + i];
            wsum[i] = t;
        }
        const double rx = std::sqrt(ssx / n_d);
        const double fx = rx > 0 ? 1.0 / rx : 1.0;
        std::vector<double> ssy_part(static_cast<std::size_t>(nt), 0.0);
        KDCORE_OMP(parallel num_threads(nt))
        {
            double ssy = 0.0;
            KDCORE_OMP(for schedule(static))
            for (index_t p = 0; p < n_edges; ++p) {
                const double ye = (wsum[t_worker[p]] - sgn(p) * x[p]) * fx;
                y[p] = ye;
                ssy += ye * ye;
            }
            ssy_part[static_cast<std::size_t>(thread_num())] = ssy;
        }
        const double ssy = sum_in_order(ssy_part);
        const double ry = std::sqrt(ssy / n_d);
        fy = ry > 0 ? 1.0 / ry : 1.0;
    }
    if (fy != 1.0) scale(y, n_edges, fy, nt);
    KDCORE_OMP(parallel for schedule(static) num_threads(nt))
    for (code_t j = 0; j < n_tasks; ++j) {
        double s = 0.0;
        for (index_t p = t_indptr[j]; p < t_indptr[j + 1]; ++p) s += sgn(p) * y[p];
        score[j] = s;
    }
}

// ============================================================================ GLAD
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

// ============================================================================ MACE
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

}  // namespace crowd_more
}  // namespace kdcore
