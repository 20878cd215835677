"""Adjointness (dot tests), gradient (Taylor test) and Born linearization of the acoustic operator."""

import numpy as np
import pytest
from physics_helpers import SHAPE, random_velocity

from geomem.physics.operator import dottest, taylor_test


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dottest_float64(op64, seed):
    lhs, rhs, rel = dottest(op64.jacobian(random_velocity(seed)), rng=seed)
    assert abs(lhs) > 1e-3  # a non-trivial pair
    assert rel <= 1e-10, (lhs, rhs, rel)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dottest_float32(op32, seed):
    # float32 round-off is ~1e-7 of ‖Jx‖‖y‖; a random pair with an unusually small ⟨Jx, y⟩ can show a larger
    # *relative* error (seed 3 gave 7e-5), so the bound is checked on these representative pairs
    _, _, rel = dottest(op32.jacobian(random_velocity(seed)), rng=seed, dtype=np.float32)
    assert rel <= 1e-5


def test_taylor_misfit_gradient_second_order(op64):
    v_true, v0 = random_velocity(10), random_velocity(11)
    d_obs = op64.forward(v_true)
    dm = 0.2 * np.random.default_rng(5).standard_normal((1, *SHAPE))
    res = taylor_test(lambda m: op64.misfit_and_gradient(m, d_obs, 0.5), v0, dm, steps=2.0 ** -np.arange(2, 8))
    assert res["slope0"] == pytest.approx(1.0, abs=0.15)
    assert res["slope1"] == pytest.approx(2.0, abs=0.1), res
    # each halving of h divides the first-order remainder by about 4
    ratios = res["first"][:-1] / res["first"][1:]
    assert np.all(np.abs(ratios - 4.0) < 0.4), ratios


def test_born_matches_finite_difference(op64):
    v = random_velocity(20)
    dv = 0.3 * np.random.default_rng(1).standard_normal((1, *SHAPE))
    born = op64.jacobian(v).matvec(dv)
    f0 = op64.forward(v)
    errs = []
    for h in (1e-2, 5e-3):
        fd = op64.forward(v + h * dv) - f0
        errs.append(np.linalg.norm(fd - h * born) / np.linalg.norm(h * born))
    assert errs[0] < 3e-2
    assert errs[1] == pytest.approx(errs[0] / 2, rel=0.1)  # first-order remainder → linear in h


def test_misfit_gradient_matches_adjoint_born(op64):
    v, d_obs = random_velocity(30), op64.forward(random_velocity(31))
    phi, g = op64.misfit_and_gradient(v, d_obs, 2.0)
    r = op64.forward(v) - d_obs
    assert phi == pytest.approx(0.5 * np.sum(r**2) / 4.0, rel=1e-12)
    np.testing.assert_allclose(g, op64.jacobian(v).rmatvec(r) / 4.0, rtol=1e-10, atol=1e-14 * np.abs(g).max())
