#!/usr/bin/env bash
# The N-sweep at the paper's budget on a GPU machine (issue #17; docs/results.md): data/configs/sweep_50k.toml, i.e.
# N = 50, 200, 1000, width 32, 50,000 steps at batch 128, unconditional samples of every checkpoint with their
# memorization ratios. One call runs at most SWEEP_CALL_S seconds (default 570, inside a 10-minute call limit) and can
# be repeated: the first call installs the wheelhouse and starts scripts/gpu/sweep_50k_driver.sh in its own process
# session (it keeps running between calls while the machine stays up), every call then waits for it and copies
# what exists to OUT_DIR — the samples' ratio records and training logs as sweep50k_progress.tgz (so the
# memorization rates along training come back even if the machine is lost), and, once the driver is done, the packed
# run folder (final EMA weights in fp16) as sweep50k.tgz.* pieces of <= 15 MiB.
# Usage (repository root): scripts/gpu/sweep_50k.sh OUT_DIR [WHEELHOUSE=.whl] [RUN ...]   (default: all three;
#   RUN as in scripts/gpu/sweep_50k_driver.sh, e.g. n1000_w32 n200_w32 to train two of them on two GPUs; several on
#   one GPU with SWEEP_LANES=K GEOMEM_MPS=1 in the environment of the first call; scripts/gpu/sweep_stop.sh RUN stops one)
# Afterwards, here:  cat OUT_DIR/sweep50k.tgz.* | tar xz -C runs; python scripts/sweep_tables.py runs/sweep50k
set -uo pipefail
OUT=$1
WH=${2:-.whl}
shift $(( $# < 2 ? $# : 2 ))
LIMIT=${SWEEP_CALL_S:-570}
RUN=runs/sweep50k
CFG=data/configs/sweep_50k.toml
t0=$(date +%s)
mkdir -p "$OUT" "$RUN"
if [ ! -f /tmp/geomem-site/env.sh ]; then
  scripts/gpu/install.sh "$WH" /tmp/geomem-site > "$RUN/install.log" 2>&1 || { tail -20 "$RUN/install.log"; exit 1; }
fi
source /tmp/geomem-site/env.sh
if [ ! -f "$RUN/driver.done" ] && ! pgrep -f sweep_50k_driver.sh > /dev/null; then
  echo "starting the driver ($(date -u +%H:%M:%S))"
  setsid nohup bash scripts/gpu/sweep_50k_driver.sh "$RUN" "$CFG" "$@" > "$RUN.driver.log" 2>&1 < /dev/null &
  sleep 5
fi
while [ ! -f "$RUN/driver.done" ] && [ $(( $(date +%s) - t0 )) -lt "$LIMIT" ]; do sleep 10; done
for f in "$RUN.driver.log" "$RUN"/lane*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 6 "$f"; }; done
for r in "$RUN"/train/*/; do
  [ -f "$r/train_log.jsonl" ] && echo "$(basename "$r"): $(tail -n 1 "$r/train_log.jsonl")"
done
cp "$RUN.driver.log" "$OUT/" 2>/dev/null
tar czf "$OUT/sweep50k_progress.tgz" -C runs --exclude='checkpoints' --exclude='prior' --exclude='*.safetensors' \
  sweep50k/samples sweep50k/train sweep50k/gpu_wall.txt $(cd runs && ls sweep50k/lane*.log) 2>/dev/null
if [ -f "$RUN/driver.done" ]; then cp "$RUN.pack"/sweep50k.tgz.* "$OUT/"; echo "done: packed run folder in OUT"; fi
ls -la "$OUT"
