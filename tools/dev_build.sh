#!/usr/bin/env bash
# Developer build: compile kdcore._core into build-dev/ and copy it next to the
# Python sources, so `PYTHONPATH=python python -m pytest` uses the fresh core
# without reinstalling. Usage: tools/dev_build.sh [extra cmake -D options]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bdir="${KDCORE_BUILD_DIR:-$root/build-dev}"
cmake -S "$root" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -Dpybind11_DIR="$(python -c 'import pybind11; print(pybind11.get_cmake_dir())')" "$@" >/dev/null
cmake --build "$bdir" -j "${KDCORE_BUILD_JOBS:-2}"
so=$(ls "$bdir"/_core*.so)
cp "$so" "$root/python/kdcore/.$(basename "$so").tmp"
mv "$root/python/kdcore/.$(basename "$so").tmp" "$root/python/kdcore/$(basename "$so")"
echo "built $(basename "$so")"
