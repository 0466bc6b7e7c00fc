// Projected gradient descent for a batch of two-layer ReLU networks; the model, the
// equations and the contract are in kdcore/twolayer.hpp. The implementation plan:
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
// 2 x 4 and 2 x 4; chosen by isa() (ISA dispatch, parallel.hpp; KDCORE_ISA=v3|baseline caps it).
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
#include "kdcore/twolayer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

// The vector functions are always inlined into the per-ISA variants; no AVX value crosses an ABI boundary.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace kdcore {
namespace {

template <class T>
struct VT;
template <>
struct VT<float> {
    typedef float V __attribute__((vector_size(32)));
    static constexpr int L = 8;
};
template <>
struct VT<double> {
    typedef double V __attribute__((vector_size(32)));
    static constexpr int L = 4;
};

constexpr index_t kNT = 4;     // neurons per register tile
constexpr index_t kR = 64;     // rows per block: the block (64 x d) stays in L2 for the whole group
constexpr double kCertMaxBytes = 1024.0 * 1024 * 1024;  // certificates of inactivity: at most 1 GiB
constexpr index_t kSkipMinGroup = 32;  // groups of fewer neurons are bound by streaming X: no skipping

template <class V, class T>
inline __attribute__((always_inline)) V vload(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
}
template <class V, class T>
inline __attribute__((always_inline)) void vstore(T* p, const V& v) {
    std::memcpy(p, &v, sizeof(V));
}


// Where a network's neurons sit in its group's padded layout: its pairs (i, i + m/2) at
// positions pos0 + stride * i and + 1 (an odd last neuron at pos0 + m - 1, stride 2 only).
// stride 2: the network alone in [span0, span1); stride 4: twins (two networks of the same
// width, initial weights and signs, e.g. the soft and hard arms of one seed) interleaved
// pair by pair in one span, so each 4-neuron forward tile holds pair i of both: their
// activation patterns stay nearly equal, and a row certified inactive on one pair usually
// is on the tile (certified-inactive skipping).
struct NetLoc {
    index_t pos0, stride, m, span0, span1;
};

// What one row block of one group needs.
template <class T>
struct Block {
    const T* X;          // padded rows, stride dp
    index_t dp, n, n_train;
    const T* W;          // group weights, Gp x dp
    index_t Gp;          // neurons of the group, padded to kNT
    const T* coef;       // Gp: a_j / sqrt(m_k) (0 on padding)
    index_t Kg;          // networks in the group
    const struct NetLoc* net;  // Kg: where each network's neurons are (see NetLoc)
    index_t nend;        // local neurons in use (padding after)
    const std::int32_t* ltype;
    const T* const* tgt; // Kg target rows (length n)
    const T* y;
    double inv_ntrain;
    bool backward;
    // certified-inactive skipping (null cert: off); see certify_rows
    std::uint16_t* cert;      // this group's first tile in block 0; (block, tile) at cert + blk * cstride + tile * kR
    index_t cstride;          // n_tiles * kR
    const std::uint16_t* key; // per tile of the group: skip a row if its certificate (as uint16) >= key
    const double* path;       // per tile: P_T, the path length of the tile's weights so far
    const double* inv_xn;     // n: 1 / ||x_i|| (NaN for a zero row)
};

// out[q] = sum of the lanes of v[q], q = 0..3 (kNT = 4), with vector shuffles: a
// transpose-and-add network instead of 4 x L scalar extracts (which cost about a
// fifth of the forward pass at small widths).
template <class T>
inline __attribute__((always_inline)) void hsum4(const typename VT<T>::V* v, T* out) {
    static_assert(kNT == 4, "hsum4 reduces four accumulators");
    typedef T H2 __attribute__((vector_size(16)));  // half a 32-byte vector
    constexpr int L = VT<T>::L;
    H2 h[4];
    for (int q = 0; q < 4; ++q) {
        H2 lo, hi;
        std::memcpy(&lo, &v[q], 16);
        std::memcpy(&hi, reinterpret_cast<const char*>(&v[q]) + 16, 16);
        h[q] = lo + hi;
    }
    if constexpr (L == 8) {  // float: four 4-lane vectors -> [sum h0, sum h1, sum h2, sum h3]
        const H2 ab = __builtin_shufflevector(h[0], h[1], 0, 4, 1, 5) + __builtin_shufflevector(h[0], h[1], 2, 6, 3, 7);
        const H2 cd = __builtin_shufflevector(h[2], h[3], 0, 4, 1, 5) + __builtin_shufflevector(h[2], h[3], 2, 6, 3, 7);
        const H2 r = __builtin_shufflevector(ab, cd, 0, 1, 4, 5) + __builtin_shufflevector(ab, cd, 2, 3, 6, 7);
        std::memcpy(out, &r, 16);
    } else {  // double: four 2-lane vectors
        const H2 r0 = __builtin_shufflevector(h[0], h[1], 0, 2) + __builtin_shufflevector(h[0], h[1], 1, 3);
        const H2 r1 = __builtin_shufflevector(h[2], h[3], 0, 2) + __builtin_shufflevector(h[2], h[3], 1, 3);
        std::memcpy(out, &r0, 16);
        std::memcpy(out + 2, &r1, 16);
    }
}

// Ht[q * R + rows[r]] = x_rows[r] . W_{j+q} for RT rows of the block (listed) and the kNT
// neurons of one tile, over the padded features: the pre-activations are stored neuron-major
// (a neuron's kR rows contiguous), the layout the loss pass and the backward read. pf (may be
// null): RT rows of the next row block to prefetch into L2, one 64-byte line per row every 64
// bytes of k, so that the next block streams in from DRAM while this one is computed (the first
// neuron tile of a block passes pf).
template <class T, int RT>
inline __attribute__((always_inline)) void fwd_tile(const T* Xb, const std::int32_t* rows, index_t dp, const T* w,
                                                    T* Ht, index_t R, const T* pf = nullptr) {
    using V = typename VT<T>::V;
    constexpr int L = VT<T>::L;
    V acc[RT][kNT];
    const T* xr[RT];
    for (int r = 0; r < RT; ++r) {
        xr[r] = Xb + rows[r] * dp;
        for (int q = 0; q < kNT; ++q) acc[r][q] = V{};
    }
    for (index_t k = 0; k < dp; k += L) {
#if defined(__GNUC__) || defined(__clang__)
        if (pf && (k * static_cast<index_t>(sizeof(T))) % 64 == 0)
            for (int r = 0; r < RT; ++r) __builtin_prefetch(pf + r * dp + k, 0, 2);
#endif
        V wv[kNT];
        for (int q = 0; q < kNT; ++q) wv[q] = vload<V>(w + q * dp + k);
        for (int r = 0; r < RT; ++r) {
            const V x = vload<V>(xr[r] + k);
            for (int q = 0; q < kNT; ++q) acc[r][q] += x * wv[q];
        }
    }
    for (int r = 0; r < RT; ++r) {
        T out[kNT];
        hsum4<T>(acc[r], out);
        for (int q = 0; q < kNT; ++q) Ht[q * R + rows[r]] = out[q];
    }
}

// Certificates of inactivity, stored per (row, neuron tile) as the top 16 bits of a float
// (bfloat16) rounded toward +inf; +inf (0x7F80) means "none".
constexpr std::uint16_t kNoCert = 0x7F80;
// S (double, < 0 and finite) as a bfloat16 >= S, without branches: to float (nearest, so at
// most half a float ulp below S), one float ulp toward 0 (the bits of a negative float minus 1),
// then the low 16 bits dropped (toward 0, i.e. up, for a negative number). -0.0 minus one ulp
// gives NaN bits (no certificate), as do S >= 0, NaN and S <= -DBL_MAX.
inline std::uint16_t cert_encode(double S) {
    const float f = static_cast<float>(S);
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    const std::uint16_t h = static_cast<std::uint16_t>((u - 1u) >> 16);
    return (S < 0.0 && S > -std::numeric_limits<double>::max()) ? h : kNoCert;
}

// The smallest certificate, as uint16, whose value is <= th (th <= 0 or NaN). Certificates
// are negative finite bfloat16 (sign bit set, at most 0xFF7F) or kNoCert / NaN (sign clear); a
// negative bfloat16 is <= th iff its magnitude bits are >= those of |th| rounded up to a
// bfloat16, so the forward's test is one unsigned compare. 0xFFFF: nothing is skipped.
inline std::uint16_t cert_key(double th) {
    if (!(th <= 0.0)) return 0xFFFF;
    float fa = static_cast<float>(-th);
    if (static_cast<double>(fa) < -th) fa = std::nextafter(fa, std::numeric_limits<float>::infinity());
    std::uint32_t u;
    std::memcpy(&u, &fa, 4);
    const std::uint32_t mag = (u >> 16) + ((u & 0xFFFFu) != 0);
    return mag >= 0x7F80u ? std::uint16_t(0xFFFF) : static_cast<std::uint16_t>(0x8000u | mag);
}

// Certified-inactive skipping. After a row's pre-activations on a tile are computed (at step
// t0), its certificate is S = max_q h_q / ||x|| - P_T(t0), P_T the tile's path length (sum over
// steps of the largest step norm of its neurons). At a later step t, for every neuron q of the
// tile, with u = eps / 2 and gamma = dp u / (1 - dp u) (the float dot-product error bound),
//   fl(x . w_q(t)) <= x . w_q(t) + gamma ||x|| ||w_q(t)||
//                 <= x . w_q(t0) + ||x|| ||w_q(t) - w_q(t0)|| + gamma ||x|| ||w_q(t)||
//                 <= fl(x . w_q(t0)) + ||x|| (P_T(t) - P_T(t0) + 2 gamma max_s ||w_q(s)||),
// so S + P_T(t) + margin_T(t) <= 0 (thr_T = -(P_T + margin_T)) proves that the value the forward
// would compute is <= 0 for all of the tile's neurons: relu and mask are 0 there and the row is
// skipped (its pre-activations written as 0), with results identical to computing it. Near
// initialisation (and whenever the weights move little compared with their norm, as in the lazy
// regime the theory covers), about half of a pair's rows are inactive for both neurons and a
// quarter of a 2-pair tile's rows can be skipped.
template <class T>
inline __attribute__((always_inline)) void certify_rows(const Block<T>& b, index_t r0, const std::int32_t* rows,
                                                        index_t nn, const T* hj, std::uint16_t* cj, index_t tile) {
    constexpr index_t R = kR;
    const double P = b.path[tile];
    for (index_t t = 0; t < nn; ++t) {
        const std::int32_t rr = rows[t];
        const T mx = std::max(std::max(hj[rr], hj[R + rr]), std::max(hj[2 * R + rr], hj[3 * R + rr]));
        cj[rr] = cert_encode(static_cast<double>(mx) * b.inv_xn[r0 + rr] - P);
    }
}

// Rows of a block as a bit mask (kR <= 64): bit rr set for row rr.
typedef std::uint64_t RowMask;
inline int next_row(RowMask& m) {
    const int rr = __builtin_ctzll(m);
    m &= m - 1;
    return rr;
}

// G_j[k .. k + NBX L) += sum over the rows in `rows` of c0[rr] x_rr[k ..], and the same for
// G_{j+1} with c1: the general backward of one pair.
// Diff: row j + 1 of the gradient receives the sum of both neurons' terms (the representation
// of the table path, bwd_tables); otherwise its own.
template <class T, int NBX, bool Diff = false>
inline __attribute__((always_inline)) void bwd_chunk(const T* Xb, index_t dp, const T* c0, const T* c1, RowMask rows,
                                                     index_t k, T* gj) {
    using V = typename VT<T>::V;
    constexpr int L = VT<T>::L;
    V s0[NBX], s1[NBX];
    for (int v = 0; v < NBX; ++v) s0[v] = s1[v] = V{};
    while (rows) {
        const int rr = next_row(rows);
        const T* xr = Xb + rr * dp + k;
        const V a = c0[rr] - V{}, b = c1[rr] - V{};  // broadcasts (x - 0 is x exactly, so it folds)
        for (int v = 0; v < NBX; ++v) {
            const V x = vload<V>(xr + v * L);
            s0[v] += a * x;
            s1[v] += b * x;
        }
    }
    for (int v = 0; v < NBX; ++v) {
        vstore(gj + k + v * L, vload<V>(gj + k + v * L) + s0[v]);
        vstore(gj + dp + k + v * L, vload<V>(gj + dp + k + v * L) + (Diff ? s0[v] + s1[v] : s1[v]));
    }
}

// s += sum over the rows in `rows` of c[rr] x_rr[k .. k + NBX L).
template <class T, int NBX>
inline __attribute__((always_inline)) void mask_fma(const T* Xb, index_t dp, const T* c, RowMask rows, index_t k,
                                                    typename VT<T>::V* s) {
    using V = typename VT<T>::V;
    constexpr int L = VT<T>::L;
    while (rows) {
        const int rr = next_row(rows);
        const T* xr = Xb + rr * dp + k;
        const V cv = c[rr] - V{};
        for (int v = 0; v < NBX; ++v) s[v] += cv * vload<V>(xr + v * L);
    }
}

// The same sums split by row kind (a symmetric pair's two neurons have opposite output
// signs, so where both are active with the same loss gradient, c_{j+1} = -c_j exactly):
//   G_j     += sum_{both} c_j x + sum_{only j}     c_j     x
//   G_{j+1} -= sum_{both} c_j x - sum_{only j + 1} c_{j+1} x
// One multiply-add per shared row instead of two: near initialisation (and in the
// lazy regime the theory covers, weights within B / sqrt(m) of W0) almost every active
// row is shared, so this halves the backward again.
template <class T, int NBX, bool Diff = false>
inline __attribute__((always_inline)) void bwd_chunk_sym(const T* Xb, index_t dp, const T* c0, const T* c1,
                                                         RowMask both, RowMask only0, RowMask only1, index_t k,
                                                         T* gj) {
    using V = typename VT<T>::V;
    constexpr int L = VT<T>::L;
    V s0[NBX], s1[NBX];
    for (int v = 0; v < NBX; ++v) s0[v] = V{};
    mask_fma<T, NBX>(Xb, dp, c0, both, k, s0);
    for (int v = 0; v < NBX; ++v) s1[v] = -s0[v];
    mask_fma<T, NBX>(Xb, dp, c0, only0, k, s0);
    mask_fma<T, NBX>(Xb, dp, c1, only1, k, s1);
    for (int v = 0; v < NBX; ++v) {
        vstore(gj + k + v * L, vload<V>(gj + k + v * L) + s0[v]);
        vstore(gj + dp + k + v * L, vload<V>(gj + dp + k + v * L) + (Diff ? s0[v] + s1[v] : s1[v]));
    }
}

// f of one network for every row of the block, in double, four rows per vector step: the
// pairs (j, j + 1) (positions 2i, 2i + 1 of the network) are summed c_j (r_j - r_{j+1}) where
// c_{j+1} = -c_j, so that a pair with equal pre-activations adds exactly 0 (f = 0 at the
// symmetric initialisation; the difference of two floats is exact in double) and an FMA
// contraction cannot leave a rounding residue; relu is x < 0 ? 0 : x (std::max's NaN rule).
template <class T>
inline __attribute__((always_inline)) void net_f(const T* Ht, index_t R, const T* coef, const NetLoc& nl, index_t nrow,
                                                 double* f) {
    const index_t j0 = nl.pos0, st = nl.stride, jend = nl.pos0 + st * (nl.m / 2);  // pairs at j0 + st i
    const index_t jodd = nl.m % 2 ? nl.pos0 + nl.m - 1 : -1;
    typedef double D4 __attribute__((vector_size(32)));
    typedef T T4 __attribute__((vector_size(4 * sizeof(T))));
    const D4 zero = {0.0, 0.0, 0.0, 0.0};
    index_t rr = 0;
    for (; rr + 4 <= nrow; rr += 4) {
        D4 s = zero;
        for (index_t j = j0; j < jend; j += st) {
            const double c0 = coef[j], c1 = coef[j + 1];
            D4 a = __builtin_convertvector(vload<T4>(Ht + j * R + rr), D4);
            D4 b = __builtin_convertvector(vload<T4>(Ht + (j + 1) * R + rr), D4);
            a = a < zero ? zero : a;
            b = b < zero ? zero : b;
            if (c1 == -c0)
                s += c0 * (a - b);
            else
                s += c0 * a + c1 * b;
        }
        if (jodd >= 0) {
            D4 a = __builtin_convertvector(vload<T4>(Ht + jodd * R + rr), D4);
            a = a < zero ? zero : a;
            s += static_cast<double>(coef[jodd]) * a;
        }
        std::memcpy(f + rr, &s, sizeof(s));
    }
    for (; rr < nrow; ++rr) {
        double s = 0.0;
        for (index_t j = j0; j < jend; j += st) {
            const double c0 = coef[j], c1 = coef[j + 1];
            const double a = std::max<double>(Ht[j * R + rr], 0.0), b = std::max<double>(Ht[(j + 1) * R + rr], 0.0);
            s += (c1 == -c0) ? c0 * (a - b) : c0 * a + c1 * b;
        }
        if (jodd >= 0) s += static_cast<double>(coef[jodd]) * std::max<double>(Ht[jodd * R + rr], 0.0);
        f[rr] = s;
    }
}

// One row block [r0, r1) in three phases: the forward (Ht, Gp x kR neuron-major, gets the
// pre-activations), the loss pass (per-sample loss, error and gradient coefficient; Ht is
// overwritten by C), then the backward G_j += sum_rows C_ij x_i.
// acc: Kg x 4 (train loss, train err, eval loss, eval err) sums.
template <class T, int RT>
inline __attribute__((always_inline)) void fwd_phase(const Block<T>& b, index_t blk, index_t r0, index_t r1, T* Ht,
                                                     index_t* nskip) {
    constexpr index_t R = kR;
    const index_t dp = b.dp, Gp = b.Gp, nrow = r1 - r0;
    const T* Xb = b.X + r0 * dp;
    const index_t n_next = std::min<index_t>(b.n, r1 + (r1 - r0)) - r1;  // rows of the next block
    std::int32_t rows[kR + RT];
    // Neuron tile outer (its weights stay in L1), rows inner (the block stays in L2).
    for (index_t j = 0; j < Gp; j += kNT) {
        const T* w = b.W + j * dp;
        T* hj = Ht + j * R;
        std::uint16_t* cj = b.cert ? b.cert + blk * b.cstride + j / kNT * R : nullptr;
        index_t nn = nrow;
        if (cj) {  // the rows without a certificate of inactivity (branch-free compaction)
            const std::uint16_t key = b.key[j / kNT];
            nn = 0;
            for (index_t rr = 0; rr < nrow; ++rr) {
                rows[nn] = static_cast<std::int32_t>(rr);
                nn += cj[rr] < key;
            }
            if (nn < nrow) {
                for (int q = 0; q < kNT; ++q) std::fill(hj + q * R, hj + q * R + nrow, T(0));
                *nskip += nrow - nn;
            }
        } else {
            for (index_t rr = 0; rr < nrow; ++rr) rows[rr] = static_cast<std::int32_t>(rr);
        }
        // Whole register tiles only: a remainder is padded with repeats of the last listed row
        // (the same value written twice), up to 4 rows or up to RT, cheaper than 1-row tiles.
        index_t nt = nn;
        if (const index_t rem = nn % RT; rem && nn) {
            const index_t pad = (RT > 4 && rem <= 4) ? 4 - rem : RT - rem;
            for (index_t e = 0; e < pad; ++e) rows[nn + e] = rows[nn - 1];
            nt = nn + pad;
        }
        // the first tile prefetches the next block's rows, RT at a time, then the rest
        index_t t = 0, pf_done = 0;
        for (; t + RT <= nt; t += RT) {
            const T* pf = nullptr;
            if (j == 0 && pf_done + RT <= n_next) {
                pf = b.X + (r1 + pf_done) * dp;
                pf_done += RT;
            }
            fwd_tile<T, RT>(Xb, rows + t, dp, w, hj, R, pf);
        }
        if constexpr (RT > 4)
            for (; t + 4 <= nt; t += 4) fwd_tile<T, 4>(Xb, rows + t, dp, w, hj, R);
        for (; t < nt; ++t) fwd_tile<T, 1>(Xb, rows + t, dp, w, hj, R);
#if defined(__GNUC__) || defined(__clang__)
        if (j == 0)
            for (; pf_done < n_next; ++pf_done)
                for (index_t k = 0; k < dp; k += 64 / static_cast<index_t>(sizeof(T)))
                    __builtin_prefetch(b.X + (r1 + pf_done) * dp + k, 0, 2);
#endif
        if (cj) certify_rows<T>(b, r0, rows, nn, hj, cj, j / kNT);
    }
}

template <class T>
inline __attribute__((always_inline)) void loss_phase(const Block<T>& b, index_t r0, index_t r1, T* Ht, double* acc) {
    using V = typename VT<T>::V;
    constexpr int L = VT<T>::L;
    constexpr index_t R = kR;
    const index_t Gp = b.Gp, nrow = r1 - r0;
    // Loss pass, network by network: f for the block's rows, then per row the loss, the error
    // and dl/df, then the backward coefficients C_ij = (h_ij > 0) g_i c_j over the rows.
    double f[kR];
    for (index_t k = 0; k < b.Kg; ++k) {
        const NetLoc& nl = b.net[k];
        T* gs = Ht + (Gp + k) * R;  // dl/df / n_train per row, kept for the backward's subset tables
        net_f<T>(Ht, R, b.coef, nl, nrow, f);
        const T* tg = b.tgt[k];
        double* a = acc + 4 * k;
        for (index_t rr = 0; rr < nrow; ++rr) {
            const index_t i = r0 + rr;
            const bool train = i < b.n_train;
            const double fi = f[rr], t = static_cast<double>(tg[i]);
            double l, g;
            if (b.ltype[k] == 0) {  // soft: KL(p || sigmoid f); the entropy term p ln p + (1-p) ln(1-p) is added once per run
                // softplus(+-f) = max(+-f, 0) + ln(1 + e^-|f|) and sigmoid(f) from the same e^-|f|
                const double e = std::exp(-std::fabs(fi)), lp = std::log1p(e);
                l = t * (std::max(-fi, 0.0) + lp) + (1.0 - t) * (std::max(fi, 0.0) + lp);
                g = (fi >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e)) - t;
            } else {  // hard: logistic, l = softplus(-t f), dl/df = -t sigmoid(-t f)
                const double z = -t * fi, e = std::exp(-std::fabs(z));
                l = std::max(z, 0.0) + std::log1p(e);
                g = -t * (z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e));
            }
            double* ak = a + (train ? 0 : 2);
            ak[0] += l;
            ak[1] += (static_cast<double>(b.y[i]) * fi <= 0.0) ? 1.0 : 0.0;
            gs[rr] = train ? static_cast<T>(g * b.inv_ntrain) : T(0);
        }
        for (index_t u = 0; u < nl.m; ++u) {
            const index_t j = u < nl.m - nl.m % 2 ? nl.pos0 + nl.stride * (u / 2) + u % 2 : nl.pos0 + nl.m - 1;
            T* h = Ht + j * R;
            const V c = b.coef[j] - V{};
            index_t rr = 0;
            for (; rr + L <= nrow; rr += L) {
                const V hv = vload<V>(h + rr);
                vstore(h + rr, hv > V{} ? vload<V>(gs + rr) * c : V{});
            }
            for (; rr < nrow; ++rr) h[rr] = h[rr] > T(0) ? gs[rr] * b.coef[j] : T(0);
        }
    }
    for (index_t j = b.nend; j < Gp; ++j) std::fill(Ht + j * R, Ht + j * R + nrow, T(0));  // padding
}

// A pair's rows by kind as bit masks (shared: c_{j+1} = -c_j != 0; only j; only j + 1),
// made without branches (rows are active half the time). Returns false if neither is active.
// sym: whether the split by kind saves multiply-adds (shared rows cost 1, the others 1 each;
// cost <= 2 cnt always; below 1.75 cnt it is worth the third loop).
template <class T>
inline __attribute__((always_inline)) bool pair_masks(const T* c0, const T* c1, index_t nr, RowMask* mk, bool& sym) {
    RowMask nz0 = 0, nz1 = 0, sh = 0;
    for (index_t rr = 0; rr < nr; ++rr) {
        const RowMask a0 = c0[rr] != T(0), a1 = c1[rr] != T(0);
        nz0 |= a0 << rr;
        nz1 |= a1 << rr;
        sh |= (a0 & static_cast<RowMask>(c1[rr] == -c0[rr])) << rr;
    }
    const RowMask any = nz0 | nz1;
    if (!any) return false;
    const RowMask o0 = nz0 & ~sh, o1 = nz1 & ~sh;
    const int cnt = __builtin_popcountll(any);
    const int cost = __builtin_popcountll(sh) + __builtin_popcountll(o0) + __builtin_popcountll(o1);
    sym = 4 * cost < 7 * cnt;
    mk[0] = sym ? sh : any;
    mk[1] = o0;
    mk[2] = o1;
    return true;
}

// The masks of the np pairs (jb, jb + 1), (jb + 2, jb + 3), ...: the pairs with an active
// row are listed first (pj, mk, symk); returns how many.
template <class T>
inline __attribute__((always_inline)) index_t batch_masks(const T* Ht, index_t nr, index_t jb, index_t np,
                                                          RowMask (*mk)[3], bool* symk, index_t* pj,
                                                          index_t st = 2) {
    index_t live = 0;
    for (index_t p = 0; p < np; ++p) {
        const index_t j = jb + st * p;
        if (!pair_masks<T>(Ht + j * kR, Ht + (j + 1) * kR, nr, mk[live], symk[live])) continue;
        pj[live++] = j;
    }
    return live;
}

constexpr index_t kTablePairs = 24;  // networks with at least this many pairs use subset tables

// Whether a network takes the table backward (whole pairs at even positions, enough of them).
// Its gradient rows then hold G_j and G_{j+1} + G_j for each pair (j, j + 1) until
// twolayer_train subtracts (see bwd_tables).
inline bool table_network(const NetLoc& nl) {
    return nl.pos0 % 2 == 0 && nl.m % 2 == 0 && nl.m / 2 >= kTablePairs;
}
constexpr int kTG = 4;               // rows per subset table (16 entries)
constexpr int kTV = 2;               // vectors per feature chunk of the tables

// Backward of one network with many pairs by subset tables ("four Russians"). Where both
// neurons of a pair are active, C_ij = g_i c_j, so the pair's shared sum is
// c_j sum_{i in shared} y_i with y_i = g_i x_i, the same rows for every pair of the network.
// For each group of kTG rows the table holds the sums of y over all 2^kTG subsets of the
// group (one multiply or add per entry); a pair's shared sum is then one table entry per
// group, picked by its mask's bits there: about R / kTG adds instead of R / 2 multiply-adds
// with a broadcast. The rows a pair does not share (few near initialisation) go through the
// per-row loops.
template <class T>
inline __attribute__((always_inline)) void bwd_tables(const Block<T>& b, const T* Xb, index_t nr, const T* Ht,
                                                      const T* gs, const NetLoc& nl, T* G) {
    using V = typename VT<T>::V;
    constexpr int L = VT<T>::L;
    constexpr index_t R = kR;
    constexpr int NG = static_cast<int>((R + kTG - 1) / kTG);
    constexpr int NS = 1 << kTG;
    constexpr index_t kB = 128;  // pairs per batch (their masks; the tables are built once per batch)
    const index_t dp = b.dp;
    alignas(64) V tab[NG][NS][kTV];
    RowMask mk[kB][3];
    index_t pj[kB];
    bool symk[kB];
    std::uint8_t sub[kB][NG];
    const int ng = static_cast<int>((nr + kTG - 1) / kTG);
    const index_t st = nl.stride, npair = nl.m / 2;
    for (index_t pb = 0; pb < npair; pb += kB) {
        const index_t live = batch_masks<T>(Ht, nr, nl.pos0 + st * pb, std::min<index_t>(kB, npair - pb), mk, symk,
                                            pj, st);
        if (live == 0) continue;
        // each pair's table entry per group, read once here rather than shifted out per chunk
        for (index_t q = 0; q < live; ++q)
            for (int g = 0; g < NG; ++g) sub[q][g] = static_cast<std::uint8_t>((mk[q][0] >> (g * kTG)) & (NS - 1));
        index_t k = 0;
        for (; k + kTV * L <= dp; k += kTV * L) {
            // tables of this feature chunk
            for (int g = 0; g < ng; ++g) {
                for (int v = 0; v < kTV; ++v) tab[g][0][v] = V{};
                for (int t = 0; t < kTG; ++t) {
                    const index_t rr = g * kTG + t;
                    const V gv = (rr < nr ? gs[rr] : T(0)) - V{};
                    const T* xr = Xb + std::min<index_t>(rr, nr - 1) * dp + k;
                    for (int v = 0; v < kTV; ++v) tab[g][1 << t][v] = gv * vload<V>(xr + v * L);
                }
                for (int sub = 3; sub < NS; ++sub) {
                    const int low = sub & -sub;
                    if (low == sub) continue;
                    for (int v = 0; v < kTV; ++v) tab[g][sub][v] = tab[g][sub ^ low][v] + tab[g][low][v];
                }
            }
            for (index_t q = 0; q < live; ++q) {
                const index_t j = pj[q];
                const T* c0 = Ht + j * R;
                T* gj = G + j * dp;
                if (!symk[q]) {
                    bwd_chunk<T, kTV, true>(Xb, dp, c0, c0 + R, mk[q][0], k, gj);
                    continue;
                }
                // four partial sums (groups g mod 4): 4 kTV independent add chains, enough to
                // keep both adders busy through the add latency
                V a[4][kTV];
                for (int u = 0; u < 4; ++u)
                    for (int v = 0; v < kTV; ++v) a[u][v] = V{};
                const std::uint8_t* sq = sub[q];
                int g = 0;
                for (; g + 3 < ng; g += 4)
                    for (int u = 0; u < 4; ++u)
                        for (int v = 0; v < kTV; ++v) a[u][v] += tab[g + u][sq[g + u]][v];
                for (; g < ng; ++g)
                    for (int v = 0; v < kTV; ++v) a[0][v] += tab[g][sq[g]][v];
                // row j: G_j = c_j (shared sum) + the rows only j has; row j + 1 holds G_{j+1} + G_j,
                // which the shared rows leave untouched (they cancel exactly): only the rows one
                // neuron has alone go there, and a pair that shares all its rows skips the row
                const V cj = b.coef[j] - V{};
                V s0[kTV];
                for (int v = 0; v < kTV; ++v) s0[v] = cj * ((a[0][v] + a[1][v]) + (a[2][v] + a[3][v]));
                mask_fma<T, kTV>(Xb, dp, c0, mk[q][1], k, s0);
                for (int v = 0; v < kTV; ++v) vstore(gj + k + v * L, vload<V>(gj + k + v * L) + s0[v]);
                if (mk[q][1] | mk[q][2]) {
                    V s1[kTV];
                    for (int v = 0; v < kTV; ++v) s1[v] = V{};
                    mask_fma<T, kTV>(Xb, dp, c0, mk[q][1], k, s1);
                    mask_fma<T, kTV>(Xb, dp, c0 + R, mk[q][2], k, s1);
                    for (int v = 0; v < kTV; ++v) vstore(gj + dp + k + v * L, vload<V>(gj + dp + k + v * L) + s1[v]);
                }
            }
        }
        for (; k < dp; k += L)  // the last vector of features (dp not a multiple of kTV L): per-row loops
            for (index_t q = 0; q < live; ++q) {
                const index_t j = pj[q];
                const T* c0 = Ht + j * R;
                if (symk[q])
                    bwd_chunk_sym<T, 1, true>(Xb, dp, c0, c0 + R, mk[q][0], mk[q][1], mk[q][2], k, G + j * dp);
                else
                    bwd_chunk<T, 1, true>(Xb, dp, c0, c0 + R, mk[q][0], k, G + j * dp);
            }
    }
}

// The per-row backward of the pairs (j, j + 1), j = ja, ja + 2, ... < je. Pairs go in
// batches of kPB, the features in chunks of NB vectors outermost: a chunk of the row block
// (kR rows x NB L values, 16 KiB for float on v4) is read from L1 by every pair of the batch
// instead of the whole block streaming from L2 once per pair.
template <class T, int NB>
inline __attribute__((always_inline)) void bwd_rows(const Block<T>& b, const T* Xb, index_t nr, const T* Ht,
                                                    index_t ja, index_t je, T* G) {
    constexpr int L = VT<T>::L;
    constexpr index_t R = kR;
    constexpr index_t kPB = 8;
    const index_t dp = b.dp;
    RowMask mk[kPB][3];  // per pair: shared (or, general backward: any active), only j, only j + 1
    index_t pj[kPB];
    bool symk[kPB];
    for (index_t jb = ja; jb < je; jb += 2 * kPB) {
        const index_t live = batch_masks<T>(Ht, nr, jb, std::min<index_t>(kPB, (je - jb) / 2), mk, symk, pj);
        auto chunk = [&](auto nbx, index_t k) {
            constexpr int NBX = decltype(nbx)::value;
            for (index_t q = 0; q < live; ++q) {
                const index_t j = pj[q];
                const T* c0 = Ht + j * R;
                if (symk[q])
                    bwd_chunk_sym<T, NBX>(Xb, dp, c0, c0 + R, mk[q][0], mk[q][1], mk[q][2], k, G + j * dp);
                else
                    bwd_chunk<T, NBX>(Xb, dp, c0, c0 + R, mk[q][0], k, G + j * dp);
            }
        };
        index_t k = 0;
        for (; k + NB * L <= dp; k += NB * L) chunk(std::integral_constant<int, NB>{}, k);
        for (; k + (NB / 2) * L <= dp; k += (NB / 2) * L) chunk(std::integral_constant<int, NB / 2>{}, k);
        for (; k < dp; k += L) chunk(std::integral_constant<int, 1>{}, k);
    }
}

template <class T, int NB>
inline __attribute__((always_inline)) void bwd_phase(const Block<T>& b, index_t r0, index_t r1, const T* Ht, T* G) {
    constexpr index_t R = kR;
    static_assert(kR <= 64, "the backward keeps a block's rows in one 64-bit mask");
    const index_t dp = b.dp, Gp = b.Gp;
    if (!b.backward) return;
    const index_t nr = std::min(r1, b.n_train) - r0;
    if (nr <= 0) return;
    // Backward by pairs of neurons (a symmetric pair shares its activation pattern at
    // initialisation): only the rows where one of the two is active are visited, so about
    // half of the multiply-adds of a dense G^T X are skipped. Skipping exact zeros leaves
    // every sum unchanged.
    const T* Xb = b.X + r0 * dp;
    // networks with many pairs (whole pairs, at even positions) by subset tables, the rest per row
    // (twins share a span: both are table networks or neither, since they have the same width)
    index_t ja = 0;
    for (index_t k = 0; k < b.Kg; ++k) {
        const NetLoc& nl = b.net[k];
        if (!table_network(nl)) continue;
        if (nl.span0 > ja) bwd_rows<T, NB>(b, Xb, nr, Ht, ja, nl.span0, G);
        bwd_tables<T>(b, Xb, nr, Ht, Ht + (Gp + k) * R, nl, G);
        ja = std::max(ja, nl.span1);
    }
    bwd_rows<T, NB>(b, Xb, nr, Ht, ja, Gp, G);
}

// The row-block kernel per ISA level (ISA dispatch, parallel.hpp), each with its own
// register tiling: x86-64-v4 has 32 vector registers, so it takes 6 rows x 4 neurons
// forward and 2 neurons x 8 vectors backward; x86-64-v3 (16 registers) and the
// baseline take 2 x 4 and 2 x 4.
template <class T>
using RowBlockFn = void (*)(const Block<T>&, index_t, index_t, index_t, T*, T*, double*, index_t*);
// The forward and the backward are compiled as functions of their own (noinline, same
// target): each is register-allocated alone, so the forward's 6 x 4 accumulators and its
// weight vectors keep all 32 registers (inlined into one function with the other phases,
// the compiler spilled the weight vectors to the stack).
#define KDCORE_TL_PHASES(SUFFIX, ATTR, RT, NB)                                                              \
    template <class T>                                                                                      \
    ATTR __attribute__((noinline)) void fwd_##SUFFIX(const Block<T>& b, index_t blk, index_t r0, index_t r1, \
                                                     T* H, index_t* nskip) {                                \
        fwd_phase<T, RT>(b, blk, r0, r1, H, nskip);                                                         \
    }                                                                                                       \
    template <class T>                                                                                      \
    ATTR __attribute__((noinline)) void bwd_##SUFFIX(const Block<T>& b, index_t r0, index_t r1, const T* H, \
                                                     T* G) {                                                \
        bwd_phase<T, NB>(b, r0, r1, H, G);                                                                  \
    }                                                                                                       \
    template <class T>                                                                                      \
    ATTR void row_block_##SUFFIX(const Block<T>& b, index_t blk, index_t r0, index_t r1, T* H, T* G,        \
                                 double* acc, index_t* nskip) {                                             \
        fwd_##SUFFIX<T>(b, blk, r0, r1, H, nskip);                                                          \
        loss_phase<T>(b, r0, r1, H, acc);                                                                   \
        bwd_##SUFFIX<T>(b, r0, r1, H, G);                                                                   \
    }
KDCORE_TL_PHASES(v4, KDCORE_TARGET_V4, 6, 8)
KDCORE_TL_PHASES(v3, KDCORE_TARGET_V3, 2, 4)
KDCORE_TL_PHASES(base, , 2, 4)
#undef KDCORE_TL_PHASES
template <class T>
RowBlockFn<T> row_block_for(Isa level) {
    switch (level) {
        case Isa::v4: return &row_block_v4<T>;
        case Isa::v3: return &row_block_v3<T>;
        default: return &row_block_base<T>;
    }
}

// W_j <- W_j - lr sum_t G_t[j]; then the projection onto ||W_j - W0_j|| <= bound.
template <class T>
KDCORE_ALWAYS_INLINE void update_impl(T* w, const T* w0, const T* G, index_t stride_t, int nt, index_t dp, T lr,
                                      double bound) {
    for (index_t k = 0; k < dp; ++k) {
        T g = G[k];
        for (int t = 1; t < nt; ++t) g += G[t * stride_t + k];
        w[k] -= lr * g;
    }
    if (bound > 0) {
        double n2 = 0.0;
        for (index_t k = 0; k < dp; ++k) {
            const T dk = w[k] - w0[k];
            n2 += static_cast<double>(dk) * dk;
        }
        const double norm = std::sqrt(n2);
        if (norm > bound) {
            const T s = static_cast<T>(bound / norm);
            for (index_t k = 0; k < dp; ++k) w[k] = w0[k] + (w[k] - w0[k]) * s;
        }
    }
}
KDCORE_DISPATCH_V3(void, update, (float* w, const float* w0, const float* G, index_t st, int nt, index_t dp, float lr,
                                  double bound),
                   (w, w0, G, st, nt, dp, lr, bound))
KDCORE_DISPATCH_V3(void, update, (double* w, const double* w0, const double* G, index_t st, int nt, index_t dp,
                                  double lr, double bound),
                   (w, w0, G, st, nt, dp, lr, bound))

// ||a - b||^2 (b may be null: ||a||^2) in double, four double lanes x 2 accumulators.
template <class T>
KDCORE_ALWAYS_INLINE double sq_norm_impl(const T* a, const T* b, index_t n) {
    typedef double D4 __attribute__((vector_size(32)));
    typedef T T4 __attribute__((vector_size(4 * sizeof(T))));
    D4 s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
    index_t k = 0;
    for (; k + 8 <= n; k += 8) {
        D4 x0 = __builtin_convertvector(vload<T4>(a + k), D4), x1 = __builtin_convertvector(vload<T4>(a + k + 4), D4);
        if (b) {
            x0 -= __builtin_convertvector(vload<T4>(b + k), D4);
            x1 -= __builtin_convertvector(vload<T4>(b + k + 4), D4);
        }
        s0 += x0 * x0;
        s1 += x1 * x1;
    }
    s0 += s1;
    double s = (s0[0] + s0[1]) + (s0[2] + s0[3]);
    for (; k < n; ++k) {
        const double x = static_cast<double>(a[k]) - (b ? static_cast<double>(b[k]) : 0.0);
        s += x * x;
    }
    return s;
}
KDCORE_DISPATCH_V3(double, sq_norm, (const float* a, const float* b, index_t n), (a, b, n))
KDCORE_DISPATCH_V3(double, sq_norm, (const double* a, const double* b, index_t n), (a, b, n))

// ============================================================================ the engine
// twolayer_train in four named steps: check and plan (groups of networks, twins),
// pack (padded, grouped copies and per-network constants), certify (the state of
// certified-inactive skipping), then n_steps + 1 passes over the data (run_pass), and
// the weights unpacked into W.

struct Group {
    index_t k0, k1;  // networks [k0, k1)
    index_t j0, Gp;  // first padded neuron, padded neuron count
};

// The arguments of twolayer_train (see twolayer.hpp).
template <class T>
struct Problem {
    const T* X;
    index_t n, n_train, d;
    T* W;
    const T* W0;
    const T* a;
    const index_t* offsets;
    index_t K;
    const std::int32_t* loss_type;
    const T* targets;
    const T* y;
    const double* lr;
    const double* radius;
    index_t n_steps;
};

template <class T>
class Engine {
public:
    Engine(const Problem<T>& p, int n_threads, bool skip_inactive)
        : p_(p), nt_(resolve_threads(n_threads)), dp_((p.d + VT<T>::L - 1) / VT<T>::L * VT<T>::L),
          row_block_(row_block_for<T>(isa())) {
        plan(skip_inactive);
        pack();
        certify(skip_inactive);
    }

    // One pass over all rows for every group: the forward, the loss (out[k * out_stride
    // + 0..3]: train loss, train error, eval loss, eval error) and, when do_update, the
    // backward and the projected step.
    void run_pass(bool do_update, double* out, index_t out_stride);

    // The trained weights back into W (network order, unpadded), and the skip counts.
    void unpack(double* skip_stats) const;

private:
    void plan(bool skip_inactive);
    void pack();
    void certify(bool skip_inactive);
    void refresh_tiles(index_t t0, index_t t1);
    Block<T> block(std::size_t gi, bool do_update);
    void step_group(const Group& g, int tid, int used);

    index_t unit_end(index_t k) const { return twin_[k] ? k + 2 : k + 1; }  // networks packed together
    index_t unit_start(index_t loc, index_t k) const {  // where the unit starting at network k goes
        const index_t al = twin_[k] ? kNT : 2;
        return (loc + al - 1) / al * al;
    }
    index_t place(index_t loc, index_t k) const {  // local end after placing the unit starting at k
        return unit_start(loc, k) + (p_.offsets[unit_end(k)] - p_.offsets[k]);
    }

    const Problem<T>& p_;
    const int nt_;        // threads
    const index_t dp_;    // features padded to whole vectors
    const RowBlockFn<T> row_block_;
    static constexpr index_t R = kR;
    static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

    // plan
    std::vector<char> twin_;  // twin_[k]: networks k and k + 1 are twins (NetLoc)
    std::vector<Group> groups_;
    index_t Mp_ = 0, Gmax_ = 0, Kmax_ = 0, n_blocks_ = 0;
    // pack
    std::vector<T> Xcopy_;
    const T* Xp_ = nullptr;           // X, or its zero-padded copy
    std::vector<T> Wp_, W0p_, coef_;  // Mp x dp grouped weights and centres; a_j / sqrt(m_k)
    std::vector<NetLoc> netloc_;      // per network, local to its group
    std::vector<index_t> gend_;       // per group: local neurons in use
    std::vector<index_t> jglob_;      // padded neuron -> row of W (-1: padding)
    std::vector<index_t> jnet_;       // padded neuron -> network (-1: padding)
    std::vector<const T*> tgt_ptr_;   // per network: its target row
    std::vector<double> bound_;       // per network: B_k / sqrt(m_k), or -1 (no projection)
    std::vector<double> ent_;         // per network: the soft loss's entropy term, train and eval
    index_t gstride_ = 0, hstride_ = 0;
    std::vector<T> Gbuf_, Hbuf_;      // per thread: gradient; pre-activations and loss gradients
    std::vector<double> accbuf_;      // per thread: Kmax x 4 loss and error sums
    // certify
    bool skip_ = false;
    index_t n_tiles_ = 0;
    double gamma_ = 0.0;
    std::vector<std::uint16_t> cert_, tkey_;
    std::vector<double> tpath_, tmaxn_, inv_xn_, dstep_, wnrm_;
    std::vector<T> wold_;
    std::vector<index_t> nskip_;  // per thread, a cache line apart
};

// Plan: pack networks into groups whose weights + gradient take about 512 KiB (L2).
// Twins (NetLoc): consecutive networks of the same even width with the same initial
// weights and signs; they are interleaved pair by pair and kept in one group. Every
// network starts at an even position (a pair never straddles two networks, so a
// network's sums do not depend on the batch it is in) and twins at a tile boundary.
template <class T>
void Engine<T>::plan(bool skip_inactive) {
    const index_t K = p_.K, d = p_.d;
    const index_t* offsets = p_.offsets;
    const index_t cap = std::max<index_t>(kNT, (index_t(512) * 1024 / (2 * dp_ * index_t(sizeof(T)))) / kNT * kNT);
    twin_.assign(K, 0);
    if (skip_inactive && p_.n_steps > 0)
        for (index_t k = 0; k + 1 < K; ++k) {
            const index_t m = offsets[k + 1] - offsets[k];
            if (m % 2 || offsets[k + 2] - offsets[k + 1] != m || (k > 0 && twin_[k - 1])) continue;
            const size_t bytes = static_cast<size_t>(m * d) * sizeof(T);
            twin_[k] = std::memcmp(p_.W0 + offsets[k] * d, p_.W0 + offsets[k + 1] * d, bytes) == 0 &&
                       std::memcmp(p_.a + offsets[k], p_.a + offsets[k + 1], m * sizeof(T)) == 0;
        }
    for (index_t k = 0; k < K;) {
        index_t k1 = unit_end(k);
        index_t cnt = place(0, k);
        while (k1 < K && place(cnt, k1) <= cap) {
            cnt = place(cnt, k1);
            k1 = unit_end(k1);
        }
        const index_t Gp = (cnt + kNT - 1) / kNT * kNT;
        groups_.push_back({k, k1, Mp_, Gp});
        Mp_ += Gp;
        k = k1;
    }
    for (const Group& g : groups_) {
        Gmax_ = std::max(Gmax_, g.Gp);
        Kmax_ = std::max(Kmax_, g.k1 - g.k0);
    }
    n_blocks_ = (p_.n + R - 1) / R;
}

// Pack: padded copies (X: n x dp, used in place when d fills whole vectors, as d = 784
// does; W and W0: Mp x dp, grouped), per-neuron coefficients, each network's place in
// its group, the per-thread buffers, and the constants of the loss.
template <class T>
void Engine<T>::pack() {
    const index_t n = p_.n, d = p_.d, dp = dp_, K = p_.K, Mp = Mp_;
    const index_t* offsets = p_.offsets;
    Xp_ = p_.X;
    if (dp != d) {
        Xcopy_.assign(static_cast<size_t>(n * dp), T(0));
        for (index_t i = 0; i < n; ++i) std::memcpy(&Xcopy_[i * dp], p_.X + i * d, d * sizeof(T));
        Xp_ = Xcopy_.data();
    }
    Wp_.assign(static_cast<size_t>(Mp * dp), T(0));
    W0p_.assign(static_cast<size_t>(Mp * dp), T(0));
    coef_.assign(Mp, T(0));
    netloc_.resize(K);
    gend_.resize(groups_.size());
    jglob_.assign(Mp, -1);
    jnet_.assign(Mp, -1);
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
        const Group& g = groups_[gi];
        index_t loc = 0;
        for (index_t k = g.k0; k < g.k1; ++k) {
            const index_t m = offsets[k + 1] - offsets[k];
            const bool second = k > g.k0 && twin_[k - 1];
            if (!second) loc = unit_start(loc, k);
            if (twin_[k])
                netloc_[k] = {loc, 4, m, loc, loc + 2 * m};
            else if (second)
                netloc_[k] = {netloc_[k - 1].pos0 + 2, 4, m, netloc_[k - 1].span0, netloc_[k - 1].span1};
            else
                netloc_[k] = {loc, 2, m, loc, loc + m};
            const double s = 1.0 / std::sqrt(static_cast<double>(m));
            // local order: the pairs (i, i + m/2) next to each other (at pos0 + stride i), an odd
            // last neuron alone
            const NetLoc& nl = netloc_[k];
            for (index_t u = 0; u < m; ++u) {
                const index_t h2 = m / 2;
                const index_t j = offsets[k] + (u < 2 * h2 ? u / 2 + (u % 2) * h2 : m - 1);
                const index_t jp = g.j0 + (u < 2 * h2 ? nl.pos0 + nl.stride * (u / 2) + u % 2 : nl.pos0 + m - 1);
                std::memcpy(&Wp_[jp * dp], p_.W + j * d, d * sizeof(T));
                std::memcpy(&W0p_[jp * dp], p_.W0 + j * d, d * sizeof(T));
                coef_[jp] = static_cast<T>(static_cast<double>(p_.a[j]) * s);
                jglob_[jp] = j;
                jnet_[jp] = k;
            }
            loc = std::max(loc, nl.span1);
        }
        gend_[gi] = loc;
    }
    tgt_ptr_.resize(K);
    for (index_t k = 0; k < K; ++k) tgt_ptr_[k] = p_.targets + k * n;
    bound_.resize(K);
    for (index_t k = 0; k < K; ++k) {
        const double m = static_cast<double>(offsets[k + 1] - offsets[k]);
        bound_[k] = p_.radius[k] > 0 ? p_.radius[k] / std::sqrt(m) : -1.0;
    }
    // per thread: the gradient (Gmax x dp), the pre-activations / coefficients (Gmax x R)
    // and each network's per-row loss gradient (Kmax x R), the loss sums (Kmax x 4)
    gstride_ = Gmax_ * dp;
    Gbuf_.resize(static_cast<size_t>(nt_) * gstride_);
    hstride_ = R * (Gmax_ + Kmax_);
    Hbuf_.resize(static_cast<size_t>(nt_) * hstride_);
    accbuf_.resize(static_cast<size_t>(nt_) * Kmax_ * 4);
    // The soft loss's entropy term sum_i p_i ln p_i + (1 - p_i) ln(1 - p_i) does not
    // change with W: summed once here (train and eval rows), added to every reported loss.
    ent_.assign(static_cast<size_t>(2 * K), 0.0);
    for (index_t k = 0; k < K; ++k) {
        if (p_.loss_type[k] != 0) continue;
        for (index_t i = 0; i < n; ++i) {
            const double t = static_cast<double>(p_.targets[k * n + i]);
            const double h = (t > 0.0 ? t * std::log(t) : 0.0) + (t < 1.0 ? (1.0 - t) * std::log1p(-t) : 0.0);
            ent_[2 * k + (i < p_.n_train ? 0 : 1)] += h;
        }
    }
}

// Certify: the state of certified-inactive skipping (certify_rows): one bfloat16
// certificate per (row, neuron tile), 2 bytes per 4 neurons and row (25 MB for the
// benchmark's 70-network sweep), the tiles' path lengths and keys, 1 / ||x_i||, the
// neurons' norms. Off for an evaluation-only call, for groups all below kSkipMinGroup,
// or where the certificates would take more than kCertMaxBytes.
template <class T>
void Engine<T>::certify(bool skip_inactive) {
    const index_t n = p_.n, dp = dp_, Mp = Mp_;
    n_tiles_ = Mp / kNT;
    const double unit = std::numeric_limits<T>::epsilon() / 2;
    gamma_ = static_cast<double>(dp) * unit / (1.0 - static_cast<double>(dp) * unit);
    bool any_big = false;
    for (const Group& g : groups_) any_big = any_big || g.Gp >= kSkipMinGroup;
    skip_ = skip_inactive && any_big && p_.n_steps > 0 && static_cast<double>(dp) * unit < 0.01 &&
            2.0 * static_cast<double>(n_blocks_) * static_cast<double>(n_tiles_ * R) <= kCertMaxBytes;
    nskip_.assign(static_cast<size_t>(nt_) * 8, 0);
    if (!skip_) return;
    cert_.assign(static_cast<size_t>(n_blocks_ * n_tiles_ * R), kNoCert);
    tpath_.assign(n_tiles_, 0.0);
    tkey_.assign(n_tiles_, 0xFFFF);
    tmaxn_.assign(n_tiles_, 0.0);
    dstep_.assign(Mp, 0.0);
    wnrm_.assign(Mp, 0.0);
    inv_xn_.resize(n);
    // 1 / ||x_i||, rounded down by a relative 1e-12 (more than the double sum's error): a
    // smaller 1/||x|| only makes a certificate weaker
    const T* Xp = Xp_;
    double* inv_xn = inv_xn_.data();
    KDCORE_OMP(parallel for num_threads(nt_) schedule(static))
    for (index_t i = 0; i < n; ++i) {
        const double n2 = sq_norm(Xp + i * dp, nullptr, dp);
        inv_xn[i] = n2 > 0.0 ? (1.0 - 1e-12) / std::sqrt(n2) : kNaN;
    }
    for (index_t jp = 0; jp < Mp; ++jp) wnrm_[jp] = std::sqrt(sq_norm(&Wp_[jp * dp], nullptr, dp)) * (1.0 + 1e-12);
    refresh_tiles(0, n_tiles_);
    wold_.resize(static_cast<size_t>(nt_) * dp);
}

// thr_T = -(P_T + margin_T), margin_T = 2 gamma max_s ||w_q(s)|| plus slack for the double
// arithmetic of the certificates, kept as the key of cert_key (no skipping once anything is
// not finite)
template <class T>
void Engine<T>::refresh_tiles(index_t t0, index_t t1) {
    for (index_t tl = t0; tl < t1; ++tl) {
        double step = 0.0, mx = tmaxn_[tl];
        for (index_t q = 0; q < kNT; ++q) {
            step = std::max(step, dstep_[tl * kNT + q]);
            mx = std::max(mx, wnrm_[tl * kNT + q]);
        }
        tmaxn_[tl] = mx;
        tpath_[tl] += step * (1.0 + 1e-9);
        const double margin = (2.0 * gamma_ + 1e-12) * mx + 1e-12 * tpath_[tl];
        const double th = -(tpath_[tl] + margin);
        tkey_[tl] = cert_key(std::isfinite(th) ? th : kNaN);
    }
}

// What the row blocks of group gi read (see Block).
template <class T>
Block<T> Engine<T>::block(std::size_t gi, bool do_update) {
    const Group& g = groups_[gi];
    const bool skip_g = skip_ && g.Gp >= kSkipMinGroup;
    Block<T> b;
    b.X = Xp_;
    b.dp = dp_;
    b.n = p_.n;
    b.n_train = p_.n_train;
    b.W = &Wp_[g.j0 * dp_];
    b.Gp = g.Gp;
    b.coef = &coef_[g.j0];
    b.Kg = g.k1 - g.k0;
    b.net = &netloc_[g.k0];
    b.nend = gend_[gi];
    b.ltype = p_.loss_type + g.k0;
    b.tgt = &tgt_ptr_[g.k0];
    b.y = p_.y;
    b.inv_ntrain = 1.0 / static_cast<double>(p_.n_train);
    b.backward = do_update;
    b.cert = skip_g ? cert_.data() + g.j0 / kNT * R : nullptr;
    b.cstride = n_tiles_ * R;
    b.key = skip_ ? tkey_.data() + g.j0 / kNT : nullptr;
    b.path = skip_ ? tpath_.data() + g.j0 / kNT : nullptr;
    b.inv_xn = skip_ ? inv_xn_.data() : nullptr;
    return b;
}

// The step of group g inside the parallel region (after the row blocks): the table
// networks' gradient rows back to G_{j+1}, then, over neurons, the threads' gradients
// summed, the projected step, and the step's length and new norm for the certificates.
template <class T>
void Engine<T>::step_group(const Group& g, int tid, int used) {
    const index_t dp = dp_;
    T* G = &Gbuf_[tid * gstride_];
    // table networks: row j + 1 of this thread's gradient holds G_{j+1} + G_j
    for (index_t k = 0; k < g.k1 - g.k0; ++k) {
        const NetLoc& nl = netloc_[g.k0 + k];
        if (!table_network(nl)) continue;
        for (index_t j = nl.pos0; j < nl.pos0 + nl.stride * (nl.m / 2); j += nl.stride) {
            const T* gj = G + j * dp;
            T* gj1 = G + (j + 1) * dp;
            for (index_t c = 0; c < dp; ++c) gj1[c] -= gj[c];
        }
    }
    KDCORE_OMP(barrier)
    KDCORE_OMP(for schedule(static))
    for (index_t jl = 0; jl < g.Gp; ++jl) {
        const index_t jp = g.j0 + jl;
        const index_t k = jnet_[jp];
        if (k < 0) continue;
        T* w = &Wp_[jp * dp];
        T* wo = skip_ ? &wold_[tid * dp] : nullptr;
        if (wo) std::memcpy(wo, w, dp * sizeof(T));
        update(w, &W0p_[jp * dp], &Gbuf_[jl * dp], gstride_, used, dp, static_cast<T>(p_.lr[k]), bound_[k]);
        if (wo) {  // the step's length and the new norm, for the tile's certificates
            dstep_[jp] = std::sqrt(sq_norm(w, wo, dp)) * (1.0 + 1e-12);
            wnrm_[jp] = std::sqrt(sq_norm(w, nullptr, dp)) * (1.0 + 1e-12);
        }
    }
}

template <class T>
void Engine<T>::run_pass(bool do_update, double* out, index_t out_stride) {
    const index_t n = p_.n, dp = dp_;
    const double inv_ntrain = 1.0 / static_cast<double>(p_.n_train);
    const index_t n_eval = n - p_.n_train;
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
        const Group& g = groups_[gi];
        const index_t Kg = g.k1 - g.k0;
        const Block<T> b = block(gi, do_update);
        ExceptionCatcher catcher;
        int used = 1;  // threads the runtime actually gave (only their buffers are summed)
        KDCORE_OMP(parallel num_threads(nt_))
        {
            const int tid = thread_num();
            KDCORE_OMP(single)
            used = team_size();
            T* G = &Gbuf_[tid * gstride_];
            T* H = &Hbuf_[tid * hstride_];
            double* acc = &accbuf_[tid * Kmax_ * 4];
            std::fill(acc, acc + Kg * 4, 0.0);
            if (do_update) std::fill(G, G + g.Gp * dp, T(0));
            KDCORE_OMP(for schedule(static))
            for (index_t blk = 0; blk < n_blocks_; ++blk) {
                catcher.run([&] {
                    const index_t r0 = blk * R, r1 = std::min(n, r0 + R);
                    row_block_(b, blk, r0, r1, H, G, acc, &nskip_[tid * 8]);
                });
            }
            if (do_update) step_group(g, tid, used);
        }
        catcher.rethrow();
        if (skip_ && do_update) refresh_tiles(g.j0 / kNT, (g.j0 + g.Gp) / kNT);
        for (index_t k = g.k0; k < g.k1; ++k) {
            double s[4] = {0, 0, 0, 0};
            for (int t = 0; t < used; ++t)
                for (int c = 0; c < 4; ++c) s[c] += accbuf_[t * Kmax_ * 4 + (k - g.k0) * 4 + c];
            double* o = out + k * out_stride;
            o[0] = (s[0] + ent_[2 * k]) * inv_ntrain;
            o[1] = s[1] * inv_ntrain;
            o[2] = n_eval > 0 ? (s[2] + ent_[2 * k + 1]) / static_cast<double>(n_eval) : kNaN;
            o[3] = n_eval > 0 ? s[3] / static_cast<double>(n_eval) : kNaN;
        }
    }
}

template <class T>
void Engine<T>::unpack(double* skip_stats) const {
    for (index_t jp = 0; jp < Mp_; ++jp)
        if (jglob_[jp] >= 0) std::memcpy(p_.W + jglob_[jp] * p_.d, &Wp_[jp * dp_], p_.d * sizeof(T));
    if (skip_stats) {  // (row, tile) forward entries skipped, and all of them
        index_t ns = 0;
        for (int t = 0; t < nt_; ++t) ns += nskip_[t * 8];
        skip_stats[0] = static_cast<double>(ns);
        skip_stats[1] = static_cast<double>(p_.n_steps + 1) * static_cast<double>(p_.n) * static_cast<double>(n_tiles_);
    }
}

}  // namespace

template <class T>
void twolayer_train(const T* X, index_t n, index_t n_train, index_t d, T* W, const T* W0, const T* a,
                    const index_t* offsets, index_t K, const std::int32_t* loss_type, const T* targets, const T* y,
                    const double* lr, const double* radius, index_t n_steps, int n_threads, double* hist,
                    double* final_vals, bool skip_inactive, double* skip_stats) {
    if (n <= 0 || d <= 0 || K <= 0) fail("twolayer_train: empty input");
    if (n_train <= 0 || n_train > n) fail("twolayer_train: need 0 < n_train <= n");
    if (n_steps < 0) fail("twolayer_train: n_steps must be >= 0");
    const Problem<T> p{X, n, n_train, d, W, W0, a, offsets, K, loss_type, targets, y, lr, radius, n_steps};
    Engine<T> engine(p, n_threads, skip_inactive);
    for (index_t t = 0; t < n_steps; ++t) {
        check_interrupt();
        engine.run_pass(true, hist + t * 4, n_steps * 4);
    }
    check_interrupt();
    engine.run_pass(false, final_vals, 4);
    engine.unpack(skip_stats);
}

template void twolayer_train<float>(const float*, index_t, index_t, index_t, float*, const float*, const float*,
                                    const index_t*, index_t, const std::int32_t*, const float*, const float*,
                                    const double*, const double*, index_t, int, double*, double*, bool, double*);
template void twolayer_train<double>(const double*, index_t, index_t, index_t, double*, const double*, const double*,
                                     const index_t*, index_t, const std::int32_t*, const double*, const double*,
                                     const double*, const double*, index_t, int, double*, double*, bool, double*);

}  // namespace kdcore
