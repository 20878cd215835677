#!/usr/bin/env python
"""Print the markdown tables of a `geomem sweep` run folder (docs/results.md section 2 is pasted from this).

    python scripts/sweep_tables.py RUN_DIR | METRICS_JSON

Reads RUN_DIR/metrics.json only (or a metrics file given directly, e.g. a kept
benchmarks/results/h200/sweep50k/session13/metrics_n50_w32.json): training runs, unconditional-sample rates under
the primary criterion and the paper's looser d1/mean(d2..dk) < 0.7 (each beside its held-out null), and the
posterior table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from geomem.report.sweep_figures import posterior_table
from geomem.workflow.scoring import markdown_table

LOOSE = "d1/mean(d2..dk) < 0.7"


def ci(r: dict) -> str:
    return f"{r['rate']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"


def main(run_dir: str) -> None:
    path = Path(run_dir)
    m = json.loads((path if path.is_file() else path / "metrics.json").read_text())
    c = m["criterion"]
    def num(v, f):
        return format(v, f) if v is not None else "n/a"

    train = [[r["n"], r["width"], num(r["parameters"], ","), r["last_step"],
              "yes" if r.get("finished", True) else "stopped at the time limit", num(r["final_loss"], ".4f"),
              num(r["wall_s"], ".0f"), num(r["models_per_s"], ".0f")] for r in m["training"]]
    print(markdown_table(["N", "width", "parameters", "last step", "finished", "final loss", "train wall s",
                          "models/s (median)"], train), "\n")
    rows = []
    for r in m["samples"]:
        rates, loose = r["memorization"]["rates"][c], r["memorization"]["rates"][LOOSE]
        rows.append([r["n"], r["width"], r["step"], ci(rates["samples"]), f"{rates['heldout']['rate']:.3f}",
                     f"{rates['leave_one_out']['rate']:.3f}", ci(loose["samples"]), f"{loose['heldout']['rate']:.3f}",
                     f"{r['memorization']['median_ratio_k']['samples']:.3f}", r["distinct_nearest"]])
    print(markdown_table(["N", "width", "step", f"rate ({c}) [95% CI]", "held-out null", "leave-one-out null",
                          "rate (< 0.7) [95% CI]", "held-out null (< 0.7)", "median ratio", "distinct nearest"],
                         rows), "\n")
    if m["posteriors"]:
        header, prow = posterior_table(m)
        fmt = [[(int(v) if v.is_integer() and h == "distinct nearest" else f"{v:.3f}") if isinstance(v, float) else v
                for h, v in zip(header, row, strict=True)] for row in prow]
        print(markdown_table(header, fmt))
    print(f"\nstage wall times (s): {json.dumps({k: round(v) for k, v in m['stage_wall_s'].items()})}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
