// kdcore._core: the only binding file. It converts arrays (C-contiguous, exact
// dtype, no silent casts), validates every array in one place (the validation
// section below), releases the GIL around each kernel, and converts results back.
// Each area of the core has one bind_* function below; nothing else lives here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kdcore/crowd.hpp"
#include "kdcore/dirichlet.hpp"
#include "kdcore/glad.hpp"
#include "kdcore/hollow_gram.hpp"
#include "kdcore/kos.hpp"
#include "kdcore/lanczos.hpp"
#include "kdcore/mace.hpp"
#include "kdcore/mmsr.hpp"
#include "kdcore/parallel.hpp"
#include "kdcore/responses.hpp"
#include "kdcore/triangular.hpp"
#include "kdcore/twolayer.hpp"

namespace py = pybind11;
using kdcore::code_t;
using kdcore::index_t;

template <class T>
using carray = py::array_t<T, py::array::c_style>;  // no forcecast: wrong dtype is a TypeError

namespace {

// ============================================================================ validation
// The one code-range policy of the core (kdcore/responses.hpp, "Validated input"):
// every binding checks, before it releases the GIL and calls a kernel,
//   check_shape  the extents of every array (kAny: any extent),
//   csr_view     each compressed view of the answers (indptr and its two payloads),
//   check_codes  every code a kernel uses as an index, against its range,
// so that no call of _core, however wrong, reads or writes out of bounds; the kernels
// check no code again. The dtype and the layout are pybind11's (carray: a wrong dtype
// is a TypeError, never a silent cast). The Python estimators validate first, with
// messages about the user's data; these checks guard direct calls of _core.
constexpr py::ssize_t kAny = std::numeric_limits<py::ssize_t>::min();  // never a requested extent

std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i)
        s += std::to_string(a.shape(i)) + (a.ndim() == 1 || i + 1 < a.ndim() ? "," : "");
    return s + ")";
}

void check_shape(const py::array& a, std::initializer_list<py::ssize_t> shape, const std::string& name) {
    bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
    py::ssize_t i = 0;
    for (const py::ssize_t want : shape) {
        if (ok && want != kAny && a.shape(i) != want) ok = false;
        ++i;
    }
    if (ok) return;
    std::string want;
    if (shape.size() == 1) {
        want = *shape.begin() == kAny ? "a 1-d array" : "a 1-d array of length " + std::to_string(*shape.begin());
    } else {
        want = "shape (";
        i = 0;
        for (const py::ssize_t w : shape)
            want += (i++ ? ", " : "") + (w == kAny ? std::string("any") : std::to_string(w));
        want += ")";
    }
    throw std::invalid_argument(name + ": expected " + want + ", got shape " + shape_str(a));
}

// Every code in [0, limit). A branch-free min / max first (vectorised: valid input
// costs one read of the array), the position of the first bad code only on failure.
void check_codes(const code_t* c, index_t n, index_t limit, const char* name) {
    code_t lo = 0, hi = 0;
    if (n > 0) lo = hi = c[0];
    for (index_t e = 1; e < n; ++e) {
        lo = std::min(lo, c[e]);
        hi = std::max(hi, c[e]);
    }
    if (n == 0 || (lo >= 0 && hi < limit)) return;
    for (index_t e = 0; e < n; ++e)
        if (c[e] < 0 || c[e] >= limit)
            throw std::invalid_argument(std::string(name) + " code " + std::to_string(c[e]) + " at index " +
                                        std::to_string(e) + " is out of range [0, " + std::to_string(limit) + ")");
}

// One compressed view of Responses: indptr (n_groups + 1; n_groups = its length - 1
// when not given) from 0, non-decreasing, and two payloads of length indptr[n_groups].
// The payloads' codes are checked by the caller (check_codes), which knows their ranges.
struct CsrView {
    const index_t* indptr;
    const code_t* idx;
    const code_t* lab;
    code_t n;     // groups
    index_t nnz;  // answers
};
CsrView csr_view(const carray<index_t>& indptr, const carray<code_t>& idx, const carray<code_t>& lab,
                 std::optional<py::ssize_t> n_groups, const char* what) {
    const std::string w(what);
    if (n_groups && *n_groups < 0) throw std::invalid_argument(w + ": the number of groups must be >= 0");
    check_shape(indptr, {n_groups ? *n_groups + 1 : kAny}, w + " indptr");
    const py::ssize_t ng = indptr.shape(0) - 1;
    if (ng < 0) throw std::invalid_argument(w + ": indptr is empty");
    if (ng > std::numeric_limits<code_t>::max()) throw std::invalid_argument(w + ": too many groups");
    const index_t* ip = indptr.data();
    if (ip[0] != 0) throw std::invalid_argument(w + ": indptr[0] must be 0");
    for (py::ssize_t g = 0; g < ng; ++g)
        if (ip[g + 1] < ip[g]) throw std::invalid_argument(w + ": indptr must be non-decreasing");
    check_shape(idx, {ip[ng]}, w + " payload");
    check_shape(lab, {ip[ng]}, w + " labels");
    return {ip, idx.data(), lab.data(), static_cast<code_t>(ng), ip[ng]};
}

bool python_interrupt_pending() {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
        PyErr_Clear();  // re-raised as KeyboardInterrupt by the translator below
        return true;
    }
    return false;
}

// ============================================================================ threads
void bind_parallel(py::module_& m) {
    m.def("have_openmp", &kdcore::have_openmp);
    m.def("available_cores", &kdcore::available_cores);
    m.def("set_num_threads", &kdcore::set_num_threads, py::arg("n"));
    m.def("get_num_threads", &kdcore::get_num_threads);
    m.def("resolve_threads", &kdcore::resolve_threads, py::arg("n_threads"));
    m.def("simd_level", &kdcore::simd_level);
}

// ============================================================================ responses
void bind_responses(py::module_& m) {
    m.def(
        "factorize_int64",
        [](const carray<std::int64_t>& ids) {
            check_shape(ids, {kAny}, "ids");
            const std::int64_t* p = ids.data();
            const index_t n = ids.shape(0);
            carray<code_t> codes(n);
            code_t* c = codes.mutable_data();
            std::vector<std::int64_t> uniq;
            {
                py::gil_scoped_release nogil;
                kdcore::factorize_int64(p, n, c, uniq);
            }
            carray<std::int64_t> u(static_cast<py::ssize_t>(uniq.size()));
            std::copy(uniq.begin(), uniq.end(), u.mutable_data());
            return py::make_tuple(codes, u);
        },
        py::arg("ids"), "Dense sorted codes for int64 ids: (codes int32, uniques int64).");

    m.def(
        "find_duplicates",
        [](const carray<code_t>& task, const carray<code_t>& worker, code_t n_tasks, code_t n_workers, int mode) {
            check_shape(task, {kAny}, "task");
            const index_t n = task.shape(0);
            check_shape(worker, {n}, "worker");
            if (mode < 0 || mode > 2) throw std::invalid_argument("mode must be 0, 1 or 2");
            const code_t* t = task.data();
            check_codes(t, n, n_tasks, "task");
            check_codes(worker.data(), n, n_workers, "worker");
            carray<std::uint8_t> keep(n);
            std::uint8_t* k = keep.mutable_data();
            const code_t* w = worker.data();
            index_t first = -1, n_dup = 0;
            {
                py::gil_scoped_release nogil;
                n_dup = kdcore::find_duplicates(t, w, n, n_tasks, n_workers, mode, k, &first);
            }
            return py::make_tuple(keep, n_dup, first);
        },
        py::arg("task"), py::arg("worker"), py::arg("n_tasks"), py::arg("n_workers"), py::arg("mode"));

    m.def(
        "build_csr",
        [](const carray<code_t>& group, const carray<code_t>& a, const carray<code_t>& b, code_t n_groups) {
            check_shape(group, {kAny}, "group");
            const index_t n = group.shape(0);
            check_shape(a, {n}, "payload_a");
            check_shape(b, {n}, "payload_b");
            if (n_groups < 0) throw std::invalid_argument("n_groups must be >= 0");
            const code_t* g = group.data();
            check_codes(g, n, n_groups, "group");
            carray<index_t> indptr(static_cast<py::ssize_t>(n_groups) + 1);
            carray<code_t> oa(n), ob(n);
            index_t* ip = indptr.mutable_data();
            code_t* pa = oa.mutable_data();
            code_t* pb = ob.mutable_data();
            const code_t* ia = a.data();
            const code_t* ib = b.data();
            {
                py::gil_scoped_release nogil;
                kdcore::build_csr(g, ia, ib, n, n_groups, ip, pa, pb);
            }
            return py::make_tuple(indptr, oa, ob);
        },
        py::arg("group"), py::arg("payload_a"), py::arg("payload_b"), py::arg("n_groups"));
}

// ============================================================================ crowd (aggregators)
void bind_crowd(py::module_& m) {
    m.def(
        "em_e_step",
        [](const carray<index_t>& task_indptr, const carray<code_t>& task_worker, const carray<code_t>& task_label,
           code_t n_tasks, code_t n_workers, const carray<double>& log_conf, const carray<double>& log_prior,
           int n_threads) {
            const CsrView v = csr_view(task_indptr, task_worker, task_label, n_tasks, "task view");
            check_shape(log_conf, {kAny, n_workers, kAny, kAny}, "log_conf");
            const py::ssize_t T = log_conf.shape(0), K = log_conf.shape(2);
            check_shape(log_conf, {T, n_workers, K, K}, "log_conf");
            check_shape(log_prior, {T, K}, "log_prior");
            check_codes(v.idx, v.nnz, n_workers, "worker");
            check_codes(v.lab, v.nnz, K, "label");
            carray<double> post({static_cast<py::ssize_t>(n_tasks), T, K});
            double* p = post.mutable_data();
            double ll;
            {
                py::gil_scoped_release nogil;
                ll = kdcore::em_e_step(v.indptr, v.idx, v.lab, n_tasks, n_workers, static_cast<int>(T),
                                       static_cast<int>(K), log_conf.data(), log_prior.data(), p, n_threads);
            }
            return py::make_tuple(post, ll);
        },
        py::arg("task_indptr"), py::arg("task_worker"), py::arg("task_label"), py::arg("n_tasks"),
        py::arg("n_workers"), py::arg("log_conf"), py::arg("log_prior"), py::arg("n_threads") = 0,
        "Typed Dawid-Skene E-step: (post (n_tasks, T, K), loglik).");

    m.def(
        "em_m_step",
        [](const carray<index_t>& worker_indptr, const carray<code_t>& worker_task, const carray<code_t>& worker_label,
           code_t n_tasks, code_t n_workers, const carray<double>& post, double smoothing, bool one_coin,
           int n_threads, std::optional<carray<index_t>> task_indptr, std::optional<carray<code_t>> task_worker,
           std::optional<carray<code_t>> task_label, int strategy) {
            const CsrView wv = csr_view(worker_indptr, worker_task, worker_label, n_workers, "worker view");
            check_shape(post, {n_tasks, kAny, kAny}, "post");
            const py::ssize_t T = post.shape(1), K = post.shape(2);
            check_codes(wv.idx, wv.nnz, n_tasks, "task");
            check_codes(wv.lab, wv.nnz, K, "label");
            kdcore::AnswerViews v{wv.indptr, wv.idx, wv.lab};
            if (task_indptr || task_worker || task_label) {
                if (!(task_indptr && task_worker && task_label))
                    throw std::invalid_argument("give all three arrays of the task view, or none");
                const CsrView tv = csr_view(*task_indptr, *task_worker, *task_label, n_tasks, "task view");
                if (tv.nnz != wv.nnz)
                    throw std::invalid_argument("the task and worker views hold different numbers of answers");
                check_codes(tv.idx, tv.nnz, n_workers, "worker");
                check_codes(tv.lab, tv.nnz, K, "label");
                v.task_indptr = tv.indptr;
                v.task_worker = tv.idx;
                v.task_label = tv.lab;
            }
            if (strategy < 0 || strategy > 2) throw std::invalid_argument("strategy must be 0, 1 or 2");
            const auto strat = static_cast<kdcore::MStepStrategy>(strategy);
            carray<double> prior({T, K});
            py::array out;
            if (one_coin) {
                carray<double> skill({T, static_cast<py::ssize_t>(n_workers)});
                double* s = skill.mutable_data();
                double* pr = prior.mutable_data();
                {
                    py::gil_scoped_release nogil;
                    kdcore::onecoin_m_step(v, n_tasks, n_workers, static_cast<int>(T), static_cast<int>(K),
                                           post.data(), smoothing, s, pr, n_threads, strat);
                }
                out = skill;
            } else {
                carray<double> conf({T, static_cast<py::ssize_t>(n_workers), K, K});
                double* c = conf.mutable_data();
                double* pr = prior.mutable_data();
                {
                    py::gil_scoped_release nogil;
                    kdcore::em_m_step(v, n_tasks, n_workers, static_cast<int>(T), static_cast<int>(K), post.data(),
                                      smoothing, c, pr, n_threads, strat);
                }
                out = conf;
            }
            return py::make_tuple(out, prior);
        },
        py::arg("worker_indptr"), py::arg("worker_task"), py::arg("worker_label"), py::arg("n_tasks"),
        py::arg("n_workers"), py::arg("post"), py::arg("smoothing"), py::arg("one_coin") = false,
        py::arg("n_threads") = 0, py::arg("task_indptr") = py::none(), py::arg("task_worker") = py::none(),
        py::arg("task_label") = py::none(), py::arg("strategy") = 0,
        "Typed Dawid-Skene M-step: (conf (T, W, K, K) or skill (T, W) if one_coin, prior (T, K)). The task view "
        "(optional) lets it stream task-major when faster; strategy 0 = automatic, 1 = worker-major, 2 = task-major.");

    m.def(
        "em_counts",
        [](const carray<index_t>& worker_indptr, const carray<code_t>& worker_task, const carray<code_t>& worker_label,
           const carray<index_t>& task_indptr, const carray<code_t>& task_worker, const carray<code_t>& task_label,
           code_t n_tasks, code_t n_workers, const carray<double>& post, int n_threads) {
            const CsrView wv = csr_view(worker_indptr, worker_task, worker_label, n_workers, "worker view");
            const CsrView tv = csr_view(task_indptr, task_worker, task_label, n_tasks, "task view");
            check_shape(post, {n_tasks, kAny, kAny}, "post");
            const py::ssize_t T = post.shape(1), K = post.shape(2);
            if (tv.nnz != wv.nnz)
                throw std::invalid_argument("the task and worker views hold different numbers of answers");
            check_codes(wv.idx, wv.nnz, n_tasks, "task");
            check_codes(wv.lab, wv.nnz, K, "label");
            check_codes(tv.idx, tv.nnz, n_workers, "worker");
            check_codes(tv.lab, tv.nnz, K, "label");
            kdcore::AnswerViews v{wv.indptr, wv.idx, wv.lab};
            v.task_indptr = tv.indptr;
            v.task_worker = tv.idx;
            v.task_label = tv.lab;
            carray<double> counts({T, static_cast<py::ssize_t>(n_workers), K, K});
            carray<double> mass({T, K});
            double* c = counts.mutable_data();
            double* ms = mass.mutable_data();
            {
                py::gil_scoped_release nogil;
                kdcore::em_counts(v, n_tasks, n_workers, static_cast<int>(T), static_cast<int>(K), post.data(), c, ms,
                                  n_threads, kdcore::MStepStrategy::automatic);
            }
            return py::make_tuple(counts, mass);
        },
        py::arg("worker_indptr"), py::arg("worker_task"), py::arg("worker_label"), py::arg("task_indptr"),
        py::arg("task_worker"), py::arg("task_label"), py::arg("n_tasks"), py::arg("n_workers"), py::arg("post").noconvert(),
        py::arg("n_threads") = 0,
        "Expected answer counts of the typed model: (counts c[t, w, k, l] = sum over w's answers l of post[j, t, k], "
        "mass (T, K) = sum_j post[j]).");

    m.def(
        "dirichlet_fixed_point",
        [](const carray<double>& counts, const carray<double>& weights, const carray<double>& A, int n_steps,
           double tol, double a_min, double a_max, int n_threads) {
            check_shape(counts, {kAny, kAny, kAny}, "counts");
            const py::ssize_t W = counts.shape(0), K = counts.shape(1);
            check_shape(counts, {W, K, K}, "counts");
            check_shape(A, {kAny, K, K}, "A");
            const py::ssize_t M = A.shape(0);
            check_shape(weights, {M, W}, "weights");
            if (K < 1 || M < 1) throw std::invalid_argument("counts and A need at least one class and one prior");
            if (n_steps < 1) throw std::invalid_argument("n_steps must be >= 1");
            if (!(a_min > 0) || !(a_max >= a_min)) throw std::invalid_argument("need 0 < a_min <= a_max");
            const double* c = counts.data();
            const double* u = weights.data();
            for (py::ssize_t i = 0; i < counts.size(); ++i)
                if (!(c[i] >= 0) || !std::isfinite(c[i])) throw std::invalid_argument("counts must be finite and >= 0");
            for (py::ssize_t i = 0; i < weights.size(); ++i)
                if (!(u[i] >= 0) || !std::isfinite(u[i])) throw std::invalid_argument("weights must be finite and >= 0");
            for (py::ssize_t i = 0; i < A.size(); ++i)
                if (!(A.data()[i] > 0) || !std::isfinite(A.data()[i])) throw std::invalid_argument("A must be finite and > 0");
            carray<double> out({M, K, K});
            std::copy(A.data(), A.data() + A.size(), out.mutable_data());
            double* a = out.mutable_data();
            int steps = 0;
            {
                py::gil_scoped_release nogil;
                steps = kdcore::dirichlet_fixed_point(c, static_cast<kdcore::code_t>(W), static_cast<int>(K),
                                                      static_cast<int>(M), u, a, n_steps, tol, a_min, a_max, n_threads);
            }
            return py::make_tuple(out, steps);
        },
        py::arg("counts").noconvert(), py::arg("weights").noconvert(), py::arg("A").noconvert(), py::arg("n_steps"),
        py::arg("tol"), py::arg("a_min"),
        py::arg("a_max"), py::arg("n_threads") = 0,
        "Minka's fixed point for Dirichlet pseudo-count rows A (M, K, K) from expected counts (W, K, K), worker w "
        "weighing weights[m, w] in prior m (kdcore/dirichlet.hpp): (A, steps run).");

    m.def(
        "digamma",
        [](const carray<double>& x) {
            carray<double> out(x.size());
            for (py::ssize_t i = 0; i < x.size(); ++i) {
                if (!(x.data()[i] > 0)) throw std::invalid_argument("digamma: x must be > 0");
                out.mutable_data()[i] = kdcore::digamma(x.data()[i]);
            }
            return out;
        },
        py::arg("x"), "psi(x) for x > 0 (1-d), the digamma of kdcore/dirichlet.hpp (a test hook).");

    auto answer_views = [](const carray<index_t>& worker_indptr, const carray<code_t>& worker_task,
                           const carray<code_t>& worker_label, const carray<index_t>& task_indptr,
                           const carray<code_t>& task_worker, const carray<code_t>& task_label, code_t n_tasks,
                           code_t n_workers, py::ssize_t K) {
        const CsrView wv = csr_view(worker_indptr, worker_task, worker_label, n_workers, "worker view");
        const CsrView tv = csr_view(task_indptr, task_worker, task_label, n_tasks, "task view");
        if (tv.nnz != wv.nnz) throw std::invalid_argument("the task and worker views hold different numbers of answers");
        check_codes(wv.idx, wv.nnz, n_tasks, "task");
        check_codes(wv.lab, wv.nnz, K, "label");
        check_codes(tv.idx, tv.nnz, n_workers, "worker");
        check_codes(tv.lab, tv.nnz, K, "label");
        kdcore::AnswerViews v{wv.indptr, wv.idx, wv.lab};
        v.task_indptr = tv.indptr;
        v.task_worker = tv.idx;
        v.task_label = tv.lab;
        return v;
    };
    m.def(
        "skill_em_polish",
        [answer_views](const carray<index_t>& worker_indptr, const carray<code_t>& worker_task,
                       const carray<code_t>& worker_label, const carray<index_t>& task_indptr,
                       const carray<code_t>& task_worker, const carray<code_t>& task_label, code_t n_tasks,
                       code_t n_workers, const carray<double>& post, double shrink, double smoothing, double tol,
                       int n_max, int n_threads) {
            check_shape(post, {n_tasks, kAny, kAny}, "post");
            const py::ssize_t T = post.shape(1), K = post.shape(2);
            const kdcore::AnswerViews v = answer_views(worker_indptr, worker_task, worker_label, task_indptr,
                                                       task_worker, task_label, n_tasks, n_workers, K);
            carray<double> out({static_cast<py::ssize_t>(n_tasks), T, K});
            std::copy(post.data(), post.data() + post.size(), out.mutable_data());
            carray<double> log_conf({T, static_cast<py::ssize_t>(n_workers), K, K});
            carray<double> log_prior({T, K});
            kdcore::SkillEmResult res;
            double* o = out.mutable_data();
            double* lc = log_conf.mutable_data();
            double* lp = log_prior.mutable_data();
            {
                py::gil_scoped_release nogil;
                res = kdcore::skill_em_polish(v, n_tasks, n_workers, static_cast<int>(T), static_cast<int>(K), o,
                                              shrink, smoothing, tol, n_max, lc, lp, n_threads);
            }
            return py::make_tuple(out, log_conf, log_prior, res.loglik, res.rounds);
        },
        py::arg("worker_indptr"), py::arg("worker_task"), py::arg("worker_label"), py::arg("task_indptr"),
        py::arg("task_worker"), py::arg("task_label"), py::arg("n_tasks"), py::arg("n_workers"), py::arg("post"),
        py::arg("shrink"), py::arg("smoothing"), py::arg("tol"), py::arg("n_max"), py::arg("n_threads") = 0,
        "The refined typing's soft shrunk-skill EM (kdcore/crowd.hpp skill_em_polish): (post, log_conf, log_prior, "
        "loglik, rounds).");
    m.def(
        "skill_em_cem",
        [answer_views](const carray<index_t>& worker_indptr, const carray<code_t>& worker_task,
                       const carray<code_t>& worker_label, const carray<index_t>& task_indptr,
                       const carray<code_t>& task_worker, const carray<code_t>& task_label, code_t n_tasks,
                       code_t n_workers, const carray<std::int64_t>& types, const carray<double>& label_post,
                       int n_types, double shrink, double smoothing, int n_outer, int n_threads) {
            check_shape(types, {n_tasks}, "types");
            check_shape(label_post, {n_tasks, kAny}, "label_post");
            const py::ssize_t K = label_post.shape(1), T = n_types;
            if (T < 1) throw std::invalid_argument("n_types must be >= 1");
            for (py::ssize_t j = 0; j < static_cast<py::ssize_t>(n_tasks); ++j)
                if (types.data()[j] < 0 || types.data()[j] >= T)
                    throw std::invalid_argument("types: expected codes in [0, n_types), got " +
                                                std::to_string(types.data()[j]) + " at index " + std::to_string(j));
            const kdcore::AnswerViews v = answer_views(worker_indptr, worker_task, worker_label, task_indptr,
                                                       task_worker, task_label, n_tasks, n_workers, K);
            carray<std::int64_t> ty(static_cast<py::ssize_t>(n_tasks));
            std::copy(types.data(), types.data() + n_tasks, ty.mutable_data());
            carray<double> full({static_cast<py::ssize_t>(n_tasks), T, K});
            carray<double> log_conf({T, static_cast<py::ssize_t>(n_workers), K, K});
            carray<double> log_prior({T, K});
            kdcore::SkillEmResult res;
            std::int64_t* tp = ty.mutable_data();
            double* f = full.mutable_data();
            double* lc = log_conf.mutable_data();
            double* lp = log_prior.mutable_data();
            const double* lab = label_post.data();
            {
                py::gil_scoped_release nogil;
                res = kdcore::skill_em_cem(v, n_tasks, n_workers, static_cast<int>(T), static_cast<int>(K), tp, lab,
                                           shrink, smoothing, n_outer, f, lc, lp, n_threads);
            }
            return py::make_tuple(ty, full, log_conf, log_prior, res.loglik, res.rounds);
        },
        py::arg("worker_indptr"), py::arg("worker_task"), py::arg("worker_label"), py::arg("task_indptr"),
        py::arg("task_worker"), py::arg("task_label"), py::arg("n_tasks"), py::arg("n_workers"), py::arg("types"),
        py::arg("label_post"), py::arg("n_types"), py::arg("shrink"), py::arg("smoothing"), py::arg("n_outer"),
        py::arg("n_threads") = 0,
        "The refined typing's classification EM (kdcore/crowd.hpp skill_em_cem): (types, full, log_conf, "
        "log_prior, loglik, rounds).");
    m.def(
        "lloyd_kmeans",
        [](const carray<double>& X, const carray<double>& centres, int n_iter) {
            check_shape(X, {kAny, kAny}, "X");
            const py::ssize_t n = X.shape(0), p = X.shape(1);
            check_shape(centres, {kAny, p}, "centres");
            const py::ssize_t k = centres.shape(0);
            if (n < 1 || k < 1) throw std::invalid_argument("lloyd_kmeans: expected at least one point and one centre");
            if (n_iter < 1) throw std::invalid_argument("n_iter must be >= 1, got " + std::to_string(n_iter));
            carray<double> C({k, p});
            std::copy(centres.data(), centres.data() + centres.size(), C.mutable_data());
            carray<std::int64_t> labels(n);
            std::fill(labels.mutable_data(), labels.mutable_data() + n, 0);
            int it = 0;
            const double* x = X.data();
            double* c = C.mutable_data();
            std::int64_t* lab = labels.mutable_data();
            {
                py::gil_scoped_release nogil;
                it = kdcore::lloyd_kmeans(x, n, static_cast<int>(p), static_cast<int>(k), n_iter, c, lab);
            }
            return py::make_tuple(labels, C, it);
        },
        py::arg("X"), py::arg("centres"), py::arg("n_iter"),
        "Lloyd's k-means iterations from the given centres (kdcore/crowd.hpp lloyd_kmeans): (labels, centres, "
        "iterations).");
    m.def(
        "lloyd_kmeans_runs",
        [](const carray<double>& X, const carray<double>& centres, int n_iter, int n_threads) {
            check_shape(X, {kAny, kAny}, "X");
            const py::ssize_t n = X.shape(0), p = X.shape(1);
            if (centres.ndim() != 3) throw std::invalid_argument("centres: expected a 3-d array (n_runs, k, p)");
            const py::ssize_t R = centres.shape(0), k = centres.shape(1);
            check_shape(centres, {R, k, p}, "centres");
            if (n < 1 || k < 1 || R < 1)
                throw std::invalid_argument("lloyd_kmeans_runs: expected at least one point, one centre and one run");
            if (n_iter < 1) throw std::invalid_argument("n_iter must be >= 1, got " + std::to_string(n_iter));
            carray<double> C({R, k, p});
            std::copy(centres.data(), centres.data() + centres.size(), C.mutable_data());
            carray<std::int64_t> labels({R, n});
            std::fill(labels.mutable_data(), labels.mutable_data() + labels.size(), 0);
            carray<int> its(R);
            const double* x = X.data();
            double* c = C.mutable_data();
            std::int64_t* lab = labels.mutable_data();
            int* it = its.mutable_data();
            {
                py::gil_scoped_release nogil;
                kdcore::lloyd_kmeans_runs(x, n, static_cast<int>(p), static_cast<int>(k), n_iter, static_cast<int>(R),
                                          c, lab, it, n_threads);
            }
            return py::make_tuple(labels, C, its);
        },
        py::arg("X"), py::arg("centres"), py::arg("n_iter"), py::arg("n_threads") = 0,
        "Independent Lloyd's k-means runs from the centres (n_runs, k, p), side by side (kdcore/crowd.hpp "
        "lloyd_kmeans_runs): (labels (n_runs, n), centres, iterations).");
    m.def(
        "skill_em_starts",
        [answer_views](const carray<index_t>& worker_indptr, const carray<code_t>& worker_task,
                       const carray<code_t>& worker_label, const carray<index_t>& task_indptr,
                       const carray<code_t>& task_worker, const carray<code_t>& task_label, code_t n_tasks,
                       code_t n_workers, const carray<std::int64_t>& inits, const carray<double>& label_post,
                       int n_types, double shrink, double smoothing, int n_outer, double tol, int n_max,
                       int n_threads) {
            check_shape(inits, {kAny, n_tasks}, "inits");
            check_shape(label_post, {n_tasks, kAny}, "label_post");
            const py::ssize_t K = label_post.shape(1), T = n_types, S = inits.shape(0);
            if (T < 1) throw std::invalid_argument("n_types must be >= 1");
            if (S < 1) throw std::invalid_argument("inits: expected at least one start, got 0");
            for (py::ssize_t x = 0; x < inits.size(); ++x)
                if (inits.data()[x] < 0 || inits.data()[x] >= T)
                    throw std::invalid_argument("inits: expected codes in [0, n_types), got " +
                                                std::to_string(inits.data()[x]) + " at flat index " + std::to_string(x));
            const kdcore::AnswerViews v = answer_views(worker_indptr, worker_task, worker_label, task_indptr,
                                                       task_worker, task_label, n_tasks, n_workers, K);
            carray<double> full({static_cast<py::ssize_t>(n_tasks), T, K});
            carray<double> log_conf({T, static_cast<py::ssize_t>(n_workers), K, K});
            carray<double> log_prior({T, K});
            kdcore::SkillEmStartsResult res;
            double* f = full.mutable_data();
            double* lc = log_conf.mutable_data();
            double* lp = log_prior.mutable_data();
            const std::int64_t* in = inits.data();
            const double* lab = label_post.data();
            {
                py::gil_scoped_release nogil;
                res = kdcore::skill_em_starts(v, n_tasks, n_workers, static_cast<int>(T), static_cast<int>(K), in,
                                              static_cast<int>(S), lab, shrink, smoothing, n_outer, tol, n_max, f, lc,
                                              lp, n_threads);
            }
            carray<double> ll(S);
            carray<int> cem(S), pol(S);
            std::copy(res.loglik.begin(), res.loglik.end(), ll.mutable_data());
            std::copy(res.cem_rounds.begin(), res.cem_rounds.end(), cem.mutable_data());
            std::copy(res.polish_rounds.begin(), res.polish_rounds.end(), pol.mutable_data());
            return py::make_tuple(full, log_conf, log_prior, res.best, ll, cem, pol);
        },
        py::arg("worker_indptr"), py::arg("worker_task"), py::arg("worker_label"), py::arg("task_indptr"),
        py::arg("task_worker"), py::arg("task_label"), py::arg("n_tasks"), py::arg("n_workers"), py::arg("inits"),
        py::arg("label_post"), py::arg("n_types"), py::arg("shrink"), py::arg("smoothing"), py::arg("n_outer"),
        py::arg("tol"), py::arg("n_max"), py::arg("n_threads") = 0,
        "The refined typing's starts side by side (kdcore/crowd.hpp skill_em_starts): (full, log_conf, log_prior, "
        "best, loglik per start, classification EM rounds per start, soft EM rounds per start).");

    m.def(
        "em_run",
        [](const carray<index_t>& task_indptr, const carray<code_t>& task_worker, const carray<code_t>& task_label,
           const carray<index_t>& worker_indptr, const carray<code_t>& worker_task, const carray<code_t>& worker_label,
           code_t n_tasks, code_t n_workers, const carray<double>& post, double smoothing, bool one_coin, int n_iter,
           double tol, double init_loglik, double prob_floor, int n_threads, int strategy, int stop_rule,
           std::optional<carray<code_t>> gold_task, std::optional<carray<code_t>> gold_class) {
            const CsrView tv = csr_view(task_indptr, task_worker, task_label, n_tasks, "task view");
            const CsrView wv = csr_view(worker_indptr, worker_task, worker_label, n_workers, "worker view");
            if (tv.nnz != wv.nnz)
                throw std::invalid_argument("the task and worker views hold different numbers of answers");
            kdcore::AnswerViews v{wv.indptr, wv.idx, wv.lab, tv.indptr, tv.idx, tv.lab};
            if (strategy < 0 || strategy > 2) throw std::invalid_argument("strategy must be 0, 1 or 2");
            if (stop_rule < 0 || stop_rule > 1) throw std::invalid_argument("stop_rule must be 0 or 1");
            if (n_iter < 1) throw std::invalid_argument("n_iter must be >= 1");
            check_shape(post, {n_tasks, kAny, kAny}, "post");
            const py::ssize_t T = post.shape(1), K = post.shape(2);
            check_codes(tv.idx, tv.nnz, n_workers, "worker");
            check_codes(tv.lab, tv.nnz, K, "label");
            check_codes(wv.idx, wv.nnz, n_tasks, "task");
            check_codes(wv.lab, wv.nnz, K, "label");
            if (gold_task.has_value() != gold_class.has_value())
                throw std::invalid_argument("give both gold_task and gold_class, or neither");
            const code_t* gt = nullptr;
            const code_t* gc = nullptr;
            code_t n_gold = 0;
            if (gold_task) {
                check_shape(*gold_task, {kAny}, "gold_task");
                check_shape(*gold_class, {gold_task->shape(0)}, "gold_class");
                n_gold = static_cast<code_t>(gold_task->shape(0));
                gt = gold_task->data();
                gc = gold_class->data();
                check_codes(gt, n_gold, n_tasks, "gold task");
                check_codes(gc, n_gold, K, "gold class");
            }
            carray<double> out_post({static_cast<py::ssize_t>(n_tasks), T, K});
            std::copy(post.data(), post.data() + post.size(), out_post.mutable_data());
            carray<double> params = one_coin ? carray<double>({T, static_cast<py::ssize_t>(n_workers)})
                                             : carray<double>({T, static_cast<py::ssize_t>(n_workers), K, K});
            carray<double> prior({T, K});
            std::vector<double> history(static_cast<std::size_t>(n_iter));
            double* pp = out_post.mutable_data();
            double* pa = params.mutable_data();
            double* pr = prior.mutable_data();
            kdcore::EmRunResult res;
            {
                py::gil_scoped_release nogil;
                res = kdcore::em_run(v, n_tasks, n_workers, static_cast<int>(T), static_cast<int>(K), smoothing,
                                     one_coin, n_iter, tol, init_loglik, prob_floor, pp, pa, pr, history.data(),
                                     n_threads, static_cast<kdcore::MStepStrategy>(strategy),
                                     static_cast<kdcore::EmStopRule>(stop_rule), gt, gc, n_gold);
            }
            history.resize(static_cast<std::size_t>(res.n_iter));
            return py::make_tuple(out_post, params, prior, history, res.n_iter, res.converged, res.loglik);
        },
        py::arg("task_indptr"), py::arg("task_worker"), py::arg("task_label"), py::arg("worker_indptr"),
        py::arg("worker_task"), py::arg("worker_label"), py::arg("n_tasks"), py::arg("n_workers"), py::arg("post"),
        py::arg("smoothing"), py::arg("one_coin"), py::arg("n_iter"), py::arg("tol"), py::arg("init_loglik"),
        py::arg("prob_floor"), py::arg("n_threads") = 0, py::arg("strategy") = 0, py::arg("stop_rule") = 0,
        py::arg("gold_task") = py::none(), py::arg("gold_class") = py::none(),
        "The whole Dawid-Skene (or one-coin) EM loop from initial posteriors: (post, conf (T, W, K, K) or skill "
        "(T, W), prior (T, K), history (-loglik per answer per round), n_iter, converged, loglik). init_loglik = "
        "NaN: no log-likelihood before the first round. strategy: 0 automatic, 1 E-step then worker-major "
        "counts, 2 fused task-major pass. stop_rule: 0 DawidSkene's relative log-likelihood change (history = "
        "-loglik per answer), 1 the typed mixture's penalised objective (history = loglik + smoothing * sum of "
        "log-parameters). gold_task / gold_class (int32, optional): gold tasks, their posterior fixed to the class at the "
        "start and after every E-step.");

    m.def(
        "vote_scores",
        [](const carray<index_t>& task_indptr, const carray<code_t>& task_worker, const carray<code_t>& task_label,
           code_t n_tasks, code_t n_workers, int n_classes, std::optional<carray<double>> weight, int n_threads) {
            const CsrView v = csr_view(task_indptr, task_worker, task_label, n_tasks, "task view");
            const double* w = nullptr;
            if (weight) {
                check_shape(*weight, {n_workers}, "weight");
                w = weight->data();
            }
            if (n_classes < 1) throw std::invalid_argument("n_classes must be >= 1");
            check_codes(v.idx, v.nnz, n_workers, "worker");
            check_codes(v.lab, v.nnz, n_classes, "label");
            carray<double> scores({static_cast<py::ssize_t>(n_tasks), static_cast<py::ssize_t>(n_classes)});
            carray<code_t> best(n_tasks), n_tied(n_tasks);
            double* s = scores.mutable_data();
            code_t* b = best.mutable_data();
            code_t* c = n_tied.mutable_data();
            {
                py::gil_scoped_release nogil;
                kdcore::vote_scores(v.indptr, v.idx, v.lab, n_tasks, n_workers, n_classes, w, s, b, c, n_threads);
            }
            return py::make_tuple(scores, best, n_tied);
        },
        py::arg("task_indptr"), py::arg("task_worker"), py::arg("task_label"), py::arg("n_tasks"),
        py::arg("n_workers"), py::arg("n_classes"), py::arg("weight") = py::none(), py::arg("n_threads") = 0,
        "(Weighted) vote: (scores (n_tasks, K), best class (first among ties), number of tied classes).");
}

// ============================================================================ crowd: TE, KOS, GLAD, MACE
void check_n_classes(int K) {
    if (K < 2) throw std::invalid_argument("n_classes must be >= 2");
}

void bind_aggregators(py::module_& m) {
    m.def(
        "te_pairwise_agreement",
        [](const carray<index_t>& t_indptr, const carray<code_t>& t_worker, const carray<code_t>& t_label,
           code_t n_workers, int n_threads) {
            const CsrView t = csr_view(t_indptr, t_worker, t_label, std::nullopt, "task view");
            if (n_workers < 0) throw std::invalid_argument("n_workers must be >= 0");
            check_codes(t.idx, t.nnz, n_workers, "t_worker");
            check_codes(t.lab, t.nnz, 2, "t_label");
            const py::ssize_t W = n_workers;
            carray<double> sum({W, W}), count({W, W});
            double* ps = sum.mutable_data();
            double* pc = count.mutable_data();
            {
                py::gil_scoped_release nogil;
                kdcore::te_pairwise_agreement(t.indptr, t.idx, t.lab, t.n, n_workers, ps, pc, n_threads);
            }
            return py::make_tuple(sum, count);
        },
        py::arg("t_indptr"), py::arg("t_worker"), py::arg("t_label"), py::arg("n_workers"), py::arg("n_threads") = 0,
        "Triangular Estimation moments: (sum, count), W x W, of X_a X_b over tasks answered by both (X = +-1).");

    m.def(
        "kos_messages",
        [](const carray<index_t>& t_indptr, const carray<code_t>& t_worker, const carray<code_t>& t_label,
           code_t n_workers, const carray<double>& y0, int n_iter, int n_threads) {
            const CsrView t = csr_view(t_indptr, t_worker, t_label, std::nullopt, "task view");
            check_shape(y0, {t.nnz}, "y0");
            if (n_iter < 0) throw std::invalid_argument("n_iter must be >= 0");
            if (n_workers < 0) throw std::invalid_argument("n_workers must be >= 0");
            check_codes(t.idx, t.nnz, n_workers, "t_worker");
            check_codes(t.lab, t.nnz, 2, "t_label");
            carray<double> y(t.nnz), score(t.n);
            std::copy(y0.data(), y0.data() + t.nnz, y.mutable_data());
            double* py_ = y.mutable_data();
            double* ps = score.mutable_data();
            {
                py::gil_scoped_release nogil;
                kdcore::kos_messages(t.indptr, t.idx, t.lab, t.n, n_workers, n_iter, py_, ps, n_threads);
            }
            return py::make_tuple(score, y);
        },
        py::arg("t_indptr"), py::arg("t_worker"), py::arg("t_label"), py::arg("n_workers"), py::arg("y0"),
        py::arg("n_iter"), py::arg("n_threads") = 0,
        "KOS message passing: (task scores, final worker messages in task-major edge order).");

    m.def(
        "glad_e_step",
        [](const carray<index_t>& t_indptr, const carray<code_t>& t_worker, const carray<code_t>& t_label,
           int n_classes, const carray<double>& alpha, const carray<double>& logbeta, const carray<double>& log_prior,
           int n_threads) {
            const CsrView t = csr_view(t_indptr, t_worker, t_label, std::nullopt, "task view");
            check_n_classes(n_classes);
            check_shape(alpha, {kAny}, "alpha");
            check_shape(logbeta, {t.n}, "logbeta");
            check_shape(log_prior, {n_classes}, "log_prior");
            check_codes(t.idx, t.nnz, alpha.shape(0), "t_worker");
            check_codes(t.lab, t.nnz, n_classes, "t_label");
            carray<double> post({static_cast<py::ssize_t>(t.n), static_cast<py::ssize_t>(n_classes)});
            double* pp = post.mutable_data();
            const double *pa = alpha.data(), *pb = logbeta.data(), *pl = log_prior.data();
            double ll = 0.0;
            {
                py::gil_scoped_release nogil;
                ll = kdcore::glad_e_step(t.indptr, t.idx, t.lab, t.n, n_classes, pa, pb, pl, pp, n_threads);
            }
            return py::make_tuple(post, ll);
        },
        py::arg("t_indptr"), py::arg("t_worker"), py::arg("t_label"), py::arg("n_classes"), py::arg("alpha"),
        py::arg("logbeta"), py::arg("log_prior"), py::arg("n_threads") = 0,
        "GLAD E-step: (posteriors n_tasks x K, log-likelihood).");

    m.def(
        "glad_objective",
        [](const carray<index_t>& t_indptr, const carray<code_t>& t_worker, const carray<code_t>& t_label,
           int n_classes, const carray<double>& post, const carray<double>& alpha, const carray<double>& logbeta,
           const carray<double>& mu_alpha, const carray<double>& mu_logbeta, int n_threads) {
            const CsrView t = csr_view(t_indptr, t_worker, t_label, std::nullopt, "task view");
            check_n_classes(n_classes);
            check_shape(post, {t.n, n_classes}, "post");
            check_shape(alpha, {kAny}, "alpha");
            const index_t n_workers = alpha.shape(0);
            check_shape(mu_alpha, {n_workers}, "mu_alpha");
            check_shape(logbeta, {t.n}, "logbeta");
            check_shape(mu_logbeta, {t.n}, "mu_logbeta");
            check_codes(t.idx, t.nnz, n_workers, "t_worker");
            check_codes(t.lab, t.nnz, n_classes, "t_label");
            carray<double> ga(n_workers), gb(t.n);
            double *pga = ga.mutable_data(), *pgb = gb.mutable_data();
            const double *pp = post.data(), *pa = alpha.data(), *pb = logbeta.data(), *ma = mu_alpha.data(),
                         *mb = mu_logbeta.data();
            double q = 0.0;
            {
                py::gil_scoped_release nogil;
                q = kdcore::glad_objective(t.indptr, t.idx, t.lab, t.n, static_cast<code_t>(n_workers), n_classes, pp,
                                           pa, pb, ma, mb, pga, pgb, n_threads);
            }
            return py::make_tuple(q, ga, gb);
        },
        py::arg("t_indptr"), py::arg("t_worker"), py::arg("t_label"), py::arg("n_classes"), py::arg("post"),
        py::arg("alpha"), py::arg("logbeta"), py::arg("mu_alpha"), py::arg("mu_logbeta"), py::arg("n_threads") = 0,
        "GLAD M-step objective Q and its gradient: (Q, dQ/dalpha, dQ/dlogbeta).");

    m.def(
        "mace_e_step",
        [](const carray<index_t>& t_indptr, const carray<code_t>& t_worker, const carray<code_t>& t_label,
           int n_classes, const carray<double>& spam, const carray<double>& strat, int n_threads) {
            const CsrView t = csr_view(t_indptr, t_worker, t_label, std::nullopt, "task view");
            check_n_classes(n_classes);
            check_shape(spam, {kAny, 2}, "spam");
            const py::ssize_t W = spam.shape(0);
            check_shape(strat, {W, n_classes}, "strat");
            check_codes(t.idx, t.nnz, W, "t_worker");
            check_codes(t.lab, t.nnz, n_classes, "t_label");
            carray<double> post({static_cast<py::ssize_t>(t.n), static_cast<py::ssize_t>(n_classes)});
            double* pp = post.mutable_data();
            const double *ps = spam.data(), *px = strat.data();
            double ll = 0.0;
            {
                py::gil_scoped_release nogil;
                ll = kdcore::mace_e_step(t.indptr, t.idx, t.lab, t.n, static_cast<code_t>(W), n_classes, ps, px, pp,
                                         n_threads);
            }
            return py::make_tuple(post, ll);
        },
        py::arg("t_indptr"), py::arg("t_worker"), py::arg("t_label"), py::arg("n_classes"), py::arg("spam"),
        py::arg("strat"), py::arg("n_threads") = 0, "MACE E-step: (posteriors n_tasks x K, log marginal likelihood).");

    m.def(
        "mace_counts",
        [](const carray<index_t>& w_indptr, const carray<code_t>& w_task, const carray<code_t>& w_label,
           int n_classes, const carray<double>& post, const carray<double>& spam, const carray<double>& strat,
           int n_threads) {
            const CsrView w = csr_view(w_indptr, w_task, w_label, std::nullopt, "worker view");
            check_n_classes(n_classes);
            check_shape(post, {kAny, n_classes}, "post");
            check_shape(spam, {w.n, 2}, "spam");
            check_shape(strat, {w.n, n_classes}, "strat");
            check_codes(w.idx, w.nnz, post.shape(0), "w_task");
            check_codes(w.lab, w.nnz, n_classes, "w_label");
            const py::ssize_t W = w.n;
            carray<double> know({W, py::ssize_t(2)}), sc({W, static_cast<py::ssize_t>(n_classes)});
            double *pk = know.mutable_data(), *psc = sc.mutable_data();
            const double *pp = post.data(), *ps = spam.data(), *px = strat.data();
            {
                py::gil_scoped_release nogil;
                kdcore::mace_counts(w.indptr, w.idx, w.lab, w.n, n_classes, pp, ps, px, pk, psc, n_threads);
            }
            return py::make_tuple(know, sc);
        },
        py::arg("w_indptr"), py::arg("w_task"), py::arg("w_label"), py::arg("n_classes"), py::arg("post"),
        py::arg("spam"), py::arg("strat"), py::arg("n_threads") = 0,
        "MACE expected counts: (know_counts W x 2 = (spam, know), strategy counts W x K).");
}

// ============================================================================ hollow Gram (task types)
// The operator is rebuilt per call (O(nnz + n d) setup); spectral_eigs builds it once.
std::unique_ptr<kdcore::HollowGram> make_gram(const carray<code_t>& task, const carray<code_t>& worker,
                                              const carray<double>& values, code_t n_tasks, code_t n_workers,
                                              bool dense) {
    check_shape(task, {kAny}, "task");
    const index_t nnz = task.shape(0);
    check_shape(worker, {nnz}, "worker");
    check_shape(values, {kAny, kAny}, "values");
    if (values.shape(0) != nnz) throw std::invalid_argument("values: expected one row per answer");
    const code_t* t = task.data();
    const code_t* w = worker.data();
    check_codes(t, nnz, n_tasks, "task");
    check_codes(w, nnz, n_workers, "worker");
    const double* v = values.data();
    const index_t p = values.shape(1);
    py::gil_scoped_release nogil;
    return std::make_unique<kdcore::HollowGram>(t, w, v, nnz, p, n_tasks, n_workers, dense);
}

void bind_hollow_gram(py::module_& m) {
    m.def(
        "hollow_gram_matvec",
        [](const carray<code_t>& task, const carray<code_t>& worker, const carray<double>& values, code_t n_tasks,
           code_t n_workers, const carray<double>& u, bool dense, int n_threads) {
            auto G = make_gram(task, worker, values, n_tasks, n_workers, dense);
            check_shape(u, {n_tasks}, "u");
            carray<double> out(n_tasks);
            double* o = out.mutable_data();
            const double* up = u.data();
            {
                py::gil_scoped_release nogil;
                G->apply(up, o, n_threads);
            }
            return out;
        },
        py::arg("task"), py::arg("worker"), py::arg("values"), py::arg("n_tasks"), py::arg("n_workers"), py::arg("u"),
        py::arg("dense"), py::arg("n_threads") = 0, "G u for the hollow task-task operator (kdcore/hollow_gram.hpp).");

    m.def(
        "spectral_eigs",
        [](const carray<code_t>& task, const carray<code_t>& worker, const carray<double>& values, code_t n_tasks,
           code_t n_workers, int k, bool dense, int ncv, double tol, std::uint64_t seed, int n_threads, int n_vec,
           double min_gap) -> py::tuple {
            auto G = make_gram(task, worker, values, n_tasks, n_workers, dense);
            kdcore::EigResult r;
            {
                py::gil_scoped_release nogil;
                kdcore::HollowGram* g = G.get();
                r = kdcore::lanczos_top([g, n_threads](const double* x, double* y) { g->apply(x, y, n_threads); },
                                        n_tasks, k, ncv, tol, seed, n_threads, n_vec, min_gap);
            }
            carray<double> vals(k);
            std::copy(r.values.begin(), r.values.end(), vals.mutable_data());
            carray<double> vecs({static_cast<py::ssize_t>(n_tasks), static_cast<py::ssize_t>(k)});
            std::copy(r.vectors.begin(), r.vectors.end(), vecs.mutable_data());
            if (n_vec < 0) return py::make_tuple(vals, vecs, r.n_matvec, r.converged, r.max_residual);
            return py::make_tuple(vals, vecs, r.n_matvec, r.converged, r.max_residual, r.gap, r.gap_upper,
                                  r.gap_limited);
        },
        py::arg("task"), py::arg("worker"), py::arg("values"), py::arg("n_tasks"), py::arg("n_workers"), py::arg("k"),
        py::arg("dense"), py::arg("ncv"), py::arg("tol"), py::arg("seed"), py::arg("n_threads") = 0,
        py::arg("n_vec") = -1, py::arg("min_gap") = 0.0,
        "Top-k eigenpairs of G by Lanczos: (values, vectors (d, k), n_matvec, converged, residual); with n_vec "
        ">= 1 also (gap, gap_upper, gap_limited) of lambda_nvec vs lambda_nvec+1 (kdcore/lanczos.hpp).");

    m.def(
        "lanczos_dense",
        [](const carray<double>& A, int k, int ncv, double tol, std::uint64_t seed, int n_threads) {
            check_shape(A, {kAny, kAny}, "A");
            const index_t d = A.shape(0);
            if (A.shape(1) != d) throw std::invalid_argument("A: expected a square matrix");
            const double* a = A.data();
            kdcore::EigResult r;
            {
                py::gil_scoped_release nogil;
                r = kdcore::lanczos_top(
                    [a, d](const double* x, double* y) {
                        for (index_t i = 0; i < d; ++i) {
                            double s = 0;
                            for (index_t j = 0; j < d; ++j) s += a[i * d + j] * x[j];
                            y[i] = s;
                        }
                    },
                    d, k, ncv, tol, seed, n_threads);
            }
            carray<double> vals(k);
            std::copy(r.values.begin(), r.values.end(), vals.mutable_data());
            carray<double> vecs({static_cast<py::ssize_t>(d), static_cast<py::ssize_t>(k)});
            std::copy(r.vectors.begin(), r.vectors.end(), vecs.mutable_data());
            return py::make_tuple(vals, vecs, r.n_matvec, r.converged, r.max_residual);
        },
        py::arg("A"), py::arg("k"), py::arg("ncv"), py::arg("tol"), py::arg("seed"), py::arg("n_threads") = 0,
        "Top-k eigenpairs of a dense symmetric matrix by the same Lanczos (a test oracle path).");
}

// ============================================================================ twolayer (distillation)
template <class T>
void def_twolayer_train(py::module_& m) {
    m.def(
        "twolayer_train",
        [](const carray<T>& X, index_t n_train, carray<T>& W, const carray<T>& W0, const carray<T>& a,
           const carray<index_t>& offsets, const carray<std::int32_t>& loss_type, const carray<T>& targets,
           const carray<T>& y, const carray<double>& lr, const carray<double>& radius, index_t n_steps,
           int n_threads, bool skip_inactive, bool return_skip_stats) -> py::tuple {
            check_shape(X, {kAny, kAny}, "X");
            const index_t n = X.shape(0), d = X.shape(1);
            check_shape(W, {kAny, d}, "W");
            const index_t M = W.shape(0);
            check_shape(W0, {M, d}, "W0");
            check_shape(a, {M}, "a");
            check_shape(offsets, {kAny}, "offsets");
            const index_t K = offsets.shape(0) - 1;
            if (K < 1) throw std::invalid_argument("offsets: need at least 2 entries");
            const index_t* off = offsets.data();
            for (index_t k = 0; k < K; ++k)
                if (off[k + 1] <= off[k]) throw std::invalid_argument("offsets must be strictly increasing");
            if (off[0] != 0 || off[K] != M) throw std::invalid_argument("offsets must run from 0 to W.shape[0]");
            check_shape(loss_type, {K}, "loss_type");
            check_codes(loss_type.data(), K, 2, "loss_type");
            check_shape(targets, {K, n}, "targets");
            check_shape(y, {n}, "y");
            check_shape(lr, {K}, "lr");
            check_shape(radius, {K}, "radius");
            if (!W.writeable()) throw std::invalid_argument("W must be writeable");
            carray<double> hist({static_cast<py::ssize_t>(K), static_cast<py::ssize_t>(n_steps), py::ssize_t(4)});
            carray<double> fin({static_cast<py::ssize_t>(K), py::ssize_t(4)});
            const T* px = X.data();
            T* pw = W.mutable_data();
            double* ph = hist.mutable_data();
            double* pf = fin.mutable_data();
            double stats[2] = {0.0, 0.0};
            {
                py::gil_scoped_release nogil;
                kdcore::twolayer_train<T>(px, n, n_train, d, pw, W0.data(), a.data(), off, K, loss_type.data(),
                                          targets.data(), y.data(), lr.data(), radius.data(), n_steps, n_threads,
                                          ph, pf, skip_inactive, stats);
            }
            if (return_skip_stats) return py::make_tuple(hist, fin, stats[1] > 0 ? stats[0] / stats[1] : 0.0);
            return py::make_tuple(hist, fin);
        },
        // noconvert: a float32 array never reaches the float64 overload through a silent upcast copy
        py::arg("X").noconvert(), py::arg("n_train"), py::arg("W").noconvert(), py::arg("W0").noconvert(),
        py::arg("a").noconvert(), py::arg("offsets").noconvert(), py::arg("loss_type").noconvert(),
        py::arg("targets").noconvert(), py::arg("y").noconvert(), py::arg("lr").noconvert(),
        py::arg("radius").noconvert(), py::arg("n_steps"), py::arg("n_threads") = 0, py::kw_only(),
        py::arg("skip_inactive") = true, py::arg("return_skip_stats") = false,
        "Projected GD for a batch of two-layer ReLU nets (W updated in place): (hist K x n_steps x 4, final K x 4),\n"
        "plus the fraction of (row, 4-neuron tile) forward entries skipped as certified inactive when\n"
        "return_skip_stats (skip_inactive=False computes every entry; the results are identical).");
}

void bind_twolayer(py::module_& m) {
    def_twolayer_train<float>(m);
    def_twolayer_train<double>(m);
}

// ============================================================================ crowd (distributed EM)
void bind_crowd_partition(py::module_& m) {
    m.def(
        "em_partition_stats",
        [](const carray<index_t>& task_indptr, const carray<code_t>& code, code_t n_workers,
           std::optional<carray<double>> log_conf, std::optional<carray<double>> log_prior, carray<double> post,
           bool count, int n_threads, bool vote_start) {
            if (task_indptr.ndim() != 1 || task_indptr.shape(0) < 1)
                throw std::invalid_argument("task_indptr: expected a 1-d array of length n_tasks + 1");
            const py::ssize_t n_tasks = task_indptr.shape(0) - 1;
            const index_t* ip = task_indptr.data();
            const py::ssize_t n = code.ndim() == 1 ? code.shape(0) : -1;
            check_shape(code, {n}, "code");
            if (ip[0] != 0 || ip[n_tasks] != n) throw std::invalid_argument("task_indptr must run from 0 to len(code)");
            for (py::ssize_t j = 0; j < n_tasks; ++j)
                if (ip[j + 1] < ip[j]) throw std::invalid_argument("task_indptr must be non-decreasing");
            if (n_workers < 0) throw std::invalid_argument("n_workers must be >= 0");
            if (post.ndim() != 3) throw std::invalid_argument("post: expected a 3-d array (n_tasks, T, K)");
            const py::ssize_t T = post.shape(1), K = post.shape(2);
            check_shape(post, {n_tasks, T, K}, "post");
            if (log_conf.has_value() != log_prior.has_value())
                throw std::invalid_argument("give both log_conf and log_prior (E-step) or neither (counts of post)");
            if (vote_start && (log_conf || T != 1))
                throw std::invalid_argument("vote_start writes post with the vote shares: give no log_conf, and T = 1");
            if (log_conf) {
                check_shape(*log_conf, {T, static_cast<py::ssize_t>(n_workers), K, K}, "log_conf");
                check_shape(*log_prior, {T, K}, "log_prior");
            }
            check_codes(code.data(), static_cast<index_t>(n), static_cast<index_t>(n_workers) * static_cast<index_t>(K),
                        "answer (worker * K + label)");
            double* pp = post.mutable_data();  // in / out: a read-only array is a ValueError here
            const double* lc = log_conf ? log_conf->data() : nullptr;
            const double* lp = log_prior ? log_prior->data() : nullptr;
            py::object counts = py::none(), mass = py::none();
            double* pc = nullptr;
            double* pm = nullptr;
            if (count) {
                carray<double> c({T, static_cast<py::ssize_t>(n_workers), K, K});
                carray<double> ms({T, K});
                pc = c.mutable_data();
                pm = ms.mutable_data();
                counts = c;
                mass = ms;
            }
            double ll;
            {
                py::gil_scoped_release nogil;
                ll = kdcore::em_partition_stats(ip, code.data(), static_cast<code_t>(n_tasks), n_workers,
                                                static_cast<int>(T), static_cast<int>(K), lc, lp, pp, pc, pm,
                                                n_threads, vote_start);
            }
            return py::make_tuple(counts, mass, ll);
        },
        py::arg("task_indptr"), py::arg("code"), py::arg("n_workers"), py::arg("log_conf"), py::arg("log_prior"),
        py::arg("post"), py::arg("count") = true, py::arg("n_threads") = 0, py::arg("vote_start") = false,
        "Sufficient statistics of one partition of the answers (whole tasks, code = worker * K + label): with "
        "log_conf / log_prior, the E-step into post (in place) and the partition's log-likelihood; without, post "
        "is read as given, or with vote_start (T = 1) first written with the vote shares. Returns (counts "
        "(T, W, K, K) or None, mass (T, K) or None, loglik); count=False skips the counts.");
}

// ============================================================================ mmsr
void bind_mmsr(py::module_& m) {
    m.def(
        "mmsr_pairs",
        [](const carray<index_t>& task_indptr, const carray<code_t>& task_worker, const carray<code_t>& task_label,
           const carray<index_t>& worker_indptr, const carray<code_t>& worker_task, const carray<code_t>& worker_label,
           code_t n_tasks, code_t n_workers) {
            const CsrView tv = csr_view(task_indptr, task_worker, task_label, n_tasks, "task view");
            const CsrView wv = csr_view(worker_indptr, worker_task, worker_label, n_workers, "worker view");
            if (task_worker.shape(0) != worker_task.shape(0))
                throw std::invalid_argument("the task and worker views hold different numbers of answers");
            kdcore::mmsr::Pairs p;
            {
                py::gil_scoped_release nogil;
                p = kdcore::mmsr::worker_pairs(tv.indptr, tv.idx, tv.lab, wv.indptr, wv.idx, wv.lab, n_workers);
            }
            auto arr = [](const auto& vec) {
                using T = typename std::decay_t<decltype(vec)>::value_type;
                carray<T> a(static_cast<py::ssize_t>(vec.size()));
                std::copy(vec.begin(), vec.end(), a.mutable_data());
                return a;
            };
            return py::make_tuple(arr(p.indptr), arr(p.idx), arr(p.common), arr(p.agree));
        },
        py::arg("task_indptr"), py::arg("task_worker"), py::arg("task_label"), py::arg("worker_indptr"),
        py::arg("worker_task"), py::arg("worker_label"), py::arg("n_tasks"), py::arg("n_workers"),
        "Worker pairs sharing a task (one answer per task and worker): (indptr (W+1), idx, common, agree), each "
        "worker's row sorted by the other worker.");

    m.def(
        "mmsr_iterate",
        [](const carray<index_t>& indptr, const carray<code_t>& idx, const carray<double>& x, carray<double> u,
           carray<double> v, int F, std::int64_t n_tasks, int n_iter, double tol, int n_threads) {
            const py::ssize_t n = u.ndim() == 1 ? u.shape(0) : -1;
            check_shape(u, {n}, "u");
            check_shape(v, {n}, "v");
            check_shape(indptr, {n + 1}, "indptr");
            const index_t* ip = indptr.data();
            const py::ssize_t nnz = idx.ndim() == 1 ? idx.shape(0) : -1;
            check_shape(x, {nnz}, "x");
            if (ip[0] != 0 || ip[n] != nnz) throw std::invalid_argument("indptr must run from 0 to len(idx)");
            for (py::ssize_t g = 0; g < n; ++g)
                if (ip[g + 1] < ip[g]) throw std::invalid_argument("indptr must be non-decreasing");
            const code_t* ix = idx.data();
            for (py::ssize_t e = 0; e < nnz; ++e)
                if (ix[e] < 0 || ix[e] >= n) throw std::invalid_argument("idx out of range");
            if (n_tasks < 1) throw std::invalid_argument("n_tasks must be >= 1");
            std::vector<double> history;
            int rounds;
            double* pu = u.mutable_data();
            double* pv = v.mutable_data();
            {
                py::gil_scoped_release nogil;
                rounds = kdcore::mmsr::iterate(ip, ix, x.data(), static_cast<code_t>(n), pu, pv, F, n_tasks, n_iter,
                                               tol, history, n_threads);
            }
            return py::make_tuple(rounds, history);
        },
        py::arg("indptr"), py::arg("idx"), py::arg("x"), py::arg("u").noconvert(), py::arg("v").noconvert(),
        py::arg("F"), py::arg("n_tasks"), py::arg("n_iter"), py::arg("tol"), py::arg("n_threads") = 0,
        "M-MSR's robust rank-one rounds on the stored pairs (u, v updated in place): (rounds, loss history).");

    m.def(
        "class_counts",
        [](const carray<index_t>& worker_indptr, const carray<code_t>& worker_task, const carray<code_t>& worker_label,
           code_t n_tasks, code_t n_workers, const carray<double>& post, int n_threads) {
            const CsrView wv = csr_view(worker_indptr, worker_task, worker_label, n_workers, "worker view");
            if (post.ndim() != 2 || post.shape(0) != n_tasks || post.shape(1) < 1)
                throw std::invalid_argument("post: expected a 2-d array (n_tasks, K)");
            const py::ssize_t K = post.shape(1);
            const py::ssize_t n = worker_task.shape(0);
            check_codes(wv.idx, static_cast<index_t>(n), n_tasks, "task");
            check_codes(wv.lab, static_cast<index_t>(n), static_cast<index_t>(K), "label");
            carray<double> out({static_cast<py::ssize_t>(n_workers), K, K});
            double* o = out.mutable_data();
            {
                py::gil_scoped_release nogil;
                kdcore::mmsr::class_counts(wv.indptr, wv.idx, wv.lab, n_workers, static_cast<int>(K), post.data(), o,
                                           n_threads);
            }
            return out;
        },
        py::arg("worker_indptr"), py::arg("worker_task"), py::arg("worker_label"), py::arg("n_tasks"),
        py::arg("n_workers"), py::arg("post"), py::arg("n_threads") = 0,
        "Expected answer counts out[w, l, k] = sum over w's answers (t, l) of post[t, k] (W x K x K).");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "kdcore compiled core";
    kdcore::set_interrupt_hook(&python_interrupt_pending);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const kdcore::Interrupted&) {
            PyErr_SetNone(PyExc_KeyboardInterrupt);
        } catch (const std::out_of_range& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const std::bad_alloc&) {
            PyErr_SetString(PyExc_MemoryError, "kdcore: out of memory");
        }
    });
    bind_parallel(m);
    bind_responses(m);
    bind_crowd(m);
    bind_aggregators(m);
    bind_hollow_gram(m);
    bind_twolayer(m);
    bind_crowd_partition(m);
    bind_mmsr(m);
}
