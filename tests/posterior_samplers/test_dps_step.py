"""DPS's step against its documented formulas, and what a step costs on a device (operations, host reads).

The reference below is written from the formulas of :mod:`geomem.posterior.dps` alone (module docstring),
one line each, with the same per-chain noise (:class:`ChainNoise`, seeds ``seed + i``), the prior's own
``denoise``/``denoise_and_vjp`` and the likelihood's ``misfit_and_gradient``. Both update paths of ``dps`` are
compared with it: the written-out one (the CPU's) and the fused one of a GPU (forced here on the CPU).

The costs are counted with a ``TorchDispatchMode`` (:func:`benchmarks.case_dps.count_ops`): on a GPU every
counted operation is a kernel launch and every host read (``item``/``float``/``bool`` of a tensor) waits for
the device. Before this work the fused step made 18 operations and the memorized prior's
``denoise_and_vjp`` 7 host reads per call.
"""

import importlib
import math
import warnings

import numpy as np
import pytest
import torch

from geomem.physics.toy import IdentityOperator, MatrixOperator
from geomem.posterior.chains import ChainNoise
from geomem.posterior.dps import DPSConfig, dps
from geomem.posterior.likelihood import Likelihood
from geomem.priors import MemorizedPrior
from geomem.priors.sampling import karras_sigmas

GAMMA = 0.2


def _problem(dtype=torch.float64):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 8)) / np.sqrt(8)
    train = torch.tensor(rng.standard_normal((5, 8)), dtype=dtype)
    lik = Likelihood(MatrixOperator(A), A @ (0.5 * train[0] + 0.5 * train[1]).double().numpy(), GAMMA)
    return MemorizedPrior(train), lik


def reference_dps(prior, lik, chains, cfg, seed, dtype):
    """The DPS chains of the module docstring, step by step (no divergence handling: healthy settings only)."""
    sig = karras_sigmas(cfg.steps, cfg.sigma_min, cfg.sigma_max, cfg.rho).tolist()
    noise = ChainNoise(seed, chains, prior.model_shape, dtype, "cpu")
    x = sig[0] * noise.normal()
    start = int(round(cfg.guidance_start * (len(sig) - 1)))
    d = math.prod(prior.model_shape)
    for i in range(len(sig) - 1):
        s, t = sig[i], sig[i + 1]
        guided = i >= start
        out = {}

        def cot(x0, out=out):
            out["phi"], out["grad"] = lik.misfit_and_gradient(x0)
            return out["grad"]

        if guided and cfg.guidance in ("chung", "likelihood"):
            x0, vjp = prior.denoise_and_vjp(x, s, cot)  # J_Dᵀ ∇φ
        else:
            x0 = prior.denoise(x, s)
            cot(x0)
        phi, g = out["phi"].to(dtype)[:, None], out["grad"].reshape(chains, -1)
        target = x0.reshape(chains, -1)
        if guided and cfg.guidance == "likelihood":  # x̂₀ − λ σ² J_Dᵀ∇φ
            target = target - cfg.likelihood_scale * s**2 * vjp.reshape(chains, -1)
        xf = x.reshape(chains, -1)
        if cfg.stochastic:  # D̃ + (σ'²/σ²)(x − D̃) + σ' √(1 − σ'²/σ²) z
            z = noise.normal().reshape(chains, -1)
            xf = target + (t / s) ** 2 * (xf - target) + t * math.sqrt(1 - (t / s) ** 2) * z
        else:  # D̃ + (σ'/σ)(x − D̃)
            xf = target + (t / s) * (xf - target)
        if guided and cfg.guidance == "chung":  # x − ζ ∇‖r‖²/‖r‖, ‖r‖ = γ√(2φ), ∇‖r‖² = 2γ² ∇φ
            r = GAMMA * torch.sqrt(2 * phi)
            xf = xf - cfg.zeta * 2 * GAMMA**2 * vjp.reshape(chains, -1) / r
        elif guided and cfg.guidance == "normalized":  # x − η √d g/‖g‖
            xf = xf - cfg.eta * math.sqrt(d) * g / g.norm(dim=1, keepdim=True)
        x = xf.reshape(x.shape)
    return x.numpy()


SETTINGS = [{"zeta": 0.2}, {"guidance": "likelihood"}, {"guidance": "normalized", "eta": 0.05},
            {"stochastic": False, "guidance_start": 0.5, "zeta": 0.1}]


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("kw", SETTINGS)
def test_both_update_paths_follow_the_documented_formulas(monkeypatch, fused, kw):
    prior, lik = _problem()
    cfg = DPSConfig(steps=8, sigma_min=0.2, sigma_max=5.0, **kw)
    expected = reference_dps(prior, lik, 3, cfg, seed=5, dtype=torch.float64)
    if fused:
        monkeypatch.setattr(importlib.import_module("geomem.posterior.dps"), "_fused", lambda device: True)
    got = dps(prior, lik, 3, cfg, seed=5, dtype=torch.float64)
    assert not got.diverged.any()
    np.testing.assert_allclose(got.samples, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kw", SETTINGS)
def test_float32_fused_path_is_the_written_out_one_to_float32_rounding(monkeypatch, kw):
    """In float32 the two paths round differently (fused kernels, φ's square root taken in float64): they agree
    to a few float32 ulps of the state's scale, amplified over the steps (measured ≤ 4e-6 relative)."""
    prior, lik = _problem(torch.float32)
    cfg = DPSConfig(steps=10, sigma_min=0.05, sigma_max=5.0, **kw)
    plain = dps(prior, lik, 4, cfg, seed=3, dtype=torch.float32)
    monkeypatch.setattr(importlib.import_module("geomem.posterior.dps"), "_fused", lambda device: True)
    fused = dps(prior, lik, 4, cfg, seed=3, dtype=torch.float32)
    np.testing.assert_array_equal(fused.diverged, plain.diverged)
    np.testing.assert_allclose(fused.samples, plain.samples, rtol=1e-4, atol=1e-5)


class PoisonedChain1(Likelihood):
    """Chain 1's misfit and gradient turn NaN at the third call."""

    calls = 0

    def misfit_and_gradient(self, x):
        phi, g = super().misfit_and_gradient(x)
        self.calls += 1
        if self.calls >= 3:
            phi[1], g[1] = float("nan"), float("nan")
        return phi, g


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_nan_chain_is_frozen_and_flagged_on_every_path(monkeypatch, device, fused, dtype):
    """The device-side rule (a non-finite state, found by one max-|x| reduction, or φ past its limit) flags the
    poisoned chain, zeroes it so the batch stays usable, and leaves the other chains as a clean run has them."""
    if fused:
        monkeypatch.setattr(importlib.import_module("geomem.posterior.dps"), "_fused", lambda device: True)
    train = torch.as_tensor(np.random.default_rng(1).uniform(-1, 1, (5, 4)), dtype=dtype)
    prior = MemorizedPrior(train).to(device)
    cfg = DPSConfig(steps=8, sigma_min=0.05, sigma_max=2.0)
    poisoned = dps(prior, PoisonedChain1(IdentityOperator((4,)), np.zeros(4), 1.0), 3, cfg, seed=3, dtype=dtype,
                   device=device)
    clean = dps(prior, Likelihood(IdentityOperator((4,)), np.zeros(4), 1.0), 3, cfg, seed=3, dtype=dtype,
                device=device)
    assert poisoned.diverged.tolist() == [False, True, False]
    assert np.isfinite(poisoned.samples).all()
    np.testing.assert_array_equal(poisoned.samples[[0, 2]], clean.samples[[0, 2]])


def test_a_fused_step_costs_eleven_operations_and_no_host_read(monkeypatch):
    """Memorized prior (N = 50, 16²), placeholder physics, Chung guidance, one chain, float32: DPS's own work per
    step is 11 operations (lerp, noise, add, floor and 1/√φ, addcmul; max-|x| reduction, two comparisons, their
    combination, masked fill) and no host read; the prior's ``denoise_and_vjp`` reads the device once per call
    (the largest ‖x̄‖², which picks float32 or float64 distances). Before this work: 18 operations, 7 reads."""
    from benchmarks.case_dps import build, count_ops

    monkeypatch.setattr(importlib.import_module("geomem.posterior.dps"), "_fused", lambda device: True)
    den, lik = build("memorized", 16, 1, "placeholder", "cpu")
    per_step = count_ops(den, lik, "cpu")
    assert per_step["ops"]["sampler"] <= 11
    assert per_step.get("host_reads", {}).get("sampler", 0) == 0
    assert per_step["host_reads"]["denoiser"] == 1
    assert per_step.get("transfers", {}) == {}  # all on the CPU: nothing crosses devices


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("kw", "parameterized"), [
    ({"zeta": 0.2}, False),
    ({"guidance": "likelihood"}, False),
    ({"guidance": "normalized", "eta": 0.05, "stochastic": False, "guidance_start": 0.5}, True),
    ({"zeta": 1e6, "divergence_factor": 10.0}, True),
])
def test_compiled_step_is_the_eager_fused_step(monkeypatch, kw, parameterized, device):
    """``dps(..., step="compiled")`` (torch.compile of ``_device_step``; on the CPU its C++ backend, on a GPU Triton)
    follows the eager fused step to float64 rounding, divergence flags included (the last case diverges
    everywhere)."""
    from geomem.geology.parameterization import Parameterization

    monkeypatch.setattr(importlib.import_module("geomem.posterior.dps"), "_fused", lambda device: True)
    prior, lik = _problem()
    prior.to(device)
    if parameterized:
        lik = Likelihood(lik.operator, lik.y, GAMMA, Parameterization(1.5, 4.5))
    cfg = DPSConfig(steps=10, sigma_min=0.2, sigma_max=5.0, **kw)
    eager = dps(prior, lik, 4, cfg, seed=3, dtype=torch.float64, device=device)
    comp = dps(prior, lik, 4, cfg, seed=3, dtype=torch.float64, step="compiled", device=device)
    assert comp.info["step"] == "compiled" and eager.info["step"] == "eager"
    np.testing.assert_array_equal(comp.diverged, eager.diverged)
    np.testing.assert_allclose(comp.samples, eager.samples, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(comp.history, eager.history, rtol=1e-10, atol=1e-12)


def test_a_step_that_does_not_compile_falls_back_to_the_eager_one(monkeypatch):
    mod = importlib.import_module("geomem.posterior.dps")
    monkeypatch.setattr(mod, "_fused", lambda device: True)

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(mod, "_compiled_step", lambda: broken)
    prior, lik = _problem()
    cfg = DPSConfig(steps=6, sigma_min=0.2, sigma_max=5.0, zeta=0.2)
    eager = dps(prior, lik, 2, cfg, seed=1, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="no compiler here"):
        fallback = dps(prior, lik, 2, cfg, seed=1, dtype=torch.float64, step="compiled")
    assert fallback.info["step"] == "eager"
    np.testing.assert_allclose(fallback.samples, eager.samples, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_more_step_graphs_than_torchs_default_limit_stay_compiled(monkeypatch):
    """Twelve distinct graphs of the compiled step in one process (the four guidance cases above in float64 and
    float32, then float64 again at another batch): past torch's default limit of 8 a ``fullgraph`` compile fails
    and the step falls back to eager (seen on the GPU machine, where the test above runs eight cases);
    ``STEP_GRAPHS`` keeps them compiled (about 2 min of compiling on one core)."""
    from geomem.geology.parameterization import Parameterization

    monkeypatch.setattr(importlib.import_module("geomem.posterior.dps"), "_fused", lambda device: True)
    cases = [({"zeta": 0.2}, False), ({"guidance": "likelihood"}, False),
             ({"guidance": "normalized", "eta": 0.05, "stochastic": False, "guidance_start": 0.5}, True),
             ({"zeta": 1e6, "divergence_factor": 10.0}, True)]
    for n, dtype in enumerate((torch.float64, torch.float32, torch.float64)):
        for kw, parameterized in cases:
            prior, lik = _problem()
            if parameterized:
                lik = Likelihood(lik.operator, lik.y, GAMMA, Parameterization(1.5, 4.5))
            cfg = DPSConfig(steps=10, sigma_min=0.2, sigma_max=5.0, **kw)
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)  # a fallback warns
                res = dps(prior, lik, 4 + n, cfg, seed=3, dtype=dtype, step="compiled")
            assert res.info["step"] == "compiled"


GRAPH_CASES = [({"zeta": 0.2}, False), ({"guidance": "likelihood"}, False),
               ({"guidance": "normalized", "eta": 0.05, "stochastic": False, "guidance_start": 0.5}, True),
               ({"zeta": 1e6, "divergence_factor": 10.0}, True)]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")


def _eager_device_step_run(monkeypatch, prior, lik, cfg, chains, dtype):
    """``dps`` with ``_device_step`` run eagerly every step: the ``compiled`` kind with the compiler replaced by
    the function itself (the graph's reference: the same kernels, launched one by one)."""
    mod = importlib.import_module("geomem.posterior.dps")
    monkeypatch.setattr(mod, "_compiled_step", lambda: mod._device_step)
    out = dps(prior, lik, chains, cfg, seed=3, dtype=dtype, step="compiled", device="cuda")
    monkeypatch.undo()
    return out


@needs_cuda
@pytest.mark.parametrize(("kw", "parameterized"), GRAPH_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_graph_step_replays_the_device_step_bit_for_bit(monkeypatch, kw, parameterized, dtype):
    """``dps(..., step="graph")`` replays the captured ``_device_step``: states, misfit histories and divergence
    flags equal those of ``_device_step`` launched eagerly on the same inputs, bit for bit (the last case
    diverges everywhere, the third switches from the unguided to the guided graph halfway)."""
    from geomem.geology.parameterization import Parameterization

    prior, lik = _problem(dtype)
    prior.to("cuda")
    if parameterized:
        lik = Likelihood(lik.operator, lik.y, GAMMA, Parameterization(1.5, 4.5))
    cfg = DPSConfig(steps=10, sigma_min=0.2, sigma_max=5.0, **kw)
    reference = _eager_device_step_run(monkeypatch, prior, lik, cfg, 4, dtype)
    graphed = dps(prior, lik, 4, cfg, seed=3, dtype=dtype, step="graph", device="cuda")
    assert graphed.info["step"] == "graph"
    np.testing.assert_array_equal(graphed.diverged, reference.diverged)
    np.testing.assert_array_equal(graphed.samples, reference.samples)
    np.testing.assert_array_equal(graphed.history, reference.history)


@needs_cuda
def test_graph_step_freezes_and_flags_a_nan_chain():
    train = torch.as_tensor(np.random.default_rng(1).uniform(-1, 1, (5, 4)), dtype=torch.float32)
    prior = MemorizedPrior(train).to("cuda")
    cfg = DPSConfig(steps=8, sigma_min=0.05, sigma_max=2.0)
    poisoned = dps(prior, PoisonedChain1(IdentityOperator((4,)), np.zeros(4), 1.0), 3, cfg, seed=3,
                   device="cuda", step="graph")
    assert poisoned.diverged.tolist() == [False, True, False]
    assert np.isfinite(poisoned.samples).all()


@needs_cuda
def test_a_step_that_cannot_be_captured_runs_eagerly(monkeypatch):
    def no_graphs(*args, **kwargs):
        raise RuntimeError("no graphs here")

    prior, lik = _problem()
    prior.to("cuda")
    cfg = DPSConfig(steps=6, sigma_min=0.2, sigma_max=5.0, zeta=0.2)
    reference = _eager_device_step_run(monkeypatch, prior, lik, cfg, 2, torch.float64)
    monkeypatch.setattr(torch.cuda, "graph", no_graphs)
    with pytest.warns(RuntimeWarning, match="no graphs here"):
        fallback = dps(prior, lik, 2, cfg, seed=3, dtype=torch.float64, step="graph", device="cuda")
    assert fallback.info["step"] == "eager"
    np.testing.assert_array_equal(fallback.samples, reference.samples)


def test_graph_step_off_cuda_says_what_to_use():
    from geomem.errors import ValueRangeError

    prior, lik = _problem()
    with pytest.raises(ValueRangeError, match="needs a CUDA device.*step='eager'"):
        dps(prior, lik, 2, DPSConfig(steps=4), step="graph")
    with pytest.raises(ValueRangeError, match="step must be one of eager, compiled, graph"):
        dps(prior, lik, 2, DPSConfig(steps=4), step="fast")


@needs_cuda
def test_a_graph_step_launches_four_operations_from_the_host():
    """With ``step="graph"`` the host launches, per step, the copies of ``x̂₀``, the guidance vector and ``φ`` into
    the graph's buffers and the chain's noise draw (then one replay, which is no ATen operation): 4 against the
    eager fused step's 11, and still no host read."""
    from benchmarks.case_dps import build, count_ops

    den, lik = build("memorized", 16, 1, "placeholder", "cuda")
    per_step = count_ops(den, lik, "cuda", kind="graph")
    assert per_step["ops"]["sampler"] <= 4
    assert per_step.get("host_reads", {}).get("sampler", 0) == 0


@needs_cuda
def test_a_later_run_of_the_same_shapes_replays_the_kept_graphs(monkeypatch):
    """The second run (another seed, another σ schedule and number of steps, same batch shape) captures nothing and
    still equals its own eager ``_device_step`` run bit for bit; a run of another batch shape captures its own."""
    from geomem.posterior.dps_graph import clear_cache

    clear_cache()
    prior, lik = _problem()
    prior.to("cuda")
    first_cfg = DPSConfig(steps=8, sigma_min=0.2, sigma_max=5.0, zeta=0.2)
    first = dps(prior, lik, 4, first_cfg, seed=3, dtype=torch.float64, step="graph", device="cuda")
    cfg = DPSConfig(steps=12, sigma_min=0.1, sigma_max=3.0, zeta=0.1)
    again = dps(prior, lik, 4, cfg, seed=11, dtype=torch.float64, step="graph", device="cuda")
    assert first.info["graph_captures"] == 1 and again.info["graph_captures"] == 0
    mod = importlib.import_module("geomem.posterior.dps")
    monkeypatch.setattr(mod, "_compiled_step", lambda: mod._device_step)
    reference = dps(prior, lik, 4, cfg, seed=11, dtype=torch.float64, step="compiled", device="cuda")
    np.testing.assert_array_equal(again.samples, reference.samples)
    np.testing.assert_array_equal(again.history, reference.history)
    other = dps(prior, lik, 3, cfg, seed=11, dtype=torch.float64, step="graph", device="cuda")
    assert other.info["graph_captures"] == 1
    clear_cache()
