"""Case 4: training throughput of the shipped UNet (models/s).

Measured in this run on CPU at a small size (the shipped ``train_n50`` network on 32² models, fp32, one
thread) with :func:`benchmarks.bench_training.bench_train` (warm-up steps, then timed optimizer steps).
GPU numbers are not re-measured: they are read from the stored results of ``benchmarks/bench_training.py``
on the H100 (``benchmarks/results/training_gpu_b*.json``: fp32, fp32 + channels-last, bf16 + channels-last)
and marked as stored. ``torch.compile`` was not measured.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_training import bench_train
from geomem.config import load_config
from geomem.priors.training import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
FULL = {"size": 32, "batch": 8, "steps": 10, "warmup": 2, "repeats": 3}
QUICK = {"size": 16, "batch": 2, "steps": 1, "warmup": 1, "repeats": 1}


def run(quick: bool) -> dict:
    cfg = QUICK if quick else FULL
    base = load_config(TrainConfig, ROOT / "data" / "configs" / "train_n50.toml")
    data_cfg = dataclasses.replace(base.data, size=(cfg["size"], cfg["size"]))
    tc = dataclasses.replace(base, data=data_cfg, batch_size=cfg["batch"], bf16=False, channels_last=False)
    data = np.random.default_rng(0).uniform(-1, 1, (max(base.data.n, cfg["batch"]), 1, cfg["size"], cfg["size"]))
    data = data.astype(np.float32)
    rates = []
    for _ in range(cfg["repeats"]):
        rates.append(bench_train(tc, data, torch.device("cpu"), cfg["steps"], cfg["warmup"]))
    stored = []
    for path in sorted((ROOT / "benchmarks" / "results").glob("training_gpu_b*.json")):
        rec = json.loads(path.read_text())
        stored.append({"file": str(path.relative_to(ROOT)), "device": rec["device"], "batch": rec["batch_size"],
                       "size": rec["model_size"], "train": rec["train"],
                       "bf16_speedup_over_fp32": rec.get("bf16_speedup_over_fp32"),
                       "file_mtime": time.strftime("%Y-%m-%d", time.gmtime(path.stat().st_mtime))})
    return {"config": cfg, "cpu": {"threads": torch.get_num_threads(), "models_per_s": rates,
                                   "median_models_per_s": float(np.median(rates))}, "gpu_stored": stored}


def table(result: dict) -> list[list[str]]:
    c, cfg = result["cpu"], result["config"]
    out = [["training cpu fp32", f"{cfg['size']}² batch {cfg['batch']}", f"{c['median_models_per_s']:.3g} models/s",
            f"min {min(c['models_per_s']):.3g} max {max(c['models_per_s']):.3g}", f"{c['threads']} thread(s)", ""]]
    for s in result["gpu_stored"]:
        for t in s["train"]:
            out.append([f"training gpu ({s['device']}, stored)", f"{s['size'][0]}² batch {s['batch']}",
                        f"{t['models_per_s']:.4g} models/s", t["what"], s["file"], ""])
    return out
