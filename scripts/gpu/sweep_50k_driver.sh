#!/usr/bin/env bash
# The work of scripts/gpu/sweep_50k.sh, started by it in its own process session so that it outlives the 10-minute
# calls (the machine must stay warm between them). Width-32 priors of 50,000 steps on the visible GPUs, each trained
# then sampled (every checkpoint) in one lane per GPU:
#   RUNS = all three (default) on 2 GPUs: balanced by handing N = 200 from one GPU to the other at step 25,000
#     (`geomem sweep --stop-at`; schedule unchanged, resuming exact: tests/experiments/test_sweep.py):
#     GPU 0: N = 1000, then N = 200 from 25k to 50k;   GPU 1: N = 200 to 25k, then N = 50
#   otherwise: the runs dealt round-robin to SWEEP_LANES lanes (default: one per GPU), one after another in each lane;
#     lane k uses GPU k mod (number of GPUs), so SWEEP_LANES=3 on one GPU trains three priors at once (with
#     GEOMEM_MPS=1 their kernels share the GPU through CUDA MPS instead of time-slicing it).
# Writes RUN_DIR/lane<k>.log, RUN_DIR.pack/ and, last, RUN_DIR/driver.done.
# Usage (repository root, environment of scripts/gpu/install.sh):
#   scripts/gpu/sweep_50k_driver.sh RUN_DIR CONFIG [RUN ...]     (RUN: n1000_w32, n200_w32, n50_w32)
set -uo pipefail
RUN=$1
CFG=$2
shift 2
RUNS=("${@:-n1000_w32 n200_w32 n50_w32}")
read -r -a RUNS <<< "${RUNS[*]}"
mkdir -p "$RUN"
NGPU=$(nvidia-smi -L 2>/dev/null | wc -l)
[ "$NGPU" -gt 0 ] || NGPU=1
LANES=${SWEEP_LANES:-$NGPU}
HALF=${SWEEP_HANDOFF_STEP:-25000}  # where N = 200 moves from GPU 1 to GPU 0 (half of train.steps)
export PYTHONUNBUFFERED=1
sweep() { python3 -m geomem.cli sweep -c "$CFG" --out "$RUN" --no-progress "$@"; }
stamp() { echo "=== $* ($(date -u +%H:%M:%S))"; }
prior() {  # train (resuming if needed) then sample one run
  stamp train "$1"; sweep --stage train --run "$1"
  stamp samples "$1"; sweep --stage samples --run "$1"
}
handoff_lane0() {
  export CUDA_VISIBLE_DEVICES=0
  prior n1000_w32
  while [ ! -f "$RUN/n200_half.done" ]; do sleep 10; done
  prior n200_w32
  stamp end
}
handoff_lane1() {
  export CUDA_VISIBLE_DEVICES=1
  stamp train n200_w32 to "$HALF"; sweep --stage train --run n200_w32 --stop-at "$HALF"
  touch "$RUN/n200_half.done"  # also after a failure: lane 0 then resumes from n200's last checkpoint
  prior n50_w32
  stamp end
}
dealt_lane() {  # dealt_lane GPU RUN...
  export CUDA_VISIBLE_DEVICES=$1
  shift
  for r in "$@"; do prior "$r"; done
  stamp end
}
source "$(dirname "$0")/../gpu_mps.sh"
start_mps "$RUN/mps.txt"
t0=$(date +%s)
stamp "driver: $NGPU GPU(s), $LANES lane(s), runs ${RUNS[*]}"
if [ "${RUNS[*]}" = "n1000_w32 n200_w32 n50_w32" ] && [ "$NGPU" -eq 2 ] && [ "$LANES" -eq 2 ]; then
  handoff_lane0 > "$RUN/lane0.log" 2>&1 &
  handoff_lane1 > "$RUN/lane1.log" 2>&1 &
else
  for k in $(seq 0 $(( LANES - 1 ))); do
    mine=()
    for i in "${!RUNS[@]}"; do [ $(( i % LANES )) -eq "$k" ] && mine+=("${RUNS[$i]}"); done
    [ ${#mine[@]} -gt 0 ] && dealt_lane $(( k % NGPU )) "${mine[@]}" > "$RUN/lane$k.log" 2>&1 &
  done
fi
wait
stop_mps
echo "train + samples wall time: $(( $(date +%s) - t0 )) s" | tee "$RUN/gpu_wall.txt"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >> "$RUN/gpu_wall.txt" 2>/dev/null || true
scripts/gpu/pack_sweep.sh "$RUN" "$CFG" "$RUN.pack" sweep50k
stamp "driver done"
touch "$RUN/driver.done"
