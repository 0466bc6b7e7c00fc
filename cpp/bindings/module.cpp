// kdcore._core: the only binding file. It converts arrays (C-contiguous, exact
// dtype, no silent casts: Python validates first), releases the GIL around each
// kernel, and converts results back. Each area of the core has one bind_*
// function below; nothing else lives here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "kdcore/parallel.hpp"
#include "kdcore/responses.hpp"
#include "kdcore/twolayer.hpp"

namespace py = pybind11;
using kdcore::code_t;
using kdcore::index_t;

template <class T>
using carray = py::array_t<T, py::array::c_style>;  // no forcecast: wrong dtype is a TypeError

namespace {

// Shape checks shared by every binding (Python validates first; these keep a
// direct call of _core from reading out of bounds).
template <class T>
const T* in_ptr(const carray<T>& a, py::ssize_t ndim, const char* name) {
    if (a.ndim() != ndim)
        throw std::invalid_argument(std::string(name) + ": expected " + std::to_string(ndim) + "-d array, got " +
                                    std::to_string(a.ndim()) + "-d");
    return a.data();
}
template <class T>
void expect_len(const carray<T>& a, py::ssize_t n, const char* name) {
    if (a.ndim() != 1 || a.shape(0) != n)
        throw std::invalid_argument(std::string(name) + ": expected length " + std::to_string(n));
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
    m.def("have_multiversion", []() { return KDCORE_HAVE_MULTIVERSION == 1; });
}

// ============================================================================ responses
void bind_responses(py::module_& m) {
    m.def(
        "factorize_int64",
        [](const carray<std::int64_t>& ids) {
            const std::int64_t* p = in_ptr(ids, 1, "ids");
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
            const code_t* t = in_ptr(task, 1, "task");
            const index_t n = task.shape(0);
            expect_len(worker, n, "worker");
            if (mode < 0 || mode > 2) throw std::invalid_argument("mode must be 0, 1 or 2");
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
            const code_t* g = in_ptr(group, 1, "group");
            const index_t n = group.shape(0);
            expect_len(a, n, "payload_a");
            expect_len(b, n, "payload_b");
            if (n_groups < 0) throw std::invalid_argument("n_groups must be >= 0");
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
}

// ============================================================================ crowd (more aggregators: spectral-EM, TE, KOS, GLAD, MACE)
void bind_crowd_more(py::module_& m) {
}

// ============================================================================ spectral (task types)
void bind_spectral(py::module_& m) {
}

// ============================================================================ twolayer (distillation)
template <class T>
void def_twolayer_train(py::module_& m) {
    m.def(
        "twolayer_train",
        [](const carray<T>& X, index_t n_train, carray<T>& W, const carray<T>& W0, const carray<T>& a,
           const carray<index_t>& offsets, const carray<std::int32_t>& loss_type, const carray<T>& targets,
           const carray<T>& y, const carray<double>& lr, const carray<double>& radius, index_t n_steps,
           int n_threads) {
            const T* px = in_ptr(X, 2, "X");
            const index_t n = X.shape(0), d = X.shape(1);
            in_ptr(W, 2, "W");
            const index_t M = W.shape(0);
            if (W.shape(1) != d) throw std::invalid_argument("W: expected " + std::to_string(d) + " columns");
            if (W0.ndim() != 2 || W0.shape(0) != M || W0.shape(1) != d)
                throw std::invalid_argument("W0: expected the shape of W");
            expect_len(a, M, "a");
            in_ptr(offsets, 1, "offsets");
            const index_t K = offsets.shape(0) - 1;
            if (K < 1) throw std::invalid_argument("offsets: need at least 2 entries");
            const index_t* off = offsets.data();
            for (index_t k = 0; k < K; ++k)
                if (off[k + 1] <= off[k]) throw std::invalid_argument("offsets must be strictly increasing");
            if (off[0] != 0 || off[K] != M) throw std::invalid_argument("offsets must run from 0 to W.shape[0]");
            expect_len(loss_type, K, "loss_type");
            if (targets.ndim() != 2 || targets.shape(0) != K || targets.shape(1) != n)
                throw std::invalid_argument("targets: expected shape (K, n)");
            expect_len(y, n, "y");
            expect_len(lr, K, "lr");
            expect_len(radius, K, "radius");
            if (!W.writeable()) throw std::invalid_argument("W must be writeable");
            carray<double> hist({static_cast<py::ssize_t>(K), static_cast<py::ssize_t>(n_steps), py::ssize_t(4)});
            carray<double> fin({static_cast<py::ssize_t>(K), py::ssize_t(4)});
            T* pw = W.mutable_data();
            double* ph = hist.mutable_data();
            double* pf = fin.mutable_data();
            {
                py::gil_scoped_release nogil;
                kdcore::twolayer_train<T>(px, n, n_train, d, pw, W0.data(), a.data(), off, K, loss_type.data(),
                                          targets.data(), y.data(), lr.data(), radius.data(), n_steps, n_threads,
                                          ph, pf);
            }
            return py::make_tuple(hist, fin);
        },
        // noconvert: a float32 array never reaches the float64 overload through a silent upcast copy
        py::arg("X").noconvert(), py::arg("n_train"), py::arg("W").noconvert(), py::arg("W0").noconvert(),
        py::arg("a").noconvert(), py::arg("offsets").noconvert(), py::arg("loss_type").noconvert(),
        py::arg("targets").noconvert(), py::arg("y").noconvert(), py::arg("lr").noconvert(),
        py::arg("radius").noconvert(), py::arg("n_steps"), py::arg("n_threads") = 0,
        "Projected GD for a batch of two-layer ReLU nets (W updated in place): (hist K x n_steps x 4, final K x 4).");
}

void bind_twolayer(py::module_& m) {
    def_twolayer_train<float>(m);
    def_twolayer_train<double>(m);
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
    bind_crowd_more(m);
    bind_spectral(m);
    bind_twolayer(m);
}
