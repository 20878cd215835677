"""Velocity-model families: determinism, bounds, layering, faults, salt and Gaussian-field statistics."""

import numpy as np
import pytest

from geomem.geology import FAMILIES, make_model_set
from geomem.geology.families import draw_salt
from geomem.geology.generator import generate_models
from geomem.geology.grf import gaussian_random_field
from geomem.geology.layers import Fault, Interfaces, increasing_velocities, render

ALL = [(f, d) for f in FAMILIES for d in "AB"]


def flat_interfaces(depths):
    j = len(depths)
    return Interfaces(np.asarray(depths, float), np.zeros((j, 0)), np.zeros(0), np.zeros((j, 0)))


@pytest.mark.parametrize("family, difficulty", ALL)
def test_prefix_property_and_bounds(family, difficulty):
    small, _ = generate_models(family, 5, (32, 40), seed=7, vmin=2.0, vmax=3.5, difficulty=difficulty)
    big, _ = generate_models(family, 12, (32, 40), seed=7, vmin=2.0, vmax=3.5, difficulty=difficulty)
    assert small.shape == (5, 1, 32, 40) and small.dtype == np.float32
    np.testing.assert_array_equal(small, big[:5])
    assert big.min() >= 2.0 and big.max() <= 3.5
    other, _ = generate_models(family, 5, (32, 40), seed=8, vmin=2.0, vmax=3.5, difficulty=difficulty)
    assert not np.array_equal(other, small)
    # every model differs from every other: distinct draws per index
    flat = big.reshape(12, -1)
    assert len({row.tobytes() for row in flat}) == 12


def test_families_differ_for_the_same_seed():
    a = make_model_set("flatvel", n=3, size=32, seed=0).models
    b = make_model_set("flatfault", n=3, size=32, seed=0).models
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("difficulty", "AB")
def test_flat_layers_are_laterally_constant_and_increase_with_depth(difficulty):
    m = make_model_set("flatvel", n=30, size=(40, 24), seed=1, difficulty=difficulty).models[:, 0]
    np.testing.assert_array_equal(m, np.repeat(m[:, :, :1], m.shape[2], axis=2))
    assert (np.diff(m, axis=1) >= 0).all()
    n_layers = np.array([len(np.unique(col)) for col in m[:, :, 0]])
    lo, hi = (3, 5) if difficulty == "A" else (5, 9)
    assert n_layers.min() >= 2 and n_layers.max() <= hi and np.median(n_layers) >= lo - 1


@pytest.mark.parametrize("family", ["curvevel", "flatfault"])
def test_velocity_never_decreases_down_a_column(family):
    # curved unfaulted layers, and flat layers cut by normal faults (A), keep v non-decreasing in depth
    m = make_model_set(family, n=30, size=48, seed=2, difficulty="A").models[:, 0]
    assert (np.diff(m, axis=1) >= 0).all()


def test_curvevel_interfaces_are_curved():
    m = make_model_set("curvevel", n=20, size=48, seed=3).models[:, 0]
    laterally_varying = [not np.all(x == x[:, :1]) for x in m]
    assert np.mean(laterally_varying) > 0.9


def test_vertical_fault_shifts_hanging_wall_by_the_throw():
    nz, nx, k = 40, 30, 6
    interfaces = flat_interfaces([0.2, 0.45, 0.7])
    v = np.array([1.5, 2.0, 2.5, 3.0])
    fault = Fault(x0=0.5, z0=0.5, dip=90.0, direction=1, throw=k / nz)
    faulted = render(interfaces, v, nz, nx, [fault])
    plain = render(interfaces, v, nz, nx)
    left, right = slice(0, nx // 2), slice(nx // 2, nx)  # x > 0.5 is the hanging wall (direction +1)
    np.testing.assert_array_equal(faulted[:, left], plain[:, left])
    np.testing.assert_array_equal(faulted[k:, right], plain[:-k, right])
    np.testing.assert_array_equal(faulted[:k, right], v[0])


def jump_depths(column):
    return np.nonzero(np.diff(column))[0]


@pytest.mark.parametrize("throw", [0.1, -0.1])
def test_dipping_fault_displaces_interfaces_by_the_throw(throw):
    nz, nx = 50, 50
    interfaces = flat_interfaces([0.3, 0.6])
    v = np.array([1.5, 2.5, 3.5])
    fault = Fault(x0=0.5, z0=0.5, dip=60.0, direction=1, throw=throw)
    m = render(interfaces, v, nz, nx, [fault])
    footwall, hanging = m[:, 0], m[:, -1]  # the plane dips towards +x: the far right column is hanging wall
    assert fault.hanging_wall(np.array([0.5]), np.array([0.99]), nz, nx)[0]
    np.testing.assert_array_equal(jump_depths(hanging), jump_depths(footwall) + round(throw * nz))


def test_random_faults_offset_interfaces():
    m = make_model_set("flatfault", n=40, size=48, seed=4).models[:, 0]
    offset = [not np.array_equal(jump_depths(x[:, 0]), jump_depths(x[:, -1])) for x in m]
    assert np.mean(offset) > 0.8  # a fault can rarely cut only an edge region with no interface


def test_increasing_velocities():
    for seed in range(200):
        rng = np.random.default_rng(seed)
        k = int(rng.integers(1, 10))
        v = increasing_velocities(rng, k, 1.5, 4.5)
        assert len(v) == k and v[0] >= 1.5 and v[-1] <= 4.5
        assert (np.diff(v) > 0).all()


@pytest.mark.parametrize("difficulty", "AB")
def test_salt_body_is_fast_and_sediments_slower(difficulty):
    vmin, vmax = 1.5, 4.5
    for seed in range(10):
        v = draw_salt(np.random.default_rng(seed), 64, 64, vmin, vmax, difficulty)
        salt = v >= vmax - 0.05 * 3.0
        assert 0.01 < salt.mean() < 0.6
        assert v[~salt].max() <= vmin + 0.75 * 3.0
        assert not salt[0].any()  # salt lies below the surface


def test_grf_covariance_matches_the_gaussian_kernel():
    # C(h) = exp(-h²/(2ℓ²)); averaged over fields; standardizing each crop biases it slightly
    n, ell = 96, 0.06
    rng = np.random.default_rng(0)
    fields = np.stack([gaussian_random_field(rng, n, n, ell, ell) for _ in range(40)])
    for lag in (3, 6, 9):
        h = lag / n
        emp_x = (fields[:, :, lag:] * fields[:, :, :-lag]).mean()
        emp_z = (fields[:, lag:, :] * fields[:, :-lag, :]).mean()
        expected = np.exp(-(h**2) / (2 * ell**2))
        assert abs(emp_x - expected) < 0.06 and abs(emp_z - expected) < 0.06


def test_grf_anisotropic_lengths():
    rng = np.random.default_rng(1)
    f = np.stack([gaussian_random_field(rng, 64, 64, 0.03, 0.2) for _ in range(20)])
    cz = (f[:, 4:, :] * f[:, :-4, :]).mean()
    cx = (f[:, :, 4:] * f[:, :, :-4]).mean()
    assert cx > 0.9 and cz < 0.35  # exp(-(4/64)²/(2·0.2²)) ≈ 0.95, exp(-(4/64)²/(2·0.03²)) ≈ 0.11


def test_grf_models_span_the_range():
    m = make_model_set("grf", n=5, size=32, seed=0, vmin=1.5, vmax=3.0).models
    np.testing.assert_allclose(m.min(axis=(1, 2, 3)), 1.5, atol=1e-6)
    np.testing.assert_allclose(m.max(axis=(1, 2, 3)), 3.0, atol=1e-6)
