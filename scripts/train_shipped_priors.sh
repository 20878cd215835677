#!/usr/bin/env bash
# Train the two shipped priors (geomem/priors/shipped/n50, geomem/priors/shipped/n1000) with `geomem train`, both at once on one
# GPU (the small UNet leaves most of an H100 idle), then gather what is shipped into $OUT/ship/<name>/:
# prior weights (fp16 safetensors) + config.json, train_log.jsonl, config.toml, metrics.json, loss.png.
# Usage: scripts/train_shipped_priors.sh [RUN_DIR]     (run from the repository root)
set -euo pipefail
OUT=${1:-runs/shipped}
mkdir -p "$OUT"
for n in 50 1000; do
  python3 -m geomem.cli train --config "data/configs/train_n$n.toml" --out "$OUT/n$n" --no-progress \
    >"$OUT/n$n.log" 2>&1 &
done
wait
for n in 50 1000; do
  ship="$OUT/ship/n$n"
  mkdir -p "$ship"
  cp "$OUT/n$n/prior/model.safetensors" "$OUT/n$n/prior/config.json" "$ship/"
  cp "$OUT/n$n/train_log.jsonl" "$OUT/n$n/config.toml" "$OUT/n$n/metrics.json" "$OUT/n$n/provenance.json" "$ship/"
  cp "$OUT/n$n/figures/loss.png" "$ship/loss.png"
  cp "$OUT/n$n.log" "$ship/train.log"
done
