"""The shipped priors (package data, ``geomem/priors/shipped/``): they load by name, they were trained on the default
model set's first N models, and at moderate σ they denoise like the exact memorized prior of that set (closer for
N = 50 than N = 1000)."""

import hashlib

import numpy as np
import pytest
import torch

from geomem.geology import make_model_set
from geomem.priors import MemorizedPrior
from geomem.priors.learned import LearnedPrior


@pytest.mark.parametrize("n, tol", [(50, 0.01), (1000, 0.05)])
def test_shipped_prior_matches_its_training_set(n, tol):
    prior = LearnedPrior.from_pretrained(f"n{n}")
    meta = prior.model_set
    assert meta["n"] == n and prior.model_shape == (1, 64, 64)
    ms = make_model_set(family=meta["family"], n=n, size=tuple(meta["size"]), spacing=meta["spacing"],
                        seed=meta["seed"], vmin=meta["vmin"], vmax=meta["vmax"])
    x_train = ms.normalized()
    digest = hashlib.sha256(np.ascontiguousarray(x_train, dtype=np.float32).tobytes()).hexdigest()
    assert digest == meta["models_sha256"], "the default model set changed since the priors were trained; retrain"
    train = torch.as_tensor(x_train)
    mem = MemorizedPrior(train)
    g = torch.Generator().manual_seed(0)
    sigma = 0.3
    x0 = train[torch.randint(0, n, (8,), generator=g)]
    x = x0 + sigma * torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        d_learned, d_mem = prior(x, sigma), mem(x, sigma)
    rel = float(((d_learned - d_mem) ** 2).sum() / ((x - d_mem) ** 2).sum())
    assert rel < tol, rel
