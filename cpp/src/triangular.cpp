// Triangular Estimation's pairwise agreement moments; the equations are in kdcore/triangular.hpp.
#include "kdcore/triangular.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "reduce.hpp"

namespace kdcore {

void te_pairwise_agreement(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, code_t n_tasks,
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

}  // namespace kdcore
