#!/usr/bin/env bash
# Build kdcore._core with AddressSanitizer + UndefinedBehaviorSanitizer and run
# the test suite against it, with the ASan runtime preloaded into Python.
#
#   tools/sanitize.sh                      # whole default suite (slow: ~10x)
#   tools/sanitize.sh tests/test_invariants.py -x   # extra args go to pytest
#
# The sanitized module is built in build-asan/ and copied into a private copy of
# python/ (build-asan/python), so the developer build in python/kdcore is left
# alone. Every ASan/UBSan report is written to build-asan/reports/<tool>.<pid>;
# the script prints them and exits non-zero when there is any, or when pytest fails.
# Leak checking is off: CPython itself "leaks" at exit (interned objects).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bdir="${KDCORE_ASAN_DIR:-$root/build-asan}"
sanitize="${KDCORE_SANITIZE:-address,undefined}"
cmake -S "$root" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKDCORE_SANITIZE="$sanitize" \
  -Dpybind11_DIR="$(python -c 'import pybind11; print(pybind11.get_cmake_dir())')" >/dev/null || exit 1
cmake --build "$bdir" -j "${KDCORE_BUILD_JOBS:-2}" || exit 1
so=$(ls "$bdir"/_core*.so)

# A private copy of the Python package with the sanitized module in it.
rm -rf "$bdir/python"
mkdir -p "$bdir/python"
cp -r "$root/python/kdcore" "$bdir/python/"
find "$bdir/python" -name '__pycache__' -prune -exec rm -rf {} +
rm -f "$bdir"/python/kdcore/_core*.so
cp "$so" "$bdir/python/kdcore/"

reports="$bdir/reports"
rm -rf "$reports"
mkdir -p "$reports"
asan_rt=$(${CXX:-c++} -print-file-name=libasan.so)
ubsan_rt=$(${CXX:-c++} -print-file-name=libubsan.so)
preload="$asan_rt"
[[ "$sanitize" == *undefined* ]] && preload="$asan_rt:$ubsan_rt"

cd "$root"
echo "sanitize: $sanitize; module $so; reports in $reports"
# halt_on_error=0 needs -fsanitize-recover; ASan stops the process at its first
# error (pytest then reports the crash), UBSan keeps going and logs each site once.
LD_PRELOAD="$preload" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:log_path=$reports/asan:allocator_may_return_null=1:handle_segv=1:detect_stack_use_after_return=0" \
UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan:report_error_type=1" \
PYTHONPATH="$bdir/python" KDCORE_SANITIZED=1 \
  python -m pytest -q -p no:cacheprovider "$@"
rc=$?

n=$(find "$reports" -type f | wc -l)
if [ "$n" -gt 0 ]; then
  echo "=== $n sanitizer report file(s) ==="
  for f in "$reports"/*; do echo "--- $f"; head -60 "$f"; done
  exit 3
fi
echo "sanitize: no ASan/UBSan reports (pytest exit code $rc)"
exit $rc
