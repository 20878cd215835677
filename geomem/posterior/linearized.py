"""The linearized mixture posterior under the memorized prior, dense mode (explicit Jacobians).

Prior ``p_σ(x) = (1/N) Σ_n N(x; x_n, σ² I)`` (``d`` unknowns), data ``y = F(x) + ε``, ``ε ~ N(0, γ² I)``
(``m`` data). Linearizing ``F(x) ≈ F(x_n) + J_n (x − x_n)`` in each component gives the mixture
``Σ_n w_n N(x; μ_n, Σ_n)`` with, for ``r_n = y − F(x_n)`` and ``C_n = σ² J_n J_nᵀ + γ² I_m``,

    Σ_n = (σ⁻² I + γ⁻² J_nᵀ J_n)⁻¹ = σ² I − σ⁴ J_nᵀ C_n⁻¹ J_n           (Woodbury)
    μ_n = x_n + γ⁻² Σ_n J_nᵀ r_n = x_n + σ² J_nᵀ C_n⁻¹ r_n
    log w_n = log N(y; F(x_n), C_n) − logsumexp                          (exact marginal likelihood)
            = −½ r_nᵀ C_n⁻¹ r_n − ½ log det C_n − (m/2) log 2π − logsumexp

``logdet=False`` drops the ``−½ log det C_n`` term (as the paper's reference code does). For a linear
``F`` the mixture is the exact posterior. Each component is computed with a Cholesky factorization in
data space (``C_n``, ``m × m``) when ``m ≤ d``, else in model space (``A_n = Σ_n⁻¹``, ``d × d``) with

    rᵀ C⁻¹ r = (‖r‖² − (J_nᵀ r)·(μ_n − x_n)) / γ²,   log det C_n = 2m log γ + 2d log σ + log det A_n.

The component functions are reusable by other (e.g. matrix-free) modes. NumPy float64 throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.special import logsumexp

from geomem.errors import ShapeError, ValueRangeError
from geomem.posterior.likelihood import Likelihood


def check_sigma(sigma: float) -> float:
    """σ as a float, checked finite and > 0."""
    s = float(sigma)
    if not (np.isfinite(s) and s > 0):
        raise ValueRangeError(f"sigma (prior bandwidth) must be finite and > 0, got {sigma}")
    return s


@dataclass(frozen=True)
class LinearizedComponent:
    """One component: mean ``μ_n`` (d,), covariance ``Σ_n`` (d, d), ``rᵀC⁻¹r``, ``log det C`` and ``m``."""

    mean: np.ndarray
    covariance: np.ndarray
    quad: float
    logdet: float
    n_data: int

    def log_evidence(self, logdet: bool = True) -> float:
        """``log N(y; F(x_n), C_n)``; with ``logdet=False`` its ``−½ log det C_n`` term is left out."""
        return -0.5 * self.quad - (0.5 * self.logdet if logdet else 0.0) - 0.5 * self.n_data * math.log(2 * math.pi)


def linearized_component(
    x_n: np.ndarray, F_n: np.ndarray, J: np.ndarray, y: np.ndarray, sigma: float, gamma: float, space: str = "auto"
) -> LinearizedComponent:
    """Moments and marginal-likelihood terms of one component (flat ``x_n`` (d,), ``F_n, y`` (m,), ``J`` (m, d)).

    ``space``: ``"data"`` (Cholesky of ``C``, m × m), ``"model"`` (Cholesky of ``A``, d × d) or ``"auto"``
    (the smaller one).
    """
    m, d = J.shape
    r = y - F_n
    s2, g2 = sigma**2, gamma**2
    if space == "auto":
        space = "data" if m <= d else "model"
    if space == "data":
        C = s2 * (J @ J.T) + g2 * np.eye(m)
        L = np.linalg.cholesky(C)
        a = cho_solve((L, True), r)
        K = solve_triangular(L, J, lower=True)  # L⁻¹ J, so Jᵀ C⁻¹ J = Kᵀ K
        cov = s2 * np.eye(d) - s2 * s2 * (K.T @ K)
        mean = x_n + s2 * (J.T @ a)
        quad = float(r @ a)
        logdet = 2.0 * float(np.sum(np.log(np.diag(L))))
    elif space == "model":
        A = np.eye(d) / s2 + (J.T @ J) / g2
        fac = cho_factor(A, lower=True)
        b = J.T @ r
        delta = cho_solve(fac, b) / g2
        cov = cho_solve(fac, np.eye(d))
        mean = x_n + delta
        quad = float((r @ r - b @ delta) / g2)
        logdet = 2.0 * m * math.log(gamma) + 2.0 * d * math.log(sigma) + 2.0 * float(np.sum(np.log(np.diag(fac[0]))))
    else:
        raise ValueRangeError(f"space must be 'auto', 'data' or 'model', got {space!r}")
    return LinearizedComponent(mean=mean, covariance=0.5 * (cov + cov.T), quad=quad, logdet=logdet, n_data=m)


def mixture_log_weights(components: list[LinearizedComponent], logdet: bool = True) -> np.ndarray:
    """Normalized ``log w_n`` from each component's marginal likelihood (uniform prior weights 1/N)."""
    logits = np.array([c.log_evidence(logdet) for c in components])
    return logits - logsumexp(logits)


@dataclass
class LinearizedPosterior:
    """Gaussian-mixture posterior ``Σ_n w_n N(μ_n, Σ_n)`` over flattened models of ``model_shape``."""

    model_shape: tuple[int, ...]
    log_weights: np.ndarray  # (N,)
    means: np.ndarray  # (N, d)
    covariances: np.ndarray  # (N, d, d)
    quads: np.ndarray  # (N,) r_nᵀ C_n⁻¹ r_n
    logdets: np.ndarray  # (N,) log det C_n
    sigma: float
    gamma: float
    logdet: bool = True

    @property
    def weights(self) -> np.ndarray:
        return np.exp(self.log_weights)

    @property
    def stds(self) -> np.ndarray:
        """Per-component marginal standard deviations ``sqrt(diag Σ_n)``, shape (N, d)."""
        return np.sqrt(np.clip(np.diagonal(self.covariances, axis1=1, axis2=2), 0.0, None))

    @classmethod
    def from_arrays(
        cls,
        likelihood: Likelihood,
        train: np.ndarray,
        F_train: np.ndarray,
        jacobians: np.ndarray,
        sigma: float,
        logdet: bool = True,
        space: str = "auto",
    ) -> LinearizedPosterior:
        """From training models ``(N, *model_shape)`` (the operator's coordinates), their data
        ``(N, *data_shape)`` and Jacobians ``(N, m, d)``; ``y`` and γ are the likelihood's."""
        sigma, gamma, y = check_sigma(sigma), likelihood.gamma, likelihood.y
        train = np.asarray(train, dtype=np.float64)
        if train.ndim < 2 or train.shape[0] == 0:
            raise ShapeError(f"train must be a non-empty (N, *model_shape) array, got shape {train.shape}")
        n = train.shape[0]
        F = np.asarray(F_train, dtype=np.float64)
        if F.shape != (n, *y.shape):
            raise ShapeError(f"F_train must have shape (N, *y.shape) = {(n, *y.shape)}, got {F.shape}")
        xs = train.reshape(n, -1)
        J = np.asarray(jacobians, dtype=np.float64)
        if J.shape != (n, y.size, xs.shape[1]):
            raise ShapeError(f"jacobians must have shape (N, m, d) = {(n, y.size, xs.shape[1])}, got {J.shape}")
        for name, arr in (("train", xs), ("F_train", F), ("jacobians", J)):
            if not np.all(np.isfinite(arr)):
                raise ValueRangeError(f"{name} contains NaN or inf")
        comps = [linearized_component(xs[i], F[i].ravel(), J[i], y.ravel(), sigma, gamma, space) for i in range(n)]
        return cls(
            model_shape=tuple(train.shape[1:]),
            log_weights=mixture_log_weights(comps, logdet),
            means=np.stack([c.mean for c in comps]),
            covariances=np.stack([c.covariance for c in comps]),
            quads=np.array([c.quad for c in comps]),
            logdets=np.array([c.logdet for c in comps]),
            sigma=sigma,
            gamma=gamma,
            logdet=logdet,
        )

    @classmethod
    def from_likelihood(
        cls,
        likelihood: Likelihood,
        train: np.ndarray,
        sigma: float,
        logdet: bool = True,
        jacobians: np.ndarray | None = None,
        space: str = "auto",
    ) -> LinearizedPosterior:
        """Evaluate ``F(x_n)`` and (unless given) the dense Jacobians ``op.jacobian(x_n).to_dense()``.

        Dense mode works in the operator's own coordinates (a likelihood without parameterization); use
        :class:`~geomem.posterior.matrix_free.MatrixFreeLinearizedPosterior` for velocity models.
        """
        if likelihood.parameterization is not None:
            raise ValueRangeError("the dense linearized posterior works in the operator's coordinates: use a "
                                  "likelihood without a parameterization, or MatrixFreeLinearizedPosterior")
        op = likelihood.operator
        train = np.asarray(train, dtype=np.float64)
        if train.ndim < 2 or tuple(train.shape[1:]) != tuple(op.model_shape):
            raise ShapeError(f"train must be (N, {', '.join(map(str, op.model_shape))}), got {train.shape}")
        F = np.stack([np.asarray(op.forward(x), dtype=np.float64) for x in train])
        if jacobians is None:
            jacobians = np.stack([op.jacobian(x).to_dense() for x in train])
        return cls.from_arrays(likelihood, train, F, jacobians, sigma, logdet, space)

    # ------------------------------------------------------------------ mixture summaries
    def mean(self) -> np.ndarray:
        """Posterior mean ``Σ_n w_n μ_n`` with ``model_shape``."""
        return (self.weights @ self.means).reshape(self.model_shape)

    def covariance(self) -> np.ndarray:
        """Posterior covariance ``Σ_n w_n (Σ_n + μ_n μ_nᵀ) − μ μᵀ``, shape (d, d)."""
        w = self.weights
        mu = w @ self.means
        second = np.einsum("n,nij->ij", w, self.covariances) + np.einsum("n,ni,nj->ij", w, self.means, self.means)
        cov = second - np.outer(mu, mu)
        return 0.5 * (cov + cov.T)

    def _cholesky(self) -> np.ndarray:
        return np.linalg.cholesky(self.covariances)

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """``log Σ_n w_n N(x; μ_n, Σ_n)`` for a model or a batch ``(B, *model_shape)``; returns (B,)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape == self.model_shape:
            x = x[None]
        if tuple(x.shape[1:]) != self.model_shape:
            raise ShapeError(f"x must be (B, {', '.join(map(str, self.model_shape))}), got {x.shape}")
        xf = x.reshape(x.shape[0], -1)
        d = xf.shape[1]
        L = self._cholesky()
        out = np.empty((len(self.log_weights), xf.shape[0]))
        for i, (mu, Li) in enumerate(zip(self.means, L, strict=True)):
            z = solve_triangular(Li, (xf - mu).T, lower=True)
            out[i] = -0.5 * np.sum(z * z, 0) - np.sum(np.log(np.diag(Li))) - 0.5 * d * math.log(2 * math.pi)
        return logsumexp(out + self.log_weights[:, None], axis=0)

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n`` exact samples of the mixture, ``(n, *model_shape)``."""
        if int(n) < 1:
            raise ValueRangeError(f"n must be >= 1, got {n}")
        rng = np.random.default_rng(rng)
        comp = rng.choice(len(self.log_weights), size=int(n), p=self.weights / self.weights.sum())
        z = rng.standard_normal((int(n), self.means.shape[1]))
        xs = self.means[comp] + np.einsum("bij,bj->bi", self._cholesky()[comp], z)
        return xs.reshape(int(n), *self.model_shape)
