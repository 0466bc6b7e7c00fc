// kdcore/lanczos.hpp: top eigenpairs of an implicit symmetric operator (Lanczos with
// full reorthogonalisation), and cyclic Jacobi for the small dense problems it leaves.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "kdcore/parallel.hpp"

namespace kdcore {

struct EigResult {
    std::vector<double> values;   // k eigenvalues, largest first
    std::vector<double> vectors;  // d x k row-major, orthonormal columns
    int n_matvec = 0;
    bool converged = false;
    double max_residual = 0.0;    // max_i |A v_i - lambda_i v_i| (Ritz estimate)
    // With n_vec < k: the relative gap (theta_nv - theta_nv+1) / |theta_nv| between the last wanted
    // Ritz value and the next one, its upper bound (theta_nv + r_nv - theta_nv+1) / |theta_nv|, and
    // whether the run stopped because that bound fell below min_gap (the gap is too small to resolve).
    double gap = 0.0;
    double gap_upper = 0.0;
    bool gap_limited = false;
};

// Top-k (largest algebraic) eigenpairs of a symmetric operator of dimension d
// by Lanczos with full reorthogonalisation (two passes of classical
// Gram-Schmidt against the whole basis, so no ghost eigenvalues), Ritz values
// from the tridiagonal matrix by cyclic Jacobi. Stops when every wanted Ritz pair
// has residual beta_m |s_{m,i}| <= tol * max(|theta_1|, tiny), or when the basis
// reaches ncv vectors (then converged = false and the best Ritz pairs are
// returned), or the Krylov space is exhausted (exact). Calls check_interrupt()
// after every product. `matvec(u, out)` must write out = A u.
//
// n_vec (1 <= n_vec <= k; default k): only the first n_vec pairs need tol; pairs n_vec..k-1
// are wanted for their values (an eigengap) and need residual <= sqrt(tol) * scale. With
// min_gap > 0 and n_vec < k the run also stops (converged = false, gap_limited = true) once
// the relative gap between lambda_nv and lambda_nv+1 is provably below min_gap: Ritz values
// only grow with the basis (theta_i <= lambda_i), and lambda_nv <= theta_nv + r_nv (the Ritz
// residual bound, the Krylov space having found the top eigenvalues), so
// (lambda_nv - lambda_nv+1) / lambda_nv <= (theta_nv + r_nv - theta_nv+1) / theta_nv. On a
// near-degenerate spectrum the wanted vectors cannot converge in ncv vectors; this says so early.
// Reference: Golub & Van Loan, Matrix Computations, 4th ed., 10.1-10.3 (Ritz bounds: 10.1.4).
EigResult lanczos_top(const std::function<void(const double*, double*)>& matvec, index_t d, int k, int ncv,
                      double tol, std::uint64_t seed, int n_threads, int n_vec = -1, double min_gap = 0.0);

// Eigen-decomposition of a small dense symmetric matrix (m x m, row-major) by
// cyclic Jacobi: eigenvalues descending into w, eigenvectors as columns of V.
void jacobi_eigh(std::vector<double> A, int m, std::vector<double>& w, std::vector<double>& V);

}  // namespace kdcore
