#!/usr/bin/env python
"""Write one checkpoint of a training run (a `geomem sweep` run's train/<run> folder) as a learned-prior folder.

    python scripts/checkpoint_prior.py TRAIN_RUN_DIR STEP OUT_DIR

The EMA weights of TRAIN_RUN_DIR/checkpoints/step_<STEP> (fp16 in a packed GPU sweep, saved here in the UNet's
float32) with the run's config, in the format of `LearnedPrior.save_pretrained`, so that `geomem compare`,
`geomem validate-samplers` (``fwi.learned``) and `geomem invert` take OUT_DIR as a prior. E.g. the 50,000-step
priors of docs/results.md 2b:
    python scripts/checkpoint_prior.py runs/sweep50k/train/n1000_w32 50000 runs/priors50k/n1000_50k
"""

from __future__ import annotations

import sys
from pathlib import Path

from geomem.workflow.priors import checkpoint_prior


def main(run: str, step: str, out: str) -> None:
    prior = checkpoint_prior(Path(run), Path(run) / "checkpoints" / f"step_{int(step):07d}")
    print(prior.save_pretrained(Path(out)), prior.model_set)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
