"""Train a :class:`~geomem.priors.learned.LearnedPrior` on a model set (denoising score matching, EDM recipe).

Objective, over minibatches of normalized training models ``x₀`` (shape ``(B, 1, nz, nx)``):

    L(θ) = E_{σ ~ p(σ), x₀, ε ~ N(0, I)} [ λ(σ) ‖D_θ(x₀ + σ ε, σ) − x₀‖² ] / (nz · nx)

with ``λ(σ) = (σ² + σ_d²)/(σ σ_d)²`` (see :mod:`geomem.priors.learned`) and ``ln σ ~ N(P_mean, P_std²)``
(``noise.distribution = "lognormal"``, EDM) or ``ln σ ~ U(ln σ_lo, ln σ_hi)`` (``"loguniform"``). Its minimizer
over all functions is the exact memorized denoiser of the training set (the Gaussian-mixture posterior mean),
which is what a network that memorizes converges to.

Recipe: AdamW, linear warm-up then cosine decay to ``min_lr_ratio · lr``, gradient-norm clipping, an EMA of
the weights (decay ``min(ema_decay, (1 + k)/(10 + k))`` at step k), bf16 autocast and channels-last memory on
CUDA only, no augmentation unless ``augment = true`` (random horizontal flips). The whole training set lives
on the device; minibatch indices, σ and ε come from one seeded generator whose state is checkpointed.

Fast path (CUDA, one process): ``compile = "default"`` or ``"reduce-overhead"`` runs the loss (preconditioning,
UNet forward, weighted error) through ``torch.compile`` (fused GroupNorm/SiLU/elementwise kernels; with
``"reduce-overhead"`` the compiled forward and backward are replayed as CUDA graphs), and the backward is the
compiled graph's; ``"max-autotune-no-cudagraphs"`` and ``"max-autotune"`` (with CUDA graphs) also time Triton
templates for the matrix products and convolutions at compile time (minutes). The optimizer (fused AdamW),
clipping and EMA stay as they are. Everything else (data, σ, ε, checkpoints, resume of the same settings) is
unchanged; on the CPU, or with several processes, the setting is ignored (the eager loss runs). cuDNN's
benchmark mode is left as the process has it (off by default): on the H200 it gave 8,917 against 8,911 models/s
at batch 128 (docs/benchmarks.md), not worth two CUDA runs of the same seed differing by rounding.
``docs/gpu.md`` has the throughput and the bf16-vs-fp32 check.

Run folder::

    <run>/config.toml, provenance.json         resolved settings (a resumed run must use the same)
    <run>/train_log.jsonl                       one JSON line per log interval: step, loss, lr, models_per_s
    <run>/checkpoints/step_XXXXXXX/             model.safetensors, ema.safetensors, state.pt, complete.json
    <run>/prior/                                final EMA weights (LearnedPrior.save_pretrained)
    <run>/metrics.json, figures/loss.png

A checkpoint is written into a temporary folder and renamed into place, so a killed run never leaves a
broken one; ``complete.json`` holds the SHA-256 of every file and is checked on resume. ``resume=True``
continues from the last checkpoint bit for bit (weights, EMA, optimizer, LR schedule, generator state).
SIGINT/SIGTERM save a checkpoint at the current step and stop cleanly.

Data parallel (``WORLD_SIZE > 1``, started by ``accelerate launch`` or ``torchrun``): R processes, one per GPU
(or R CPU processes on the gloo backend when ``device = "cpu"``). ``batch_size`` is the *global* batch B and must
be divisible by R. Every rank draws the whole global batch (indices, flips, σ, ε) from the same seeded generator,
exactly as one process would, and keeps rows ``[r B/R, (r+1) B/R)``; the network is wrapped in DDP by
``accelerate.Accelerator.prepare``, so the gradient is the all-reduced mean ``(1/R) Σ_r ∇ L_r`` = ∇ of the
global-batch loss. Gradient clipping, the AdamW step, the LR schedule and the EMA then run identically on every
rank, so all ranks hold the same weights, and the run equals the one-process run up to the float32 rounding of
the all-reduce (summation order) and of per-rank convolutions on smaller batches. Only the main process writes
the run folder, the log, checkpoints and the prior, with a barrier after each write; resume loads the same
checkpoint on every rank; a stop signal on any rank is agreed on by all ranks (all-reduce) at every step.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geomem.config import dump_toml, to_dict
from geomem.errors import CheckpointError, ConfigError, DivergenceError, ShapeError, ValueRangeError
from geomem.memory import check_fits
from geomem.priors.learned import LearnedPrior, UNetConfig, _sha256, build_unet, load_weights, models_sha256
from geomem.priors.prior_config import estimated_parameters
from geomem.runs import RunFolder, check_plain_name, write_json, write_text


@dataclass(frozen=True)
class DataConfig:
    """The training model set: the first ``n`` models of a generated family, or of a saved set at ``path``."""

    family: str = "curvefault"
    n: int = field(default=50, metadata={"min": 1})
    size: tuple[int, ...] = (64, 64)
    spacing: float = field(default=10.0, metadata={"gt": 0})
    seed: int = 0
    vmin: float = field(default=1.5, metadata={"gt": 0})
    vmax: float = field(default=4.5, metadata={"gt": 0})
    path: str = ""


@dataclass(frozen=True)
class NoiseConfig:
    """σ distribution for training and the preconditioning constants."""

    distribution: str = field(default="lognormal", metadata={"choices": ("lognormal", "loguniform")})
    p_mean: float = -1.2
    p_std: float = field(default=1.2, metadata={"gt": 0})
    sigma_min: float = field(default=0.002, metadata={"gt": 0})
    sigma_max: float = field(default=80.0, metadata={"gt": 0})
    sigma_data: float = field(default=0.5, metadata={"gt": 0})


@dataclass(frozen=True)
class OptimConfig:
    lr: float = field(default=2e-4, metadata={"gt": 0})
    weight_decay: float = field(default=0.0, metadata={"min": 0})
    beta1: float = field(default=0.9, metadata={"min": 0, "max": 1})
    beta2: float = field(default=0.999, metadata={"min": 0, "max": 1})
    warmup_steps: int = field(default=200, metadata={"min": 0})
    min_lr_ratio: float = field(default=0.05, metadata={"min": 0, "max": 1})
    grad_clip: float = field(default=1.0, metadata={"min": 0})
    ema_decay: float = field(default=0.999, metadata={"min": 0, "max": 1})


@dataclass(frozen=True)
class TrainConfig:
    name: str = "prior"
    seed: int = 0
    steps: int = field(default=1000, metadata={"min": 1})
    batch_size: int = field(default=64, metadata={"min": 1})
    data: DataConfig = field(default_factory=DataConfig)
    model: UNetConfig = field(default_factory=UNetConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoint_steps: tuple[int, ...] = field(default=(), metadata={"min": 1})
    checkpoint_every: int = field(default=0, metadata={"min": 0})
    log_every: int = field(default=50, metadata={"min": 1})
    augment: bool = False
    bf16: bool = True
    channels_last: bool = True
    device: str = "auto"
    compile: str = field(default="off", metadata={"choices": ("off", "default", "reduce-overhead",
                                                              "max-autotune-no-cudagraphs", "max-autotune")})
    save_dtype: str = field(default="float16", metadata={"choices": ("float16", "bfloat16", "float32")})

    def __post_init__(self):
        check_plain_name(self.name)  # the default run folder is runs/train/<name>: it must not escape it


def resolve_device(name: str) -> torch.device:
    """The torch device of a ``device`` setting: ``"auto"`` (the first CUDA GPU when there is one, else the CPU),
    ``"cpu"``, ``"cuda"`` or ``"cuda:k"``; a malformed name, or a GPU this machine does not have, is a
    :class:`ConfigError` naming the setting to change."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:k]', got {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device is {name!r} but no CUDA GPU is available; use device='auto' or 'cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise ConfigError(f"device is {name!r} but this machine has {n} CUDA GPU(s) (cuda:0 to cuda:{n - 1}); "
                          f"use one of those, 'cuda' or 'auto'")
    return dev


def training_array(data: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Normalized training models ``(N, 1, nz, nx)`` and model-set metadata from a ModelSet or an array.

    A plain array is taken as already normalized (values in about [−1, 1]). Refuses an empty set and NaN/inf.
    ``models_sha256`` (of the normalized float32 models) lets a later user check they have the same set.
    """
    if hasattr(data, "normalized"):
        arr = np.asarray(data.normalized())
        meta = {"family": data.family, "vmin": float(data.vmin), "vmax": float(data.vmax),
                "size": list(arr.shape[2:]), "n": int(arr.shape[0]), "seed": getattr(data, "seed", None),
                "spacing": getattr(data, "spacing", None)}
    else:
        arr = np.asarray(data)
        meta = {"n": int(arr.shape[0]) if arr.ndim else 0, "size": list(arr.shape[2:])}
    if arr.ndim != 4 or arr.shape[1] != 1:
        raise ShapeError(f"training models must have shape (N, 1, nz, nx), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueRangeError("the training set is empty; pass at least one model (data.n >= 1)")
    if arr.ndim == 4 and arr.shape[0] and np.all(np.isfinite(arr)):
        meta["models_sha256"] = models_sha256(arr)
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.all(np.isfinite(arr.reshape(arr.shape[0], -1)), axis=1)))
        raise ValueRangeError(f"the training set has NaN or inf values in {bad} model(s); clean or drop them")
    return arr, meta


def load_training_set(cfg: DataConfig):
    """The ModelSet named by ``cfg``: its first ``cfg.n`` models (nested prefixes across N)."""
    from geomem.geology import ModelSet, make_model_set

    if cfg.path:
        ms = ModelSet.load(cfg.path)
        if len(ms) < cfg.n:
            raise ConfigError(f"data.n={cfg.n} but {cfg.path} holds only {len(ms)} models; lower data.n")
        return ms.subset(np.arange(cfg.n)) if len(ms) > cfg.n else ms
    return make_model_set(family=cfg.family, n=cfg.n, size=tuple(cfg.size), spacing=cfg.spacing, seed=cfg.seed,
                          vmin=cfg.vmin, vmax=cfg.vmax)


def lr_factor(step: int, cfg: OptimConfig, total: int) -> float:
    """Linear warm-up over ``warmup_steps`` then cosine decay from 1 to ``min_lr_ratio`` at ``total``."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, total - cfg.warmup_steps)
    t = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def world_size() -> int:
    """Number of training processes from the launcher's environment (``WORLD_SIZE``, 1 when unset)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE must be an integer, got {os.environ['WORLD_SIZE']!r}") from None


def make_accelerator(cfg: TrainConfig, device: torch.device | None):
    """The ``accelerate.Accelerator`` of a data-parallel run (process group, this rank's device), or ``None``.

    Mixed precision is left to the trainer (``bf16`` setting), so accelerate's own is forced off.
    """
    world = world_size()
    if world <= 1:
        return None
    if device is not None or cfg.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"with {world} processes the device is chosen per rank; set device to 'auto', 'cpu' or "
                          f"'cuda' (got {device or cfg.device!r})")
    if cfg.batch_size % world:
        raise ConfigError(f"batch_size={cfg.batch_size} is the global batch and must be divisible by the "
                          f"{world} processes; choose a multiple of {world}")
    try:
        from accelerate import Accelerator
    except ImportError:
        raise ConfigError("multi-process training needs the accelerate package: pip install accelerate") from None
    cpu = cfg.device == "cpu" or not torch.cuda.is_available()
    if cfg.device == "cuda" and cpu:
        raise ConfigError("device is 'cuda' but no CUDA GPU is available; use device='auto' or 'cpu'")
    return Accelerator(cpu=cpu, mixed_precision="no")


def training_memory(cfg: TrainConfig, data_shape: tuple[int, ...]) -> float:
    """A lower bound of the bytes training holds at once: weights, gradients, two AdamW moments and the EMA
    (5 float32 copies of the parameter bound of :func:`~geomem.priors.prior_config.estimated_parameters`), the
    training set, and the first level's activations of a batch (4 maps of ``channels[0]`` per pixel)."""
    n, _, nz, nx = data_shape
    c = cfg.model
    return 4.0 * (5 * estimated_parameters(list(c.channels), c.layers_per_block) + n * nz * nx
                  + 4 * cfg.batch_size * nz * nx * (c.channels[0] if c.channels else 0))


class Trainer:
    """One training process: model, EMA, optimizer, schedule and the data generator, all on ``device``.

    Under a multi-process launch (``WORLD_SIZE > 1``) this is one rank of a data-parallel run (module docstring).
    """

    def __init__(self, cfg: TrainConfig, data: np.ndarray, model_set_meta: dict[str, Any] | None = None,
                 device: torch.device | None = None):
        self.cfg = cfg
        self.accelerator = make_accelerator(cfg, device)
        acc = self.accelerator
        self.world = acc.num_processes if acc else 1
        self.rank = acc.process_index if acc else 0
        self.is_main = acc.is_main_process if acc else True
        self.device = acc.device if acc else (device or resolve_device(cfg.device))
        self.cuda = self.device.type == "cuda"
        size = tuple(data.shape[2:])
        if cfg.data.size and tuple(cfg.data.size) != size:
            raise ShapeError(f"data.size is {tuple(cfg.data.size)} but the models are {size}; fix data.size")
        check_fits(training_memory(cfg, data.shape), f"training a UNet of widths {list(cfg.model.channels)} at batch "
                   f"{cfg.batch_size} on {data.shape[0]} models of {size[0]}×{size[1]}",
                   "lower model.channels, batch_size or data.size")
        torch.manual_seed(cfg.seed)
        unet = build_unet(cfg.model, size)
        self.memory_format = torch.channels_last if (self.cuda and cfg.channels_last) else torch.contiguous_format
        unet = unet.to(self.device, memory_format=self.memory_format)
        self.prior = LearnedPrior(unet, cfg.noise.sigma_data, (cfg.noise.sigma_min, cfg.noise.sigma_max),
                                  model_set=model_set_meta)
        self.ema = copy.deepcopy(unet).requires_grad_(False)
        self.train_prior = self.prior  # the prior whose forward trains: its unet is DDP-wrapped when distributed
        if acc is not None:
            self.train_prior = copy.copy(self.prior)
            self.train_prior.unet = acc.prepare(unet)
        o = cfg.optim
        # fused AdamW on CUDA: one kernel for all parameters (the step is launch-bound for these small UNets)
        self.opt = torch.optim.AdamW(unet.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay,
                                     fused=self.cuda)
        self.params = [p.detach() for p in unet.parameters()]
        self.ema_params = list(self.ema.parameters())
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda k: lr_factor(k, o, cfg.steps))
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.data = torch.as_tensor(data, dtype=torch.float32).to(self.device)
        self.step = 0
        self.compiled = self.cuda and self.world == 1 and cfg.compile != "off"
        self._loss_fn = compiled_loss(self.loss, cfg.compile) if self.compiled else self.loss

    @property
    def unet(self):
        return self.prior.unet

    def sample_sigma(self, b: int) -> torch.Tensor:
        nc = self.cfg.noise
        z = torch.randn(b, generator=self.gen, device=self.device)
        if nc.distribution == "lognormal":
            return torch.exp(nc.p_mean + nc.p_std * z)
        u = torch.rand(b, generator=self.gen, device=self.device)
        return torch.exp(math.log(nc.sigma_min) + u * (math.log(nc.sigma_max) - math.log(nc.sigma_min)))

    def loss(self, x0: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``mean_b λ(σ_b) ‖D(x0_b + σ_b ε_b, σ_b) − x0_b‖² / (nz nx)`` (float32 even under autocast)."""
        s = sigma.reshape(-1, 1, 1, 1)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda and self.cfg.bf16):
            d = self.train_prior.precondition(x0 + s * eps, s)
        w = self.prior.loss_weight(s)
        return (w * (d.float() - x0) ** 2).mean()

    def train_step(self) -> torch.Tensor:
        cfg = self.cfg
        b = cfg.batch_size
        idx = torch.randint(0, self.data.shape[0], (b,), generator=self.gen, device=self.device)
        x0 = self.data[idx]
        if cfg.augment:
            flip = torch.rand(b, generator=self.gen, device=self.device) < 0.5
            x0 = torch.where(flip.reshape(-1, 1, 1, 1), x0.flip(-1), x0)
        sigma = self.sample_sigma(b)
        eps = torch.randn(x0.shape, generator=self.gen, device=self.device)
        if self.world > 1:  # this rank's rows of the global batch
            rows = slice(self.rank * b // self.world, (self.rank + 1) * b // self.world)
            x0, sigma, eps = x0[rows], sigma[rows], eps[rows]
        x0 = x0.contiguous(memory_format=self.memory_format)
        eps = eps.contiguous(memory_format=self.memory_format)
        self.unet.train()
        if self.compiled and self.cfg.compile in CUDA_GRAPH_MODES:
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs may be overwritten
        loss = self._loss_fn(x0, sigma, eps)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.unet.parameters(), cfg.optim.grad_clip)
        self.opt.step()
        self.sched.step()
        self.step += 1
        decay = min(cfg.optim.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():  # one fused launch per dtype/device group instead of one per tensor
            torch._foreach_lerp_(self.ema_params, self.params, 1 - decay)
        return loss.detach().clone() if self.compiled else loss.detach()  # a CUDA-graph output is reused

    def mean_over_ranks(self, t: torch.Tensor) -> torch.Tensor:
        """Mean of ``t`` over the ranks (``t`` itself in one process); every rank must call it."""
        return self.accelerator.reduce(t.to(self.device), reduction="mean") if self.world > 1 else t

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on some rank (``flag`` in one process)."""
        if self.world == 1:
            return flag
        return bool(self.accelerator.reduce(torch.tensor([float(flag)], device=self.device), reduction="sum") > 0)

    def barrier(self) -> None:
        if self.world > 1:
            self.accelerator.wait_for_everyone()

    def ema_prior(self) -> LearnedPrior:
        return LearnedPrior(self.ema, self.prior.sigma_data, self.prior.noise_range, self.prior.model_set)

    def check_finite_weights(self, ckpt_root: Path) -> None:
        """Raise :class:`DivergenceError` if a weight of the network or of its EMA is NaN or inf."""
        if not bool(torch.stack([torch.isfinite(p).all() for p in (*self.params, *self.ema_params)]).all()):
            raise DivergenceError(f"training diverged: the weights are not finite at step {self.step}; "
                                  f"{last_good(ckpt_root)} and no prior was saved; lower optim.lr")

    # --- checkpoints ------------------------------------------------------------------------------------------
    def save_checkpoint(self, root: Path, log_len: int) -> Path:
        """Write ``root/step_XXXXXXX`` atomically (temporary folder, then rename)."""
        from safetensors.torch import save_file

        root.mkdir(parents=True, exist_ok=True)
        final = root / f"step_{self.step:07d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
        try:
            for name, mod in (("model.safetensors", self.unet), ("ema.safetensors", self.ema)):
                save_file({k: v.detach().cpu().contiguous() for k, v in mod.state_dict().items()}, str(tmp / name))
            torch.save({"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                        "generator": self.gen.get_state().cpu(), "step": self.step, "log_len": log_len},
                       tmp / "state.pt")
            files = ("model.safetensors", "ema.safetensors", "state.pt")
            write_json(tmp / "complete.json", {"step": self.step, "sha256": {f: _sha256(tmp / f) for f in files}})
            for f in (*files, "complete.json"):
                with open(tmp / f, "rb") as fh:
                    os.fsync(fh.fileno())
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def load_checkpoint(self, path: Path) -> int:
        """Restore everything from a checkpoint folder; returns the log length stored with it."""
        meta_path = path / "complete.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            hashes = meta["sha256"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {path} is incomplete or corrupt ({exc}); delete it to resume from "
                                  f"an earlier one") from None
        for name, digest in hashes.items():
            f = path / name
            if not f.is_file() or _sha256(f) != digest:
                raise CheckpointError(f"checkpoint file {f} is corrupt or truncated (SHA-256 mismatch); delete "
                                      f"{path} to resume from an earlier checkpoint")
        load_weights(self.unet, path / "model.safetensors")
        load_weights(self.ema, path / "ema.safetensors")
        try:
            state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (torch raises many types for a bad pickle)
            raise CheckpointError(f"{path / 'state.pt'} cannot be read ({exc})") from None
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.gen.set_state(state["generator"].to(self.gen.get_state().device))
        self.step = int(state["step"])
        return int(state["log_len"])


#: ``compile`` modes whose compiled loss is replayed as CUDA graphs (each step must mark its start)
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


def compiled_loss(loss_fn, mode: str):
    """``torch.compile(loss_fn)`` for the training loss (static shapes: the batch never changes in a run).

    ``mode``: ``"default"`` (fused Triton kernels) or ``"reduce-overhead"`` (the same, replayed as CUDA graphs);
    ``"max-autotune-no-cudagraphs"`` / ``"max-autotune"``: the same two, with Triton templates timed at compile time.
    Compilation happens at the first step (tens of seconds; cached by PyTorch under ``TORCHINDUCTOR_CACHE_DIR``).
    """
    return torch.compile(loss_fn, mode=mode, dynamic=False)


_STEP_DIR = re.compile(r"^step_(\d{7})$")


def last_checkpoint(root: Path) -> Path | None:
    """The checkpoint folder with the highest step under ``root`` (temporary folders are ignored)."""
    if not root.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir())
    return found[-1][1] if found else None


#: file of the run folder recording the training data's hash (``--resume`` refuses other data)
DATA_RECORD = "training_data.json"


def check_same_data(out: Path, meta: dict[str, Any]) -> None:
    """Refuse ``--resume`` when the training models differ from those the run started with (their SHA-256)."""
    path = out / DATA_RECORD
    if not path.is_file():
        return  # a run started before the data hash was recorded
    try:
        before = json.loads(path.read_text(encoding="utf-8"))["models_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is corrupt ({exc}); start a new run with another --out") from None
    if before != meta.get("models_sha256"):
        raise ConfigError(f"--resume: the training data changed since {out} started (models_sha256 "
                          f"{str(before)[:16]}… then, {str(meta.get('models_sha256'))[:16]}… now); restore the "
                          f"data file or start a new run with another --out")


def last_good(ckpt_root: Path) -> str:
    ckpt = last_checkpoint(ckpt_root)
    return f"the last good checkpoint is {ckpt}" if ckpt else "no checkpoint was written"


def check_finite_losses(window: list[torch.Tensor], step: int, ckpt_root: Path, cfg: TrainConfig) -> None:
    """Raise :class:`DivergenceError` if a loss of the current log window (ending at ``step``) is NaN or inf."""
    if not window:
        return
    finite = torch.isfinite(torch.stack(window)).cpu()
    if bool(finite.all()):
        return
    first = step - len(window) + 1 + int(torch.argmin(finite.int()))
    raise DivergenceError(
        f"training diverged: the loss is not finite at step {first} (optim.lr={cfg.optim.lr:g}, noise.p_mean="
        f"{cfg.noise.p_mean:g}, noise.p_std={cfg.noise.p_std:g}); {last_good(ckpt_root)} and no prior was saved; "
        f"lower optim.lr or fix the noise settings"
    )


@dataclass
class TrainResult:
    run: Path
    steps_done: int
    interrupted: bool
    final_loss: float
    wall_s: float
    prior_dir: Path | None


def train(cfg: TrainConfig, out: str | Path, data: Any = None, resume: bool = False, stop_at: int | None = None,
          progress: bool = True) -> TrainResult:
    """Train per ``cfg`` into the run folder ``out`` (module docstring for the layout); return a summary.

    ``data``: a ModelSet or a normalized ``(N, 1, nz, nx)`` array; ``None`` loads ``cfg.data``.
    ``stop_at``: stop after this step exactly as SIGINT would (checkpoint, then return); used to test resume.
    """
    out = Path(out)
    arr, meta = training_array(load_training_set(cfg.data) if data is None else data)
    trainer = Trainer(cfg, arr, meta)
    cfg_text = dump_toml(to_dict(cfg))
    ckpt_root = out / "checkpoints"
    log_path = out / "train_log.jsonl"
    records: list[dict[str, Any]] = []
    if resume:
        if not (out / "config.toml").is_file() or (out / "config.toml").read_text(encoding="utf-8") != cfg_text:
            raise ConfigError(f"--resume needs the same settings as the run in {out} (its config.toml differs or is "
                              f"missing); pass that run's config")
        ckpt = last_checkpoint(ckpt_root)
        if ckpt is None:
            raise CheckpointError(f"no checkpoint in {ckpt_root} to resume from; start without --resume")
        check_same_data(out, meta)
        log_len = trainer.load_checkpoint(ckpt)
        if log_path.is_file():
            records = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()[:log_len]]
    elif last_checkpoint(ckpt_root) is not None:
        raise ConfigError(f"{out} already holds checkpoints; pass --resume to continue it or choose a new --out")
    else:
        trainer.barrier()  # every rank has checked the folder before the main process creates it
        if trainer.is_main:
            RunFolder(out, cfg, seed=cfg.seed)
            write_json(out / DATA_RECORD, {"models_sha256": meta["models_sha256"], "n": meta["n"]})
    keep = set(cfg.checkpoint_steps) | {cfg.steps}
    if cfg.checkpoint_every:
        keep |= set(range(cfg.checkpoint_every, cfg.steps + 1, cfg.checkpoint_every))
    stop = threading.Event()
    t_start = time.perf_counter()
    interrupted = False
    main = trainer.is_main
    with _stop_on_signals(stop), _progress(progress and main, cfg.steps, trainer.step) as bar:
        window, t0, n0 = [], time.perf_counter(), trainer.step
        while trainer.step < cfg.steps:
            window.append(trainer.train_step())
            bar.update(1)
            k = trainer.step
            if not trainer.cuda or k % cfg.log_every == 0 or k in keep:  # a sync on CUDA: only at log/checkpoints
                check_finite_losses(window, k, ckpt_root, cfg)
            if k % cfg.log_every == 0 or k == cfg.steps:
                losses = trainer.mean_over_ranks(torch.stack(window).float()).cpu()
                if trainer.cuda:
                    torch.cuda.synchronize(trainer.device)
                dt = time.perf_counter() - t0
                records.append({"step": k, "loss": float(losses.mean()), "lr": trainer.sched.get_last_lr()[0],
                                "models_per_s": (k - n0) * cfg.batch_size / dt,
                                "time_s": time.perf_counter() - t_start})
                if main:
                    write_text(log_path, "".join(json.dumps(r) + "\n" for r in records))
                bar.set_postfix(loss=f"{records[-1]['loss']:.4f}")
                window, t0, n0 = [], time.perf_counter(), k
            halt = trainer.any_rank(stop.is_set()) or (stop_at is not None and k >= stop_at)
            if k in keep or halt:
                if window:  # flush a partial log window so the log matches the checkpoint
                    loss = trainer.mean_over_ranks(torch.stack(window).float()).mean().cpu()
                    records.append({"step": k, "loss": float(loss), "lr": trainer.sched.get_last_lr()[0],
                                    "models_per_s": float("nan"), "time_s": time.perf_counter() - t_start})
                    if main:
                        write_text(log_path, "".join(json.dumps(r) + "\n" for r in records))
                    window, t0, n0 = [], time.perf_counter(), k
                trainer.check_finite_weights(ckpt_root)
                if main:
                    trainer.save_checkpoint(ckpt_root, len(records))
                trainer.barrier()
            if halt and k < cfg.steps:
                interrupted = True
                break
    wall = time.perf_counter() - t_start
    final_loss = records[-1]["loss"] if records else float("nan")
    prior_dir = None
    if not interrupted and not main:
        prior_dir = out / "prior"
    elif not interrupted:
        trainer.check_finite_weights(ckpt_root)
        prior_dir = trainer.ema_prior().save_pretrained(
            out / "prior", dtype=getattr(torch, cfg.save_dtype),
            extra={"train_steps": cfg.steps, "batch_size": cfg.batch_size, "final_loss": final_loss})
        from geomem.report.training import plot_loss_curve

        plot_loss_curve(records, out / "figures" / "loss.png")
        speeds = [r["models_per_s"] for r in records if math.isfinite(r["models_per_s"])]
        write_json(out / "metrics.json", {
            "steps": cfg.steps, "n_train": meta["n"], "final_loss": final_loss, "wall_s_this_process": wall,
            "models_per_s_median": float(np.median(speeds)) if speeds else None,
            "device": torch.cuda.get_device_name(trainer.device) if trainer.cuda else "cpu",
            "bf16": trainer.cuda and cfg.bf16, "parameters": sum(p.numel() for p in trainer.unet.parameters()),
            "processes": trainer.world,
        })
    trainer.barrier()  # no rank returns before the main process has written the prior
    return TrainResult(out, trainer.step, interrupted, final_loss, wall, prior_dir)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event):
    """Turn SIGINT/SIGTERM into ``stop.set()`` while training (main thread only); restore handlers after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, lambda *_: stop.set())
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _progress(enabled: bool, total: int, initial: int):
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=initial, disable=not enabled, desc="train", unit="step", mininterval=2.0)
    try:
        yield bar
    finally:
        bar.close()
