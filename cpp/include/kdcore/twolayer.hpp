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
// Numerics: softplus(z) = max(z,0) + log1p(exp(-|z|)) and sigmoid via tanh, so
// no overflow for any f; f, the losses and their sums are accumulated in double.
//
// Memory traffic (why a custom kernel): networks are packed into groups whose
// weights and gradient fit in L2 (~512 KiB); for each group, each block of 64 rows
// of X is read once per step and used for the forward pass, the loss gradient and
// the backward pass of every network of the group while it sits in cache. Small
// widths (the paper's regime) are memory-bound: numpy streams X twice per network
// per step. X is used in place when d fills whole SIMD vectors (else a padded copy).
// Flops: the two neurons of a symmetric pair (j, j + m/2) are stored side by side;
// they share their activation pattern at initialisation and stay correlated, so
// the backward pass visits, per pair, only the rows where one of them is active
// (skipping exact zeros: the sums are unchanged), about half of a dense G^T X.
// Where both neurons of a pair are active, c_{j+1} = -c_j exactly, and one
// multiply-add serves both (G_{j+1} starts from -G_j's shared sum).
// A row block runs in three phases: the forward writes the pre-activations
// neuron-major (each neuron's 64 rows contiguous); the loss pass computes f for a
// network four rows per double vector, one exp and one log1p per row (the soft
// loss's entropy term is summed once per run), and overwrites the pre-activations
// with the backward coefficients; the backward turns each pair's rows by kind
// (shared / only j / only j + 1) into 64-bit masks without branches and runs its
// multiply-add loops over the set bits, feature chunks outermost for a batch of 8
// pairs so the chunk of the block is reused from L1. Networks of >= 24 pairs use
// subset tables for the shared rows instead: C_ij = g_i c_j there, so a pair's
// shared sum is c_j sum_i g_i x_i over its mask; the sums of g_i x_i over all 16
// subsets of each group of 4 rows are tabulated once per feature chunk, and a pair
// adds one entry per group (16 adds for 64 rows instead of ~32 multiply-adds).
// The forward and the backward are separate noinline functions per ISA, so each
// is register-allocated alone.
// Register tiles (GCC vector extensions): x86-64-v4 (32 registers) 6 rows x 4
// neurons forward and 2 neurons x 8 vectors backward; x86-64-v3 and the baseline
// 2 x 4 and 2 x 4; chosen once at load time (KDCORE_TWOLAYER_ISA=v3|baseline caps it).
// The first neuron tile of a row block prefetches the next block into L2, so X
// streams from DRAM while the block is computed (at m = 4 to 16 the step was bound
// by that stream); tile sums are reduced with vector shuffles.
// Certified-inactive skipping (twolayer.cpp, certify_rows): a row whose pre-activations
// on a 4-neuron tile are provably <= 0 is not computed (its relu and mask are 0 either
// way). When a row is computed at step t0 the tile keeps S = max_q h_q / ||x|| - P_T(t0),
// P_T the tile's path length (sum over steps of its neurons' largest step norm); at step
// t the row is skipped if S + P_T(t) + 2 gamma max_s ||w_q(s)|| <= 0, gamma the float
// dot-product error bound, which proves fl(x . w_q(t)) <= 0 for every neuron of the tile:
// the results are bit-identical to computing every row. With W0 ~ N(0, I) the weights
// move little against their norm (the lazy regime), so about 45 % of a symmetric pair's
// rows and 22 % of a tile's (both pairs inactive) are skipped, a fifth of the forward.
// Certificates: one bfloat16 (rounded up) per row and tile, in groups of >= 32 neurons
// (smaller groups are bound by streaming X), at most 1 GiB, not for evaluation-only calls.
// Twins: consecutive networks of the same even width with the same W0 and signs (the soft
// and hard arms of one seed in a sweep) are interleaved pair by pair, so a tile holds pair
// i of both; their activation patterns stay nearly equal, and about 45 % of tile rows are
// skipped instead of 22 %. Every network starts at an even position (twins at a tile
// boundary): a network's results do not depend on the batch it is trained in.
// OpenMP: over row blocks (thread-local gradients), then over neurons for the
// reduction, the step and the projection. check_interrupt() between steps.
#pragma once

#include <cstdint>

#include "kdcore/parallel.hpp"

namespace kdcore {

// hist: K x n_steps x 4 (train loss, train error, eval loss, eval error) before
// each step; final_vals: K x 4 at W(n_steps). Eval entries are NaN without eval rows.
// W is updated in place. targets: K x n (soft p or hard y per network, all rows);
// y: n labels in {-1,+1} for the error.
// skip_inactive: skip the forward of rows certified inactive on a neuron tile (results
// identical; see "Certified-inactive skipping" above). skip_stats (may be null): [0] the
// (row, tile) forward entries skipped, [1] all of them, over the n_steps + 1 passes.
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
