"""Field-by-field check of a saved prior's ``config.json`` (written by ``LearnedPrior.save_pretrained``).

A prior folder may come from anywhere, so nothing in its config is trusted: every field the loader uses is
checked for type and range before anything is built, and a bad field is a :class:`CheckpointError` naming it.

- ``unet`` must be a JSON object (a string would make diffusers' ``from_config`` look it up on a model hub);
  its sizes are bounded and the network's float32 weights are estimated *before* allocating: more than
  :data:`MAX_PARAMETERS` parameters is refused with the estimate.
- ``weights_file`` must be a plain file name inside the prior folder (no ``/``, ``..`` or absolute path), so a
  config cannot point the loader at another file.
- ``sigma_data`` > 0, ``noise_range`` = ``[lo, hi]`` with ``0 < lo < hi`` (finite), ``weights_sha256`` a
  64-digit hex string, ``weights_dtype`` one of float16/bfloat16/float32, ``model_shape`` = ``[1, nz, nx]``
  matching ``unet.sample_size``, ``model_set`` an object whose known keys have the right types.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from geomem.errors import CheckpointError

#: the largest network a prior config may describe (float32: 4 GB of weights); larger is refused unbuilt
MAX_PARAMETERS = 1_000_000_000
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DOWN = ("DownBlock2D", "AttnDownBlock2D")
_UP = ("UpBlock2D", "AttnUpBlock2D")
_SCALAR = (type(None), bool, int, float, str)


def _is_int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def estimated_parameters(channels: list[int], layers_per_block: int) -> int:
    """An upper estimate of a ``UNet2DModel``'s parameter count from its level widths.

    Each ResNet block at width ``c`` has two 3×3 convolutions (``18 c²``) plus its time projection; the
    encoder has ``layers_per_block`` blocks per level and the decoder ``layers_per_block + 1`` (inputs up to
    ``2c`` wide), the middle block two blocks and an attention layer at the last width: the bound used is
    ``Σ_c (2 L + 2) · 40 c² + 40 c_last²``, a few times the exact count for geomem's UNets.
    """
    if not channels:
        return 0
    return sum((2 * layers_per_block + 2) * 40 * c * c for c in channels) + 40 * channels[-1] ** 2


def check_unet(unet: Any, where: Path) -> dict[str, Any]:
    """The ``unet`` table, checked (module docstring); returns it unchanged."""
    def bad(key: str, want: str) -> CheckpointError:
        return CheckpointError(f"{where}: field unet.{key} must be {want}, got {unet.get(key)!r}; re-save the prior "
                               f"with geomem")

    if not isinstance(unet, dict):
        raise CheckpointError(f"{where}: field unet must be an object of UNet settings, got "
                              f"{type(unet).__name__}; re-save the prior with geomem (no hub names are looked up)")
    for key, value in unet.items():
        if not isinstance(key, str) or not (isinstance(value, _SCALAR) or (
                isinstance(value, list) and all(isinstance(v, _SCALAR) for v in value))):
            raise CheckpointError(f"{where}: field unet.{key} must be a number, string or list of them")
    size = unet.get("sample_size")
    size = [size, size] if isinstance(size, int) and not isinstance(size, bool) else size
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(s, 1, 4096) for s in size)):
        raise bad("sample_size", "[nz, nx] with 1 <= nz, nx <= 4096")
    for key in ("in_channels", "out_channels"):
        if unet.get(key) != 1:
            raise bad(key, "1 (one velocity channel)")
    channels = unet.get("block_out_channels")
    if not (isinstance(channels, list) and 1 <= len(channels) <= 8 and all(_is_int(c, 1, 1 << 20) for c in channels)):
        raise bad("block_out_channels", "a list of 1 to 8 positive integers")
    layers = unet.get("layers_per_block")
    if not _is_int(layers, 1, 64):
        raise bad("layers_per_block", "an integer from 1 to 64")
    groups = unet.get("norm_num_groups")
    if not (_is_int(groups, 1, 1 << 20) and all(c % groups == 0 for c in channels)):
        raise bad("norm_num_groups", f"a positive integer dividing every block_out_channels entry {channels}")
    head = unet.get("attention_head_dim")
    if head is not None and not _is_int(head, 1, 1 << 20):
        raise bad("attention_head_dim", "a positive integer")
    for key, allowed in (("down_block_types", _DOWN), ("up_block_types", _UP)):
        blocks = unet.get(key)
        if not (isinstance(blocks, list) and len(blocks) == len(channels) and all(b in allowed for b in blocks)):
            raise bad(key, f"a list of {len(channels)} names among {list(allowed)}")
    if unet.get("time_embedding_type", "positional") != "positional":
        raise bad("time_embedding_type", "'positional'")
    n_params = estimated_parameters(channels, layers)
    if n_params > MAX_PARAMETERS:
        raise CheckpointError(
            f"{where}: field unet.block_out_channels {channels} describes a network of up to {n_params:.3g} "
            f"parameters ({4 * n_params / 1e9:.3g} GB in float32), above the limit of {MAX_PARAMETERS:.3g}; "
            f"this is not a geomem prior"
        )
    return unet


def check_prior_config(cfg: dict[str, Any], path: Path) -> dict[str, Any]:
    """Check every field of a parsed prior ``config.json`` at ``path`` that the loader uses; returns ``cfg``."""
    def bad(key: str, want: str) -> CheckpointError:
        return CheckpointError(f"{path}: field {key} must be {want}, got {cfg.get(key)!r}; re-save the prior "
                               f"with geomem")

    unet = check_unet(cfg.get("unet"), path)
    if not (_is_num(cfg.get("sigma_data")) and cfg["sigma_data"] > 0):
        raise bad("sigma_data", "a positive number")
    nr = cfg.get("noise_range")
    if not (isinstance(nr, list) and len(nr) == 2 and all(_is_num(v) for v in nr) and 0 < nr[0] < nr[1]):
        raise bad("noise_range", "[lo, hi] with 0 < lo < hi")
    name = cfg.get("weights_file", "model.safetensors")
    if not (isinstance(name, str) and name and Path(name).name == name and name not in (".", "..")
            and "\\" not in name and "\0" not in name):
        raise bad("weights_file", "a plain file name inside the prior folder (no '/', '..' or absolute path)")
    if not (isinstance(cfg.get("weights_sha256"), str) and _HEX64.match(cfg["weights_sha256"])):
        raise bad("weights_sha256", "the 64-digit hex SHA-256 of the weights file")
    if cfg.get("weights_dtype", "float32") not in ("float16", "bfloat16", "float32"):
        raise bad("weights_dtype", "float16, bfloat16 or float32")
    size = unet["sample_size"]
    size = [size, size] if isinstance(size, int) else size
    shape = cfg.get("model_shape", [1, *size])
    if shape != [1, *size]:
        raise bad("model_shape", f"[1, {size[0]}, {size[1]}] (one channel of unet.sample_size)")
    ms = cfg.get("model_set", {})
    if ms is None:
        ms = {}
    if not isinstance(ms, dict):
        raise bad("model_set", "an object (family, vmin, vmax, size, n, seed, spacing, models_sha256)")
    checks = {"family": lambda v: isinstance(v, str), "vmin": _is_num, "vmax": _is_num, "spacing": _is_num,
              "n": lambda v: _is_int(v, 1, 1 << 40), "seed": lambda v: _is_int(v, -(1 << 63), 1 << 64),
              "size": lambda v: isinstance(v, list) and all(_is_int(s, 1, 1 << 20) for s in v),
              "models_sha256": lambda v: isinstance(v, str) and bool(_HEX64.match(v))}
    for key, ok in checks.items():
        if ms.get(key) is not None and not ok(ms[key]):
            raise CheckpointError(f"{path}: field model_set.{key} has a wrong type or value {ms[key]!r}; re-save "
                                  f"the prior with geomem")
    return cfg


def weights_path(directory: Path, cfg: dict[str, Any]) -> Path:
    """The weights file of a checked config, resolved inside ``directory`` (a symlink may not lead out)."""
    path = directory / cfg.get("weights_file", "model.safetensors")
    try:
        inside = path.resolve().is_relative_to(directory.resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside:
        raise CheckpointError(f"{path} leads outside the prior folder {directory}; copy the weights into it")
    return path
