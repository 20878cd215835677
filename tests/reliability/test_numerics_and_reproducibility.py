"""Numerical robustness (σ = 1e-4 with N = 10⁵, misfits of 1e8, velocities at the bounds, diverging DPS chains)
and reproducibility (same config and seed → identical numbers; run folders record versions, seed, git revision)."""

import json

import numpy as np
import torch
from reliability_helpers import count
from scipy.special import logsumexp, softmax

from geomem.cli import main
from geomem.geology import make_model_set
from geomem.geology.parameterization import Parameterization
from geomem.physics.toy import IdentityOperator
from geomem.posterior.dps import DPSConfig, dps
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.lookup import lookup_weights
from geomem.priors.memorized import MemorizedPrior


def test_mixture_weights_at_sigma_1e_4_with_100000_components():
    """Responsibilities against a brute-force float64 softmax of −‖x − x_n‖²/2σ²; log density against logsumexp."""
    rng = np.random.default_rng(0)
    n, d, sigma = 100_000, 8, 1e-4
    train = rng.uniform(-1, 1, (n, d)).astype(np.float32)
    x = train[[3, 77_777]] + np.float32(sigma) * rng.standard_normal((2, d)).astype(np.float32)
    prior = MemorizedPrior(torch.as_tensor(train))
    r = prior.responsibilities(torch.as_tensor(x), sigma).double().numpy()
    sq = ((x.astype(np.float64)[:, None, :] - train.astype(np.float64)[None]) ** 2).sum(-1)
    ref = softmax(-sq / (2 * sigma**2), axis=1)
    assert np.all(np.isfinite(r)) and np.allclose(r.sum(1), 1, atol=1e-6)
    np.testing.assert_allclose(r, ref, atol=1e-6)
    assert r[0, 3] > 0.99 and r[1, 77_777] > 0.99
    lp = prior.log_density(torch.as_tensor(x, dtype=torch.float64), sigma).numpy()
    lp_ref = logsumexp(-sq / (2 * sigma**2), axis=1) - np.log(n) - d / 2 * np.log(2 * np.pi * sigma**2)
    np.testing.assert_allclose(lp, lp_ref, rtol=1e-9)
    count("numerical edge cases checked")


def test_lookup_weights_with_misfits_of_1e8():
    """Closed form: weights ∝ exp(−(φ_n − φ_min)/2γ²) for misfits φ ~ 1e8."""
    y = np.zeros(4)
    F = np.array([[1e4, 0, 0, 0], [1e4 + 1e-3, 0, 0, 0], [2e4, 0, 0, 0], [1e4, 1.0, 0, 0]])  # φ ≈ 1e8
    for gamma in (1.0, 1e-2, 1e3, 1e-200, 1e200):
        w = lookup_weights(F, Likelihood.of_data(y, gamma))
        phi = (F**2).sum(1)
        logits = -(phi - phi.min()) / (2 * gamma) / gamma
        assert np.all(np.isfinite(w)) and abs(w.sum() - 1) < 1e-12
        np.testing.assert_allclose(w, np.exp(logits - logsumexp(logits)), rtol=1e-12, atol=1e-300)
    # γ → 0: the best-fitting model takes all the weight
    assert lookup_weights(F, Likelihood.of_data(y, 1e-200))[0] == 1.0
    # γ → ∞: uniform
    np.testing.assert_allclose(lookup_weights(F, Likelihood.of_data(y, 1e200)), 0.25, rtol=1e-12)
    count("numerical edge cases checked", 5)


def test_velocities_at_the_bounds():
    p = Parameterization(1.5, 4.5)
    v = np.array([1.5, 4.5, 3.0])
    np.testing.assert_array_equal(p.to_normalized(v), [-1.0, 1.0, 0.0])
    np.testing.assert_array_equal(p.to_velocity(np.array([-1.0, 1.0, -1.5, 7.0])), [1.5, 4.5, 1.5, 4.5])
    ms = make_model_set(n=3, size=8, vmin=1.5, vmax=4.5)
    ms.models[0] = 1.5
    ms.models[1] = 4.5
    prior = MemorizedPrior(torch.as_tensor(ms.normalized()))
    d = prior.denoise(torch.as_tensor(ms.normalized()[:2]), 1e-4)
    np.testing.assert_allclose(d.numpy(), ms.normalized()[:2], atol=1e-6)
    count("numerical edge cases checked")


def test_diverging_dps_chain_is_flagged_and_excluded():
    """Chain 1's misfit turns NaN: it is flagged, excluded from valid(), the other chains are untouched."""
    train = torch.as_tensor(np.random.default_rng(1).uniform(-1, 1, (5, 4)), dtype=torch.float32)
    prior = MemorizedPrior(train)

    class PoisonedChain1(Likelihood):
        def misfit_and_gradient(self, x):
            phi, g = super().misfit_and_gradient(x)
            phi[1], g[1] = float("nan"), float("nan")
            return phi, g

    y = np.zeros(4)
    cfg = DPSConfig(steps=8, sigma_min=0.01, sigma_max=2.0)
    res = dps(prior, PoisonedChain1(IdentityOperator((4,)), y, 1.0), 4, cfg, seed=3)
    clean = dps(prior, Likelihood(IdentityOperator((4,)), y, 1.0), 4, cfg, seed=3)
    assert res.diverged.tolist() == [False, True, False, False]
    valid = res.valid()
    assert valid.n_samples == 3 and bool(np.isfinite(valid.samples).all())
    np.testing.assert_array_equal(valid.samples, clean.samples[[0, 2, 3]])  # same arithmetic per chain
    count("diverging DPS chains excluded")


def test_guidance_that_drives_chains_to_the_velocity_clamp_is_divergence():
    """``zeta=1e30`` pushes every velocity to the clamp: no chain may be reported as a valid posterior draw."""
    ms = make_model_set(n=4, size=8, seed=0)
    x = torch.as_tensor(ms.normalized(), dtype=torch.float32)
    from geomem.physics.acoustic import AcousticOperator
    from geomem.physics.acquisition import Geometry

    geo = Geometry.surface((8, 8), 10.0, n_src=1, t_max=150.0, f0=15.0, vmax_bound=ms.vmax)
    op = AcousticOperator((8, 8), 10.0, geo, vmax_bound=ms.vmax, nbl=4)
    lik = Likelihood.from_truth(op, ms.models[0], 0.05, ms.parameterization, seed=0)
    res = dps(MemorizedPrior(x), lik, 2, DPSConfig(steps=3, zeta=1e30), seed=0)
    assert res.diverged.all()
    count("clamped DPS chains flagged")


def test_same_config_and_seed_give_identical_numbers_and_full_provenance(tmp_path):
    make_model_set(n=10, size=16, seed=2).save(tmp_path / "train.npz")
    runs = []
    for k in range(2):
        out = tmp_path / f"s{k}"
        assert main(["sample", "--prior", "memorized", "--model-set", str(tmp_path / "train.npz"), "--n", "3",
                     "--steps", "6", "--method", "stochastic", "--seed", "11", "--device", "cpu",
                     "--out", str(out)]) == 0
        runs.append(out)
    with np.load(runs[0] / "samples.npz") as a, np.load(runs[1] / "samples.npz") as b:
        assert a.files == b.files
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])
    assert json.loads((runs[0] / "metrics.json").read_text()) == json.loads((runs[1] / "metrics.json").read_text())
    prov = json.loads((runs[0] / "provenance.json").read_text())
    assert prov["seed"] == 11 and prov["git_revision"] and {"geomem", "python", "numpy", "torch"} <= set(
        prov["versions"])
    assert (runs[0] / "config.toml").read_text() == (runs[1] / "config.toml").read_text()
    count("reproducibility reruns compared")
