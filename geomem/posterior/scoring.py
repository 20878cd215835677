"""Score posterior samples against a known Gaussian-mixture posterior (the test oracle for samplers).

For a linear operator and the memorized prior the exact posterior is the mixture
``Σ_n w_n N(μ_n, Σ)`` (one shared covariance). Given samples we report:

- ``assignment_tv``: total-variation distance ``½ Σ_n |f_n − w_n|`` between the frequencies ``f_n`` with
  which samples fall in component ``n`` (highest posterior responsibility) and the exact weights;
- ``mean_error``: ``‖mean(samples) − Σ w_n μ_n‖ / √d`` (root-mean-square per coordinate);
- ``within_std_ratio``: the root-mean-square spread of samples around their assigned component mean,
  divided by the exact ``√(tr Σ / d)`` (1 is right; < 1 over-confident; > 1 too wide).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def score_against_mixture(samples: np.ndarray, weights: np.ndarray, means: np.ndarray, cov: np.ndarray) -> dict:
    x = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    means = np.asarray(means, dtype=np.float64).reshape(len(means), -1)
    d = x.shape[1]
    prec = np.linalg.inv(cov)
    diff = x[:, None, :] - means[None, :, :]
    log_resp = np.log(np.maximum(weights, 1e-300))[None] - 0.5 * np.einsum("snd,de,sne->sn", diff, prec, diff)
    assign = np.argmax(log_resp - logsumexp(log_resp, axis=1, keepdims=True), axis=1)
    freq = np.bincount(assign, minlength=len(weights)) / len(x)
    spread = np.sqrt(np.mean(np.sum((x - means[assign]) ** 2, axis=1)) / d)
    return {
        "assignment_tv": float(0.5 * np.abs(freq - weights).sum()),
        "assignment_freq": freq.tolist(),
        "mean_error": float(np.linalg.norm(x.mean(0) - weights @ means) / np.sqrt(d)),
        "within_std_ratio": float(spread / np.sqrt(np.trace(cov) / d)),
    }
