// KOS message passing; the equations are in kdcore/kos.hpp.
#include "kdcore/kos.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "reduce.hpp"

namespace kdcore {
namespace {

void scale(double* v, index_t n, double f, int nt) {
    KDCORE_OMP(parallel for schedule(static) num_threads(nt))
    for (index_t e = 0; e < n; ++e) v[e] *= f;
}

}  // namespace

void kos_messages(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, code_t n_tasks,
                  code_t n_workers, int n_iter, double* y, double* score, int n_threads) {
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

}  // namespace kdcore
