"""The likelihood-weighted lookup: the posterior under a memorized prior as σ → 0.

With the prior ``(1/N) Σ_n δ(x − x_n)`` and data ``y = F(x) + ε``, ``ε ~ N(0, γ² I)``, the posterior is
``Σ_n w_n δ(x − x_n)`` with

    log w_n = −‖y − F(x_n)‖² / 2γ² − logsumexp_k(−‖y − F(x_k)‖² / 2γ²),

computed from the predicted data ``F(x_n)`` by :meth:`Likelihood.data_log_likelihood` (logits shifted by the
smallest misfit, so the weights are finite and normalized for any finite γ > 0). NumPy float64.

>>> import numpy as np
>>> from geomem.physics.toy import MatrixOperator
>>> from geomem.posterior.likelihood import Likelihood
>>> lik = Likelihood(MatrixOperator(np.eye(1)), y=np.array([0.0]), gamma=1.0)
>>> lookup_weights(np.array([[0.0], [1.0]]), lik).round(4)
array([0.6225, 0.3775])
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from geomem.posterior.likelihood import Likelihood


def lookup_log_weights(F_train: np.ndarray, likelihood: Likelihood) -> np.ndarray:
    """Normalized log weights ``log w_n`` (N,) from the predicted data ``F_train`` ``(N, *data_shape)``."""
    logits = likelihood.data_log_likelihood(np.asarray(F_train) if not isinstance(F_train, np.ndarray) else F_train)
    return logits - logsumexp(logits)


def lookup_weights(F_train: np.ndarray, likelihood: Likelihood) -> np.ndarray:
    """Normalized weights ``w_n ∝ exp(−‖y − F(x_n)‖²/2γ²)``, shape (N,)."""
    return np.exp(lookup_log_weights(F_train, likelihood))
