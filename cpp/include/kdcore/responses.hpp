// kdcore/responses.hpp: the index behind kdcore.crowd.Responses.
//
// A crowd dataset is N answers (task_e, worker_e, label_e). The aggregators
// stream answers either task by task (E-steps) or worker by worker (M-steps),
// so we keep two compressed views, both built by a stable counting sort in O(N):
//   task-major:   indptr_t[n_tasks + 1], and for e in [indptr_t[j], indptr_t[j+1])
//                 the worker and label of the answers to task j;
//   worker-major: indptr_w[n_workers + 1], and the task and label of each answer.
// Ids of any integer type are turned into dense, sorted 0-based codes here
// (a direct-address table when the id range is small, an open-addressing hash
// otherwise); other id types are factorised in Python and arrive as codes.
//
// Validated input (the policy of every kernel of the core): a kernel trusts the
// arrays it is given. Each compressed view has indptr[0] = 0, a non-decreasing
// indptr and payloads of length indptr[n_groups]; every code a kernel uses as an
// index is in [0, its range). The Python binding (cpp/bindings/module.cpp) checks all
// of it, shapes included, in one place before it releases the GIL, so no call of
// kdcore._core, however wrong, reads or writes out of bounds. The kernels check only
// their scalar arguments (sizes, thread counts, tolerances).
#pragma once

#include <cstdint>
#include <vector>

#include "kdcore/parallel.hpp"

namespace kdcore {

// Dense codes for integer ids: codes[e] is the rank of ids[e] among the sorted
// distinct ids, `uniques` receives those distinct ids in increasing order.
// Throws std::length_error when more than 2^31 - 1 distinct ids occur.
void factorize_int64(const std::int64_t* ids, index_t n, code_t* codes, std::vector<std::int64_t>& uniques);

// Duplicate (task, worker) pairs. keep[e] = 1 for the answers kept under `mode`
// (0 = keep every answer and only count, 1 = keep_first, 2 = keep_last).
// Returns the number of duplicated answers (those not kept by keep_first) and
// writes the index of the first answer that repeats an earlier pair (or -1).
index_t find_duplicates(const code_t* task, const code_t* worker, index_t n, code_t n_tasks, code_t n_workers,
                        int mode, std::uint8_t* keep, index_t* first_dup);

// Stable counting sort by `group` (values in [0, n_groups)): fills indptr
// (n_groups + 1) and the payloads reordered group by group.
void build_csr(const code_t* group, const code_t* payload_a, const code_t* payload_b, index_t n, code_t n_groups,
               index_t* indptr, code_t* out_a, code_t* out_b);

}  // namespace kdcore
