"""Nearest-neighbour memorization metrics, always reported beside their null baselines.

For a set of models ``s_1..s_B`` (posterior or prior samples) and a training set ``x_1..x_N``, all
flattened to vectors (normalized coordinates, any shape ``(B, ...)``/``(N, ...)``):

    d_j(s)  = j-th smallest Euclidean distance ‖s − x_n‖ over n           (d_1 ≤ d_2 ≤ ...)
    ratio_12(s) = d_1 / d_2                       memorized if ratio_12 < 1/3
    ratio_k(s)  = d_1 / mean(d_2, ..., d_k)       memorized if ratio_k < τ, τ ∈ {0.5, 0.7}, k = min(50, N)

A ratio with a zero denominator (``d_1 = d_2 = 0``: an exact copy of a duplicated training model) is
defined as 0 (memorized).

**Null baselines.** A ratio rate means nothing without the rate a perfectly generalizing model would
get. At small N, fresh models of the same family are often "memorized" by these criteria, so every rate
is shown beside (a) held-out models of the same family against the training set and (b) leave-one-out
within the training set (each training model against the other N − 1, so there k = min(50, N − 1)).
:class:`MemorizationReport` refuses to exist without at least one null.

**Bootstrap.** Rates carry percentile-bootstrap intervals: resampling the B flags with replacement
makes the resampled count exactly ``Binomial(B, p̂)``, so the bootstrap replicates are drawn that way.

Distances use ``‖a − b‖² = ‖a‖² − 2 a·b + ‖b‖²`` in blocks (memory ``O(block_B · chunk_size)``, never a
``(B, N, d)`` tensor) with a running top-k merge. The expanded form loses accuracy when ``d²`` is tiny
against ``‖a‖² + ‖b‖²``; every winner whose relative error could exceed 1e-9 is recomputed directly as
``‖a − b‖`` in float64, so an exact copy has ``d_1 = 0`` exactly. CUDA tensors are processed on the GPU
(ranked in their own precision; in float32 every winner is recomputed in float64), everything else on
the CPU in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from geomem.errors import ShapeError, ValueRangeError

#: elements of scratch memory (float64) a distance tile or a refinement block may use
_SCRATCH = 2**23
#: relative error in a distance above which it is recomputed directly instead of from the expanded form
_REL_TOL = 1e-9


@dataclass(frozen=True)
class Criterion:
    """A memorization rule: flag a sample when ``ratios.<statistic> < threshold``."""

    name: str
    statistic: str  # "ratio_12" or "ratio_k"
    threshold: float

    def __post_init__(self):
        if self.statistic not in ("ratio_12", "ratio_k"):
            raise ValueRangeError(f"criterion statistic must be 'ratio_12' or 'ratio_k', got {self.statistic!r}")

    def flags(self, ratios: MemorizationRatios) -> np.ndarray:
        return getattr(ratios, self.statistic) < self.threshold


#: the criterion of geomem's tables and figures: memorized if ``d1/mean(d2..dk) < 0.5``
PRIMARY_CRITERION = Criterion("d1/mean(d2..dk) < 0.5", "ratio_k", 0.5)
#: the conventions used in the literature: ``d1/d2 < 1/3``; ``d1/mean(d2..dk) < 0.5`` and ``< 0.7``
DEFAULT_CRITERIA: tuple[Criterion, ...] = (
    Criterion("d1/d2 < 1/3", "ratio_12", 1.0 / 3.0),
    PRIMARY_CRITERION,
    Criterion("d1/mean(d2..dk) < 0.7", "ratio_k", 0.7),
)


def _as_2d_tensor(x: Any, name: str) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(x))
    if t.ndim < 1 or t.shape[0] == 0:
        raise ShapeError(f"{name} must be a non-empty batch (B, ...), got shape {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.uint8, torch.bool)):
        raise ShapeError(f"{name} must hold real numbers, got dtype {t.dtype}")
    t = t.reshape(t.shape[0], -1)
    if not bool(torch.isfinite(t.to(torch.float64) if not t.is_floating_point() else t).all()):
        raise ValueRangeError(f"{name} contains NaN or inf; remove or repair those models first")
    return t


def nearest_neighbours(
    samples: Any,
    train: Any,
    k: int = 1,
    chunk_size: int = 4096,
    exclude_self: bool = False,
    as_numpy: bool = True,
) -> tuple[Any, Any]:
    """The ``k`` nearest training models of every sample: ``(distances (B, k), indices (B, k))``.

    ``samples`` ``(B, ...)`` and ``train`` ``(N, ...)`` are NumPy arrays or torch tensors with the same
    per-model shape; distances are Euclidean on the flattened models, ascending along axis 1.
    ``exclude_self=True`` is leave-one-out: ``samples`` must be ``train`` itself (B = N) and sample i
    never matches training model i. The training set is scanned in chunks of ``chunk_size`` models.
    Returns float64/int64 NumPy arrays, or torch tensors on the compute device if ``as_numpy=False``.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueRangeError(f"k must be a positive integer, got {k!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueRangeError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    a = _as_2d_tensor(samples, "samples")
    b = _as_2d_tensor(train, "train")
    if a.shape[1] != b.shape[1]:
        raise ShapeError(
            f"samples have {a.shape[1]} values per model but training models have {b.shape[1]}; "
            "pass models of the same shape"
        )
    n_pool = b.shape[0] - (1 if exclude_self else 0)
    if exclude_self and a.shape[0] != b.shape[0]:
        raise ShapeError(f"exclude_self=True needs samples to be the training set (B = N), got B={a.shape[0]}, "
                         f"N={b.shape[0]}")
    if k > n_pool:
        raise ValueRangeError(f"k={k} exceeds the {n_pool} training models available; lower k")

    device = a.device if a.is_cuda else b.device
    if device.type == "cuda" and a.dtype == torch.float32 and b.dtype == torch.float32:
        rank_dtype = torch.float32
    else:
        rank_dtype = torch.float64
    a = a.to(device=device, dtype=rank_dtype)
    b = b.to(device=device, dtype=rank_dtype)
    n_b, dim = a.shape[0], a.shape[1]
    b_sq = (b * b).sum(dim=1)

    # samples per block: the (block, chunk) distance tile stays within the scratch budget
    block = max(1, min(n_b, chunk_size, _SCRATCH // chunk_size))
    out_d = torch.empty(n_b, k, dtype=torch.float64, device=device)
    out_i = torch.empty(n_b, k, dtype=torch.int64, device=device)
    eps = torch.finfo(rank_dtype).eps
    for s0 in range(0, n_b, block):
        s1 = min(n_b, s0 + block)
        ab = a[s0:s1]
        a_sq = (ab * ab).sum(dim=1, keepdim=True)
        best_d = torch.full((s1 - s0, k), float("inf"), dtype=rank_dtype, device=device)
        best_i = torch.full((s1 - s0, k), -1, dtype=torch.int64, device=device)
        for t0 in range(0, b.shape[0], chunk_size):
            t1 = min(b.shape[0], t0 + chunk_size)
            d2 = (a_sq - 2.0 * ab @ b[t0:t1].T + b_sq[t0:t1]).clamp_min_(0.0)
            idx = torch.arange(t0, t1, device=device).expand(s1 - s0, -1)
            if exclude_self:
                rows = torch.arange(s0, s1, device=device)
                hit = (rows >= t0) & (rows < t1)
                d2[hit.nonzero().squeeze(1), rows[hit] - t0] = float("inf")
            cand_d = torch.cat([best_d, d2], dim=1)
            cand_i = torch.cat([best_i, idx], dim=1)
            best_d, pos = torch.topk(cand_d, k, dim=1, largest=False, sorted=False)
            best_i = torch.gather(cand_i, 1, pos)
        # The expanded form has absolute error ~ eps·(‖a‖² + ‖b‖²) in d². Where that could exceed a relative
        # error of _REL_TOL in d, recompute ‖a − b‖ directly in float64 (exact copies get d = 0 exactly).
        dist = best_d.to(torch.float64)
        scale = (a_sq + b_sq[best_i]).to(torch.float64)
        rows, cols = torch.nonzero(dist <= eps * scale / (2.0 * _REL_TOL), as_tuple=True)
        step = max(1, _SCRATCH // dim)
        for p0 in range(0, rows.numel(), step):
            r, c = rows[p0:p0 + step], cols[p0:p0 + step]
            diff = ab[r].to(torch.float64) - b[best_i[r, c]].to(torch.float64)
            dist[r, c] = (diff * diff).sum(dim=1)
        dist = dist.sqrt_()
        order = torch.argsort(dist, dim=1, stable=True)
        out_d[s0:s1] = torch.gather(dist, 1, order)
        out_i[s0:s1] = torch.gather(best_i, 1, order)
    if as_numpy:
        return out_d.cpu().numpy(), out_i.cpu().numpy()
    return out_d, out_i


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with ``0/0 := 0`` (``num ≤ den`` always holds here)."""
    out = np.zeros_like(num, dtype=np.float64)
    pos = den > 0
    out[pos] = num[pos] / den[pos]
    return out


@dataclass(frozen=True)
class MemorizationRatios:
    """Per-sample nearest-neighbour distances and both ratios (float64 arrays of length B)."""

    d1: np.ndarray
    d2: np.ndarray
    dk_mean: np.ndarray  # mean(d_2, ..., d_k)
    ratio_12: np.ndarray  # d1 / d2
    ratio_k: np.ndarray  # d1 / mean(d2..dk)
    nearest: np.ndarray  # int64 index of the nearest training model
    k: int
    n_train: int

    def __len__(self) -> int:
        return int(self.d1.shape[0])

    def to_dict(self) -> dict[str, Any]:
        return {"d1": self.d1, "d2": self.d2, "dk_mean": self.dk_mean, "ratio_12": self.ratio_12,
                "ratio_k": self.ratio_k, "nearest": self.nearest, "k": self.k, "n_train": self.n_train}

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Arrays for an ``.npz``, keys ``<prefix>__<field>``."""
        return {f"{prefix}__{k}": np.asarray(v) for k, v in self.to_dict().items()}

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str) -> MemorizationRatios:
        """Inverse of :meth:`to_arrays`."""
        head = prefix + "__"
        fields = {k[len(head):]: v for k, v in arrays.items() if k.startswith(head) and "__" not in k[len(head):]}
        return cls(**{k: (int(v) if k in ("k", "n_train") else v) for k, v in fields.items()})


def memorization_ratios(
    samples: Any, train: Any, k: int | None = None, exclude_self: bool = False, chunk_size: int = 4096
) -> MemorizationRatios:
    """Nearest-neighbour distances and ratios of every sample against the training set.

    ``k`` defaults to ``min(50, P)`` with P the size of the pool searched (N, or N − 1 with
    ``exclude_self``); it must satisfy ``2 ≤ k ≤ P``.
    """
    n_train = int(np.shape(train)[0]) if not isinstance(train, torch.Tensor) else int(train.shape[0])
    pool = n_train - (1 if exclude_self else 0)
    if k is None:
        k = min(50, pool)
    if k < 2:
        raise ValueRangeError(
            f"ratios need at least 2 neighbours but only {pool} training models are searchable; use N >= "
            f"{3 if exclude_self else 2}"
        )
    dist, idx = nearest_neighbours(samples, train, k=k, chunk_size=chunk_size, exclude_self=exclude_self)
    d1, d2 = dist[:, 0], dist[:, 1]
    dk_mean = dist[:, 1:].mean(axis=1)
    return MemorizationRatios(
        d1=d1, d2=d2, dk_mean=dk_mean, ratio_12=_safe_ratio(d1, d2), ratio_k=_safe_ratio(d1, dk_mean),
        nearest=idx[:, 0].astype(np.int64), k=int(k), n_train=n_train,
    )


@dataclass(frozen=True)
class RateInterval:
    """A rate ``p̂ = (#flagged)/n`` with its percentile-bootstrap interval ``[low, high]``."""

    rate: float
    low: float
    high: float
    n: int
    level: float
    n_boot: int

    def __str__(self) -> str:
        return f"{self.rate:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def to_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "low": self.low, "high": self.high, "n": self.n, "level": self.level,
                "n_boot": self.n_boot}


def bootstrap_rate(
    flags: Any, n_boot: int = 2000, level: float = 0.95, rng: np.random.Generator | int | None = None
) -> RateInterval:
    """Rate of ``True`` in ``flags`` (length n) with a percentile-bootstrap interval at ``level``.

    A bootstrap replicate is the mean of n flags drawn with replacement; its count of ones is exactly
    ``Binomial(n, p̂)``, so replicates are drawn as ``Binomial(n, p̂) / n``. The interval is the
    ``(1 − level)/2`` and ``(1 + level)/2`` quantiles of the replicates. It collapses to a point when
    p̂ is 0 or 1 (a known limit of the percentile bootstrap; read such rates with their n).
    """
    f = np.asarray(flags)
    if f.ndim != 1 or f.size == 0:
        raise ShapeError(f"flags must be a non-empty 1-D array, got shape {f.shape}")
    if f.dtype != bool:
        if not np.all(np.isin(f, (0, 1))):
            raise ValueRangeError("flags must be booleans (or 0/1)")
        f = f.astype(bool)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueRangeError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise ValueRangeError(f"level must be in (0, 1), got {level}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = int(f.size)
    p_hat = float(f.mean())
    reps = gen.binomial(n, p_hat, size=n_boot) / n
    low, high = np.quantile(reps, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return RateInterval(rate=p_hat, low=float(low), high=float(high), n=n, level=float(level), n_boot=int(n_boot))


def memorization_rates(
    ratios: MemorizationRatios,
    criteria: Sequence[Criterion] = DEFAULT_CRITERIA,
    n_boot: int = 2000,
    level: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> dict[str, RateInterval]:
    """Flagged fraction of ``ratios`` under each criterion, with bootstrap intervals (keyed by name)."""
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return {c.name: bootstrap_rate(c.flags(ratios), n_boot=n_boot, level=level, rng=gen) for c in criteria}


def null_baselines(
    train: Any, heldout: Any | None = None, k: int | None = None, chunk_size: int = 4096
) -> dict[str, MemorizationRatios]:
    """Null ratio records: ``"heldout"`` (held-out models vs train; if given) and ``"leave_one_out"``.

    ``k`` defaults to ``min(50, N)`` for held-out models and ``min(50, N − 1)`` for leave-one-out.
    """
    nulls: dict[str, MemorizationRatios] = {}
    if heldout is not None:
        nulls["heldout"] = memorization_ratios(heldout, train, k=k, chunk_size=chunk_size)
    nulls["leave_one_out"] = memorization_ratios(train, train, k=k, exclude_self=True, chunk_size=chunk_size)
    return nulls


@dataclass(frozen=True)
class MemorizationReport:
    """Rates of the samples and of every null, side by side (a rate is never reported without a null)."""

    samples: MemorizationRatios
    nulls: dict[str, MemorizationRatios]
    rates: dict[str, dict[str, RateInterval]]  # criterion name → group ("samples", null names) → rate
    criteria: tuple[Criterion, ...] = field(default=DEFAULT_CRITERIA)

    def __post_init__(self):
        if not self.nulls:
            raise ValueRangeError("a memorization rate needs at least one null baseline; pass held-out models "
                                  "or a training set of N >= 3 for leave-one-out")
        groups = ("samples", *self.nulls)
        for c in self.criteria:
            missing = [g for g in groups if g not in self.rates.get(c.name, {})]
            if missing:
                raise ValueRangeError(f"criterion {c.name!r} has no rate for {missing}; build the report with "
                                      "memorization_report()")

    @property
    def groups(self) -> tuple[str, ...]:
        return ("samples", *self.nulls)

    @property
    def level(self) -> float:
        """Confidence level of the bootstrap intervals."""
        return next(iter(next(iter(self.rates.values())).values())).level

    def ratios(self, group: str) -> MemorizationRatios:
        """The ratio record of ``"samples"`` or of a null (``"heldout"``, ``"leave_one_out"``)."""
        if group == "samples":
            return self.samples
        if group not in self.nulls:
            raise ValueRangeError(f"unknown group {group!r}; choose one of {list(self.groups)}")
        return self.nulls[group]

    def summary_rows(self) -> tuple[list[str], list[list[str]]]:
        """``(header, rows)``: one row per criterion, each rate with its interval, nulls beside it."""
        header = [f"criterion (rate [{100 * self.level:.0f}% bootstrap CI])",
                  *[f"{g} (n={len(self.ratios(g))})" for g in self.groups]]
        rows = [[c.name, *[str(self.rates[c.name][g]) for g in self.groups]] for c in self.criteria]
        return header, rows

    def summary_table(self) -> str:
        """Plain-text table of every rate with its null(s) in the same row."""
        header, rows = self.summary_rows()
        widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*header), "  ".join("-" * w for w in widths), *(fmt.format(*r) for r in rows)]
        k_note = ", ".join(f"{g}: k={self.ratios(g).k}" for g in self.groups)
        lines.append(f"N = {self.samples.n_train} training models; {k_note}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Rates and per-group medians, for ``metrics.json``."""
        out: dict[str, Any] = {"n_train": self.samples.n_train, "rates": {}, "median_ratio_k": {}}
        for c in self.criteria:
            out["rates"][c.name] = {g: self.rates[c.name][g].to_dict() for g in self.groups}
        for g in self.groups:
            out["median_ratio_k"][g] = float(np.median(self.ratios(g).ratio_k))
        return out


def report_from_ratios(groups: dict[str, MemorizationRatios], n_boot: int, seed: int) -> MemorizationReport:
    """A :class:`MemorizationReport` from ratio records (``{"samples": …, "heldout": …, "leave_one_out": …}``)
    with bootstrap draws from one generator seeded ``seed`` in a fixed order (criteria, then groups), so a report
    rebuilt from saved records shows identical rates."""
    gen = np.random.default_rng(seed)
    rates = {c.name: {g: bootstrap_rate(c.flags(r), n_boot=n_boot, rng=gen) for g, r in groups.items()}
             for c in DEFAULT_CRITERIA}
    nulls = {g: r for g, r in groups.items() if g != "samples"}
    return MemorizationReport(samples=groups["samples"], nulls=nulls, rates=rates)


def memorization_report(
    samples: Any,
    train: Any,
    heldout: Any | None = None,
    criteria: Sequence[Criterion] = DEFAULT_CRITERIA,
    k: int | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int | np.random.Generator | None = 0,
    chunk_size: int = 4096,
) -> MemorizationReport:
    """Ratios and bootstrap rates of ``samples`` against ``train``, with held-out and leave-one-out nulls."""
    gen = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ratios = memorization_ratios(samples, train, k=k, chunk_size=chunk_size)
    nulls = null_baselines(train, heldout, k=k, chunk_size=chunk_size)
    groups = {"samples": ratios, **nulls}
    rates = {c.name: {g: bootstrap_rate(c.flags(r), n_boot=n_boot, level=level, rng=gen)
                      for g, r in groups.items()} for c in criteria}
    return MemorizationReport(samples=ratios, nulls=nulls, rates=rates, criteria=tuple(criteria))


def per_sample_record(
    ratios: MemorizationRatios,
    lookup_weights: Any | None = None,
    linearized_weights: Any | None = None,
    data_distances: Any | None = None,
    criteria: Sequence[Criterion] = DEFAULT_CRITERIA,
) -> list[dict[str, Any]]:
    """One dict per sample: nearest index, d1, ratios, flags, and (if given) the nearest model's weights.

    ``lookup_weights`` and ``linearized_weights`` are ``(N,)`` posterior weights of the training models
    (computed by :mod:`geomem.posterior`); the record holds the weight of each sample's nearest model.
    ``data_distances`` is ``(B,)``: ``‖F(s) − F(x_nn)‖`` per sample, computed by the caller.
    """
    n, b = ratios.n_train, len(ratios)
    extra: dict[str, np.ndarray] = {}
    for name, w in (("lookup_weight", lookup_weights), ("linearized_weight", linearized_weights)):
        if w is None:
            continue
        w = np.asarray(w, dtype=np.float64)
        if w.shape != (n,):
            raise ShapeError(f"{name}s must have shape ({n},) (one weight per training model), got {w.shape}")
        extra[name] = w[ratios.nearest]
    if data_distances is not None:
        dd = np.asarray(data_distances, dtype=np.float64)
        if dd.shape != (b,):
            raise ShapeError(f"data_distances must have shape ({b},) (one per sample), got {dd.shape}")
        extra["data_distance"] = dd
    flags = {c.name: c.flags(ratios) for c in criteria}
    records = []
    for i in range(b):
        rec: dict[str, Any] = {
            "sample": i, "nearest": int(ratios.nearest[i]), "d1": float(ratios.d1[i]), "d2": float(ratios.d2[i]),
            "ratio_12": float(ratios.ratio_12[i]), "ratio_k": float(ratios.ratio_k[i]),
        }
        rec.update({name: bool(f[i]) for name, f in flags.items()})
        rec.update({name: float(v[i]) for name, v in extra.items()})
        records.append(rec)
    return records
