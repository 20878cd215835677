"""Upfront physical validation of surveys and operators (issue #18): absurd physics is refused with a message
saying what to change, before anything is allocated or simulated."""

import types

import numpy as np
import pytest
from physics_helpers import SHAPE, SPACING, tiny_geometry

from geomem.errors import StabilityError, ValueRangeError
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.acquisition import Geometry, laplacian_weights, ricker


def test_subnormal_peak_frequency_is_refused():
    # used to raise ZeroDivisionError; once a Devito library (built with -ffast-math) is loaded, subnormals are
    # flushed to zero process-wide and 5e-324 arrives as 0.0: either way a ValueRangeError that names f0
    with pytest.raises(ValueRangeError, match="f0"):
        Geometry.surface(SHAPE, SPACING, f0=5e-324)
    with pytest.raises(ValueRangeError, match="f0"):
        ricker(5e-324, np.zeros(2))


def test_huge_spacing_is_refused_not_all_zero_shots():
    # --spacing 1e9 used to give dt > t_max, nt = 2 and all-zero shots
    with pytest.raises(StabilityError, match="not below t_max.*finer grid spacing"):
        Geometry.surface(SHAPE, 1e9)
    with pytest.raises(StabilityError, match="not below t_max"):
        AcousticOperator(SHAPE, 1e9)


def test_too_few_time_samples():
    with pytest.raises(StabilityError, match="fewer than 10"):
        Geometry.surface(SHAPE, SPACING, t_max=5.0)


def test_wavelet_aliased_in_time():
    with pytest.raises(StabilityError, match="samples the highest frequency"):
        Geometry.surface(SHAPE, SPACING, f0=600.0)


def test_grid_cannot_carry_the_wavelet():
    geom = tiny_geometry()
    with pytest.raises(StabilityError, match="points per shortest wavelength.*refine the grid"):
        geom.check_dispersion(0.1)  # 1000 · 0.1 / (2 · 15 · 10) = 0.33 points
    with pytest.raises(StabilityError, match="points per shortest wavelength"):
        AcousticOperator(SHAPE, SPACING, geom, nbl=4).check_velocity(np.full((1, *SHAPE), 0.1))


def test_space_order_bounds():
    with pytest.raises(ValueRangeError, match="even integer"):
        laplacian_weights(1000)
    with pytest.raises(ValueRangeError, match="even integer"):
        Geometry.surface(SHAPE, SPACING, space_order=7)


def test_memory_refused_with_estimate_and_limit(monkeypatch):
    with pytest.raises(ValueRangeError, match=r"needs about .* GB .* GB are available"):
        AcousticOperator((200_000, 200_000), SPACING)  # ~2 TB of wavefields
    op = AcousticOperator((300, 300), SPACING)
    est = op.memory_estimate()
    assert est["gradient"] - est["forward"] == (op.nt + 1) * (340 + 8) ** 2 * 4
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: types.SimpleNamespace(available=est["forward"] + 1))
    op.check_memory("forward")
    with pytest.raises(ValueRangeError, match="the gradient needs about"):
        op.check_memory("gradient")
