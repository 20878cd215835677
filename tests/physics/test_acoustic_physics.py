"""Physics sanity of the acoustic operator: arrival times against the 2-D Green's function, reciprocity,
batching, pickling, and the Born-perturbation halo pitfall."""

import pickle

import numpy as np
import pytest
from physics_helpers import SHAPE, SPACING, random_velocity, tiny_geometry

from geomem.errors import ShapeError
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.acquisition import Geometry, ricker


def green2d_trace(t, r, v, f0):
    """Ricker ∗ 2-D Green's function of (1/v²)∂tt − Δ, up to a constant:
    u(t) ∝ ∫_{r/v}^{t} w(t − τ) / √(τ² − r²/v²) dτ = ∫_0^{acosh(v t / r)} w(t − (r/v) cosh s) ds."""
    out = np.zeros_like(t)
    for i, ti in enumerate(t):
        if ti * v <= r:
            continue
        s = np.linspace(0.0, np.arccosh(ti * v / r), 4001)
        out[i] = np.trapezoid(ricker(f0, ti - (r / v) * np.cosh(s)), s)
    return out


def test_homogeneous_arrivals_match_green_function():
    shape, v = (48, 48), 2.0
    xs = zs = 23 * SPACING
    xr = xs + np.array([60.0, 100.0, 140.0, 180.0])
    geom = Geometry(shape, (SPACING, SPACING), [[xs, zs]], np.stack([xr, np.full_like(xr, zs)], 1), t_max=220.0)
    op = AcousticOperator(shape, SPACING, geom, nbl=20, dtype=np.float64)
    d = op.forward(np.full((1, *shape), v))[0]
    t = geom.time
    for j, x in enumerate(xr):
        ref = green2d_trace(t, x - xs, v, geom.f0)
        # peak of the (negative-lobe-free) main arrival within two samples of the analytic one
        assert abs(np.argmax(d[:, j]) - np.argmax(ref)) <= 2, (j, np.argmax(d[:, j]), np.argmax(ref))
        corr = np.dot(d[:, j], ref) / (np.linalg.norm(d[:, j]) * np.linalg.norm(ref))
        assert corr > 0.98, (j, corr)
    # causality: (almost) nothing before the first break at distance / velocity (the wavelet starts at t = 0)
    quiet = t < (xr[-1] - xs) / v - 5.0
    assert np.abs(d[quiet, -1]).max() < 1e-3 * np.abs(d[:, -1]).max()


def test_source_receiver_reciprocity():
    a, b = [37.0, 23.0], [181.0, 152.0]  # off-grid positions: interpolation and injection weights matter
    geom = Geometry(SHAPE, (SPACING, SPACING), [a, b], [a, b], t_max=250.0)
    op = AcousticOperator(SHAPE, SPACING, geom, nbl=10, dtype=np.float64)
    d = op.forward(random_velocity(7))
    ab, ba = d[0, :, 1], d[1, :, 0]
    assert np.abs(ab).max() > 0
    np.testing.assert_allclose(ab, ba, rtol=0, atol=1e-10 * np.abs(ab).max())


def test_batch_forward_equals_single(op32):
    v = np.concatenate([random_velocity(1), random_velocity(2)])[:, None]
    batch = op32.forward(v)
    assert batch.shape == (2, *op32.data_shape) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[1], op32.forward(v[1]))


def test_pickle_roundtrip_rebuilds_and_matches(op32):
    v = random_velocity(4)
    clone = pickle.loads(pickle.dumps(op32))
    assert clone._dv is None  # shipped without Devito objects
    np.testing.assert_array_equal(clone.forward(v), op32.forward(v))


def test_born_perturbation_halo_is_checked(op64):
    from devito import Function

    grid = op64._devito()["grid"]
    wrong = Function(name="dm_wrong", grid=grid, space_order=2)  # halo 2 instead of 4
    with pytest.raises(ShapeError, match="halo"):
        op64.check_halo(wrong)
    op64.check_halo(Function(name="dm_ok", grid=grid, space_order=op64.space_order))


def test_born_spike_near_edge_lands_where_it_should(op64):
    """A halo mismatch reads the perturbation at shifted offsets (relative error ~1); a spike next to the
    grid edge would expose it. Born data of the spike must match the finite difference."""
    v = random_velocity(8)
    dv = np.zeros((1, *SHAPE))
    dv[0, 3, 1] = 1.0
    born = op64.jacobian(v).matvec(dv)
    h = 1e-3
    fd = (op64.forward(v + h * dv) - op64.forward(v - h * dv)) / (2 * h)
    assert np.linalg.norm(fd - born) / np.linalg.norm(born) < 1e-4


def test_data_shape_and_time_axis(op32):
    geom = tiny_geometry()
    assert op32.data_shape == (geom.n_src, geom.nt, geom.n_rec)
    assert geom.time[-1] >= geom.t_max and geom.dt < 1.0
