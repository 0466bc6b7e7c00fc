// Reductions shared by the aggregator kernels (triangular, kos, glad, mace); private
// to the core's sources.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace kdcore {

// Sums that cross threads are kept per thread and added in thread order afterwards,
// never with an OpenMP reduction (which adds the partials in arrival order): the same
// thread count gives bit-identical results.
inline double sum_in_order(const std::vector<double>& part) {
    double s = 0.0;
    for (double v : part) s += v;
    return s;
}

// In-place log-sum-exp normalisation of one row: returns log sum exp(row) and turns
// row into softmax(row) (max shift, so no overflow or 0/0).
inline double normalise_log_row(double* row, int K) {
    double m = row[0];
    for (int k = 1; k < K; ++k) m = std::max(m, row[k]);
    double s = 0.0;
    for (int k = 0; k < K; ++k) {
        row[k] = std::exp(row[k] - m);
        s += row[k];
    }
    for (int k = 0; k < K; ++k) row[k] /= s;
    return m + std::log(s);
}

}  // namespace kdcore
