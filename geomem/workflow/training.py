"""Training several priors with one budget and drawing their unconditional samples (shared by ``geomem rules``,
``geomem select`` and ``geomem sweep``)."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from geomem.config import Settings
from geomem.errors import ConfigError
from geomem.priors.learned import UNetConfig
from geomem.priors.sampling import karras_sigmas, sample
from geomem.priors.training import DataConfig, OptimConfig, TrainConfig, resolve_device, train
from geomem.runs import write_npz
from geomem.workflow.priors import unet_of_width


@dataclass(frozen=True)
class TrainingSettings(Settings):
    """One budget for every prior: ``steps`` optimizer steps of ``batch_size`` (see :mod:`geomem.priors.training`)."""

    steps: int = field(default=2000, metadata={"min": 1})
    batch_size: int = field(default=64, metadata={"min": 1})
    lr: float = field(default=2e-4, metadata={"gt": 0})
    warmup_steps: int = field(default=200, metadata={"min": 0})
    levels: int = field(default=3, metadata={"min": 1})
    bf16: bool = False
    device: str = "auto"


def capacity_unet(c: int, levels: int) -> UNetConfig:
    """UNet of base width ``c``: channels ``(c, 2c, …, 2^(L−1) c)``, attention only in the middle block."""
    if c % 4:
        raise ConfigError(f"capacity {c} must be a multiple of 4 (GroupNorm groups); use e.g. 8, 16, 32")
    return unet_of_width(c, levels, attention_last=False, norm_groups=4 if c % 8 else 8, attention_head_dim=c)


def train_config(t: TrainingSettings, capacity: int, size: int, seed: int, name: str) -> TrainConfig:
    return TrainConfig(name=name, seed=seed, steps=t.steps, batch_size=t.batch_size, device=t.device, bf16=t.bf16,
                       log_every=max(1, min(50, t.steps)), data=DataConfig(size=(size, size)),
                       model=capacity_unet(capacity, t.levels),
                       optim=OptimConfig(lr=t.lr, warmup_steps=min(t.warmup_steps, t.steps)))


def _train_job(cfg: TrainConfig, out: str, set_path: str) -> str:
    from geomem.geology import ModelSet

    train(cfg, out, data=ModelSet.load(set_path), progress=False)
    return out


def train_all(jobs: list[tuple[TrainConfig, Path, Path]], workers: int) -> None:
    """Train every ``(config, run folder, model-set file)`` not already finished (``prior/config.json`` present);
    ``workers > 1`` runs that many training processes at once (e.g. several small UNets on one GPU). With
    ``device = "auto"`` and several visible GPUs, job ``i`` trains on ``cuda:(i mod #GPUs)``."""
    n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    todo = [(dataclasses.replace(c, device=f"cuda:{i % n_gpu}") if c.device == "auto" and n_gpu > 1 else c,
             str(o), str(s)) for i, (c, o, s) in enumerate(jobs) if not (o / "prior" / "config.json").is_file()]
    if workers <= 1:
        for job in todo:
            _train_job(*job)
        return
    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
        for f in cf.as_completed([ex.submit(_train_job, *job) for job in todo]):
            f.result()


def eval_device(t: TrainingSettings) -> torch.device:
    return resolve_device(t.device)


def prior_samples(prior, path: Path, n: int, steps: int, seed: int, device) -> np.ndarray:
    """``n`` unconditional Heun samples (``steps`` Karras noise levels, σ 20 → 0.005) of a trained prior, reused from
    ``path`` when it holds samples drawn with the same ``n``, ``steps`` and ``seed`` (so a CPU rerun that adds the
    posteriors scores the very samples a GPU run drew). Samples are kept in float32; both paths return those
    float32 values as float64, so a reused run and a fresh one score identical arrays."""
    if path.is_file():
        with np.load(path) as f:
            if "sample_settings" in f.files and f["sample_settings"].tolist() == [n, steps, seed]:
                return f["samples"].astype(np.float64)
    smp = sample(prior, n, karras_sigmas(steps, 0.005, 20.0), "heun", generator=seed, device=device,
                 batch_size=256).cpu().numpy().astype(np.float32)
    write_npz(path, samples=smp, sample_settings=np.array([n, steps, seed]))
    return smp.astype(np.float64)
