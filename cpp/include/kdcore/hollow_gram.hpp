// kdcore/hollow_gram.hpp: the hollow task-task Gram operator G of the task-type
// partition, applied without forming G (its top eigenvectors, by lanczos.hpp, split
// the tasks by type).
//
// Model (docs/maths.md B.1-B.3): each answer e = (task j, worker i) carries
// a value vector z_e in R^p (p = 1 for binary answers X_ij in {-1,+1}, possibly
// centred by the worker's label frequency or class-conditional mean; for K > 2
// classes p = K - 1 and z is the class's regular-simplex vertex, so that
// z_a . z_b = 1 when two answers agree and -1/(K-1) when they differ).
// The hollow outer product of task j is F_j = sum_{a != b in task j} (z_a . z_b)
// e_{i_a} e_{i_b}^T, and the task-task matrix is
//     G_jl = <F_j, F_l> = sum_{i != i'} (z_ij . z_i'j)(z_il . z_i'l),  G_jj = 0.
// In matrix form for p = 1: G = (X^T X) o (X^T X) - S^T S with S = X o X, diagonal
// zeroed. G is d x d (d = tasks) and is never formed. Its product with u is
//     (G u)_j = q_j - c_j - g_j u_j,
//     q_j = sum_{a,b in j} (z_a . z_b) M_{i_a i_b},   M = sum_l u_l sum_{a,b in l} (z_a . z_b) e_{i_a} e_{i_b}^T
//           (for p = 1: M = X diag(u) X^T, an n x n matrix, and q_j = x_j^T M x_j),
//     c_j = sum_{a in j} s_a w_{i_a},  w_i = sum_l u_l s_{il},  s_a = |z_a|^2   (the i = i' terms),
//     g_j = sum_{a,b in j} (z_a . z_b)^2 - sum_{a in j} s_a^2                     (the full diagonal).
// Cost of one product: O(sum_j c_j^2) = O(n nnz) with the sparse (task-major)
// kernel, O(n^2 d) with the dense kernel (two blocked dense products, p = 1);
// corrections O(nnz). Memory O(n d) (dense) or O(nnz + n^2) (sparse).
// Sparse kernel without duplicate (worker, task) cells: each task's answers sorted by worker,
// M kept as its upper triangle U (U_ii' for i < i', from the pairs a < b only), so that
//     (G u)_j = 2 sum_{a < b in j} (z_a . z_b) U_{i_a i_b} - g_j u_j
// (the i = i' terms never enter): half the scattered updates and reads, no corrections.
#pragma once

#include <vector>

#include "kdcore/parallel.hpp"

namespace kdcore {

// The implicit operator G above. Build once from the answers, apply many times.
class HollowGram {
public:
    // task[e] < n_tasks and worker[e] < n_workers are dense codes (validated input, see
    // responses.hpp), values is nnz x p row-major.
    // dense = true uses the blocked dense kernel (requires p == 1).
    HollowGram(const code_t* task, const code_t* worker, const double* values, index_t nnz, index_t p,
               code_t n_tasks, code_t n_workers, bool dense);
    ~HollowGram();
    HollowGram(const HollowGram&) = delete;
    HollowGram& operator=(const HollowGram&) = delete;

    index_t dim() const { return d_; }
    bool dense() const { return dense_; }
    // out = G u (length d). Parallel; call from one thread.
    void apply(const double* u, double* out, int n_threads) const;
    // The diagonal g_j of the un-hollowed matrix (for tests and diagnostics).
    const std::vector<double>& full_diagonal() const { return gdiag_; }

private:
    void apply_sparse(const double* u, double* q, int n_threads) const;
    void apply_pairs(const double* u, double* out, int n_threads) const;
    void apply_dense(const double* u, double* q, int n_threads) const;
    bool build_dense_only(const code_t* task, const code_t* worker, const double* values);
    void dense_corrections(const double* u, double* out, int n_threads) const;

    index_t d_, n_, p_, nnz_;
    bool dense_;
    std::vector<index_t> indptr_;   // task-major CSR
    std::vector<code_t> worker_;
    std::vector<double> z_;         // nnz x p, task-major order
    std::vector<double> s_;         // |z|^2 per answer, task-major
    std::vector<double> gdiag_;     // g_j
    bool csr_ = true;               // the CSR above is built (always unless dense without duplicate cells)
    bool pairs_ = false;            // sparse, each task's answers sorted by worker, no duplicate cell
    // dense kernel: X padded to n_pad x d_pad, 64-byte aligned, zeros where unanswered
    index_t n_pad_ = 0, d_pad_ = 0;
    double* xd_ = nullptr;
};

}  // namespace kdcore
