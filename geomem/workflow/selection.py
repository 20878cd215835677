"""Loss-based training-set selection (after Ye, Feldman & Talwar, "Cram less to fit more") and the denoising-loss
scores behind it (shared by ``geomem select`` and ``geomem rules``).

**Score.** Each model ``x_n`` (normalized coordinates, ``(N, 1, nz, nx)``) gets its σ-averaged EDM-weighted
denoising loss under a prior ``D``:

    ℓ_n = (1/(K M)) Σ_k Σ_m λ(σ_k) ‖D(x_n + σ_k ε_km, σ_k) − x_n‖² / (nz · nx),   λ(σ) = (σ² + σ_d²)/(σ σ_d)²

over a fixed grid ``σ_k = geomspace(sigma_lo, sigma_hi, K)`` and ``M`` noise draws ``ε_km`` drawn once from
``torch.Generator().manual_seed(seed)`` and shared by every model (common random numbers: differences between
models come from the models, not from the noise). ``σ_d`` is the prior's ``sigma_data`` (0.5 when it has none).
This is the training objective of :mod:`geomem.priors.training` at fixed σ instead of random σ.

**Rules** (each takes the loss vector, so it can be tested exactly; ties broken by the lower index):

- ``drop_highest``: drop the ``ceil(fraction · N)`` models with the highest loss (outliers the prior fits worst).
- ``cap_clusters``: cluster near-duplicates — connected components of the graph with an edge where the geology
  distance ``d(a, b) = ‖a − b‖ / (√(nz nx) · 2)`` (RMS difference as a fraction of the velocity range; the
  range is 2 in normalized coordinates) is below ``threshold`` — and keep the ``cap`` lowest-loss members of each
  cluster (flattens the frequencies of repeated facts).
- ``budget``: cluster as above, take each cluster's lowest-loss member as its representative, keep the
  ``budget`` representatives with the lowest loss and drop everything else (a budget of distinct models: the
  easiest facts first, as Ye et al. select the lowest-loss examples to fit the capacity).

**Memorized rate over the training set** (:func:`training_coverage`): training model ``n`` counts as reproduced
when at least one unconditional sample ``s`` has ``n`` as its nearest training model with
``ratio_k(s) = d_1/mean(d_2..d_k) < 0.5`` (k = min(50, N)); the rate is (#reproduced)/N. Its null replaces the
samples by as many held-out models of the same kind (a generator that never saw the set).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from geomem.config import Settings
from geomem.errors import ConfigError, ShapeError, ValueRangeError
from geomem.geology.distances import close_pairs
from geomem.metrics.memorization import memorization_ratios
from geomem.priors.memorized import MemorizedPrior

SELECTION_RULES = ("drop_highest", "cap_clusters", "budget")


@dataclass(frozen=True)
class ScoreSettings(Settings):
    """σ grid and noise draws of the denoising-loss score."""

    sigma_lo: float = field(default=0.02, metadata={"gt": 0})
    sigma_hi: float = field(default=5.0, metadata={"gt": 0})
    n_sigmas: int = field(default=8, metadata={"min": 1})
    n_draws: int = field(default=2, metadata={"min": 1})
    seed: int = 0
    batch_size: int = field(default=64, metadata={"min": 1})


@dataclass(frozen=True)
class RuleSettings(Settings):
    """Which rule and its parameters (module docstring)."""

    rule: str = field(default="cap_clusters", metadata={"choices": SELECTION_RULES})
    fraction: float = field(default=0.1, metadata={"min": 0, "max": 1})
    threshold: float = field(default=0.05, metadata={"gt": 0})
    cap: int = field(default=1, metadata={"min": 1})
    budget: int = field(default=100, metadata={"min": 1})


@torch.no_grad()
def denoising_losses(denoiser, x: np.ndarray | torch.Tensor, settings: ScoreSettings = ScoreSettings(),
                     device: str | torch.device = "cpu") -> np.ndarray:
    """``ℓ_n`` of every model (module docstring), float64 ``(N,)``."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ShapeError(f"models must have shape (N, 1, nz, nx) in normalized coordinates, got {tuple(x.shape)}")
    if not settings.sigma_lo <= settings.sigma_hi:
        raise ValueRangeError(f"need sigma_lo <= sigma_hi, got {settings.sigma_lo} > {settings.sigma_hi}")
    sigmas = np.geomspace(settings.sigma_lo, settings.sigma_hi, settings.n_sigmas)
    gen = torch.Generator().manual_seed(settings.seed)
    eps = torch.randn((len(sigmas), settings.n_draws, *x.shape[1:]), generator=gen)
    sd = float(getattr(denoiser, "sigma_data", 0.5))
    d = x.shape[2] * x.shape[3]
    total = torch.zeros(len(x), dtype=torch.float64)
    for start in range(0, len(x), settings.batch_size):
        x0 = x[start:start + settings.batch_size].to(device)
        for k, s in enumerate(sigmas):
            lam = (s**2 + sd**2) / (s * sd) ** 2
            for m in range(settings.n_draws):
                den = denoiser(x0 + float(s) * eps[k, m].to(device), float(s))
                err = ((den.double() - x0.double()) ** 2).flatten(1).sum(1) / d
                total[start:start + len(x0)] += lam * err.cpu()
    return (total / (len(sigmas) * settings.n_draws)).numpy()


@dataclass
class Selection:
    """Outcome of a rule: ``keep`` (N,) bool, ``reasons`` ("" for kept models), ``cluster`` (N,) int (−1: none)."""

    rule: str
    params: dict[str, Any]
    keep: np.ndarray
    reasons: list[str]
    cluster: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        return np.nonzero(self.keep)[0]

    def dropped_records(self, losses: np.ndarray) -> list[dict[str, Any]]:
        return [{"index": int(i), "loss": float(losses[i]), "cluster": int(self.cluster[i]), "reason": self.reasons[i]}
                for i in np.nonzero(~self.keep)[0]]


def _check_losses(losses: Any) -> np.ndarray:
    lo = np.asarray(losses, dtype=np.float64)
    if lo.ndim != 1 or lo.size == 0:
        raise ShapeError(f"losses must be a non-empty 1-D vector, got shape {lo.shape}")
    if not np.all(np.isfinite(lo)):
        raise ValueRangeError("losses contain NaN or inf; rescore the set with a prior that returns finite values")
    return lo


def _rank(losses: np.ndarray) -> np.ndarray:
    """Indices by increasing loss, ties to the lower index."""
    return np.lexsort((np.arange(len(losses)), losses))


def drop_highest(losses: Any, fraction: float) -> Selection:
    lo = _check_losses(losses)
    if not 0 <= fraction < 1:
        raise ValueRangeError(f"fraction must be in [0, 1), got {fraction}")
    n_drop = math.ceil(fraction * len(lo))
    order = _rank(lo)
    keep = np.ones(len(lo), bool)
    reasons = [""] * len(lo)
    for r, i in enumerate(order[len(lo) - n_drop:]):
        keep[i] = False
        reasons[i] = f"loss {lo[i]:.4g} among the {n_drop} highest of {len(lo)} (rank {len(lo) - n_drop + r + 1})"
    return Selection("drop_highest", {"fraction": fraction}, keep, reasons, np.full(len(lo), -1))


def clusters(x: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components of ``d(a, b) < threshold`` (module docstring), labelled 0, 1, … in order of their
    first member; ``(N,)`` int."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ShapeError(f"models must have shape (N, 1, nz, nx), got {x.shape}")
    parent = np.arange(len(x))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in close_pairs(x, threshold, scale=2.0):
        a, b = find(int(i)), find(int(j))
        if a != b:
            parent[max(a, b)] = min(a, b)
    roots = np.array([find(i) for i in range(len(x))])
    _, label = np.unique(roots, return_inverse=True)
    return label.astype(np.int64)


def _losses_and_clusters(losses: Any, x: np.ndarray, threshold: float, name: str, value: int):
    """Checked losses, and cluster labels of ``x`` at ``threshold``; ``value`` (cap or budget) must be >= 1."""
    lo = _check_losses(losses)
    if len(x) != len(lo):
        raise ShapeError(f"{len(lo)} losses for {len(x)} models")
    if value < 1:
        raise ValueRangeError(f"{name} must be >= 1, got {value}")
    return lo, clusters(x, threshold)


def cap_clusters(losses: Any, x: np.ndarray, threshold: float, cap: int) -> Selection:
    lo, lab = _losses_and_clusters(losses, x, threshold, "cap", cap)
    keep = np.ones(len(lo), bool)
    reasons = [""] * len(lo)
    for c in np.unique(lab):
        members = np.nonzero(lab == c)[0]
        ranked = members[_rank(lo[members])]
        for i in ranked[cap:]:
            keep[i] = False
            reasons[i] = (f"near-duplicate: cluster {c} has {len(members)} models within distance {threshold}; "
                          f"kept the {cap} lowest-loss")
    return Selection("cap_clusters", {"threshold": threshold, "cap": cap}, keep, reasons, lab)


def keep_budget(losses: Any, x: np.ndarray, threshold: float, budget: int) -> Selection:
    lo, lab = _losses_and_clusters(losses, x, threshold, "budget", budget)
    reps = np.array([m[_rank(lo[m])[0]] for m in (np.nonzero(lab == c)[0] for c in np.unique(lab))])
    chosen = set(reps[_rank(lo[reps])][:budget].tolist())
    keep = np.zeros(len(lo), bool)
    reasons = []
    for i in range(len(lo)):
        rep = reps[lab[i]]
        if i in chosen:
            keep[i] = True
            reasons.append("")
        elif i != rep:
            reasons.append(f"near-duplicate of model {rep} (cluster {lab[i]}, lower loss)")
        else:
            reasons.append(f"over budget: cluster {lab[i]}'s loss {lo[i]:.4g} is not among the {budget} lowest of "
                           f"{len(reps)} distinct models")
    return Selection("budget", {"threshold": threshold, "budget": budget}, keep, reasons, lab)


def select(losses: Any, x: np.ndarray, s: RuleSettings) -> Selection:
    """Apply the rule named in ``s``."""
    if s.rule == "drop_highest":
        return drop_highest(losses, s.fraction)
    if s.rule == "cap_clusters":
        return cap_clusters(losses, x, s.threshold, s.cap)
    if s.rule == "budget":
        return keep_budget(losses, x, s.threshold, s.budget)
    raise ConfigError(f"selection rule must be one of {list(SELECTION_RULES)}, got {s.rule!r}")


def selected_set(ms, sel: Selection, losses: np.ndarray, source: str = ""):
    """The kept models as a new ModelSet (mixture labels subset alike) with ``meta["selection"]``: the rule, its
    parameters, the source, kept indices and every dropped model's index, loss, cluster and reason."""
    from geomem.geology.mixtures import subset_mixture

    if len(sel.keep) != len(ms):
        raise ShapeError(f"the selection covers {len(sel.keep)} models but the set has {len(ms)}")
    if not sel.keep.any():
        raise ValueRangeError("the rule dropped every model; loosen it (lower fraction, higher cap or budget)")
    out = subset_mixture(ms, sel.kept)
    out.meta["selection"] = {"rule": sel.rule, "params": sel.params, "source": source, "n_source": len(ms),
                             "kept": sel.kept.tolist(), "dropped": sel.dropped_records(np.asarray(losses))}
    return out


def training_coverage(samples: Any, train: Any, threshold: float = 0.5) -> tuple[float, np.ndarray, np.ndarray]:
    """``(rate, reproduced (N,) bool, hits (N,) int)``: training models reproduced by ``samples`` (module
    docstring); ``hits[n]`` counts the samples that reproduce model n."""
    r = memorization_ratios(samples, train)
    n = int(np.shape(train)[0])
    hits = np.bincount(r.nearest[r.ratio_k < threshold], minlength=n)
    return float((hits > 0).mean()), hits > 0, hits


def generalization(prior, train_x: np.ndarray, rules_train: np.ndarray, rules_heldout: np.ndarray,
                   sigmas: tuple[float, ...], seed: int, device) -> dict[str, Any]:
    """Learned and memorized denoising losses on held-out and training rule models at each σ (module doc)."""
    mem = MemorizedPrior(torch.from_numpy(train_x).float()).to(device)
    out: dict[str, Any] = {}
    for s in sigmas:
        st = ScoreSettings(sigma_lo=s, sigma_hi=s, n_sigmas=1, n_draws=2, seed=seed)
        row = {}
        for name, x in (("heldout", rules_heldout), ("train", rules_train)):
            row[f"learned_{name}"] = float(denoising_losses(prior, x, st, device).mean())
            row[f"memorized_{name}"] = float(denoising_losses(mem, x, st, device).mean())
        row["gen_ratio"] = row["learned_heldout"] / row["memorized_heldout"]
        out[f"{s:g}"] = row
    return out
