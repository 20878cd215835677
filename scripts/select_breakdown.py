#!/usr/bin/env python
"""Which facts of the full set each prior of a `geomem select` run reproduces: rule models or exceptions, and the
copy count of each reproduced exception (docs/rules.md quotes this for the default run).

    python scripts/select_breakdown.py RUN_DIR

Reads RUN_DIR/config.toml (rebuilds the full mixture from its seed) and RUN_DIR/samples_{full,selected}.npz;
a fact is reproduced when some sample has it as nearest fact with d1/mean(d2..dk) < 0.5 (`training_coverage`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from geomem.config import load_config
from geomem.experiments.select import SelectConfig
from geomem.geology.mixtures import make_mixture_set, mixture_labels
from geomem.workflow.selection import training_coverage


def main(run_dir: str) -> None:
    run = Path(run_dir)
    cfg = load_config(SelectConfig, run / "config.toml")
    full = make_mixture_set(cfg.mixture)
    lab = mixture_labels(full)
    facts = lab.facts()
    x = full.normalized()[facts]
    for name in ("full", "selected"):
        with np.load(run / f"samples_{name}.npz") as f:
            samples = f["samples"].astype(np.float64)
        _, reproduced, _ = training_coverage(samples, x)
        idx = facts[np.nonzero(reproduced)[0]]
        copies = sorted(lab.copies(idx[lab.is_exception[idx]]).tolist(), reverse=True)
        print(f"{name}: {len(idx)} facts reproduced: {int(lab.is_rule[idx].sum())} rule models, {len(copies)} "
              f"exceptions (copies in the full set: {copies})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
