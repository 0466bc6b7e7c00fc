// M-MSR kernels (kdcore/mmsr.hpp).
#include "kdcore/mmsr.hpp"

#include <algorithm>
#include <cmath>

namespace kdcore {
namespace mmsr {

Pairs worker_pairs(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, const index_t* w_indptr,
                   const code_t* w_task, const code_t* w_label, code_t n_workers) {
    Pairs out;
    out.indptr.assign(static_cast<std::size_t>(n_workers) + 1, 0);
    std::vector<std::int32_t> common(static_cast<std::size_t>(n_workers), 0), agree(common.size(), 0);
    std::vector<code_t> touched;
    for (code_t i = 0; i < n_workers; ++i) {
        if ((i & 1023) == 0) check_interrupt();
        touched.clear();
        for (index_t e = w_indptr[i]; e < w_indptr[i + 1]; ++e) {
            const code_t t = w_task[e];
            const code_t li = w_label[e];
            for (index_t f = t_indptr[t]; f < t_indptr[t + 1]; ++f) {
                const code_t j = t_worker[f];
                if (j == i) continue;
                if (common[j] == 0) touched.push_back(j);
                ++common[j];
                agree[j] += (t_label[f] == li) ? 1 : 0;
            }
        }
        std::sort(touched.begin(), touched.end());
        for (code_t j : touched) {
            out.idx.push_back(j);
            out.common.push_back(common[j]);
            out.agree.push_back(agree[j]);
            common[j] = 0;
            agree[j] = 0;
        }
        out.indptr[static_cast<std::size_t>(i) + 1] = static_cast<index_t>(out.idx.size());
    }
    return out;
}

namespace {

// Python's slice bounds: s[start:] and s[:stop] for a list of length n.
index_t py_start(index_t start, index_t n) {
    if (start < 0) start = std::max<index_t>(0, n + start);
    return std::min(start, n);
}
index_t py_stop(index_t stop, index_t n) {
    if (stop < 0) stop = std::max<index_t>(0, n + stop);
    return std::min(stop, n);
}

// crowd-kit's _remove_largest_and_smallest_F_value followed by the mean; returns false
// when nothing is left (the value is then kept). Comparisons with NaN are false, as in
// numpy's boolean masks, and a NaN left in y makes the mean NaN, as np.mean does.
bool trimmed_mean_sorted(std::vector<double>& y, int F, double a, std::int64_t n_tasks, double& out);

// The same result without sorting when F >= 1 and no value is NaN: the F smallest and
// F largest are split off with nth_element (O(n)); the sets kept are crowd-kit's, only
// the order of the final sum differs (rounding).
bool trimmed_mean(std::vector<double>& y, int F, double a, std::int64_t n_tasks, double& out) {
    if (F < 1) return trimmed_mean_sorted(y, F, a, n_tasks, out);
    for (double val : y)
        if (std::isnan(val)) return trimmed_mean_sorted(y, F, a, n_tasks, out);
    auto first = y.begin(), last = y.end();
    index_t less = 0;
    for (double val : y) less += (val < a) ? 1 : 0;
    if (less < F) {
        last = std::partition(first, last, [a](double val) { return val >= a; });
    } else if (F < last - first) {
        std::nth_element(first, first + F, last);
        first += F;
    } else {
        first = last;
    }
    const index_t m = last - first;
    index_t greater = 0;
    for (auto it = first; it != last; ++it) greater += (*it > a) ? 1 : 0;
    if (greater < F) {
        last = std::partition(first, last, [a](double val) { return val <= a; });
    } else if (F < m) {
        std::nth_element(first, first + (m - F), last);
        last = first + (m - F);
    } else {
        last = first;
    }
    const index_t k = last - first;
    if (k == 0) return false;
    if (k == 1 && *first == 0.0) {
        out = 1.0 / std::sqrt(static_cast<double>(n_tasks));
        return true;
    }
    double s = 0.0;
    for (auto it = first; it != last; ++it) s += *it;
    out = s / static_cast<double>(k);
    return true;
}

bool trimmed_mean_sorted(std::vector<double>& y, int F, double a, std::int64_t n_tasks, double& out) {
    // numpy's sort order: NaN (0 / 0 when u or v has a zero) last
    auto nan_at = std::partition(y.begin(), y.end(), [](double val) { return !std::isnan(val); });
    std::sort(y.begin(), nan_at);
    index_t less = 0;
    for (double val : y) less += (val < a) ? 1 : 0;
    if (less < F) {
        y.erase(std::remove_if(y.begin(), y.end(), [a](double val) { return !(val >= a); }), y.end());
    } else {
        const index_t n = static_cast<index_t>(y.size());
        y.erase(y.begin(), y.begin() + py_start(F, n));
    }
    const index_t m = static_cast<index_t>(y.size());
    index_t greater = 0;
    for (double val : y) greater += (val > a) ? 1 : 0;
    if (greater < F) {
        y.erase(std::remove_if(y.begin(), y.end(), [a](double val) { return !(val <= a); }), y.end());
    } else {
        y.resize(static_cast<std::size_t>(py_stop(m - F, m)));
    }
    if (y.empty()) return false;
    if (y.size() == 1 && y[0] == 0.0) y[0] = 1.0 / std::sqrt(static_cast<double>(n_tasks));
    double s = 0.0;
    for (double val : y) s += val;
    out = s / static_cast<double>(y.size());
    return true;
}

}  // namespace

int iterate(const index_t* indptr, const code_t* idx, const double* x, code_t n, double* u, double* v, int F,
            std::int64_t n_tasks, int n_iter, double tol, std::vector<double>& history, int n_threads) {
    std::vector<double> u_prev(static_cast<std::size_t>(n)), v_prev(static_cast<std::size_t>(n));
    const int nt = resolve_threads(n_threads);
    (void)nt;
    int rounds = 0;
    for (int it = 0; it < n_iter; ++it) {
        check_interrupt();
        std::copy(u, u + n, u_prev.begin());
        std::copy(v, v + n, v_prev.begin());
        for (int pass = 0; pass < 2; ++pass) {  // v from u (columns), then u from the new v (rows)
            double* target = pass == 0 ? v : u;
            const double* other = pass == 0 ? u : v;
            // each j reads only the other vector: the rows are independent
#ifdef KDCORE_HAVE_OPENMP
#pragma omp parallel num_threads(nt)
#endif
            {
                std::vector<double> y;
#ifdef KDCORE_HAVE_OPENMP
#pragma omp for schedule(dynamic, 64)
#endif
                for (code_t j = 0; j < n; ++j) {
                    y.clear();
                    for (index_t e = indptr[j]; e < indptr[j + 1]; ++e) y.push_back(x[e] / other[idx[e]]);
                    double mean;
                    if (trimmed_mean(y, F, target[j], n_tasks, mean)) target[j] = mean;
                }
            }
        }
        // ||u v^T - a b^T||_F with du = u - a, dv = v - b: u v^T - a b^T = du v^T + a dv^T,
        // so the square is |du|^2 |v|^2 + |a|^2 |dv|^2 + 2 (du . a)(v . dv): no cancellation
        double du2 = 0, v2 = 0, a2 = 0, dv2 = 0, dua = 0, vdv = 0;
        for (code_t i = 0; i < n; ++i) {
            const double du = u[i] - u_prev[i], dv = v[i] - v_prev[i];
            du2 += du * du;
            v2 += v[i] * v[i];
            a2 += u_prev[i] * u_prev[i];
            dv2 += dv * dv;
            dua += du * u_prev[i];
            vdv += v[i] * dv;
        }
        const double sq = du2 * v2 + a2 * dv2 + 2.0 * dua * vdv;
        const double loss = sq < 0.0 ? 0.0 : std::sqrt(sq);  // NaN stays NaN (and never stops), as in numpy
        history.push_back(loss);
        rounds = it + 1;
        if (loss < tol) break;
    }
    return rounds;
}

void class_counts(const index_t* w_indptr, const code_t* w_task, const code_t* w_label, code_t n_workers, int K,
                  const double* post, double* out, int n_threads) {
    const int nt = resolve_threads(n_threads);
    (void)nt;
#ifdef KDCORE_HAVE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 16)
#endif
    for (code_t w = 0; w < n_workers; ++w) {
        double* o = out + static_cast<std::size_t>(w) * K * K;
        std::fill(o, o + static_cast<std::size_t>(K) * K, 0.0);
        for (index_t e = w_indptr[w]; e < w_indptr[w + 1]; ++e) {
            const double* p = post + static_cast<std::size_t>(w_task[e]) * K;
            double* row = o + static_cast<std::size_t>(w_label[e]) * K;
            for (int k = 0; k < K; ++k) row[k] += p[k];
        }
    }
}

}  // namespace mmsr
}  // namespace kdcore
