// kdcore/parallel.hpp: the OpenMP shim, the thread-count policy, first-exception
// capture inside parallel regions, cooperative interruption, and ISA dispatch.
//
// Thread policy (one place for every kernel):
//   n_threads > 0            -> exactly that many threads
//   n_threads == 0 (default) -> KDCORE_NUM_THREADS if set (> 0), else the value
//                               given to set_num_threads(), else the number of
//                               cores available to this process (sched affinity).
//   n_threads < 0            -> std::invalid_argument.
// The default is the cores available, so kdcore never oversubscribes
// the machine on its own; callers that also run BLAS around a kernel limit BLAS
// with threadpoolctl on the Python side.
//
// Exceptions: nothing may escape an OpenMP region. Wrap each iteration's body
// in `ExceptionCatcher::run`; after the region call `rethrow()`.
//
// Interruption: long loops call `check_interrupt()` from the master thread every
// so often. The Python binding installs a hook that asks the interpreter for
// pending signals (Ctrl-C); the core only sees a function pointer, so it stays
// free of Python. A pending signal throws `kdcore::Interrupted`.
//
// ISA dispatch (one mechanism for every kernel): the core is compiled for the
// x86-64 baseline; a hot function is compiled again for higher levels with a
// function target attribute (KDCORE_TARGET_V3 = arch=x86-64-v3, AVX2 + FMA;
// KDCORE_TARGET_V4 = arch=x86-64-v4, AVX-512) around an always-inline body, and a
// plain function calls the variant isa() picks. isa() is the CPU's level, detected
// once, capped by the environment variable KDCORE_ISA=v3|baseline (to compare the
// variants), so the wheel never executes an instruction the CPU lacks. A kernel
// family may use a different register tiling per level (the two-layer engine does).
// simd_level() says, per kernel family, which variant runs.
#pragma once

#include <cstdint>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>

#ifdef KDCORE_HAVE_OPENMP
#include <omp.h>
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(KDCORE_NO_ISA_DISPATCH)
#define KDCORE_ISA_DISPATCH 1
#define KDCORE_TARGET_V3 __attribute__((target("arch=x86-64-v3")))
#define KDCORE_TARGET_V4 __attribute__((target("arch=x86-64-v4")))
#else
#define KDCORE_ISA_DISPATCH 0
#define KDCORE_TARGET_V3
#define KDCORE_TARGET_V4
#endif
// Body marker for the always-inline implementation of a dispatched function.
#define KDCORE_ALWAYS_INLINE inline __attribute__((always_inline))
// KDCORE_DISPATCH_V3(ret, name, (params), (args)): name_v3 (x86-64-v3) and name_base
// (baseline), both the always-inline body name_impl(args), and name(params), which
// calls the variant isa() picks.
#define KDCORE_DISPATCH_V3(ret, name, params, args)                                      \
    KDCORE_TARGET_V3 ret name##_v3 params { return name##_impl args; }                  \
    ret name##_base params { return name##_impl args; }                                 \
    inline ret name params {                                                            \
        return ::kdcore::isa() >= ::kdcore::Isa::v3 ? name##_v3 args : name##_base args; \
    }

namespace kdcore {

using index_t = std::int64_t;   // response / row counts
using code_t = std::int32_t;    // dense task, worker and class codes

// ---- threads ----------------------------------------------------------------
bool have_openmp() noexcept;
int available_cores() noexcept;           // cores this process may run on
void set_num_threads(int n);              // 0 resets to the default
int get_num_threads() noexcept;           // what n_threads = 0 resolves to
int resolve_threads(int n_threads);       // the policy above
// Below this many units of work (answers, rows) a kernel runs on one thread:
// forking a team costs more than the work, and badly so on an oversubscribed machine.
constexpr index_t kMinParallelWork = 50000;
inline int threads_for(int n_threads, index_t work) {
    const int nt = resolve_threads(n_threads);
    return work < kMinParallelWork ? 1 : nt;
}

// ---- ISA dispatch (see the top of this file) ----------------------------------
enum class Isa { baseline = 0, v3 = 1, v4 = 2 };  // x86-64 baseline, x86-64-v3, x86-64-v4
Isa detect_isa() noexcept;                // the CPU's level, capped by KDCORE_ISA
inline Isa isa() noexcept {               // detect_isa(), once per process
    static const Isa level = detect_isa();
    return level;
}
const char* isa_name(Isa level) noexcept;  // "x86-64-v4", "x86-64-v3", "baseline"
// Per kernel family, the variant that runs here, e.g. "twolayer x86-64-v4; crowd-em
// x86-64-v3; hollow-gram x86-64-v3; other kernels baseline".
std::string simd_level();

// This thread's index in the current OpenMP team and the team's size
// (0 and 1 outside a parallel region, and always without OpenMP).
inline int thread_num() noexcept {
#ifdef KDCORE_HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
inline int team_size() noexcept {
#ifdef KDCORE_HAVE_OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

// ---- exceptions inside parallel regions -------------------------------------
class ExceptionCatcher {
public:
    template <class F>
    void run(F&& f) noexcept {
        if (failed_) return;  // racy read is fine: only skips work after a failure
        try {
            f();
        } catch (...) {
            std::lock_guard<std::mutex> lock(mu_);
            if (!ptr_) ptr_ = std::current_exception();
            failed_ = true;
        }
    }
    bool failed() const noexcept { return failed_; }
    void rethrow() {
        if (ptr_) std::rethrow_exception(ptr_);
    }

private:
    std::exception_ptr ptr_;
    std::mutex mu_;
    volatile bool failed_ = false;
};

// ---- interruption -------------------------------------------------------------
struct Interrupted : std::runtime_error {
    Interrupted() : std::runtime_error("interrupted") {}
};
using InterruptHook = bool (*)();          // returns true when the caller should stop
void set_interrupt_hook(InterruptHook hook) noexcept;
// Throws Interrupted if the hook reports a pending signal. Call from the thread
// that entered the kernel (outside or on the master thread of a parallel region).
void check_interrupt();

// ---- errors ---------------------------------------------------------------------
[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument(msg); }

}  // namespace kdcore

// Parallel-for shim: KDCORE_OMP(...) expands to `#pragma omp ...` with OpenMP and
// to nothing without it.
#ifdef KDCORE_HAVE_OPENMP
#define KDCORE_PRAGMA(x) _Pragma(#x)
#define KDCORE_OMP(args) KDCORE_PRAGMA(omp args)
#else
#define KDCORE_OMP(args)
#endif
