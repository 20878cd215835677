"""The data fidelity every posterior takes: operator, observed data, noise level γ and parameterization.

Data ``y = F(m(x)) + ε`` with ``ε ~ N(0, γ² I)`` (``M = y.size`` numbers); ``x`` are the prior's
(normalized) coordinates and ``m(x)`` the physical model — the clamped velocity of a
:class:`~geomem.geology.parameterization.Parameterization`, or ``x`` itself (toy operators). Per sample

    φ(x)        = ‖y − F(m(x))‖² / 2γ²                       (dimensionless misfit)
    ∇ₓφ(x)      = (∂m/∂x) Jᵀ (F(m(x)) − y) / γ²             (J = ∂F/∂m; ∂m/∂x = v_h inside [vmin, vmax], 0 outside)
    log p(y|x)  = −φ(x) − (M/2) log(2πγ²)
    misfit/noise = ‖y − F(m(x))‖ / (γ √M)                   (≈ 1 for a draw of the posterior)

γ lives here and nowhere else: samplers and closed-form posteriors read ``likelihood.gamma`` and call
these methods. Per-chain PDE solves run in this process or as one Dask task per chain (``client``): the
operator and ``y`` go to every worker once per likelihood, and each worker runs the copy of the operator resident
in its process (:func:`~geomem.physics.parallel.resident`: its Devito objects are built once per process, whatever
copies Dask hands it); counters record how many forward and gradient evaluations (per chain) were made.

One seeding rule for synthetic data (:meth:`Likelihood.from_truth`): ``γ = noise × RMS(F(m_true))`` and
``y = F(m_true) + γ z`` with ``z ~ N(0, I)`` from ``numpy.random.default_rng(seed)``.

>>> import numpy as np, torch
>>> from geomem.physics.toy import MatrixOperator
>>> lik = Likelihood(MatrixOperator(np.eye(2)), y=np.array([1.0, 0.0]), gamma=0.5)
>>> phi, grad = lik.misfit_and_gradient(torch.zeros(1, 2, dtype=torch.float64))
>>> float(phi[0]), grad[0].tolist()
(2.0, [-4.0, 0.0])
>>> round(float(lik.misfit_over_noise(torch.tensor([[1.0, 0.0]]))[0]), 6)
0.0
"""

from __future__ import annotations

import math

import numpy as np
import torch

from geomem.errors import ShapeError, ValueRangeError
from geomem.geology.parameterization import Parameterization
from geomem.physics.operator import ForwardOperator
from geomem.physics.parallel import on_resident, resident_key


def check_gamma(gamma: float) -> float:
    """γ as a float, checked finite and > 0."""
    g = float(gamma)
    if not (math.isfinite(g) and g > 0):
        raise ValueRangeError(f"gamma (data noise std) must be finite and > 0, got {gamma}")
    return g


def synthetic_data(clean: np.ndarray, noise: float, seed) -> tuple[np.ndarray, float]:
    """``(y, γ)`` with ``γ = noise × RMS(clean)`` and ``y = clean + γ z``, ``z ~ N(0, I)`` from
    ``numpy.random.default_rng(seed)`` (``seed``: an int or a sequence of ints). The one place noisy data
    are made from noise-free data."""
    noise = float(noise)
    if not (math.isfinite(noise) and noise > 0):
        raise ValueRangeError(f"noise (relative to the data RMS) must be finite and > 0, got {noise}")
    clean = np.asarray(clean, dtype=np.float64)
    rms = float(np.sqrt(np.mean(clean**2)))
    if not (math.isfinite(rms) and rms > 0):
        raise ValueRangeError("the noise-free data are all zero or not finite: the survey records nothing; "
                              "check the geometry, t_max and the model")
    gamma = noise * rms
    return clean + gamma * np.random.default_rng(seed).standard_normal(clean.shape), gamma


def _model(p: Parameterization | None, x: np.ndarray) -> np.ndarray:
    return p.to_velocity(x) if p is not None else x


def _value_and_gradient_one(operator, y, gamma, p, x):
    """``(φ, ∇ₓφ)`` for one model (module level so Dask workers can run it)."""
    phi, grad_m = operator.misfit_and_gradient(_model(p, x), y, gamma)
    if p is None:
        return phi, grad_m
    v = x * p.half_range + p.center
    return phi, grad_m * p.dv_dx * ((v >= p.vmin) & (v <= p.vmax))


def _forward_one(operator, y, gamma, p, x) -> np.ndarray:
    """``F(m(x))`` for one model, float64."""
    return np.asarray(operator.forward(_model(p, x)), dtype=np.float64)


def _residual_norm_one(operator, y, gamma, p, x) -> float:
    """``‖y − F(m(x))‖`` for one model: one forward solve, no adjoint."""
    r = _forward_one(operator, y, gamma, p, x) - y
    return float(np.sqrt(np.vdot(r, r)))


class Likelihood:
    """Gaussian data fidelity ``N(y; F(m(x)), γ² I)`` for batches of models in prior coordinates.

    Parameters
    ----------
    operator: a :class:`~geomem.physics.operator.ForwardOperator` (NumPy in, NumPy out).
    y: observed data of ``operator.data_shape``.
    gamma: the noise standard deviation γ (data units), finite and > 0.
    parameterization: maps prior coordinates to the operator's model (velocity, km/s); ``None``: identity.
    client: a Dask client (one task per chain), or ``None`` (this process).
    truth: optional true model in prior coordinates (synthetic problems), kept for scoring only.
    """

    def __init__(
        self,
        operator: ForwardOperator,
        y: np.ndarray,
        gamma: float,
        parameterization: Parameterization | None = None,
        client=None,
        truth: np.ndarray | None = None,
    ):
        y = np.asarray(y, dtype=np.float64)
        if tuple(y.shape) != tuple(operator.data_shape):
            raise ShapeError(f"observed data must have the operator's data shape {tuple(operator.data_shape)}, "
                             f"got {tuple(y.shape)}")
        if not np.all(np.isfinite(y)):
            raise ValueRangeError("observed data contain NaN or inf")
        self.operator = operator
        self.y = y
        self.gamma = check_gamma(gamma)
        self.parameterization = parameterization
        self.client = client
        self.truth = None if truth is None else np.asarray(truth, dtype=np.float64)
        self.n_forward = 0  # forward-only evaluations (per chain)
        self.n_gradient = 0  # misfit-and-gradient evaluations (per chain): one forward + one adjoint each
        self._refs = None

    @classmethod
    def from_truth(
        cls,
        operator: ForwardOperator,
        truth: np.ndarray,
        noise: float,
        parameterization: Parameterization | None = None,
        seed=0,
        client=None,
        clean: np.ndarray | None = None,
    ) -> Likelihood:
        """Synthetic data from a true model ``truth`` (in the operator's units, e.g. velocity km/s):
        ``γ = noise × RMS(F(truth))``, ``y = F(truth) + γ z`` (:func:`synthetic_data`). ``clean`` passes
        ``F(truth)`` when it is already computed (it must be exactly that)."""
        truth = np.asarray(truth, dtype=np.float64)
        if tuple(truth.shape) != tuple(operator.model_shape):
            raise ShapeError(f"truth must have the operator's model shape {tuple(operator.model_shape)}, "
                             f"got {tuple(truth.shape)}")
        clean = operator.forward(truth) if clean is None else clean
        y, gamma = synthetic_data(clean, noise, seed)
        x_true = parameterization.to_normalized(truth) if parameterization is not None else truth
        return cls(operator, y, gamma, parameterization, client=client, truth=x_true)

    @classmethod
    def of_data(cls, y: np.ndarray, gamma: float) -> Likelihood:
        """Data observed directly, ``F = identity`` (e.g. to weigh precomputed predictions ``F(x_n)``)."""
        from geomem.physics.toy import IdentityOperator

        y = np.asarray(y, dtype=np.float64)
        return cls(IdentityOperator(y.shape), y, gamma)

    # ------------------------------------------------------------------ shapes
    @property
    def model_shape(self) -> tuple[int, ...]:
        return tuple(self.operator.model_shape)

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.operator.data_shape)

    @property
    def n_data(self) -> int:
        return int(self.y.size)

    def with_client(self, client) -> Likelihood:
        """The same likelihood with per-chain solves on ``client`` (``None``: this process)."""
        return Likelihood(self.operator, self.y, self.gamma, self.parameterization, client, self.truth)

    def to_model(self, x):
        """Prior coordinates → the operator's model (clamped velocity with a parameterization)."""
        return _model(self.parameterization, x)

    # ------------------------------------------------------------------ per-chain evaluation
    def _per_chain(self, fn, x) -> list:
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().double().numpy()
        xs = np.asarray(x, dtype=np.float64)
        if xs.ndim != len(self.model_shape) + 1 or tuple(xs.shape[1:]) != self.model_shape:
            raise ShapeError(f"x must be a batch (B, {', '.join(map(str, self.model_shape))}), got {tuple(xs.shape)}")
        if not np.all(np.isfinite(xs)):
            raise ValueRangeError("x contains NaN or inf")
        args = (self.operator, self.y, self.gamma, self.parameterization)
        if self.client is None:
            return [fn(*args, xi) for xi in xs]
        if self._refs is None:  # the operator and y go to every worker once
            self._refs = (resident_key(self.operator),
                          *self.client.scatter([self.operator, self.y], broadcast=True, hash=False))
        key, op_ref, y_ref = self._refs
        n = len(xs)
        futures = self.client.map(on_resident, [fn] * n, [key] * n, [op_ref] * n, [y_ref] * n, [self.gamma] * n,
                                  [self.parameterization] * n, list(xs), pure=False)
        return self.client.gather(futures)

    def misfit_and_gradient(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(φ (B,) float64, ∇ₓφ (B, *model_shape) in x's dtype)`` on ``x``'s device."""
        results = self._per_chain(_value_and_gradient_one, x)
        self.n_gradient += len(results)
        phi = torch.tensor([r[0] for r in results], dtype=torch.float64)
        grad = torch.from_numpy(np.stack([np.asarray(r[1], dtype=np.float64) for r in results]))
        dtype = x.dtype if isinstance(x, torch.Tensor) else torch.float64
        device = x.device if isinstance(x, torch.Tensor) else "cpu"
        return phi.to(device), grad.to(device=device, dtype=dtype)

    def residual_norm(self, x) -> np.ndarray:
        """``‖y − F(m(x))‖`` per sample (B,): forward solves only."""
        out = np.asarray(self._per_chain(_residual_norm_one, x), dtype=np.float64)
        self.n_forward += len(out)
        return out

    def misfit(self, x) -> np.ndarray:
        """``φ(x) = ‖y − F(m(x))‖² / 2γ²`` per sample (B,): forward solves only."""
        return 0.5 * (self.residual_norm(x) / self.gamma) ** 2

    def log_likelihood(self, x) -> np.ndarray:
        """``log N(y; F(m(x)), γ² I)`` per sample (B,)."""
        return -self.misfit(x) - 0.5 * self.n_data * math.log(2 * math.pi * self.gamma**2)

    def misfit_over_noise(self, x) -> np.ndarray:
        """``‖y − F(m(x))‖ / (γ √M)`` per sample (B,): ≈ 1 for a draw of the posterior."""
        return self.residual_norm(x) / (self.gamma * math.sqrt(self.n_data))

    # ------------------------------------------------------------------ precomputed data
    def data_sq_misfit(self, F: np.ndarray) -> np.ndarray:
        """``‖y − F_n‖²`` for predicted data ``F`` ``(N, *data_shape)`` (float64, in blocks of 32 models so
        memory stays at one block whatever N and F's dtype)."""
        if F.ndim < 1 or F.shape[0] == 0:
            raise ValueRangeError("predicted data are empty; pass the data of at least one model")
        if tuple(F.shape[1:]) != self.data_shape:
            raise ShapeError(f"predicted data must be (N, {', '.join(map(str, self.data_shape))}), got {F.shape}")
        out = np.empty(F.shape[0])
        for start in range(0, F.shape[0], 32):
            block = np.asarray(F[start : start + 32], dtype=np.float64)
            if not np.all(np.isfinite(block)):
                raise ValueRangeError("predicted data contain NaN or inf")
            out[start : start + len(block)] = np.sum((block - self.y).reshape(len(block), -1) ** 2, axis=1)
        return out

    def data_log_likelihood(self, F: np.ndarray) -> np.ndarray:
        """``−‖y − F_n‖² / 2γ²`` per model (N,), shifted so that the largest is 0 (finite for any γ: the
        logits are formed as ``−((‖r‖² − min ‖r‖²) / 2γ) / γ``, never forming γ²). The shift cancels in
        every normalized weight; the lookup and the exact memorized posterior use these."""
        sq = self.data_sq_misfit(F)
        return -((sq - sq.min()) / (2.0 * self.gamma)) / self.gamma

    def forward_data(self, x) -> np.ndarray:
        """``F(m(x))`` for a batch of models in prior coordinates, ``(B, *data_shape)`` float64 (one task per
        model on the client, like the other per-chain evaluations)."""
        out = np.stack(self._per_chain(_forward_one, x))
        self.n_forward += len(out)
        return out

    def __repr__(self) -> str:
        p = self.parameterization
        return (f"Likelihood(model_shape={self.model_shape}, data_shape={self.data_shape}, gamma={self.gamma:.4g}, "
                f"parameterization={None if p is None else (p.vmin, p.vmax)}, "
                f"client={'dask' if self.client is not None else 'serial'})")
