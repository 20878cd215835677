#!/usr/bin/env bash
# The work of scripts/gpu/sweep_50k.sh, started by it in its own process session so that it outlives the 10-minute
# calls (the machine must stay warm between them). Three width-32 priors of 50,000 steps on two GPUs, balanced by
# handing N = 200 from one GPU to the other at step 25,000 (`geomem sweep --stop-at`; the schedule is unchanged and
# resuming is exact, tests/experiments/test_sweep.py):
#   GPU 0: N = 1000 (0 -> 50k), its samples; then N = 200 (25k -> 50k), its samples
#   GPU 1: N = 200 (0 -> 25k); then N = 50 (0 -> 50k), its samples
# With one GPU both lanes share it. Writes RUN_DIR/lane{0,1}.log, RUN_DIR/pack/ and, last, RUN_DIR/driver.done.
# Usage (repository root, environment of scripts/gpu/install.sh): scripts/gpu/sweep_50k_driver.sh RUN_DIR CONFIG
set -uo pipefail
RUN=$1
CFG=$2
mkdir -p "$RUN"
NGPU=$(nvidia-smi -L 2>/dev/null | wc -l)
G1=$(( NGPU > 1 ? 1 : 0 ))
HALF=${SWEEP_HANDOFF_STEP:-25000}  # where N = 200 moves from GPU 1 to GPU 0 (half of train.steps)
export PYTHONUNBUFFERED=1
sweep() { python3 -m geomem.cli sweep -c "$CFG" --out "$RUN" --no-progress "$@"; }
stamp() { echo "=== $* ($(date -u +%H:%M:%S))"; }
lane0() {
  export CUDA_VISIBLE_DEVICES=0
  stamp train n1000; sweep --stage train --run n1000_w32
  stamp samples n1000; sweep --stage samples --run n1000_w32
  while [ ! -f "$RUN/n200_half.done" ]; do sleep 10; done
  stamp train n200 from $HALF; sweep --stage train --run n200_w32
  stamp samples n200; sweep --stage samples --run n200_w32
  stamp end
}
lane1() {
  export CUDA_VISIBLE_DEVICES=$G1
  stamp train n200 to $HALF; sweep --stage train --run n200_w32 --stop-at "$HALF"
  touch "$RUN/n200_half.done"  # also after a failure: lane 0 then resumes from n200's last checkpoint
  stamp train n50; sweep --stage train --run n50_w32
  stamp samples n50; sweep --stage samples --run n50_w32
  stamp end
}
t0=$(date +%s)
stamp "driver: $NGPU GPU(s)"
lane0 > "$RUN/lane0.log" 2>&1 &
lane1 > "$RUN/lane1.log" 2>&1 &
wait
echo "train + samples wall time: $(( $(date +%s) - t0 )) s" | tee "$RUN/gpu_wall.txt"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >> "$RUN/gpu_wall.txt" 2>/dev/null || true
scripts/gpu/pack_sweep.sh "$RUN" "$CFG" "$RUN.pack" sweep50k
stamp "driver done"
touch "$RUN/driver.done"
