#!/usr/bin/env bash
# Install, on a CUDA machine without a package registry, the wheelhouse made by scripts/gpu/prepare_wheelhouse.sh,
# then check that geomem runs there (docs/gpu.md). Nothing goes into the system's site-packages: the wheels are
# unpacked into TARGET (pip --target, no index, no dependency resolution) and TARGET/env.sh puts TARGET and this
# checkout on PYTHONPATH. The machine must already have python3 with PyTorch (CUDA build), SciPy, matplotlib,
# scikit-image, typer, rich, tqdm, safetensors, huggingface-hub, cloudpickle, toolz, msgpack, psutil, pyyaml and a C
# compiler (gcc) for Devito; the check at the end names anything still missing.
#
# Usage (repository root):  scripts/gpu/install.sh [WHEELHOUSE=.whl] [TARGET=/tmp/geomem-site]
#   then:                   source TARGET/env.sh; python3 -m geomem.cli --help
set -euo pipefail
WH=${1:-.whl}
TARGET=${2:-/tmp/geomem-site}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
t0=$(date +%s.%N)
[ -d "$WH/wheels" ] || { echo "no wheelhouse at $WH/wheels: run scripts/gpu/prepare_wheelhouse.sh first" >&2; exit 2; }
# pins/: only those whose version on this machine breaks Devito's bounds (checked with the machine's own packages)
mapfile -t PINS < <(python3 - "$WH"/pins/*.whl <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
from packaging.specifiers import SpecifierSet
bounds = {"numpy": ">=1.26,<=2.4.3", "sympy": ">=1.12.1,<1.15", "multidict": "<6.3", "packaging": "<26.3"}
for wheel in sys.argv[1:]:
    name = wheel.rsplit("/", 1)[-1].split("-")[0].lower()
    try:
        ok = version(name) in SpecifierSet(bounds.get(name, ""))
    except PackageNotFoundError:
        ok = False
    if not ok:
        print(wheel)
PY
)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$TARGET" \
  "$WH"/wheels/*.whl "${PINS[@]}"
cat > "$TARGET/env.sh" <<ENV
# source me: geomem from $REPO with the wheels in $TARGET (serial Devito per process; Dask spreads the processes)
export PYTHONPATH="$REPO:$TARGET\${PYTHONPATH:+:\$PYTHONPATH}"
export OMP_NUM_THREADS=\${OMP_NUM_THREADS:-1} DEVITO_LANGUAGE=\${DEVITO_LANGUAGE:-C} DEVITO_LOGGING=\${DEVITO_LOGGING:-WARNING}
export MPLBACKEND=\${MPLBACKEND:-Agg}
ENV
t1=$(date +%s.%N)
source "$TARGET/env.sh"
python3 - <<'PY'
import importlib, os
missing = []
for mod in ("numpy", "scipy", "torch", "devito", "diffusers", "dask", "distributed", "matplotlib", "skimage", "typer",
            "rich", "tqdm", "safetensors", "segyio", "geomem", "geomem.cli"):
    try:
        importlib.import_module(mod)
    except Exception as exc:  # noqa: BLE001
        missing.append(f"{mod} ({type(exc).__name__}: {exc})")
if missing:
    raise SystemExit("geomem cannot run here; missing or broken: " + "; ".join(missing)
                     + " (add them to EXTRA in scripts/gpu/prepare_wheelhouse.sh)")
import devito, numpy, sympy, torch
gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
print(f"geomem ready: torch {torch.__version__}, GPUs {gpus or 'none'}, devito {devito.__version__}, "
      f"numpy {numpy.__version__}, sympy {sympy.__version__}, {os.cpu_count()} CPU cores")
PY
t2=$(date +%s.%N)
echo "installed into $TARGET in $(python3 -c "print(f'{$t1-$t0:.1f}')") s (import check $(python3 -c "print(f'{$t2-$t1:.1f}')") s); pins installed: ${#PINS[@]}"
echo "use: source $TARGET/env.sh"
