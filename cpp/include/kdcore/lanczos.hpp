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
};

// Top-k (largest algebraic) eigenpairs of a symmetric operator of dimension d
// by Lanczos with full reorthogonalisation (two passes of classical
// Gram-Schmidt against the whole basis, so no ghost eigenvalues), Ritz values
// from the tridiagonal matrix by cyclic Jacobi. Stops when every wanted Ritz pair
// has residual beta_m |s_{m,i}| <= tol * max(|theta_1|, tiny), or when the basis
// reaches ncv vectors (then converged = false and the best Ritz pairs are
// returned), or the Krylov space is exhausted (exact). Calls check_interrupt()
// after every product. `matvec(u, out)` must write out = A u.
// Reference: Golub & Van Loan, Matrix Computations, 4th ed., 10.1-10.3.
EigResult lanczos_top(const std::function<void(const double*, double*)>& matvec, index_t d, int k, int ncv,
                      double tol, std::uint64_t seed, int n_threads);

// Eigen-decomposition of a small dense symmetric matrix (m x m, row-major) by
// cyclic Jacobi: eigenvalues descending into w, eigenvectors as columns of V.
void jacobi_eigh(std::vector<double> A, int m, std::vector<double>& w, std::vector<double>& V);

}  // namespace kdcore
