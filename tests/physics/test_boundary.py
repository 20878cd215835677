"""The PML and free-surface options: exact adjoints (dot tests, Taylor), absorption against a large-domain
reference, and the free-surface ghost against the image source (polarity −1, delay 2z/c)."""

import numpy as np
import pytest
from physics_helpers import SHAPE, SPACING, random_velocity, tiny_geometry
from test_acoustic_physics import green2d_trace

from geomem.errors import ValueRangeError
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.acquisition import Geometry
from geomem.physics.operator import dottest, taylor_test

VARIANTS = [("pml", False), ("pml", True), ("sponge", True)]


def tiny_op(boundary, free_surface, space_order=8, nbl=10):
    geom = Geometry.surface(SHAPE, SPACING, n_src=2, t_max=300.0, space_order=space_order)
    return AcousticOperator(SHAPE, SPACING, geom, space_order=space_order, nbl=nbl, dtype=np.float64,
                            boundary=boundary, free_surface=free_surface)


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda p: f"{p[0]}{'-fs' if p[1] else ''}")
def op(request):
    return tiny_op(*request.param)


def test_dottest(op):
    for seed in (0, 1):
        lhs, rhs, rel = dottest(op.jacobian(random_velocity(seed)), rng=seed)
        assert abs(lhs) > 1e-3
        assert rel <= 1e-12, (lhs, rhs, rel)


def test_taylor_second_order(op):
    d_obs = op.forward(random_velocity(10))
    dm = 0.2 * np.random.default_rng(5).standard_normal((1, *SHAPE))
    res = taylor_test(lambda m: op.misfit_and_gradient(m, d_obs, 0.5), random_velocity(11), dm,
                      steps=2.0 ** -np.arange(2, 8))
    assert res["slope1"] == pytest.approx(2.0, abs=0.1), res


def test_gradient_matches_adjoint_born(op):
    v, d_obs = random_velocity(30), op.forward(random_velocity(31))
    _, g = op.misfit_and_gradient(v, d_obs, 1.0)
    np.testing.assert_allclose(g, op.jacobian(v).rmatvec(op.forward(v) - d_obs), rtol=1e-10,
                               atol=1e-14 * np.abs(g).max())


# a few (space order, layer width) pairs here; the full 4–12 × widths sweep is the slow test below
@pytest.mark.parametrize("space_order,nbl,free_surface", [(4, 3, True), (12, 6, False), (6, 14, True)])
def test_dottest_orders_and_widths(space_order, nbl, free_surface):
    op = tiny_op("pml", free_surface, space_order, nbl)
    _, _, rel = dottest(op.jacobian(random_velocity(3)), rng=3)
    assert rel <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("space_order", [4, 6, 8, 10, 12])
@pytest.mark.parametrize("nbl", [6, 10, 20])
@pytest.mark.parametrize("free_surface", [False, True])
def test_dottest_and_taylor_sweep(space_order, nbl, free_surface):
    op = tiny_op("pml", free_surface, space_order, nbl)
    _, _, rel = dottest(op.jacobian(random_velocity(4)), rng=4)
    assert rel <= 1e-12
    d_obs = op.forward(random_velocity(12))
    dm = 0.2 * np.random.default_rng(6).standard_normal((1, *SHAPE))
    res = taylor_test(lambda m: op.misfit_and_gradient(m, d_obs, 0.5), random_velocity(13), dm,
                      steps=2.0 ** -np.arange(2, 8))
    assert res["slope1"] == pytest.approx(2.0, abs=0.1), res


def test_pml_absorbs_where_the_sponge_reflects():
    """24² model inside a domain large enough that nothing returns within 300 ms (v ≤ 3 km/s)."""
    geom = tiny_geometry()
    v = random_velocity(7)
    w = 50  # 2 · 500 m / 3 km/s = 333 ms > t_max
    big = SHAPE[0] + 2 * w
    shift = np.array([w * SPACING] * 2)
    geom_big = Geometry((big, big), (SPACING, SPACING), geom.src_coords + shift, geom.rec_coords + shift,
                        geom.t_max, geom.f0)
    ref = AcousticOperator((big, big), SPACING, geom_big, nbl=10, dtype=np.float64).forward(
        np.pad(v[0], w, mode="edge")[None])
    rel = {}
    for b in ("sponge", "pml"):
        d = AcousticOperator(SHAPE, SPACING, geom, nbl=10, dtype=np.float64, boundary=b).forward(v)
        rel[b] = np.linalg.norm(d - ref) / np.linalg.norm(ref)
    assert rel["pml"] < 0.01 < 0.1 < rel["sponge"], rel


def test_free_surface_ghost_polarity_and_delay():
    """Source 100 m below the free surface, receiver 200 m below it: the ghost (free-surface data minus
    absorbing-top data) is the image source's 2-D Green's trace with polarity −1, 2 z_s / c after the direct
    wave; each arrival's time is taken from its cross-correlation with its own analytic trace."""
    shape, h, c, zs, zr = (50, 41), 10.0, 2.0, 100.0, 300.0
    xs = 20 * h
    geom = Geometry(shape, (h, h), [[xs, zs]], [[xs, zr]], t_max=450.0)
    vel = np.full((1, *shape), c)
    d_abs = AcousticOperator(shape, h, geom, nbl=20, dtype=np.float64, boundary="pml").forward(vel)[0, :, 0]
    d_fs = AcousticOperator(shape, h, geom, nbl=20, dtype=np.float64, boundary="pml",
                            free_surface=True).forward(vel)[0, :, 0]
    ghost, t, dt = d_fs - d_abs, geom.time, geom.dt

    def lag(trace, ref):
        """Sub-sample lag (ms) maximizing the cross-correlation of ``trace`` with ``ref``, and the peak's
        normalized correlation."""
        xc = np.correlate(trace, ref, mode="full")
        k = int(np.argmax(np.abs(xc)))
        y0, y1, y2 = np.abs(xc[k - 1 : k + 2])
        frac = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
        return (k - (len(ref) - 1) + frac) * dt, xc[k] / (np.linalg.norm(trace) * np.linalg.norm(ref))

    lag_direct, corr_direct = lag(d_abs, green2d_trace(t, zr - zs, c, geom.f0))
    lag_ghost, corr_ghost = lag(ghost, green2d_trace(t, zr + zs, c, geom.f0))
    assert corr_direct > 0.98
    assert corr_ghost < -0.98  # polarity −1
    delay_error = lag_ghost - lag_direct  # measured delay minus 2 zs / c
    print(f"ghost: correlation with the image source's trace {corr_ghost:.4f}, delay error {delay_error:+.3f} ms "
          f"(dt = {dt:.3f} ms, 2 z_s / c = {2 * zs / c:g} ms)")
    assert abs(delay_error) <= dt / 2, (delay_error, dt)


def test_boundary_options_are_checked():
    with pytest.raises(ValueRangeError, match="boundary must be one of"):
        AcousticOperator(SHAPE, SPACING, tiny_geometry(), boundary="abc")
    with pytest.raises(ValueRangeError, match="raise nbl"):
        AcousticOperator(SHAPE, SPACING, tiny_geometry(), nbl=2, free_surface=True)


def test_sponge_stays_the_default():
    op = AcousticOperator(SHAPE, SPACING, tiny_geometry(), nbl=10)
    assert op.boundary == "sponge" and not op.free_surface
    assert op.damping().max() > 0
