// The Dawid-Skene EM core and the vote kernel (equations in crowd.hpp).
#include "kdcore/crowd.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

namespace kdcore {
namespace {

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
#if defined(__GNUC__) || defined(__clang__)
                    if (e + kPrefetch < e1) __builtin_prefetch(post + static_cast<std::size_t>(wt[e + kPrefetch]) * TK);
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
    const int nt = threads_for(n_threads, task_indptr[n_tasks]);
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
    counts_auto(views, n_tasks, W, TK, K, post, threads_for(n_threads, views.worker_indptr[n_workers]), strategy,
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
    counts_auto(views, n_tasks, W, TK, K, post, threads_for(n_threads, views.worker_indptr[n_workers]), strategy,
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
    counts_auto(views, n_tasks, W, TK, K, post, threads_for(n_threads, views.worker_indptr[n_workers]), strategy,
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

namespace {

// ---- em_run: the whole EM loop (see crowd.hpp) -----------------------------------
// Count tables and log-confusions share one answer-major layout:
//   cnt[(w * K + l) * TK + t * K + k],  lc[(w * K + l) * TK + t * K + k]
// so an answer with code c = w * K + l reads lc + c * TK and adds to cnt + c * TK.

// M-step from the counts and the class mass: params (conf (T, W, K, K) or skill
// (T, W)), prior (T, K), and their clipped logs lc (answer-major) and log_prior.
// The arithmetic is em_m_step's / onecoin_m_step's, then log(max(p, floor)) as
// kdcore.crowd._em.log_clip.
void m_from_counts(const double* cnt, const double* mass, code_t W, int T, int K, double s, bool one_coin,
                   double floor, double* params, double* prior, double* lc, double* log_prior) {
    const int TK = T * K;
    auto at = [&](code_t w, int l, int t, int k) {
        return (static_cast<std::size_t>(w) * K + l) * TK + static_cast<std::size_t>(t) * K + k;
    };
    for (int t = 0; t < T; ++t)
        for (code_t w = 0; w < W; ++w) {
            if (!one_coin) {
                for (int k = 0; k < K; ++k) {
                    double* row = params + ((static_cast<std::size_t>(t) * W + w) * K + k) * K;
                    double z = 0.0;
                    for (int l = 0; l < K; ++l) {
                        row[l] = cnt[at(w, l, t, k)] + s;
                        z += row[l];
                    }
                    for (int l = 0; l < K; ++l) {
                        row[l] = z > 0.0 ? row[l] / z : 1.0 / K;
                        lc[at(w, l, t, k)] = std::log(std::max(row[l], floor));
                    }
                }
            } else {
                double right = 0.0, total = 0.0;
                for (int l = 0; l < K; ++l)
                    for (int k = 0; k < K; ++k) {
                        const double c = cnt[at(w, l, t, k)];
                        total += c;
                        if (k == l) right += c;
                    }
                const double z = total + 2.0 * s;
                const double sk = z > 0.0 ? (right + s) / z : 0.5;
                params[static_cast<std::size_t>(t) * W + w] = sk;
                const double lr = std::log(std::max(sk, floor));
                const double lw = std::log(std::max((1.0 - sk) / (K - 1), floor));
                for (int l = 0; l < K; ++l)
                    for (int k = 0; k < K; ++k) lc[at(w, l, t, k)] = k == l ? lr : lw;
            }
        }
    double z = 0.0;
    for (int i = 0; i < TK; ++i) z += mass[i] + s;
    for (int i = 0; i < TK; ++i) {
        prior[i] = z > 0.0 ? (mass[i] + s) / z : 1.0 / TK;
        log_prior[i] = std::log(std::max(prior[i], floor));
    }
}

// exp(x) for x <= 0, in place, vectorisable (no branch; an x86-64-v3 variant where
// the CPU has it, ISA dispatch in parallel.hpp): x = k ln 2 + r with |r| <= ln(2)/2,
// exp(r) by its Taylor polynomial of degree 13 (truncation < 5e-18), times 2^k built
// in the exponent bits. Relative error within 3e-16 of std::exp; exactly 1 at 0; 0
// below -708 (where exp < 3.3e-308).
KDCORE_ALWAYS_INLINE void exp_nonpositive_impl(double* x, std::size_t n) {
    const double log2e = 1.4426950408889634, ln2_hi = 0.6931471803691238, ln2_lo = 1.9082149292705877e-10;
    const double shifter = 6755399441055744.0;  // 1.5 * 2^52: round to nearest integer in the low mantissa bits
    for (std::size_t i = 0; i < n; ++i) {
        const double v = x[i];
        const double xc = v > -708.0 ? v : -708.0;
        double kd = xc * log2e + shifter;
        std::int64_t kb;
        std::memcpy(&kb, &kd, 8);
        kd -= shifter;
        const double r = (xc - kd * ln2_hi) - kd * ln2_lo;
        double p = 1.0 / 6227020800.0;
        p = p * r + 1.0 / 479001600.0;
        p = p * r + 1.0 / 39916800.0;
        p = p * r + 1.0 / 3628800.0;
        p = p * r + 1.0 / 362880.0;
        p = p * r + 1.0 / 40320.0;
        p = p * r + 1.0 / 5040.0;
        p = p * r + 1.0 / 720.0;
        p = p * r + 1.0 / 120.0;
        p = p * r + 1.0 / 24.0;
        p = p * r + 1.0 / 6.0;
        p = p * r + 0.5;
        p = p * r + 1.0;
        p = p * r + 1.0;
        const std::int64_t eb = (kb - 0x4338000000000000LL + 1023) * (static_cast<std::int64_t>(1) << 52);
        double scale;
        std::memcpy(&scale, &eb, 8);
        x[i] = p * scale * static_cast<double>(v >= -708.0);
    }
}
KDCORE_DISPATCH_V3(void, exp_nonpositive, (double* x, std::size_t n), (x, n))

// One pass over the tasks (static schedule, blocks of kBlock tasks): the E-step
// (post, per-block log-likelihood) and, when `count`, the expected counts of the
// next M-step scattered into this thread's table bufs[tid] (bufs[0] is the output
// cnt) and the class mass into mass_part[tid]. do_e = false only counts the
// posteriors already in post (the first M-step). Each block runs in three phases,
// so that no phase waits on another's latency: gather the log-scores of every task
// (two interleaved sums per task), normalise the block (one vectorised exp), then
// scatter the posteriors into the count table.
template <int TK_>
void fused_pass(const index_t* indptr, const code_t* code, code_t n_tasks, int tk, const double* lc,
                const double* log_prior, double* post, bool do_e, bool count, std::vector<double*>& bufs,
                std::size_t table, std::vector<double>& mass_part, std::vector<double>& block_ll, int nt,
                ExceptionCatcher& catcher) {
    const int TK = TK_ > 0 ? TK_ : tk;
    const double ninf = -std::numeric_limits<double>::infinity();
    const index_t n_blocks = (static_cast<index_t>(n_tasks) + kBlock - 1) / kBlock;
    KDCORE_OMP(parallel num_threads(nt))
    {
        const int tid = thread_num();
        double* buf = count ? bufs[static_cast<std::size_t>(tid)] : nullptr;
        double* mpart = mass_part.data() + static_cast<std::size_t>(tid) * TK;
        std::vector<double> sblk, mblk;
        catcher.run([&] {
            sblk.resize(static_cast<std::size_t>(kBlock) * TK);
            mblk.resize(static_cast<std::size_t>(kBlock));
            if (count) std::fill(buf, buf + table, 0.0);
            for (int i = 0; i < TK; ++i) mpart[i] = 0.0;
        });
        KDCORE_OMP(for schedule(static))
        for (index_t b = 0; b < n_blocks; ++b) {
            catcher.run([&] {
                const code_t j0 = static_cast<code_t>(b * kBlock);
                const code_t j1 = static_cast<code_t>(std::min<index_t>(n_tasks, (b + 1) * kBlock));
                const std::size_t nb = static_cast<std::size_t>(j1 - j0) * TK;
                double* S = sblk.data();
                const double* P = post + static_cast<std::size_t>(j0) * TK;  // this block's posteriors
                if (do_e) {
                    // phase 1: log-scores s[j, i] = log_prior[i] + sum_answers lc[code, i]
                    for (code_t j = j0; j < j1; ++j) {
                        double a[TK_ > 0 ? TK_ : 1], c[TK_ > 0 ? TK_ : 1];
                        double* s = TK_ > 0 ? a : S + static_cast<std::size_t>(j - j0) * TK;
                        double* s2 = TK_ > 0 ? c : nullptr;
                        const index_t e0 = indptr[j], e1 = indptr[j + 1];
                        if (TK_ > 0) {  // two interleaved sums: each is a chain of dependent adds
                            for (int i = 0; i < TK; ++i) {
                                s[i] = log_prior[i];
                                s2[i] = 0.0;
                            }
                            index_t e = e0;
                            for (; e + 1 < e1; e += 2) {
                                const double* v = lc + static_cast<std::size_t>(code[e]) * TK;
                                const double* u = lc + static_cast<std::size_t>(code[e + 1]) * TK;
                                for (int i = 0; i < TK; ++i) {
                                    s[i] += v[i];
                                    s2[i] += u[i];
                                }
                            }
                            if (e < e1) {
                                const double* v = lc + static_cast<std::size_t>(code[e]) * TK;
                                for (int i = 0; i < TK; ++i) s[i] += v[i];
                            }
                            double* out = S + static_cast<std::size_t>(j - j0) * TK;
                            for (int i = 0; i < TK; ++i) out[i] = s[i] + s2[i];
                        } else {
                            for (int i = 0; i < TK; ++i) s[i] = log_prior[i];
                            for (index_t e = e0; e < e1; ++e) {
                                const double* v = lc + static_cast<std::size_t>(code[e]) * TK;
                                for (int i = 0; i < TK; ++i) s[i] += v[i];
                            }
                        }
                    }
                    // phase 2: max shift, exp, normalise; log-likelihood of the block
                    double* M = mblk.data();
                    bool impossible = false;
                    for (code_t j = 0; j < j1 - j0; ++j) {
                        double* s = S + static_cast<std::size_t>(j) * TK;
                        double m = s[0];
                        for (int i = 1; i < TK; ++i) m = s[i] > m ? s[i] : m;
                        M[j] = m;
                        impossible |= m == ninf;
                        for (int i = 0; i < TK; ++i) s[i] -= m;
                    }
                    exp_nonpositive(S, nb);
                    double msum = 0.0, logs = 0.0, prod = 1.0;
                    double* out = post + static_cast<std::size_t>(j0) * TK;
                    for (code_t j = 0; j < j1 - j0; ++j) {
                        const double* s = S + static_cast<std::size_t>(j) * TK;
                        double* o = out + static_cast<std::size_t>(j) * TK;
                        double z = 0.0;
                        for (int i = 0; i < TK; ++i) z += s[i];
                        const double inv = 1.0 / z;  // z >= 1: the max term is exp(0) = 1
                        for (int i = 0; i < TK; ++i) o[i] = s[i] * inv;
                        msum += M[j];
                        prod *= z;
                        if (prod > 1e280) {
                            logs += std::log(prod);
                            prod = 1.0;
                        }
                    }
                    if (impossible) {  // every (t, k) -inf (only with -inf log-probabilities): uniform
                        for (code_t j = 0; j < j1 - j0; ++j)
                            if (M[j] == ninf)
                                for (int i = 0; i < TK; ++i) out[static_cast<std::size_t>(j) * TK + i] = 1.0 / TK;
                    }
                    block_ll[static_cast<std::size_t>(b)] = msum + logs + std::log(prod);
                }
                if (!count) return;
                // phase 3: expected counts and class mass
                double mloc[TK_ > 0 ? TK_ : 1];
                double* ms = TK_ > 0 ? mloc : mpart;
                if (TK_ > 0)
                    for (int i = 0; i < TK; ++i) mloc[i] = 0.0;
                for (code_t j = j0; j < j1; ++j) {
                    const double* pj = P + static_cast<std::size_t>(j - j0) * TK;
                    double p[TK_ > 0 ? TK_ : 1];
                    const double* q = pj;
                    if (TK_ > 0) {
                        for (int i = 0; i < TK; ++i) p[i] = pj[i];
                        q = p;
                    }
                    for (int i = 0; i < TK; ++i) ms[i] += q[i];
                    for (index_t e = indptr[j]; e < indptr[j + 1]; ++e) {
                        double* a = buf + static_cast<std::size_t>(code[e]) * TK;
                        for (int i = 0; i < TK; ++i) a[i] += q[i];
                    }
                }
                if (TK_ > 0)
                    for (int i = 0; i < TK; ++i) mpart[i] += mloc[i];
            });
        }
    }
}

void fused(const index_t* indptr, const code_t* code, code_t n_tasks, int TK, const double* lc,
           const double* log_prior, double* post, bool do_e, bool count, std::vector<double*>& bufs,
           std::size_t table, std::vector<double>& mass_part, std::vector<double>& block_ll, int nt) {
    ExceptionCatcher catcher;
#define KDCORE_F(N)                                                                                              \
    fused_pass<N>(indptr, code, n_tasks, TK, lc, log_prior, post, do_e, count, bufs, table, mass_part, block_ll, \
                  nt, catcher)
    switch (TK) {
        case 2: KDCORE_F(2); break;
        case 3: KDCORE_F(3); break;
        case 4: KDCORE_F(4); break;
        case 5: KDCORE_F(5); break;
        case 6: KDCORE_F(6); break;
        case 8: KDCORE_F(8); break;
        default: KDCORE_F(0); break;
    }
#undef KDCORE_F
    catcher.rethrow();
}

}  // namespace

EmRunResult em_run(const AnswerViews& v, code_t n_tasks, code_t n_workers, int n_types, int n_classes,
                   double smoothing, bool one_coin, int n_iter, double tol, double init_loglik, double prob_floor,
                   double* post, double* params, double* prior, double* history, int n_threads,
                   MStepStrategy strategy, EmStopRule stop_rule, const code_t* gold_task, const code_t* gold_class,
                   code_t n_gold) {
    check_dims(n_tasks, n_workers, n_types, n_classes);
    const bool penalised = stop_rule == EmStopRule::penalised;
    if (penalised && one_coin) fail("em_run: the penalised stopping rule is for full confusions, not one_coin");
    if (!(smoothing >= 0.0) || !std::isfinite(smoothing)) fail("smoothing must be finite and >= 0");
    if (n_iter < 1) fail("n_iter must be >= 1");
    if (!(tol >= 0.0) || !std::isfinite(tol)) fail("tol must be finite and >= 0");
    if (!(prob_floor > 0.0) || !(prob_floor < 1.0)) fail("prob_floor must be in (0, 1)");
    if (!v.task_indptr) fail("em_run needs the task-major view");
    const int T = n_types, K = n_classes, TK = T * K;
    const code_t W = n_workers;
    const index_t N = v.task_indptr[n_tasks];
    const int nt = threads_for(n_threads, N);
    const std::size_t table = static_cast<std::size_t>(W) * K * TK;

    if (n_gold < 0 || (n_gold > 0 && (!gold_task || !gold_class))) fail("em_run: gold tasks need both arrays");
    for (code_t g = 0; g < n_gold; ++g)
        if (gold_task[g] < 0 || gold_task[g] >= n_tasks || gold_class[g] < 0 || gold_class[g] >= n_classes)
            fail("em_run: a gold task or class code is out of range");
    // gold tasks: the class fixed, each type's mass kept (post[j, t, :] = mass_t e_class)
    auto clamp_gold = [&]() {
        for (code_t g = 0; g < n_gold; ++g) {
            double* row = post + static_cast<std::size_t>(gold_task[g]) * n_types * n_classes;
            for (int t = 0; t < n_types; ++t) {
                double m = 0.0;
                for (int k = 0; k < n_classes; ++k) m += row[t * n_classes + k];
                for (int k = 0; k < n_classes; ++k) row[t * n_classes + k] = 0.0;
                row[t * n_classes + gold_class[g]] = m;
            }
        }
    };
    clamp_gold();

    bool fuse = strategy != MStepStrategy::worker_major && n_gold == 0;
    if (strategy == MStepStrategy::automatic && n_gold == 0) {
        const double buf_bytes = 8.0 * static_cast<double>(table) * nt;
        fuse = buf_bytes <= kMaxScratchBytes && 4.0 * W * K * nt <= static_cast<double>(N);
    }

    // one code w * K + l per answer
    std::vector<code_t> code;
    if (fuse) {
        code.resize(static_cast<std::size_t>(N));
        KDCORE_OMP(parallel for schedule(static) num_threads(nt))
        for (index_t e = 0; e < N; ++e) code[static_cast<std::size_t>(e)] = v.task_worker[e] * K + v.task_label[e];
    }

    std::vector<double> cnt(table), lc(table), log_prior(TK), mass(TK);
    std::vector<std::vector<double>> extra(fuse ? static_cast<std::size_t>(nt - 1) : 0);
    std::vector<double*> bufs{cnt.data()};
    for (auto& b : extra) {
        b.resize(table);
        bufs.push_back(b.data());
    }
    std::vector<double> mass_part(static_cast<std::size_t>(nt) * TK);
    const index_t n_blocks = (static_cast<index_t>(n_tasks) + kBlock - 1) / kBlock;
    std::vector<double> block_ll(static_cast<std::size_t>(n_blocks), 0.0);

    // counts of the posteriors in `post` into cnt / mass
    auto reduce = [&]() {
        if (fuse && nt > 1) {
            KDCORE_OMP(parallel for schedule(static) num_threads(nt))
            for (std::size_t x = 0; x < table; ++x)
                for (int t = 1; t < nt; ++t) cnt[x] += bufs[static_cast<std::size_t>(t)][x];
        }
        for (int i = 0; i < TK; ++i) {
            double m = 0.0;
            for (int t = 0; t < (fuse ? nt : 1); ++t) m += mass_part[static_cast<std::size_t>(t) * TK + i];
            mass[i] = m;
        }
    };
    auto count_worker_major = [&]() {
        worker_counts(v.worker_indptr, v.worker_task, v.worker_label, n_tasks, W, TK, K, post, nt,
                      [&](code_t w, const double* acc) {
                          std::copy(acc, acc + static_cast<std::size_t>(K) * TK,
                                    cnt.data() + static_cast<std::size_t>(w) * K * TK);
                      });
        std::fill(mass_part.begin(), mass_part.end(), 0.0);
        for (code_t j = 0; j < n_tasks; ++j)
            for (int i = 0; i < TK; ++i) mass_part[i] += post[static_cast<std::size_t>(j) * TK + i];
        reduce();
    };
    if (fuse) {
        fused(v.task_indptr, code.data(), n_tasks, TK, lc.data(), log_prior.data(), post, false, true, bufs, table,
              mass_part, block_ll, nt);
        reduce();
    } else {
        count_worker_major();
    }

    EmRunResult res{0, false, init_loglik};
    double ll = init_loglik;
    ExceptionCatcher catcher;
    for (int n = 1; n <= n_iter; ++n) {
        check_interrupt();
        m_from_counts(cnt.data(), mass.data(), W, T, K, smoothing, one_coin, prob_floor, params, prior, lc.data(),
                      log_prior.data());
        const bool last = n == n_iter;
        if (fuse) {
            fused(v.task_indptr, code.data(), n_tasks, TK, lc.data(), log_prior.data(), post, true, !last, bufs,
                  table, mass_part, block_ll, nt);
            if (!last) reduce();
        } else {
#define KDCORE_E(NN)                                                                                            \
    e_step_tasks<NN>(v.task_indptr, v.task_worker, v.task_label, n_tasks, W, TK, K, lc.data(), log_prior.data(), \
                     post, nt, catcher)
            double ll_e;  // the whole E-step's log-likelihood: one "block"
            switch (TK) {
                case 2: ll_e = KDCORE_E(2); break;
                case 4: ll_e = KDCORE_E(4); break;
                default: ll_e = KDCORE_E(0); break;
            }
#undef KDCORE_E
            catcher.rethrow();
            block_ll.assign(1, ll_e);
            clamp_gold();
        }
        double new_ll = 0.0;
        for (double x : block_ll) new_ll += x;
        res.n_iter = n;
        bool stop;
        if (penalised) {
            double pen = 0.0;  // sum of every clipped log-parameter (lc is a permutation of log C)
            for (double x : lc) pen += x;
            for (double x : log_prior) pen += x;
            const double h = new_ll + smoothing * pen;
            history[n - 1] = h;
            stop = n > 1 && std::fabs(h - history[n - 2]) <= tol * std::max(1.0, std::fabs(h));
        } else {
            history[n - 1] = -new_ll / static_cast<double>(N > 0 ? N : 1);
            stop = !std::isnan(ll) && std::fabs(new_ll - ll) < tol * std::fabs(ll);
        }
        ll = new_ll;
        if (stop) {
            res.converged = true;
            break;
        }
        if (!fuse && !last) count_worker_major();
    }
    res.loglik = ll;
    return res;
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
    const int nt = threads_for(n_threads, task_indptr[n_tasks]);
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

double em_partition_stats(const index_t* task_indptr, const code_t* code, code_t n_tasks, code_t n_workers,
                          int n_types, int n_classes, const double* log_conf, const double* log_prior, double* post,
                          double* counts, double* mass, int n_threads, bool vote_start) {
    check_dims(n_tasks, n_workers, n_types, n_classes);
    const int T = n_types, K = n_classes, TK = T * K;
    const code_t W = n_workers;
    const index_t N = task_indptr[n_tasks];
    // the codes are trusted: the binding checked each against W * K (responses.hpp, "Validated input")
    const bool do_e = log_conf != nullptr;
    if (do_e && !log_prior) fail("em_partition_stats: log_conf without log_prior");
    if (vote_start && (do_e || T != 1)) fail("em_partition_stats: vote_start needs no log_conf and one type");
    const bool count = counts != nullptr;
    if (count && !mass) fail("em_partition_stats: counts without mass");
    const int nt = threads_for(n_threads, N);
    if (vote_start) {  // post[j, 0, :] = the task's label counts / its answers (the votes' shares)
        KDCORE_OMP(parallel for schedule(static, 2048) num_threads(nt))
        for (code_t j = 0; j < n_tasks; ++j) {
            double* p = post + static_cast<std::size_t>(j) * K;
            for (int k = 0; k < K; ++k) p[k] = 0.0;
            for (index_t e = task_indptr[j]; e < task_indptr[j + 1]; ++e) p[code[e] % K] += 1.0;
            const double n = static_cast<double>(task_indptr[j + 1] - task_indptr[j]);
            for (int k = 0; k < K; ++k) p[k] /= n;
        }
    }
    const std::size_t table = count ? static_cast<std::size_t>(W) * K * TK : 0;
    std::vector<double> lc = do_e ? answer_major(log_conf, W, T, K) : std::vector<double>();
    std::vector<std::vector<double>> tables(count ? static_cast<std::size_t>(nt) : 0);
    std::vector<double*> bufs;
    for (auto& b : tables) {
        b.resize(table);
        bufs.push_back(b.data());
    }
    if (!count) bufs.assign(static_cast<std::size_t>(nt), nullptr);
    std::vector<double> mass_part(static_cast<std::size_t>(nt) * TK, 0.0);
    const index_t n_blocks = (static_cast<index_t>(n_tasks) + kBlock - 1) / kBlock;
    std::vector<double> block_ll(static_cast<std::size_t>(n_blocks), 0.0);
    fused(task_indptr, code, n_tasks, TK, do_e ? lc.data() : nullptr, log_prior, post, do_e, count, bufs, table,
          mass_part, block_ll, nt);
    if (count) {
        const std::vector<double>& c0 = tables[0];
        for (code_t w = 0; w < W; ++w)
            for (int l = 0; l < K; ++l)
                for (int t = 0; t < T; ++t)
                    for (int k = 0; k < K; ++k) {
                        const std::size_t x = (static_cast<std::size_t>(w) * K + l) * TK + static_cast<std::size_t>(t) * K + k;
                        double v = c0[x];
                        for (int th = 1; th < nt; ++th) v += tables[static_cast<std::size_t>(th)][x];  // thread order
                        counts[((static_cast<std::size_t>(t) * W + w) * K + k) * K + l] = v;
                    }
        for (int i = 0; i < TK; ++i) {
            double v = 0.0;
            for (int th = 0; th < nt; ++th) v += mass_part[static_cast<std::size_t>(th) * TK + i];
            mass[i] = v;
        }
    }
    double ll = 0.0;
    if (do_e)
        for (double x : block_ll) ll += x;
    return ll;
}

// ---- the refined typing's shrunk-skill loops (see crowd.hpp) --------------------------------
namespace {
// counts -> shrunk log confusions; mass -> log prior (typed_equal: each type's row normalised,
// equal type priors, as the classification EM's reassignment wants).
// answer_major: counts and log_conf in em_run's layout [(w K + l) T K + t K + k] (fused passes),
// else in [((t W + w) K + k) K + l].
void shrunk_params(const std::vector<double>& cnt, const std::vector<double>& mass, code_t W, int T, int K,
                   double b, double smoothing, bool typed_equal, double* log_conf, double* log_prior,
                   bool answer_major = false) {
    const std::size_t TKs = static_cast<std::size_t>(T) * K;
    auto at = [&](code_t w, int t, int k, int l) {
        return answer_major ? (static_cast<std::size_t>(w) * K + l) * TKs + static_cast<std::size_t>(t) * K + k
                            : ((static_cast<std::size_t>(t) * W + w) * K + k) * K + l;
    };
    const double off_den = static_cast<double>(std::max(K - 1, 1));
    for (code_t w = 0; w < W; ++w)
        for (int k = 0; k < K; ++k) {
            double right_all = 0.0, tot_all = 0.0;
            for (int t = 0; t < T; ++t) {
                double tot = 0.0;
                for (int l = 0; l < K; ++l) tot += cnt[at(w, t, k, l)];
                right_all += cnt[at(w, t, k, k)];
                tot_all += tot;
            }
            const double s_all = (right_all + 1.0) / (tot_all + 2.0);
            for (int t = 0; t < T; ++t) {
                double tot = 0.0;
                for (int l = 0; l < K; ++l) tot += cnt[at(w, t, k, l)];
                double skill = (cnt[at(w, t, k, k)] + b * s_all) / (tot + b);
                skill = std::min(std::max(skill, 1e-6), 1.0 - 1e-6);
                const double lw = std::log((1.0 - skill) / off_den), lr = std::log(skill);
                for (int l = 0; l < K; ++l) log_conf[at(w, t, k, l)] = l == k ? lr : lw;
            }
        }
    const int TK = T * K;
    double tot = 0.0;
    for (int i = 0; i < TK; ++i) tot += mass[i];
    std::vector<double> prior(static_cast<std::size_t>(TK));
    double tot2 = 0.0;
    for (int i = 0; i < TK; ++i) {
        prior[i] = mass[i] / tot + smoothing;
        tot2 += prior[i];
    }
    for (int i = 0; i < TK; ++i) prior[i] /= tot2;
    for (int t = 0; t < T; ++t) {
        double row = 0.0;
        for (int k = 0; k < K; ++k) row += prior[t * K + k];
        for (int k = 0; k < K; ++k) {
            double v = std::log(std::max(prior[t * K + k], 1e-300));
            if (typed_equal) v = v - std::log(std::max(row, 1e-300)) - std::log(static_cast<double>(T));
            log_prior[t * K + k] = v;
        }
    }
}

// post[j] = full[j] restricted to type types[j], renormalised over the classes.
void mask_to_types(const double* full, const std::int64_t* types, code_t n_tasks, int T, int K, double* post) {
    const std::size_t TK = static_cast<std::size_t>(T) * K;
    for (code_t j = 0; j < n_tasks; ++j) {
        const double* f = full + j * TK;
        double* p = post + j * TK;
        const int t0 = static_cast<int>(types[j]);
        double z = 0.0;
        for (int k = 0; k < K; ++k) z += f[t0 * K + k];
        z = std::max(z, 1e-300);
        for (std::size_t i = 0; i < TK; ++i) p[i] = 0.0;
        for (int k = 0; k < K; ++k) p[t0 * K + k] = f[t0 * K + k] / z;
    }
}
// The classification EM's reassignment: each task to its most likely type (type mass of the
// posterior full (n_tasks, T, K) summed over classes, into tp (n_tasks, T)); a type that would
// vanish keeps its most likely task. Writes the new types and returns how many tasks moved.
// A type that would vanish from the proposed types `fresh` keeps its most likely task (the first
// maximum of tp[:, t]); then the proposal becomes the types. Returns how many tasks moved; *fixed
// says whether a vanishing type was kept this way.
code_t adopt_types(const double* tp, code_t n_tasks, int T, std::int64_t* fresh, std::int64_t* types, bool* fixed) {
    *fixed = false;
    for (int t = 0; t < T; ++t) {
        bool any = false;
        code_t arg = 0;
        for (code_t j = 0; j < n_tasks; ++j) {
            any = any || fresh[j] == t;
            if (tp[static_cast<std::size_t>(j) * T + t] > tp[static_cast<std::size_t>(arg) * T + t]) arg = j;
        }
        if (!any) {
            fresh[arg] = t;
            *fixed = true;
        }
    }
    code_t changed = 0;
    for (code_t j = 0; j < n_tasks; ++j) {
        changed += fresh[j] != types[j];
        types[j] = fresh[j];
    }
    return changed;
}
// The classification EM's reassignment: each task to its most likely type (type mass of the
// posterior full (n_tasks, T, K) summed over classes, into tp (n_tasks, T)); a type that would
// vanish keeps its most likely task. Writes the new types and returns how many tasks moved.
code_t reassign_types(const double* full, code_t n_tasks, int T, int K, double* tp, std::int64_t* fresh,
                      std::int64_t* types) {
    const std::size_t TK = static_cast<std::size_t>(T) * K;
    for (code_t j = 0; j < n_tasks; ++j) {
        int best = 0;
        for (int t = 0; t < T; ++t) {
            double z = 0.0;
            for (int k = 0; k < K; ++k) z += full[j * TK + t * K + k];
            tp[static_cast<std::size_t>(j) * T + t] = z;
            if (z > tp[static_cast<std::size_t>(j) * T + best]) best = t;
        }
        fresh[j] = best;
    }
    bool fixed = false;
    return adopt_types(tp, n_tasks, T, fresh, types, &fixed);
}

// One task-major sweep of the classification EM (skill_em_cem): the E-step of each task into
// full (log-scores, max shift, exp, normalise; its log-normaliser added to the thread's
// log-likelihood), then that row masked to the task's type (renormalised over the classes when
// `normalise`) counted into the thread's table in em_run's answer-major layout. Tasks go in blocks
// of kBlock (static schedule): the block's shifted log-scores are exponentiated in one vectorised
// call (exp_nonpositive, relative error within 3e-16 of std::exp). The masked row is divided once
// per task, not once per answer; TK_ and K_ fixed at compile time for the common sizes (0: run
// time). The additions run in the same order at every size, so every size gives the same numbers.
struct CemSweep {
    const index_t* ip;
    const code_t* code;
    code_t n_tasks;
    int K;
    const std::int64_t* types;
    const double* lc;
    const double* lp;
    double* full;
    bool do_e, normalise, count;
    // reassign: after its E-step each task proposes its most likely type (tp, fresh, as reassign_types)
    // and is counted under that proposal, so the next round needs no counting pass of its own
    double* tp = nullptr;
    std::int64_t* fresh = nullptr;
};
template <int TK_, int K_>
void cem_sweep(const CemSweep& s, std::vector<std::vector<double>>& bufs, std::vector<double>& mass_part,
               std::vector<double>& part_ll, int nt) {
    const int K = K_ > 0 ? K_ : s.K;
    const int TK = TK_ > 0 ? TK_ : static_cast<int>(mass_part.size() / static_cast<std::size_t>(nt));
    const index_t n_blocks = (static_cast<index_t>(s.n_tasks) + kBlock - 1) / kBlock;
    ExceptionCatcher catcher;
    KDCORE_OMP(parallel num_threads(nt)) {
        const int tid = thread_num();
        double* buf = bufs[static_cast<std::size_t>(tid)].data();
        double* mp = mass_part.data() + static_cast<std::size_t>(tid) * TK;
        std::vector<double> qv, mblk;
        catcher.run([&] {
            qv.resize(static_cast<std::size_t>(K));
            mblk.resize(static_cast<std::size_t>(kBlock));
        });
        double qa[K_ > 0 ? K_ : 1], sca[TK_ > 0 ? TK_ : 1];
        double* q = K_ > 0 ? qa : qv.data();
        double lls = 0.0;
        KDCORE_OMP(for schedule(static))
        for (index_t b = 0; b < n_blocks; ++b) {
            if (catcher.failed()) continue;
            const code_t j0 = static_cast<code_t>(b * kBlock);
            const code_t j1 = static_cast<code_t>(std::min<index_t>(s.n_tasks, (b + 1) * kBlock));
            if (s.do_e) {
                // the block's log-scores straight into full, shifted by each task's max, then one
                // vectorised exp over the block (exp_nonpositive), then each task normalised
                for (code_t j = j0; j < j1; ++j) {
                    double* f = s.full + static_cast<std::size_t>(j) * TK;
                    // a local accumulator at the fixed sizes (registers; `full` may alias the tables
                    // as far as the compiler knows, so summing into it would store every add)
                    double* acc = TK_ > 0 ? sca : f;
                    for (int i = 0; i < TK; ++i) acc[i] = s.lp[i];
                    for (index_t e = s.ip[j]; e < s.ip[j + 1]; ++e) {
                        const double* a = s.lc + static_cast<std::size_t>(s.code[e]) * TK;
                        for (int i = 0; i < TK; ++i) acc[i] += a[i];
                    }
                    double m = acc[0];
                    for (int i = 1; i < TK; ++i) m = std::max(m, acc[i]);
                    for (int i = 0; i < TK; ++i) f[i] = acc[i] - m;
                    mblk[static_cast<std::size_t>(j - j0)] = m;
                }
                exp_nonpositive(s.full + static_cast<std::size_t>(j0) * TK, static_cast<std::size_t>(j1 - j0) * TK);
                for (code_t j = j0; j < j1; ++j) {
                    double* f = s.full + static_cast<std::size_t>(j) * TK;
                    double z = 0.0;
                    for (int i = 0; i < TK; ++i) z += f[i];
                    for (int i = 0; i < TK; ++i) f[i] /= z;
                    lls += mblk[static_cast<std::size_t>(j - j0)] + std::log(z);
                }
            }
            if (!s.count) continue;
            for (code_t j = j0; j < j1; ++j) {
                const double* f = s.full + static_cast<std::size_t>(j) * TK;
                std::size_t t0 = static_cast<std::size_t>(s.types[j]) * K;
                if (s.fresh) {
                    const int T = TK / K;
                    double* tpj = s.tp + static_cast<std::size_t>(j) * T;
                    int best = 0;
                    for (int t = 0; t < T; ++t) {
                        double z = 0.0;
                        for (int k = 0; k < K; ++k) z += f[t * K + k];
                        tpj[t] = z;
                        if (z > tpj[best]) best = t;
                    }
                    s.fresh[j] = best;
                    t0 = static_cast<std::size_t>(best) * K;
                }
                double zt = 1.0;
                if (s.normalise) {
                    zt = 0.0;
                    for (int k = 0; k < K; ++k) zt += f[t0 + k];
                    zt = std::max(zt, 1e-300);
                }
                for (int k = 0; k < K; ++k) {
                    q[k] = f[t0 + k] / zt;
                    mp[t0 + k] += q[k];
                }
                for (index_t e = s.ip[j]; e < s.ip[j + 1]; ++e) {
                    double* a = buf + static_cast<std::size_t>(s.code[e]) * TK + t0;
                    for (int k = 0; k < K; ++k) a[k] += q[k];
                }
            }
        }
        part_ll[static_cast<std::size_t>(tid)] = lls;
    }
    catcher.rethrow();
}

}  // namespace

namespace {
// Whether the fused task-major routes fit (em_run's automatic rule): per-thread count tables
// (W K x T K doubles) small against the scratch limit and against the answers.
bool skill_fused_fits(code_t W, int K, int TK, int nt, index_t N) {
    const double table = static_cast<double>(W) * K * TK;
    return 8.0 * table * nt <= kMaxScratchBytes && 4.0 * W * K * nt <= static_cast<double>(N);
}
std::vector<code_t> answer_codes(const AnswerViews& views, index_t N, int K) {
    std::vector<code_t> code(static_cast<std::size_t>(N));
    for (index_t e = 0; e < N; ++e) code[static_cast<std::size_t>(e)] = views.task_worker[e] * K + views.task_label[e];
    return code;
}
// skill_em_polish's fused route on the answer codes c = w K + l in task order (shared by starts)
// (interruptible: whether this thread asks for pending signals each round; parallel.hpp wants it
// asked from the master thread only)
SkillEmResult polish_coded(const index_t* ip, const code_t* code, code_t n_tasks, code_t W, int T, int K, double* post,
                           double shrink, double smoothing, double tol, int n_max, double* log_conf, double* log_prior,
                           int nt, bool interruptible = true) {
    const int TK = T * K;
    const std::size_t table = static_cast<std::size_t>(W) * K * TK;
    std::vector<double> cnt(table), lc(table), lp(TK), mass(TK);
    std::vector<std::vector<double>> extra(static_cast<std::size_t>(nt - 1));
    std::vector<double*> bufs{cnt.data()};
    for (auto& b : extra) {
        b.resize(table);
        bufs.push_back(b.data());
    }
    std::vector<double> mass_part(static_cast<std::size_t>(nt) * TK);
    const index_t n_blocks = (static_cast<index_t>(n_tasks) + kBlock - 1) / kBlock;
    std::vector<double> block_ll(static_cast<std::size_t>(n_blocks), 0.0);
    auto reduce = [&]() {
        if (nt > 1) {
            KDCORE_OMP(parallel for schedule(static) num_threads(nt))
            for (std::size_t x = 0; x < table; ++x)
                for (int t = 1; t < nt; ++t) cnt[x] += bufs[static_cast<std::size_t>(t)][x];
        }
        for (int i = 0; i < TK; ++i) {
            double m = 0.0;
            for (int t = 0; t < nt; ++t) m += mass_part[static_cast<std::size_t>(t) * TK + i];
            mass[i] = m;
        }
    };
    fused(ip, code, n_tasks, TK, lc.data(), lp.data(), post, false, true, bufs, table,
          mass_part, block_ll, nt);
    reduce();
    SkillEmResult res;
    double ll_old = -std::numeric_limits<double>::infinity();
    for (int m = 0; m < n_max; ++m) {
        if (interruptible) check_interrupt();
        shrunk_params(cnt, mass, W, T, K, shrink, smoothing, false, lc.data(), lp.data(), true);
        fused(ip, code, n_tasks, TK, lc.data(), lp.data(), post, true, true, bufs, table,
              mass_part, block_ll, nt);
        double ll = 0.0;
        for (double x : block_ll) ll += x;
        res.loglik = ll;
        res.rounds = m + 1;
        if (std::fabs(ll - ll_old) <= tol * std::max(1.0, std::fabs(ll))) break;
        ll_old = ll;
        reduce();
    }
    for (int t = 0; t < T; ++t)
        for (code_t w = 0; w < W; ++w)
            for (int k = 0; k < K; ++k)
                for (int l = 0; l < K; ++l)
                    log_conf[((static_cast<std::size_t>(t) * W + w) * K + k) * K + l] =
                        lc[(static_cast<std::size_t>(w) * K + l) * TK + static_cast<std::size_t>(t) * K + k];
    std::copy(lp.begin(), lp.end(), log_prior);
    return res;
}

// skill_em_cem's single-sweep route on the answer codes (as polish_coded)
SkillEmResult cem_coded(const index_t* ip, const code_t* code, code_t n_tasks, code_t W, int T, int K,
                        std::int64_t* types, const double* label_post, double shrink, double smoothing, int n_outer,
                        double* full, double* log_conf, double* log_prior, int nt, bool interruptible = true) {
    const std::size_t TK = static_cast<std::size_t>(T) * K;
    const std::size_t table = static_cast<std::size_t>(W) * K * TK;
    // one task-major sweep per round: the E-step of each task, its posterior masked to the task's
    // type, and that masked row counted for the next round (em_run's answer-major layout)
    std::vector<double> cnt(table), lc(table), lp(TK), mass(TK), mass_part(static_cast<std::size_t>(nt) * TK);
    std::vector<std::vector<double>> bufs(static_cast<std::size_t>(nt));
    std::vector<double> part_ll(static_cast<std::size_t>(nt));
    std::vector<double> tpf(static_cast<std::size_t>(n_tasks) * T);
    std::vector<std::int64_t> fr(static_cast<std::size_t>(n_tasks));
    auto pass = [&](bool do_e, bool normalise, bool count, bool reassign = false) {
        // every thread's table zeroed here (a smaller team than nt leaves some untouched)
        if (count)
            for (auto& b : bufs) b.assign(table, 0.0);
        std::fill(mass_part.begin(), mass_part.end(), 0.0);
        std::fill(part_ll.begin(), part_ll.end(), 0.0);
        CemSweep sw{ip, code, n_tasks, K, types, lc.data(), lp.data(), full, do_e, normalise, count};
        if (reassign) {
            sw.tp = tpf.data();
            sw.fresh = fr.data();
        }
        // compile-time sizes for the common cases (T = 2 types, K = 2..4 classes)
        if (T == 2 && K == 2)
            cem_sweep<4, 2>(sw, bufs, mass_part, part_ll, nt);
        else if (T == 2 && K == 3)
            cem_sweep<6, 3>(sw, bufs, mass_part, part_ll, nt);
        else if (T == 2 && K == 4)
            cem_sweep<8, 4>(sw, bufs, mass_part, part_ll, nt);
        else
            cem_sweep<0, 0>(sw, bufs, mass_part, part_ll, nt);
        if (count) {
            KDCORE_OMP(parallel for schedule(static) num_threads(nt))
            for (std::size_t x = 0; x < table; ++x) {
                double v = 0.0;
                for (int t = 0; t < nt; ++t) v += bufs[static_cast<std::size_t>(t)][x];
                cnt[x] = v;
            }
            for (std::size_t i = 0; i < TK; ++i) {
                double v = 0.0;
                for (int t = 0; t < nt; ++t) v += mass_part[static_cast<std::size_t>(t) * TK + i];
                mass[i] = v;
            }
        }
        double ll = 0.0;
        for (double x : part_ll) ll += x;
        return ll;
    };
    for (std::size_t x = 0; x < static_cast<std::size_t>(n_tasks) * TK; ++x) full[x] = 0.0;
    for (code_t j = 0; j < n_tasks; ++j)
        for (int k = 0; k < K; ++k)
            full[j * TK + types[j] * K + k] = label_post[static_cast<std::size_t>(j) * K + k];
    pass(false, false, true);
    SkillEmResult res;
    for (int outer = 0; outer < n_outer; ++outer) {
        for (int inner = 0; inner < 3; ++inner) {
            if (interruptible) check_interrupt();
            shrunk_params(cnt, mass, W, T, K, shrink, smoothing, true, lc.data(), lp.data(), true);
            // the third re-fit's sweep also reassigns each task and counts it under its new type
            res.loglik = pass(true, true, true, inner == 2);
            ++res.rounds;
        }
        bool fixed = false;
        const code_t changed = adopt_types(tpf.data(), n_tasks, T, fr.data(), types, &fixed);
        if (changed <= n_tasks / 1000) break;
        if (fixed) pass(false, true, true);  // a vanishing type kept a task: count again under the final types
    }
    for (int t = 0; t < T; ++t)
        for (code_t w = 0; w < W; ++w)
            for (int k = 0; k < K; ++k)
                for (int l = 0; l < K; ++l)
                    log_conf[((static_cast<std::size_t>(t) * W + w) * K + k) * K + l] =
                        lc[(static_cast<std::size_t>(w) * K + l) * TK + static_cast<std::size_t>(t) * K + k];
    std::copy(lp.begin(), lp.end(), log_prior);
    return res;
}
}  // namespace

SkillEmResult skill_em_polish(const AnswerViews& views, code_t n_tasks, code_t n_workers, int n_types, int n_classes,
                              double* post, double shrink, double smoothing, double tol, int n_max, double* log_conf,
                              double* log_prior, int n_threads) {
    check_dims(n_tasks, n_workers, n_types, n_classes);
    const int T = n_types, K = n_classes, TK = T * K;
    const code_t W = n_workers;
    const index_t N = views.task_indptr[n_tasks];
    const int nt = threads_for(n_threads, N);
    // em_run's fused task-major pass (E-step and the next round's counts in one sweep) where its
    // per-thread count tables are small against the answers (em_run's automatic rule)
    if (skill_fused_fits(W, K, TK, nt, N)) {
        const std::vector<code_t> code = answer_codes(views, N, K);
        return polish_coded(views.task_indptr, code.data(), n_tasks, W, T, K, post, shrink, smoothing, tol, n_max,
                            log_conf, log_prior, nt);
    }
    std::vector<double> cnt(static_cast<std::size_t>(T) * n_workers * K * K), mass(static_cast<std::size_t>(T) * K);
    SkillEmResult res;
    double ll_old = -std::numeric_limits<double>::infinity();
    for (int m = 0; m < n_max; ++m) {
        em_counts(views, n_tasks, n_workers, T, K, post, cnt.data(), mass.data(), n_threads);
        shrunk_params(cnt, mass, n_workers, T, K, shrink, smoothing, false, log_conf, log_prior);
        const double ll = em_e_step(views.task_indptr, views.task_worker, views.task_label, n_tasks, n_workers, T, K,
                                    log_conf, log_prior, post, n_threads);
        res.loglik = ll;
        res.rounds = m + 1;
        if (std::fabs(ll - ll_old) <= tol * std::max(1.0, std::fabs(ll))) break;
        ll_old = ll;
    }
    return res;
}

SkillEmResult skill_em_cem(const AnswerViews& views, code_t n_tasks, code_t n_workers, int n_types, int n_classes,
                           std::int64_t* types, const double* label_post, double shrink, double smoothing, int n_outer,
                           double* full, double* log_conf, double* log_prior, int n_threads) {
    check_dims(n_tasks, n_workers, n_types, n_classes);
    const int T = n_types, K = n_classes;
    const std::size_t TK = static_cast<std::size_t>(T) * K;
    const code_t W = n_workers;
    const index_t N = views.task_indptr[n_tasks];
    const int nt = threads_for(n_threads, N);
    if (skill_fused_fits(W, K, static_cast<int>(TK), nt, N)) {
        const std::vector<code_t> code = answer_codes(views, N, K);
        return cem_coded(views.task_indptr, code.data(), n_tasks, W, T, K, types, label_post, shrink, smoothing,
                         n_outer, full, log_conf, log_prior, nt);
    }
    std::vector<double> cnt(static_cast<std::size_t>(T) * n_workers * K * K), mass(TK);
    std::vector<double> post(static_cast<std::size_t>(n_tasks) * TK, 0.0), tp(static_cast<std::size_t>(n_tasks) * T);
    std::vector<std::int64_t> fresh(static_cast<std::size_t>(n_tasks));
    for (code_t j = 0; j < n_tasks; ++j)
        for (int k = 0; k < K; ++k) post[j * TK + types[j] * K + k] = label_post[static_cast<std::size_t>(j) * K + k];
    SkillEmResult res;
    for (int outer = 0; outer < n_outer; ++outer) {
        for (int inner = 0; inner < 3; ++inner) {
            em_counts(views, n_tasks, n_workers, T, K, post.data(), cnt.data(), mass.data(), n_threads);
            shrunk_params(cnt, mass, n_workers, T, K, shrink, smoothing, true, log_conf, log_prior);
            res.loglik = em_e_step(views.task_indptr, views.task_worker, views.task_label, n_tasks, n_workers, T, K,
                                   log_conf, log_prior, full, n_threads);
            ++res.rounds;
            mask_to_types(full, types, n_tasks, T, K, post.data());
        }
        const code_t changed = reassign_types(full, n_tasks, T, K, tp.data(), fresh.data(), types);
        mask_to_types(full, types, n_tasks, T, K, post.data());
        if (changed <= n_tasks / 1000) break;
    }
    return res;
}

SkillEmStartsResult skill_em_starts(const AnswerViews& views, code_t n_tasks, code_t n_workers, int n_types,
                                    int n_classes, const std::int64_t* inits, int n_starts, const double* label_post,
                                    double shrink, double smoothing, int n_outer, double tol, int n_max, double* full,
                                    double* log_conf, double* log_prior, int n_threads) {
    check_dims(n_tasks, n_workers, n_types, n_classes);
    if (n_starts < 1) fail("skill_em_starts: at least one start is needed");
    const int T = n_types, K = n_classes, TK = T * K;
    const code_t W = n_workers;
    const index_t N = views.task_indptr[n_tasks];
    const int team = std::min(threads_for(n_threads, N), n_starts);
    const std::size_t nf = static_cast<std::size_t>(n_tasks) * TK, nc = static_cast<std::size_t>(T) * W * K * K;
    // each start runs on one thread, so the one-thread rule decides the route, and the answer
    // codes of the fused route are built once for all starts
    const bool coded = skill_fused_fits(W, K, TK, 1, N);
    const std::vector<code_t> code = coded ? answer_codes(views, N, K) : std::vector<code_t>();
    SkillEmStartsResult res;
    res.loglik.assign(static_cast<std::size_t>(n_starts), std::numeric_limits<double>::quiet_NaN());
    res.cem_rounds.assign(static_cast<std::size_t>(n_starts), 0);
    res.polish_rounds.assign(static_cast<std::size_t>(n_starts), 0);
    auto run_start = [&](int s, std::vector<double>& f, std::vector<double>& lc, std::vector<double>& lp,
                         std::vector<std::int64_t>& ty, bool master) {
        f.resize(nf);
        lc.resize(nc);
        lp.resize(static_cast<std::size_t>(TK));
        ty.assign(inits + static_cast<std::size_t>(s) * n_tasks, inits + static_cast<std::size_t>(s + 1) * n_tasks);
        const SkillEmResult a =
            coded ? cem_coded(views.task_indptr, code.data(), n_tasks, W, T, K, ty.data(), label_post, shrink,
                              smoothing, n_outer, f.data(), lc.data(), lp.data(), 1, master)
                  : skill_em_cem(views, n_tasks, W, T, K, ty.data(), label_post, shrink, smoothing, n_outer, f.data(),
                                 lc.data(), lp.data(), 1);
        const SkillEmResult b =
            coded ? polish_coded(views.task_indptr, code.data(), n_tasks, W, T, K, f.data(), shrink, smoothing, tol,
                                 n_max, lc.data(), lp.data(), 1, master)
                  : skill_em_polish(views, n_tasks, W, T, K, f.data(), shrink, smoothing, tol, n_max, lc.data(),
                                    lp.data(), 1);
        res.loglik[static_cast<std::size_t>(s)] = b.loglik;
        res.cem_rounds[static_cast<std::size_t>(s)] = a.rounds;
        res.polish_rounds[static_cast<std::size_t>(s)] = b.rounds;
    };
    auto keep = [&](const std::vector<double>& f, const std::vector<double>& lc, const std::vector<double>& lp) {
        std::copy(f.begin(), f.end(), full);
        std::copy(lc.begin(), lc.end(), log_conf);
        std::copy(lp.begin(), lp.end(), log_prior);
    };
    std::vector<std::vector<double>> wf(static_cast<std::size_t>(team)), wlc(wf.size()), wlp(wf.size());
    std::vector<std::vector<std::int64_t>> wty(wf.size());
    int kept = -1;
    std::mutex kept_mutex;
    ExceptionCatcher catcher;
    KDCORE_OMP(parallel for schedule(dynamic, 1) num_threads(team))
    for (int s = 0; s < n_starts; ++s) {
        if (catcher.failed()) continue;
        catcher.run([&] {
            const std::size_t tid = static_cast<std::size_t>(thread_num());
            // pending signals are asked for by the master thread only (each round of its starts): the
            // interpreter's hook takes the GIL, which the other threads must not queue for every round
            if (tid == 0) check_interrupt();
            run_start(s, wf[tid], wlc[tid], wlp[tid], wty[tid], tid == 0);
            const double ll = res.loglik[static_cast<std::size_t>(s)];
            std::lock_guard<std::mutex> lock(kept_mutex);
            const double kll = kept < 0 ? 0.0 : res.loglik[static_cast<std::size_t>(kept)];
            if (kept < 0 || ll > kll || (ll == kll && s < kept)) {  // the higher likelihood; a tie: the earlier start
                keep(wf[tid], wlc[tid], wlp[tid]);
                kept = s;
            }
        });
    }
    catcher.rethrow();
    // the winner in start order (the first start, replaced by each later one with a strictly higher
    // log-likelihood): the one kept above unless a NaN likelihood made the orders differ; then it runs again
    int best = 0;
    for (int s = 1; s < n_starts; ++s)
        if (res.loglik[static_cast<std::size_t>(s)] > res.loglik[static_cast<std::size_t>(best)]) best = s;
    if (best != kept) {
        run_start(best, wf[0], wlc[0], wlp[0], wty[0], true);
        keep(wf[0], wlc[0], wlp[0]);
    }
    res.best = best;
    return res;
}

int lloyd_kmeans(const double* X, std::int64_t n, int p, int k, int n_iter, double* centres, std::int64_t* labels,
                 bool interruptible) {
    if (n < 1 || p < 1 || k < 1) fail("lloyd_kmeans: n, p and k must be >= 1");
    const std::size_t P = static_cast<std::size_t>(p);
    std::vector<double> sq(static_cast<std::size_t>(n)), cc(static_cast<std::size_t>(k)), sums(static_cast<std::size_t>(k) * P);
    std::vector<std::int64_t> cnt(static_cast<std::size_t>(k));
    for (std::int64_t i = 0; i < n; ++i) {
        double v = 0.0;
        for (std::size_t q = 0; q < P; ++q) v += X[i * P + q] * X[i * P + q];
        sq[static_cast<std::size_t>(i)] = v;
    }
    int it = 0;
    for (; it < n_iter; ++it) {
        if (interruptible && (it & 15) == 0) check_interrupt();
        for (int c = 0; c < k; ++c) {
            double v = 0.0;
            for (std::size_t q = 0; q < P; ++q) v += centres[c * P + q] * centres[c * P + q];
            cc[static_cast<std::size_t>(c)] = v;
        }
        bool same = it > 0;
        for (std::int64_t i = 0; i < n; ++i) {
            const double* x = X + i * P;
            std::int64_t best = 0;
            double bd = std::numeric_limits<double>::quiet_NaN();
            for (int c = 0; c < k; ++c) {
                double dot = 0.0;
                for (std::size_t q = 0; q < P; ++q) dot += x[q] * centres[c * P + q];
                const double d = sq[static_cast<std::size_t>(i)] - 2.0 * dot + cc[static_cast<std::size_t>(c)];
                const bool closer = c == 0 || d < bd;  // strict: a tie keeps the earlier centre
                bd = closer ? d : bd;                  // selects, not branches: the winner is a coin flip on
                best = closer ? c : best;              // unstructured embeddings
            }
            same = same && labels[i] == best;
            labels[i] = best;
        }
        if (same) break;
        std::fill(sums.begin(), sums.end(), 0.0);
        std::fill(cnt.begin(), cnt.end(), 0);
        for (std::int64_t i = 0; i < n; ++i) {  // per-cluster sums in point order
            const std::size_t c = static_cast<std::size_t>(labels[i]);
            ++cnt[c];
            for (std::size_t q = 0; q < P; ++q) sums[c * P + q] += X[i * P + q];
        }
        for (int c = 0; c < k; ++c)
            if (cnt[static_cast<std::size_t>(c)] > 0)
                for (std::size_t q = 0; q < P; ++q)
                    centres[c * P + q] = sums[c * P + q] / static_cast<double>(cnt[static_cast<std::size_t>(c)]);
    }
    return it;
}

void lloyd_kmeans_runs(const double* X, std::int64_t n, int p, int k, int n_iter, int n_runs, double* centres,
                       std::int64_t* labels, int* iterations, int n_threads) {
    if (n_runs < 1) fail("lloyd_kmeans_runs: at least one run is needed");
    const int team = std::min(threads_for(n_threads, static_cast<index_t>(n)), n_runs);
    const std::size_t kp = static_cast<std::size_t>(k) * static_cast<std::size_t>(p);
    ExceptionCatcher catcher;
    KDCORE_OMP(parallel for schedule(dynamic, 1) num_threads(team))
    for (int m = 0; m < n_runs; ++m) {
        if (catcher.failed()) continue;
        catcher.run([&] {
            iterations[m] = lloyd_kmeans(X, n, p, k, n_iter, centres + static_cast<std::size_t>(m) * kp,
                                         labels + static_cast<std::size_t>(m) * static_cast<std::size_t>(n),
                                         thread_num() == 0);
        });
    }
    catcher.rethrow();
}

}  // namespace kdcore
