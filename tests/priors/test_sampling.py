"""Samplers: Karras σ spacing against diffusers, PF-ODE integration against a closed form, and the memorized
prior returning training models exactly."""

import math

import pytest
import torch

from geomem.errors import ConfigError, ValueRangeError
from geomem.priors import MemorizedPrior
from geomem.priors.denoiser import Denoiser, sigma_column
from geomem.priors.sampling import karras_sigmas, sample


class GaussianDenoiser(Denoiser):
    """x₀ ~ N(0, s² I): D(x, σ) = s²/(s² + σ²) x. The PF-ODE solution is x(σ) = x(σ₀) √(s²+σ²)/√(s²+σ₀²)."""

    def __init__(self, s: float, d: int = 3):
        self.s = s
        self.model_shape = (d,)

    def denoise(self, x, sigma):
        sig = sigma_column(sigma, x)
        return self.s**2 / (self.s**2 + sig**2) * x


def test_karras_sigmas_match_diffusers_edm_scheduler():
    from diffusers import EDMEulerScheduler

    sched = EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, sigma_schedule="karras", rho=7.0)
    sched.set_timesteps(18)
    ours = karras_sigmas(18, 0.002, 80.0, rho=7.0)
    assert torch.allclose(ours, sched.sigmas[:-1].double(), rtol=1e-5, atol=0)
    assert ours[0] == 80.0 and ours[-1] == 0.002 and bool(torch.all(ours[1:] < ours[:-1]))


@pytest.mark.parametrize("method, order", [("euler", 1), ("heun", 2)])
def test_pf_ode_matches_closed_form_with_expected_order(method, order):
    s, smin, smax = 0.7, 0.05, 20.0
    den = GaussianDenoiser(s)
    errors = []
    for n in (20, 40, 80):
        sig = karras_sigmas(n, smin, smax)
        x = sample(den, 4, sig, method, generator=3, denoise_last=False, dtype=torch.float64)
        x_start = torch.randn((4, 3), generator=torch.Generator().manual_seed(3), dtype=torch.float64) * smax
        exact = x_start * math.sqrt(s**2 + smin**2) / math.sqrt(s**2 + smax**2)
        errors.append(float((x - exact).abs().max() / exact.abs().max()))
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert errors[-1] < (5e-2 if order == 1 else 2e-3), errors
    assert all(abs(r - order) < 0.35 for r in rates), (errors, rates)


@pytest.mark.parametrize("method", ["euler", "heun", "stochastic"])
def test_memorized_prior_samples_are_training_models(method):
    g = torch.Generator().manual_seed(0)
    train = torch.rand((7, 1, 6, 5), generator=g, dtype=torch.float64) * 2 - 1
    prior = MemorizedPrior(train)
    sig = karras_sigmas(30, 0.005, 20.0)
    x = sample(prior, 12, sig, method, generator=1, s_churn=10.0, dtype=torch.float64)
    d = torch.cdist(x.flatten(1), train.flatten(1))
    nearest = d.min(dim=1).values
    assert float(nearest.max()) < 1e-10  # D(x, σ_min) is one training model to numerical precision
    assert len(set(d.argmin(dim=1).tolist())) >= 3  # and not always the same one
    # without the final denoise, x at σ_min is a training model plus noise of size ~σ_min
    x_raw = sample(prior, 12, sig, method, generator=1, s_churn=10.0, dtype=torch.float64, denoise_last=False)
    rms = torch.cdist(x_raw.flatten(1), train.flatten(1)).min(dim=1).values / math.sqrt(30)
    assert float(rms.max()) < 5 * 0.005 and float(rms.max()) > 0.1 * 0.005


def test_sampling_is_deterministic_and_independent_of_batching():
    den = GaussianDenoiser(0.5, d=4)
    sig = karras_sigmas(10)
    a = sample(den, 9, sig, "stochastic", generator=7, s_churn=5.0)
    b = sample(den, 9, sig, "stochastic", generator=7, s_churn=5.0, batch_size=4)
    c = sample(den, 9, sig, "stochastic", generator=8, s_churn=5.0)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_callback_sees_every_schedule_point():
    seen = []
    sample(GaussianDenoiser(0.5), 2, karras_sigmas(6), "heun", generator=0,
           callback=lambda i, s, x, d: seen.append((i, s)))
    assert [i for i, _ in seen] == list(range(6))


def test_bad_sampler_input():
    den = GaussianDenoiser(0.5)
    with pytest.raises(ValueRangeError, match="decreasing"):
        sample(den, 2, torch.tensor([0.1, 1.0]), generator=0)
    with pytest.raises(ValueRangeError, match="> 0"):
        sample(den, 2, torch.tensor([1.0, 0.0]), generator=0)
    with pytest.raises(ConfigError, match="method"):
        sample(den, 2, karras_sigmas(4), method="ddpm", generator=0)
    with pytest.raises(ConfigError, match="generator"):
        sample(den, 2, karras_sigmas(4))
    with pytest.raises(ConfigError):
        karras_sigmas(1)
    with pytest.raises(ValueRangeError):
        karras_sigmas(5, sigma_min=1.0, sigma_max=0.5)
