// kdcore/mmsr.hpp: the kernels of M-MSR (Ma & Olshevsky, "Adversarial crowdsourcing
// through robust rank-one matrix completion", NeurIPS 2020) as crowd-kit 1.4.2
// computes it, on sparse data.
//
// crowd-kit forms a dense workers x tasks observation matrix and dense workers x
// workers statistics; here only the worker pairs that share a task are stored
// (one symmetric compressed row per worker), so memory is O(answers + pairs).
#pragma once

#include <cstdint>
#include <vector>

#include "kdcore/parallel.hpp"

namespace kdcore {
namespace mmsr {

// For each worker i, the workers j != i that answered a task in common, sorted by j,
// with the number of common tasks and of common tasks where both gave the same label.
// Input: the task-major and worker-major views of answers with at most one answer per
// (task, worker). Cost O(sum_t n_t^2) time, O(W) scratch.
struct Pairs {
    std::vector<index_t> indptr;  // W + 1
    std::vector<code_t> idx;
    std::vector<std::int32_t> common;
    std::vector<std::int32_t> agree;
};
Pairs worker_pairs(const index_t* t_indptr, const code_t* t_worker, const code_t* t_label, const index_t* w_indptr,
                   const code_t* w_task, const code_t* w_label, code_t n_workers);

// crowd-kit's alternating robust rank-one fit of X (|covariation| on the stored pairs):
// each round, for every column j, v[j] = mean of the trimmed values X[i, j] / u[i] over
// the stored i (the F largest and F smallest removed relative to v[j], crowd-kit's
// _remove_largest_and_smallest_F_value, Python slicing included); then the same for u
// with the new v; stop when ||u v^T - u_prev v_prev^T||_F < tol. u and v are updated in
// place; the loss of each round is appended to history. Returns the rounds run.
int iterate(const index_t* indptr, const code_t* idx, const double* x, code_t n, double* u, double* v, int F,
            std::int64_t n_tasks, int n_iter, double tol, std::vector<double>& history, int n_threads = 0);

// Expected answer counts per worker: out[w, l, k] = sum over w's answers (t, l) of
// post[t, k] (post is n_tasks x K row-major, out W x K x K, overwritten): the M-step
// statistics of Dawid-Skene before any normalisation or clipping, one pass over the
// worker-major view, threads over workers. (Used by kdcore.crowdkit's DawidSkene, which
// needs the raw counts to clip them as crowd-kit does.)
void class_counts(const index_t* w_indptr, const code_t* w_task, const code_t* w_label, code_t n_workers, int K,
                  const double* post, double* out, int n_threads);

}  // namespace mmsr
}  // namespace kdcore
