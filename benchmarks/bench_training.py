"""Training throughput (models/s) and unconditional sampling time per model for the shipped prior configuration.

Training: fp32 (contiguous), fp32 + channels-last, bf16 autocast + channels-last, measured in the same process
on the same random normalized models (throughput does not depend on the data's content). Sampling: 50-step
Heun (99 network evaluations + the final denoise) with the EMA-free freshly initialized network (same cost).

    python benchmarks/bench_training.py [--config data/configs/train_n50.toml] [--steps 100] [--sample-batch 16]

Prints a table and writes ``benchmarks/results/training_<cpu|gpu>_b<batch>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from geomem.config import load_config
from geomem.priors.sampling import karras_sigmas, sample
from geomem.priors.training import TrainConfig, Trainer
from geomem.runs import write_json


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def bench_train(cfg: TrainConfig, data: np.ndarray, dev: torch.device, steps: int, warmup: int) -> float:
    tr = Trainer(cfg, data, device=dev)
    for _ in range(warmup):
        tr.train_step()
    _sync(dev)
    t = time.perf_counter()
    for _ in range(steps):
        tr.train_step()
    _sync(dev)
    return steps * cfg.batch_size / (time.perf_counter() - t)


def bench_sample(cfg: TrainConfig, data: np.ndarray, dev: torch.device, n: int, steps: int = 50) -> float:
    prior = Trainer(dataclasses.replace(cfg, channels_last=False), data, device=dev).ema_prior()
    prior.unet.eval()
    sig = karras_sigmas(steps)
    sample(prior, min(n, 2), sig[:3], "heun", generator=0, device=dev)  # warm-up
    _sync(dev)
    t = time.perf_counter()
    sample(prior, n, sig, "heun", generator=0, device=dev)
    _sync(dev)
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="data/configs/train_n50.toml")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--sample-batch", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=0, help="override the config's batch size")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    cfg = load_config(TrainConfig, args.config)
    if args.batch_size:
        cfg = dataclasses.replace(cfg, batch_size=args.batch_size)
    dev = torch.device("cuda" if (args.device == "auto" and torch.cuda.is_available()) else
                       ("cpu" if args.device == "auto" else args.device))
    rng = np.random.default_rng(0)
    data = rng.uniform(-1, 1, (max(cfg.data.n, cfg.batch_size), 1, *cfg.data.size)).astype(np.float32)
    rows = []
    variants = [("fp32", False, False), ("fp32+channels_last", False, True), ("bf16+channels_last", True, True)]
    if dev.type == "cpu":
        variants = variants[:1]
    for name, bf16, cl in variants:
        c = dataclasses.replace(cfg, bf16=bf16, channels_last=cl)
        rows.append({"what": f"train {name}", "models_per_s": bench_train(c, data, dev, args.steps, args.warmup)})
    s_per_model = bench_sample(cfg, data, dev, args.sample_batch)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    result = {
        "device": name, "torch": torch.__version__, "config": args.config, "batch_size": cfg.batch_size,
        "model_size": list(cfg.data.size), "unet_channels": list(cfg.model.channels), "train_steps_timed": args.steps,
        "train": rows, "sampling_heun50_s_per_model": s_per_model, "sampling_batch": args.sample_batch,
    }
    if len(rows) == 3:
        result["bf16_speedup_over_fp32"] = rows[2]["models_per_s"] / rows[0]["models_per_s"]
    print(f"device: {name}   batch {cfg.batch_size}   UNet channels {list(cfg.model.channels)}")
    for r in rows:
        print(f"  {r['what']:28s} {r['models_per_s']:10.1f} models/s")
    if "bf16_speedup_over_fp32" in result:
        print(f"  bf16 speed-up over fp32       {result['bf16_speedup_over_fp32']:.2f}x")
    print(f"  sampling, Heun 50 steps        {s_per_model * 1e3:10.1f} ms/model (batch {args.sample_batch})")
    tag = ("gpu" if dev.type == "cuda" else "cpu") + f"_b{cfg.batch_size}"
    path = write_json(Path(args.out) / f"training_{tag}.json", result)
    print(f"wrote {path}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
