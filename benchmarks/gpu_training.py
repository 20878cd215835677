"""Training on one GPU: throughput of the fp32 path against the fast path, and the bf16-vs-fp32 equivalence check.

Network: the shipped width-32 UNet (``data/configs/train_n50.toml``: channels 32/64/128, 2.7 M parameters) on
64² models.

    python -m benchmarks.gpu_training throughput VARIANT [VARIANT ...] --out FILE.json
        VARIANT = name:bf16:channels_last:compile:batch[:nobench], e.g. fp32:0:0:off:128, fast:1:0:default:512
        or graphs_nobench:1:0:reduce-overhead:128:nobench. Per variant, in this process: a Trainer on random
        normalized models (cuDNN benchmark mode on, as the Trainer sets it on CUDA; ``nobench`` turns it off
        after the Trainer is built, to measure what it brings), ``warmup`` optimizer steps (the first one
        compiles; its wall time is reported as ``first_steps_s``), then ``steps`` timed steps with the device
        synchronized around them: models/s = steps · batch / time. A variant that fails records its error (a
        CUDA error can poison the process: run risky variants in their own process). The JSON is rewritten
        after every variant, so a run stopped by a time limit keeps the variants it finished.
    python -m benchmarks.gpu_training equivalence --steps 1500 --out FILE.json
        Three trainings of the N = 50 prior (the shipped model set) at batch 128 with identical settings and
        data: fp32 eager (seed 0), the fast path (seed 0) and the fast path (seed 1; stopped half way and
        resumed, which checks resume on the GPU). Reported: the logged loss curves, the mean absolute
        difference of the logged losses fp32 ↔ fast (same seed) against fast seed 0 ↔ seed 1 (the noise), and
        memorization rates (d1/d2 < 1/3, bootstrap 95 % interval) of 256 unconditional samples of each EMA
        prior (Heun, 32 σ points) beside the leave-one-out null, with each run's logged models/s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import save_json
from geomem.config import load_config
from geomem.priors.training import TrainConfig, Trainer, load_training_set, train, training_array

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "data" / "configs" / "train_n50.toml"


def _variant(spec: str) -> dict:
    name, bf16, cl, comp, batch, *rest = spec.split(":")
    if rest not in ([], ["nobench"]):
        raise SystemExit(f"variant {spec!r}: the optional sixth field is 'nobench'")
    return {"name": name, "bf16": bf16 == "1", "channels_last": cl == "1", "compile": comp, "batch": int(batch),
            "cudnn_benchmark": not rest}


def throughput(specs: list[str], steps: int, warmup: int, on_row=None) -> list[dict]:
    base = load_config(TrainConfig, CONFIG)
    rows = []
    for spec in specs:
        v = _variant(spec)
        cfg = dataclasses.replace(base, bf16=v["bf16"], channels_last=v["channels_last"], compile=v["compile"],
                                  batch_size=v["batch"], device="cuda")
        data = np.random.default_rng(0).uniform(-1, 1, (max(50, v["batch"]), 1, 64, 64)).astype(np.float32)
        row = dict(v)
        try:
            tr = Trainer(cfg, data)
            torch.backends.cudnn.benchmark = v["cudnn_benchmark"]
            t0 = time.perf_counter()
            for _ in range(warmup):
                tr.train_step()
            torch.cuda.synchronize()
            row["first_steps_s"] = time.perf_counter() - t0
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(steps):
                loss = tr.train_step()
            stop.record()
            torch.cuda.synchronize()
            dt = start.elapsed_time(stop) / 1e3
            row.update(steps=steps, seconds=dt, models_per_s=steps * v["batch"] / dt, ms_per_step=1e3 * dt / steps,
                       final_loss=float(loss), finite=bool(torch.isfinite(loss)),
                       peak_gib=torch.cuda.max_memory_allocated() / 2**30)
            del tr
        except Exception as exc:  # noqa: BLE001  (recorded, not hidden: the row says it failed and why)
            row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        print(json.dumps(row), flush=True)
        rows.append(row)
        if on_row is not None:
            on_row(rows)
    return rows


def _memorization(prior_dir: Path, train_x: np.ndarray, n: int = 256) -> dict:
    from geomem.metrics.memorization import bootstrap_rate, memorization_ratios
    from geomem.priors.learned import LearnedPrior
    from geomem.priors.sampling import karras_sigmas, sample

    prior = LearnedPrior.from_pretrained(prior_dir, device="cuda")
    prior.unet.eval()
    with torch.no_grad():
        x = sample(prior, n, karras_sigmas(32), "heun", generator=0, device="cuda")
    r = memorization_ratios(x.double().cpu().numpy(), train_x)
    rate = bootstrap_rate(r.ratio_12 < 1 / 3, rng=0)
    return {"rate_ratio12": rate.to_dict(), "median_d1": float(np.median(r.d1))}


def equivalence(steps: int, workdir: Path, out_path: Path | None = None) -> dict:
    from geomem.metrics.memorization import bootstrap_rate, memorization_ratios

    base = load_config(TrainConfig, CONFIG)
    base = dataclasses.replace(base, steps=steps, batch_size=128, log_every=50, checkpoint_steps=(),
                               checkpoint_every=0, channels_last=False, device="cuda",
                               optim=dataclasses.replace(base.optim, warmup_steps=200))
    arr, meta = training_array(load_training_set(base.data))
    flat = arr.reshape(arr.shape[0], -1).astype(np.float64)
    loo = memorization_ratios(flat, flat, exclude_self=True)
    out = {"steps": steps, "batch": 128, "n_train": int(arr.shape[0]),
           "null_leave_one_out_rate12": bootstrap_rate(loo.ratio_12 < 1 / 3, rng=0).to_dict(), "runs": {}}
    runs = {"fp32_seed0": dict(bf16=False, compile="off", seed=0),
            "fast_seed0": dict(bf16=True, compile="default", seed=0),
            "fast_seed1_resumed": dict(bf16=True, compile="default", seed=1)}
    for name, kw in runs.items():
        cfg = dataclasses.replace(base, name=name, **kw)
        run_dir = workdir / name
        t0 = time.perf_counter()
        if name.endswith("resumed"):
            first = train(cfg, run_dir, data=arr, stop_at=steps // 2, progress=False)
            res = train(cfg, run_dir, data=arr, resume=True, progress=False)
            resumed_at = first.steps_done
        else:
            res, resumed_at = train(cfg, run_dir, data=arr, progress=False), None
        wall = time.perf_counter() - t0
        log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
        speeds = [r["models_per_s"] for r in log if np.isfinite(r["models_per_s"])]
        out["runs"][name] = {"settings": kw, "wall_s": wall, "resumed_at": resumed_at, "steps_done": res.steps_done,
                             "loss_curve": [[r["step"], r["loss"]] for r in log],
                             "models_per_s_median": float(np.median(speeds)) if speeds else None,
                             "memorization": _memorization(res.prior_dir, flat)}
        print(name, json.dumps({k: v for k, v in out["runs"][name].items() if k != "loss_curve"}), flush=True)
        if out_path is not None:  # partial results survive a later failure or timeout
            out_path.write_text(json.dumps(out, indent=1))

    def curve(name):
        return {s: loss for s, loss in out["runs"][name]["loss_curve"]}

    a, b, c = curve("fp32_seed0"), curve("fast_seed0"), curve("fast_seed1_resumed")
    common = sorted(set(a) & set(b) & set(c) - {0})
    out["mean_abs_loss_diff_fp32_vs_fast_same_seed"] = float(np.mean([abs(a[k] - b[k]) for k in common]))
    out["mean_abs_loss_diff_fast_seed0_vs_seed1"] = float(np.mean([abs(b[k] - c[k]) for k in common]))
    last = common[-max(1, len(common) // 5):]
    out["final_fifth_mean_loss"] = {n: float(np.mean([d[k] for k in last]))
                                    for n, d in (("fp32_seed0", a), ("fast_seed0", b), ("fast_seed1_resumed", c))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["throughput", "equivalence"])
    ap.add_argument("variants", nargs="*")
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=15)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/geomem_equivalence"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    info = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if args.what == "throughput":
        args.out.parent.mkdir(parents=True, exist_ok=True)

        def save(rows):
            args.out.write_text(json.dumps({"what": "throughput", **info, "rows": rows}, indent=1))

        res = {"what": "throughput", **info, "rows": throughput(args.variants, args.steps or 40, args.warmup, save)}
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        res = {"what": "equivalence", **info, **equivalence(args.steps or 1500, args.workdir, args.out)}
    save_json(args.out, res)


if __name__ == "__main__":
    main()
