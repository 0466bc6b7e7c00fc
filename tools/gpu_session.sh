#!/usr/bin/env bash
# One GPU run, end to end, inside a fixed time budget: build the core, the
# CUDA checks, the deep student-epoch benchmark (CPU vs CUDA on the same
# machine), then the two long experiments side by side until the deadline:
#   - Experiment 2's full profile (paper protocol), sharded over several
#     processes on the one GPU, every network logged as a JSON line;
#   - the soft-vs-hard scaling study's full profile on the torch-cuda backend,
#     every dataset's curves appended to a CSV.
# Both resume from their logs, so a second run continues where this one
# stopped. Summarise on any machine:
#   python -m kdcore.experiments.deep --profile full --from-logs deep_full.jsonl --out DIR
#   soft_vs_hard("full", checkpoint="svh_full_curves.csv")  (reads, trains nothing new)
#
# Usage (repo root; KDCORE_DATA holds cifar10/CIFAR-10-images-jpg.tar.gz):
#   OUT=/tmp/out BUDGET_S=540 DEEP_SHARDS=12 bash tools/gpu_session.sh
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/python" KDCORE_CACHE="${KDCORE_CACHE:-/tmp/kdcore-cache}"
OUT="${OUT:-gpu-out}"
BUDGET_S="${BUDGET_S:-540}"
SHARDS="${DEEP_SHARDS:-12}"
PY="${PYTHON:-python3}"
DEEP_PROFILE="${DEEP_PROFILE:-full}" DEEP_DEVICE="${DEEP_DEVICE:-cuda}"      # dry run: tiny, cpu
SVH_PROFILE="${SVH_PROFILE:-full}" SVH_BACKEND="${SVH_BACKEND:-torch-cuda}"  # dry run: tiny, cpp
mkdir -p "$OUT"
t0=$(date +%s)
left() { echo $((BUDGET_S - ($(date +%s) - t0))); }
say() { echo "[$(($(date +%s) - t0)) s] $*"; }

say "machine"
nvidia-smi -L 2>&1 | head -3
nproc
"$PY" -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-'); print('numpy', numpy.__version__)"

say "build the core (background) and decode the CIFAR-10 pair into the cache"
( cmake -S . -B /tmp/kdbuild -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -Dpybind11_DIR="$("$PY" -c 'import pybind11; print(pybind11.get_cmake_dir())')" >/tmp/build.log 2>&1 &&
  cmake --build /tmp/kdbuild -j 12 >>/tmp/build.log 2>&1 &&
  so=$(ls /tmp/kdbuild/_core*.so) && cp "$so" python/kdcore/.core.tmp &&
  mv python/kdcore/.core.tmp "python/kdcore/$(basename "$so")" ) &  # rename: never rewrite a loaded .so
build=$!
"$PY" -c "from kdcore.distill.datasets import cifar_pair; d = cifar_pair('cat', 'dog', noise_var=0.0, seed=0); print('cifar pair', d.X_train.shape)" || say "CIFAR decode FAILED"
wait $build && say "build ok" || { say "build FAILED"; tail -20 /tmp/build.log; }

say "deep student epoch benchmark, CPU ($(nproc) threads) and CUDA, quiet machine"
[ "${BENCH:-1}" = 1 ] && timeout 150 "$PY" -m pytest benchmarks/bench_deep.py --benchmark-enable --benchmark-group-by=group \
  --benchmark-json="$OUT/bench_deep.json" -q -p no:cacheprovider 2>&1 | tail -15

say "long jobs until the deadline ($(left) s left)"
stop_at=$(( $(left) - 25 ))
for i in $(seq 0 $((SHARDS - 1))); do
  OMP_NUM_THREADS=1 timeout "$stop_at" "$PY" -m kdcore.experiments.deep --profile "$DEEP_PROFILE" --device "$DEEP_DEVICE" \
    --shard "$i/$SHARDS" --log "$OUT/deep_$DEEP_PROFILE.jsonl" --out "/tmp/deep_$i" >"/tmp/deep_$i.log" 2>&1 &
done
OMP_NUM_THREADS=2 timeout "$stop_at" "$PY" -c "
from kdcore.experiments.scaling import soft_vs_hard, where_soft_wins
import pandas as pd, time
t = time.perf_counter()
r = soft_vs_hard('$SVH_PROFILE', backend='$SVH_BACKEND', checkpoint='$OUT/svh_${SVH_PROFILE}_curves.csv')
pd.set_option('display.width', 200); pd.set_option('display.max_rows', 500)
print(where_soft_wins(r).to_string(index=False)); print(r.slopes[r.slopes.metric == 'avg_error'].to_string(index=False))
print('soft_vs_hard $SVH_PROFILE on $SVH_BACKEND:', round(time.perf_counter() - t), 's')
" >/tmp/svh.log 2>&1 &
svh=$!

say "CUDA checks: the two-layer engine's torch-cuda backend against the numpy twin"
timeout 120 "$PY" -m pytest tests/test_twolayer.py tests/test_deep.py -q -p no:cacheprovider -k "cuda or Cuda or device" -rs 2>&1 | tail -8

while [ "$(left)" -gt 20 ] && pgrep -f "kdcore.experiments.deep|soft_vs_hard" >/dev/null; do
  sleep 15
  say "deep networks logged: $(cat "$OUT/deep_$DEEP_PROFILE.jsonl" 2>/dev/null | wc -l);" \
      "scaling-study networks done: $(cat "$OUT/svh_${SVH_PROFILE}_curves.csv" 2>/dev/null | wc -l)"
done
pkill -f "kdcore.experiments.deep" ; sleep 1
say "soft_vs_hard log:"; tail -60 /tmp/svh.log
say "one deep shard's log:"; tail -5 /tmp/deep_0.log
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv 2>&1 | tail -2
say "done"
