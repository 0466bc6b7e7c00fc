// Index construction for crowd responses (see responses.hpp).
#include "kdcore/responses.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace kdcore {
namespace {
constexpr std::int64_t kMaxCodes = std::numeric_limits<code_t>::max();

inline std::uint64_t mix(std::uint64_t x) {  // splitmix64 finaliser
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

void too_many(std::int64_t k) {
    throw std::length_error("more than 2^31 - 1 distinct ids (" + std::to_string(k) +
                            "): kdcore codes tasks and workers with 32-bit integers");
}
}  // namespace

void factorize_int64(const std::int64_t* ids, index_t n, code_t* codes, std::vector<std::int64_t>& uniques) {
    uniques.clear();
    if (n == 0) return;
    std::int64_t lo = ids[0], hi = ids[0];
    for (index_t e = 1; e < n; ++e) {
        lo = std::min(lo, ids[e]);
        hi = std::max(hi, ids[e]);
    }
    // Unsigned span avoids overflow for ids spread over the whole int64 range.
    const std::uint64_t span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
    if (span < static_cast<std::uint64_t>(4 * n + 1024)) {
        // Direct-address table: mark, then prefix-rank, then look up.
        std::vector<code_t> table(static_cast<std::size_t>(span) + 1, -1);
        for (index_t e = 0; e < n; ++e) table[static_cast<std::size_t>(ids[e] - lo)] = 0;
        std::int64_t k = 0;
        for (std::size_t v = 0; v < table.size(); ++v) {
            if (table[v] == 0) {
                if (k >= kMaxCodes) too_many(k + 1);
                table[v] = static_cast<code_t>(k++);
                uniques.push_back(lo + static_cast<std::int64_t>(v));
            }
        }
        for (index_t e = 0; e < n; ++e) codes[e] = table[static_cast<std::size_t>(ids[e] - lo)];
        return;
    }
    // Open addressing (linear probing) on a power-of-two table, then sort the
    // distinct ids and remap slot -> rank.
    std::size_t cap = 16;
    while (cap < static_cast<std::size_t>(2 * n)) cap <<= 1;
    const std::size_t mask = cap - 1;
    std::vector<std::int64_t> keys(cap);
    std::vector<std::int32_t> slot_of_unique;  // unique index -> slot
    std::vector<std::int32_t> uid(cap, -1);     // slot -> unique index (first-seen order)
    std::vector<std::int32_t> first_codes(static_cast<std::size_t>(n));
    for (index_t e = 0; e < n; ++e) {
        const std::int64_t key = ids[e];
        std::size_t s = mix(static_cast<std::uint64_t>(key)) & mask;
        while (uid[s] >= 0 && keys[s] != key) s = (s + 1) & mask;
        if (uid[s] < 0) {
            if (static_cast<std::int64_t>(uniques.size()) >= kMaxCodes) too_many(uniques.size() + 1);
            uid[s] = static_cast<std::int32_t>(uniques.size());
            keys[s] = key;
            uniques.push_back(key);
        }
        first_codes[static_cast<std::size_t>(e)] = uid[s];
    }
    const std::size_t k = uniques.size();
    std::vector<std::int32_t> perm(k);
    for (std::size_t i = 0; i < k; ++i) perm[i] = static_cast<std::int32_t>(i);
    std::sort(perm.begin(), perm.end(), [&](std::int32_t a, std::int32_t b) { return uniques[a] < uniques[b]; });
    std::vector<std::int32_t> rank(k);
    std::vector<std::int64_t> sorted(k);
    for (std::size_t r = 0; r < k; ++r) {
        rank[static_cast<std::size_t>(perm[r])] = static_cast<std::int32_t>(r);
        sorted[r] = uniques[static_cast<std::size_t>(perm[r])];
    }
    uniques.swap(sorted);
    for (index_t e = 0; e < n; ++e) codes[e] = rank[static_cast<std::size_t>(first_codes[static_cast<std::size_t>(e)])];
}

index_t find_duplicates(const code_t* task, const code_t* worker, index_t n, code_t n_tasks, code_t n_workers,
                        int mode, std::uint8_t* keep, index_t* first_dup) {
    *first_dup = -1;
    if (n == 0) return 0;
    // Answers grouped by task (stable, so within a task they keep input order);
    // a per-worker stamp of the last task seen finds repeats in O(N).
    std::vector<index_t> indptr(static_cast<std::size_t>(n_tasks) + 1, 0);
    for (index_t e = 0; e < n; ++e) ++indptr[static_cast<std::size_t>(task[e]) + 1];
    for (code_t t = 0; t < n_tasks; ++t) indptr[t + 1] += indptr[t];
    std::vector<index_t> order(static_cast<std::size_t>(n));
    {
        std::vector<index_t> next(indptr.begin(), indptr.end() - 1);
        for (index_t e = 0; e < n; ++e) order[static_cast<std::size_t>(next[task[e]]++)] = e;
    }
    std::vector<code_t> stamp(static_cast<std::size_t>(n_workers), -1);
    std::vector<index_t> where(static_cast<std::size_t>(n_workers), -1);  // answer kept for (t, w)
    index_t n_dup = 0;
    for (index_t e = 0; e < n; ++e) keep[e] = 1;
    for (code_t t = 0; t < n_tasks; ++t) {
        for (index_t p = indptr[t]; p < indptr[t + 1]; ++p) {
            const index_t e = order[static_cast<std::size_t>(p)];
            const code_t w = worker[e];
            if (stamp[w] == t) {
                ++n_dup;
                if (*first_dup < 0 || e < *first_dup) *first_dup = e;
                if (mode == 1) {
                    keep[e] = 0;
                } else if (mode == 2) {
                    keep[where[w]] = 0;
                    where[w] = e;
                }
            } else {
                stamp[w] = t;
                where[w] = e;
            }
        }
    }
    return n_dup;
}

void build_csr(const code_t* group, const code_t* payload_a, const code_t* payload_b, index_t n, code_t n_groups,
               index_t* indptr, code_t* out_a, code_t* out_b) {
    std::fill(indptr, indptr + static_cast<std::size_t>(n_groups) + 1, index_t{0});
    for (index_t e = 0; e < n; ++e) ++indptr[group[e] + 1];
    for (code_t g = 0; g < n_groups; ++g) indptr[g + 1] += indptr[g];
    std::vector<index_t> next(indptr, indptr + n_groups);
    for (index_t e = 0; e < n; ++e) {
        const index_t p = next[group[e]]++;
        out_a[p] = payload_a[e];
        out_b[p] = payload_b[e];
    }
}

}  // namespace kdcore
