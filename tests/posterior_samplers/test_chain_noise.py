"""Per-chain randomness: chain i's stream is torch's generator seeded seed + i on the chains' device, whatever
the batch; DPS keeps its divergence bookkeeping on the device (CUDA cases skipped without a GPU)."""

import numpy as np
import pytest
import torch

from geomem.physics.toy import MatrixOperator
from geomem.posterior.chains import ChainNoise
from geomem.posterior.dps import DPSConfig, dps
from geomem.posterior.likelihood import Likelihood
from geomem.priors import MemorizedPrior

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_chain_streams_are_the_device_generators_seeded_per_chain(device):
    noise = ChainNoise(5, 3, (2, 4), torch.float64, device)
    first, second = noise.normal(), noise.normal()
    u = noise.uniform()
    assert first.device.type == device and first.shape == (3, 2, 4)
    for i in range(3):
        g = torch.Generator(device=first.device).manual_seed(5 + i)
        assert torch.equal(first[i], torch.randn((2, 4), generator=g, dtype=torch.float64, device=first.device))
        assert torch.equal(second[i], torch.randn((2, 4), generator=g, dtype=torch.float64, device=first.device))
        assert u[i] == float(torch.rand((), generator=g, dtype=torch.float64, device=first.device))


@pytest.mark.parametrize("device", DEVICES)
def test_a_chain_draws_the_same_noise_in_any_batch(device):
    big = ChainNoise(0, 4, (3,), torch.float32, device)
    small = ChainNoise(2, 2, (3,), torch.float32, device)
    for _ in range(3):
        assert torch.equal(big.normal()[2:], small.normal())
    assert torch.equal(big.normal(rows=np.array([3])), small.normal(rows=np.array([1])))


@pytest.mark.parametrize("device", DEVICES)
def test_drawing_into_a_buffer_gives_the_same_noise(device):
    """``normal(out=buf)`` (the CUDA-graph DPS step's noise buffer) draws what ``normal()`` returns, in place."""
    fresh, into = ChainNoise(7, 3, (2, 5), torch.float32, device), ChainNoise(7, 3, (2, 5), torch.float32, device)
    buf = torch.empty((3, 2, 5), dtype=torch.float32, device=device)
    for _ in range(2):
        assert into.normal(out=buf) is buf
        assert torch.equal(buf, fresh.normal())
    one = torch.empty((1, 2, 5), dtype=torch.float32, device=device)
    assert torch.equal(into.normal(rows=np.array([1]), out=one), fresh.normal(rows=np.array([1])))
    from geomem.errors import ValueRangeError

    with pytest.raises(ValueRangeError, match=r"out must have shape \(3, 2, 5\)"):
        into.normal(out=torch.empty((3, 10), device=device))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_dps_on_cuda_reproduces_chains_and_flags_divergence():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 8)) / np.sqrt(8)
    train = torch.tensor(rng.standard_normal((5, 8)))
    lik = Likelihood(MatrixOperator(A), A @ train[0].numpy(), 0.2)
    cfg = DPSConfig(steps=10, sigma_min=0.2, sigma_max=5.0, zeta=0.2)
    prior = MemorizedPrior(train).to("cuda")
    big = dps(prior, lik, 4, cfg, seed=7, dtype=torch.float64, device="cuda")
    small = dps(prior, lik, 2, cfg, seed=9, dtype=torch.float64, device="cuda")
    np.testing.assert_allclose(big.samples[2:], small.samples, rtol=1e-12, atol=1e-12)
    assert not big.diverged.any()
    wild = dps(prior, lik, 3, DPSConfig(steps=10, sigma_min=0.2, sigma_max=5.0, zeta=1e6, divergence_factor=10.0),
               seed=0, dtype=torch.float64, device="cuda")
    assert wild.diverged.all() and np.isfinite(wild.samples).all()


@pytest.mark.parametrize("kw", [{"zeta": 0.2}, {"guidance": "likelihood"}, {"guidance": "normalized", "eta": 0.05},
                                {"stochastic": False, "guidance_start": 0.5}, {"zeta": 1e6, "divergence_factor": 10.0}])
def test_fused_update_of_the_gpu_path_equals_the_written_out_one(monkeypatch, kw):
    """The GPU path's fused kernels (lerp, in-place add/addcmul) compute the same update: forced on the CPU in
    float64 they match the written-out formulas to rounding, with the same divergence flags."""
    import importlib

    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 8)) / np.sqrt(8)
    train = torch.tensor(rng.standard_normal((5, 8)))
    lik = Likelihood(MatrixOperator(A), A @ (0.5 * train[0] + 0.5 * train[1]).numpy(), 0.2)
    cfg = DPSConfig(steps=10, sigma_min=0.2, sigma_max=5.0, **kw)
    plain = dps(MemorizedPrior(train), lik, 4, cfg, seed=3, dtype=torch.float64)
    monkeypatch.setattr(importlib.import_module("geomem.posterior.dps"), "_fused", lambda device: True)
    fused = dps(MemorizedPrior(train), lik, 4, cfg, seed=3, dtype=torch.float64)
    np.testing.assert_array_equal(fused.diverged, plain.diverged)
    np.testing.assert_allclose(fused.samples, plain.samples, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fused.history, plain.history, rtol=1e-10, atol=1e-12)
