#!/usr/bin/env bash
# Build kdcore._core with AddressSanitizer + UndefinedBehaviorSanitizer and run the
# test suite against it. Usage: tools/sanitize.sh [pytest args]
# The ASan runtime must be loaded before Python, hence LD_PRELOAD; leak checks are
# off because CPython itself keeps memory alive at exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bdir="$root/build-asan"
stage="$root/build-asan/stage"
cmake -S "$root" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKDCORE_SANITIZE=address,undefined \
  -Dpybind11_DIR="$(python -c 'import pybind11; print(pybind11.get_cmake_dir())')" >/dev/null
cmake --build "$bdir" -j "${KDCORE_BUILD_JOBS:-2}"
rm -rf "$stage" && mkdir -p "$stage"
cp -r "$root/python/kdcore" "$stage/kdcore"
rm -f "$stage"/kdcore/_core*.so
cp "$bdir"/_core*.so "$stage/kdcore/"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd "$root"
PYTHONPATH="$stage" python -m pytest -p no:cacheprovider -q "$@"
