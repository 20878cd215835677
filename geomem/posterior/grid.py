"""The exact posterior under the memorized prior on a 1-D or 2-D grid (no linearization).

    p(x | y) = p(y | x) p_σ(x) / p(y),   p(y | x) = N(y; F(x), γ² I),   p_σ(x) = (1/N) Σ_n N(x; x_n, σ² I)

is evaluated at every grid point and normalized by trapezoid quadrature, ``p(y) = ∫ p(y|x) p_σ(x) dx``.
The posterior splits exactly into the prior's components, ``p(x|y) = Σ_n P_n q_n(x)`` with
``P_n = ∫ p(y|x) N(x; x_n, σ²I) dx / (N p(y))`` and ``q_n ∝ p(y|x) N(x; x_n, σ²I)``; these exact component
masses, means and covariances are what the linearized mixture approximates. Moments use the same
quadrature; the grid must cover the posterior mass (checked: the density at the grid edge must be tiny).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from geomem.errors import ShapeError, ValueRangeError
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.linearized import check_sigma


@dataclass
class GridPosterior:
    """Exact posterior on a tensor grid; arrays over the grid have shape ``tuple(len(a) for a in axes)``."""

    axes: tuple[np.ndarray, ...]
    density: np.ndarray  # normalized posterior p(x|y)
    prior: np.ndarray  # p_σ(x) (exactly normalized)
    likelihood: np.ndarray  # p(y|x) as a function of x (not normalized in x)
    log_evidence: float  # log p(y)
    mean: np.ndarray  # (d,)
    covariance: np.ndarray  # (d, d)
    component_weights: np.ndarray  # (N,) exact posterior mass P_n of each prior component
    component_means: np.ndarray  # (N, d)
    component_covariances: np.ndarray  # (N, d, d)
    edge_mass: float  # largest density on the grid boundary relative to the peak (should be ≪ 1)


def _trapezoid_weights(axis: np.ndarray) -> np.ndarray:
    w = np.zeros_like(axis)
    h = np.diff(axis)
    w[:-1] += 0.5 * h
    w[1:] += 0.5 * h
    return w


def _check_axis(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 1 or a.size < 3 or not np.all(np.isfinite(a)) or not np.all(np.diff(a) > 0):
        raise ValueRangeError(f"{name} must be a finite, strictly increasing 1-D grid of at least 3 points")
    return a


def grid_posterior(
    likelihood: Likelihood, train: np.ndarray, sigma: float, axes: tuple[np.ndarray, ...]
) -> GridPosterior:
    """Exact posterior for a ``d``-parameter operator (model shape ``(d,)``) on the tensor grid ``axes``."""
    sigma, gamma, op, y = check_sigma(sigma), likelihood.gamma, likelihood.operator, likelihood.y
    if likelihood.parameterization is not None:
        raise ValueRangeError("the grid posterior works in the operator's own coordinates: use a likelihood "
                              "without a parameterization")
    axes = tuple(_check_axis(a, f"grid axis {i}") for i, a in enumerate(axes))
    d = len(axes)
    if tuple(op.model_shape) != (d,):
        raise ShapeError(f"a {d}-D grid needs an operator with model shape ({d},), got {tuple(op.model_shape)}")
    train = np.asarray(train, dtype=np.float64)
    if d == 1 and train.ndim == 1:
        train = train[:, None]
    if train.ndim != 2 or train.shape[1] != d or train.shape[0] == 0:
        raise ShapeError(f"train must be a non-empty (N, {d}) array, got shape {train.shape}")
    if not np.all(np.isfinite(train)):
        raise ValueRangeError("train contains NaN or inf")
    shape = tuple(a.size for a in axes)
    pts = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)  # (P, d)
    quad_w = np.ones(1)
    for a in axes:
        quad_w = np.multiply.outer(quad_w, _trapezoid_weights(a))
    log_qw = np.log(quad_w.ravel())

    resid = (op.forward(pts) - y).reshape(len(pts), -1)
    log_lik = -0.5 * np.sum(resid**2, 1) / gamma**2 - 0.5 * resid.shape[1] * math.log(2 * math.pi * gamma**2)
    d2 = ((pts[:, None, :] - train[None]) ** 2).sum(-1)  # (P, N): small grids only
    log_comp = -0.5 * d2 / sigma**2 - 0.5 * d * math.log(2 * math.pi * sigma**2) - math.log(len(train))
    log_prior = logsumexp(log_comp, axis=1)
    log_joint = log_lik + log_prior
    log_ev = float(logsumexp(log_joint + log_qw))
    post = np.exp(log_joint - log_ev)

    qp = quad_w.ravel() * post
    mean = qp @ pts
    cov = (qp[:, None] * (pts - mean)).T @ (pts - mean)
    log_cj = log_comp + log_lik[:, None]  # (P, N) per-component joint
    log_mass = logsumexp(log_cj + log_qw[:, None], axis=0)
    cw = np.exp(log_cj + log_qw[:, None] - log_mass[None])  # quadrature-weighted q_n
    cmeans = cw.T @ pts
    ccovs = np.stack([(cw[:, n, None] * (pts - cmeans[n])).T @ (pts - cmeans[n]) for n in range(len(train))])
    density = post.reshape(shape)
    edge = np.zeros(shape, dtype=bool)
    for ax in range(d):
        sl = [slice(None)] * d
        sl[ax] = [0, -1]
        edge[tuple(sl)] = True
    return GridPosterior(
        axes=axes,
        density=density,
        prior=np.exp(log_prior).reshape(shape),
        likelihood=np.exp(log_lik).reshape(shape),
        log_evidence=log_ev,
        mean=mean,
        covariance=0.5 * (cov + cov.T),
        component_weights=np.exp(log_mass - logsumexp(log_mass)),
        component_means=cmeans,
        component_covariances=ccovs,
        edge_mass=float(density[edge].max() / density.max()),
    )


def grid_posterior_1d(likelihood: Likelihood, train: np.ndarray, sigma: float, grid: np.ndarray) -> GridPosterior:
    """Exact posterior of a scalar model on ``grid`` (G,); ``train`` is (N,) or (N, 1)."""
    return grid_posterior(likelihood, train, sigma, (grid,))


def grid_posterior_2d(
    likelihood: Likelihood, train: np.ndarray, sigma: float, x1: np.ndarray, x2: np.ndarray
) -> GridPosterior:
    """Exact posterior of a 2-vector model on the grid ``x1 × x2``; ``density[i, j]`` is at ``(x1[i], x2[j])``."""
    return grid_posterior(likelihood, train, sigma, (x1, x2))
