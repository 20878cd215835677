#!/usr/bin/env bash
# Issue #17 on a GPU machine in resumable calls of at most SCALEOUT_CALL_S seconds (default 560): the Dask
# efficiency of the physics, the memorized denoiser against its floor, the N = 50 prior of the 50,000-step sweep and
# full-size `geomem compare` runs (scripts/gpu/scaleout_driver.sh says what and in which order). The first call
# installs the wheelhouse and starts the driver in its own process session; every call waits for it, then copies
# what exists to OUT_DIR: scaleout_progress.tgz.* (benchmark JSON, logs, compare run folders without their caches)
# and the sweep's progress and, once it is done, its packed run folder (scripts/gpu/sweep_50k.sh).
# Usage (repository root): scripts/gpu/scaleout.sh OUT_DIR [WHEELHOUSE=.whl] [PRIOR ...]
# Afterwards, here:  cat OUT_DIR/scaleout_progress.tgz.* | tar xz -C runs; cat OUT_DIR/sweep50k.tgz.* | tar xz -C runs
set -uo pipefail
OUT=$1
WH=${2:-.whl}
shift $(( $# < 2 ? $# : 2 ))
LIMIT=${SCALEOUT_CALL_S:-560}
RUN=runs/scaleout
t0=$(date +%s)
mkdir -p "$OUT" "$RUN"
if [ ! -f /tmp/geomem-site/env.sh ]; then
  scripts/gpu/install.sh "$WH" /tmp/geomem-site > "$RUN/install.log" 2>&1 || { tail -20 "$RUN/install.log"; exit 1; }
fi
source /tmp/geomem-site/env.sh
if [ ! -f "$RUN/driver.started" ]; then
  touch "$RUN/driver.started"
  setsid nohup bash scripts/gpu/scaleout_driver.sh "$RUN" "$@" > "$RUN/driver.log" 2>&1 < /dev/null &
  sleep 5
fi
sweep_done() { [ -f runs/sweep50k/driver.done ] || [ ! -f runs/sweep50k.driver.log ]; }
while ! { [ -f "$RUN/driver.done" ] && sweep_done; } && [ $(( $(date +%s) - t0 )) -lt "$LIMIT" ]; do sleep 10; done
cat "$RUN/driver.log"
uptime
rm -f "$OUT"/scaleout_progress.tgz.*  # pieces of <= 15 MiB (the reports' HTML is rebuilt here from the folders)
tar czf - -C runs --exclude='cache' --exclude='report.html' scaleout | split -b 15M - "$OUT/scaleout_progress.tgz."
if [ -f runs/sweep50k.driver.log ]; then SWEEP_CALL_S=0 scripts/gpu/sweep_50k.sh "$OUT" "$WH" n50_w32; fi
ls -la "$OUT"
