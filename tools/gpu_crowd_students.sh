#!/usr/bin/env bash
# The crowd-students experiment's full profile on one GPU inside a time budget, resumable.
#
# Students trained on crowd labels (python/kdcore/experiments/crowd_students.py): the
# two-layer engine on torch-cuda, CrowdLayer and the VGG 2+3 student on cuda. Every finished
# cell (variant x answers per task x hard share x seed) is appended to
# $OUT/crowd_students/cells.jsonl (cells.shard<i>of<k>.jsonl with SHARDS=k); a second run with
# the same OUT skips those cells and continues. The report section (crowd_students.md, PNG
# figures, runs.csv) is written from whatever cells are done.
#
#   OUT=/tmp/out BUDGET_S=540 bash tools/gpu_crowd_students.sh                      # GPU, full profile
#   OUT=/tmp/out BUDGET_S=300 VARIANTS=cifar SEEDS=0 SHARDS=12 bash tools/gpu_crowd_students.sh
#       # the VGG cells of seed 0 only: 12 processes, one crowd setting each, one shared teacher
#   OUT=/tmp/out BUDGET_S=120 DRY_RUN=1 bash tools/gpu_crowd_students.sh            # tiny profile, CPU
#
# VARIANTS (full,reduced,cifar), SEEDS, ANSWERS and HARD_SHARES (comma-separated) pick a subset
# of the profile's cells; the cells are those of the full profile, so later runs with the same
# OUT add to them. SHARDS=k runs k processes on one GPU, each every k-th cell (small networks
# leave the GPU idle between kernel launches; k processes fill it). The CIFAR teacher is
# trained once ($OUT/crowd_students/cifar_teacher.npz) and shared. TAR=FILE.tgz archives the
# folder at the end.
#
# Needs KDCORE_DATA (mnist/, cifar10/) and torch; builds the compiled core when it is missing.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/python"
OUT="${OUT:-gpu-out}"
BUDGET_S="${BUDGET_S:-540}"
SHARDS="${SHARDS:-1}"
PY="${PYTHON:-python3}"
if [ "${DRY_RUN:-0}" = "1" ]; then
  PROFILE=tiny BACKEND=auto DEVICE=cpu
else
  PROFILE="${PROFILE:-full}" BACKEND="${BACKEND:-torch-cuda}" DEVICE="${DEVICE:-cuda}"
fi
SUBSET=()
[ -n "${VARIANTS:-}" ] && SUBSET+=(--variants "$VARIANTS")
[ -n "${SEEDS:-}" ] && SUBSET+=(--seeds "$SEEDS")
[ -n "${ANSWERS:-}" ] && SUBSET+=(--answers "$ANSWERS")
[ -n "${HARD_SHARES:-}" ] && SUBSET+=(--hard-shares "$HARD_SHARES")
# threads per process: the cores shared among the shards
CORES=$(nproc 2>/dev/null || echo 1)
THREADS=$(( CORES / SHARDS )); [ "$THREADS" -lt 1 ] && THREADS=1
export KDCORE_NUM_THREADS="$THREADS"
mkdir -p "$OUT/crowd_students"
t0=$(date +%s)
left() { echo $((BUDGET_S - ($(date +%s) - t0))); }
say() { echo "[$(($(date +%s) - t0)) s] $*"; }

gpu=$(nvidia-smi -L 2>/dev/null | head -1)
say "machine: ${gpu:-no GPU}, profile $PROFILE, backend $BACKEND, device $DEVICE, $SHARDS shard(s) x $THREADS thread(s), subset: ${SUBSET[*]:-all cells}"
if ! "$PY" -c "import kdcore._core" 2>/dev/null; then
  say "building the compiled core"
  KDCORE_BUILD_JOBS="${KDCORE_BUILD_JOBS:-8}" tools/dev_build.sh > "$OUT/crowd_students/build.log" 2>&1 \
    || { say "build failed"; tail -20 "$OUT/crowd_students/build.log"; exit 1; }
fi
"$PY" -c "import torch, kdcore; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

if [ "$SHARDS" -gt 1 ] && [[ "${VARIANTS:-cifar}" == *cifar* ]]; then
  # decode the CIFAR-10 images into the cache once, not in every shard
  "$PY" -c "from kdcore.distill.datasets import cifar_pair; cifar_pair('cat', 'dog')" 2>/dev/null \
    && say "CIFAR-10 cat and dog decoded" || say "no CIFAR-10 data: the CIFAR cells will be skipped"
fi
# soft stop: no new cell after (budget - 60 s); hard stop at (budget - 30 s), losing only the running cells
soft=$(( $(left) - 60 )); hard=$(( $(left) - 30 ))
if [ "$soft" -gt 0 ]; then
  say "running cells (soft stop after $soft s)"
  pids=()
  for ((i = 0; i < SHARDS; i++)); do
    timeout --signal=TERM "$hard" "$PY" -m kdcore.experiments.crowd_students --profile "$PROFILE" \
      --out "$OUT/crowd_students" --backend "$BACKEND" --device "$DEVICE" --n-threads "$THREADS" \
      "${SUBSET[@]}" --budget-s "$soft" --shard "$i/$SHARDS" > "$OUT/crowd_students/run.$i.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}"; say "shard $i/$SHARDS exit status $?: $(grep -c '^\[crowd students\] .*networks' "$OUT/crowd_students/run.$i.log") cell(s)"
  done
fi
# summary of the finished cells of the whole profile (runs nothing new)
"$PY" -m kdcore.experiments.crowd_students --profile "$PROFILE" --out "$OUT/crowd_students" \
  --backend "$BACKEND" --device "$DEVICE" --budget-s 0 > "$OUT/crowd_students/summary.log" 2>&1
say "summary exit status $?: $OUT/crowd_students/crowd_students.md"
grep -h "networks" "$OUT"/crowd_students/run.*.log 2>/dev/null
head -12 "$OUT/crowd_students/crowd_students.md" 2>/dev/null
if [ -n "${TAR:-}" ]; then  # one archive of the folder (cells, teacher logits, logs, report)
  tar czf "$TAR" -C "$OUT" crowd_students && say "archived into $TAR"
fi
