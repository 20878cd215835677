"""Priors by name: the shipped learned priors, learned-prior folders, training checkpoints, the memorized prior.

Names a recipe accepts for a prior:

- ``n50``, ``n1000``: the learned priors shipped inside the package (``geomem/priors/shipped/``; trained on the
  first N models of the default model set), found wherever geomem is installed;
- a folder written by ``geomem train`` (``config.json`` + weights);
- ``memorized``: the exact memorized prior of the first N models of the model set.

Every learned prior is checked against the model set it is used with (family, velocity range, size, and the
recorded training-set size).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from geomem.config import load_config
from geomem.errors import ConfigError, DataFileError, ShapeError
from geomem.geology import ModelSet
from geomem.priors.learned import (
    SHIPPED,
    LearnedPrior,
    UNetConfig,
    build_unet,
    check_training_set,
    load_weights,
    shipped_prior_path,
)
from geomem.priors.memorized import MemorizedPrior
from geomem.priors.training import TrainConfig

_STEP_DIR = re.compile(r"^step_(\d{7})$")


def resolve_prior_folder(spec: str | Path) -> Path:
    """A shipped prior's name or a learned-prior folder → the folder (checked to hold a ``config.json``)."""
    path = shipped_prior_path(str(spec)) if str(spec) in SHIPPED else Path(spec)
    if not (path / "config.json").is_file():
        raise DataFileError(f"prior folder {path} has no config.json; pass a folder written by `geomem train`, "
                            f"a shipped prior ({', '.join(SHIPPED)}) or \"memorized\"")
    return path


def learned_prior(spec: str | Path, ms: ModelSet, device: torch.device | str = "cpu",
                  allow_other_set: bool = False) -> LearnedPrior:
    """A learned prior by name or folder, checked against the model set ``ms`` it will be used with: family,
    velocity range and size, and (unless ``allow_other_set``) that the first N models of ``ms`` are the ones it was
    trained on (:func:`~geomem.priors.learned.check_training_set`)."""
    prior = LearnedPrior.from_pretrained(resolve_prior_folder(spec), device=device)
    prior.check_model_set(ms.family, ms.vmin, ms.vmax, tuple(ms.shape[1:]))
    check_training_set(prior, ms, allow_other_set=allow_other_set, where=f"the model set of prior {spec}")
    if tuple(prior.model_shape) != tuple(ms.shape):
        raise ShapeError(f"prior {spec} takes models of shape {prior.model_shape}, the model set has {ms.shape}")
    return prior


def training_size(prior: LearnedPrior, spec: str | Path) -> int:
    """The number of models the prior was trained on (recorded at training)."""
    n = int((prior.model_set or {}).get("n", 0))
    if n < 2:
        raise ConfigError(f"prior {spec} does not record its training-set size; it cannot be compared")
    return n


def memorized_prior(train_x: np.ndarray, device: torch.device | str = "cpu") -> MemorizedPrior:
    """The exact memorized prior of training models in prior coordinates (float32)."""
    return MemorizedPrior(torch.as_tensor(np.asarray(train_x), dtype=torch.float32).to(device))


def load_prior(spec: str, ms: ModelSet, n_train: int, device: torch.device | str = "cpu",
               allow_other_set: bool = False):
    """``memorized`` (the first ``n_train`` models of ``ms``) or a learned prior by name or folder.

    ``device`` places a learned prior's network; the memorized prior stays on the CPU, where its exact posterior
    is drawn (as in ``compare``)."""
    if spec == "memorized":
        if n_train > len(ms):
            raise ConfigError(f"n_train = {n_train} but the model set has {len(ms)} models")
        return memorized_prior(ms.normalized()[:n_train])
    return learned_prior(spec, ms, device, allow_other_set)


def unet_of_width(width: int, levels: int, attention_last: bool = True, layers_per_block: int = 1,
                  norm_groups: int = 8, attention_head_dim: int = 32) -> UNetConfig:
    """UNet of base width ``w``: channels ``(w, 2w, …, 2^(L−1) w)``; attention at the coarsest level when
    ``attention_last`` (and always in diffusers' middle block)."""
    if width % norm_groups:
        raise ConfigError(f"UNet width {width} must be a multiple of its GroupNorm groups ({norm_groups})")
    return UNetConfig(channels=tuple(width * 2**level for level in range(levels)),
                      attention=(False,) * (levels - 1) + (attention_last,), layers_per_block=layers_per_block,
                      norm_groups=norm_groups, attention_head_dim=attention_head_dim)


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``[(step, folder)]`` of a training run's checkpoints, by step (temporary folders ignored)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir())


def checkpoint_prior(run_dir: Path, ckpt: Path, device: torch.device | str = "cpu") -> LearnedPrior:
    """The EMA weights of one checkpoint as a :class:`LearnedPrior`, built from the run's ``config.toml``.

    Only ``ema.safetensors`` is read (any float dtype; GPU runs may ship them as fp16 without optimizer state).
    """
    cfg_path = Path(run_dir) / "config.toml"
    if not cfg_path.is_file():
        raise DataFileError(f"{cfg_path} is missing; {run_dir} is not a geomem train run folder")
    tcfg = load_config(TrainConfig, cfg_path)
    weights = Path(ckpt) / "ema.safetensors"
    if not weights.is_file():
        raise DataFileError(f"{weights} is missing; the checkpoint is incomplete (rerun the train stage)")
    unet = build_unet(tcfg.model, tuple(tcfg.data.size))
    load_weights(unet, weights)
    d = tcfg.data
    meta = {"family": d.family, "vmin": d.vmin, "vmax": d.vmax, "size": list(d.size), "n": d.n, "seed": d.seed,
            "spacing": d.spacing}
    return LearnedPrior(unet.to(device).eval(), tcfg.noise.sigma_data, (tcfg.noise.sigma_min, tcfg.noise.sigma_max),
                        model_set=meta)
