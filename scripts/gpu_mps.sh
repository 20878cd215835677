# Sourced by the GPU experiment scripts. `start_mps FILE`: when GEOMEM_MPS=1, start the CUDA MPS control daemon
# (processes then share each GPU's compute instead of time-slicing it), check that CUDA still works under it, and
# write "MPS: on|failed to start|off" to FILE (a failed start is undone). `stop_mps`: quit the daemon if it runs.
start_mps() {
  if [ "${GEOMEM_MPS:-0}" = 1 ] && command -v nvidia-cuda-mps-control >/dev/null; then
    export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps_pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps_log
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    if nvidia-cuda-mps-control -d && timeout 60 python3 -c "import torch; torch.ones(1, device='cuda').sum().item()"; then
      echo "MPS: on" | tee "$1"
      return
    fi
    echo quit | nvidia-cuda-mps-control 2>/dev/null
    unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    echo "MPS: failed to start; processes time-slice the GPU" | tee "$1"
  else
    echo "MPS: off" | tee "$1"
  fi
}

stop_mps() {
  if [ -n "${CUDA_MPS_PIPE_DIRECTORY:-}" ]; then echo quit | nvidia-cuda-mps-control; fi
}
