// Empirical-Bayes Dirichlet pseudo-counts; the equations are in kdcore/dirichlet.hpp.
#include "kdcore/dirichlet.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kdcore {

double digamma(double x) noexcept {
    // below 6: psi(x) = psi(x + 6) - sum_{i<6} 1/(x + i), the sum kept as one fraction a/b
    // (no cancellation: every term is positive), so one division instead of six
    double shift = 0.0;
    if (x < 6.0) {
        double a = 1.0, b = x;
        for (int i = 1; i < 6; ++i) {
            const double xi = x + i;
            a = a * xi + b;
            b *= xi;
        }
        shift = a / b;
        x += 6.0;
    }
    // psi(x) ~ log x - 1/(2x) - sum_n B_2n / (2n x^2n), n = 1..7 (next term < 2e-13 at x = 6)
    const double ix = 1.0 / x, ix2 = ix * ix;
    const double series =
        ix2 * (1.0 / 12.0 -
               ix2 * (1.0 / 120.0 -
                      ix2 * (1.0 / 252.0 -
                             ix2 * (1.0 / 240.0 - ix2 * (1.0 / 132.0 - ix2 * (691.0 / 32760.0 - ix2 / 12.0))))));
    return std::log(x) - 0.5 * ix - series - shift;
}

int dirichlet_fixed_point(const double* counts, code_t n_workers, int K, int M, const double* weights, double* A,
                          int n_steps, double tol, double a_min, double a_max, int n_threads) {
    const std::size_t W = static_cast<std::size_t>(n_workers), KK = static_cast<std::size_t>(K) * K;
    const std::size_t n_num = static_cast<std::size_t>(M) * KK, n_den = static_cast<std::size_t>(M) * K;
    // a digamma costs about what ten answers of an EM pass do: weigh the work so (units of threads_for)
    const int nt = threads_for(n_threads, static_cast<index_t>(W * (n_num + n_den) * 10));
    std::vector<double> n_row(W * K, 0.0);
    for (std::size_t w = 0; w < W; ++w)
        for (int k = 0; k < K; ++k)
            for (int l = 0; l < K; ++l) n_row[w * K + k] += counts[w * KK + k * K + l];
    std::vector<double> wsum(M, 0.0);
    for (int m = 0; m < M; ++m)
        for (std::size_t w = 0; w < W; ++w) wsum[m] += weights[m * W + w];
    // per-thread partial sums sum_w u psi(c + a) (M x K x K) and sum_w u psi(n + a.) (M x K)
    std::vector<double> part(static_cast<std::size_t>(nt) * (n_num + n_den));
    std::vector<double> a_row(n_den), next(n_num), num_sum(static_cast<std::size_t>(K));
    std::vector<double> psi_a(n_num), psi_row(n_den);  // psi(a) and psi(a.): the terms of zero counts
    int steps = 0;
    while (steps < n_steps) {
        ++steps;
        for (int m = 0; m < M; ++m)
            for (int k = 0; k < K; ++k) {
                double s = 0.0;
                for (int l = 0; l < K; ++l) s += A[m * KK + k * K + l];
                a_row[m * K + k] = s;
                psi_row[m * K + k] = digamma(s);
                for (int l = 0; l < K; ++l) psi_a[m * KK + k * K + l] = digamma(A[m * KK + k * K + l]);
            }
        std::fill(part.begin(), part.end(), 0.0);
        KDCORE_OMP(parallel num_threads(nt))
        {
            double* num = part.data() + static_cast<std::size_t>(thread_num()) * (n_num + n_den);
            double* den = num + n_num;
            KDCORE_OMP(for schedule(static))
            for (code_t wi = 0; wi < n_workers; ++wi) {
                const std::size_t w = static_cast<std::size_t>(wi);
                for (int m = 0; m < M; ++m) {
                    const double u = weights[m * W + w];
                    if (u == 0.0) continue;
                    for (int k = 0; k < K; ++k) {
                        const std::size_t r = static_cast<std::size_t>(m) * KK + static_cast<std::size_t>(k) * K;
                        const double* cw = counts + w * KK + static_cast<std::size_t>(k) * K;
                        for (int l = 0; l < K; ++l)
                            num[r + l] += u * (cw[l] > 0.0 ? digamma(cw[l] + A[r + l]) : psi_a[r + l]);
                        const double nk = n_row[w * K + k];
                        den[m * K + k] += u * (nk > 0.0 ? digamma(nk + a_row[m * K + k]) : psi_row[m * K + k]);
                    }
                }
            }
        }
        double change = 0.0;
        for (int m = 0; m < M; ++m)
            for (int k = 0; k < K; ++k) {
                double den_sum = 0.0;
                for (int l = 0; l < K; ++l) num_sum[l] = 0.0;
                for (int t = 0; t < nt; ++t) {
                    const double* p = part.data() + static_cast<std::size_t>(t) * (n_num + n_den);
                    for (int l = 0; l < K; ++l) num_sum[l] += p[m * KK + k * K + l];
                    den_sum += p[n_num + m * K + k];
                }
                const double s0 = den_sum - wsum[m] * psi_row[m * K + k];
                for (int l = 0; l < K; ++l) {
                    const std::size_t c = static_cast<std::size_t>(m) * KK + static_cast<std::size_t>(k) * K + l;
                    double v = A[c];
                    if (s0 > 0) v = A[c] * (num_sum[l] - wsum[m] * psi_a[c]) / s0;
                    v = std::min(std::max(v, a_min), a_max);
                    change = std::max(change, std::abs(v - A[c]) / A[c]);
                    next[c] = v;
                }
            }
        std::copy(next.begin(), next.end(), A);
        if (change < tol) break;
    }
    return steps;
}

}  // namespace kdcore
