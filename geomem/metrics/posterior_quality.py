"""Posterior quality: summaries, calibration, data misfit, and distances between sample sets.

Posterior samples are ``(S, 1, nz, nx)`` (or ``(S, nz, nx)``), the truth ``(1, nz, nx)`` or ``(nz, nx)``,
in the same units (velocity in km/s, or normalized coordinates). Everything is NumPy, accumulated in
float64.

- mean ``m = (1/S) Σ_s x_s``; pointwise std with Bessel's correction ``√(Σ_s (x_s − m)² / (S − 1))``;
- ``rmse = √(mean((m − truth)²))``; SSIM of ``m`` against the truth (``skimage`` with ``data_range``);
- calibration: pixels sorted into equal-count bins of the pointwise std; per bin the mean std and the
  mean ``|m − truth|``. For a calibrated Gaussian posterior ``E|m − truth| = √(2/π) · std``;
  coverage of the central credible interval at level ℓ: the fraction of pixels whose true value lies in
  ``[q_{(1−ℓ)/2}, q_{(1+ℓ)/2}]`` of that pixel's samples (ℓ for a calibrated posterior);
- data misfit against the noise: ``‖y − F(x)‖ / (γ √m)`` (≈ 1 when the misfit is at the noise level);
- energy distance (V-statistic) ``E(P, Q) = 2 E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖ ≥ 0``, zero for identical
  sets; the unbiased U-statistic (within-set averages over i ≠ j) is available too;
- MMD² with a Gaussian kernel ``k(a, b) = exp(−‖a − b‖² / 2h²)``, bandwidth by the median heuristic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist
from skimage.metrics import structural_similarity

from geomem.errors import ShapeError, ValueRangeError
from geomem.metrics.memorization import nearest_neighbours


def _images(samples: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(samples, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if x.ndim == 4:
        if x.shape[1] != 1:
            raise ShapeError(f"samples must be (S, 1, nz, nx) with one channel, got {x.shape}")
        x = x[:, 0]
    if x.ndim != 3:
        raise ShapeError(f"samples must be (S, 1, nz, nx) or (S, nz, nx), got shape {x.shape}")
    if t.ndim == 3 and t.shape[0] == 1:
        t = t[0]
    if t.shape != x.shape[1:]:
        raise ShapeError(f"truth must be (1, nz, nx) or (nz, nx) matching samples {x.shape[1:]}, got {t.shape}")
    if x.shape[0] < 2:
        raise ShapeError(f"need at least 2 posterior samples for a std, got {x.shape[0]}")
    if not (np.isfinite(x).all() and np.isfinite(t).all()):
        raise ValueRangeError("samples or truth contain NaN or inf")
    return x, t


@dataclass(frozen=True)
class PosteriorSummary:
    """Mean and pointwise std ``(nz, nx)``, and the mean's RMSE and SSIM against the truth."""

    mean: np.ndarray
    std: np.ndarray
    rmse: float
    ssim: float
    n_samples: int

    def scalars(self) -> dict[str, float]:
        return {"rmse": self.rmse, "ssim": self.ssim, "mean_std": float(self.std.mean()), "n_samples": self.n_samples}


def ssim(image: Any, reference: Any, data_range: float) -> float:
    """SSIM of two 2-D images (uniform 7×7 window, or the largest odd window that fits, at least 3)."""
    a = np.asarray(image, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ShapeError(f"SSIM needs two 2-D images of the same shape, got {a.shape} and {b.shape}")
    if not data_range > 0:
        raise ValueRangeError(f"data_range must be > 0 (e.g. vmax − vmin in km/s), got {data_range}")
    win = min(7, min(a.shape) - (1 - min(a.shape) % 2))
    if win < 3:
        raise ShapeError(f"images of shape {a.shape} are too small for SSIM (need at least 3×3)")
    return float(structural_similarity(a, b, data_range=float(data_range), win_size=win))


def posterior_summary(samples: Any, truth: Any, data_range: float) -> PosteriorSummary:
    """Mean, std, RMSE and SSIM (with ``data_range``, e.g. ``vmax − vmin``) of posterior samples."""
    x, t = _images(samples, truth)
    mean = x.mean(axis=0)
    std = x.std(axis=0, ddof=1)
    rmse = float(np.sqrt(np.mean((mean - t) ** 2)))
    return PosteriorSummary(mean=mean, std=std, rmse=rmse, ssim=ssim(mean, t, data_range), n_samples=x.shape[0])


@dataclass(frozen=True)
class Calibration:
    """Binned std against |error| of the mean, and coverage of central credible intervals."""

    bin_std: np.ndarray  # (n_bins,) mean pointwise std in each bin
    bin_abs_error: np.ndarray  # (n_bins,) mean |mean − truth| in each bin
    bin_count: np.ndarray  # (n_bins,) pixels per bin
    levels: np.ndarray  # nominal levels ℓ
    coverage: np.ndarray  # observed fraction of pixels whose truth is in the central ℓ interval

    def to_dict(self) -> dict[str, Any]:
        return {"bin_std": self.bin_std, "bin_abs_error": self.bin_abs_error, "bin_count": self.bin_count,
                "levels": self.levels, "coverage": self.coverage}


def calibration(
    samples: Any, truth: Any, n_bins: int = 10, levels: Sequence[float] = (0.5, 0.9, 0.95)
) -> Calibration:
    """Calibration of a sample posterior against the truth (see the module docstring).

    Pixels are ordered by their std and split into ``n_bins`` bins of (nearly) equal count.
    """
    x, t = _images(samples, truth)
    lv = np.asarray(levels, dtype=np.float64)
    if lv.ndim != 1 or lv.size == 0 or np.any(lv <= 0) or np.any(lv >= 1):
        raise ValueRangeError(f"levels must be a non-empty list of numbers in (0, 1), got {list(levels)}")
    n_pix = t.size
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or not 1 <= n_bins <= n_pix:
        raise ValueRangeError(f"n_bins must be an integer between 1 and the {n_pix} pixels, got {n_bins!r}")
    mean = x.mean(axis=0).ravel()
    std = x.std(axis=0, ddof=1).ravel()
    err = np.abs(mean - t.ravel())
    order = np.argsort(std, kind="stable")
    bins = np.array_split(order, n_bins)
    bin_std = np.array([std[b].mean() for b in bins])
    bin_err = np.array([err[b].mean() for b in bins])
    counts = np.array([b.size for b in bins], dtype=np.int64)
    flat = x.reshape(x.shape[0], -1)
    coverage = np.empty(lv.size)
    for j, level in enumerate(lv):
        lo, hi = np.quantile(flat, [(1 - level) / 2, (1 + level) / 2], axis=0)
        coverage[j] = np.mean((t.ravel() >= lo) & (t.ravel() <= hi))
    return Calibration(bin_std=bin_std, bin_abs_error=bin_err, bin_count=counts, levels=lv, coverage=coverage)


def distinct_nearest(indices: Any) -> int:
    """Number of distinct nearest training models among the samples (``(S,)``, or ``(S, k)``: column 0)."""
    idx = np.asarray(indices)
    if idx.ndim == 2:
        idx = idx[:, 0]
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ShapeError(f"indices must be a non-empty integer array (S,) or (S, k), got {idx.dtype} {idx.shape}")
    return int(np.unique(idx).size)


def data_misfit_vs_noise(residual_norms: Any, noise_std: float, n_data: int) -> np.ndarray:
    """``‖r‖ / (γ √m)`` for residual norms ``‖y − F(x)‖``; 1 means the misfit is at the noise level."""
    r = np.asarray(residual_norms, dtype=np.float64)
    if not (np.isfinite(noise_std) and noise_std > 0):
        raise ValueRangeError(f"noise_std (γ) must be finite and > 0, got {noise_std}")
    if isinstance(n_data, bool) or not isinstance(n_data, (int, np.integer)) or n_data < 1:
        raise ValueRangeError(f"n_data (number of data values m) must be a positive integer, got {n_data!r}")
    if not np.isfinite(r).all() or np.any(r < 0):
        raise ValueRangeError("residual norms must be finite and >= 0")
    return r / (noise_std * np.sqrt(n_data))


def _flat_sets(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    x = x.reshape(x.shape[0], -1) if x.ndim > 1 else x.reshape(-1, 1)
    y = y.reshape(y.shape[0], -1) if y.ndim > 1 else y.reshape(-1, 1)
    if x.shape[1] != y.shape[1]:
        raise ShapeError(f"the two sample sets have {x.shape[1]} and {y.shape[1]} values per sample; they must match")
    if x.shape[0] == 0 or y.shape[0] == 0:
        raise ShapeError("both sample sets must be non-empty")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueRangeError("sample sets contain NaN or inf")
    return x, y


def _within_mean(d: np.ndarray, unbiased: bool) -> float:
    n = d.shape[0]
    return float(d.sum() / (n * (n - 1))) if unbiased else float(d.mean())


def energy_distance(a: Any, b: Any, unbiased: bool = False) -> float:
    """Energy distance ``2 E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖`` between sample sets ``a`` (n, ...) and ``b`` (m, ...).

    V-statistic by default (within-set means over all n² pairs, i = j included): always ≥ 0 and exactly
    0 for identical sets. ``unbiased=True`` averages within-set terms over i ≠ j (needs n, m ≥ 2; can be
    slightly negative). This is the squared form (Székely's ℰ), not its square root.
    """
    x, y = _flat_sets(a, b)
    if unbiased and min(x.shape[0], y.shape[0]) < 2:
        raise ShapeError("the unbiased energy distance needs at least 2 samples in each set")
    cross = float(cdist(x, y).mean())
    return 2.0 * cross - _within_mean(cdist(x, x), unbiased) - _within_mean(cdist(y, y), unbiased)


def median_bandwidth(a: Any, b: Any) -> float:
    """Median heuristic: the median of the non-zero pairwise distances of the pooled sets."""
    x, y = _flat_sets(a, b)
    pooled = np.concatenate([x, y])
    d = cdist(pooled, pooled)[np.triu_indices(pooled.shape[0], k=1)]
    d = d[d > 0]
    if d.size == 0:
        raise ValueRangeError("all samples are identical; the median bandwidth is undefined, pass a bandwidth")
    return float(np.median(d))


def mmd(a: Any, b: Any, bandwidth: float | None = None) -> float:
    """Biased (V-statistic) MMD² with kernel ``exp(−‖u − v‖² / 2h²)``: ``mean K_aa + mean K_bb − 2 mean K_ab``.

    ``bandwidth`` h defaults to :func:`median_bandwidth`. Always ≥ 0 (up to rounding) and 0 for
    identical sets.
    """
    x, y = _flat_sets(a, b)
    h = median_bandwidth(x, y) if bandwidth is None else float(bandwidth)
    if not (np.isfinite(h) and h > 0):
        raise ValueRangeError(f"bandwidth must be finite and > 0, got {bandwidth}")

    def k(u: np.ndarray, v: np.ndarray) -> float:
        return float(np.exp(-cdist(u, v, "sqeuclidean") / (2.0 * h * h)).mean())

    return k(x, x) + k(y, y) - 2.0 * k(x, y)


def compare_posteriors(
    posteriors: Mapping[str, Any],
    truth: Any,
    data_range: float,
    train: Any | None = None,
    residual_norms: Mapping[str, Any] | None = None,
    noise_std: float | None = None,
    n_data: int | None = None,
    n_bins: int = 10,
    levels: Sequence[float] = (0.5, 0.9, 0.95),
    pairs: Sequence[tuple[str, str]] = (("learned", "memorized"),),
) -> dict[str, Any]:
    """Score several sample posteriors (name → ``(S, 1, nz, nx)``) of the same truth side by side.

    Per posterior: ``rmse``, ``ssim``, ``mean_std``, ``coverage@ℓ``; ``distinct_nearest`` when ``train``
    is given; ``misfit/noise`` (median of ``‖r‖/(γ√m)``) when its residual norms are given. For every
    pair present in ``posteriors``, the energy distance (V-statistic) between the two sample sets.
    Returns ``{"posteriors": {name: {...}}, "energy_distance": {"a <-> b": value}}`` (plain floats).
    """
    if not posteriors:
        raise ValueRangeError("pass at least one posterior (name -> samples)")
    if residual_norms and (noise_std is None or n_data is None):
        raise ValueRangeError("residual norms need noise_std (γ) and n_data (m) to be compared with the noise")
    table: dict[str, dict[str, float]] = {}
    for name, samples in posteriors.items():
        summary = posterior_summary(samples, truth, data_range)
        cal = calibration(samples, truth, n_bins=n_bins, levels=levels)
        row = {"n_samples": float(summary.n_samples), **{k: float(v) for k, v in summary.scalars().items()
                                                          if k != "n_samples"}}
        row.update({f"coverage@{lv:g}": float(c) for lv, c in zip(cal.levels, cal.coverage, strict=True)})
        if train is not None:
            _, idx = nearest_neighbours(samples, train, k=1)
            row["distinct_nearest"] = float(distinct_nearest(idx))
        if residual_norms and name in residual_norms:
            row["misfit/noise"] = float(np.median(data_misfit_vs_noise(residual_norms[name], noise_std, n_data)))
        table[name] = row
    distances = {f"{a} <-> {b}": energy_distance(posteriors[a], posteriors[b])
                 for a, b in pairs if a in posteriors and b in posteriors}
    return {"posteriors": table, "energy_distance": distances}


def comparison_rows(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """``(header, rows)`` of :func:`compare_posteriors` for a report table: one row per posterior."""
    table = result["posteriors"]
    columns: list[str] = []
    for row in table.values():
        columns += [c for c in row if c not in columns]
    rows = [[name, *[row.get(c, "n/a") for c in columns]] for name, row in table.items()]
    return ["posterior", *columns], rows
