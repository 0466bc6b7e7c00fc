// Thread-count policy, ISA detection and report, interruption hook (see parallel.hpp).
#include "kdcore/parallel.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

namespace kdcore {
namespace {
std::atomic<int> g_num_threads{0};
std::atomic<InterruptHook> g_hook{nullptr};

int env_threads() {
    const char* s = std::getenv("KDCORE_NUM_THREADS");
    if (!s || !*s) return 0;
    char* end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (end == s || v <= 0 || v > 4096) return 0;
    return static_cast<int>(v);
}

}  // namespace

bool have_openmp() noexcept {
#ifdef KDCORE_HAVE_OPENMP
    return true;
#else
    return false;
#endif
}

int available_cores() noexcept {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    unsigned n = std::thread::hardware_concurrency();
    return n > 0 ? static_cast<int>(n) : 1;
}

// More threads than this is never a real request (and 100000 made libgomp crash
// creating the team): refuse it rather than start it.
constexpr int kMaxThreads = 4096;

void set_num_threads(int n) {
    if (n < 0) fail("n_threads must be >= 0 (0 = default), got " + std::to_string(n));
    if (n > kMaxThreads)
        fail("n_threads = " + std::to_string(n) + " is more than kdcore runs (" + std::to_string(kMaxThreads) + ")");
    g_num_threads.store(n);
}

int get_num_threads() noexcept {
#ifndef KDCORE_HAVE_OPENMP
    return 1;  // a build without OpenMP runs every kernel on the calling thread
#endif
    int cores = available_cores();
    int n = env_threads();
    if (n == 0) n = g_num_threads.load();
    if (n == 0) n = cores;
    return n;
}

int resolve_threads(int n_threads) {
    if (n_threads < 0) fail("n_threads must be >= 0 (0 = default), got " + std::to_string(n_threads));
    if (n_threads > kMaxThreads)
        fail("n_threads = " + std::to_string(n_threads) + " is more than kdcore runs (" + std::to_string(kMaxThreads) +
             ")");
    int n = n_threads > 0 ? n_threads : get_num_threads();
#ifndef KDCORE_HAVE_OPENMP
    n = 1;
#endif
    return n < 1 ? 1 : n;
}

Isa detect_isa() noexcept {
#if KDCORE_ISA_DISPATCH
    const char* cap = std::getenv("KDCORE_ISA");
    __builtin_cpu_init();
    const bool v4 = !cap || !*cap || std::strcmp(cap, "v4") == 0;  // any other value: baseline
    const bool v3 = v4 || std::strcmp(cap, "v3") == 0;
    if (v4 && __builtin_cpu_supports("x86-64-v4")) return Isa::v4;
    if (v3 && __builtin_cpu_supports("x86-64-v3")) return Isa::v3;
#endif
    return Isa::baseline;
}

const char* isa_name(Isa level) noexcept {
    switch (level) {
        case Isa::v4: return "x86-64-v4";
        case Isa::v3: return "x86-64-v3";
        default: return "baseline";
    }
}

// The families and their variants: the two-layer engine's row blocks have v4, v3 and
// baseline tilings (twolayer.cpp); the Dawid-Skene exp (crowd.cpp), the hollow Gram
// products (hollow_gram.cpp) and the two-layer step have v3 and baseline variants;
// every other kernel is compiled for the baseline only.
std::string simd_level() {
    const Isa level = isa();
    const Isa v3 = level >= Isa::v3 ? Isa::v3 : Isa::baseline;
    return std::string("twolayer ") + isa_name(level) + "; crowd-em " + isa_name(v3) + "; hollow-gram " +
           isa_name(v3) + "; other kernels baseline";
}

void set_interrupt_hook(InterruptHook hook) noexcept { g_hook.store(hook); }

void check_interrupt() {
    InterruptHook h = g_hook.load();
    if (h && h()) throw Interrupted();
}

}  // namespace kdcore
