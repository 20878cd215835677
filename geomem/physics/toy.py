"""Toy forward operators of the stylized problems (paper Fig. 1), implementing ``ForwardOperator``.

- :class:`Cubic1D`:     ``F(x) = x + a x³`` (``a = 0.3``), ``F'(x) = 1 + 3a x²``; model and data ``(1,)``.
- :class:`Quadratic2D`: ``F(x) = [x₁ + b x₁x₂, x₂ + c x₁²]`` (``b = 0.3, c = 0.2``), with Jacobian
  ``[[1 + b x₂, b x₁], [2c x₁, 1]]``; model and data ``(2,)``.
- :class:`MatrixOperator`: ``F(x) = A x`` with ``A`` of shape ``(m, d)``; model ``(d,)``, data ``(m,)``.
- :class:`IdentityOperator`: ``F(x) = x`` for models of any shape (denoising; data given directly).

``forward`` accepts one model of ``model_shape`` or a batch ``(B, *model_shape)``; ``jacobian`` takes
one model. Models are in the priors' normalized coordinates (the toy problems have no velocity).
"""

from __future__ import annotations

import numpy as np

from geomem.errors import ShapeError, ValueRangeError
from geomem.physics.operator import ForwardOperator, LinearOperator


def _as_models(m: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    """``m`` as a batch ``(B, *shape)`` (float64) and whether it was a single model."""
    m = np.asarray(m, dtype=np.float64)
    if m.shape == shape:
        return m[None], True
    if m.ndim == len(shape) + 1 and m.shape[1:] == shape:
        return m, False
    raise ShapeError(f"expected a model of shape {shape} or a batch (B, {', '.join(map(str, shape))}), got {m.shape}")


def _check_finite(m: np.ndarray) -> None:
    if not np.all(np.isfinite(m)):
        raise ValueRangeError("the model contains NaN or inf")


def _dense(jac: np.ndarray) -> LinearOperator:
    """A small explicit matrix as a :class:`LinearOperator`."""
    return LinearOperator((jac.shape[1],), (jac.shape[0],), lambda v: jac @ v, lambda w: jac.T @ w)


class Cubic1D(ForwardOperator):
    """``F(x) = x + a x³``."""

    def __init__(self, a: float = 0.3):
        self.a = float(a)
        self.model_shape = (1,)
        self.data_shape = (1,)

    def forward(self, m: np.ndarray) -> np.ndarray:
        x, single = _as_models(m, self.model_shape)
        _check_finite(x)
        out = x + self.a * x**3
        return out[0] if single else out

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """``F'(x) = 1 + 3a x²`` elementwise (any shape)."""
        return 1.0 + 3.0 * self.a * np.asarray(x, dtype=np.float64) ** 2

    def jacobian(self, m: np.ndarray) -> LinearOperator:
        x, single = _as_models(m, self.model_shape)
        if not single:
            raise ShapeError(f"jacobian takes one model of shape {self.model_shape}, got {np.shape(m)}")
        _check_finite(x)
        return _dense(self.derivative(x[0]).reshape(1, 1))


class Quadratic2D(ForwardOperator):
    """``F(x) = [x₁ + b x₁x₂, x₂ + c x₁²]``."""

    def __init__(self, b: float = 0.3, c: float = 0.2):
        self.b, self.c = float(b), float(c)
        self.model_shape = (2,)
        self.data_shape = (2,)

    def forward(self, m: np.ndarray) -> np.ndarray:
        x, single = _as_models(m, self.model_shape)
        _check_finite(x)
        x1, x2 = x[:, 0], x[:, 1]
        out = np.stack([x1 + self.b * x1 * x2, x2 + self.c * x1**2], axis=1)
        return out[0] if single else out

    def jacobian_matrix(self, m: np.ndarray) -> np.ndarray:
        """The 2×2 Jacobian ``[[1 + b x₂, b x₁], [2c x₁, 1]]``."""
        x, single = _as_models(m, self.model_shape)
        if not single:
            raise ShapeError(f"jacobian takes one model of shape {self.model_shape}, got {np.shape(m)}")
        _check_finite(x)
        x1, x2 = x[0]
        return np.array([[1.0 + self.b * x2, self.b * x1], [2.0 * self.c * x1, 1.0]])

    def jacobian(self, m: np.ndarray) -> LinearOperator:
        return _dense(self.jacobian_matrix(m))


class MatrixOperator(ForwardOperator):
    """``F(x) = A x`` for a fixed matrix ``A`` of shape ``(m, d)``."""

    def __init__(self, A: np.ndarray):
        A = np.asarray(A, dtype=np.float64)
        if A.ndim != 2 or A.size == 0:
            raise ShapeError(f"A must be a non-empty (m, d) matrix, got shape {A.shape}")
        if not np.all(np.isfinite(A)):
            raise ValueRangeError("A contains NaN or inf")
        self.A = A
        self.model_shape = (A.shape[1],)
        self.data_shape = (A.shape[0],)

    def forward(self, m: np.ndarray) -> np.ndarray:
        x, single = _as_models(m, self.model_shape)
        _check_finite(x)
        out = x @ self.A.T
        return out[0] if single else out

    def jacobian(self, m: np.ndarray) -> LinearOperator:
        x, single = _as_models(m, self.model_shape)
        if not single:
            raise ShapeError(f"jacobian takes one model of shape {self.model_shape}, got {np.shape(m)}")
        return _dense(self.A)


class IdentityOperator(ForwardOperator):
    """``F(x) = x`` for models of any ``shape`` (data and model shapes equal; Jacobian the identity)."""

    def __init__(self, shape: tuple[int, ...]):
        shape = tuple(int(n) for n in shape)
        if not shape or any(n < 1 for n in shape):
            raise ShapeError(f"shape must be a non-empty tuple of positive sizes, got {shape}")
        self.model_shape = self.data_shape = shape

    def forward(self, m: np.ndarray) -> np.ndarray:
        x, single = _as_models(m, self.model_shape)
        _check_finite(x)
        return x[0] if single else x

    def jacobian(self, m: np.ndarray) -> LinearOperator:
        return LinearOperator(self.model_shape, self.data_shape, lambda v: np.asarray(v, dtype=np.float64),
                              lambda w: np.asarray(w, dtype=np.float64))
