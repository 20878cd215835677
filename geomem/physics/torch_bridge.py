"""Put a forward operator inside a torch graph.

``as_torch(op, parameterization)`` returns a :class:`TorchOperator` ``T`` with

- ``T(x)``: data ``F(v(x))``; backward is ``Jᵀ g`` (adjoint Born, one forward with save and one adjoint
  solve per shot);
- ``T.misfit(x, d_obs, gamma)``: ``φ = ½‖F(v(x)) − d_obs‖²/γ²`` per model; backward is the adjoint-state
  gradient computed together with ``φ`` (no extra forward).

``op`` is any :class:`~geomem.physics.operator.ForwardOperator` (the acoustic operator, a
:class:`~geomem.physics.parallel.ShotParallel`, a toy operator). Inputs are one model ``model_shape`` or a
batch ``(B, *model_shape)``, on any device and dtype: arrays go to the CPU for the solver and the results
come back to the input's device and dtype.

With a :class:`~geomem.geology.parameterization.Parameterization` the input is in normalized coordinates
and ``v = to_velocity(x)`` is applied in torch, so autograd carries the chain rule ``∂v/∂x = v_h``. The
map clamps to ``[vmin, vmax]``: where ``x`` is outside ``[−1, 1]`` the gradient is zero (torch's clamp).
"""

from __future__ import annotations

import numpy as np
import torch

from geomem.errors import ShapeError
from geomem.physics.operator import ForwardOperator


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _like(a: np.ndarray, ref: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=ref.dtype, device=ref.device)


class _Forward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, op):
        ctx.op, ctx.v = op, _to_numpy(v)
        return _like(op.forward(ctx.v), v)

    @staticmethod
    def backward(ctx, g):
        op, v, gn = ctx.op, ctx.v, _to_numpy(g)
        if v.ndim == len(op.model_shape):
            grad = op.jacobian(v).rmatvec(gn)
        else:
            grad = np.stack([op.jacobian(vi).rmatvec(gi) for vi, gi in zip(v, gn, strict=True)])
        return _like(grad, g), None


class _Misfit(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, d_obs, op, gamma):
        vn, dn = _to_numpy(v), _to_numpy(d_obs)
        if vn.ndim == len(op.model_shape):
            phi, grad = op.misfit_and_gradient(vn, dn, gamma)
            ctx.grad = np.asarray(grad, dtype=np.float64)
            return torch.tensor(phi, dtype=v.dtype, device=v.device)
        if dn.ndim == len(op.data_shape):
            dn = np.broadcast_to(dn, (vn.shape[0], *dn.shape))
        pairs = [op.misfit_and_gradient(vi, di, gamma) for vi, di in zip(vn, dn, strict=True)]
        ctx.grad = np.stack([np.asarray(g, dtype=np.float64) for _, g in pairs])
        return _like(np.array([p for p, _ in pairs]), v)

    @staticmethod
    def backward(ctx, gphi):
        g = _like(ctx.grad, gphi)
        scale = gphi.reshape(gphi.shape + (1,) * (g.ndim - gphi.ndim))
        return g * scale, None, None, None


class TorchOperator:
    """Differentiable ``x ↦ F(v(x))`` and misfit for torch tensors (see the module docstring)."""

    def __init__(self, op: ForwardOperator, parameterization=None):
        self.op, self.parameterization = op, parameterization

    def velocity(self, x: torch.Tensor) -> torch.Tensor:
        """``v(x)``: the identity without a parameterization, else ``to_velocity(x)`` (clamped)."""
        return x if self.parameterization is None else self.parameterization.to_velocity(x)

    def _check(self, x: torch.Tensor) -> None:
        ms = tuple(self.op.model_shape)
        if tuple(x.shape) != ms and tuple(x.shape[1:]) != ms:
            raise ShapeError(f"expected a model {ms} or a batch (B, {', '.join(map(str, ms))}), got {tuple(x.shape)}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Data ``F(v(x))``: ``data_shape`` or ``(B, *data_shape)``."""
        self._check(x)
        return _Forward.apply(self.velocity(x), self.op)

    def misfit(self, x: torch.Tensor, d_obs, gamma: float) -> torch.Tensor:
        """``½‖F(v(x)) − d_obs‖²/γ²``: a scalar for one model, ``(B,)`` for a batch; ``d_obs`` is
        ``data_shape`` (shared) or ``(B, *data_shape)``."""
        self._check(x)
        d = torch.as_tensor(d_obs)
        return _Misfit.apply(self.velocity(x), d, self.op, float(gamma))


def as_torch(op: ForwardOperator, parameterization=None) -> TorchOperator:
    """Wrap ``op`` for torch autograd, optionally behind a normalized-coordinate ``parameterization``."""
    return TorchOperator(op, parameterization)
