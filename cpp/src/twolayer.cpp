// Projected gradient descent for a batch of two-layer ReLU networks; the
// equations, the numerics and the memory plan are in kdcore/twolayer.hpp.
#include "kdcore/twolayer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <limits>
#include <type_traits>
#include <vector>

// The vector helpers are always inlined into the SIMD clones; no AVX value crosses an ABI boundary.
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


// What one row block of one group needs.
template <class T>
struct Block {
    const T* X;          // padded rows, stride dp
    index_t dp, n, n_train;
    const T* W;          // group weights, Gp x dp
    index_t Gp;          // neurons of the group, padded to kNT
    const T* coef;       // Gp: a_j / sqrt(m_k) (0 on padding)
    index_t Kg;          // networks in the group
    const index_t* nb;   // Kg + 1 local neuron offsets
    const std::int32_t* ltype;
    const unsigned char* sym;  // Kg: 1 if every pair (2i, 2i+1) of the network has coef_{2i+1} = -coef_{2i}
    const T* const* tgt; // Kg target rows (length n)
    const T* y;
    double inv_ntrain;
    bool backward;
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

// H[rr][j + q] = x_{r0+rr} . W_{j+q} for RT rows and the kNT neurons of one tile, over the padded features.
// pf (may be null): RT rows of the next row block to prefetch into L2, one 64-byte
// line per row every 64 bytes of k, so that the next block streams in from DRAM
// while this one is computed (the first neuron tile of a block passes pf).
template <class T, int RT>
inline __attribute__((always_inline)) void fwd_tile(const T* Xr, index_t dp, const T* w, index_t Gp, T* H,
                                                    const T* pf = nullptr) {
    using V = typename VT<T>::V;
    constexpr int L = VT<T>::L;
    V acc[RT][kNT];
    for (int r = 0; r < RT; ++r)
        for (int q = 0; q < kNT; ++q) acc[r][q] = V{};
    for (index_t k = 0; k < dp; k += L) {
#if defined(__GNUC__) || defined(__clang__)
        if (pf && (k * static_cast<index_t>(sizeof(T))) % 64 == 0)
            for (int r = 0; r < RT; ++r) __builtin_prefetch(pf + r * dp + k, 0, 2);
#endif
        V wv[kNT];
        for (int q = 0; q < kNT; ++q) wv[q] = vload<V>(w + q * dp + k);
        for (int r = 0; r < RT; ++r) {
            const V x = vload<V>(Xr + r * dp + k);
            for (int q = 0; q < kNT; ++q) acc[r][q] += x * wv[q];
        }
    }
    for (int r = 0; r < RT; ++r) hsum4<T>(acc[r], H + r * Gp);
}

// G_{j+q}[k .. k + NBX L) += sum over the listed rows of c_q x_row[k ..], q = 0, 1. The lists
// hold each row's offset in the block (row * dp) and its two coefficients, gathered once per
// pair, so the inner loop is loads and multiply-adds only.
template <class T, int NBX>
inline __attribute__((always_inline)) void bwd_chunk(const T* Xb, index_t dp, const std::int32_t* off, const T* cu0,
                                                     const T* cu1, index_t cnt, index_t k, T* gj) {
    using V = typename VT<T>::V;
    constexpr int L = VT<T>::L;
    V s0[NBX], s1[NBX];
    for (int v = 0; v < NBX; ++v) s0[v] = s1[v] = V{};
    for (index_t t = 0; t < cnt; ++t) {
        const T* xr = Xb + off[t] + k;
        const V c0 = cu0[t] - V{}, c1 = cu1[t] - V{};  // a broadcast (x - 0 is x exactly, so it folds)
        for (int v = 0; v < NBX; ++v) {
            const V x = vload<V>(xr + v * L);
            s0[v] += c0 * x;
            s1[v] += c1 * x;
        }
    }
    for (int v = 0; v < NBX; ++v) {
        vstore(gj + k + v * L, vload<V>(gj + k + v * L) + s0[v]);
        vstore(gj + dp + k + v * L, vload<V>(gj + dp + k + v * L) + s1[v]);
    }
}

// The same sums split by row kind (a symmetric pair's two neurons have opposite output
// signs, so where both are active with the same loss gradient, c_{j+1} = -c_j exactly):
//   G_j     += sum_{both} c_j x + sum_{only j}     c_j     x
//   G_{j+1} -= sum_{both} c_j x - sum_{only j + 1} c_{j+1} x
// One multiply-add per shared row instead of two: near initialisation (and in the
// lazy regime the theory covers, weights within B / sqrt(m) of W0) almost every active
// row is shared, so this halves the backward again.
template <class T, int NBX>
inline __attribute__((always_inline)) void bwd_chunk_sym(const T* Xb, index_t dp, const std::int32_t* ob,
                                                         const T* cb, index_t nb, const std::int32_t* o0,
                                                         const T* c0s, index_t n0, const std::int32_t* o1,
                                                         const T* c1s, index_t n1, index_t k, T* gj) {
    using V = typename VT<T>::V;
    constexpr int L = VT<T>::L;
    V s0[NBX], s1[NBX];
    for (int v = 0; v < NBX; ++v) s0[v] = V{};
    for (index_t t = 0; t < nb; ++t) {
        const T* xr = Xb + ob[t] + k;
        const V c = cb[t] - V{};
        for (int v = 0; v < NBX; ++v) s0[v] += c * vload<V>(xr + v * L);
    }
    for (int v = 0; v < NBX; ++v) s1[v] = -s0[v];
    for (index_t t = 0; t < n0; ++t) {
        const T* xr = Xb + o0[t] + k;
        const V c = c0s[t] - V{};
        for (int v = 0; v < NBX; ++v) s0[v] += c * vload<V>(xr + v * L);
    }
    for (index_t t = 0; t < n1; ++t) {
        const T* xr = Xb + o1[t] + k;
        const V c = c1s[t] - V{};
        for (int v = 0; v < NBX; ++v) s1[v] += c * vload<V>(xr + v * L);
    }
    for (int v = 0; v < NBX; ++v) {
        vstore(gj + k + v * L, vload<V>(gj + k + v * L) + s0[v]);
        vstore(gj + dp + k + v * L, vload<V>(gj + dp + k + v * L) + s1[v]);
    }
}

// f of one network whose pairs are all symmetric: sum_i c_{2i} (relu(h_{2i}) - relu(h_{2i+1}))
// in double, four pairs per vector step for float. The difference of two floats is exact in
// double, so a pair with equal pre-activations adds exactly 0 (f = 0 at the symmetric
// initialisation, as in the scalar form); relu is written x < 0 ? 0 : x, std::max's NaN rule.
template <class T>
inline __attribute__((always_inline)) double pair_f(const T* h, const T* c, index_t np) {
    double f = 0.0;
    index_t p = 0;
    if constexpr (std::is_same<T, float>::value) {
        typedef float F8 __attribute__((vector_size(32)));
        typedef double D4 __attribute__((vector_size(32)));
        const D4 zero = {0.0, 0.0, 0.0, 0.0};
        D4 acc = zero;
        for (; p + 4 <= np; p += 4) {
            const F8 hv = vload<F8>(h + 2 * p), cv = vload<F8>(c + 2 * p);
            D4 e = __builtin_convertvector(__builtin_shufflevector(hv, hv, 0, 2, 4, 6), D4);
            D4 o = __builtin_convertvector(__builtin_shufflevector(hv, hv, 1, 3, 5, 7), D4);
            const D4 ce = __builtin_convertvector(__builtin_shufflevector(cv, cv, 0, 2, 4, 6), D4);
            e = e < zero ? zero : e;
            o = o < zero ? zero : o;
            acc += ce * (e - o);
        }
        f = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
    for (; p < np; ++p) {
        const double r0 = std::max<double>(h[2 * p], 0.0), r1 = std::max<double>(h[2 * p + 1], 0.0);
        f += static_cast<double>(c[2 * p]) * (r0 - r1);
    }
    return f;
}

// h_j <- (h_j > 0) ? gs c_j : 0, the coefficients of the backward pass, a vector at a time.
template <class T>
inline __attribute__((always_inline)) void grad_coefs(T* h, const T* c, index_t m, T gs) {
    using V = typename VT<T>::V;
    constexpr int L = VT<T>::L;
    const V z = V{}, g = V{} + gs;
    index_t j = 0;
    for (; j + L <= m; j += L) {
        const V hv = vload<V>(h + j);
        vstore(h + j, hv > z ? g * vload<V>(c + j) : z);
    }
    for (; j < m; ++j) h[j] = h[j] > T(0) ? gs * c[j] : T(0);
}

// One row block [r0, r1): forward, per-sample loss/error/gradient coefficient,
// then G_j += sum_rows C_ij x_i. H (rows x Gp) is overwritten by C.
// acc: Kg x 4 (train loss, train err, eval loss, eval err) sums.
template <class T, int RT, int NB>
inline __attribute__((always_inline)) void row_block_impl(const Block<T>& b, index_t r0, index_t r1, T* H, T* G,
                                                          double* acc) {
    constexpr int L = VT<T>::L;
    const index_t dp = b.dp, Gp = b.Gp;
    // Neuron tile outer (its weights stay in L1), rows inner (the block stays in L2).
    const index_t n_next = std::min<index_t>(b.n, r1 + (r1 - r0)) - r1;  // rows of the next block
    for (index_t j = 0; j < Gp; j += kNT) {
        const T* w = b.W + j * dp;
        index_t r = r0;
        for (; r + RT <= r1; r += RT) {
            const T* pf = (j == 0 && r - r0 + RT <= n_next) ? b.X + (r + (r1 - r0)) * dp : nullptr;
            fwd_tile<T, RT>(b.X + r * dp, dp, w, Gp, H + (r - r0) * Gp + j, pf);
        }
        if constexpr (RT > 4)
            for (; r + 4 <= r1; r += 4) fwd_tile<T, 4>(b.X + r * dp, dp, w, Gp, H + (r - r0) * Gp + j);
        for (; r < r1; ++r) fwd_tile<T, 1>(b.X + r * dp, dp, w, Gp, H + (r - r0) * Gp + j);
    }

    for (index_t i = r0; i < r1; ++i) {
        T* h = H + (i - r0) * Gp;
        const bool train = i < b.n_train;
        const double yi = static_cast<double>(b.y[i]);
        for (index_t k = 0; k < b.Kg; ++k) {
            const index_t j0 = b.nb[k], j1 = b.nb[k + 1];
            // f summed over the pairs (j, j + m/2), stored next to each other (positions 2i, 2i+1):
            // exactly 0 at the symmetric initialisation. c_j r_j + c_j' r_j' is written c_j (r_j - r_j')
            // when c_j' = -c_j, so that an FMA contraction cannot leave a rounding residue where r_j = r_j'.
            double f = 0.0;
            index_t j = j0;
            if (b.sym[k]) {
                f = pair_f<T>(h + j0, b.coef + j0, (j1 - j0) / 2);
                j = j0 + 2 * ((j1 - j0) / 2);
            } else {
                for (; j + 1 < j1; j += 2) {
                    const double c0 = b.coef[j], c1 = b.coef[j + 1];
                    const double r0 = std::max<double>(h[j], 0.0), r1 = std::max<double>(h[j + 1], 0.0);
                    f += (c1 == -c0) ? c0 * (r0 - r1) : c0 * r0 + c1 * r1;
                }
            }
            if (j < j1) f += static_cast<double>(b.coef[j]) * std::max<double>(h[j], 0.0);
            const double t = static_cast<double>(b.tgt[k][i]);
            double l, g;
            if (b.ltype[k] == 0) {  // soft: KL(p || sigmoid f); the entropy term p ln p + (1-p) ln(1-p) is added once per run
                // softplus(+-f) = max(+-f, 0) + ln(1 + e^-|f|) and sigmoid(f) from the same e^-|f|
                const double e = std::exp(-std::fabs(f)), lp = std::log1p(e);
                l = t * (std::max(-f, 0.0) + lp) + (1.0 - t) * (std::max(f, 0.0) + lp);
                g = (f >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e)) - t;
            } else {  // hard: logistic, l = softplus(-t f), dl/df = -t sigmoid(-t f)
                const double z = -t * f, e = std::exp(-std::fabs(z));
                l = std::max(z, 0.0) + std::log1p(e);
                g = -t * (z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e));
            }
            double* a = acc + 4 * k + (train ? 0 : 2);
            a[0] += l;
            a[1] += (yi * f <= 0.0) ? 1.0 : 0.0;
            const T gs = train ? static_cast<T>(g * b.inv_ntrain) : T(0);
            grad_coefs<T>(h + j0, b.coef + j0, j1 - j0, gs);
        }
        for (index_t j = b.nb[b.Kg]; j < Gp; ++j) h[j] = T(0);
    }
    if (!b.backward) return;
    const index_t nr = std::min(r1, b.n_train) - r0;
    if (nr <= 0) return;
    // Backward by pairs of neurons (a symmetric pair shares its activation pattern at
    // initialisation): only the rows where one of the two is active are visited, so about
    // half of the multiply-adds of a dense G^T X are skipped. Skipping exact zeros leaves
    // every sum unchanged.
    const T* Xb = b.X + r0 * dp;
    // Pairs go in batches of kPB: the row lists of the batch first (per pair, the rows by kind
    // with their offset in the block and their coefficients: any active (u), shared,
    // c_{j+1} = -c_j != 0 (b), only j (0), only j + 1 (1)), then the features in chunks of NB
    // vectors, outermost: a chunk of the row block (kR rows x NB L values, 16 KiB for float on
    // v4) is read from L1 by every pair of the batch, where streaming the whole block from L2
    // once per pair bound the backward by L2 bandwidth (one load per multiply-add).
    constexpr index_t kPB = 8;
    std::int32_t ou[kPB][kR], ob[kPB][kR], o0[kPB][kR], o1[kPB][kR];
    T cu0[kPB][kR], cu1[kPB][kR], cb[kPB][kR], c0s[kPB][kR], c1s[kPB][kR];
    index_t cn[kPB][4], pj[kPB];
    bool symk[kPB];
    for (index_t jb = 0; jb < Gp; jb += 2 * kPB) {
        const index_t np = std::min<index_t>(kPB, (Gp - jb) / 2);
        index_t live = 0;
        for (index_t p = 0; p < np; ++p) {
            const index_t j = jb + 2 * p;
            index_t cnt = 0, nb = 0, n0 = 0, n1 = 0;
            const index_t q = live;
            // branch-free: each row is written to every list and kept where it belongs (about
            // half of the rows are active, so branches on the kind would mispredict half the time)
            for (index_t rr = 0; rr < nr; ++rr) {
                const T c0 = H[rr * Gp + j], c1 = H[rr * Gp + j + 1];
                const auto off = static_cast<std::int32_t>(rr * dp);
                const index_t a0 = c0 != T(0), a1 = c1 != T(0);
                const index_t sh = a0 & static_cast<index_t>(c1 == -c0);
                ou[q][cnt] = off, cu0[q][cnt] = c0, cu1[q][cnt] = c1;
                cnt += a0 | a1;
                ob[q][nb] = off, cb[q][nb] = c0;
                nb += sh;
                o0[q][n0] = off, c0s[q][n0] = c0;
                n0 += a0 & (sh ^ 1);
                o1[q][n1] = off, c1s[q][n1] = c1;
                n1 += a1 & (sh ^ 1);
            }
            if (cnt == 0) continue;
            cn[q][0] = cnt, cn[q][1] = nb, cn[q][2] = n0, cn[q][3] = n1;
            pj[q] = j;
            // the split pays when it saves multiply-adds: shared rows cost 1, the others 1 each
            // (nb + n0 + n1 <= 2 cnt always; below 1.75 cnt it is worth the third loop)
            symk[q] = 4 * (nb + n0 + n1) < 7 * cnt;
            ++live;
        }
        auto chunk = [&](auto nbx, index_t k) {
            constexpr int NBX = decltype(nbx)::value;
            for (index_t q = 0; q < live; ++q) {
                T* gj = G + pj[q] * dp;
                if (symk[q])
                    bwd_chunk_sym<T, NBX>(Xb, dp, ob[q], cb[q], cn[q][1], o0[q], c0s[q], cn[q][2], o1[q], c1s[q],
                                          cn[q][3], k, gj);
                else
                    bwd_chunk<T, NBX>(Xb, dp, ou[q], cu0[q], cu1[q], cn[q][0], k, gj);
            }
        };
        index_t k = 0;
        for (; k + NB * L <= dp; k += NB * L) chunk(std::integral_constant<int, NB>{}, k);
        for (; k + (NB / 2) * L <= dp; k += (NB / 2) * L) chunk(std::integral_constant<int, NB / 2>{}, k);
        for (; k < dp; k += L) chunk(std::integral_constant<int, 1>{}, k);
    }
}

// Manual multiversioning of the row-block kernel (the KDCORE_SIMD_CLONES idea with a
// different register tiling per ISA): x86-64-v4 has 32 vector registers, so it takes
// 6 rows x 4 neurons forward and 2 neurons x 8 vectors backward; x86-64-v3 (16
// registers) and the baseline take 2 x 4 and 2 x 4. Picked once at load time.
#if KDCORE_HAVE_MULTIVERSION
#define KDCORE_TL_V4 __attribute__((target("arch=x86-64-v4")))
#define KDCORE_TL_V3 __attribute__((target("arch=x86-64-v3")))
#else
#define KDCORE_TL_V4
#define KDCORE_TL_V3
#endif
template <class T>
using RowBlockFn = void (*)(const Block<T>&, index_t, index_t, T*, T*, double*);
template <class T>
KDCORE_TL_V4 void row_block_v4(const Block<T>& b, index_t r0, index_t r1, T* H, T* G, double* acc) {
    row_block_impl<T, 6, 8>(b, r0, r1, H, G, acc);
}
template <class T>
KDCORE_TL_V3 void row_block_v3(const Block<T>& b, index_t r0, index_t r1, T* H, T* G, double* acc) {
    row_block_impl<T, 2, 4>(b, r0, r1, H, G, acc);
}
template <class T>
void row_block_base(const Block<T>& b, index_t r0, index_t r1, T* H, T* G, double* acc) {
    row_block_impl<T, 2, 4>(b, r0, r1, H, G, acc);
}
// KDCORE_TWOLAYER_ISA=v3|baseline caps the choice (for benchmarking the variants).
template <class T>
RowBlockFn<T> pick_row_block() {
    const char* cap = std::getenv("KDCORE_TWOLAYER_ISA");
    const std::string c = cap ? cap : "";
#if KDCORE_HAVE_MULTIVERSION
    __builtin_cpu_init();
    if (c.empty() && __builtin_cpu_supports("x86-64-v4")) return &row_block_v4<T>;
    if ((c.empty() || c == "v3") && __builtin_cpu_supports("x86-64-v3")) return &row_block_v3<T>;
#endif
    return &row_block_base<T>;
}
template <class T>
void row_block(const Block<T>& b, index_t r0, index_t r1, T* H, T* G, double* acc) {
    static const RowBlockFn<T> fn = pick_row_block<T>();
    fn(b, r0, r1, H, G, acc);
}

// W_j <- W_j - lr sum_t G_t[j]; then the projection onto ||W_j - W0_j|| <= bound.
template <class T>
inline __attribute__((always_inline)) void update_impl(T* w, const T* w0, const T* G, index_t stride_t, int nt,
                                                       index_t dp, T lr, double bound) {
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
KDCORE_SIMD_CLONES void update_f32(float* w, const float* w0, const float* G, index_t st, int nt, index_t dp, float lr,
                                   double bound) {
    update_impl<float>(w, w0, G, st, nt, dp, lr, bound);
}
KDCORE_SIMD_CLONES void update_f64(double* w, const double* w0, const double* G, index_t st, int nt, index_t dp,
                                   double lr, double bound) {
    update_impl<double>(w, w0, G, st, nt, dp, lr, bound);
}
inline void update(float* w, const float* w0, const float* G, index_t st, int nt, index_t dp, float lr, double b) {
    update_f32(w, w0, G, st, nt, dp, lr, b);
}
inline void update(double* w, const double* w0, const double* G, index_t st, int nt, index_t dp, double lr, double b) {
    update_f64(w, w0, G, st, nt, dp, lr, b);
}

struct Group {
    index_t k0, k1;     // networks [k0, k1)
    index_t j0, Gp;     // first padded neuron, padded neuron count
};

}  // namespace

template <class T>
void twolayer_train(const T* X, index_t n, index_t n_train, index_t d, T* W, const T* W0, const T* a,
                    const index_t* offsets, index_t K, const std::int32_t* loss_type, const T* targets, const T* y,
                    const double* lr, const double* radius, index_t n_steps, int n_threads, double* hist,
                    double* final_vals) {
    if (n <= 0 || d <= 0 || K <= 0) fail("twolayer_train: empty input");
    if (n_train <= 0 || n_train > n) fail("twolayer_train: need 0 < n_train <= n");
    if (n_steps < 0) fail("twolayer_train: n_steps must be >= 0");
    if (offsets[0] != 0) fail("twolayer_train: offsets[0] must be 0");
    for (index_t k = 0; k < K; ++k) {
        if (offsets[k + 1] <= offsets[k]) fail("twolayer_train: every network needs m >= 1");
        if (loss_type[k] != 0 && loss_type[k] != 1) fail("twolayer_train: loss_type must be 0 (soft) or 1 (hard)");
    }
    const int nt = resolve_threads(n_threads);
    const index_t dp = (d + VT<T>::L - 1) / VT<T>::L * VT<T>::L;  // features padded to whole vectors
    const double nan = std::numeric_limits<double>::quiet_NaN();

    // Pack networks into groups whose weights + gradient take about 512 KiB (L2).
    const index_t cap = std::max<index_t>(kNT, (index_t(512) * 1024 / (2 * dp * index_t(sizeof(T)))) / kNT * kNT);
    std::vector<Group> groups;
    index_t Mp = 0;
    for (index_t k = 0; k < K;) {
        index_t k1 = k + 1;
        index_t cnt = offsets[k1] - offsets[k];
        while (k1 < K && cnt + (offsets[k1 + 1] - offsets[k1]) <= cap) {
            cnt += offsets[k1 + 1] - offsets[k1];
            ++k1;
        }
        const index_t Gp = (cnt + kNT - 1) / kNT * kNT;
        groups.push_back({k, k1, Mp, Gp});
        Mp += Gp;
        k = k1;
    }
    index_t Gmax = 0, Kmax = 0;
    for (const Group& g : groups) {
        Gmax = std::max(Gmax, g.Gp);
        Kmax = std::max(Kmax, g.k1 - g.k0);
    }
    const index_t R = kR;
    const index_t n_blocks = (n + R - 1) / R;

    // Padded copies: X (n x dp), W and W0 (Mp x dp, grouped), per-neuron coefficients.
    // X is used in place when d fills whole vectors (d = 784 does); otherwise a zero-padded copy.
    std::vector<T> Xcopy;
    const T* Xp = X;
    if (dp != d) {
        Xcopy.assign(static_cast<size_t>(n * dp), T(0));
        for (index_t i = 0; i < n; ++i) std::memcpy(&Xcopy[i * dp], X + i * d, d * sizeof(T));
        Xp = Xcopy.data();
    }
    std::vector<T> Wp(static_cast<size_t>(Mp * dp), T(0)), W0p(static_cast<size_t>(Mp * dp), T(0));
    std::vector<T> coef(Mp, T(0));
    std::vector<unsigned char> sym(K, 1);
    std::vector<index_t> nb_all;            // per group: local offsets
    std::vector<index_t> nb_start(groups.size());
    std::vector<index_t> jglob(Mp, -1);     // padded neuron -> row of W
    std::vector<index_t> jnet(Mp, -1);      // padded neuron -> network
    for (size_t gi = 0; gi < groups.size(); ++gi) {
        const Group& g = groups[gi];
        nb_start[gi] = static_cast<index_t>(nb_all.size());
        index_t loc = 0;
        for (index_t k = g.k0; k < g.k1; ++k) {
            nb_all.push_back(loc);
            const index_t loc0 = loc;
            const index_t m = offsets[k + 1] - offsets[k];
            const double s = 1.0 / std::sqrt(static_cast<double>(m));
            // local order: the pairs (i, i + m/2) next to each other, an odd last neuron alone
            for (index_t pos = 0; pos < m; ++pos, ++loc) {
                const index_t h2 = m / 2;
                const index_t j = offsets[k] + (pos < 2 * h2 ? pos / 2 + (pos % 2) * h2 : m - 1);
                const index_t jp = g.j0 + loc;
                std::memcpy(&Wp[jp * dp], W + j * d, d * sizeof(T));
                std::memcpy(&W0p[jp * dp], W0 + j * d, d * sizeof(T));
                coef[jp] = static_cast<T>(static_cast<double>(a[j]) * s);
                jglob[jp] = j;
                jnet[jp] = k;
            }
            // every pair (2i, 2i+1) symmetric (the symmetric init): f takes the vector path
            for (index_t i = 0; i + 1 < m; i += 2)
                if (coef[g.j0 + loc0 + i + 1] != -coef[g.j0 + loc0 + i]) sym[k] = 0;
        }
        nb_all.push_back(loc);
    }
    std::vector<const T*> tgt_ptr(K);
    for (index_t k = 0; k < K; ++k) tgt_ptr[k] = targets + k * n;
    std::vector<double> bound(K);
    for (index_t k = 0; k < K; ++k) {
        const double m = static_cast<double>(offsets[k + 1] - offsets[k]);
        bound[k] = radius[k] > 0 ? radius[k] / std::sqrt(m) : -1.0;
    }

    // Thread-local buffers.
    const index_t gstride = Gmax * dp;
    std::vector<T> Gbuf(static_cast<size_t>(nt) * gstride);
    std::vector<T> Hbuf(static_cast<size_t>(nt) * R * Gmax);
    std::vector<double> accbuf(static_cast<size_t>(nt) * Kmax * 4);
    const double inv_ntrain = 1.0 / static_cast<double>(n_train);
    const index_t n_eval = n - n_train;
    // The soft loss's entropy term sum_i p_i ln p_i + (1 - p_i) ln(1 - p_i) does not
    // change with W: summed once here (train and eval rows), added to every reported loss.
    std::vector<double> ent(static_cast<size_t>(2 * K), 0.0);
    for (index_t k = 0; k < K; ++k) {
        if (loss_type[k] != 0) continue;
        for (index_t i = 0; i < n; ++i) {
            const double t = static_cast<double>(targets[k * n + i]);
            const double h = (t > 0.0 ? t * std::log(t) : 0.0) + (t < 1.0 ? (1.0 - t) * std::log1p(-t) : 0.0);
            ent[2 * k + (i < n_train ? 0 : 1)] += h;
        }
    }

    auto run_pass = [&](bool do_update, double* out, index_t out_stride) {
        // out[k * out_stride + 0..3]
        for (size_t gi = 0; gi < groups.size(); ++gi) {
            const Group& g = groups[gi];
            const index_t Kg = g.k1 - g.k0;
            Block<T> b{Xp, dp, n, n_train, &Wp[g.j0 * dp], g.Gp, &coef[g.j0], Kg, &nb_all[nb_start[gi]],
                       loss_type + g.k0, &sym[g.k0], &tgt_ptr[g.k0], y, inv_ntrain, do_update};
            ExceptionCatcher catcher;
            int used = 1;  // threads the runtime actually gave (only their buffers are summed)
            KDCORE_OMP(parallel num_threads(nt))
            {
                const int tid = thread_num();
                KDCORE_OMP(single)
                used = team_size();
                T* G = &Gbuf[tid * gstride];
                T* H = &Hbuf[tid * R * Gmax];
                double* acc = &accbuf[tid * Kmax * 4];
                std::fill(acc, acc + Kg * 4, 0.0);
                if (do_update) std::fill(G, G + g.Gp * dp, T(0));
                KDCORE_OMP(for schedule(static))
                for (index_t blk = 0; blk < n_blocks; ++blk) {
                    catcher.run([&] {
                        const index_t r0 = blk * R, r1 = std::min(n, r0 + R);
                        row_block(b, r0, r1, H, G, acc);
                    });
                }
                if (do_update) {
                    KDCORE_OMP(for schedule(static))
                    for (index_t jl = 0; jl < g.Gp; ++jl) {
                        const index_t jp = g.j0 + jl;
                        const index_t k = jnet[jp];
                        if (k < 0) continue;
                        update(&Wp[jp * dp], &W0p[jp * dp], &Gbuf[jl * dp], gstride, used, dp, static_cast<T>(lr[k]),
                               bound[k]);
                    }
                }
            }
            catcher.rethrow();
            for (index_t k = g.k0; k < g.k1; ++k) {
                double s[4] = {0, 0, 0, 0};
                for (int t = 0; t < used; ++t)
                    for (int c = 0; c < 4; ++c) s[c] += accbuf[t * Kmax * 4 + (k - g.k0) * 4 + c];
                double* o = out + k * out_stride;
                o[0] = (s[0] + ent[2 * k]) * inv_ntrain;
                o[1] = s[1] * inv_ntrain;
                o[2] = n_eval > 0 ? (s[2] + ent[2 * k + 1]) / static_cast<double>(n_eval) : nan;
                o[3] = n_eval > 0 ? s[3] / static_cast<double>(n_eval) : nan;
            }
        }
    };

    for (index_t t = 0; t < n_steps; ++t) {
        check_interrupt();
        run_pass(true, hist + t * 4, n_steps * 4);
    }
    check_interrupt();
    run_pass(false, final_vals, 4);

    for (index_t jp = 0; jp < Mp; ++jp)
        if (jglob[jp] >= 0) std::memcpy(W + jglob[jp] * d, &Wp[jp * dp], d * sizeof(T));
}

template void twolayer_train<float>(const float*, index_t, index_t, index_t, float*, const float*, const float*,
                                    const index_t*, index_t, const std::int32_t*, const float*, const float*,
                                    const double*, const double*, index_t, int, double*, double*);
template void twolayer_train<double>(const double*, index_t, index_t, index_t, double*, const double*, const double*,
                                     const index_t*, index_t, const std::int32_t*, const double*, const double*,
                                     const double*, const double*, index_t, int, double*, double*);

}  // namespace kdcore
