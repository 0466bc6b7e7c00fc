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

// TK_ > 0: the number of (type, class) cells known at compile time (unrolled inner
// loops for the common small cases); TK_ == 0: run-time tk.
// Tasks go in blocks of kBlock; within a block the normalisers z_j (each in [1, TK])
// are multiplied and their log taken once per block (or when the product nears
// overflow), so the log-likelihood costs one log per block instead of one per task.
constexpr code_t kBlock = 256;

template <int TK_>
double e_step_tasks(const index_t* indptr, const code_t* tw, const code_t* tl, code_t n_tasks, code_t W, int tk,
                    int K, const double* lc, const double* log_prior, double* post, int n_threads,
                    ExceptionCatcher& catcher) {
    const int TK = TK_ > 0 ? TK_ : tk;
    const double ninf = -std::numeric_limits<double>::infinity();
    const index_t n_blocks = (static_cast<index_t>(n_tasks) + kBlock - 1) / kBlock;
    // One partial log-likelihood per block, summed in block order afterwards (an OpenMP
    // reduction adds the threads' partials in arrival order): the result is bit-identical
    // for any thread count and schedule.
    std::vector<double> block_ll(static_cast<std::size_t>(n_blocks), 0.0);
    KDCORE_OMP(parallel for schedule(dynamic, 4) num_threads(n_threads))
    for (index_t b = 0; b < n_blocks; ++b) {
        catcher.run([&] {
            const code_t j0 = static_cast<code_t>(b * kBlock);
            const code_t j1 = static_cast<code_t>(std::min<index_t>(n_tasks, (b + 1) * kBlock));
            double msum = 0.0, logs = 0.0, prod = 1.0;
            for (code_t j = j0; j < j1; ++j) {
                // accumulate in a local array (registers when TK_ is fixed): post may alias nothing,
                // but the compiler cannot know, and would store/reload through it per answer
                double local[TK_ > 0 ? TK_ : 1];
                double* s = TK_ > 0 ? local : post + static_cast<std::size_t>(j) * TK;
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
                    for (int i = 0; i < TK; ++i) post[static_cast<std::size_t>(j) * TK + i] = 1.0 / TK;
                    msum += ninf;
                    continue;
                }
                double z = 0.0;
                for (int i = 0; i < TK; ++i) {
                    s[i] = s[i] == m ? 1.0 : std::exp(s[i] - m);  // the max term is exactly exp(0)
                    z += s[i];
                }
                const double inv = 1.0 / z;  // z >= 1
                double* out = post + static_cast<std::size_t>(j) * TK;
                for (int i = 0; i < TK; ++i) out[i] = s[i] * inv;
                msum += m;
                prod *= z;
                if (prod > 1e280) {
                    logs += std::log(prod);
                    prod = 1.0;
                }
            }
            block_ll[static_cast<std::size_t>(b)] = msum + logs + std::log(prod);
        });
    }
    double loglik = 0.0;
    for (double v : block_ll) loglik += v;
    return loglik;
}

// Per-worker accumulation acc[l * TK + (t * K + k)] = sum_{answers (j, l) of w} post[j, t, k],
// handed to `emit(w, acc)` which writes the worker's own output rows.
// TK_ > 0: the number of (type, class) cells fixed at compile time. The loop is
// bound by the latency of the scattered post[j] loads (the tasks of one worker are
// spread over the whole array), so it prefetches kPrefetch answers ahead.
constexpr index_t kPrefetch = 16;

template <int TK_, class Emit>
void worker_counts_t(const index_t* indptr, const code_t* wt, const code_t* wl, code_t n_tasks, code_t W, int tk,
                     int K, const double* post, int n_threads, Emit& emit) {
    const int TK = TK_ > 0 ? TK_ : tk;
    ExceptionCatcher catcher;
    KDCORE_OMP(parallel num_threads(n_threads))
    {
        std::vector<double> acc(static_cast<std::size_t>(K) * TK);
        KDCORE_OMP(for schedule(dynamic, 16))
        for (code_t w = 0; w < W; ++w) {
            catcher.run([&] {
                std::fill(acc.begin(), acc.end(), 0.0);
                const index_t e1 = indptr[w + 1];
                for (index_t e = indptr[w]; e < e1; ++e) {
                    const code_t j = wt[e], l = wl[e];
                    if (static_cast<std::uint32_t>(j) >= static_cast<std::uint32_t>(n_tasks))
                        bad_code("task", e, j, n_tasks);
                    if (static_cast<std::uint32_t>(l) >= static_cast<std::uint32_t>(K)) bad_code("label", e, l, K);
#if defined(__GNUC__) || defined(__clang__)
                    if (e + kPrefetch < e1) {
                        const code_t jp = wt[e + kPrefetch];
                        if (static_cast<std::uint32_t>(jp) < static_cast<std::uint32_t>(n_tasks))
                            __builtin_prefetch(post + static_cast<std::size_t>(jp) * TK);
                    }
#endif
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

// The same counts from the task-major view: each thread streams a contiguous range
// of tasks (post read in order) and scatters into its own W x K x TK buffer; the
// buffers are then summed worker by worker. Used when post is too large for the
// cache (the worker-major loop then waits on DRAM for every answer) and the
// per-thread buffers are small; no races either way.
template <int TK_, class Emit>
void task_major_counts_t(const index_t* indptr, const code_t* tw, const code_t* tl, code_t n_tasks, code_t W,
                         int tk, int K, const double* post, int n_threads, Emit& emit) {
    const int TK = TK_ > 0 ? TK_ : tk;
    const std::size_t stride = static_cast<std::size_t>(K) * TK;  // one worker's block [l][t*K+k]
    std::vector<std::vector<double>> bufs(static_cast<std::size_t>(n_threads));
    ExceptionCatcher catcher;
    KDCORE_OMP(parallel num_threads(n_threads))
    {
        std::vector<double>& buf = bufs[static_cast<std::size_t>(thread_num())];
        catcher.run([&] { buf.assign(static_cast<std::size_t>(W) * stride, 0.0); });
        KDCORE_OMP(for schedule(static))
        for (code_t j = 0; j < n_tasks; ++j) {
            catcher.run([&] {
                if (buf.empty()) return;
                const double* p = post + static_cast<std::size_t>(j) * TK;
                for (index_t e = indptr[j]; e < indptr[j + 1]; ++e) {
                    const code_t w = tw[e], l = tl[e];
                    if (static_cast<std::uint32_t>(w) >= static_cast<std::uint32_t>(W)) bad_code("worker", e, w, W);
                    if (static_cast<std::uint32_t>(l) >= static_cast<std::uint32_t>(K)) bad_code("label", e, l, K);
                    double* a = buf.data() + static_cast<std::size_t>(w) * stride + static_cast<std::size_t>(l) * TK;
                    for (int i = 0; i < TK; ++i) a[i] += p[i];
                }
            });
        }
    }
    catcher.rethrow();
    KDCORE_OMP(parallel num_threads(n_threads))
    {
        std::vector<double> acc(stride);
        KDCORE_OMP(for schedule(static))
        for (code_t w = 0; w < W; ++w) {
            catcher.run([&] {
                std::fill(acc.begin(), acc.end(), 0.0);
                for (const auto& b : bufs)  // fixed thread order: the same sums for the same thread count
                    if (!b.empty())
                        for (std::size_t x = 0; x < stride; ++x) acc[x] += b[static_cast<std::size_t>(w) * stride + x];
                emit(w, acc.data());
            });
        }
    }
    catcher.rethrow();
}

template <class Emit>
void worker_counts(const index_t* indptr, const code_t* wt, const code_t* wl, code_t n_tasks, code_t W, int TK, int K,
                   const double* post, int n_threads, Emit emit);

// Expected counts per worker through whichever view suits the sizes (see
// MStepStrategy in crowd.hpp); emit(w, acc) receives acc[l * TK + t * K + k].
template <class Emit>
void counts_auto(const AnswerViews& v, code_t n_tasks, code_t W, int TK, int K, const double* post, int nt,
                 MStepStrategy strategy, Emit emit) {
    bool task_major = false;
    if (strategy == MStepStrategy::task_major) {
        if (!v.task_indptr) fail("the task-major M-step needs the task-major view");
        task_major = true;
    } else if (strategy == MStepStrategy::automatic && v.task_indptr) {
        const double n_answers = static_cast<double>(v.task_indptr[n_tasks]);
        const double buf_bytes = 8.0 * W * K * TK * nt;
        task_major = buf_bytes <= kMaxScratchBytes && 4.0 * W * K * nt <= n_answers;
    }
    if (!task_major) return worker_counts(v.worker_indptr, v.worker_task, v.worker_label, n_tasks, W, TK, K, post, nt, emit);
#define KDCORE_TM(TT) \
    task_major_counts_t<TT>(v.task_indptr, v.task_worker, v.task_label, n_tasks, W, TK, K, post, nt, emit)
    switch (TK) {
        case 2: return KDCORE_TM(2);
        case 4: return KDCORE_TM(4);
        default: return KDCORE_TM(0);
    }
#undef KDCORE_TM
}

template <class Emit>
void worker_counts(const index_t* indptr, const code_t* wt, const code_t* wl, code_t n_tasks, code_t W, int TK, int K,
                   const double* post, int n_threads, Emit emit) {
#define KDCORE_WC(TT) worker_counts_t<TT>(indptr, wt, wl, n_tasks, W, TK, K, post, n_threads, emit)
    switch (TK) {
        case 2: return KDCORE_WC(2);
        case 3: return KDCORE_WC(3);
        case 4: return KDCORE_WC(4);
        case 5: return KDCORE_WC(5);
        case 6: return KDCORE_WC(6);
        case 8: return KDCORE_WC(8);
        default: return KDCORE_WC(0);
    }
#undef KDCORE_WC
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
    const int TK = n_types * n_classes;
    double ll;
#define KDCORE_E(N)                                                                                               \
    e_step_tasks<N>(task_indptr, task_worker, task_label, n_tasks, n_workers, TK, n_classes, lc.data(), log_prior, \
                    post, nt, catcher)
    switch (TK) {
        case 2: ll = KDCORE_E(2); break;
        case 3: ll = KDCORE_E(3); break;
        case 4: ll = KDCORE_E(4); break;
        case 5: ll = KDCORE_E(5); break;
        case 6: ll = KDCORE_E(6); break;
        case 8: ll = KDCORE_E(8); break;
        default: ll = KDCORE_E(0); break;
    }
#undef KDCORE_E
    catcher.rethrow();
    return ll;
}

void em_counts(const AnswerViews& views, code_t n_tasks, code_t n_workers, int n_types, int n_classes,
               const double* post, double* counts, double* mass, int n_threads, MStepStrategy strategy) {
    check_dims(n_tasks, n_workers, n_types, n_classes);
    const int T = n_types, K = n_classes, TK = T * K;
    const code_t W = n_workers;
    counts_auto(views, n_tasks, W, TK, K, post, resolve_threads(n_threads), strategy,
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

void em_m_step(const AnswerViews& views, code_t n_tasks, code_t n_workers, int n_types, int n_classes,
               const double* post, double smoothing, double* conf, double* prior, int n_threads,
               MStepStrategy strategy) {
    check_dims(n_tasks, n_workers, n_types, n_classes);
    if (!(smoothing >= 0.0) || !std::isfinite(smoothing)) fail("smoothing must be finite and >= 0");
    const int T = n_types, K = n_classes, TK = T * K;
    const code_t W = n_workers;
    counts_auto(views, n_tasks, W, TK, K, post, resolve_threads(n_threads), strategy,
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

void onecoin_m_step(const AnswerViews& views, code_t n_tasks, code_t n_workers, int n_types, int n_classes,
                    const double* post, double smoothing, double* skill, double* prior, int n_threads,
                    MStepStrategy strategy) {
    check_dims(n_tasks, n_workers, n_types, n_classes);
    if (!(smoothing >= 0.0) || !std::isfinite(smoothing)) fail("smoothing must be finite and >= 0");
    const int T = n_types, K = n_classes, TK = T * K;
    const code_t W = n_workers;
    counts_auto(views, n_tasks, W, TK, K, post, resolve_threads(n_threads), strategy,
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

template <int K_>
void vote_tasks(const index_t* task_indptr, const code_t* task_worker, const code_t* task_label, code_t n_tasks,
                code_t n_workers, int k_rt, const double* weight, double* scores, code_t* best, code_t* n_tied,
                int nt) {
    const int K = K_ > 0 ? K_ : k_rt;
    ExceptionCatcher catcher;
    KDCORE_OMP(parallel for schedule(static, 2048) num_threads(nt))
    for (code_t j = 0; j < n_tasks; ++j) {
        catcher.run([&] {
            double local[K_ > 0 ? K_ : 1];  // a local accumulator: no store/reload through `scores`
            double* s = K_ > 0 ? local : scores + static_cast<std::size_t>(j) * K;
            for (int k = 0; k < K; ++k) s[k] = 0.0;
            for (index_t e = task_indptr[j]; e < task_indptr[j + 1]; ++e) {
                const code_t w = task_worker[e], l = task_label[e];
                if (static_cast<std::uint32_t>(w) >= static_cast<std::uint32_t>(n_workers))
                    bad_code("worker", e, w, n_workers);
                if (static_cast<std::uint32_t>(l) >= static_cast<std::uint32_t>(K)) bad_code("label", e, l, K);
                s[l] += weight ? weight[w] : 1.0;
            }
            int b = 0;
            for (int k = 1; k < K; ++k)
                if (s[k] > s[b]) b = k;
            // ties: equal up to rounding of the weighted sums (exact for unit weights)
            const double tol = 1e-12 * std::max(1.0, std::fabs(s[b]));
            code_t c = 0;
            for (int k = 0; k < K; ++k) c += (s[b] - s[k] <= tol);
            for (int k = 0; k < b; ++k)  // the first class within tol of the max
                if (s[b] - s[k] <= tol) {
                    b = k;
                    break;
                }
            best[j] = b;
            n_tied[j] = c;
            if (K_ > 0)
                for (int k = 0; k < K; ++k) scores[static_cast<std::size_t>(j) * K + k] = s[k];
        });
    }
    catcher.rethrow();
}

void vote_scores(const index_t* task_indptr, const code_t* task_worker, const code_t* task_label, code_t n_tasks,
                 code_t n_workers, int n_classes, const double* weight, double* scores, code_t* best, code_t* n_tied,
                 int n_threads) {
    if (n_tasks < 0 || n_workers < 0) fail("n_tasks and n_workers must be >= 0");
    if (n_classes < 1) fail("n_classes must be >= 1");
    const int nt = resolve_threads(n_threads);
#define KDCORE_V(KK) \
    vote_tasks<KK>(task_indptr, task_worker, task_label, n_tasks, n_workers, n_classes, weight, scores, best, n_tied, nt)
    switch (n_classes) {
        case 2: KDCORE_V(2); break;
        case 3: KDCORE_V(3); break;
        case 4: KDCORE_V(4); break;
        case 5: KDCORE_V(5); break;
        default: KDCORE_V(0); break;
    }
#undef KDCORE_V
}

}  // namespace kdcore
