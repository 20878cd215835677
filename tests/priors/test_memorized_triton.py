"""The Triton kernels of the memorized denoiser (layout="triton") against the cuBLAS-path layout "xc,wx" and the
centred float64 path on the same inputs: on the CPU in Triton's interpreter, and compiled on a CUDA GPU when there
is one.

The interpreter evaluates ``tl.dot`` in float32 with NumPy whatever ``input_precision`` says, so the CPU tests
check the kernels' indexing, masking, tiling, splitting and the logit/weight math, not the GPU's rounding
(``tf32x3``) nor its speed: the CUDA test checks the first, ``benchmarks/gpu_memorized.py`` measures both.
"""

import dataclasses
import importlib.util
import math
import os
import sys

import pytest
import torch

from geomem.errors import ShapeError, ValueRangeError
from geomem.priors import MemorizedPrior

pytest.importorskip("triton", reason="triton is not installed (pip install triton==3.6.0 runs these tests in its "
                                     "CPU interpreter)")
import geomem.priors.memorized_triton as compiled_mt  # noqa: E402  (the real module: compiled kernels)

_NAME = "geomem.priors.memorized_triton"


def _interpreted_copy():
    """A second instance of geomem.priors.memorized_triton whose two kernels Triton's interpreter runs.

    TRITON_INTERPRET=1 is read when a kernel is decorated, so it is set only while this copy is executed, then
    restored: the real module, triton's own @jit helpers and every other Triton kernel of this process (e.g.
    torch.compile's on a GPU) stay compiled; the two kernels call no such helper."""
    old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        spec = importlib.util.spec_from_file_location("_geomem_memorized_triton_interpreted", compiled_mt.__file__)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses look their module up there
        spec.loader.exec_module(mod)
    finally:
        if old is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = old
    return mod


mt = _interpreted_copy()
if not mt.interpreted():  # pragma: no cover
    pytest.skip("Triton's interpreter could not be enabled", allow_module_level=True)


@pytest.fixture(autouse=True)
def _interpreted_kernels(monkeypatch):
    """layout="triton" imports its kernels lazily from sys.modules: give it the interpreted copy in these tests."""
    monkeypatch.setitem(sys.modules, _NAME, mt)


#: small tiles and 3 slabs: many tiles in every dimension, partial tiles at every edge (N = 300, d = 64/256)
SMALL = mt.TritonConfig(block_n=16, block_k=16, sum_block_n=16, sum_block_d=32, split=3, swap=True)
#: the same with both products swapped (logits and weighted sum) and 5 slabs
SMALL_SWAPPED = dataclasses.replace(SMALL, sum_swap=True, split=5)
#: tiles read through TMA descriptors (both kernels; rows past N and queries past B read as zeros), unswapped
SMALL_TMA = dataclasses.replace(SMALL, swap=False, tma=True, sum_tma=True)
SIGMAS = (0.2, 1.0, 5.0, 30.0)  # one-hot weights … weights spread over most of the set


def _problem(n, d, batch, weighted, seed, train_dtype=torch.float32, sigmas=SIGMAS):
    g = torch.Generator().manual_seed(seed)
    side = int(math.isqrt(d))
    train = (torch.rand(n, 1, side, side, generator=g, dtype=torch.float64) * 2 - 1).to(train_dtype)
    log_w = None
    if weighted:
        log_w = 3.0 * torch.randn(n, generator=g, dtype=torch.float64)
        log_w[::7] = -math.inf  # components of weight 0, the nearest one of some queries among them
    prior = MemorizedPrior(train, log_weights=log_w)
    idx = torch.randint(n, (batch,), generator=g)
    x = (train[idx].double() + 0.2 * torch.randn(batch, 1, side, side, generator=g, dtype=torch.float64)).float()
    sigma = torch.tensor([sigmas[i % len(sigmas)] for i in range(batch)], dtype=torch.float32)
    return prior, x, sigma


def _row_err(got, ref):
    return float((torch.linalg.vector_norm(got.double() - ref, dim=1) / torch.linalg.vector_norm(ref, dim=1)).max())


def _check(prior, x, sigma, config, as_accurate_as_cublas=False):
    """layout="triton" against "xc,wx" and the float64 path: largest per-query relative error ≤ 1e-5, or, with
    ``as_accurate_as_cublas``, ≤ max(1e-5, 2 × the float32 "xc,wx" layout's own error against float64) (at d = 4096
    the float32 logits alone cost that layout ~1e-4 on the queries whose weights mix several components)."""
    xbar, s, work = prior._prepare(x, sigma, raw=True)
    assert work == torch.float32  # the case the kernels serve
    got = prior._denoise_raw(xbar, s, work, torch.float32, layout="triton", triton_config=config)
    assert got.dtype == torch.float32 and got.shape == xbar.shape
    cublas = prior._denoise_raw(xbar, s, work, torch.float32, layout="xc,wx")
    x64, s64, _ = prior._prepare(x.double(), sigma.double())
    ref = prior._denoise_flat(x64, s64, torch.float64, torch.float64)[0] + prior._norms_center(torch.float64)[1]
    tol = max(1e-5, 2.0 * _row_err(cublas, ref)) if as_accurate_as_cublas else 1e-5
    assert _row_err(got, cublas.double()) <= tol
    assert _row_err(got, ref) <= tol
    return got


@pytest.mark.parametrize("batch", [1, 5, 16, 20])
@pytest.mark.parametrize("d", [64, 256])
@pytest.mark.parametrize("weighted", [False, True])
def test_default_config_matches_cublas_layout_and_float64(batch, d, weighted):
    prior, x, sigma = _problem(300, d, batch, weighted, seed=batch + d)
    _check(prior, x, sigma, None)


@pytest.mark.parametrize("batch", [5, 20])
@pytest.mark.parametrize("d", [100, 256])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("config", [SMALL, SMALL_SWAPPED, SMALL_TMA], ids=["swap", "both-swapped", "tma"])
def test_small_tiles_split_and_swap_match(batch, d, weighted, config):
    """Many tiles per dimension, several slabs, the swapped logits product (and the swapped weighted sum); d = 100
    leaves a partial tile in d (for both kernels), N = 300 one in N."""
    prior, x, sigma = _problem(300, d, batch, weighted, seed=100 + batch + d)
    _check(prior, x, sigma, config)


@pytest.mark.parametrize("config", [None, SMALL, SMALL_TMA], ids=["default", "small", "tma"])
def test_logits_kernel_matches_float64_formula_with_clamp(config):
    """Kernel 1 alone against ``log π_n − max(0, β_b + ‖x̄_n‖² − 2 x̄_b·x_n) / 2σ_b²`` in float64 (d = 100: a
    partial tile in d). The row bias is lowered by the median ‖x_b − x_n‖² so that the clamp at 0 acts on about
    half of the entries, not only on rounding errors."""
    prior, _, _ = _problem(300, 100, 20, True, seed=9)
    x = prior.train[40:60] + 0.1
    sigma = torch.linspace(0.5, 5.0, 20)
    xbar, s, work = prior._prepare(x, sigma, raw=True)
    norms = prior._norms_center(work)[0]
    d2 = ((x.reshape(20, -1).double()[:, None] - prior._flat.double()[None]) ** 2).sum(-1)
    shift = float(d2.median())
    d2 = d2 - shift
    row_bias = (xbar**2).sum(1) + 2.0 * (xbar.double() @ prior._center64).float() - shift
    got, row_max = mt.logits(xbar, prior._flat, norms, row_bias, 1.0 / (2.0 * s**2), prior.log_weights.float(),
                             config or mt.TritonConfig())
    assert 0.3 < float((d2 < 0).double().mean()) < 0.7
    ref = prior.log_weights[None] - d2.clamp(min=0.0) / (2.0 * s.double()[:, None] ** 2)
    finite = torch.isfinite(ref)
    assert torch.equal(finite, torch.isfinite(got))
    # float32 distances: absolute error ~ ε (‖x̄‖² + ‖x̄_n‖²) / 2σ² ≈ 1e-7 · 70 / 0.5; entries are O(10 … 100)
    assert float((got.double() - ref)[finite].abs().max()) < 1e-4
    # the row maxima from the per-tile maxima: those of the stored logits exactly (a maximum has no rounding)
    assert torch.equal(row_max, got.max(1).values)
    assert float((row_max.double() - ref.max(1).values).abs().max()) < 1e-4


@pytest.mark.parametrize("config", [None, SMALL, SMALL_SWAPPED, SMALL_TMA],
                         ids=["default", "small", "small-swapped", "tma"])
@pytest.mark.parametrize("batch", [3, 20])
def test_weighted_sum_kernel_matches_float64_sums(config, batch):
    """Kernel 2 alone, given logits: ``a = Σ_n e^{ℓ_n − m} x_n`` and ``t = Σ_n e^{ℓ_n − m}`` against float64
    (N = 300, d = 100: partial tiles in N and d; logits spread over ~[m − 8, m], some −inf: weight 0)."""
    g = torch.Generator().manual_seed(batch)
    train = torch.rand(300, 100, generator=g) * 2 - 1
    logit = -8.0 * torch.rand(batch, 300, generator=g)
    logit[:, ::11] = -math.inf
    m = logit.max(1).values
    a, t = mt.weighted_sum(logit, m, train, config or mt.TritonConfig())
    w = torch.exp(logit.double() - m.double()[:, None])
    a_ref, t_ref = w @ train.double(), w.sum(1)
    assert a.shape == (batch, 100) and t.shape == (batch,)
    assert _row_err(a, a_ref) < 1e-6
    assert float(((t.double() - t_ref) / t_ref).abs().max()) < 1e-6


@pytest.mark.parametrize("config", [SMALL, SMALL_TMA], ids=["small", "tma"])
def test_batch_above_64_runs_in_slices_and_float64_set_is_read_as_float32(config):
    prior, x, sigma = _problem(150, 64, 70, True, seed=7, train_dtype=torch.float64)
    assert prior._flat.dtype == torch.float64
    _check(prior, x, sigma, config)


def test_spread_weights_are_exercised():
    """Guard on the problem itself: at σ = 30 the weights of a query spread over most of the set (so the weighted
    sum, not one nearest model, is what the comparisons above check)."""
    prior, x, sigma = _problem(300, 256, 4, False, seed=260)
    r = prior.responsibilities(x[3:4], sigma[3:4].item())
    assert float(1.0 / (r.double() ** 2).sum()) > 100


def test_no_weight_anywhere_raises_like_the_cublas_layout():
    """σ so small that every logit is −inf in float32 (inv2s2 = inf): the weight total is 0, and both layouts raise."""
    prior, x, _ = _problem(100, 64, 3, False, seed=3)
    xbar, _, _ = prior._prepare(x + 5.0, 1.0, raw=True)
    tiny = torch.full((3,), 1e-30)
    for layout in ("xc,wx", "triton"):
        with pytest.raises(ValueRangeError, match="sigma is too small"):
            prior._denoise_raw(xbar, tiny, torch.float32, torch.float32, layout=layout)


def test_bad_use_raises_clear_errors(monkeypatch):
    prior, x, sigma = _problem(50, 64, 2, False, seed=4)
    x64, s64, work64 = prior._prepare(x.double(), sigma.double(), raw=True)
    with pytest.raises(ValueRangeError, match="layout='xc,wx'"):
        prior._denoise_raw(x64, s64, work64, torch.float64, layout="triton")
    for bad in ({"precision": "tf32"}, {"block_n": 24}, {"sum_block_d": 8}, {"warps": 3}, {"split": 0},
                {"tma": True, "block_n": 512}, {"sum_tma": True, "sum_block_d": 512}):
        with pytest.raises(ValueRangeError):
            mt.TritonConfig(**bad)
    odd, xo, so = _problem(50, 9, 2, False, seed=5)  # d = 9: rows of 36 bytes, not 16-byte aligned
    xbo, sbo, wo = odd._prepare(xo, so, raw=True)
    with pytest.raises(ValueRangeError, match="16-byte aligned"):
        odd._denoise_raw(xbo, sbo, wo, torch.float32, layout="triton", triton_config=SMALL_TMA)
    xbar, s, work = prior._prepare(x, sigma, raw=True)
    norms = prior._norms_center(work)[0]
    with pytest.raises(ShapeError, match="norms"):
        mt.denoise_sums(xbar, prior._flat, norms[:-1], xbar[:, 0], xbar[:, 0])
    monkeypatch.setattr(mt, "interpreted", lambda: False)
    with pytest.raises(ValueRangeError, match="CUDA tensors"):
        prior._denoise_raw(xbar, s, work, torch.float32, layout="triton")
    monkeypatch.setattr(mt, "triton", None)
    with pytest.raises(ValueRangeError, match="needs the triton package"):
        prior._denoise_raw(xbar, s, work, torch.float32, layout="triton")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the compiled kernels)")
@pytest.mark.parametrize("precision", ["ieee", "tf32x3"])
@pytest.mark.parametrize("tiles", [{}, {"swap": True, "warps": 8},
                                   {"tma": True, "sum_tma": True, "sum_swap": True, "split": 132}],
                         ids=["default", "swap8", "tma"])
def test_compiled_kernels_on_cuda_match(precision, tiles, monkeypatch):
    """The real (compiled) kernels at d = 4096 on the GPU, both precisions, with log-weights, through
    _denoise_raw; at σ = 30 and 60 the weights spread (σ = 1: one-hot). Batch 20 pads to 32 rows."""
    monkeypatch.setitem(sys.modules, _NAME, compiled_mt)
    prior, x, sigma = _problem(2000, 4096, 20, True, seed=17, sigmas=(1.0, 30.0, 60.0))
    prior.to("cuda")
    config = compiled_mt.TritonConfig(precision=precision, **tiles)
    _check(prior, x.cuda(), sigma.cuda(), config, as_accurate_as_cublas=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the compiled kernels)")
def test_compiled_kernels_on_cuda_batch_above_64(monkeypatch):
    monkeypatch.setitem(sys.modules, _NAME, compiled_mt)
    prior, x, sigma = _problem(1000, 4096, 70, False, seed=18, sigmas=(1.0, 30.0, 60.0))
    prior.to("cuda")
    _check(prior, x.cuda(), sigma.cuda(), dataclasses.replace(compiled_mt.TritonConfig(), split=5),
           as_accurate_as_cublas=True)


@pytest.mark.parametrize("precision", ["ieee", "tf32x3"])
def test_default_kernels_compile_for_sm90(precision):
    """The real kernels compile to an sm_90 (H100/H200) binary here, without a GPU (Triton's bundled ptxas), at
    B = 16 and 64 with the default tiles; "ieee" uses FMAs, never the TF32 tensor cores, and "tf32x3" uses them."""
    from pathlib import Path

    import triton

    if not (Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas").exists():
        pytest.skip("this triton has no bundled ptxas")
    from benchmarks.gpu_memorized import _aot, kernel_specs

    cfg = compiled_mt.TritonConfig(precision=precision)
    for bp in (16, 64):
        for kernel, consts, options in kernel_specs(cfg, bp, mt=compiled_mt).values():
            info = _aot(kernel, consts, options, 90)
            assert (info["product"] == "fma") == (precision == "ieee"), info


def test_shipped_pair_compiles_for_sm90_with_tensor_cores():
    """``benchmarks.gpu_memorized --grid shipped`` times :data:`H200_TF32X3` end to end: both of its kernels compile
    for sm_90 at B = 16 and 64 (TMA descriptors, swapped products) without spilling, on Hopper's wgmma."""
    from pathlib import Path

    import triton

    if not (Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas").exists():
        pytest.skip("this triton has no bundled ptxas")
    import benchmarks.gpu_memorized as gm

    rows = gm.compile_report(gm.GRIDS["shipped"], (16, 64))
    assert {r["kernel"] for r in rows} == {"logits", "weighted_sum"}
    for r in rows:
        assert "error" not in r and r["product"] == "wgmma" and r["spill_store_bytes"] == 0, r


def test_tune_sweep_runs_end_to_end_on_interpreted_kernels(monkeypatch, capsys):
    """``benchmarks.gpu_memorized --grid tune``'s sweep (:func:`tune_kernels`, :func:`print_tune`) on a small set
    with the interpreted kernels and wall-clock timing in place of CUDA events: every parameter set runs, agrees
    with the default configuration's output to float32 rounding, and the pairings of the fastest sets are run end
    to end (their errors against float64 are real)."""
    import benchmarks.gpu_memorized as gm

    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(gm, "_time", lambda fn, repeats: min(_wall(fn) for _ in range(repeats)))
    monkeypatch.setattr(gm, "TUNE_LOGITS", ({"block_n": 16, "block_k": 16},
                                            {"block_n": 32, "block_k": 32, "swap": True, "tma": True}))
    monkeypatch.setattr(gm, "TUNE_SUM", ({"sum_block_n": 16, "sum_block_d": 32, "split": 3},
                                         {"sum_block_n": 16, "sum_block_d": 16, "split": 4, "sum_swap": True},
                                         {"sum_block_n": 32, "sum_block_d": 64, "split": 2, "sum_tma": True}))
    prior, x, sigma = _problem(300, 100, 5, True, seed=31)
    xbar, s, work = prior._prepare(x, sigma, raw=True)
    x64, s64, _ = prior._prepare(x.double(), sigma.double())
    ref = prior._denoise_flat(x64, s64, torch.float64, torch.float64)[0] + prior._norms_center(torch.float64)[1]
    seen = []

    def end_to_end(cfg):
        seen.append(cfg)
        got = prior._denoise_raw(xbar, s, work, torch.float32, layout="triton", triton_config=cfg)
        return {"s": 1.0, "floor_fraction": 0.5, "rel_err": _row_err(got, ref)}

    res = gm.tune_kernels(prior, xbar, s, {"bandwidth_Bps": 1e9}, 2, end_to_end)
    assert set(res) == set(gm.TUNE_PRECISIONS)
    for r in res.values():
        assert len(r["logits"]) == 2 and len(r["sum"]) == 3
        for v in (*r["logits"].values(), *r["sum"].values()):
            assert "error" not in v and v["diff_vs_default"] < 1e-5 and v["s"] > 0, v
        # the default, then the 2 × 2 pairings of the fastest sets (the default sets are not in this grid)
        assert len(r["end_to_end"]) == 5
        assert all(v["rel_err"] < 1e-5 for v in r["end_to_end"].values())
    assert {c.precision for c in seen} == set(gm.TUNE_PRECISIONS)
    gm.print_tune([{"N": 300, "batch": 5, "sigma": 1.0, "floor_s": 1e-3, "floor_bound": "memory",
                    "triton_tune": res}])
    out = capsys.readouterr().out
    assert "logits kernel alone" in out and "end to end" in out


def _wall(fn) -> float:
    import time

    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def test_h200_preset_is_the_measured_pair_and_matches_float64():
    """The preset named in docs/benchmarks.md ("Session 7") is the pair the tune sweep measured, and it computes
    the same denoiser (interpreter, d = 256, N = 300, a partial slab)."""
    assert mt.H200_TF32X3.label() == "tf32x3 n64k64w4s3T | n32d256w8s3TM x132"
    prior, x, sigma = _problem(300, 256, 16, True, seed=7)
    _check(prior, x, sigma, mt.H200_TF32X3)
