#!/usr/bin/env bash
# Prepare, on a machine that reaches PyPI, the wheels geomem needs beyond a PyTorch CUDA image, for a GPU machine
# that has no package registry (docs/gpu.md). Nothing is installed here: wheels are downloaded (or, for a pure-Python
# package published only as a source archive, built) into WHEELHOUSE, kept out of git (.gitignore: /.whl/).
#
# Usage (repository root):  scripts/gpu/prepare_wheelhouse.sh [WHEELHOUSE=.whl]
#   PY_VERSION   target interpreter (default 3.12: `python3 --version` on the GPU machine)
#   PLATFORMS    manylinux tags to accept (default: manylinux 2.17-2.28 x86_64)
#   EXTRA        more "name==version" requirements to add (space separated), e.g. packages your image lacks
#
# Two groups (pins copied from the development environment, pyproject.toml and Devito's metadata):
#   wheels/  always installed by scripts/gpu/install.sh: Devito and its pure-Python helpers, diffusers, dask and
#            distributed with the pieces a scientific PyTorch image usually lacks, segyio.
#   pins/    installed there only when the machine's own version breaks Devito's bounds (numpy<=2.4.3,
#            sympy<1.15, multidict<6.3, packaging<26.3): install.sh checks each one.
# The Devito wheel is repacked without its bundled examples/ folder (35 of its 36 MB; geomem does not use it, see
# docs/architecture.md), so that the whole wheelhouse stays well under 64 MiB.
set -euo pipefail
DEST=${1:-.whl}
PY_VERSION=${PY_VERSION:-3.12}
PLATFORMS=${PLATFORMS:-"manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64"}
PY=${PYTHON:-python3}
ALWAYS="devito==4.8.23 cgen==2025.1 codepy==2023.1 pytools==2026.1.1 anytree==2.13.0 platformdirs==4.14.9
siphash24==1.9 diffusers==0.42.1 importlib_metadata==10.2.0 dask==2026.8.0 distributed==2026.8.0 tornado==6.6.1
tblib==3.2.2 zict==3.0.0 locket==1.0.0 partd==1.4.2 segyio==1.9.14 ${EXTRA:-}"
PINS="numpy==2.4.3 sympy==1.14.0 multidict==6.2.0 packaging==26.2"
plat=()
for p in $PLATFORMS; do plat+=(--platform "$p"); done
rm -rf "$DEST"
mkdir -p "$DEST/wheels" "$DEST/pins"

fetch() {  # fetch REQ DIR: a binary wheel for the target, else a pure-Python wheel built from the sdist
  if ! "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
      "${plat[@]}" -d "$2" "$1" 2>/dev/null; then
    "$PY" -m pip wheel -q --no-deps -w "$2" "$1"
  fi
}
for req in $ALWAYS; do fetch "$req" "$DEST/wheels"; done
for req in $PINS; do fetch "$req" "$DEST/pins"; done
for w in "$DEST"/wheels/*.whl "$DEST"/pins/*.whl; do  # a wheel built here must be pure Python to run there
  case "$w" in *-none-any.whl|*-cp"${PY_VERSION/./}"-*|*-abi3-*) ;; *) echo "not usable on cp$PY_VERSION: $w" >&2; exit 1;; esac
done

# Devito without examples/: drop those files and their RECORD lines (the RECORD stays exact for the rest)
"$PY" - "$DEST"/wheels/devito-*.whl <<'PY'
import sys, zipfile, os
src = sys.argv[1]
tmp = src + ".tmp"
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
    for info in zin.infolist():
        name = info.filename
        if name.startswith("examples/"):
            continue
        data = zin.read(name)
        if name.endswith(".dist-info/RECORD"):
            data = b"".join(line for line in data.splitlines(keepends=True) if not line.startswith(b"examples/"))
        if name.endswith(".dist-info/top_level.txt"):
            data = b"".join(line for line in data.splitlines(keepends=True) if line.strip() != b"examples")
        zout.writestr(info, data)
os.replace(tmp, src)
PY
du -sh "$DEST" "$DEST"/wheels "$DEST"/pins
ls "$DEST"/wheels "$DEST"/pins
