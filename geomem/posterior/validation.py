"""Problems whose posterior is known exactly, and the scores of a sampler against them.

Toy problems (model and data of a few numbers; prior in the operator's own coordinates):

``linear4d``        ``F(x) = A x`` (A: 3×4, fixed seed), memorized prior of N = 8 training models (fixed seed),
                    σ = 0.2, γ = 0.5, ``y = F(0) + γ z``. Exact posterior: the Gaussian mixture of
                    :class:`~geomem.posterior.linearized.LinearizedPosterior` (exact for a linear F).
``cubic1d``         the paper's ``F(x) = x + 0.3x³``, training {−1.5, −0.4, 0.4, 1.2, 2.5}, y = 1, γ = 0.3,
                    σ = 0.05. Exact posterior on a grid (:func:`~geomem.posterior.grid.grid_posterior_1d`).
``quadratic2d``     ``F(x) = [x₁ + 0.3x₁x₂, x₂ + 0.2x₁²]``, N = 10 training models on the circle of radius 2,
                    noise-free data of the truth x = 0, γ = 0.75, σ = 0.1 (about five modes). Exact posterior
                    on a 601² grid over [−3, 3]².
``linear_gaussian`` ``F(x) = A x`` (A: 4×8), Gaussian prior N(0, I) (:class:`.prior_step.GaussianPrior`)
                    at bandwidth σ = 0.01 (prior variance 1 + σ²), a truth drawn from the prior, γ = 0.3.
                    Exact posterior: ``N(μ, Σ)``, ``Σ = ((1 + σ²)⁻¹ I + AᵀA/γ²)⁻¹``, ``μ = Σ Aᵀ y / γ²``.

Scores (:func:`score`), each against the exact posterior, never against another sampler:

- ``tv``: total-variation distance ``½ Σ_n |f_n − P_n|`` between the (weighted) fraction of valid samples whose
  nearest training model is ``n`` and the exact posterior mass of that nearest-model cell ``P_n`` (quadrature
  on the grid; 400,000 exact draws for the linear mixture);
- ``misfit_over_noise`` ``E‖y − F(x)‖/(γ√M)`` of the samples, and ``misfit_ratio`` to its exact value;
- ``coverage`` (Gaussian problem): per coordinate, the exact posterior mass of the sampler's central 90 %
  interval (its 5 % and 95 % weighted quantiles), averaged over coordinates — 0.90 for a perfect sampler;
- costs: likelihood gradients and forward solves per sample, wall time; diverged chains; ESS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from geomem.errors import ConfigError
from geomem.physics.toy import Cubic1D, MatrixOperator, Quadratic2D
from geomem.posterior.grid import grid_posterior
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.linearized import LinearizedPosterior
from geomem.posterior.prior_step import GaussianPrior
from geomem.posterior.result import PosteriorSamples
from geomem.priors.denoiser import Denoiser
from geomem.priors.memorized import MemorizedPrior

TOY_PROBLEMS = ("linear4d", "cubic1d", "quadratic2d", "linear_gaussian")


@dataclass
class ValidationProblem:
    """A likelihood, a prior at bandwidth ``sigma``, and what is known exactly about their posterior."""

    name: str
    likelihood: Likelihood
    prior: Denoiser
    sigma: float
    train: np.ndarray | None = None  # (N, d) for memorized priors
    cell_weights: np.ndarray | None = None  # exact posterior mass of each nearest-training-model cell
    misfit_over_noise: float = float("nan")  # exact E‖y − F(x)‖/(γ√M)
    mean: np.ndarray | None = None  # Gaussian posterior mean (d,)
    covariance: np.ndarray | None = None  # Gaussian posterior covariance (d, d)


def _nearest(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    d2 = ((x[:, None, :] - train[None, :, :]) ** 2).sum(-1)
    return np.argmin(d2, axis=1)


def _mon(lik: Likelihood, F: np.ndarray) -> np.ndarray:
    r = (F - lik.y).reshape(len(F), -1)
    return np.sqrt((r**2).sum(1)) / (lik.gamma * np.sqrt(lik.n_data))


def _grid_reference(name, lik, train, sigma, axes) -> ValidationProblem:
    gp = grid_posterior(lik, train, sigma, axes)
    pts = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)
    quad = np.ones(1)
    for a in axes:
        h = np.diff(a)
        w = np.zeros_like(a)
        w[:-1] += 0.5 * h
        w[1:] += 0.5 * h
        quad = np.multiply.outer(quad, w)
    mass = (gp.density * quad.reshape(gp.density.shape)).ravel()
    mass = mass / mass.sum()
    cells = np.bincount(_nearest(pts, train), weights=mass, minlength=len(train))
    mon = float(mass @ _mon(lik, lik.operator.forward(pts)))
    return ValidationProblem(name, lik, MemorizedPrior(train), sigma, train, cells, mon)


def linear4d() -> ValidationProblem:
    rng = np.random.default_rng(4)
    A = rng.standard_normal((3, 4)) / 2.0
    train = rng.standard_normal((8, 4))
    sigma, gamma = 0.2, 0.5
    lik = Likelihood(MatrixOperator(A), y=gamma * rng.standard_normal(3), gamma=gamma)
    exact = LinearizedPosterior.from_likelihood(lik, train, sigma)
    draws = exact.sample(400_000, rng=np.random.default_rng(40))
    cells = np.bincount(_nearest(draws, train), minlength=len(train)) / len(draws)
    mon = float(np.mean(_mon(lik, draws @ A.T)))
    return ValidationProblem("linear4d", lik, MemorizedPrior(train), sigma, train, cells, mon)


def cubic1d() -> ValidationProblem:
    lik = Likelihood(Cubic1D(0.3), y=np.array([1.0]), gamma=0.3)
    train = np.array([[-1.5], [-0.4], [0.4], [1.2], [2.5]])
    return _grid_reference("cubic1d", lik, train, 0.05, (np.linspace(-4.0, 4.0, 16001),))


def quadratic2d() -> ValidationProblem:
    op = Quadratic2D(0.3, 0.2)
    ang = 2 * np.pi * np.arange(10) / 10
    train = 2.0 * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    lik = Likelihood(op, y=op.forward(np.zeros(2)), gamma=0.75)
    ax = np.linspace(-3.0, 3.0, 601)
    return _grid_reference("quadratic2d", lik, train, 0.1, (ax, ax))


def anchored_gaussian(A: np.ndarray, y: np.ndarray, gamma: float, a: np.ndarray, r: float
                      ) -> tuple[Likelihood, np.ndarray, np.ndarray]:
    """``(likelihood, mean, covariance)`` of the likelihood step's target ``U(z) = ‖y − Az‖²/2γ² + ‖z − a‖²/2r²``
    for a matrix ``A``: a Gaussian of precision ``AᵀA/γ² + I/r²`` and mean ``Σ (Aᵀy/γ² + a/r²)`` (the closed form
    the MALA and HMC moves are tested against)."""
    lik = Likelihood(MatrixOperator(A), y, gamma)
    cov = np.linalg.inv(A.T @ A / gamma**2 + np.eye(A.shape[1]) / r**2)
    return lik, cov @ (A.T @ y / gamma**2 + a / r**2), cov


def linear_gaussian() -> ValidationProblem:
    rng = np.random.default_rng(8)
    d, m, sigma, gamma = 8, 4, 0.01, 0.3
    A = rng.standard_normal((m, d)) / np.sqrt(d) * 2.0
    truth = rng.standard_normal(d)
    lik = Likelihood(MatrixOperator(A), y=A @ truth + gamma * rng.standard_normal(m), gamma=gamma, truth=truth)
    prec = np.eye(d) / (1.0 + sigma**2) + A.T @ A / gamma**2
    cov = np.linalg.inv(prec)
    mean = cov @ A.T @ lik.y / gamma**2
    draws = rng.multivariate_normal(mean, cov, size=400_000)
    mon = float(np.mean(_mon(lik, draws @ A.T)))
    return ValidationProblem("linear_gaussian", lik, GaussianPrior(np.zeros(d), 1.0), sigma,
                             misfit_over_noise=mon, mean=mean, covariance=cov)


def toy_problem(name: str) -> ValidationProblem:
    """The toy problem ``name`` (one of ``TOY_PROBLEMS``) with its exact reference."""
    builders = {"linear4d": linear4d, "cubic1d": cubic1d, "quadratic2d": quadratic2d,
                "linear_gaussian": linear_gaussian}
    if name not in builders:
        raise ConfigError(f"unknown validation problem {name!r}; choose from {list(TOY_PROBLEMS)}")
    return builders[name]()


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The ``q`` quantile of ``values`` under normalized ``weights`` (midpoint rule on the sorted CDF)."""
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cdf = np.cumsum(w) - 0.5 * w
    return float(np.interp(q, cdf / w.sum(), v))


def coverage(samples: np.ndarray, weights: np.ndarray, mean: np.ndarray, cov: np.ndarray,
             level: float = 0.9) -> float:
    """Mean over coordinates of the exact Gaussian mass of the samples' central ``level`` interval."""
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    std = np.sqrt(np.diag(cov))
    out = []
    for i in range(samples.shape[1]):
        lo = weighted_quantile(samples[:, i], weights, lo_q)
        hi = weighted_quantile(samples[:, i], weights, hi_q)
        out.append(ndtr((hi - mean[i]) / std[i]) - ndtr((lo - mean[i]) / std[i]))
    return float(np.mean(out))


def score(result: PosteriorSamples, problem: ValidationProblem) -> dict:
    """Scores of ``result`` against ``problem``'s exact posterior (module docstring)."""
    v = result.valid()
    out = {"method": result.method, "chains": result.n_samples, "diverged": int(result.diverged.sum()),
           "gradients_per_sample": result.info.get("gradients_per_sample", float("nan")),
           "forwards_per_sample": result.info.get("forwards_per_sample", float("nan")),
           "wall_time_s": result.info.get("wall_time_s", float("nan")), "ess": result.ess}
    if "ess" in result.info:
        out["ess"] = float(result.info["ess"])
        out["min_ess"] = float(result.info.get("min_ess", result.info["ess"]))
    if v.n_samples == 0:
        return out
    w = np.full(v.n_samples, 1.0 / v.n_samples) if v.weights is None else v.weights
    flat = v.samples.reshape(v.n_samples, -1)
    mon = float(w @ v.misfit_over_noise)
    out.update(misfit_over_noise=mon, misfit_exact=problem.misfit_over_noise,
               misfit_ratio=mon / problem.misfit_over_noise)
    if problem.train is not None:
        freq = np.bincount(_nearest(flat, problem.train), weights=w, minlength=len(problem.train))
        out.update(tv=float(0.5 * np.abs(freq - problem.cell_weights).sum()), frequencies=freq.tolist(),
                   exact_weights=problem.cell_weights.tolist())
    if problem.mean is not None:
        out["coverage"] = coverage(flat, w, problem.mean, problem.covariance)
        out["mean_error"] = float(np.sqrt(np.mean((w @ flat - problem.mean) ** 2)))
    return out
