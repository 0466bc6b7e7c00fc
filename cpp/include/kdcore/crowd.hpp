// kdcore/crowd.hpp: the Dawid-Skene EM core (typed, so one kernel serves plain
// Dawid-Skene with T = 1 and the two-type mixture of the task-types model with
// T = 2) and the (weighted) vote kernel.
//
// Model (Dawid & Skene, Appl. Statist. 1979; typed extension as in Kong, Mandal,
// Katselis & Srikant 2023, docs/maths.md B.1 and B.5): task j has a hidden type t in
// [0, T) and a true class k in [0, K), drawn jointly with prior pi[t, k]; worker
// w answering task j says l with probability C[t, w, k, l].
//
// Memory layouts (all row-major, float64):
//   log_conf  (T, W, K, K)  log C[t, w, k, l]   [type, worker, true class, answered class]
//   log_prior (T, K)        log pi[t, k]        (a joint distribution over (t, k))
//   post      (n_tasks, T, K)  P(t_j = t, y_j = k | answers)
//
// Answers are read through the compressed views of kdcore.crowd.Responses
// (responses.hpp): the E-step streams task-major (OpenMP over tasks), the M-step
// worker-major (OpenMP over workers, each thread owns its workers' output rows, so
// no atomics and no races) or, when faster, task-major into per-thread buffers
// (MStepStrategy below). No dense tasks x workers matrix is ever formed.
//
// Input: every code of the views is in range (worker < n_workers, task < n_tasks,
// label < n_classes) and every indptr is consistent; the kernels trust validated
// input (see "Validated input" in responses.hpp) and check only their scalar
// arguments.
#pragma once

#include <vector>

#include "kdcore/parallel.hpp"

namespace kdcore {

// The two compressed views of the answers (kdcore.crowd.Responses). The M-steps
// need the worker-major one; the task-major one (may be null) lets them switch
// to task-major streaming when that is faster (MStepStrategy).
struct AnswerViews {
    const index_t* worker_indptr;
    const code_t* worker_task;
    const code_t* worker_label;
    const index_t* task_indptr = nullptr;
    const code_t* task_worker = nullptr;
    const code_t* task_label = nullptr;
};

// How the M-step gathers its counts. worker_major: OpenMP over workers, each
// thread reads the posteriors of its workers' tasks (scattered reads of post);
// task_major: OpenMP over tasks, post read in order, each thread scatters into
// its own W x K x T*K buffer, buffers summed per worker afterwards. automatic:
// task_major when the buffers fit in kMaxScratchBytes and are small next to the
// answers (4 W K n_threads <= N, so zeroing and summing them is cheap), else
// worker_major. Measured (1 thread, binary, 10 answers per task): 1M answers
// 2.3 ms task-major vs 2.8 ms worker-major; 10M answers 31 ms vs 90 ms, where the
// scattered reads of a 16 MB post miss the cache.
enum class MStepStrategy { automatic = 0, worker_major = 1, task_major = 2 };
constexpr double kMaxScratchBytes = 64.0 * (1 << 20);

// E-step.  For every task j
//   s[j, t, k] = log pi[t, k] + sum_{answers (w, l) of j} log C[t, w, k, l]
//   post[j, t, k] = exp(s[j, t, k] - m_j) / sum_{t', k'} exp(s[j, t', k'] - m_j),  m_j = max_{t,k} s[j, t, k]
// (log-sum-exp with the max shift: no overflow, and the largest term is exactly 1,
// so the normaliser is >= 1 and never 0). Returns the log-likelihood
//   sum_j ( m_j + log sum_{t,k} exp(s[j, t, k] - m_j) ).
// log_conf / log_prior may hold -inf (probability 0) but not NaN or +inf; a task whose
// every (t, k) is -inf gets the uniform posterior and contributes -inf.
double em_e_step(const index_t* task_indptr, const code_t* task_worker, const code_t* task_label, code_t n_tasks,
                 code_t n_workers, int n_types, int n_classes, const double* log_conf, const double* log_prior,
                 double* post, int n_threads);

// Expected counts (the sufficient statistics of the M-step):
//   counts[t, w, k, l] = sum_{answers (j, l) of w} post[j, t, k]      (see MStepStrategy)
//   mass[t, k]         = sum_j post[j, t, k]
void em_counts(const AnswerViews& views, code_t n_tasks, code_t n_workers, int n_types, int n_classes,
               const double* post, double* counts, double* mass, int n_threads,
               MStepStrategy strategy = MStepStrategy::automatic);

// Dawid-Skene M-step (MAP with a symmetric Dirichlet(1 + smoothing) prior on each row):
//   C[t, w, k, l] = (counts[t, w, k, l] + s) / sum_l' (counts[t, w, k, l'] + s)
//   pi[t, k]      = (mass[t, k] + s) / sum_{t', k'} (mass[t', k'] + s)
// A row with no mass at all (a worker without answers, or s = 0 and no expected
// answer from class k) gets the uniform row 1/K: finite, and it leaves the
// posterior of every task untouched.
void em_m_step(const AnswerViews& views, code_t n_tasks, code_t n_workers, int n_types, int n_classes,
               const double* post, double smoothing, double* conf, double* prior, int n_threads,
               MStepStrategy strategy = MStepStrategy::automatic);

// One-coin M-step: one skill per (type, worker),
//   skill[t, w] = (sum_k counts[t, w, k, k] + s) / (sum_{k, l} counts[t, w, k, l] + 2 s)
// (a Beta(1 + s, 1 + s) MAP); a worker with no mass gets skill 1/2 when s = 0. The
// prior is the same as em_m_step's. The matching confusion is
//   C[t, w, k, k] = skill, C[t, w, k, l != k] = (1 - skill) / (K - 1).
void onecoin_m_step(const AnswerViews& views, code_t n_tasks, code_t n_workers, int n_types, int n_classes,
                    const double* post, double smoothing, double* skill, double* prior, int n_threads,
                    MStepStrategy strategy = MStepStrategy::automatic);

// Weighted vote: scores[j, k] = sum_{answers (w, l) of j, l = k} weight[w]
// (weight = nullptr means 1 for every worker: plain majority vote). Also the
// winner best[j] (the first class, in label order, within 1e-12 max(1, |max|) of
// the top score; exact for unit weights) and n_tied[j], the number of classes
// within that distance. Task-major, OpenMP over tasks.
void vote_scores(const index_t* task_indptr, const code_t* task_worker, const code_t* task_label, code_t n_tasks,
                 code_t n_workers, int n_classes, const double* weight, double* scores, code_t* best, code_t* n_tied,
                 int n_threads);

// The whole EM loop in one call (DawidSkene and OneCoinDawidSkene with the cpp
// backend). Starting from posteriors `post` (n_tasks, T, K), each round is an
// M-step (em_m_step or onecoin_m_step, parameters taken to the log through
// log(max(p, prob_floor))) followed by an E-step (em_e_step); history[n - 1] =
// -loglik / n_answers after round n. It stops after n_iter rounds or when
// |ll_n - ll_{n-1}| < tol |ll_{n-1}| (ll_0 = init_loglik; NaN = none), exactly the
// loop of kdcore.crowd.DawidSkene.fit. On return post holds the last E-step's
// posteriors and params / prior the last M-step's (conf (T, W, K, K), or skill
// (T, W) when one_coin).
// stop_rule = penalised (the EM loop of the two-type mixture, TypeAware; not
// with one_coin): history[n - 1] = ll_n + smoothing * (sum log C + sum log pi), the
// MAP objective EM never decreases, and it stops when |h_n - h_{n-1}| <=
// tol max(1, |h_n|) (from round 2).
//
// Speed: the answers are packed once into one code w * K + l per answer (4 bytes
// instead of 8), and when the per-thread count tables fit
// (MStepStrategy) the E-step and the next round's expected counts are one fused
// pass: each task's answers are read once, and its posterior is scattered into the
// thread's W x K x TK table while it is still in registers. Sums across threads
// are added in thread order (static schedule), so a thread count gives
// bit-identical results run to run; below kMinParallelWork answers it runs on one
// thread.
// Gold tasks (n_gold > 0): task gold_task[g] has the known class gold_class[g]; its
// posterior is set to that class at the start and after every E-step (the typed
// case keeps the task's type mass: post[j, t, :] = (sum_k post[j, t, k]) e_class),
// after the E-step's log-likelihood is taken, as DawidSkene.fit's round-by-round
// loop does. Gold runs the E-step and the worker-major counts as two passes (the
// fused pass has no place for the clamp).
enum class EmStopRule { relative_loglik = 0, penalised = 1 };
struct EmRunResult {
    int n_iter;
    bool converged;
    double loglik;
};
EmRunResult em_run(const AnswerViews& views, code_t n_tasks, code_t n_workers, int n_types, int n_classes,
                   double smoothing, bool one_coin, int n_iter, double tol, double init_loglik, double prob_floor,
                   double* post, double* params, double* prior, double* history, int n_threads,
                   MStepStrategy strategy = MStepStrategy::automatic,
                   EmStopRule stop_rule = EmStopRule::relative_loglik, const code_t* gold_task = nullptr,
                   const code_t* gold_class = nullptr, code_t n_gold = 0);

// Distributed EM (kdcore.crowd.distributed): the sufficient statistics of one
// partition of the answers, the map step of a round. The partition holds whole
// tasks: task j's answers are code[task_indptr[j] .. task_indptr[j + 1]), one code
// c = w * K + l per answer over the global worker and class dictionaries (checked:
// 0 <= c < W K). With log_conf (T, W, K, K) and log_prior (T, K) given (not null),
// the E-step of em_e_step on these tasks writes post (n_tasks, T, K) and the
// partition's log-likelihood is returned (per-block partials added in block order);
// with log_conf null, post is read as given (the first M-step's posteriors) and 0 is
// returned. Then, if counts is not null, the expected counts of the next M-step
//   counts[t, w, k, l] = sum_{answers (j, w, l) of the partition} post[j, t, k]
//   mass[t, k]         = sum_{tasks j of the partition} post[j, t, k]
// (em_counts's layout). Counts, mass and log-likelihood are sums over tasks, so the
// totals over any split of the tasks into partitions are em_run's, up to the order
// of the additions: the M-step runs once on the reduced totals. It is em_run's fused
// pass (blocks of 256 tasks, per-thread tables added in thread order afterwards), so
// a thread count gives bit-identical results run to run. vote_start (log_conf null, one
// type): post is first written with each task's vote shares (its answers of class k over
// its answers), the majority-vote start, then counted.
double em_partition_stats(const index_t* task_indptr, const code_t* code, code_t n_tasks, code_t n_workers,
                          int n_types, int n_classes, const double* log_conf, const double* log_prior, double* post,
                          double* counts, double* mass, int n_threads, bool vote_start = false);

// The refined task typing's two loops (kdcore.crowd.TaskTypeClustering, method "refined"), each
// round one counting pass (em_counts) and one E-step (em_e_step), no Python between rounds.
// Skills per (type, worker, class), shrunk toward the worker's per-class skill by b pseudo-answers:
//   tot[t,w,k] = sum_l counts[t,w,k,l],  s_all[w,k] = (sum_t counts[t,w,k,k] + 1) / (sum_t tot[t,w,k] + 2),
//   skill[t,w,k] = clip((counts[t,w,k,k] + b s_all[w,k]) / (tot[t,w,k] + b), 1e-6, 1 - 1e-6),
//   log C[t,w,k,k] = log skill, log C[t,w,k,l != k] = log((1 - skill) / (K - 1)),
//   prior = mass / sum(mass), then (prior + smoothing) / sum(prior + smoothing).
struct SkillEmResult {
    double loglik = 0.0;
    int rounds = 0;
};
// Soft EM from post (n_tasks, T, K), updated in place, until |ll - ll_prev| <= tol max(1, |ll|) or
// n_max rounds; log_conf (T, W, K, K) and log_prior (T, K) receive the last round's parameters.
SkillEmResult skill_em_polish(const AnswerViews& views, code_t n_tasks, code_t n_workers, int n_types, int n_classes,
                              double* post, double shrink, double smoothing, double tol, int n_max, double* log_conf,
                              double* log_prior, int n_threads);
// Classification EM from hard types (updated in place) and label posteriors (n_tasks, K): n_outer rounds
// of three re-fits with the types held (type prior rows normalised and set equal, the E-step's
// posterior masked to each task's type) and one reassignment to the most likely type (a type that
// would vanish keeps its most likely task); stops when at most n_tasks / 1000 tasks moved. full
// (n_tasks, T, K) receives the last E-step's posterior.
SkillEmResult skill_em_cem(const AnswerViews& views, code_t n_tasks, code_t n_workers, int n_types, int n_classes,
                           std::int64_t* types, const double* label_post, double shrink, double smoothing, int n_outer,
                           double* full, double* log_conf, double* log_prior, int n_threads);
// The refined typing's starts: for each start s (hard types inits[s, :], n_starts x n_tasks) the
// classification EM (skill_em_cem, n_outer) and then the soft EM (skill_em_polish, tol, n_max); the
// start with the highest final log-likelihood wins (a tie: the earlier start), and its posterior
// full (n_tasks, T, K), log_conf (T, W, K, K) and log_prior (T, K) are written out. The starts run
// side by side, one thread each (n_threads of them at once): a start's rounds are sweeps of about
// 4 ms over 10^6 answers, which two threads sharing each round (two barriers per round) ran only
// about 1.3x faster, while starts share nothing. A start gives the same numbers on any thread, so
// the result does not depend on n_threads. Memory: per running start one posterior and one type
// vector, and the answer codes once for all starts.
struct SkillEmStartsResult {
    int best = 0;
    std::vector<double> loglik;      // per start, the soft EM's last log-likelihood
    std::vector<int> cem_rounds;     // per start, classification EM rounds (re-fits)
    std::vector<int> polish_rounds;  // per start, soft EM rounds
};
SkillEmStartsResult skill_em_starts(const AnswerViews& views, code_t n_tasks, code_t n_workers, int n_types,
                                    int n_classes, const std::int64_t* inits, int n_starts, const double* label_post,
                                    double shrink, double smoothing, int n_outer, double tol, int n_max, double* full,
                                    double* log_conf, double* log_prior, int n_threads);

// Lloyd's k-means iterations from the given centres (k, p), updated in place, on the rows of X
// (n, p): each point to the nearest centre by d = |x|^2 - 2 x.c + |c|^2 (the first centre on a
// tie), then each non-empty cluster's centre to the mean of its points (sums in point order);
// stops when no label changes or after n_iter assignments. labels (n) receive the last
// assignment; returns the assignments run minus the one that found nothing changed. Serial: a
// pass is about a millisecond at 10^5 points, and the readouts of the task typing run up to a few
// hundred of them (the numpy twin: kdcore/crowd/_kmeans.py).
// interruptible: whether it asks for pending signals (every 16 assignments; the master thread only).
int lloyd_kmeans(const double* X, std::int64_t n, int p, int k, int n_iter, double* centres, std::int64_t* labels,
                 bool interruptible = true);
// n_runs independent lloyd_kmeans runs from the centres (n_runs, k, p), side by side on up to
// n_threads threads (one run per thread at a time; each run is serial, so the result does not
// depend on the thread count): labels (n_runs, n), iterations (n_runs). k-means with several
// seedings runs its Lloyd iterations this way once the seedings are drawn.
void lloyd_kmeans_runs(const double* X, std::int64_t n, int p, int k, int n_iter, int n_runs, double* centres,
                       std::int64_t* labels, int* iterations, int n_threads);

}  // namespace kdcore
