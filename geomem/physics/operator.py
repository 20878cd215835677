"""The forward-operator protocol and the public adjointness and Taylor tests.

A forward operator maps a model ``m`` of shape ``model_shape`` to data ``d = F(m)`` of shape
``data_shape``. For the acoustic operator the model is velocity ``(1, nz, nx)`` in km/s and the data
are shot records ``(n_src, nt, n_rec)``; for the toy operators both are small vectors. Arrays are NumPy;
:mod:`geomem.physics.torch_bridge` puts an operator inside a torch graph.

``jacobian(m)`` returns a :class:`LinearOperator` ``J`` at ``m``: ``J.matvec(dm) = J dm`` (Born
modelling for FWI) and ``J.rmatvec(dd) = Jᵀ dd`` (adjoint Born). ``misfit_and_gradient`` returns

    φ(m) = ½ ‖F(m) − d_obs‖² / γ²,     ∇φ(m) = Jᵀ (F(m) − d_obs) / γ².
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from geomem.errors import ShapeError


@dataclass
class LinearOperator:
    """A linear map given by its action and the action of its adjoint."""

    shape_in: tuple[int, ...]
    shape_out: tuple[int, ...]
    _matvec: Callable[[np.ndarray], np.ndarray]
    _rmatvec: Callable[[np.ndarray], np.ndarray]

    def matvec(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.shape != self.shape_in:
            raise ShapeError(f"matvec expects shape {self.shape_in}, got {x.shape}")
        return self._matvec(x)

    def rmatvec(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != self.shape_out:
            raise ShapeError(f"rmatvec expects shape {self.shape_out}, got {y.shape}")
        return self._rmatvec(y)

    def to_dense(self) -> np.ndarray:
        """The explicit matrix ``(prod(shape_out), prod(shape_in))``, column by column (small problems)."""
        n = int(np.prod(self.shape_in))
        cols = []
        for i in range(n):
            e = np.zeros(n)
            e[i] = 1.0
            cols.append(np.ravel(self.matvec(e.reshape(self.shape_in))))
        return np.stack(cols, axis=1)


class ForwardOperator(abc.ABC):
    """``F: model → data`` with its Jacobian and a least-squares misfit gradient."""

    model_shape: tuple[int, ...]
    data_shape: tuple[int, ...]

    @abc.abstractmethod
    def forward(self, m: np.ndarray) -> np.ndarray:
        """``F(m)``: a model of ``model_shape`` (or a batch ``(B, *model_shape)``) to data."""

    @abc.abstractmethod
    def jacobian(self, m: np.ndarray) -> LinearOperator:
        """The Jacobian ``J = ∂F/∂m`` at ``m`` as a matrix-free linear operator."""

    def misfit_and_gradient(self, m: np.ndarray, d_obs: np.ndarray, gamma: float) -> tuple[float, np.ndarray]:
        """``½‖F(m) − d_obs‖²/γ²`` and its gradient ``Jᵀ(F(m) − d_obs)/γ²``."""
        r = self.forward(m) - d_obs
        return 0.5 * float(np.sum(r * r)) / gamma**2, self.jacobian(m).rmatvec(r) / gamma**2


def dottest(
    op: LinearOperator, rng: np.random.Generator | int | None = 0, dtype=np.float64
) -> tuple[float, float, float]:
    """Adjointness test ``⟨J x, y⟩ = ⟨x, Jᵀ y⟩`` with random ``x, y``.

    Returns ``(lhs, rhs, relative_error)`` with ``relative_error = |lhs − rhs| / max(|lhs|, |rhs|)``.
    Expect ~1e-12 or better in float64 and ~1e-6 in float32 for a correct pair.
    """
    rng = np.random.default_rng(rng)
    x = rng.standard_normal(op.shape_in).astype(dtype)
    y = rng.standard_normal(op.shape_out).astype(dtype)
    lhs = float(np.vdot(op.matvec(x).astype(np.float64), y.astype(np.float64)))
    rhs = float(np.vdot(x.astype(np.float64), op.rmatvec(y).astype(np.float64)))
    return lhs, rhs, abs(lhs - rhs) / max(abs(lhs), abs(rhs), np.finfo(float).tiny)


def taylor_test(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    m0: np.ndarray,
    dm: np.ndarray,
    steps: np.ndarray | None = None,
) -> dict[str, np.ndarray | float]:
    """Taylor test of a gradient: ``|φ(m0 + h dm) − φ(m0) − h ⟨∇φ(m0), dm⟩| = O(h²)``.

    ``fun(m)`` returns ``(φ(m), ∇φ(m))`` (e.g. ``lambda m: op.misfit_and_gradient(m, d, γ)``).
    Returns the step sizes, the zeroth-order remainders ``|φ(m0 + h dm) − φ(m0)|`` (slope 1), the
    first-order remainders (slope 2 for a correct gradient) and the fitted log–log slopes.
    """
    steps = np.asarray(steps if steps is not None else 2.0 ** -np.arange(0, 8), dtype=float)
    f0, g0 = fun(m0)
    directional = float(np.vdot(np.ravel(g0).astype(np.float64), np.ravel(dm).astype(np.float64)))
    r0, r1 = [], []
    for h in steps:
        fh, _ = fun(m0 + h * dm)
        r0.append(abs(fh - f0))
        r1.append(abs(fh - f0 - h * directional))
    r0, r1 = np.asarray(r0), np.asarray(r1)
    slope0 = float(np.polyfit(np.log(steps), np.log(np.maximum(r0, 1e-300)), 1)[0])
    slope1 = float(np.polyfit(np.log(steps), np.log(np.maximum(r1, 1e-300)), 1)[0])
    return {"steps": steps, "zeroth": r0, "first": r1, "slope0": slope0, "slope1": slope1}
