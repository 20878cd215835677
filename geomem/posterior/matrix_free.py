"""Linearized mixture posterior under the memorized prior, matrix-free (FWI scale).

Prior (prior coordinates ``x``, ``d`` unknowns): ``p_σ(x) = (1/N) Σ_n N(x; x_n, σ² I)``. Data
``y = F(m(x)) + ε``, ``ε ~ N(0, γ² I)`` with ``m(x) = v_c + v_h x`` (velocity) or ``m = x``. Linearizing
around each training model, ``F(m(x)) ≈ F(m_n) + J_n (x − x_n)`` with ``J_n = v_h ∂F/∂m`` (so Born and
adjoint-Born actions are all we need), gives the Gaussian mixture

    Σ_n = (σ⁻² I + γ⁻² J_nᵀ J_n)⁻¹,      μ_n = x_n + δ_n,   δ_n = γ⁻² Σ_n J_nᵀ r_n,   r_n = y − F(m_n),
    log w̃_n = log N(y; F(m_n), σ² J_n J_nᵀ + γ² I) + const.

Per component we compute, with actions only:

- ``δ_n`` by conjugate gradients on ``(σ⁻² I + γ⁻² JᵀJ) δ = γ⁻² Jᵀ r`` (one Born + one adjoint per iteration);
- the leading ``k`` eigenpairs ``(λ_i, v_i)`` of ``JᵀJ`` by Lanczos (``scipy.sparse.linalg.eigsh``), giving
  ``Σ_n ≈ σ² (I − V diag(σ²λ/(γ² + σ²λ)) Vᵀ)`` and its square root for sampling;
- the weight from the Woodbury identities
  ``rᵀ(σ²JJᵀ + γ²I)⁻¹r = (‖r‖² − (Jᵀr)·δ)/γ²`` (exact up to the CG tolerance) and
  ``log det(σ²JJᵀ + γ²I) = m log γ² + Σ_i log(1 + σ²λ_i/γ²)``; the eigenvalues beyond ``k`` are dropped,
  with the rigorous bound ``(min(d, m) − k) log(1 + σ²λ_k/γ²)`` on the error reported.

With ``rank >= d − 1`` the eigenpairs are exact (``JᵀJ`` is assembled column by column from actions and
diagonalized densely), which is how the matrix-free mode is checked against the dense mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse.linalg import LinearOperator as ScipyLinearOperator
from scipy.sparse.linalg import cg, eigsh
from scipy.special import logsumexp

from geomem.errors import ShapeError, ValueRangeError
from geomem.posterior.likelihood import Likelihood


@dataclass
class Component:
    """One linearized component: mean, low-rank covariance factors, weight terms and costs."""

    index: int
    mean: np.ndarray  # (d,) flattened prior coordinates
    residual_norm: float  # ‖y − F(m_n)‖
    eigenvalues: np.ndarray  # (k,) of JᵀJ, decreasing
    eigenvectors: np.ndarray  # (d, k)
    log_evidence: float  # log N(y; F(m_n), σ²JJᵀ + γ²I) (with or without the log-determinant)
    quad: float  # rᵀ(σ²JJᵀ + γ²I)⁻¹ r
    logdet: float  # log det(σ²JJᵀ + γ²I), truncated to k eigenvalues
    logdet_tail_bound: float  # bound on the log-determinant error from the dropped eigenvalues
    cg_iterations: int
    cg_relative_residual: float
    born_actions: int = 0
    adjoint_actions: int = 0


@dataclass
class MatrixFreeLinearizedPosterior:
    """The linearized mixture posterior computed with Born/adjoint-Born actions only.

    Build it with :meth:`fit`. ``weights`` are normalized over the computed components; components not
    computed (outside ``indices``) are reported with their lookup log-weights so the mass left out is known.
    """

    sigma: float
    gamma: float
    model_shape: tuple[int, ...]
    components: list[Component]
    weights: np.ndarray
    logdet_in_weights: bool
    data_size: int
    stats: dict = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        likelihood: Likelihood,
        train: np.ndarray,
        sigma: float,
        indices: np.ndarray | None = None,
        rank: int = 20,
        cg_tol: float = 1e-8,
        cg_maxiter: int = 200,
        logdet: bool = True,
        forward_train: np.ndarray | None = None,
    ) -> MatrixFreeLinearizedPosterior:
        """Compute the components ``indices`` (default: all) of the linearized posterior.

        ``train``: ``(N, *model_shape)`` prior coordinates; ``forward_train``: ``F(m_n)`` if already computed
        (e.g. the lookup cache), else computed here. ``rank``: number of Lanczos eigenpairs of ``JᵀJ``.
        """
        operator, parameterization, gamma = likelihood.operator, likelihood.parameterization, likelihood.gamma
        y = likelihood.y
        if not (np.isfinite(sigma) and sigma > 0):
            raise ValueRangeError(f"sigma must be finite and > 0, got sigma={sigma}")
        train = np.asarray(train, dtype=np.float64)
        model_shape = tuple(operator.model_shape)
        if train.ndim < 1 or tuple(train.shape[1:]) != model_shape or len(train) == 0:
            raise ShapeError(f"train must be a non-empty (N, {model_shape}) array, got {train.shape}")
        indices = np.arange(len(train)) if indices is None else np.asarray(indices, dtype=int)
        d = int(np.prod(model_shape))
        m_size = int(y.size)
        scale = parameterization.dv_dx if parameterization is not None else 1.0

        def to_model(x):
            return parameterization.to_velocity(x, clamp=False) if parameterization is not None else x

        components = []
        for n in indices:
            x_n = train[n]
            m_n = to_model(x_n)
            f_n = forward_train[n] if forward_train is not None else operator.forward(m_n)
            r = (y - np.asarray(f_n, dtype=np.float64)).ravel()
            jac = operator.jacobian(m_n)
            counts = {"born": 0, "adjoint": 0}

            def J(v, jac=jac, counts=counts):
                counts["born"] += 1
                return scale * np.asarray(jac.matvec(v.reshape(model_shape)), dtype=np.float64).ravel()

            def Jt(u, jac=jac, counts=counts):
                counts["adjoint"] += 1
                return scale * np.asarray(jac.rmatvec(u.reshape(operator.data_shape)), dtype=np.float64).ravel()

            def normal(v, J=J, Jt=Jt):
                return Jt(J(v))

            jtr = Jt(r)
            A = ScipyLinearOperator((d, d), matvec=lambda v, normal=normal: v / sigma**2 + normal(v) / gamma**2,
                                    dtype=np.float64)
            iters = [0]

            def count(_xk, iters=iters):
                iters[0] += 1

            delta, info = cg(A, jtr / gamma**2, rtol=cg_tol, atol=0.0, maxiter=cg_maxiter, callback=count)
            rel_res = float(np.linalg.norm(A.matvec(delta) - jtr / gamma**2) / max(np.linalg.norm(jtr / gamma**2),
                                                                                  1e-300))
            lam, vecs = _leading_eigenpairs(normal, d, rank)
            quad = float((r @ r - jtr @ delta) / gamma**2)
            logdet_val = m_size * np.log(gamma**2) + float(np.sum(np.log1p(sigma**2 * lam / gamma**2)))
            n_dropped = max(min(d, m_size) - len(lam), 0)
            tail = n_dropped * float(np.log1p(sigma**2 * lam[-1] / gamma**2)) if n_dropped and len(lam) else 0.0
            log_ev = -0.5 * quad - 0.5 * m_size * np.log(2 * np.pi)
            if logdet:
                log_ev -= 0.5 * logdet_val
            components.append(
                Component(
                    index=int(n), mean=x_n.ravel() + delta, residual_norm=float(np.linalg.norm(r)),
                    eigenvalues=lam, eigenvectors=vecs, log_evidence=float(log_ev), quad=quad, logdet=logdet_val,
                    logdet_tail_bound=tail, cg_iterations=iters[0], cg_relative_residual=rel_res,
                    born_actions=counts["born"], adjoint_actions=counts["adjoint"],
                )
            )
        log_w = np.array([c.log_evidence for c in components])
        weights = np.exp(log_w - logsumexp(log_w))
        stats = {
            "born_actions": int(sum(c.born_actions for c in components)),
            "adjoint_actions": int(sum(c.adjoint_actions for c in components)),
            "cg_iterations": [c.cg_iterations for c in components],
            "logdet_tail_bound_max": float(max(c.logdet_tail_bound for c in components)),
        }
        return cls(float(sigma), float(gamma), model_shape, components, weights, logdet, m_size, stats)

    # --- moments and actions -------------------------------------------------------------------------
    @property
    def indices(self) -> np.ndarray:
        return np.array([c.index for c in self.components])

    @property
    def means(self) -> np.ndarray:
        return np.stack([c.mean.reshape(self.model_shape) for c in self.components])

    def _shrink(self, c: Component) -> np.ndarray:
        """``σ²λ/(γ² + σ²λ)`` per eigenpair: the fraction of prior variance the data remove."""
        s2, g2 = self.sigma**2, self.gamma**2
        return s2 * c.eigenvalues / (g2 + s2 * c.eigenvalues)

    def covariance_action(self, n: int, v: np.ndarray) -> np.ndarray:
        """``Σ_n v`` for component position ``n`` (low-rank approximation; exact at full rank)."""
        c = self.components[n]
        v = np.asarray(v, dtype=np.float64).ravel()
        coeff = c.eigenvectors.T @ v
        return (self.sigma**2 * (v - c.eigenvectors @ (self._shrink(c) * coeff))).reshape(self.model_shape)

    def pointwise_std(self, n: int) -> np.ndarray:
        """Square root of the diagonal of ``Σ_n``."""
        c = self.components[n]
        diag = self.sigma**2 * (1.0 - np.sum(c.eigenvectors**2 * self._shrink(c), axis=1))
        return np.sqrt(np.maximum(diag, 0.0)).reshape(self.model_shape)

    def mean(self) -> np.ndarray:
        """Mixture mean ``Σ_n w_n μ_n``."""
        return np.tensordot(self.weights, self.means, axes=1)

    def sample(self, n_samples: int, rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``(samples (S, *model_shape), component positions (S,))``.

        ``x = μ_n + σ (z − V diag(1 − (1 + σ²λ/γ²)^{-1/2}) Vᵀ z)``, ``z ~ N(0, I)``.
        """
        rng = np.random.default_rng(rng)
        which = rng.choice(len(self.components), size=n_samples, p=self.weights)
        out = np.empty((n_samples, int(np.prod(self.model_shape))))
        for n, c in enumerate(self.components):
            rows = np.flatnonzero(which == n)
            if not len(rows):
                continue
            z = rng.standard_normal((len(rows), out.shape[1]))
            factor = 1.0 - 1.0 / np.sqrt(1.0 + self.sigma**2 * c.eigenvalues / self.gamma**2)
            out[rows] = c.mean + self.sigma * (z - ((z @ c.eigenvectors) * factor) @ c.eigenvectors.T)
        return out.reshape(n_samples, *self.model_shape), which

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """Log density of the (low-rank) mixture at points ``x`` ``(S, *model_shape)``."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        d = x.shape[1]
        s2, g2 = self.sigma**2, self.gamma**2
        logs = []
        for c, w in zip(self.components, self.weights, strict=True):
            diff = x - c.mean
            proj = diff @ c.eigenvectors
            # Σ⁻¹ = σ⁻² I + γ⁻² V Λ Vᵀ ;  log det Σ = d log σ² − Σ log(1 + σ²λ/γ²)
            maha = np.sum(diff**2, axis=1) / s2 + proj**2 @ (c.eigenvalues / g2)
            logdet = d * np.log(s2) - np.sum(np.log1p(s2 * c.eigenvalues / g2))
            logs.append(np.log(max(w, 1e-300)) - 0.5 * (maha + logdet + d * np.log(2 * np.pi)))
        return logsumexp(np.stack(logs), axis=0)


def _leading_eigenpairs(normal, d: int, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Leading ``rank`` eigenpairs of the PSD operator ``v ↦ JᵀJ v`` (decreasing eigenvalues)."""
    if rank <= 0:
        return np.zeros(0), np.zeros((d, 0))
    if rank >= d - 1:
        dense = np.stack([normal(e) for e in np.eye(d)], axis=1)
        dense = 0.5 * (dense + dense.T)
        lam, vecs = np.linalg.eigh(dense)
        order = np.argsort(lam)[::-1][: min(rank, d)]
        return np.maximum(lam[order], 0.0), vecs[:, order]
    op = ScipyLinearOperator((d, d), matvec=normal, dtype=np.float64)
    lam, vecs = eigsh(op, k=rank, which="LA", v0=np.ones(d) / np.sqrt(d))
    order = np.argsort(lam)[::-1]
    return np.maximum(lam[order], 0.0), vecs[:, order]


def importance_reference(
    posterior: MatrixFreeLinearizedPosterior,
    likelihood: Likelihood,
    train: np.ndarray,
    n_samples: int,
    rng: np.random.Generator | int | None = 0,
) -> dict:
    """Self-normalized importance sampling of the *nonlinear* posterior under the memorized prior.

    Target ``π(x) ∝ N(y; F(m(x)), γ²I) · (1/N) Σ_n N(x; x_n, σ²I)``; proposal ``q`` = the linearized mixture.
    Returns the samples, normalized weights ``w_s ∝ π(x_s)/q(x_s)``, the effective sample size
    ``(Σw)²/Σw²`` and the weighted mean. Every sample costs one forward solve.
    """
    operator, parameterization, y = likelihood.operator, likelihood.parameterization, likelihood.y
    xs, _ = posterior.sample(n_samples, rng)
    train = np.asarray(train, dtype=np.float64).reshape(len(train), -1)
    s2 = posterior.sigma**2
    flat = xs.reshape(n_samples, -1)
    d = flat.shape[1]
    sq = np.sum(flat**2, 1)[:, None] - 2 * flat @ train.T + np.sum(train**2, 1)[None, :]
    log_prior = logsumexp(-0.5 * np.maximum(sq, 0) / s2, axis=1) - np.log(len(train)) - 0.5 * d * np.log(2 * np.pi * s2)
    log_lik = np.empty(n_samples)
    for start in range(0, n_samples, 256):  # batched forward solves (both toy and acoustic operators batch)
        block = xs[start : start + 256]
        m = parameterization.to_velocity(block, clamp=False) if parameterization is not None else block
        r = (np.asarray(operator.forward(m), dtype=np.float64) - y).reshape(len(block), -1)
        log_lik[start : start + len(block)] = -0.5 * np.sum((r / likelihood.gamma) ** 2, axis=1)
    log_w = log_lik + log_prior - posterior.log_density(xs)
    w = np.exp(log_w - logsumexp(log_w))
    return {
        "samples": xs,
        "weights": w,
        "ess": float(1.0 / np.sum(w**2)),
        "mean": np.tensordot(w, xs, axes=1),
    }
