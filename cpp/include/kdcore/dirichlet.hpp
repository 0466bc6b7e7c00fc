// kdcore/dirichlet.hpp: empirical-Bayes Dirichlet pseudo-counts for confusion rows
// (the pooled and community priors of kdcore.crowd._bayesian; docs/maths.md B.5).
//
// Every worker w has expected answer counts c[w, k, l] (W x K x K: true class k,
// answer l; real-valued, the posterior expectation of the integer counts) and
// n[w, k] = sum_l c[w, k, l]. M priors A[m] (K x K pseudo-counts) share them, worker
// w weighing u[m, w] in prior m. Each row a = A[m, k, :] maximises the weighted
// Dirichlet-multinomial evidence sum_w u[m, w] L_wk(a), and Minka's fixed point
// ("Estimating a Dirichlet distribution", 2000, for the Polya distribution)
//
//   a_l <- a_l * S_l / S0,  S_l = sum_w u (psi(c[w,k,l] + a_l)) - (sum_w u) psi(a_l),
//                           S0  = sum_w u (psi(n[w,k] + a.))    - (sum_w u) psi(a.),  a. = sum_l a_l
//
// never lowers it. A row with S0 <= 0 (no weighted counts) stays; the result is
// clipped to [a_min, a_max]. psi is the digamma function, by the recurrence
// psi(x) = psi(x + 1) - 1/x up to x >= 6 and the asymptotic series there (absolute
// error < 2e-13); a zero count's term psi(a) is computed once per step, not per worker. The sums over workers run in parallel with per-thread partials
// added in thread order (bit-identical for a given thread count).
#pragma once

#include "kdcore/parallel.hpp"

namespace kdcore {

// psi(x) for x > 0 (see above).
double digamma(double x) noexcept;

// Up to n_steps steps of the fixed point on A (M x K x K, updated in place), stopping
// after the first step whose largest relative change |new - old| / old is below tol.
// counts: W x K x K; weights: M x W (>= 0). Returns the number of steps run.
int dirichlet_fixed_point(const double* counts, code_t n_workers, int K, int M, const double* weights, double* A,
                          int n_steps, double tol, double a_min, double a_max, int n_threads);

}  // namespace kdcore
