"""The exact memorized prior: the Gaussian mixture of a training set at noise level σ.

For training models ``x_1 … x_N`` (normalized coordinates, any shape, flattened to ``d`` numbers)

    p_σ(x) = Σ_n π_n N(x; x_n, σ² I)                            (π_n = 1/N by default)
    r_n(x) = softmax_n(log π_n − ‖x − x_n‖² / 2σ²)              (responsibilities)
    D(x, σ) = E[x₀ | x_σ = x] = Σ_n r_n(x) x_n                  (denoiser)
    ∇ log p_σ(x) = (D(x, σ) − x) / σ²                           (score, Tweedie)
    J_D(x) = ∂D/∂x = Cov_r[x_n] / σ² = (Σ_n r_n x_n x_nᵀ − D Dᵀ) / σ²   (symmetric)

Distances use one matrix product per chunk of the training set, on coordinates centred at the training
mean ``c`` (``x̄ = x − c``): ``‖x − x_n‖² = ‖x̄‖² − 2 x̄·x̄_n + ‖x̄_n‖²`` (clamped at 0). The mixture sums
are streamed over chunks with an online log-sum-exp (running maximum, running sum of weights, running
weighted sum of ``x̄_n``), so memory is ``O(B·chunk + B·d)``: a ``(B, N, d)`` tensor is never built.

Precision: the matrix-product distance has an absolute error of about ``ε·(‖x̄‖² + ‖x̄_n‖²)``; the
logits carry that error divided by ``2σ²``. When that bound exceeds ``1e-3`` (small σ in float32) the
distances and logits are computed in float64, which keeps weights finite, normalized and accurate down
to σ = 1e-4 for models of a few thousand unit-size entries; the weighted sums stay in the input's
precision. Results are returned in the input's dtype.

Memory: the training set is held once, as given (float32 or float64); centred chunks (and the float64 upcast
of a float32 chunk) are made on the fly, chunk by chunk, so the prior costs one copy of the set plus ``O(N)``
norms and ``O(B·chunk)`` temporaries.

CUDA denoiser (:meth:`MemorizedPrior.denoise` on a GPU, no ``top_k``). It is softmax attention: queries
``x̄/σ²``, keys and values the training models. Both matrix products run on the stored (uncentred) models,

    ‖x̄ − x̄_n‖² = ‖x̄‖² + ‖x̄_n‖² − 2 (x̄·x_n − x̄·c),      D = Σ_n r_n x_n,

with ``x̄·c`` in float64 (a per-row constant), so no centred copy is read or written; and the chunks are sized
to the GPU (``max(chunk_size, 2²⁶ / B)`` models: one pass over the set for B ≤ 64 at N = 10⁶), because at the
default 4096 the many small launches, not the two products, set the time. Measured on an H200 at N = 10⁶,
d = 4096: 89 % of the matmul floor at batch 64, 35 % at batch 16 (docs/gpu.md). The float32/float64 switch then
bounds the error with ``max_n ‖x_n‖²`` (the uncentred norms the products see) in place of ``‖x̄_n‖²``.

At batch 16 cuBLAS's two float32 products waste most of their tiles (M = 16). :mod:`geomem.priors.memorized_triton`
computes the same sums with two Triton kernels (logits tile by tile, then the weighted sum split over slabs of
the set, each reading the set once, coalesced), selected by ``_denoise_raw(..., layout="triton")`` for float32
work; it is checked against the ``"xc,wx"`` layout in Triton's CPU interpreter and by its CUDA test (passed on an
H200). Measured there at N = 10⁶, B = 16 (docs/benchmarks.md, "Session 7"): the tuned pair
``memorized_triton.H200_TF32X3`` takes 8.04 ms (64 % of the floor, each kernel at the copy bandwidth) against
14.4 ms for the cuBLAS layouts (session 6), the best exact-float32 ``ieee`` pair 15.2 ms; at B = 64 cuBLAS was
faster (session 6: 23 ms against 40 ms at best). It is not the default: it gains only with tf32x3, whose products
are less exact than the float32 ones the float32/float64 switch above is bounded for; select it with
``_denoise_raw(..., layout="triton", triton_config=H200_TF32X3)`` (Hopper: TMA reads).

Component weights. ``log_weights`` (N,) replaces the uniform ``π_n = 1/N`` by any normalized weights
(given up to a constant). With ``log π_n = log N(y; F(x_n), γ²I) + const`` the mixture is the posterior
of the σ → 0 memorized prior noised to level σ, ``p(x_σ | y) = Σ_n w_n N(x_σ; x_n, σ² I)``: its denoiser
is the exact posterior denoiser, and an ordinary sampler run on it draws the lookup posterior (see
:mod:`geomem.posterior.exact`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from geomem.errors import ShapeError, ValueRangeError
from geomem.priors.denoiser import Denoiser, sigma_row

if TYPE_CHECKING:  # the module imports triton (when installed): loaded only by layout="triton"
    from geomem.priors.memorized_triton import TritonConfig

#: largest tolerated bound on the logit error of the matrix-product distance before switching to float64
_LOGIT_TOL = 1e-3
#: smallest σ accepted: below it σ² is not a normal float64 (the logits lose all precision, then overflow)
_SIGMA_FLOOR = 1e-150
#: logits per temporary in a chunk of the CUDA denoiser (B · chunk rows), and bytes of a float64-upcast chunk
_RAW_LOGITS = 2**26
_RAW_UPCAST_BYTES = 2**31


class MemorizedPrior(Denoiser):
    """Exact Gaussian-mixture prior ``(1/N) Σ N(x; x_n, σ² I)`` of a training set.

    Parameters
    ----------
    train:
        ``(N, *model_shape)`` training models in normalized coordinates (torch tensor or NumPy array).
        Scalar models are ``(N, 1)``. float32 and float64 are kept as given; other dtypes become float32.
    chunk_size:
        number of training models per matrix product; memory per call is ``O(B·chunk_size + B·d)``.
    top_k:
        if set, :meth:`denoise` (and score, VJP) keep per sample only the ``top_k`` nearest components;
        :meth:`truncation_report` gives the bound on (and optionally the measured) error this causes.
        :meth:`log_density` and :meth:`responsibilities` always use every component.
    log_weights:
        optional ``(N,)`` component log-weights ``log π_n`` (normalized here; any finite values, or ``-inf``
        for a component with weight 0, at least one finite). Default: uniform ``1/N``.

    >>> import torch
    >>> prior = MemorizedPrior(torch.tensor([[-1.0], [1.0]]))
    >>> prior.denoise(torch.tensor([[0.9]]), 0.1)
    tensor([[1.]])
    >>> tilted = MemorizedPrior(torch.tensor([[-1.0], [1.0]]), log_weights=torch.tensor([0.0, -100.0]))
    >>> tilted.denoise(torch.tensor([[0.1]]), 1.0).round(decimals=3)
    tensor([[-1.]])
    """

    def __init__(
        self,
        train: torch.Tensor | np.ndarray,
        chunk_size: int = 4096,
        top_k: int | None = None,
        log_weights: torch.Tensor | np.ndarray | None = None,
    ):
        t = torch.as_tensor(train)
        if t.ndim < 2:
            raise ShapeError(f"train must be (N, *model_shape), got shape {tuple(t.shape)}; use (N, 1) for scalars")
        if t.shape[0] == 0:
            raise ValueRangeError("the training set is empty; pass at least one training model")
        if t.dtype not in (torch.float32, torch.float64):
            t = t.to(torch.float32)
        if not bool(torch.all(torch.isfinite(t))):
            raise ValueRangeError("the training set contains NaN or inf; clean it before building the prior")
        if int(chunk_size) < 1:
            raise ValueRangeError(f"chunk_size must be >= 1, got {chunk_size}")
        if top_k is not None and not 1 <= int(top_k) <= t.shape[0]:
            raise ValueRangeError(f"top_k must be in [1, N={t.shape[0]}], got {top_k}")
        self.model_shape = tuple(t.shape[1:])
        self.n_train = int(t.shape[0])
        self.log_weights = _normalized_log_weights(log_weights, self.n_train)
        self.dim = int(np.prod(self.model_shape))
        self.chunk_size = int(chunk_size)
        self.top_k = None if top_k is None else int(top_k)
        flat = t.reshape(self.n_train, self.dim)
        self._dtype = flat.dtype
        center = flat.sum(0, dtype=torch.float64) / self.n_train
        self._stats: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}
        self._store(flat, center)

    # ------------------------------------------------------------------ storage
    def _store(self, flat: torch.Tensor, center64: torch.Tensor) -> None:
        self._center64 = center64
        self._flat = flat  # the one copy of the training set
        self._stats.clear()
        self._norm_max: dict[torch.dtype, float] = {}
        self._raw_norm_max: float | None = None

    def _norms_center(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Squared norms ``‖x̄_n‖²`` (N,) of the centred models and the centre ``c`` (d,), in ``dtype`` (cached).

        The norms are summed in float64 over the centred models rounded to ``dtype`` (chunk by chunk)."""
        if dtype not in self._stats:
            center = self._center64.to(dtype)
            norms = torch.empty(self.n_train, dtype=dtype, device=self.device)
            for start in range(0, self.n_train, self.chunk_size):
                c = self._centred(start, start + self.chunk_size, dtype, center)
                norms[start : start + c.shape[0]] = (c * c).sum(1, dtype=torch.float64).to(dtype)
            self._stats[dtype] = (norms, center)
        return self._stats[dtype]

    def _max_norm(self, dtype: torch.dtype) -> float:
        """``max_n ‖x̄_n‖²`` of :meth:`_norms_center` as a Python float (cached: one host read per dtype)."""
        if dtype not in self._norm_max:
            self._norm_max[dtype] = float(self._norms_center(dtype)[0].max())
        return self._norm_max[dtype]

    def _centred(self, start: int, stop: int, dtype: torch.dtype, center: torch.Tensor | None = None) -> torch.Tensor:
        """Centred models ``x̄_n = x_n − c`` for ``start ≤ n < stop`` in ``dtype`` (a new chunk-sized tensor)."""
        center = self._norms_center(dtype)[1] if center is None else center
        return self._flat[start:stop].to(dtype) - center

    def _raw_norm_bound(self) -> float:
        """``max_n max(‖x_n‖², ‖x̄_n‖²)`` in float64 (the float32/float64 switch of the CUDA denoiser)."""
        if self._raw_norm_max is None:
            raw = max(float((self._flat[a : a + self.chunk_size].double() ** 2).sum(1).max())
                      for a in range(0, self.n_train, self.chunk_size))
            self._raw_norm_max = max(raw, float(self._norms_center(torch.float64)[0].max()))
        return self._raw_norm_max

    @property
    def train(self) -> torch.Tensor:
        """The training models ``(N, *model_shape)``."""
        return self._flat.reshape(self.n_train, *self.model_shape)

    @property
    def device(self) -> torch.device:
        return self._flat.device

    def to(self, device: torch.device | str) -> MemorizedPrior:
        """Move the training set (and the component weights) to ``device`` (in place); returns ``self``."""
        if self.log_weights is not None:  # read by every call on the device: no host copy per call
            self.log_weights = self.log_weights.to(device)
        self._store(self._flat.to(device), self._center64.to(device))
        return self

    # ------------------------------------------------------------------ core streaming pass
    def _prepare(self, x: torch.Tensor, sigma: float | torch.Tensor, raw: bool = False):
        """Check input; return flattened centred x in the working dtype, σ as (B,), and the working dtype.

        ``raw``: the products will use the stored uncentred models (CUDA denoiser): bound with their norms.
        :meth:`_prepare_certain` also says whether the weights are proven nonzero."""
        return self._prepare_certain(x, sigma, raw)[:3]

    def _prepare_certain(self, x: torch.Tensor, sigma: float | torch.Tensor, raw: bool = False):
        """:meth:`_prepare` and a fourth value: whether :meth:`_weights_certain` proves, from host numbers, that
        every sample keeps a component of nonzero weight (then the device check of the sums is not needed).

        Host reads of the device (each a GPU synchronization): one, ``max_b ‖x̄_b‖²``, which the float32/float64
        switch needs; it also checks that x is finite (a NaN or inf in x makes it non-finite, and then
        :meth:`check_input` names the cause). σ given as a number is checked on the host (:func:`sigma_row`);
        a σ tensor costs one more read."""
        if x.device != self.device:
            raise ShapeError(f"x is on {x.device} but the prior is on {self.device}; call prior.to(x.device)")
        self.check_shape(x)
        s, s_min = sigma_row(sigma, x)
        xf = x.reshape(x.shape[0], self.dim)
        work = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        norms, center = self._norms_center(work)
        xbar = xf.to(work) - center
        if s_min < _SIGMA_FLOOR:  # (below: divide by s_min twice; s_min² overflows a Python float for σ > ~1e154)
            raise ValueRangeError(f"sigma = {s_min:.3g} is below {_SIGMA_FLOOR:g}: σ² underflows float64, so the "
                                  f"mixture weights cannot be computed; use a larger sigma (at σ ≤ 1e-100 the "
                                  f"denoiser is the nearest training model to float precision)")
        x_sq = float((xbar.detach().to(torch.float64) ** 2).sum(1).max())
        if not math.isfinite(x_sq):
            self.check_input(x)  # NaN or inf in x
            raise ValueRangeError(f"x is too large: its squared distance to the training mean overflows float64 "
                                  f"(largest |entry| {float(xf.detach().abs().max()):.3g}); a prior takes normalized "
                                  f"coordinates (order 1, plus σ times unit noise)")
        train_norm = self._raw_norm_bound() if raw else self._max_norm(work)
        bound = torch.finfo(work).eps * (x_sq + train_norm) / (2.0 * s_min) / s_min
        if work != torch.float64 and bound > _LOGIT_TOL:
            work = torch.float64
            xbar = xf.to(work) - self._norms_center(work)[1]
        return xbar, s.to(work), work, self._weights_certain(x_sq, train_norm, s_min, work)

    @staticmethod
    def _weights_certain(x_sq: float, train_norm: float, s_min: float, work: torch.dtype) -> bool:
        """Whether every sample provably keeps a component of nonzero weight (no 0/0 in the denoiser), from
        ``x_sq = max_b ‖x̄_b‖²``, ``train_norm ≥ max_n ‖x_n‖², ‖x̄_n‖²`` (either norm the products use; also
        ``≥ ‖c‖²``) and the smallest σ.

        Every squared distance the products form is at most ``3 (x_sq + train_norm)`` in magnitude (Cauchy–Schwarz
        on each of its terms). If ``2σ²`` is a normal number of ``work`` and ``8 (x_sq + train_norm) / 2σ²`` is
        below an eighth of its largest value, the logit of the component of largest weight (``log π ≥ −log N``) is
        finite, so the running maximum is finite and that component contributes ``e⁰ = 1`` to the sum of weights.
        Otherwise the caller checks the sums on the device (:func:`_check_some_weight`)."""
        info = torch.finfo(work)
        if not s_min >= 2.0 * math.sqrt(info.tiny):
            return False
        return 8.0 * (x_sq + train_norm) / (2.0 * s_min) / s_min < info.max / 8.0

    def _chunks(self, work: torch.dtype):
        """``(start, centred chunk, squared norms, log π of the chunk or None)`` per chunk of the training set."""
        norms, center = self._norms_center(work)
        lw = None if self.log_weights is None else self.log_weights.to(device=self.device, dtype=work)
        for start in range(0, self.n_train, self.chunk_size):
            stop = start + self.chunk_size
            chunk = self._centred(start, stop, work, center)
            yield start, chunk, norms[start:stop], None if lw is None else lw[start:stop]

    @staticmethod
    def _logits(xbar, xnorm, chunk, cnorm, s, log_w=None):
        """``log π_n − ‖x − x_n‖² / 2σ²`` for one chunk, shape (B, C), distances clamped at 0.

        With uniform weights the constant ``−log N`` is left out (it cancels in every softmax).
        """
        d2 = torch.clamp(torch.addmm(xnorm[:, None] + cnorm[None, :], xbar, chunk.T, alpha=-2.0), min=0.0)
        logits = -d2 / (2.0 * s[:, None] ** 2)
        return logits if log_w is None else logits + log_w[None, :]

    def _stream(self, xbar: torch.Tensor, s: torch.Tensor, work: torch.dtype, out: torch.dtype):
        """Online log-sum-exp over chunks: returns (max logit m, Σ e^{ℓ−m}, Σ e^{ℓ−m} x̄_n), all (B,)/(B, d).

        Logits are in ``work`` precision, the weighted sum of models in ``out`` precision (the input's):
        only the distances need float64 at small σ. No in-place updates, so autograd can differentiate it.
        """
        xnorm = (xbar**2).sum(1)
        m = torch.full((xbar.shape[0],), -math.inf, dtype=work, device=xbar.device)
        tot = torch.zeros_like(m)
        acc = torch.zeros(xbar.shape, dtype=out, device=xbar.device)
        for start, chunk, cnorm, lw in self._chunks(work):
            logits = self._logits(xbar, xnorm, chunk, cnorm, s, lw)
            # clamped: a chunk whose components all have weight 0 (logits −inf) must not give exp(−inf + inf)
            m_new = torch.maximum(m, logits.max(1).values).clamp_min(torch.finfo(work).min)
            scale = torch.exp(m - m_new)
            w = torch.exp(logits - m_new[:, None])
            tot = tot * scale + w.sum(1)
            chunk_out = chunk if out == work else self._centred(start, start + chunk.shape[0], out)
            acc = acc * scale[:, None].to(out) + w.to(out) @ chunk_out
            m = m_new
        return m, tot, acc

    def _topk(self, xbar: torch.Tensor, s: torch.Tensor, work: torch.dtype):
        """Indices and logits of the ``top_k`` nearest components per sample, merged chunk by chunk."""
        k = self.top_k
        xnorm = (xbar**2).sum(1)
        best_l = best_i = None
        for start, chunk, cnorm, lw in self._chunks(work):
            logits = self._logits(xbar, xnorm, chunk, cnorm, s, lw)
            idx = torch.arange(start, start + chunk.shape[0], device=xbar.device).expand_as(logits)
            if best_l is not None:
                logits = torch.cat([best_l, logits], 1)
                idx = torch.cat([best_i, idx], 1)
            kk = min(k, logits.shape[1])
            best_l, pos = torch.topk(logits, kk, dim=1)
            best_i = torch.gather(idx, 1, pos)
        return best_i, best_l

    # ------------------------------------------------------------------ public API
    def _denoise_flat(self, xbar: torch.Tensor, s: torch.Tensor, work: torch.dtype, out: torch.dtype,
                      certain: bool = False):
        """Centred denoiser ``D̄`` (B, d) in ``out`` precision and the state the VJP needs. ``certain``: the
        weights are proven nonzero (:meth:`_weights_certain`), so the device check (a host read) is skipped."""
        if self.top_k is not None:
            idx, logits = self._topk(xbar, s, work)
            if not certain:
                _check_some_weight(torch.isfinite(logits[:, 0]))
            r = torch.softmax(logits, 1).to(out)
            comp = self._flat[idx].to(out) - self._norms_center(out)[1]
            return torch.einsum("bk,bkd->bd", r, comp), (idx, r)
        m, tot, acc = self._stream(xbar, s, work, out)
        if not certain:
            _check_some_weight(tot > 0)
        return acc / tot[:, None].to(out), (m, tot)

    @staticmethod
    def _out_dtype(x: torch.Tensor) -> torch.dtype:
        return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32

    def denoise(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """``D(x, σ) = Σ_n r_n(x) x_n`` with the shape and dtype of ``x`` (on CUDA: the module docstring's path)."""
        out = self._out_dtype(x)
        if self.top_k is None and self.device.type == "cuda":
            xbar, s, work, certain = self._prepare_certain(x, sigma, raw=True)
            return self._denoise_raw(xbar, s, work, out, certain=certain).to(x.dtype).reshape(x.shape)
        xbar, s, work, certain = self._prepare_certain(x, sigma)
        dbar, _ = self._denoise_flat(xbar, s, work, out, certain)
        return (dbar + self._norms_center(out)[1]).to(x.dtype).reshape(x.shape)

    def raw_chunk_rows(self, batch: int, work: torch.dtype) -> int:
        """Models per chunk of :meth:`_denoise_raw`: ``max(chunk_size, 2²⁶ / B)`` (``B·chunk`` logits per
        temporary), and at most 2 GiB per chunk when the chunk is upcast to float64."""
        rows = max(self.chunk_size, _RAW_LOGITS // max(1, batch))
        if work != self._flat.dtype:
            rows = min(rows, max(self.chunk_size, _RAW_UPCAST_BYTES // (self.dim * torch.finfo(work).bits // 8)))
        return min(rows, self.n_train)

    def _denoise_raw(self, xbar: torch.Tensor, s: torch.Tensor, work: torch.dtype, out: torch.dtype,
                     layout: str = "xc,wx", triton_config: TritonConfig | None = None,
                     certain: bool = False) -> torch.Tensor:
        """``D = Σ_n r_n x_n`` (B, d) from products with the stored models (module docstring), online
        log-sum-exp over chunks of :meth:`raw_chunk_rows` models.

        ``layout`` picks how the two products are laid out for the BLAS (same numbers up to summation order):
        distances ``"xc"`` = ``x̄ Xᵀ`` or ``"cx"`` = ``(X x̄ᵀ)ᵀ``; weighted sum ``"wx"`` = ``W X`` or
        ``"xw"`` = ``(Xᵀ Wᵀ)ᵀ``. ``"sdpa"``: one call of ``scaled_dot_product_attention`` over the whole set
        (queries ``x̄/σ²``, keys = values = ``X``, the float bias ``log π_n − ‖x̄_n‖²/2σ²`` as its mask), only
        when one chunk holds the whole set in the stored dtype. Measured on an H200 (docs/gpu.md): ``"xc,wx"``
        (the default) is the fastest or within 3 % of it at N = 10⁶; ``"sdpa"`` is ~100× slower at N = 10⁵ and
        fails at N = 10⁶ (a stride overflow inside PyTorch); it is kept for that comparison. ``"triton"``: the
        two Triton kernels of :mod:`geomem.priors.memorized_triton` over the whole set (float32 work only, CUDA
        tensors or Triton's interpreter; ``triton_config`` a ``TritonConfig``, default its defaults); not the
        default, its H200 speed is not measured yet. ``certain``: as in :meth:`_denoise_flat` (the cuBLAS layouts).
        """
        norms, center = self._norms_center(work)
        lw_all = None if self.log_weights is None else self.log_weights.to(device=self.device, dtype=work)
        rows = self.raw_chunk_rows(xbar.shape[0], work)
        inv2s2 = 1.0 / (2.0 * s[:, None] ** 2)
        if layout == "sdpa":
            if rows < self.n_train or work != self._flat.dtype:
                raise ValueRangeError("the sdpa layout needs the whole set in one chunk in the stored dtype")
            bias = -norms[None, :] * inv2s2
            if lw_all is not None:
                bias = bias + lw_all[None, :]
            q = (xbar / s[:, None] ** 2).to(self._flat.dtype)
            dense = torch.nn.functional.scaled_dot_product_attention(
                q[None, None], self._flat[None, None], self._flat[None, None], attn_mask=bias[None, None].to(q.dtype),
                scale=1.0)
            return dense[0, 0].to(out)
        row_bias = (xbar**2).sum(1) + 2.0 * (xbar.double() @ self._center64.to(xbar.device)).to(work)
        if layout == "triton":
            if work != torch.float32:
                raise ValueRangeError(f"layout='triton' computes in float32, but this call's distances need {work} "
                                      f"(small σ, or float64 input); use layout='xc,wx'")
            from geomem.priors.memorized_triton import denoise_sums

            acc, tot = denoise_sums(xbar, self._flat, norms, row_bias, inv2s2, lw_all, triton_config)
            _check_some_weight(tot > 0)
            return (acc / tot[:, None]).to(out)
        lgemm, wgemm = layout.split(",")
        m = torch.full((xbar.shape[0],), -math.inf, dtype=work, device=xbar.device)
        tot = torch.zeros_like(m)
        acc = torch.zeros(xbar.shape, dtype=out, device=xbar.device)
        for start in range(0, self.n_train, rows):
            raw = self._flat[start : start + rows]
            chunk = raw.to(work)
            cn = norms[start : start + raw.shape[0]]
            dots = xbar @ chunk.T if lgemm == "xc" else (chunk @ xbar.T).T
            d2 = torch.clamp(row_bias[:, None] + cn[None, :] - 2.0 * dots, min=0.0)
            logits = -d2 * inv2s2
            if lw_all is not None:
                logits = logits + lw_all[None, start : start + raw.shape[0]]
            m_new = torch.maximum(m, logits.max(1).values).clamp_min(torch.finfo(work).min)
            scale = torch.exp(m - m_new)
            w = torch.exp(logits - m_new[:, None])
            tot = tot * scale + w.sum(1)
            vals = raw.to(out)
            wo = w.to(out)
            acc = acc * scale[:, None].to(out) + (wo @ vals if wgemm == "wx" else (vals.T @ wo.T).T)
            m = m_new
        if not certain:
            _check_some_weight(tot > 0)
        return acc / tot[:, None].to(out)

    def log_density(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """``log p_σ(x) = logsumexp_n(log π_n − ‖x − x_n‖²/2σ²) − (d/2) log(2πσ²)``, shape (B,).

        Differentiable with autograd; uses every component (``top_k`` is ignored).
        """
        xbar, s, work = self._prepare(x, sigma)
        xnorm = (xbar**2).sum(1)
        parts = [torch.logsumexp(self._logits(xbar, xnorm, c, cn, s, lw), 1) for _, c, cn, lw in self._chunks(work)]
        lse = torch.logsumexp(torch.stack(parts, 1), 1)
        if self.log_weights is None:
            lse = lse - math.log(self.n_train)
        # d·log σ rather than log σ²: σ² overflows float32 for σ > ~1.8e19
        out = lse - self.dim * (0.5 * math.log(2.0 * math.pi) + torch.log(s))
        return out.to(x.dtype)

    def responsibilities(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """``r_n(x)``, shape (B, N): memory ``B·N`` numbers (fine for moderate N), never ``B·N·d``."""
        xbar, s, work = self._prepare(x, sigma)
        xnorm = (xbar**2).sum(1)
        logits = torch.cat([self._logits(xbar, xnorm, c, cn, s, lw) for _, c, cn, lw in self._chunks(work)], 1)
        _check_some_weight(torch.isfinite(logits.max(1).values))
        return torch.softmax(logits, 1).to(x.dtype)

    def sample(
        self, n: int, sigma: float, generator: torch.Generator | int | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """``n`` exact samples of ``p_σ``: a training model drawn with probability ``π_n``, plus ``σ ε``."""
        if int(n) < 1:
            raise ValueRangeError(f"n must be >= 1, got {n}")
        if not (math.isfinite(float(sigma)) and float(sigma) > 0):
            raise ValueRangeError(f"sigma must be finite and > 0, got {sigma}")
        if generator is None or isinstance(generator, int):
            generator = torch.Generator(device=self.device).manual_seed(0 if generator is None else generator)
        if self.log_weights is None:
            idx = torch.randint(self.n_train, (int(n),), generator=generator, device=self.device)
        else:
            probs = torch.exp(self.log_weights).to(self.device)
            idx = torch.multinomial(probs, int(n), replacement=True, generator=generator)
        dtype = dtype or self._dtype
        eps = torch.randn((int(n), self.dim), generator=generator, device=self.device, dtype=dtype)
        return (self._flat[idx].to(dtype) + float(sigma) * eps).reshape(int(n), *self.model_shape)

    def denoise_and_vjp(
        self, x: torch.Tensor, sigma: float | torch.Tensor, cotangent_fn: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(D, J_Dᵀ g)`` with ``g = cotangent_fn(D)`` and the analytic symmetric Jacobian

            J_Dᵀ g = (Σ_n r_n x̄_n (x̄_n·g) − D̄ (D̄·g)) / σ²      (x̄ centred at the training mean).

        Two streaming passes (the second needs ``g``, which depends on ``D``); with ``top_k`` the sums run
        over the kept components only. The two terms cancel when the responsibilities concentrate, and the
        rounding error of each is amplified by 1/σ², so these sums use the distance precision (float64
        whenever the float32 distance bound triggers, see the module docstring).
        """
        xbar, s, work, certain = self._prepare_certain(x, sigma)
        # the two second-moment terms cancel to O(σ² · spread): keep them in the distance precision
        out = work
        center = self._norms_center(out)[1]
        dbar, state = self._denoise_flat(xbar, s, work, out, certain)
        d = (dbar + center).to(x.dtype).reshape(x.shape)
        g = cotangent_fn(d.detach())
        if tuple(g.shape) != tuple(x.shape):
            raise ShapeError(f"cotangent_fn must return shape {tuple(x.shape)}, got {tuple(g.shape)}")
        gf = g.reshape(x.shape[0], self.dim).to(out)
        if self.top_k is not None:
            idx, r = state
            comp = self._flat[idx].to(out) - center
            second = torch.einsum("bk,bk,bkd->bd", r, torch.einsum("bkd,bd->bk", comp, gf), comp)
        else:
            m, tot = state
            xnorm = (xbar**2).sum(1)
            second = torch.zeros(xbar.shape, dtype=out, device=xbar.device)
            for start, chunk, cnorm, lw in self._chunks(work):
                r = (torch.exp(self._logits(xbar, xnorm, chunk, cnorm, s, lw) - m[:, None]) / tot[:, None]).to(out)
                chunk_out = chunk if out == work else self._centred(start, start + chunk.shape[0], out)
                second = second + (r * (gf @ chunk_out.T)) @ chunk_out
        vjp = (second - dbar * (dbar * gf).sum(1, keepdim=True)) / s[:, None].to(out) ** 2
        return d, vjp.to(x.dtype).reshape(x.shape)

    def truncation_report(self, x: torch.Tensor, sigma: float | torch.Tensor, measure: bool = False) -> dict:
        """Error of the ``top_k`` truncation at ``x``.

        ``mass_bound`` (B,): an upper bound on the discarded responsibility mass,
        ``(N − k) exp(ℓ_(k) − m) / Σ_kept exp(ℓ − m)`` (every discarded logit is ≤ the k-th kept one
        ``ℓ_(k)``). The denoiser error is at most ``2 · mass · max_n ‖x_n − D‖``. With ``measure=True``
        also ``measured`` (B,): ``‖D_top_k − D_exact‖`` from a full pass.
        """
        if self.top_k is None:
            raise ValueRangeError("this prior has no top_k truncation; build it with top_k=k to get a report")
        xbar, s, work = self._prepare(x, sigma)
        _, logits = self._topk(xbar, s, work)
        m = logits[:, 0]
        kept = torch.exp(logits - m[:, None]).sum(1)
        # a discarded component's logit is at most the k-th kept one (log π included in the logits)
        bound = (self.n_train - self.top_k) * torch.exp(logits[:, -1] - m) / kept
        out = {"mass_bound": bound.clamp(max=1.0).to(x.dtype)}
        if measure:
            exact = MemorizedPrior.__new__(MemorizedPrior)
            exact.__dict__.update(self.__dict__)
            exact.top_k = None
            diff = (self.denoise(x, sigma) - exact.denoise(x, sigma)).reshape(x.shape[0], -1)
            out["measured"] = torch.linalg.vector_norm(diff, dim=1)
        return out


def _check_some_weight(ok: torch.Tensor) -> None:
    """Raise unless every sample has a component of nonzero weight (``ok`` (B,) bool): when ``‖x − x_n‖²/2σ²``
    overflows for all n the responsibilities would be 0/0. One device sync; no other cost."""
    if not bool(ok.all()):
        raise ValueRangeError("sigma is too small for x this far from every training model: ‖x − x_n‖² / 2σ² "
                              "overflows for all n; use a larger sigma or an x closer to the training set")


def _normalized_log_weights(log_weights, n: int) -> torch.Tensor | None:
    """``log π`` (N,) in float64, normalized to log-sum-exp 0; ``None`` stays ``None`` (uniform)."""
    if log_weights is None:
        return None
    lw = torch.as_tensor(log_weights, dtype=torch.float64).reshape(-1)
    if lw.shape[0] != n:
        raise ShapeError(f"log_weights must have one entry per training model ({n}), got {lw.shape[0]}")
    if bool(torch.any(torch.isnan(lw))) or bool(torch.any(lw == math.inf)) or not bool(torch.any(torch.isfinite(lw))):
        raise ValueRangeError("log_weights must be finite or -inf, with at least one finite entry")
    return lw - torch.logsumexp(lw, 0)
