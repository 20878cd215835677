"""Fixtures shared by the recipe tests."""

import pytest

from geomem.priors.learned import UNetConfig
from geomem.priors.training import DataConfig, OptimConfig, TrainConfig, train


@pytest.fixture(scope="session")
def train_tiny_prior():
    """``train(model_set, n, size, steps, out) → prior folder``: a tiny UNet (channels 8, 16, no attention)
    trained for ``steps`` steps on the first ``n`` models of ``model_set`` (CPU, seconds)."""

    def run(model_set, n: int, size: tuple[int, int], steps: int, out):
        tcfg = TrainConfig(steps=steps, batch_size=4, device="cpu", log_every=max(1, steps // 2),
                           data=DataConfig(family=model_set.family, n=n, size=size),
                           model=UNetConfig(channels=(8, 16), attention=(False, False), norm_groups=4,
                                            attention_head_dim=8),
                           optim=OptimConfig(warmup_steps=2))
        train(tcfg, out, data=model_set.subset(range(n)), progress=False)
        return out / "prior"

    return run
