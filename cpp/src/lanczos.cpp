// Lanczos with full reorthogonalisation and cyclic Jacobi (see kdcore/lanczos.hpp).
#include "kdcore/lanczos.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

namespace kdcore {

void jacobi_eigh(std::vector<double> A, int m, std::vector<double>& w, std::vector<double>& V) {
    V.assign(static_cast<std::size_t>(m) * m, 0.0);
    for (int i = 0; i < m; ++i) V[i * m + i] = 1.0;
    for (int sweep = 0; sweep < 100; ++sweep) {
        double off = 0, tot = 0;
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < m; ++j) {
                const double a = A[i * m + j] * A[i * m + j];
                tot += a;
                if (i != j) off += a;
            }
        if (off <= 1e-30 * std::max(tot, 1e-300)) break;
        for (int p = 0; p < m - 1; ++p)
            for (int r = p + 1; r < m; ++r) {
                const double apr = A[p * m + r];
                if (std::fabs(apr) < 1e-300) continue;
                const double theta = (A[r * m + r] - A[p * m + p]) / (2 * apr);
                const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
                const double c = 1 / std::sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < m; ++k) {  // columns p, r
                    const double akp = A[k * m + p], akr = A[k * m + r];
                    A[k * m + p] = c * akp - s * akr;
                    A[k * m + r] = s * akp + c * akr;
                }
                for (int k = 0; k < m; ++k) {  // rows p, r
                    const double apk = A[p * m + k], ark = A[r * m + k];
                    A[p * m + k] = c * apk - s * ark;
                    A[r * m + k] = s * apk + c * ark;
                }
                for (int k = 0; k < m; ++k) {
                    const double vkp = V[k * m + p], vkr = V[k * m + r];
                    V[k * m + p] = c * vkp - s * vkr;
                    V[k * m + r] = s * vkp + c * vkr;
                }
            }
    }
    std::vector<int> order(m);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return A[a * m + a] > A[b * m + b]; });
    w.resize(m);
    std::vector<double> Vs(static_cast<std::size_t>(m) * m);
    for (int c = 0; c < m; ++c) {
        w[c] = A[order[c] * m + order[c]];
        for (int k = 0; k < m; ++k) Vs[k * m + c] = V[k * m + order[c]];
    }
    V.swap(Vs);
}

namespace {
double uniform_pm1(std::mt19937_64& g) { return static_cast<double>(g() >> 11) * 0x1.0p-52 - 1.0; }

// Dot product in a fixed number of chunks whose partial sums are added in chunk order
// (not an OpenMP reduction, which adds the threads' partials in arrival order): the
// result does not depend on the thread count or on the run.
double pdot(const double* a, const double* b, index_t d, int nt) {
    constexpr index_t kChunks = 64;
    if (d <= 20000) {
        double s = 0;
        for (index_t t = 0; t < d; ++t) s += a[t] * b[t];
        return s;
    }
    double part[kChunks];
    KDCORE_OMP(parallel for schedule(static) num_threads(nt))
    for (index_t c = 0; c < kChunks; ++c) {
        const index_t lo = d * c / kChunks, hi = d * (c + 1) / kChunks;
        double s = 0;
        for (index_t t = lo; t < hi; ++t) s += a[t] * b[t];
        part[c] = s;
    }
    double s = 0;
    for (index_t c = 0; c < kChunks; ++c) s += part[c];
    return s;
}
void paxpy(double alpha, const double* x, double* y, index_t d, int nt) {
    KDCORE_OMP(parallel for schedule(static) num_threads(nt) if (d > 20000))
    for (index_t t = 0; t < d; ++t) y[t] += alpha * x[t];
}
// The Lanczos basis, one vector of length d per row, allocated as the basis grows (a run that
// stops early never holds ncv vectors).
class Basis {
public:
    explicit Basis(index_t d) : d_(d) {}
    double* row(int r) {
        while (static_cast<int>(rows_.size()) <= r) rows_.emplace_back(static_cast<std::size_t>(d_), 0.0);
        return rows_[static_cast<std::size_t>(r)].data();
    }
    const double* row(int r) const { return rows_[static_cast<std::size_t>(r)].data(); }

private:
    index_t d_;
    std::vector<std::vector<double>> rows_;
};
// Two passes of classical Gram-Schmidt of w against the first m rows of V.
void reorthogonalise(const Basis& V, int m, index_t d, double* w, int nt) {
    for (int pass = 0; pass < 2; ++pass)
        for (int r = 0; r < m; ++r) paxpy(-pdot(V.row(r), w, d, nt), V.row(r), w, d, nt);
}
}  // namespace

EigResult lanczos_top(const std::function<void(const double*, double*)>& matvec, index_t d, int k, int ncv,
                      double tol, std::uint64_t seed, int n_threads, int n_vec, double min_gap) {
    if (d < 1) fail("lanczos_top: dimension must be >= 1");
    if (k < 1 || k > d) fail("lanczos_top: k must be in [1, d], got " + std::to_string(k));
    if (n_vec < 0) n_vec = k;
    if (n_vec < 1 || n_vec > k) fail("lanczos_top: n_vec must be in [1, k], got " + std::to_string(n_vec));
    const double tol_extra = std::sqrt(tol);
    const int nt = resolve_threads(n_threads);
    const int m_max = static_cast<int>(std::min<index_t>(d, std::max(ncv, k + 1)));
    Basis V(d);
    std::vector<double> alpha, beta;  // T: diag alpha[0..m), off-diagonal beta[0..m-1)
    std::mt19937_64 gen(seed);
    auto fresh = [&](int m) {  // a random unit vector orthogonal to V[0..m)
        double* v = V.row(m);
        for (int attempt = 0; attempt < 5; ++attempt) {
            for (index_t t = 0; t < d; ++t) v[t] = uniform_pm1(gen);
            reorthogonalise(V, m, d, v, nt);
            const double nrm = std::sqrt(pdot(v, v, d, nt));
            if (nrm > 1e-8) {
                for (index_t t = 0; t < d; ++t) v[t] /= nrm;
                return true;
            }
        }
        return false;
    };
    EigResult res;
    fresh(0);
    std::vector<double> w(static_cast<std::size_t>(d));
    std::vector<double> theta, S;
    double anorm = 0;
    int m = 0;
    while (true) {
        const double* v = V.row(m);
        matvec(v, w.data());
        ++res.n_matvec;
        check_interrupt();
        const double a = pdot(v, w.data(), d, nt);
        alpha.push_back(a);
        paxpy(-a, v, w.data(), d, nt);
        if (m > 0) paxpy(-beta[m - 1], V.row(m - 1), w.data(), d, nt);
        reorthogonalise(V, m + 1, d, w.data(), nt);
        double b = std::sqrt(pdot(w.data(), w.data(), d, nt));
        ++m;
        anorm = std::max(anorm, std::fabs(a) + b);
        // Ritz pairs of T_m
        std::vector<double> T(static_cast<std::size_t>(m) * m, 0.0);
        for (int i = 0; i < m; ++i) {
            T[i * m + i] = alpha[i];
            if (i + 1 < m) T[i * m + i + 1] = T[(i + 1) * m + i] = beta[i];
        }
        jacobi_eigh(T, m, theta, S);
        const bool exhausted = (m == d);
        const bool breakdown = b <= 1e-13 * std::max(anorm, 1e-300);
        double worst = 0, worst_vec = 0, worst_extra = 0;
        if (m >= k) {
            for (int i = 0; i < k; ++i) {
                const double ri = std::fabs(b * S[(m - 1) * m + i]);
                worst = std::max(worst, ri);
                (i < n_vec ? worst_vec : worst_extra) = std::max(i < n_vec ? worst_vec : worst_extra, ri);
            }
        }
        const double scale = std::max(std::fabs(theta[0]), 1e-300);
        res.max_residual = worst;
        const bool done = m >= k && (exhausted || (worst_vec <= tol * scale && worst_extra <= tol_extra * scale));
        if (m > n_vec && n_vec < k) {
            const double th = theta[n_vec - 1], den = std::max(std::fabs(th), 1e-300);
            const double r_nv = std::fabs(b * S[(m - 1) * m + n_vec - 1]);
            res.gap = (th - theta[n_vec]) / den;
            res.gap_upper = (th + r_nv - theta[n_vec]) / den;
        }
        if (done) {
            res.converged = true;
            break;
        }
        if (exhausted || m >= m_max) {
            res.converged = false;
            if (m < k) fail("lanczos_top: could not build k Krylov vectors");
            break;
        }
        if (min_gap > 0 && m >= k && n_vec < k && res.gap_upper < min_gap) {
            res.gap_limited = true;
            break;
        }
        if (breakdown) {  // invariant subspace found: continue from a fresh orthogonal vector
            beta.push_back(0.0);
            if (!fresh(m)) {
                res.converged = m >= k;
                if (m < k) fail("lanczos_top: operator has fewer than k independent directions");
                break;
            }
        } else {
            beta.push_back(b);
            double* vn = V.row(m);
            for (index_t t = 0; t < d; ++t) vn[t] = w[t] / b;
        }
    }
    res.values.assign(theta.begin(), theta.begin() + k);
    res.vectors.assign(static_cast<std::size_t>(d) * k, 0.0);
    for (int r = 0; r < m; ++r) {
        const double* vr = V.row(r);
        for (int i = 0; i < k; ++i) {
            const double c = S[r * m + i];
            KDCORE_OMP(parallel for schedule(static) num_threads(nt) if (d > 20000))
            for (index_t t = 0; t < d; ++t) res.vectors[t * k + i] += c * vr[t];
        }
    }
    return res;
}

}  // namespace kdcore
