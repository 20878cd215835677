"""Velocity-model families modelled on OpenFWI's, each with an easier (A) and a harder (B) setting.

Every family is a function ``draw(rng, nz, nx, vmin, vmax, difficulty) → (nz, nx)`` float64 velocity in
km/s within ``[vmin, vmax]``. Lengths are fractions of the model depth or width, so a family looks the
same at any grid size.

========== ============================================ ==============================================
family     A                                            B
========== ============================================ ==============================================
flatvel    3–5 flat layers                              5–9 flat layers
curvevel   3–5 layers, one parallel sinusoidal fold     5–9 layers, 3-term fold + own perturbations
           (amplitude 3–10 % of depth)                  (5–15 % of depth, ±3 % per interface)
flatfault  3–5 flat layers, 1 normal fault,             5–9 flat layers, 2 faults (normal or reverse),
           throw 5–15 %, dip 45–80°                     throw 5–25 %, dip 30–85°
curvefault curvevel A + the faults of flatfault A       curvevel B + the faults of flatfault B
salt       4–7 flat sediment layers + a salt blob       5–9 folded sediment layers + a diapir with a
           with a mildly rough boundary                 stem and a rougher boundary
grf        isotropic Gaussian field, correlation        anisotropic field (ℓ_x 10–30 %, ℓ_z 3–8 %) +
           length 8–20 % of the model                   a depth trend
========== ============================================ ==============================================

Layer velocities increase with depth (:func:`geomem.geology.layers.increasing_velocities`), so layered
families are inside ``[vmin, vmax]`` by construction. Salt sediments use the lower 75 % of the range and
salt the top 5 %. ``grf`` fields are mapped affinely onto exactly ``[vmin, vmax]`` per model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from geomem.geology import layers
from geomem.geology.grf import gaussian_random_field, rescale
from geomem.geology.salt import salt_mask


@dataclass(frozen=True)
class LayeredSettings:
    """Settings of the layered families (ranges are inclusive; lengths in fractions of the model)."""

    layers: tuple[int, int]
    n_waves: int = 0
    fold_amp: tuple[float, float] = (0.0, 0.0)
    own_amp: float = 0.0
    faults: tuple[int, int] = (0, 0)
    throw: tuple[float, float] = (0.05, 0.15)
    dip: tuple[float, float] = (45.0, 80.0)
    reverse: bool = False


FLAT = {"A": LayeredSettings(layers=(3, 5)), "B": LayeredSettings(layers=(5, 9))}
CURVE = {
    "A": LayeredSettings(layers=(3, 5), n_waves=1, fold_amp=(0.03, 0.10)),
    "B": LayeredSettings(layers=(5, 9), n_waves=3, fold_amp=(0.05, 0.15), own_amp=0.03),
}
FAULTS = {
    "A": dict(faults=(1, 1), throw=(0.05, 0.15), dip=(45.0, 80.0), reverse=False),
    "B": dict(faults=(2, 2), throw=(0.05, 0.25), dip=(30.0, 85.0), reverse=True),
}


def _with_faults(base: LayeredSettings, difficulty: str) -> LayeredSettings:
    return LayeredSettings(**{**base.__dict__, **FAULTS[difficulty]})


LAYERED: dict[str, dict[str, LayeredSettings]] = {
    "flatvel": FLAT,
    "curvevel": CURVE,
    "flatfault": {d: _with_faults(FLAT[d], d) for d in "AB"},
    "curvefault": {d: _with_faults(CURVE[d], d) for d in "AB"},
}


def draw_layered(
    rng: np.random.Generator, nz: int, nx: int, vmin: float, vmax: float, s: LayeredSettings
) -> np.ndarray:
    """One layered model (possibly folded and faulted) with velocities increasing with depth."""
    k = int(rng.integers(s.layers[0], s.layers[1] + 1))
    interfaces = layers.folded_interfaces(rng, k - 1, s.n_waves, s.fold_amp, s.own_amp)
    velocities = layers.increasing_velocities(rng, k, vmin, vmax)
    count = int(rng.integers(s.faults[0], s.faults[1] + 1))
    faults = layers.random_faults(rng, count, s.throw, s.dip, s.reverse) if count else None
    return layers.render(interfaces, velocities, nz, nx, faults)


def _layered_family(name: str) -> Callable[..., np.ndarray]:
    def draw(rng, nz, nx, vmin, vmax, difficulty):
        return draw_layered(rng, nz, nx, vmin, vmax, LAYERED[name][difficulty])

    draw.__doc__ = f"One ``{name}`` model (see :data:`LAYERED`)."
    return draw


def draw_salt(rng: np.random.Generator, nz: int, nx: int, vmin: float, vmax: float, difficulty: str) -> np.ndarray:
    """Layered sediments in ``[vmin, vmin + 0.75 r]`` and a salt body at ``U(vmax − 0.05 r, vmax)``."""
    r = vmax - vmin
    sediments = LayeredSettings(layers=(4, 7)) if difficulty == "A" else CURVE["B"]
    v = draw_layered(rng, nz, nx, vmin, vmin + 0.75 * r, sediments)
    z, x = layers.grid(nz, nx)
    mask = salt_mask(rng, z, x, roughness=0.15 if difficulty == "A" else 0.4, diapir=difficulty == "B")
    v[mask] = rng.uniform(vmax - 0.05 * r, vmax)
    return v


def draw_grf(rng: np.random.Generator, nz: int, nx: int, vmin: float, vmax: float, difficulty: str) -> np.ndarray:
    """A band-limited Gaussian random field (plus a depth trend in B) mapped onto ``[vmin, vmax]``."""
    if difficulty == "A":
        corr = rng.uniform(0.08, 0.2)
        field = gaussian_random_field(rng, nz, nx, corr, corr)
    else:
        field = gaussian_random_field(rng, nz, nx, rng.uniform(0.03, 0.08), rng.uniform(0.1, 0.3))
        z, _ = layers.grid(nz, nx)
        field = field + rng.uniform(0.5, 1.5) * 2 * np.sqrt(3) * (z - 0.5)  # trend of std 0.5–1.5
    return rescale(field, vmin, vmax)


FAMILIES: dict[str, Callable[..., np.ndarray]] = {
    **{name: _layered_family(name) for name in LAYERED},
    "salt": draw_salt,
    "grf": draw_grf,
}
DIFFICULTIES = ("A", "B")
