// The hollow task-task Gram operator G of the task-type partition (equations in
// kdcore/hollow_gram.hpp).
#include "kdcore/hollow_gram.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>

namespace kdcore {

namespace {

constexpr index_t kTileJ = 512;   // tasks per tile of the dense M = X diag(u) X^T product (L2-resident)
constexpr index_t kChunkJ = 8;    // tasks per register block of the dense q_j = x_j^T M x_j product

double* aligned_zeros(std::size_t n) {
    std::size_t bytes = ((n * sizeof(double) + 63) / 64) * 64;
    if (bytes == 0) bytes = 64;
    void* p = std::aligned_alloc(64, bytes);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    return static_cast<double*>(p);
}

// M[i][i'] += sum_j a_r[j] b_c[j] for 2 rows a and 4 rows b over one task tile: 8 dot
// products sharing the loads (2 x 4 register block). The rows a are X's rows already
// multiplied by u (scale_rows, once per tile and row, not once per (row pair, column
// block)): 6 loads per 8 multiply-adds.
KDCORE_ALWAYS_INLINE void dot_block_2x4_pre_impl(const double* a0, const double* a1, const double* b0,
                                                 const double* b1, const double* b2, const double* b3, index_t len,
                                                 double* out) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    KDCORE_OMP(simd reduction(+ : s0, s1, s2, s3, s4, s5, s6, s7))
    for (index_t j = 0; j < len; ++j) {
        const double x0 = a0[j], x1 = a1[j];
        s0 += x0 * b0[j];
        s1 += x0 * b1[j];
        s2 += x0 * b2[j];
        s3 += x0 * b3[j];
        s4 += x1 * b0[j];
        s5 += x1 * b1[j];
        s6 += x1 * b2[j];
        s7 += x1 * b3[j];
    }
    out[0] += s0; out[1] += s1; out[2] += s2; out[3] += s3;
    out[4] += s4; out[5] += s5; out[6] += s6; out[7] += s7;
}
KDCORE_DISPATCH_V3(void, dot_block_2x4_pre,
                   (const double* a0, const double* a1, const double* b0, const double* b1, const double* b2,
                    const double* b3, index_t len, double* out),
                   (a0, a1, b0, b1, b2, b3, len, out))

KDCORE_ALWAYS_INLINE void scale_rows_impl(const double* X, index_t dp, index_t np, index_t j0, index_t len,
                                          const double* u, double* out) {
    for (index_t i = 0; i < np; ++i) {
        const double* x = X + i * dp + j0;
        double* o = out + i * kTileJ;
        for (index_t j = 0; j < len; ++j) o[j] = x[j] * u[j];
    }
}
KDCORE_DISPATCH_V3(void, scale_rows,
                   (const double* X, index_t dp, index_t np, index_t j0, index_t len, const double* u, double* out),
                   (X, dp, np, j0, len, u, out))

// q_j = x_j^T M x_j = sum_i X_ij (U x_j)_i for kChunkJ consecutive tasks j0.., with
// U the upper triangle of the symmetric M with doubled off-diagonal (so half the
// work of M x_j); y = U x_j for 4 rows at a time, 4 x 8 accumulators in registers.
// U is stored transposed (row i2 holds U[.][i2]) so the 4 coefficients are contiguous.
KDCORE_ALWAYS_INLINE void quad_chunk_impl(const double* X, index_t d_pad, index_t n_pad, const double* M, index_t j0,
                                          double* q) {
    double acc[kChunkJ] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (index_t ib = 0; ib < n_pad; ib += 4) {
        double y0[kChunkJ] = {0}, y1[kChunkJ] = {0}, y2[kChunkJ] = {0}, y3[kChunkJ] = {0};
        for (index_t i2 = ib; i2 < n_pad; ++i2) {  // U is upper triangular
            const double* xr = X + i2 * d_pad + j0;
            const double* mr = M + i2 * n_pad + ib;  // U[ib..ib+3][i2]
            const double m0 = mr[0], m1 = mr[1], m2 = mr[2], m3 = mr[3];
            for (index_t t = 0; t < kChunkJ; ++t) {
                y0[t] += m0 * xr[t];
                y1[t] += m1 * xr[t];
                y2[t] += m2 * xr[t];
                y3[t] += m3 * xr[t];
            }
        }
        const double* x0 = X + ib * d_pad + j0;
        for (index_t t = 0; t < kChunkJ; ++t)
            acc[t] += x0[t] * y0[t] + x0[d_pad + t] * y1[t] + x0[2 * d_pad + t] * y2[t] + x0[3 * d_pad + t] * y3[t];
    }
    for (index_t t = 0; t < kChunkJ; ++t) q[t] = acc[t];
}
KDCORE_DISPATCH_V3(void, quad_chunk,
                   (const double* X, index_t d_pad, index_t n_pad, const double* M, index_t j0, double* q),
                   (X, d_pad, n_pad, M, j0, q))

inline double dotp(const double* a, const double* b, index_t p) {
    double s = 0;
    for (index_t k = 0; k < p; ++k) s += a[k] * b[k];
    return s;
}

}  // namespace

HollowGram::HollowGram(const code_t* task, const code_t* worker, const double* values, index_t nnz, index_t p,
                       code_t n_tasks, code_t n_workers, bool dense)
    : d_(n_tasks), n_(n_workers), p_(p), nnz_(nnz), dense_(dense) {
    if (n_tasks < 1 || n_workers < 1) fail("HollowGram: need at least one task and one worker");
    if (p < 1) fail("HollowGram: value dimension p must be >= 1");
    if (dense && p != 1) fail("HollowGram: the dense kernel needs p == 1 (binary answers)");
    if (dense && build_dense_only(task, worker, values)) return;
    // task-major CSR by counting sort
    indptr_.assign(static_cast<std::size_t>(d_) + 1, 0);
    for (index_t e = 0; e < nnz; ++e) ++indptr_[task[e] + 1];
    for (index_t j = 0; j < d_; ++j) indptr_[j + 1] += indptr_[j];
    worker_.resize(nnz);
    z_.resize(static_cast<std::size_t>(nnz * p));
    s_.resize(nnz);
    {
        std::vector<index_t> pos(indptr_.begin(), indptr_.end() - 1);
        for (index_t e = 0; e < nnz; ++e) {
            const index_t at = pos[task[e]]++;
            worker_[at] = worker[e];
            std::memcpy(&z_[at * p], values + e * p, sizeof(double) * p);
        }
    }
    if (!dense_) {  // sort each task's answers by worker (pairs a < b then have i_a < i_b); any duplicate cell
        // keeps the general kernel
        pairs_ = true;
        std::vector<index_t> ord;
        std::vector<code_t> wk;
        std::vector<double> zz;
        for (index_t j = 0; j < d_ && pairs_; ++j) {
            const index_t lo = indptr_[j], c = indptr_[j + 1] - lo;
            bool sorted = true;
            for (index_t a = 1; a < c; ++a) sorted = sorted && worker_[lo + a - 1] < worker_[lo + a];
            if (sorted) continue;
            ord.resize(static_cast<std::size_t>(c));
            std::iota(ord.begin(), ord.end(), index_t(0));
            std::sort(ord.begin(), ord.end(), [&](index_t x, index_t y) { return worker_[lo + x] < worker_[lo + y]; });
            wk.resize(static_cast<std::size_t>(c));
            zz.resize(static_cast<std::size_t>(c * p));
            for (index_t a = 0; a < c; ++a) {
                wk[a] = worker_[lo + ord[a]];
                std::memcpy(&zz[a * p], &z_[(lo + ord[a]) * p], sizeof(double) * p);
                if (a > 0 && wk[a] == wk[a - 1]) pairs_ = false;
            }
            std::copy(wk.begin(), wk.end(), worker_.begin() + lo);
            std::copy(zz.begin(), zz.end(), z_.begin() + lo * p);
        }
    }
    for (index_t a = 0; a < nnz; ++a) s_[a] = dotp(&z_[a * p], &z_[a * p], p);
    // g_j = sum_{a,b} (z_a . z_b)^2 - sum_a s_a^2 = ||sum_a z_a z_a^T||_F^2 - sum_a s_a^2 : O(nnz p^2)
    gdiag_.assign(d_, 0.0);
    {
        std::vector<double> C(static_cast<std::size_t>(p * p));
        for (index_t j = 0; j < d_; ++j) {
            std::fill(C.begin(), C.end(), 0.0);
            double g = 0;
            for (index_t a = indptr_[j]; a < indptr_[j + 1]; ++a) {
                const double* za = &z_[a * p];
                for (index_t r = 0; r < p; ++r)
                    for (index_t c = 0; c < p; ++c) C[r * p + c] += za[r] * za[c];
                g -= s_[a] * s_[a];
            }
            for (double c : C) g += c * c;
            gdiag_[j] = g;
        }
    }
    if (pairs_) std::vector<double>().swap(s_);  // the pair kernel needs no |z|^2 corrections
    if (dense_) {
        n_pad_ = (n_ + 3) / 4 * 4;
        d_pad_ = (d_ + kChunkJ - 1) / kChunkJ * kChunkJ;
        xd_ = aligned_zeros(static_cast<std::size_t>(n_pad_ * d_pad_));
        for (index_t j = 0; j < d_; ++j)
            for (index_t a = indptr_[j]; a < indptr_[j + 1]; ++a) xd_[worker_[a] * d_pad_ + j] += z_[a];
    }
}

HollowGram::~HollowGram() { std::free(xd_); }

// Dense p = 1 without the CSR: X straight from the answers, and (when no (worker, task)
// cell holds two answers, so that s_a = X_ij^2) the diagonal and the corrections from X:
//   g_j = (sum_i X_ij^2)^2 - sum_i X_ij^4,  w_i = sum_j X_ij^2 u_j,  c_j = sum_i X_ij^2 w_i.
// Saves the three answer-length copies (worker, z, s) and their page faults, and the
// serial indexed loops of the corrections. Returns false (nothing kept) on a duplicate cell.
bool HollowGram::build_dense_only(const code_t* task, const code_t* worker, const double* values) {
    n_pad_ = (n_ + 3) / 4 * 4;
    d_pad_ = (d_ + kChunkJ - 1) / kChunkJ * kChunkJ;
    xd_ = aligned_zeros(static_cast<std::size_t>(n_pad_ * d_pad_));
    std::vector<std::uint64_t> seen(static_cast<std::size_t>((n_pad_ * d_pad_ + 63) / 64), 0);
    for (index_t e = 0; e < nnz_; ++e) {
        const index_t cell = static_cast<index_t>(worker[e]) * d_pad_ + task[e];
        std::uint64_t& word = seen[static_cast<std::size_t>(cell / 64)];
        const std::uint64_t bit = std::uint64_t(1) << (cell % 64);
        if (word & bit) {  // a duplicate (worker, task) cell: the general path
            std::free(xd_);
            xd_ = nullptr;
            return false;
        }
        word |= bit;
        xd_[cell] = values[e];
    }
    std::vector<double> g2(static_cast<std::size_t>(d_), 0.0);
    gdiag_.assign(static_cast<std::size_t>(d_), 0.0);
    for (index_t i = 0; i < n_; ++i) {
        const double* x = xd_ + i * d_pad_;
        for (index_t j = 0; j < d_; ++j) {
            const double s = x[j] * x[j];
            gdiag_[j] += s;
            g2[j] += s * s;
        }
    }
    for (index_t j = 0; j < d_; ++j) gdiag_[j] = gdiag_[j] * gdiag_[j] - g2[j];
    csr_ = false;
    return true;
}

void HollowGram::dense_corrections(const double* u, double* out, int n_threads) const {
    std::vector<double> w(static_cast<std::size_t>(n_), 0.0);
    KDCORE_OMP(parallel for schedule(static) num_threads(n_threads))
    for (index_t i = 0; i < n_; ++i) {
        const double* x = xd_ + i * d_pad_;
        double s = 0;
        for (index_t j = 0; j < d_; ++j) s += x[j] * x[j] * u[j];
        w[static_cast<std::size_t>(i)] = s;
    }
    const index_t n_blk = (d_ + 4095) / 4096;
    KDCORE_OMP(parallel for schedule(static) num_threads(n_threads))
    for (index_t b = 0; b < n_blk; ++b) {
        const index_t j0 = b * 4096, j1 = std::min(d_, j0 + 4096);
        double c[4096];
        for (index_t j = j0; j < j1; ++j) c[j - j0] = 0.0;
        for (index_t i = 0; i < n_; ++i) {
            const double* x = xd_ + i * d_pad_;
            const double wi = w[static_cast<std::size_t>(i)];
            for (index_t j = j0; j < j1; ++j) c[j - j0] += x[j] * x[j] * wi;
        }
        for (index_t j = j0; j < j1; ++j) out[j] -= c[j - j0] + gdiag_[static_cast<std::size_t>(j)] * u[j];
    }
}

// M += locs[1] + locs[2] + ... in thread order, cell by cell (parallel over cells):
// a fixed summation order for a given thread count.
static void add_in_thread_order(std::vector<double>& M, const std::vector<std::vector<double>>& locs, int used,
                                int n_threads) {
    if (used <= 1) return;
    const index_t nn = static_cast<index_t>(M.size());
    double* m = M.data();
    KDCORE_OMP(parallel for schedule(static) num_threads(n_threads))
    for (index_t c = 0; c < nn; ++c) {
        double s = m[c];
        for (int t = 1; t < used; ++t) s += locs[static_cast<std::size_t>(t)][static_cast<std::size_t>(c)];
        m[c] = s;
    }
}

// Sparse kernel: M = sum_l u_l sum_{a,b in l} (z_a . z_b) e_{i_a} e_{i_b}^T (per-thread
// copies, summed), then q_j = sum_{a,b in j} (z_a . z_b) M_{i_a i_b}. O(sum_j c_j^2 p).
void HollowGram::apply_sparse(const double* u, double* q, int n_threads) const {
    const index_t n = n_, p = p_;
    const std::size_t nn = static_cast<std::size_t>(n * n);
    // keep the per-thread copies of M under ~256 MB together
    int nt = n_threads;
    while (nt > 1 && nn * sizeof(double) * static_cast<std::size_t>(nt) > (std::size_t(256) << 20)) --nt;
    std::vector<double> M(nn, 0.0);
    // Per-thread copies summed afterwards in thread order (not in a critical section,
    // whose entry order varies from run to run): the same thread count gives
    // bit-identical results (found by test_reliability's reproducibility check).
    std::vector<std::vector<double>> locs(static_cast<std::size_t>(nt));
    int used = 1;
    ExceptionCatcher ex;
    KDCORE_OMP(parallel num_threads(nt)) {
        const int tid = thread_num();
        KDCORE_OMP(single)
        used = team_size();
        std::vector<double>& loc = tid == 0 ? M : locs[static_cast<std::size_t>(tid)];
        if (tid != 0) ex.run([&] { loc.assign(nn, 0.0); });
        KDCORE_OMP(barrier)
        KDCORE_OMP(for schedule(static))
        for (index_t j = 0; j < d_; ++j) {
            if (ex.failed()) continue;
            const double uj = u[j];
            if (uj == 0.0) continue;
            for (index_t a = indptr_[j]; a < indptr_[j + 1]; ++a) {
                double* row = loc.data() + static_cast<std::size_t>(worker_[a]) * n;
                const double* za = &z_[a * p];
                for (index_t b = indptr_[j]; b < indptr_[j + 1]; ++b)
                    row[worker_[b]] += uj * dotp(za, &z_[b * p], p);
            }
        }
    }
    ex.rethrow();
    add_in_thread_order(M, locs, used, n_threads);
    KDCORE_OMP(parallel for schedule(static) num_threads(n_threads))
    for (index_t j = 0; j < d_; ++j) {
        double acc = 0;
        for (index_t a = indptr_[j]; a < indptr_[j + 1]; ++a) {
            const double* row = M.data() + static_cast<std::size_t>(worker_[a]) * n;
            const double* za = &z_[a * p];
            for (index_t b = indptr_[j]; b < indptr_[j + 1]; ++b) acc += dotp(za, &z_[b * p], p) * row[worker_[b]];
        }
        q[j] = acc;
    }
}

// Dense kernel (p = 1): M = X diag(u) X^T by 2 x 4 blocked dot products over task
// tiles (upper triangle, per-thread copies), then q_j = x_j^T M x_j by 4 x 8
// register blocks. O(n^2 d), about 1.5 n^2 d multiply-adds.
void HollowGram::apply_dense(const double* u, double* q, int n_threads) const {
    const index_t np = n_pad_, dp = d_pad_;
    const std::size_t nn = static_cast<std::size_t>(np * np);
    std::vector<double> up(static_cast<std::size_t>(dp), 0.0);
    std::copy(u, u + d_, up.begin());
    std::vector<double> M(nn, 0.0);
    const index_t n_tiles = (dp + kTileJ - 1) / kTileJ;
    std::vector<std::vector<double>> locs(static_cast<std::size_t>(std::max(n_threads, 1)));
    int used = 1;
    ExceptionCatcher ex;
    KDCORE_OMP(parallel num_threads(n_threads)) {
        const int tid = thread_num();
        KDCORE_OMP(single)
        used = team_size();
        std::vector<double>& loc = tid == 0 ? M : locs[static_cast<std::size_t>(tid)];
        if (tid != 0) ex.run([&] { loc.assign(nn, 0.0); });
        KDCORE_OMP(barrier)
        double blk[8];
        std::vector<double> xu;  // this tile's rows times u (np x kTileJ, L2-resident)
        ex.run([&] { xu.assign(static_cast<std::size_t>(np * kTileJ), 0.0); });
        KDCORE_OMP(for schedule(static))
        for (index_t tile = 0; tile < n_tiles; ++tile) {
            if (ex.failed()) continue;
            const index_t j0 = tile * kTileJ, len = std::min(kTileJ, dp - j0);
            scale_rows(xd_, dp, np, j0, len, up.data() + j0, xu.data());
            for (index_t i = 0; i < np; i += 2) {
                const double* a0 = xu.data() + i * kTileJ;
                const double* a1 = a0 + kTileJ;
                for (index_t c = (i / 4) * 4; c < np; c += 4) {
                    const double* b0 = xd_ + c * dp + j0;
                    std::fill(blk, blk + 8, 0.0);
                    dot_block_2x4_pre(a0, a1, b0, b0 + dp, b0 + 2 * dp, b0 + 3 * dp, len, blk);
                    double* r0 = loc.data() + i * np + c;
                    double* r1 = r0 + np;
                    for (int t = 0; t < 4; ++t) {
                        r0[t] += blk[t];
                        r1[t] += blk[4 + t];
                    }
                }
            }
        }
    }
    ex.rethrow();
    add_in_thread_order(M, locs, used, n_threads);
    // U^T: row i2 holds U[i][i2] = M[i][i2] (2x when i < i2, 1x on the diagonal, 0 when i > i2);
    // the upper triangle of M is exact (blocks start at the row's 4-aligned column).
    std::vector<double> Ut(nn, 0.0);
    for (index_t i = 0; i < np; ++i)
        for (index_t c = i; c < np; ++c) Ut[c * np + i] = (c == i ? 1.0 : 2.0) * M[i * np + c];
    M.swap(Ut);
    const index_t n_chunks = dp / kChunkJ;
    std::vector<double> qp(static_cast<std::size_t>(dp), 0.0);
    KDCORE_OMP(parallel for schedule(static) num_threads(n_threads))
    for (index_t ch = 0; ch < n_chunks; ++ch) quad_chunk(xd_, dp, np, M.data(), ch * kChunkJ, qp.data() + ch * kChunkJ);
    std::copy(qp.begin(), qp.begin() + d_, q);
}

// Sparse kernel on sorted tasks without duplicate cells (header): U = upper triangle of M from
// the pairs a < b, per-thread copies summed in thread order, then the pair sums. O(sum_j c_j^2 p / 2).
void HollowGram::apply_pairs(const double* u, double* out, int n_threads) const {
    const index_t n = n_, p = p_;
    const std::size_t nn = static_cast<std::size_t>(n * n);
    int nt = n_threads;
    while (nt > 1 && nn * sizeof(double) * static_cast<std::size_t>(nt) > (std::size_t(256) << 20)) --nt;
    std::vector<double> M(nn, 0.0);
    std::vector<std::vector<double>> locs(static_cast<std::size_t>(nt));
    int used = 1;
    ExceptionCatcher ex;
    KDCORE_OMP(parallel num_threads(nt)) {
        const int tid = thread_num();
        KDCORE_OMP(single)
        used = team_size();
        std::vector<double>& loc = tid == 0 ? M : locs[static_cast<std::size_t>(tid)];
        if (tid != 0) ex.run([&] { loc.assign(nn, 0.0); });
        KDCORE_OMP(barrier)
        KDCORE_OMP(for schedule(static))
        for (index_t j = 0; j < d_; ++j) {
            if (ex.failed()) continue;
            const double uj = u[j];
            if (uj == 0.0) continue;
            const index_t hi = indptr_[j + 1];
            for (index_t a = indptr_[j]; a + 1 < hi; ++a) {
                double* row = loc.data() + static_cast<std::size_t>(worker_[a]) * n;
                const double* za = &z_[a * p];
                if (p == 1) {
                    const double v = uj * za[0];
                    for (index_t b = a + 1; b < hi; ++b) row[worker_[b]] += v * z_[b];
                } else {
                    for (index_t b = a + 1; b < hi; ++b) row[worker_[b]] += uj * dotp(za, &z_[b * p], p);
                }
            }
        }
    }
    ex.rethrow();
    add_in_thread_order(M, locs, used, n_threads);
    KDCORE_OMP(parallel for schedule(static) num_threads(n_threads))
    for (index_t j = 0; j < d_; ++j) {
        double acc = 0;
        const index_t hi = indptr_[j + 1];
        for (index_t a = indptr_[j]; a + 1 < hi; ++a) {
            const double* row = M.data() + static_cast<std::size_t>(worker_[a]) * n;
            const double* za = &z_[a * p];
            double s = 0;
            if (p == 1) {
                for (index_t b = a + 1; b < hi; ++b) s += z_[b] * row[worker_[b]];
                acc += za[0] * s;
            } else {
                for (index_t b = a + 1; b < hi; ++b) acc += dotp(za, &z_[b * p], p) * row[worker_[b]];
            }
        }
        out[j] = 2.0 * acc - gdiag_[j] * u[j];
    }
}

void HollowGram::apply(const double* u, double* out, int n_threads) const {
    const int nt = resolve_threads(n_threads);
    if (pairs_) return apply_pairs(u, out, nt);
    if (dense_)
        apply_dense(u, out, nt);
    else
        apply_sparse(u, out, nt);
    if (!csr_) return dense_corrections(u, out, nt);
    // corrections: w_i = sum_l u_l s_il, c_j = sum_{a in j} s_a w_{i_a}; then the diagonal
    std::vector<double> w(static_cast<std::size_t>(n_), 0.0);
    for (index_t j = 0; j < d_; ++j)
        for (index_t a = indptr_[j]; a < indptr_[j + 1]; ++a) w[worker_[a]] += s_[a] * u[j];
    KDCORE_OMP(parallel for schedule(static) num_threads(nt))
    for (index_t j = 0; j < d_; ++j) {
        double c = 0;
        for (index_t a = indptr_[j]; a < indptr_[j + 1]; ++a) c += s_[a] * w[worker_[a]];
        out[j] -= c + gdiag_[j] * u[j];
    }
}

}  // namespace kdcore
