"""Shared targets of the sampler tests."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from geomem.posterior.chains import ChainNoise
from geomem.posterior.validation import anchored_gaussian


@pytest.fixture
def anchored_target():
    """A 3-D anchored linear-Gaussian target ``U(z) = ‖y − Az‖²/2γ² + ‖z − a‖²/2r²`` (precision AᵀA/γ² + I/r²,
    curvatures spread 200× by the first row of A) with 2000 chains' noise and anchor: ``A, gamma, r, lik, mean, cov,
    n, noise, anchor`` and ``metric``, the diagonal preconditioner ``1/(1 + r² diag(AᵀA)/γ²)``."""
    A = np.array([[20.0, 0.5, 0.0], [0.0, 1.0, 0.3]])
    y, gamma, a, r = np.array([0.3, -0.2]), 0.5, np.array([0.2, 0.1, -0.3]), 0.4
    lik, mean, cov = anchored_gaussian(A, y, gamma, a, r)
    n = 2000
    return SimpleNamespace(A=A, gamma=gamma, r=r, lik=lik, mean=mean, cov=cov, n=n,
                           noise=ChainNoise(0, n, (3,), torch.float64, "cpu"),
                           anchor=torch.tensor(a).expand(n, 3).contiguous(),
                           metric=1.0 / (1.0 + r**2 * torch.tensor(np.diag(A.T @ A) / gamma**2)))
