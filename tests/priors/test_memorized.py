"""The exact memorized prior against direct formulas, autograd, sample moments and memory limits."""

import math
import os

import numpy as np
import pytest
import torch

from geomem.errors import GeomemError, ShapeError, ValueRangeError
from geomem.priors import Denoiser, MemorizedPrior


def direct(train, x, sigma):
    """Broadcast reference: responsibilities, denoiser and log-density from ``x[:, None] − train[None]``."""
    tr = train.reshape(train.shape[0], -1)
    xf = x.reshape(x.shape[0], -1)
    s = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, 1)
    d2 = ((xf[:, None, :] - tr[None]) ** 2).sum(-1)
    logits = -d2 / (2 * s**2)
    r = torch.softmax(logits, 1)
    dim = xf.shape[1]
    logp = torch.logsumexp(logits, 1) - math.log(tr.shape[0]) - 0.5 * dim * torch.log(2 * math.pi * s[:, 0] ** 2)
    return r, (r @ tr).reshape(x.shape), logp


@pytest.mark.parametrize("shape", [(3,), (1, 5, 4)])
@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_matches_direct_formula(shape, chunk):
    g = torch.Generator().manual_seed(1)
    train = torch.randn(23, *shape, generator=g, dtype=torch.float64)
    x = 1.5 * torch.randn(6, *shape, generator=g, dtype=torch.float64)
    sigma = torch.tensor([0.05, 0.2, 0.5, 1.0, 2.0, 5.0], dtype=torch.float64)  # per-sample sigma
    prior = MemorizedPrior(train, chunk_size=chunk)
    r, d, logp = direct(train, x, sigma)
    assert isinstance(prior, Denoiser)
    torch.testing.assert_close(prior.responsibilities(x, sigma), r, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(prior.denoise(x, sigma), d, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(prior(x, sigma), d, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(prior.log_density(x, sigma), logp, rtol=1e-10, atol=1e-10)
    # a single float sigma broadcasts
    _, d1, _ = direct(train, x, torch.full((6,), 0.3, dtype=torch.float64))
    torch.testing.assert_close(prior.denoise(x, 0.3), d1, rtol=1e-10, atol=1e-12)


def test_float32_agrees_with_float64():
    g = torch.Generator().manual_seed(2)
    train = torch.randn(40, 1, 8, 8, generator=g)
    x = torch.randn(4, 1, 8, 8, generator=g)
    d32 = MemorizedPrior(train, chunk_size=16).denoise(x, 1.0)
    d64 = MemorizedPrior(train.double()).denoise(x.double(), 1.0)
    assert d32.dtype == torch.float32
    torch.testing.assert_close(d32.double(), d64, rtol=1e-4, atol=1e-5)


def test_score_is_gradient_of_log_density():
    g = torch.Generator().manual_seed(3)
    train = torch.randn(17, 4, generator=g, dtype=torch.float64)
    prior = MemorizedPrior(train, chunk_size=5)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    for sigma in (0.1, 0.7, 3.0):
        (grad,) = torch.autograd.grad(prior.log_density(x, sigma).sum(), x)
        torch.testing.assert_close(prior.score(x.detach(), sigma), grad, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("top_k", [None, 6])
def test_analytic_vjp_equals_autograd(top_k):
    g = torch.Generator().manual_seed(4)
    train = torch.randn(19, 1, 3, 2, generator=g, dtype=torch.float64)
    prior = MemorizedPrior(train, chunk_size=4, top_k=top_k)
    x = torch.randn(3, 1, 3, 2, generator=g, dtype=torch.float64)
    sigma = torch.tensor([0.4, 1.0, 2.5], dtype=torch.float64)
    w = torch.randn(3, 1, 3, 2, generator=g, dtype=torch.float64)

    def cotangent(d):
        return w * d + 1.0  # depends on D, as a data-misfit gradient does

    d, vjp = prior.denoise_and_vjp(x, sigma, cotangent)
    d_ref, vjp_ref = Denoiser.denoise_and_vjp(prior, x, sigma, cotangent)  # autograd through denoise
    torch.testing.assert_close(d, d_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(vjp, vjp_ref, rtol=1e-9, atol=1e-10)
    assert vjp.abs().max() > 1e-3  # a non-trivial Jacobian at these noise levels


def test_samples_have_mixture_mean_and_covariance():
    train = torch.tensor([[-2.0, 0.0], [1.0, 1.0], [0.5, -1.5], [3.0, 2.0]], dtype=torch.float64)
    sigma, n = 0.6, 200_000
    prior = MemorizedPrior(train)
    xs = prior.sample(n, sigma, generator=7)
    assert xs.shape == (n, 2) and xs.dtype == torch.float64
    mean = train.mean(0)
    cov = torch.cov(train.T, correction=0) + sigma**2 * torch.eye(2, dtype=torch.float64)
    # standard errors of a sample mean / covariance; 5 of them is a generous but failing-able bound
    torch.testing.assert_close(xs.mean(0), mean, atol=5 * math.sqrt(cov.diagonal().max() / n), rtol=0)
    torch.testing.assert_close(torch.cov(xs.T), cov, atol=5 * cov.abs().max() * math.sqrt(2 / n) * 2, rtol=0)
    assert torch.equal(prior.sample(5, sigma, generator=7), prior.sample(5, sigma, generator=7))


def test_tiny_sigma_float32_weights_finite_normalized_and_correct():
    g = torch.Generator().manual_seed(5)
    train = torch.rand(30, 1, 64, 64, generator=g) * 2 - 1  # normalized-coordinate images
    prior = MemorizedPrior(train, chunk_size=8)
    sigma = 1e-4
    e = torch.randn(1, 64, 64, generator=g)
    # x near model 3; and x equidistant-ish between models 3 and 3 + tiny offset model
    x = torch.stack([train[3] + 1e-5 * e, train[11] + 2e-5 * e, train[0]])
    r = prior.responsibilities(x, sigma)
    assert bool(torch.all(torch.isfinite(r)))
    torch.testing.assert_close(r.sum(1), torch.ones(3), rtol=0, atol=1e-6)
    assert r.argmax(1).tolist() == [3, 11, 0]
    d = prior.denoise(x, sigma)
    assert bool(torch.all(torch.isfinite(d)))
    torch.testing.assert_close(d, train[[3, 11, 0]], rtol=0, atol=1e-6)
    # two nearly equidistant components: weights must match a float64 direct computation
    pair = train[:2].clone()
    pair[1] = pair[0] + 3e-5 * e / e.norm()
    x2 = (pair[0] + 1.4e-5 * e / e.norm())[None]
    r2 = MemorizedPrior(pair).responsibilities(x2, sigma)
    r_ref, _, _ = direct(pair.double(), x2.double(), torch.tensor([sigma], dtype=torch.float64))
    assert 0.1 < float(r2[0, 0]) < 0.9
    torch.testing.assert_close(r2.double(), r_ref, rtol=0, atol=2e-3)


def test_top_k_truncation_error_is_reported_and_bounded():
    g = torch.Generator().manual_seed(6)
    train = torch.randn(200, 5, generator=g, dtype=torch.float64)
    x = torch.randn(4, 5, generator=g, dtype=torch.float64)
    prior = MemorizedPrior(train, chunk_size=33, top_k=10)
    exact = MemorizedPrior(train)
    for sigma in (0.3, 1.0):
        rep = prior.truncation_report(x, sigma, measure=True)
        radius = torch.cdist(exact.denoise(x, sigma), train).max(1).values
        assert bool(torch.all(rep["measured"] <= 2 * rep["mass_bound"] * radius + 1e-12))
    rep = prior.truncation_report(x, 0.15, measure=True)  # small sigma: the 10 nearest hold the mass
    assert float(rep["mass_bound"].max()) < 1e-2 and float(rep["measured"].max()) < 1e-2
    full = MemorizedPrior(train, top_k=200)
    torch.testing.assert_close(full.denoise(x, 1.0), exact.denoise(x, 1.0), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueRangeError, match="top_k"):
        exact.truncation_report(x, 1.0)


def _vm_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(field)


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux peak-RSS reset")
def test_memory_bounded_by_chunk_not_batch_times_n():
    # N = 100 000 models of 256 numbers: a (B, N, d) float32 tensor at B = 512 would need 52 GB,
    # and even the (B, N) distance matrix would need 205 MB.
    n, dim, batch = 100_000, 256, 512
    g = torch.Generator().manual_seed(8)
    train = torch.randn(n, dim, generator=g)
    prior = MemorizedPrior(train, chunk_size=1024)
    x = torch.randn(batch, dim, generator=g)
    prior.denoise(x[:1], 1.0)  # fill caches

    def peak_increase_mib(fn):
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
        before = _vm_kib("VmRSS:")
        fn()
        return (_vm_kib("VmHWM:") - before) / 1024

    # the instrument sees a 205 MB allocation ...
    assert peak_increase_mib(lambda: torch.ones(batch, n).sum()) > 150
    # ... and the chunked prior stays far below it
    out = []
    assert peak_increase_mib(lambda: out.append(prior.denoise(x, 1.0))) < 50
    # spot-check the result against a direct computation on a few samples
    _, ref, _ = direct(train.double(), x[:1].double(), torch.tensor([1.0], dtype=torch.float64))
    torch.testing.assert_close(out[0][:1].double(), ref, rtol=0, atol=1e-4)


def test_bad_input_raises_clear_errors():
    train = torch.randn(5, 3)
    prior = MemorizedPrior(train)
    x = torch.randn(2, 3)
    with pytest.raises(ShapeError, match="expected a batch"):
        prior.denoise(torch.randn(2, 4), 1.0)
    with pytest.raises(ValueRangeError, match="sigma"):
        prior.denoise(x, 0.0)
    with pytest.raises(ValueRangeError, match="sigma"):
        prior.denoise(x, -1.0)
    with pytest.raises(ShapeError, match="sigma"):
        prior.denoise(x, torch.ones(3))
    with pytest.raises(ValueRangeError, match="NaN"):
        prior.denoise(torch.full((2, 3), float("nan")), 1.0)
    with pytest.raises(ValueRangeError, match="empty"):
        MemorizedPrior(torch.zeros(0, 3))
    with pytest.raises(ValueRangeError, match="NaN"):
        MemorizedPrior(np.array([[0.0, np.nan]]))
    with pytest.raises(ShapeError, match=r"\(N, 1\)"):
        MemorizedPrior(np.array([1.0, 2.0]))
    with pytest.raises(ValueRangeError, match="top_k"):
        MemorizedPrior(train, top_k=6)
    with pytest.raises(ValueRangeError, match="sigma"):
        prior.sample(3, 0.0)
    with pytest.raises(GeomemError):
        MemorizedPrior(train, chunk_size=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(9)
    train = torch.randn(300, 1, 16, 16, generator=g, dtype=torch.float64)
    x = train[:6] + 0.5 * torch.randn(6, 1, 16, 16, generator=g, dtype=torch.float64)
    sigma = torch.tensor([0.05, 0.5, 4.0, 8.0, 12.0, 20.0], dtype=torch.float64)  # spikes to spread mixtures
    w = torch.randn(6, 1, 16, 16, generator=g, dtype=torch.float64)
    cpu, gpu = MemorizedPrior(train, chunk_size=64), MemorizedPrior(train, chunk_size=64).to("cuda")
    with pytest.raises(ShapeError, match="prior.to"):
        gpu.denoise(x, sigma)
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
        xc, sc = x.to(dtype), sigma.to(dtype)
        xg, sg = xc.cuda(), sc.cuda()
        d_gpu = gpu.denoise(xg, sg)
        assert d_gpu.is_cuda and d_gpu.dtype == dtype
        torch.testing.assert_close(d_gpu.cpu(), cpu.denoise(xc, sc), rtol=tol, atol=tol)
        torch.testing.assert_close(gpu.log_density(xg, sg).cpu(), cpu.log_density(xc, sc), rtol=tol, atol=tol)
        _, v_gpu = gpu.denoise_and_vjp(xg, sg, lambda d: w.to(d) * d)
        _, v_ref = cpu.denoise_and_vjp(x, sigma, lambda d: w * d)  # float64 reference
        assert float(v_ref.abs().max()) > 1e-3  # a non-trivial Jacobian
        vtol = (1e-8 if dtype == torch.float64 else 1e-4) * float(v_ref.abs().max())  # 1/σ² amplifies rounding
        torch.testing.assert_close(v_gpu.cpu().double(), v_ref, rtol=0, atol=vtol)
    assert gpu.sample(4, 0.1, generator=torch.Generator(device="cuda").manual_seed(0)).is_cuda
    r = gpu.responsibilities(train[:3].float().cuda(), 1e-4)
    assert bool(torch.all(torch.isfinite(r))) and r.argmax(1).tolist() == [0, 1, 2]


@pytest.mark.parametrize("chunk", [1, 4, 4096])
def test_component_log_weights_match_weighted_mixture(chunk):
    """With log π_n the prior is Σ π_n N(x_n, σ²I): responsibilities, denoiser, log-density, VJP and samples."""
    g = torch.Generator().manual_seed(7)
    train = torch.randn(9, 3, generator=g, dtype=torch.float64)
    log_w = torch.randn(9, generator=g, dtype=torch.float64)
    log_w[2] = -math.inf  # a component with weight 0
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    sigma = 0.7
    prior = MemorizedPrior(train, chunk_size=chunk, log_weights=log_w + 3.0)  # any additive constant
    pi = torch.softmax(log_w, 0)
    logits = -((x[:, None] - train[None]) ** 2).sum(-1) / (2 * sigma**2) + torch.log(pi)[None]
    r = torch.softmax(logits, 1)
    logp = torch.logsumexp(logits, 1) - 1.5 * math.log(2 * math.pi * sigma**2)
    torch.testing.assert_close(prior.responsibilities(x, sigma), r, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(prior.denoise(x, sigma), r @ train, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(prior.log_density(x, sigma), logp, rtol=1e-10, atol=1e-10)
    cot = torch.randn(5, 3, generator=g, dtype=torch.float64)
    _, vjp = prior.denoise_and_vjp(x, sigma, lambda d: cot)
    _, vjp_ref = Denoiser.denoise_and_vjp(prior, x, sigma, lambda d: cot)
    torch.testing.assert_close(vjp, vjp_ref, rtol=1e-8, atol=1e-10)
    # exact sampling: component frequencies follow π (5000 draws: 4 standard errors ≈ 0.03)
    s = prior.sample(5000, 1e-3, generator=0)
    nearest = torch.cdist(s.reshape(5000, -1), train).argmin(1)
    freq = torch.bincount(nearest, minlength=9).double() / 5000
    assert freq[2] == 0
    assert float((freq - pi).abs().max()) < 0.03


def test_component_log_weights_bad_input():
    train = torch.randn(4, 2)
    with pytest.raises(ShapeError, match="one entry per training model"):
        MemorizedPrior(train, log_weights=torch.zeros(3))
    with pytest.raises(ValueRangeError, match="at least one finite"):
        MemorizedPrior(train, log_weights=torch.full((4,), -math.inf))
    with pytest.raises(ValueRangeError):
        MemorizedPrior(train, log_weights=torch.tensor([0.0, float("nan"), 0.0, 0.0]))


@pytest.mark.parametrize("layout", ["xc,wx", "cx,wx", "xc,xw", "cx,xw", "sdpa"])
@pytest.mark.parametrize("weighted", [False, True])
def test_gpu_denoiser_algorithm_matches_direct_formula(layout, weighted, monkeypatch):
    """The CUDA denoiser's algorithm (products with the stored uncentred models, online log-sum-exp over large
    chunks), run here on CPU tensors: every layout equals the direct weighted-mixture formula in float64, also
    with several chunks and models far from the origin (the x̄·c correction)."""
    import geomem.priors.memorized as mem

    g = torch.Generator().manual_seed(11)
    train = torch.randn(40, 6, generator=g, dtype=torch.float64) + 3.0
    x = train[:5] + 0.8 * torch.randn(5, 6, generator=g, dtype=torch.float64)
    sigma = torch.tensor([0.3, 0.7, 1.0, 2.0, 5.0], dtype=torch.float64)
    log_w = torch.randn(40, generator=g, dtype=torch.float64) if weighted else None
    if log_w is not None:
        log_w[3] = -math.inf
    if layout != "sdpa":
        monkeypatch.setattr(mem, "_RAW_LOGITS", 5 * 7)  # 7 models per chunk at B = 5: six chunks
    prior = MemorizedPrior(train, chunk_size=1, log_weights=log_w)
    assert layout == "sdpa" or prior.raw_chunk_rows(5, torch.float64) == 7
    xbar, s, work = prior._prepare(x, sigma, raw=True)
    got = prior._denoise_raw(xbar, s, work, torch.float64, layout=layout)
    logits = -((x[:, None] - train[None]) ** 2).sum(-1) / (2 * sigma[:, None] ** 2)
    if log_w is not None:
        logits = logits + torch.log_softmax(log_w, 0)[None]
    torch.testing.assert_close(got, torch.softmax(logits, 1) @ train, rtol=1e-10, atol=1e-10)


def test_gpu_denoiser_float32_switch_uses_uncentred_norms():
    """Models far from the origin: the uncentred products lose more digits, so the switch to float64 comes at a
    larger σ on the CUDA path than on the centred one, and the result stays accurate."""
    g = torch.Generator().manual_seed(12)
    train = torch.rand(20, 1, 16, 16, generator=g) * 0.2 + 50.0
    prior = MemorizedPrior(train)
    x = train[:3] + 0.05 * torch.randn(3, 1, 16, 16, generator=g)
    assert prior._prepare(x, 0.5)[2] == torch.float32
    xbar, s, work = prior._prepare(x, 0.5, raw=True)
    assert work == torch.float64
    got = prior._denoise_raw(xbar, s, work, torch.float32).reshape(x.shape)
    _, ref, _ = direct(train.double(), x.double(), torch.tensor([0.5], dtype=torch.float64))
    torch.testing.assert_close(got.double(), ref, rtol=1e-6, atol=0)  # float32 output near 50


def test_one_copy_of_the_training_set():
    """After every kind of call the prior holds the set once: besides it only (N,) norms and (d,) centres."""
    g = torch.Generator().manual_seed(13)
    train = torch.randn(50, 1, 8, 8, generator=g)
    prior = MemorizedPrior(train, chunk_size=16)
    x = train[:2] + 0.1 * torch.randn(2, 1, 8, 8, generator=g)
    prior.denoise(x, 1.0)
    prior.denoise(x, 1e-4)  # float64 distances
    prior.denoise_and_vjp(x.double(), 0.5, lambda d: d)
    prior.log_density(x, 0.3)
    big = [t for t in vars(prior).values() if isinstance(t, torch.Tensor) and t.numel() >= 50 * 64]
    assert len(big) == 1 and big[0] is prior._flat
    for dtype, (norms, center) in prior._stats.items():
        assert norms.shape == (50,) and center.shape == (64,) and norms.dtype == center.dtype == dtype


class _HostReads(torch.utils._python_dispatch.TorchDispatchMode):
    """Counts reads of a tensor's value by the host (``item``/``float``/``bool``): on a GPU each one waits for the
    device to finish its queue."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += func.__name__.startswith("_local_scalar_dense")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_host_read_per_call(dtype):
    """σ given as a number is checked on the host and the weight check is proven from host numbers
    (``_weights_certain``), so ``denoise`` and ``denoise_and_vjp`` read the device once per call (the largest ‖x̄‖²,
    which picks float32 or float64 distances and doubles as the finiteness check); a σ tensor adds one read (its
    check and minimum). The results are those of the checked path. Before: 6–7 reads per call."""
    g = torch.Generator().manual_seed(0)
    prior = MemorizedPrior(torch.rand(50, 1, 8, 8, generator=g, dtype=dtype) * 2 - 1)
    x = torch.randn(3, 1, 8, 8, generator=g, dtype=dtype)
    for sigma in (20.0, 0.5, 0.01):  # float32 distances at large σ, float64 at small σ
        prior.denoise_and_vjp(x, sigma, lambda d: d)  # fills the prior's caches (one read per dtype, once)
        with _HostReads() as reads:
            d = prior.denoise(x, sigma)
            d2, vjp = prior.denoise_and_vjp(x, sigma, lambda d: d)
        assert reads.n == 2
        with _HostReads() as reads:
            prior.denoise(x, torch.full((3,), sigma, dtype=dtype))
        assert reads.n == 2
        xbar, s, work = prior._prepare(x, sigma)
        checked, _ = prior._denoise_flat(xbar, s, work, dtype, certain=False)
        torch.testing.assert_close(d, (checked + prior._norms_center(dtype)[1]).to(dtype).reshape(x.shape),
                                   rtol=0, atol=0)
        torch.testing.assert_close(d, d2, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("raw", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_weights_certain_is_a_proof(raw, weighted):
    """Wherever ``_weights_certain`` holds, the sums it lets the denoiser skip checking are nonzero and finite
    (the device check passes); it holds in the regimes samplers use (|x| of order 1 to 10⁸, σ from 10⁻³ up) and
    not where the device check must raise (x at 10¹⁰⁰ from every model, σ = 10⁻¹¹⁰)."""
    g = torch.Generator().manual_seed(2)
    train = torch.randn(40, 6, generator=g, dtype=torch.float64)
    lw = torch.linspace(-300.0, 0.0, 40, dtype=torch.float64) if weighted else None
    lw = None if lw is None else torch.where(torch.arange(40) % 3 == 0, torch.tensor(-math.inf), lw)
    prior = MemorizedPrior(train, chunk_size=16, log_weights=lw)
    certain_cases = []
    for dtype in (torch.float32, torch.float64):
        for scale in (1.0, 1e3, 1e8, 1e15, 1e100):
            for sigma in (80.0, 1.0, 1e-3, 1e-20, 1e-110):
                x = (scale * torch.randn(4, 6, generator=g, dtype=torch.float64)).to(dtype)
                try:
                    xbar, s, work, certain = prior._prepare_certain(x, sigma, raw)
                except ValueRangeError:  # overflow (x too large) or σ below the floor: raised before any sum
                    continue
                if not certain:
                    continue
                certain_cases.append((dtype, scale, sigma))
                if raw:
                    out = prior._denoise_raw(xbar, s, work, work)  # certain=False: runs the device check
                else:
                    m, tot, out = prior._stream(xbar, s, work, work)
                    assert bool((tot > 0).all()) and bool(torch.isfinite(m).all())
                assert bool(torch.isfinite(out).all())
    for case in [(d, sc, sg) for d in (torch.float32, torch.float64) for sc in (1.0, 1e3, 1e8) for sg in (80.0, 1e-3)]:
        assert case in certain_cases
    x = torch.randn(2, 6, generator=g, dtype=torch.float64)
    x[0, 0] = 1e100
    assert not prior._prepare_certain(x, 1e-110, raw)[3]
    with pytest.raises(ValueRangeError, match="too small for x this far"):
        prior.denoise(x, 1e-110)


def test_sigma_as_a_number_or_a_tensor_is_the_same_row():
    from geomem.priors.denoiser import sigma_row

    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        x = torch.zeros(3, 2, dtype=dtype)
        row, value = sigma_row(0.3, x)
        same, low = sigma_row(torch.tensor(0.3, dtype=torch.float64), x)
        assert row.dtype == dtype and torch.equal(row, same) and low == value
        assert value == float(torch.tensor(0.3, dtype=dtype)) and torch.equal(row, torch.full((3,), value, dtype=dtype))
        low = sigma_row(torch.tensor([0.5, 0.2, 0.7], dtype=torch.float64), x)[1]
        assert low == float(torch.tensor(0.2, dtype=dtype))
    x = torch.zeros(3, 2, dtype=torch.float16)
    for bad in (0.0, -1.0, math.nan, math.inf, 1e5):  # 1e5 overflows float16
        with pytest.raises(ValueRangeError, match="finite and > 0"):
            sigma_row(bad, x)
        with pytest.raises(ValueRangeError, match="finite and > 0"):
            sigma_row(torch.full((3,), bad), x)
    with pytest.raises(ShapeError, match="sigma must be"):
        sigma_row(torch.ones(2), x)
