"""A diffusers ``UNet2DModel`` behind the :class:`~geomem.priors.denoiser.Denoiser` interface (EDM preconditioning).

Preconditioning (Karras et al. 2022, "EDM"), variance-exploding ``x_σ = x₀ + σ ε``, data scale ``σ_d``:

    D(x, σ) = c_skip(σ) x + c_out(σ) F_θ(c_in(σ) x, c_noise(σ))
    c_skip = σ_d² / (σ² + σ_d²),   c_out = σ σ_d / √(σ² + σ_d²),   c_in = 1 / √(σ² + σ_d²)

``c_noise``: diffusers' sinusoidal timestep embedding is built for timesteps in about [0, 1000], so ln σ is
mapped affinely onto that range over the reference interval ``noise_range = (σ_lo, σ_hi)``:

    c_noise(σ) = 1000 (ln σ − ln σ_lo) / (ln σ_hi − ln σ_lo)

(σ outside the interval maps outside [0, 1000]; the embedding is still defined there). The matching training
loss is ``E_σ,x₀,ε [λ(σ) ‖D(x₀ + σε, σ) − x₀‖²]`` with ``λ(σ) = (σ² + σ_d²) / (σ σ_d)²``, which makes the
effective network target unit-variance at every σ.

Models are in normalized coordinates (:class:`~geomem.geology.parameterization.Parameterization`), shape
``(B, 1, nz, nx)``. A UNet with ``L`` levels downsamples ``L − 1`` times, so ``nz`` and ``nx`` must be divisible
by ``2^(L−1)``.

Files (``save_pretrained``): ``<dir>/model.safetensors`` (weights, fp16 or fp32) and ``<dir>/config.json``
(format version, UNet config, preconditioning, model shape, the training model set's family / vmin / vmax /
size / N, and the SHA-256 of the weights file). Both are written atomically, the config last; loading checks
the format version and the hash, so a truncated or corrupt file is refused with a :class:`CheckpointError`.
No hub access: only local files are ever read.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geomem.errors import CheckpointError, ConfigError, ShapeError
from geomem.priors.denoiser import Denoiser, sigma_column
from geomem.priors.prior_config import check_prior_config, weights_path
from geomem.runs import atomic_path, write_json

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
#: learned priors shipped inside the package (``geomem/priors/shipped/<name>``), trained on the first N models of
#: the default model set; ``LearnedPrior.from_pretrained("n50")`` finds them wherever geomem is installed
SHIPPED = ("n50", "n1000")


def shipped_prior_path(name: str) -> Path:
    """The folder of a shipped prior (package data)."""
    from importlib import resources

    if name not in SHIPPED:
        raise ConfigError(f"no shipped prior named {name!r}; shipped priors: {', '.join(SHIPPED)}")
    return Path(str(resources.files("geomem.priors") / "shipped" / name))
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass(frozen=True)
class UNetConfig:
    """Size of the UNet: one entry of ``channels`` / ``attention`` per resolution level."""

    channels: tuple[int, ...] = field(default=(32, 64, 128), metadata={"min": 1})
    attention: tuple[bool, ...] = (False, False, True)
    layers_per_block: int = field(default=1, metadata={"min": 1})
    norm_groups: int = field(default=8, metadata={"min": 1})
    attention_head_dim: int = field(default=32, metadata={"min": 1})


def valid_sizes(n_levels: int, upto: int = 256) -> list[int]:
    """Image sizes (per axis, up to ``upto``) a UNet with ``n_levels`` levels can take."""
    step = 2 ** (n_levels - 1)
    return list(range(step, upto + 1, step))


def check_size(size: tuple[int, int], n_levels: int) -> None:
    """Raise :class:`ShapeError` unless both axes are divisible by ``2^(n_levels − 1)``."""
    step = 2 ** (n_levels - 1)
    if any(s < step or s % step for s in size):
        raise ShapeError(
            f"model size {tuple(size)} does not fit a UNet with {n_levels} levels: each axis must be a multiple of "
            f"{step} (e.g. {', '.join(map(str, valid_sizes(n_levels, 8 * step)[:8]))}); resize the models or "
            f"change the number of UNet levels"
        )


def build_unet(cfg: UNetConfig, size: tuple[int, int]):
    """A 1-channel ``diffusers.UNet2DModel`` for ``(nz, nx) = size`` models, configured by ``cfg``.

    The middle block always has self-attention (diffusers' default), so ``attention_head_dim`` must divide the
    last level's channels as well as those of every level with ``attention = true``.
    """
    from diffusers import UNet2DModel

    levels = len(cfg.channels)
    if levels < 1 or len(cfg.attention) != levels:
        raise ConfigError(f"model.attention needs one entry per level ({levels}), got {len(cfg.attention)}")
    if any(c % cfg.norm_groups for c in cfg.channels):
        raise ConfigError(f"every model.channels entry must be divisible by model.norm_groups={cfg.norm_groups}")
    attn_channels = [c for c, a in zip(cfg.channels, cfg.attention, strict=True) if a] + [cfg.channels[-1]]
    if any(c % cfg.attention_head_dim for c in attn_channels):
        raise ConfigError(
            f"model.attention_head_dim={cfg.attention_head_dim} must divide the channels of every attention level "
            f"and of the middle block ({sorted(set(attn_channels))})"
        )
    check_size(size, levels)
    down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in cfg.attention)
    up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(cfg.attention))
    return UNet2DModel(
        sample_size=tuple(size), in_channels=1, out_channels=1, block_out_channels=tuple(cfg.channels),
        down_block_types=down, up_block_types=up, layers_per_block=cfg.layers_per_block,
        norm_num_groups=cfg.norm_groups, attention_head_dim=cfg.attention_head_dim,
        time_embedding_type="positional", flip_sin_to_cos=True, freq_shift=0,
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def models_sha256(models: Any) -> str:
    """SHA-256 of normalized training models: the bytes of the C-ordered float32 ``(N, 1, nz, nx)`` array.

    ``models`` is a :class:`~geomem.geology.ModelSet` (its :meth:`normalized` models) or an array already in
    normalized coordinates. This is the hash ``geomem train`` records as ``model_set.models_sha256``.
    """
    arr = models.normalized() if hasattr(models, "normalized") else models
    arr = np.ascontiguousarray(np.asarray(arr), dtype=np.float32)
    return hashlib.sha256(arr.tobytes()).hexdigest()


def check_training_set(prior: LearnedPrior | dict[str, Any], models: Any, allow_other_set: bool = False,
                       where: str = "the model set") -> None:
    """Refuse a prior used with models other than those it was trained on.

    The prior's recorded ``model_set.models_sha256`` (written by ``geomem train``) is compared with
    :func:`models_sha256` of the first ``n`` models of ``models`` (``n`` = the recorded training-set size; a
    ModelSet or a normalized ``(N, 1, nz, nx)`` array). ``allow_other_set=True`` skips the check for a deliberate
    cross-set use (e.g. scoring a prior against another seed's models). A prior that records no hash (written
    by another tool) is not checked. Raises :class:`ConfigError` naming both hashes and the override.
    """
    meta = prior.model_set if isinstance(prior, LearnedPrior) else dict(prior or {})
    recorded = meta.get("models_sha256")
    if allow_other_set or not recorded:
        return
    n = meta.get("n")
    total = len(models)
    if not isinstance(n, int) or n < 1 or total < n:
        raise ConfigError(
            f"the prior was trained on {n!r} models but {where} holds {total}; use the prior's training set, or pass "
            f"allow_other_set (--allow-other-set) to use it deliberately with another set"
        )
    arr = models.normalized() if hasattr(models, "normalized") else np.asarray(models)
    actual = models_sha256(arr[:n])
    if actual != recorded:
        raise ConfigError(
            f"the prior was trained on other models: its training set has models_sha256 {recorded[:16]}…, the first "
            f"{n} models of {where} have {actual[:16]}…; use the prior's training set, or pass allow_other_set "
            f"(--allow-other-set) to use it deliberately with another set"
        )


class LearnedPrior(Denoiser):
    """EDM-preconditioned ``UNet2DModel`` as a denoiser ``D(x, σ)`` (module docstring for the math).

    ``model_set`` is metadata about the training set (family, vmin, vmax, size, n, seed, spacing) used to refuse
    a mismatched use; it is stored in the saved config.
    """

    def __init__(self, unet, sigma_data: float = 0.5, noise_range: tuple[float, float] = (0.002, 80.0),
                 model_set: dict[str, Any] | None = None):
        if not sigma_data > 0:
            raise ConfigError(f"sigma_data must be > 0, got {sigma_data}")
        lo, hi = (float(v) for v in noise_range)
        if not 0 < lo < hi:
            raise ConfigError(f"noise_range must be (lo, hi) with 0 < lo < hi, got {noise_range}")
        self.unet = unet
        self.sigma_data = float(sigma_data)
        self.noise_range = (lo, hi)
        self.model_set = dict(model_set or {})
        size = unet.config.sample_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        self.model_shape = (int(unet.config.in_channels), *size)

    # --- preconditioning -------------------------------------------------------------------------------
    def c_noise(self, sigma: torch.Tensor) -> torch.Tensor:
        lo, hi = self.noise_range
        return 1000.0 * (torch.log(sigma) - math.log(lo)) / (math.log(hi) - math.log(lo))

    def loss_weight(self, sigma: torch.Tensor) -> torch.Tensor:
        """``λ(σ) = (σ² + σ_d²) / (σ σ_d)²``."""
        sd = self.sigma_data
        return (sigma**2 + sd**2) / (sigma * sd) ** 2

    def precondition(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """``D(x, σ)`` for ``s`` of shape ``(B, 1, 1, 1)``, no input checks (the training hot path).

        The network runs in its own dtype (and under any active autocast); the skip connection and the output
        scaling are computed in ``x``'s dtype.
        """
        sd = self.sigma_data
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / torch.sqrt(s**2 + sd**2)
        c_in = 1.0 / torch.sqrt(s**2 + sd**2)
        net_dtype = next(self.unet.parameters()).dtype
        f = self.unet((c_in * x).to(net_dtype), self.c_noise(s.flatten()).to(torch.float32)).sample
        return c_skip * x + c_out * f.to(x.dtype)

    def denoise(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.precondition(x, sigma_column(sigma, x))

    def check_model_set(self, family: str, vmin: float, vmax: float, size: tuple[int, int]) -> None:
        """Refuse use with a model set whose family, velocity range or size differs from the training set's."""
        ms = self.model_set
        if not ms:
            return
        mismatches = []
        if ms.get("family") not in (None, family):
            mismatches.append(f"family {family!r} vs {ms['family']!r}")
        for key, val in (("vmin", vmin), ("vmax", vmax)):
            if key in ms and not math.isclose(float(ms[key]), float(val), rel_tol=1e-6):
                mismatches.append(f"{key} {val} vs {ms[key]}")
        if "size" in ms and tuple(ms["size"]) != tuple(size):
            mismatches.append(f"size {tuple(size)} vs {tuple(ms['size'])}")
        if mismatches:
            raise ConfigError(
                "the prior was trained on a different model set (" + "; ".join(mismatches)
                + "); use the model set the prior was trained on or retrain"
            )

    # --- files ---------------------------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "kind": "geomem.LearnedPrior",
            "unet": {k: v for k, v in dict(self.unet.config).items() if not k.startswith("_")},
            "sigma_data": self.sigma_data,
            "noise_range": list(self.noise_range),
            "model_shape": list(self.model_shape),
            "model_set": self.model_set,
        }

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype = torch.float32,
                        extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` (weights cast to ``dtype``) and ``config.json`` atomically."""
        from safetensors.torch import save_file

        name = {v: k for k, v in _DTYPES.items()}.get(dtype)
        if name is None:
            raise ConfigError(f"save dtype must be one of {list(_DTYPES)}, got {dtype}")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in self.unet.state_dict().items()}
        with atomic_path(directory / WEIGHTS_FILE) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
        cfg = self.config_dict() | {"weights_file": WEIGHTS_FILE, "weights_dtype": name,
                                    "weights_sha256": _sha256(directory / WEIGHTS_FILE)}
        if extra:
            cfg["extra"] = extra
        write_json(directory / CONFIG_FILE, cfg)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: torch.device | str = "cpu",
                        dtype: torch.dtype = torch.float32) -> LearnedPrior:
        """Load a prior written by :meth:`save_pretrained` (local files only), or a shipped prior by name
        (:data:`SHIPPED`); weights cast to ``dtype``.

        >>> prior = LearnedPrior.from_pretrained("n50")
        >>> prior.model_shape, prior.model_set["n"]
        ((1, 64, 64), 50)
        """
        if str(directory) in SHIPPED and not Path(directory).exists():
            directory = shipped_prior_path(str(directory))
        directory = Path(directory)
        cfg = read_config(directory)
        weights = weights_path(directory, cfg)
        if not weights.is_file():
            raise CheckpointError(f"{weights} is missing; the prior folder is incomplete, re-save or retrain it")
        if cfg.get("weights_sha256") != _sha256(weights):
            raise CheckpointError(
                f"{weights} is corrupt or truncated (its SHA-256 does not match {directory / CONFIG_FILE}); re-save it"
            )
        unet = unet_from_config(cfg, directory)
        load_weights(unet, weights)
        unet = unet.to(device=device)
        if dtype != torch.float32:
            unet = unet.to(dtype=dtype)
        unet.eval()
        return cls(unet, sigma_data=cfg["sigma_data"], noise_range=tuple(cfg["noise_range"]),
                   model_set=cfg.get("model_set"))


def resave_prior(directory: str | Path, dtype: torch.dtype) -> Path:
    """Rewrite a saved prior's weights at ``dtype`` (e.g. fp16 to ship it), checksum and config updated together."""
    extra = read_config(Path(directory)).get("extra")
    return LearnedPrior.from_pretrained(directory).save_pretrained(directory, dtype=dtype, extra=extra)


def read_config(directory: Path) -> dict[str, Any]:
    """Read and check ``<directory>/config.json`` (exists, valid JSON, a format version this code can read)."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{path} is missing; pass a folder written by LearnedPrior.save_pretrained or geomem train"
        )
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{path} is corrupt or truncated ({exc}); re-save the prior") from None
    version = cfg.get("format_version") if isinstance(cfg, dict) else None
    if not isinstance(version, int):
        raise CheckpointError(f"{path} has no format_version; it was not written by geomem")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {version}, newer than this geomem reads ({FORMAT_VERSION}); upgrade geomem"
        )
    return check_prior_config(cfg, path)


def unet_from_config(cfg: dict[str, Any], where: Path):
    from diffusers import UNet2DModel

    try:
        return UNet2DModel.from_config(cfg["unet"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(f"{where}: bad UNet config ({str(exc).splitlines()[0] if str(exc) else exc!r})") from None


def load_weights(module: torch.nn.Module, path: Path) -> None:
    """Load a safetensors file into ``module`` (strict), turning any read error into a CheckpointError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is corrupt or truncated ({exc}); re-save or retrain") from None
    own = module.state_dict()
    try:
        module.load_state_dict({k: v.to(own[k].dtype) if k in own else v for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not match the model config: {str(exc).splitlines()[0]}") from None
