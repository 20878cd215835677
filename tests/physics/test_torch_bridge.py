"""The torch autograd bridge: Taylor test in normalized coordinates, backward = adjoint Born, clamp."""

import numpy as np
import pytest
import torch
from physics_helpers import SHAPE, random_velocity

from geomem.geology.parameterization import Parameterization
from geomem.physics.operator import taylor_test
from geomem.physics.torch_bridge import as_torch

PARAM = Parameterization(1.5, 3.5)


def test_misfit_taylor_in_normalized_coordinates(op64):
    T = as_torch(op64, PARAM)
    d_obs = torch.as_tensor(op64.forward(random_velocity(40)))
    x0 = PARAM.to_normalized(random_velocity(41))  # inside (-1, 1): clamp inactive

    def fun(x):
        xt = torch.tensor(x, requires_grad=True)
        phi = T.misfit(xt, d_obs, 0.5)
        phi.backward()
        return float(phi.detach()), xt.grad.numpy()

    dx = 0.1 * np.random.default_rng(2).standard_normal((1, *SHAPE))
    res = taylor_test(fun, x0, dx, steps=2.0 ** -np.arange(2, 8))
    assert res["slope1"] == pytest.approx(2.0, abs=0.1), res


def test_forward_backward_is_adjoint_born_with_chain_rule(op64):
    T = as_torch(op64, PARAM)
    x = torch.tensor(PARAM.to_normalized(random_velocity(42)), requires_grad=True)
    d = T(x)
    g = torch.randn(d.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    (d * g).sum().backward()
    v = PARAM.to_velocity(x.detach().numpy())
    expected = op64.jacobian(v).rmatvec(g.numpy()) * PARAM.dv_dx
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12, atol=1e-14 * np.abs(expected).max())


def test_batched_misfit_and_clamp(op64):
    T = as_torch(op64, PARAM)
    d_obs = torch.as_tensor(op64.forward(random_velocity(43)))
    x = torch.tensor(np.stack([PARAM.to_normalized(random_velocity(44)), PARAM.to_normalized(random_velocity(45))]))
    x[1, 0, 5, 5] = 1.5  # outside [-1, 1]: clamped to vmax, zero gradient there
    x.requires_grad_(True)
    phi = T.misfit(x, d_obs, 1.0)
    assert phi.shape == (2,)
    phi.sum().backward()
    for b in range(2):
        vb = PARAM.to_velocity(x.detach().numpy()[b])
        ref_phi, ref_g = op64.misfit_and_gradient(vb, d_obs.numpy(), 1.0)
        assert float(phi[b].detach()) == pytest.approx(ref_phi, rel=1e-12)
        ref_g = ref_g * PARAM.dv_dx
        if b == 1:
            assert ref_g[0, 5, 5] != 0 and x.grad[1, 0, 5, 5] == 0
            ref_g[0, 5, 5] = 0.0
        np.testing.assert_allclose(x.grad[b].numpy(), ref_g, rtol=1e-12, atol=1e-14 * np.abs(ref_g).max())


def test_float32_tensor_roundtrip(op32):
    T = as_torch(op32)
    v = torch.tensor(random_velocity(46), dtype=torch.float32)
    d = T(v)
    assert d.dtype == torch.float32 and tuple(d.shape) == op32.data_shape
