#!/usr/bin/env bash
# Stop one run of a running scripts/gpu/sweep_50k_driver.sh and free its GPU share: its lane (the driver's subshell
# that trains the run, then samples it, then goes on to the lane's next run) and its `geomem sweep` process, which
# on SIGTERM saves a checkpoint at the current step (geomem.priors.training), so the run can be resumed later by
# scripts/gpu/sweep_50k.sh. Only processes whose command line is a `geomem.cli sweep` of that run are signalled, and
# a lane only when it is the driver's subshell (never PID 1).
# Usage (repository root, on the GPU machine):  scripts/gpu/sweep_stop.sh RUN [RUN ...]   (e.g. n50_w32)
set -uo pipefail
[ $# -gt 0 ] || { echo "usage: scripts/gpu/sweep_stop.sh RUN [RUN ...]" >&2; exit 2; }
status=0
for run in "$@"; do
  mapfile -t pids < <(pgrep -f -- "geomem\.cli sweep .*--run $run( |\$)")
  if [ ${#pids[@]} -eq 0 ]; then echo "no geomem sweep process of $run" >&2; status=1; continue; fi
  for pid in "${pids[@]}"; do
    lane=$(ps -o ppid= -p "$pid" | tr -d ' ')
    if [ -n "$lane" ] && [ "$lane" -gt 1 ] && tr '\0' ' ' < "/proc/$lane/cmdline" | grep -q "sweep_50k_driver\.sh"; then
      kill "$lane" && echo "$run: stopped its lane (pid $lane)"
    fi
    kill "$pid" && echo "$run: sent SIGTERM to pid $pid (it saves a checkpoint and exits)"
  done
done
exit $status
