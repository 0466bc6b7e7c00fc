#!/usr/bin/env bash
# The crowd-students experiment's full profile on one GPU inside a time budget, resumable.
#
# Students trained on crowd labels (python/kdcore/experiments/crowd_students.py): the
# two-layer engine on torch-cuda, CrowdLayer on cuda. Every finished cell (variant x
# answers per task x hard share x seed) is appended to $OUT/crowd_students/cells.jsonl;
# a second run with the same OUT skips those cells and continues. The report section
# (crowd_students.md, two PNG figures, runs.csv) is written from whatever cells are done.
#
#   OUT=/tmp/out BUDGET_S=540 bash tools/gpu_crowd_students.sh      # GPU, full profile
#   OUT=/tmp/out BUDGET_S=120 DRY_RUN=1 bash tools/gpu_crowd_students.sh   # tiny profile, CPU
#
# Needs KDCORE_DATA (mnist/) and torch; builds the compiled core when it is missing.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/python"
OUT="${OUT:-gpu-out}"
BUDGET_S="${BUDGET_S:-540}"
PY="${PYTHON:-python3}"
if [ "${DRY_RUN:-0}" = "1" ]; then
  PROFILE=tiny BACKEND=auto DEVICE=cpu
else
  PROFILE="${PROFILE:-full}" BACKEND="${BACKEND:-torch-cuda}" DEVICE="${DEVICE:-cuda}"
fi
mkdir -p "$OUT/crowd_students"
t0=$(date +%s)
left() { echo $((BUDGET_S - ($(date +%s) - t0))); }
say() { echo "[$(($(date +%s) - t0)) s] $*"; }

gpu=$(nvidia-smi -L 2>/dev/null | head -1)
say "machine: ${gpu:-no GPU}, profile $PROFILE, backend $BACKEND, device $DEVICE"
if ! "$PY" -c "import kdcore._core" 2>/dev/null; then
  say "building the compiled core"
  KDCORE_BUILD_JOBS="${KDCORE_BUILD_JOBS:-8}" tools/dev_build.sh || { say "build failed"; exit 1; }
fi
"$PY" -c "import torch, kdcore; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

# soft stop: no new cell after (budget - 60 s); hard stop at (budget - 30 s), losing only the running cell
soft=$(( $(left) - 60 )); hard=$(( $(left) - 30 ))
if [ "$soft" -gt 0 ]; then
  say "running cells (soft stop after $soft s)"
  timeout --signal=TERM "$hard" "$PY" -m kdcore.experiments.crowd_students --profile "$PROFILE" \
    --out "$OUT/crowd_students" --backend "$BACKEND" --device "$DEVICE" --budget-s "$soft" \
    > "$OUT/crowd_students/run.log" 2>&1
  say "run exit status $? ($(wc -l < "$OUT/crowd_students/cells.jsonl" 2>/dev/null || echo 0) cells done)"
fi
# summary of the finished cells (runs nothing new)
"$PY" -m kdcore.experiments.crowd_students --profile "$PROFILE" --out "$OUT/crowd_students" \
  --backend "$BACKEND" --device "$DEVICE" --budget-s 0 > "$OUT/crowd_students/summary.log" 2>&1
say "summary exit status $?: $OUT/crowd_students/crowd_students.md"
head -12 "$OUT/crowd_students/crowd_students.md" 2>/dev/null
