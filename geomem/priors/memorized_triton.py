"""Triton kernels for the CUDA memorized denoiser in float32 (``layout="triton"`` of ``_denoise_raw``).

Same math as the ``"xc,wx"`` layout of :meth:`geomem.priors.memorized.MemorizedPrior._denoise_raw`, with
``X`` (N, d) the stored (uncentred) training models, ``x̄`` (B, d) the queries centred at the training mean
``c``, ``‖x̄_n‖²`` the squared norms of the centred models and ``log π_n`` the optional log-weights::

    β_b   = ‖x̄_b‖² + 2 x̄_b·c                                      (row bias, from the caller)
    d²_bn = max(0, β_b + ‖x̄_n‖² − 2 x̄_b·x_n)                       (= ‖x_b − x_n‖², clamped at 0)
    ℓ_bn  = log π_n − d²_bn / (2σ_b²)                                (logits; log π_n = 0 when uniform)
    m_b   = max_n ℓ_bn,   t_b = Σ_n e^{ℓ_bn − m_b},   a_b = Σ_n e^{ℓ_bn − m_b} x_n   (a_b ∈ R^d)
    D_b   = a_b / t_b                                                (the denoiser; divided by the caller)

Why: at batch 16 the two cuBLAS float32 products (``x̄Xᵀ`` then ``W X``) each take ~7 ms at N = 10⁶, d = 4096
on an H200 against a 4 ms read of the 16.4 GB set (M = 16 wastes most of cuBLAS's tiles). Here:

- kernel 1 (:func:`_logits_kernel`), one program per tile of ``BLOCK_N`` training rows: accumulates the
  ``(B, BLOCK_N)`` dot products over ``d`` in steps of ``BLOCK_K`` pixels with ``tl.dot`` (B padded to
  ``BP = max(16, 2^⌈log₂B⌉)`` rows, masked), then applies bias, clamp, ``1/(2σ²)`` and ``log π``, and stores
  the logits ``(B, N)`` float32 and the tile's row maxima (so ``m`` is a maximum over ``N / BLOCK_N`` numbers a
  row, in torch). Each program reads its ``BLOCK_N × d`` rows of ``X`` once, row by row (coalesced), and the
  whole ``x̄`` (B·d·4 bytes, from L2);
- kernel 2 (:func:`_weighted_sum_kernel`), one program per (slab of ``ITERS·BLOCK_N`` training rows,
  tile of ``BLOCK_D`` pixels): forms ``w = e^{ℓ − m}`` for its rows on the fly and accumulates
  ``tl.dot(w (BP × BLOCK_N), X (BLOCK_N × BLOCK_D))`` (or its transpose: ``sum_swap``) and, elementwise, the
  weights themselves for ``t``; the ``d``-tiles of one slab are consecutive program ids, so programs that run
  together read the same slab's logits (through L2) and whole rows of ``X``. The ``split`` partial sums
  ``(split, B, d)`` and totals ``(split, B)`` are added in torch: deterministic for a given configuration (no
  atomics). No pass over the ``B·N`` logits besides the two kernels' (64 MB at B = 16, N = 10⁶).

So ``X`` is read twice (once per kernel), ~8.1 ms at 4.05 TB/s for N = 10⁶: the kernels aim at that bound.
Batches above 64 run in slices of 64 queries (each slice reads ``X`` twice again; for large batches the
cuBLAS layouts are the better path).

Precision (``TritonConfig.precision``): ``"ieee"`` computes the products with float32 FMAs (the numbers of
the cuBLAS float32 path up to summation order); ``"tf32x3"`` splits each float32 factor into a TF32 high and
low part and sums three tensor-core products (hi·hi + hi·lo + lo·hi, ~float32 accuracy). The summation order
differs from cuBLAS's in both, so results agree with ``"xc,wx"`` to rounding, not bit for bit.

Tests (``tests/priors/test_memorized_triton.py``) run an interpreted copy of this module (imported with
``TRITON_INTERPRET=1``) on CPU tensors; the interpreter evaluates ``tl.dot`` with NumPy in float32 whatever
``input_precision`` says, so the ``tf32x3`` rounding is checked only by the test's CUDA part and every GPU speed
only by ``benchmarks/gpu_memorized.py`` on a GPU. For the interpreter the kernels call Triton's builtins only
(``tl.full``, not the ``@jit`` helpers ``tl.zeros`` or ``tl.cdiv``, which it cannot call unless triton itself
was imported with ``TRITON_INTERPRET=1``; reductions as ``tl.reduce`` with ``tl.standard``'s combine functions,
which is what ``tl.max``/``tl.sum`` do for float32). This module imports without triton (``layout="triton"`` then
raises).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from geomem.errors import ShapeError, ValueRangeError

try:
    import triton
    import triton.language as tl
except ImportError:  # the module stays importable; denoise_sums says what to install
    triton = tl = None

#: largest batch one launch handles (the padded batch ``BP`` is a tile dimension of every ``tl.dot``)
MAX_BATCH = 64
PRECISIONS = ("ieee", "tf32x3")


def _jit(fn):
    return fn if triton is None else triton.jit(fn)


@dataclass(frozen=True)
class TritonConfig:
    """Tile sizes and launch parameters of the two kernels (defaults chosen for d = 4096, float32).

    ``precision``: ``"ieee"`` or ``"tf32x3"`` (module docstring). Logits kernel: ``block_n`` training rows
    per program, ``block_k`` pixels per ``tl.dot`` step, ``warps``/``stages`` its ``num_warps``/``num_stages``,
    ``swap``: compute the tile as ``X_tile · x̄_tileᵀ`` (BLOCK_N × BP, the training rows as the M dimension of
    the tensor-core product) instead of ``x̄_tile · X_tileᵀ``. Weighted-sum kernel: ``sum_block_n`` rows per
    ``tl.dot`` step, ``sum_block_d`` pixels per program, ``sum_warps``/``sum_stages``, ``split``: the most
    slabs the N rows are cut into (fewer when N is small: every slab holds a multiple of ``sum_block_n`` rows),
    and ``sum_swap``: compute the partial sum as ``X_tileᵀ · wᵀ`` (BLOCK_D × BP, the pixels as the M dimension)
    instead of ``w · X_tile``. ``tma``/``sum_tma``: the kernel reads its tiles of ``X`` through a TMA tensor
    descriptor (Hopper's bulk copy engine: one instruction a tile, no per-thread addresses; needs 16-byte aligned
    rows, ``d`` a multiple of 4 in float32) instead of per-thread ``cp.async`` copies. Block sizes are powers of
    two ≥ 16 (``tl.dot`` needs each dimension ≥ 16), at most 256 where TMA reads them.

    The defaults compile for sm_90 (Triton 3.6) without register spills at B = 16 and 64 in both precisions, with
    ≤ 80 KiB of shared memory per program (``python -m benchmarks.gpu_memorized --compile-only``, no GPU needed).
    Which configuration is fastest is measured on the GPU only.
    """

    precision: str = "ieee"
    block_n: int = 128
    block_k: int = 32
    warps: int = 8
    stages: int = 3
    swap: bool = False
    sum_block_n: int = 32
    sum_block_d: int = 128
    sum_warps: int = 8
    sum_stages: int = 3
    split: int = 64
    sum_swap: bool = False
    tma: bool = False
    sum_tma: bool = False

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueRangeError(f"precision must be one of {PRECISIONS}, got {self.precision!r} (plain 'tf32' "
                                  f"rounds the distances to ~1e-3 relative, too coarse for the logits)")
        for name in ("block_n", "block_k", "sum_block_n", "sum_block_d"):
            v = getattr(self, name)
            if v < 16 or v & (v - 1):
                raise ValueRangeError(f"{name} must be a power of two >= 16, got {v}")
        for name in ("warps", "sum_warps"):
            v = getattr(self, name)
            if v not in (1, 2, 4, 8, 16):
                raise ValueRangeError(f"{name} must be 1, 2, 4, 8 or 16, got {v}")
        for name in ("stages", "sum_stages", "split"):
            if getattr(self, name) < 1:
                raise ValueRangeError(f"{name} must be >= 1, got {getattr(self, name)}")
        for flag, names in (("tma", ("block_n", "block_k")), ("sum_tma", ("sum_block_n", "sum_block_d"))):
            if getattr(self, flag) and max(getattr(self, n) for n in names) > 256:
                raise ValueRangeError(f"{flag}=True reads blocks of at most 256 along each side (TMA's box); got "
                                      f"{', '.join(f'{n}={getattr(self, n)}' for n in names)}")

    def label(self) -> str:
        """Short name for tables: ``ieee n128k32w8s3 | n32d128w8s3 x64`` (the defaults; ``T`` marks a swapped
        product, ``M`` TMA reads)."""
        return f"{self.precision} {self.logits_label()} | {self.sum_label()}"

    def logits_label(self) -> str:
        """The logits kernel's part of :meth:`label`: ``n128k32w8s3`` (``T`` appended when swapped, ``M`` with TMA)."""
        return (f"n{self.block_n}k{self.block_k}w{self.warps}s{self.stages}{'T' if self.swap else ''}"
                f"{'M' if self.tma else ''}")

    def sum_label(self) -> str:
        """The weighted-sum kernel's part of :meth:`label`: ``n32d128w8s3 x64`` (``T`` appended when swapped, ``M``
        with TMA)."""
        return (f"n{self.sum_block_n}d{self.sum_block_d}w{self.sum_warps}s{self.sum_stages}"
                f"{'T' if self.sum_swap else ''}{'M' if self.sum_tma else ''} x{self.split}")


@_jit
def _logits_kernel(Q, X, XN, RB, INV, LW, L, TM, B, N, stride_q, stride_xn, stride_xd, stride_l, D: tl.constexpr,
                   BP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, HAS_LW: tl.constexpr,
                   SWAP: tl.constexpr, PREC: tl.constexpr, TMA: tl.constexpr):
    """``L[b, n] = LW[n] − max(0, RB[b] + XN[n] − 2 Q[b]·X[n]) · INV[b]`` for the rows of one tile, and the
    tile's row maxima ``TM[tile, b] = max_{n in tile} L[b, n]`` (TM is (tiles, B), contiguous). With ``TMA``,
    ``X`` and ``Q`` are tensor descriptors with blocks ``(BLOCK_N, BLOCK_K)`` and ``(BP, BLOCK_K)`` (rows past
    N or B read as 0), else pointers."""
    tile = tl.program_id(0)
    rows = tile * BLOCK_N + tl.arange(0, BLOCK_N)
    rmask = rows < N
    b = tl.arange(0, BP)
    bmask = b < B
    kk = tl.arange(0, BLOCK_K)
    if not TMA:
        x_ptr = X + rows.to(tl.int64)[:, None] * stride_xn + kk[None, :] * stride_xd
    if not TMA:
        q_ptr = Q + b[:, None] * stride_q + kk[None, :]
    if SWAP:
        acc = tl.full((BLOCK_N, BP), 0.0, tl.float32)
    else:
        acc = tl.full((BP, BLOCK_N), 0.0, tl.float32)
    for k0 in range(0, D, BLOCK_K):
        kmask = (k0 + kk) < D
        if TMA:
            xt = X.load([tile * BLOCK_N, k0]).to(tl.float32)
        else:
            xt = tl.load(x_ptr, mask=rmask[:, None] & kmask[None, :], other=0.0).to(tl.float32)
            x_ptr += BLOCK_K * stride_xd
        if TMA:
            q = Q.load([0, k0])
        else:
            q = tl.load(q_ptr, mask=bmask[:, None] & kmask[None, :], other=0.0)
            q_ptr += BLOCK_K
        if SWAP:
            acc = tl.dot(xt, tl.trans(q), acc, input_precision=PREC)
        else:
            acc = tl.dot(q, tl.trans(xt), acc, input_precision=PREC)
    if SWAP:
        dots = tl.trans(acc)
    else:
        dots = acc
    rb = tl.load(RB + b, mask=bmask, other=0.0)
    inv = tl.load(INV + b, mask=bmask, other=0.0)
    xn = tl.load(XN + rows, mask=rmask, other=0.0)
    d2 = tl.maximum(rb[:, None] + xn[None, :] - 2.0 * dots, 0.0)
    logit = -d2 * inv[:, None]
    if HAS_LW:
        logit = logit + tl.load(LW + rows, mask=rmask, other=0.0)[None, :]
    tl.store(L + b.to(tl.int64)[:, None] * stride_l + rows[None, :], logit, mask=bmask[:, None] & rmask[None, :])
    tmax = tl.reduce(tl.where(rmask[None, :], logit, float("-inf")), 1, tl.standard._elementwise_max)
    tl.store(TM + tile * B + b, tmax, mask=bmask)


@_jit
def _weighted_sum_kernel(L, M, X, P, T, B, N, stride_l, stride_xn, stride_xd, stride_ps, stride_pb,
                         D: tl.constexpr, ITERS: tl.constexpr, BP: tl.constexpr, BLOCK_N: tl.constexpr,
                         BLOCK_D: tl.constexpr, SWAP: tl.constexpr, PREC: tl.constexpr, TMA: tl.constexpr):
    """``P[s, b, j] = Σ_{n in slab s} exp(L[b, n] − M[b]) X[n, j]`` for one (slab of ``ITERS·BLOCK_N`` rows,
    pixel tile), and, from the slab's first pixel tile, the slab's weight totals ``T[s, b] = Σ_{n in slab s}
    exp(L[b, n] − M[b])`` (T is (slabs, B), contiguous; every program sums its weights elementwise, one tile
    stores them). With ``TMA``, ``X`` is a tensor descriptor with blocks ``(BLOCK_N, BLOCK_D)``. Loop bounds are
    compile-time constants in both kernels (``d`` and ``ITERS`` are fixed for a prior and a config: one compile
    each); Triton 3.6's interpreter also fails on runtime loop bounds under
    NumPy 2.4 (``int()`` of a 1-element array)."""
    pid = tl.program_id(0)
    n_dtiles = (D + BLOCK_D - 1) // BLOCK_D
    slab = pid // n_dtiles
    dtile = pid % n_dtiles
    cols = dtile * BLOCK_D + tl.arange(0, BLOCK_D)
    cmask = cols < D
    b = tl.arange(0, BP)
    bmask = b < B
    m = tl.load(M + b, mask=bmask, other=0.0)
    l_ptr = L + b.to(tl.int64)[:, None] * stride_l
    nn = tl.arange(0, BLOCK_N)
    start = slab * (ITERS * BLOCK_N)
    if SWAP:
        acc = tl.full((BLOCK_D, BP), 0.0, tl.float32)
    else:
        acc = tl.full((BP, BLOCK_D), 0.0, tl.float32)
    wsum = tl.full((BP, BLOCK_N), 0.0, tl.float32)
    for i in range(ITERS):
        rows = start + i * BLOCK_N + nn  # < the next slab's start by construction: only the last slab needs a mask
        rmask = rows < N
        logit = tl.load(l_ptr + rows[None, :], mask=bmask[:, None] & rmask[None, :], other=float("-inf"))
        w = tl.exp(logit - m[:, None])
        wsum += w
        if TMA:
            xt = X.load([start + i * BLOCK_N, dtile * BLOCK_D]).to(tl.float32)
        else:
            xt = tl.load(X + rows.to(tl.int64)[:, None] * stride_xn + cols[None, :] * stride_xd,
                         mask=rmask[:, None] & cmask[None, :], other=0.0).to(tl.float32)
        if SWAP:
            acc = tl.dot(tl.trans(xt), tl.trans(w), acc, input_precision=PREC)
        else:
            acc = tl.dot(w, xt, acc, input_precision=PREC)
    if SWAP:
        res = tl.trans(acc)
    else:
        res = acc
    out = P + slab.to(tl.int64) * stride_ps + b[:, None] * stride_pb + cols[None, :]
    tl.store(out, res, mask=bmask[:, None] & cmask[None, :])
    tl.store(T + slab * B + b, tl.reduce(wsum, 1, tl.standard._sum_combine), mask=bmask & (dtile == 0))


#: The fastest pair measured on one H200 (sm_90, Triton 3.6.0) at B = 16, N = 10⁶, d = 4096 by
#: ``python3 -m benchmarks.gpu_memorized --sizes 1000000 --batches 16 --sigmas 1 --grid tune --repeats 9``
#: (docs/benchmarks.md, "Session 7"): 8.04 ms, 64 % of the 5.17 ms floor, each kernel at ~100 % of the measured
#: copy bandwidth; relative error 2e-8 (σ = 1) and 9e-6 (σ = 30) against float64. TMA reads: Hopper only;
#: elsewhere use the defaults or measure with ``--grid tune``.
H200_TF32X3 = TritonConfig(precision="tf32x3", block_n=64, block_k=64, warps=4, stages=3, swap=True,
                           sum_block_n=32, sum_block_d=256, sum_warps=8, sum_stages=3, split=132, sum_swap=True,
                           sum_tma=True)


def interpreted() -> bool:
    """True when the kernels run in Triton's interpreter (``TRITON_INTERPRET=1`` when this module was imported)."""
    if triton is None:
        return False
    from triton.runtime.interpreter import InterpretedFunction
    return isinstance(_logits_kernel, InterpretedFunction)


def _check(xbar, train, norms, row_bias, inv2s2, log_w) -> None:
    if triton is None:
        raise ValueRangeError("layout='triton' needs the triton package (pip install triton; it ships with CUDA "
                              "builds of PyTorch); use layout='xc,wx' without it")
    if train.device.type != "cuda" and not interpreted():
        raise ValueRangeError(f"layout='triton' runs on CUDA tensors (the training set is on {train.device}); "
                              f"move the prior to a GPU, or set TRITON_INTERPRET=1 before importing "
                              f"geomem.priors.memorized_triton to run the kernels in Triton's (slow) interpreter")
    b, d = xbar.shape
    if train.ndim != 2 or train.shape[1] != d:
        raise ShapeError(f"train must be (N, {d}) to match x̄ {tuple(xbar.shape)}, got {tuple(train.shape)}")
    if xbar.dtype != torch.float32 or train.dtype not in (torch.float32, torch.float64):
        raise ValueRangeError(f"layout='triton' computes in float32 (x̄ {xbar.dtype}, train {train.dtype}); "
                              f"float64 work goes through layout='xc,wx'")
    n = train.shape[0]
    for name, t, size in (("norms", norms, n), ("row_bias", row_bias, b), ("inv2s2", inv2s2, b),
                          ("log_w", log_w, n)):
        if t is not None and (t.numel() != size or t.dtype != torch.float32):
            raise ShapeError(f"{name} must hold {size} float32 numbers, got {tuple(t.shape)} {t.dtype}")


def _set_arg(t: torch.Tensor, tma: bool, block: tuple[int, int]):
    """A matrix (the set, or the queries) as a kernel argument: the tensor (a pointer), or with ``tma`` a TMA
    descriptor of blocks ``block``."""
    if not tma:
        return t
    if t.stride(1) != 1 or (t.stride(0) * t.element_size()) % 16 or t.data_ptr() % 16:
        raise ValueRangeError(f"TMA reads need row-major matrices with 16-byte aligned rows (d = {t.shape[1]} "
                              f"{t.dtype}, strides {t.stride()}); use tma=False / sum_tma=False")
    from triton.tools.tensor_descriptor import TensorDescriptor

    return TensorDescriptor.from_tensor(t, list(block))


def logits(xbar: torch.Tensor, train: torch.Tensor, norms: torch.Tensor, row_bias: torch.Tensor,
           inv2s2: torch.Tensor, log_w: torch.Tensor | None, config: TritonConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel 1: the logits ``ℓ`` (B, N) float32 of the module docstring and their row maxima ``max_n ℓ_bn``
    (B,) (the maximum of the kernel's per-tile maxima: ``N / block_n`` numbers a row, not N), B ≤
    :data:`MAX_BATCH`."""
    bsz, d = xbar.shape
    n = train.shape[0]
    tiles = triton.cdiv(n, config.block_n)
    out = torch.empty((bsz, n), dtype=torch.float32, device=xbar.device)
    tile_max = torch.empty((tiles, bsz), dtype=torch.float32, device=xbar.device)
    bp = max(16, triton.next_power_of_2(bsz))
    _logits_kernel[(tiles,)](
        _set_arg(xbar, config.tma, (bp, config.block_k)), _set_arg(train, config.tma, (config.block_n, config.block_k)),
        norms, row_bias, inv2s2,
        norms if log_w is None else log_w, out, tile_max,
        bsz, n, xbar.stride(0), train.stride(0), train.stride(1), out.stride(0), D=d,
        BP=bp, BLOCK_N=config.block_n, BLOCK_K=config.block_k,
        HAS_LW=log_w is not None, SWAP=config.swap, PREC=config.precision, TMA=config.tma,
        num_warps=config.warps, num_stages=config.stages)
    return out, tile_max.max(0).values


def weighted_sum(logit: torch.Tensor, m: torch.Tensor, train: torch.Tensor,
                 config: TritonConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel 2 and the sums of its partials: ``a = Σ_n e^{ℓ_n − m} x_n`` (B, d) and ``t = Σ_n e^{ℓ_n − m}`` (B,),
    float32, B ≤ :data:`MAX_BATCH`."""
    bsz, n = logit.shape
    d = train.shape[1]
    rows = triton.cdiv(triton.cdiv(n, config.split), config.sum_block_n) * config.sum_block_n
    split = triton.cdiv(n, rows)
    part = torch.empty((split, bsz, d), dtype=torch.float32, device=logit.device)
    part_tot = torch.empty((split, bsz), dtype=torch.float32, device=logit.device)
    _weighted_sum_kernel[(split * triton.cdiv(d, config.sum_block_d),)](
        logit, m, _set_arg(train, config.sum_tma, (config.sum_block_n, config.sum_block_d)), part, part_tot, bsz, n,
        logit.stride(0), train.stride(0), train.stride(1), part.stride(0), part.stride(1), D=d,
        ITERS=rows // config.sum_block_n,
        BP=max(16, triton.next_power_of_2(bsz)), BLOCK_N=config.sum_block_n, BLOCK_D=config.sum_block_d,
        SWAP=config.sum_swap, PREC=config.precision, TMA=config.sum_tma, num_warps=config.sum_warps,
        num_stages=config.sum_stages)
    return part.sum(0), part_tot.sum(0)


def denoise_sums(xbar: torch.Tensor, train: torch.Tensor, norms: torch.Tensor, row_bias: torch.Tensor,
                 inv2s2: torch.Tensor, log_w: torch.Tensor | None = None,
                 config: TritonConfig | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, t)``: the weighted sum ``a`` (B, d) and the weight total ``t`` (B,) of the module docstring, float32.

    ``xbar`` (B, d) float32 centred queries; ``train`` (N, d) stored models (float32, or float64 rounded to
    float32 as they are read); ``norms`` (N,) ``‖x̄_n‖²``, ``row_bias`` (B,) ``β``, ``inv2s2`` (B,) or (B, 1)
    ``1/(2σ²)``, ``log_w`` (N,) or None, all float32 on the device of ``train``. ``D = a / t``; ``t = 0`` for a
    row means no component has weight (the caller raises). Batches above :data:`MAX_BATCH` run in slices.
    """
    config = TritonConfig() if config is None else config
    _check(xbar, train, norms, row_bias, inv2s2, log_w)
    xbar, row_bias, inv2s2 = xbar.contiguous(), row_bias.reshape(-1).contiguous(), inv2s2.reshape(-1).contiguous()
    sums, tots = [], []
    for a in range(0, xbar.shape[0], MAX_BATCH):
        logit, m = logits(xbar[a : a + MAX_BATCH], train, norms, row_bias[a : a + MAX_BATCH],
                          inv2s2[a : a + MAX_BATCH], log_w, config)
        # clamped like the cuBLAS path: a row whose logits are all −inf gets t = 0, not exp(−inf + inf)
        acc, tot = weighted_sum(logit, m.clamp_min(torch.finfo(torch.float32).min), train, config)
        sums.append(acc)
        tots.append(tot)
    return torch.cat(sums), torch.cat(tots)
