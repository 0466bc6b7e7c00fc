// The Dawid-Skene EM core and the vote kernel (equations in crowd.hpp).
#include "kdcore/crowd.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace kdcore {
namespace {

[[noreturn]] void bad_code(const char* what, index_t e, long long v, long long n) {
    throw std::out_of_range(std::string(what) + " code " + std::to_string(v) + " at answer " + std::to_string(e) +
                            " is outside [0, " + std::to_string(n) + ")");
}

// lc[(w * K + l) * TK + t * K + k] = log_conf[((t * W + w) * K + k) * K + l]: one
// contiguous block of T*K log-probabilities per (worker, answered class), so an
// answer adds one vector to the task's accumulator.
std::vector<double> answer_major(const double* log_conf, code_t W, int T, int K) {
    const std::size_t TK = static_cast<std::size_t>(T) * K;
    std::vector<double> lc(static_cast<std::size_t>(W) * K * TK);
    for (int t = 0; t < T; ++t)
        for (code_t w = 0; w < W; ++w)
            for (int k = 0; k < K; ++k)
                for (int l = 0; l < K; ++l)
                    lc[(static_cast<std::size_t>(w) * K + l) * TK + t * K + k] =
                        log_conf[((static_cast<std::size_t>(t) * W + w) * K + k) * K + l];
    return lc;
}

KDCORE_SIMD_CLONES
double e_step_tasks(const index_t* indptr, const code_t* tw, const code_t* tl, code_t n_tasks, code_t W, int TK,
                    int K, const double* lc, const double* log_prior, double* post, int n_threads,
                    ExceptionCatcher& catcher) {
    double loglik = 0.0;
    const double ninf = -std::numeric_limits<double>::infinity();
    KDCORE_OMP(parallel for schedule(static, 1024) num_threads(n_threads) reduction(+ : loglik))
    for (code_t j = 0; j < n_tasks; ++j) {
        catcher.run([&] {
            double* s = post + static_cast<std::size_t>(j) * TK;
            for (int i = 0; i < TK; ++i) s[i] = log_prior[i];
            for (index_t e = indptr[j]; e < indptr[j + 1]; ++e) {
                const code_t w = tw[e], l = tl[e];
                if (static_cast<std::uint32_t>(w) >= static_cast<std::uint32_t>(W)) bad_code("worker", e, w, W);
                if (static_cast<std::uint32_t>(l) >= static_cast<std::uint32_t>(K)) bad_code("label", e, l, K);
                const double* v = lc + (static_cast<std::size_t>(w) * K + l) * TK;
                for (int i = 0; i < TK; ++i) s[i] += v[i];
            }
            double m = s[0];
            for (int i = 1; i < TK; ++i) m = std::max(m, s[i]);
            if (m == ninf) {  // every (t, k) impossible: uniform, log-likelihood -inf
                for (int i = 0; i < TK; ++i) s[i] = 1.0 / TK;
                loglik += ninf;
                return;
            }
            double z = 0.0;
            for (int i = 0; i < TK; ++i) {
                s[i] = std::exp(s[i] - m);
                z += s[i];
            }
            const double inv = 1.0 / z;  // z >= 1: the max term is exp(0)
            for (int i = 0; i < TK; ++i) s[i] *= inv;
            loglik += m + std::log(z);
        });
    }
    return loglik;
}

// Per-worker accumulation acc[l * TK + (t * K + k)] = sum_{answers (j, l) of w} post[j, t, k],
// handed to `emit(w, acc)` which writes the worker's own output rows.
template <class Emit>
void worker_counts(const index_t* indptr, const code_t* wt, const code_t* wl, code_t n_tasks, code_t W, int TK, int K,
                   const double* post, int n_threads, Emit emit) {
    ExceptionCatcher catcher;
    KDCORE_OMP(parallel num_threads(n_threads))
    {
        std::vector<double> acc(static_cast<std::size_t>(K) * TK);
        KDCORE_OMP(for schedule(dynamic, 16))
        for (code_t w = 0; w < W; ++w) {
            catcher.run([&] {
                std::fill(acc.begin(), acc.end(), 0.0);
                for (index_t e = indptr[w]; e < indptr[w + 1]; ++e) {
                    const code_t j = wt[e], l = wl[e];
                    if (static_cast<std::uint32_t>(j) >= static_cast<std::uint32_t>(n_tasks))
                        bad_code("task", e, j, n_tasks);
                    if (static_cast<std::uint32_t>(l) >= static_cast<std::uint32_t>(K)) bad_code("label", e, l, K);
                    const double* p = post + static_cast<std::size_t>(j) * TK;
                    double* a = acc.data() + static_cast<std::size_t>(l) * TK;
                    for (int i = 0; i < TK; ++i) a[i] += p[i];
                }
                emit(w, acc.data());
            });
        }
    }
    catcher.rethrow();
}

// mass[t, k] = sum_j post[j, t, k]; prior = (mass + s) / sum (mass + s), uniform if that sum is 0.
void prior_from_post(const double* post, code_t n_tasks, int TK, double smoothing, double* prior) {
    std::vector<double> mass(TK, 0.0);
    for (code_t j = 0; j < n_tasks; ++j) {
        const double* p = post + static_cast<std::size_t>(j) * TK;
        for (int i = 0; i < TK; ++i) mass[i] += p[i];
    }
    double z = 0.0;
    for (int i = 0; i < TK; ++i) z += mass[i] + smoothing;
    for (int i = 0; i < TK; ++i) prior[i] = z > 0.0 ? (mass[i] + smoothing) / z : 1.0 / TK;
}

void check_dims(code_t n_tasks, code_t n_workers, int T, int K) {
    if (n_tasks < 0 || n_workers < 0) fail("n_tasks and n_workers must be >= 0");
    if (T < 1) fail("n_types must be >= 1");
    if (K < 2) fail("n_classes must be >= 2");
}

}  // namespace

double em_e_step(const index_t* task_indptr, const code_t* task_worker, const code_t* task_label, code_t n_tasks,
                 code_t n_workers, int n_types, int n_classes, const double* log_conf, const double* log_prior,
                 double* post, int n_threads) {
    check_dims(n_tasks, n_workers, n_types, n_classes);
    const int nt = resolve_threads(n_threads);
    const std::vector<double> lc = answer_major(log_conf, n_workers, n_types, n_classes);
    ExceptionCatcher catcher;
    const double ll = e_step_tasks(task_indptr, task_worker, task_label, n_tasks, n_workers, n_types * n_classes,
                                   n_classes, lc.data(), log_prior, post, nt, catcher);
    catcher.rethrow();
    return ll;
}

void em_counts(const index_t* worker_indptr, const code_t* worker_task, const code_t* worker_label, code_t n_tasks,
               code_t n_workers, int n_types, int n_classes, const double* post, double* counts, double* mass,
               int n_threads) {
    check_dims(n_tasks, n_workers, n_types, n_classes);
    const int T = n_types, K = n_classes, TK = T * K;
    const code_t W = n_workers;
    worker_counts(worker_indptr, worker_task, worker_label, n_tasks, W, TK, K, post, resolve_threads(n_threads),
                  [&](code_t w, const double* acc) {
                      for (int t = 0; t < T; ++t)
                          for (int k = 0; k < K; ++k)
                              for (int l = 0; l < K; ++l)
                                  counts[((static_cast<std::size_t>(t) * W + w) * K + k) * K + l] =
                                      acc[static_cast<std::size_t>(l) * TK + t * K + k];
                  });
    std::fill(mass, mass + TK, 0.0);
    for (code_t j = 0; j < n_tasks; ++j)
        for (int i = 0; i < TK; ++i) mass[i] += post[static_cast<std::size_t>(j) * TK + i];
}

void em_m_step(const index_t* worker_indptr, const code_t* worker_task, const code_t* worker_label, code_t n_tasks,
               code_t n_workers, int n_types, int n_classes, const double* post, double smoothing, double* conf,
               double* prior, int n_threads) {
    check_dims(n_tasks, n_workers, n_types, n_classes);
    if (!(smoothing >= 0.0) || !std::isfinite(smoothing)) fail("smoothing must be finite and >= 0");
    const int T = n_types, K = n_classes, TK = T * K;
    const code_t W = n_workers;
    worker_counts(worker_indptr, worker_task, worker_label, n_tasks, W, TK, K, post, resolve_threads(n_threads),
                  [&](code_t w, const double* acc) {
                      for (int t = 0; t < T; ++t)
                          for (int k = 0; k < K; ++k) {
                              double* row = conf + ((static_cast<std::size_t>(t) * W + w) * K + k) * K;
                              double z = 0.0;
                              for (int l = 0; l < K; ++l) {
                                  row[l] = acc[static_cast<std::size_t>(l) * TK + t * K + k] + smoothing;
                                  z += row[l];
                              }
                              if (z > 0.0) {  // divide, not multiply by 1/z: z may be subnormal
                                  for (int l = 0; l < K; ++l) row[l] /= z;
                              } else {
                                  for (int l = 0; l < K; ++l) row[l] = 1.0 / K;
                              }
                          }
                  });
    prior_from_post(post, n_tasks, TK, smoothing, prior);
}

void onecoin_m_step(const index_t* worker_indptr, const code_t* worker_task, const code_t* worker_label,
                    code_t n_tasks, code_t n_workers, int n_types, int n_classes, const double* post,
                    double smoothing, double* skill, double* prior, int n_threads) {
    check_dims(n_tasks, n_workers, n_types, n_classes);
    if (!(smoothing >= 0.0) || !std::isfinite(smoothing)) fail("smoothing must be finite and >= 0");
    const int T = n_types, K = n_classes, TK = T * K;
    const code_t W = n_workers;
    worker_counts(worker_indptr, worker_task, worker_label, n_tasks, W, TK, K, post, resolve_threads(n_threads),
                  [&](code_t w, const double* acc) {
                      for (int t = 0; t < T; ++t) {
                          double right = 0.0, total = 0.0;
                          for (int l = 0; l < K; ++l)
                              for (int k = 0; k < K; ++k) {
                                  const double c = acc[static_cast<std::size_t>(l) * TK + t * K + k];
                                  total += c;
                                  if (k == l) right += c;
                              }
                          const double z = total + 2.0 * smoothing;
                          skill[static_cast<std::size_t>(t) * W + w] = z > 0.0 ? (right + smoothing) / z : 0.5;
                      }
                  });
    prior_from_post(post, n_tasks, TK, smoothing, prior);
}

KDCORE_SIMD_CLONES
void vote_scores(const index_t* task_indptr, const code_t* task_worker, const code_t* task_label, code_t n_tasks,
                 code_t n_workers, int n_classes, const double* weight, double* scores, int n_threads) {
    if (n_tasks < 0 || n_workers < 0) fail("n_tasks and n_workers must be >= 0");
    if (n_classes < 1) fail("n_classes must be >= 1");
    const int nt = resolve_threads(n_threads);
    const int K = n_classes;
    ExceptionCatcher catcher;
    KDCORE_OMP(parallel for schedule(static, 2048) num_threads(nt))
    for (code_t j = 0; j < n_tasks; ++j) {
        catcher.run([&] {
            double* s = scores + static_cast<std::size_t>(j) * K;
            for (int k = 0; k < K; ++k) s[k] = 0.0;
            for (index_t e = task_indptr[j]; e < task_indptr[j + 1]; ++e) {
                const code_t w = task_worker[e], l = task_label[e];
                if (static_cast<std::uint32_t>(w) >= static_cast<std::uint32_t>(n_workers))
                    bad_code("worker", e, w, n_workers);
                if (static_cast<std::uint32_t>(l) >= static_cast<std::uint32_t>(K)) bad_code("label", e, l, K);
                s[l] += weight ? weight[w] : 1.0;
            }
        });
    }
    catcher.rethrow();
}

}  // namespace kdcore
