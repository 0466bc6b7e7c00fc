// kdcore/twolayer.hpp: full-batch projected gradient descent for a BATCH of
// two-layer ReLU networks on the same data (Mandal, Lin, Srikant, "A Theoretical
// Analysis of Soft-Label vs Hard-Label Training in Neural Networks", L4DC 2025;
// docs/maths.md A.1-A.3).
//
// Network k has m_k neurons, rows [offsets[k], offsets[k+1]) of W (M x d), fixed
// signs a, centres W0:
//   f_k(x) = (1/sqrt(m_k)) sum_j a_j relu(W_j . x)
//   soft (loss_type 0): l = KL(p || sigmoid(f))  = p ln p + (1-p) ln(1-p) + p softplus(-f) + (1-p) softplus(f)
//                       dl/df = sigmoid(f) - p
//   hard (loss_type 1): l = ln(1 + exp(-y f))     = softplus(-y f),   dl/df = -y sigmoid(-y f)
//   grad_j = (1/n_train) sum_{i < n_train} dl_i/df (a_j/sqrt(m_k)) 1(W_j . x_i > 0) x_i
//   W_j <- W_j - lr_k grad_j;  W_j <- W0_j + (W_j - W0_j) min(1, (B_k/sqrt(m_k)) / ||W_j - W0_j||)
// (no projection when radius[k] <= 0). Loss and error 1(y f <= 0) are those of
// W before the update; rows i >= n_train are an evaluation set (forward only).
//
// Numerics: softplus(z) = max(z,0) + log1p(exp(-|z|)) and sigmoid from the same
// exp(-|z|), so no overflow for any f; f, the losses and their sums are accumulated in double.
//
// Contract of twolayer_train (below):
//   inputs   X (n x d, row-major), rows [0, n_train) the training set, the rest an
//            evaluation set (forward only); W, W0 (M x d) and a (M) for all networks,
//            network k owning rows [offsets[k], offsets[k+1]) (offsets strictly
//            increasing from 0 to M); per network loss_type (0 soft, 1 hard), targets
//            (one row of n: p for soft, y in {-1,+1} for hard), lr, radius; y (n) the
//            labels in {-1,+1} for the error; n_steps >= 0.
//   outputs  W after n_steps projected steps (in place); hist (K x n_steps x 4) the
//            train loss, train error, eval loss and eval error of W before each step;
//            final_vals (K x 4) the same at W(n_steps). Eval entries are NaN without
//            eval rows. skip_stats (may be null): [0] the (row, 4-neuron tile) forward
//            entries skipped as certified inactive, [1] all of them, over the
//            n_steps + 1 passes.
//   guarantees
//     - Skipping is exact: skip_inactive = true (rows whose pre-activations are proved
//       <= 0 on a neuron tile are not computed) gives results bit-identical to
//       skip_inactive = false; the proof is in twolayer.cpp (certify_rows).
//     - A network's results do not depend on the other networks of the batch (each
//       starts at an even position of its group, so no pair of neurons straddles two
//       networks).
//     - Deterministic for a given thread count and ISA variant (parallel.hpp); sums
//       across threads are added in thread order.
//     - The arrays are trusted (validated input, see responses.hpp); the scalar
//       arguments n, d, K, n_train and n_steps are checked (std::invalid_argument).
//     - check_interrupt() runs between steps.
// The implementation plan (groups, tiles, prefetch, certificates, twins) is at the top
// of twolayer.cpp.
#pragma once

#include <cstdint>

#include "kdcore/parallel.hpp"

namespace kdcore {

// Projected gradient descent for the batch (the contract above).
template <class T>
void twolayer_train(const T* X, index_t n, index_t n_train, index_t d, T* W, const T* W0, const T* a,
                    const index_t* offsets, index_t K, const std::int32_t* loss_type, const T* targets, const T* y,
                    const double* lr, const double* radius, index_t n_steps, int n_threads, double* hist,
                    double* final_vals, bool skip_inactive = true, double* skip_stats = nullptr);

extern template void twolayer_train<float>(const float*, index_t, index_t, index_t, float*, const float*, const float*,
                                           const index_t*, index_t, const std::int32_t*, const float*, const float*,
                                           const double*, const double*, index_t, int, double*, double*, bool, double*);
extern template void twolayer_train<double>(const double*, index_t, index_t, index_t, double*, const double*,
                                            const double*, const index_t*, index_t, const std::int32_t*,
                                            const double*, const double*, const double*, const double*, index_t, int,
                                            double*, double*, bool, double*);

}  // namespace kdcore
