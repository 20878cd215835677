"""Rules-and-exceptions model sets: a structured family (the *rule*) mixed with repeated *exceptions*.

After Farné, Boncoraglio & Zdeborová (the rules-and-facts model): a set of ``N`` models of which a fraction
``1 − ε`` are distinct models of one structured family (e.g. ``curvefault``, the rule) and a fraction ``ε``
are copies of ``E`` exceptions (models of another family, e.g. the unstructured ``grf`` fields).

**Frequencies.** The ``S = round(ε N)`` exception slots are shared among the ``E`` distinct exceptions with
power-law frequencies ``c_i ∝ (i + 1)^(−α)``, ``i = 0 … E − 1`` (α = 0: uniform): every exception gets one
copy, and the other ``S − E`` copies follow ``(i + 1)^(−α)`` by largest remainder (ties to the lower index),
so ``Σ c_i = S`` exactly and ``c_0 ≥ c_1 ≥ …``.

**Near-copies.** Copy ``j`` of exception ``i`` is ``v_ij = clip(v_i + j>0 · p (vmax − vmin) g_ij, vmin, vmax)``
with ``g_ij`` a standardized Gaussian random field (correlation length ``perturbation_length`` of the model
size; :func:`geomem.geology.grf.gaussian_random_field`) drawn from ``default_rng([seed, 7919, i, j])``. Copy
0 is the exception itself; ``p = perturbation = 0`` gives exact copies. ``p`` is the RMS of the perturbation
as a fraction of the velocity range, i.e. about the geology distance ``d(v_ij, v_i)`` (before clipping).

**Order and labels.** Rule models come first (model ``k`` of the rule family with ``seed``), then the copies,
exception by exception. Exception ``i`` is model ``i`` of the exception family with the same ``seed``, so the
rule and exception families must differ (they use different random streams). The labels live in
``ModelSet.meta["mixture"]``: the settings, ``kind`` (``"rule"``/``"exception"`` per model), ``exception_id``
and ``copy_index`` (−1 for rules) and ``source_index`` (index in the family's own stream). They survive
``save``/``load``; ``ModelSet.subset`` copies ``meta`` unchanged, so use :func:`subset_mixture` to subset a
mixture (it subsets the labels too). :func:`mixture_labels` checks the labels match the models.

Held-out pools for nulls and generalization: :func:`heldout_rules` (rule models after the training ones) and
:func:`heldout_exceptions` (exception-family models never used as exceptions).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from geomem.config import to_dict
from geomem.errors import ConfigError, DataFileError
from geomem.geology.grf import gaussian_random_field
from geomem.geology.modelset import ModelSet, make_model_set


@dataclass(frozen=True)
class MixtureSettings:
    """A rules-and-exceptions set (module docstring for the construction)."""

    rule_family: str = "curvefault"
    exception_family: str = "grf"
    n: int = field(default=200, metadata={"min": 2})
    epsilon: float = field(default=0.1, metadata={"min": 0, "max": 1})
    n_exceptions: int = field(default=0, metadata={"min": 0})  # distinct exceptions; 0 means one per slot
    alpha: float = field(default=0.0, metadata={"min": 0})
    perturbation: float = field(default=0.0, metadata={"min": 0})
    perturbation_length: float = field(default=0.15, metadata={"gt": 0})
    size: int = field(default=64, metadata={"min": 8})
    spacing: float = field(default=10.0, metadata={"gt": 0})
    seed: int = field(default=0, metadata={"min": 0})
    vmin: float = field(default=1.5, metadata={"gt": 0})
    vmax: float = field(default=4.5, metadata={"gt": 0})
    difficulty: str = field(default="A", metadata={"choices": ("A", "B")})


def power_law_copies(n_exceptions: int, n_slots: int, alpha: float) -> np.ndarray:
    """Copies per exception, ``(E,)`` int: one each, then ``S − E`` more ∝ ``(i + 1)^(−α)`` by largest remainder."""
    if n_exceptions < 1 or n_slots < n_exceptions:
        raise ConfigError(f"need 1 <= n_exceptions <= exception slots, got {n_exceptions} exceptions for "
                          f"{n_slots} slots; lower n_exceptions or raise epsilon")
    if not (np.isfinite(alpha) and alpha >= 0):
        raise ConfigError(f"alpha must be a finite number >= 0, got {alpha}")
    w = (np.arange(n_exceptions) + 1.0) ** (-float(alpha))
    extra = (n_slots - n_exceptions) * w / w.sum()
    base = np.floor(extra).astype(np.int64)
    left = (n_slots - n_exceptions) - int(base.sum())
    order = np.lexsort((np.arange(n_exceptions), -(extra - base)))  # largest remainder, lower index first
    base[order[:left]] += 1
    return base + 1


def _check(s: MixtureSettings) -> tuple[int, int, np.ndarray]:
    if s.rule_family == s.exception_family:
        raise ConfigError(f"rule_family and exception_family are both {s.rule_family!r}; exceptions must come from "
                          f"another family (e.g. exception_family = 'grf')")
    if s.vmin >= s.vmax:
        raise ConfigError(f"vmin ({s.vmin}) must be below vmax ({s.vmax})")
    slots = int(round(s.epsilon * s.n))
    if s.n - slots < 1:
        raise ConfigError(f"epsilon={s.epsilon} leaves no rule model in a set of {s.n}; lower epsilon")
    if slots == 0:
        return s.n, 0, np.zeros(0, dtype=np.int64)
    n_exc = s.n_exceptions or slots
    return s.n - slots, slots, power_law_copies(n_exc, slots, s.alpha)


def near_copy(v: np.ndarray, s: MixtureSettings, exception: int, copy_index: int) -> np.ndarray:
    """Copy ``copy_index`` of exception model ``v`` ``(1, nz, nx)`` (module docstring); copy 0 is ``v``."""
    if copy_index == 0 or s.perturbation == 0:
        return v.copy()
    rng = np.random.default_rng([s.seed, 7919, exception, copy_index])
    nz, nx = v.shape[-2:]
    g = gaussian_random_field(rng, nz, nx, s.perturbation_length, s.perturbation_length)
    return np.clip(v + s.perturbation * (s.vmax - s.vmin) * g[None], s.vmin, s.vmax).astype(np.float32)


def make_mixture_set(s: MixtureSettings) -> ModelSet:
    """The rules-and-exceptions set of ``s``: ``(N, 1, nz, nx)`` km/s with its labels in ``meta["mixture"]``."""
    n_rule, slots, copies = _check(s)
    size = (s.size, s.size)
    rules = make_model_set(s.rule_family, n_rule, size, s.spacing, s.seed, s.vmin, s.vmax, s.difficulty)
    parts = [rules.models]
    kind = ["rule"] * n_rule
    exc_id = [-1] * n_rule
    copy_idx = [-1] * n_rule
    source = list(range(n_rule))
    if slots:
        exc = make_model_set(s.exception_family, len(copies), size, s.spacing, s.seed, s.vmin, s.vmax, s.difficulty)
        for i, c in enumerate(copies):
            parts.append(np.stack([near_copy(exc.models[i], s, i, j) for j in range(int(c))]))
            kind += ["exception"] * int(c)
            exc_id += [i] * int(c)
            copy_idx += list(range(int(c)))
            source += [i] * int(c)
    meta = {"mixture": {"settings": to_dict(s), "copies": copies.tolist(), "kind": kind, "exception_id": exc_id,
                        "copy_index": copy_idx, "source_index": source}}
    family = f"mixture:{s.rule_family}+{s.exception_family}"
    return ModelSet(np.concatenate(parts).astype(np.float32), family, s.seed, s.spacing, s.vmin, s.vmax, meta)


@dataclass(frozen=True)
class MixtureLabels:
    """Per-model labels of a mixture set: ``kind`` (``"rule"``/``"exception"``), ``exception_id``,
    ``copy_index`` (−1 for rules), as arrays of length N."""

    kind: np.ndarray
    exception_id: np.ndarray
    copy_index: np.ndarray

    @property
    def is_exception(self) -> np.ndarray:
        return self.kind == "exception"

    @property
    def is_rule(self) -> np.ndarray:
        return self.kind == "rule"

    def facts(self) -> np.ndarray:
        """Indices of the distinct facts: every rule model and copy 0 of every exception, in set order."""
        return np.nonzero(self.is_rule | (self.copy_index == 0))[0]

    def copies(self, indices) -> np.ndarray:
        """How many models of the set are copies of each model's exception (1 for a rule model)."""
        idx = np.asarray(indices, dtype=int)
        return np.array([int((self.exception_id == self.exception_id[i]).sum()) if self.is_exception[i] else 1
                         for i in idx], dtype=int)


def mixture_labels(ms: ModelSet) -> MixtureLabels:
    """The labels in ``ms.meta["mixture"]``, checked against ``len(ms)``; a set with none is all rules."""
    mix = ms.meta.get("mixture")
    if mix is None:
        n = len(ms)
        return MixtureLabels(np.full(n, "rule"), np.full(n, -1), np.full(n, -1))
    kind = np.asarray(mix.get("kind", []))
    if len(kind) != len(ms):
        raise DataFileError(f"the mixture labels cover {len(kind)} models but the set has {len(ms)}; subset "
                            f"mixture sets with geomem.geology.mixtures.subset_mixture")
    return MixtureLabels(kind, np.asarray(mix["exception_id"], dtype=np.int64),
                         np.asarray(mix["copy_index"], dtype=np.int64))


def subset_mixture(ms: ModelSet, indices) -> ModelSet:
    """``ms.subset(indices)`` with the per-model mixture labels subset alike (a plain set is subset as is)."""
    idx = np.arange(len(ms))[indices]
    out = ms.subset(np.asarray(idx, dtype=np.int64))
    mix = ms.meta.get("mixture")
    if mix is not None:
        mixture_labels(ms)  # refuse labels that are already out of step
        new = copy.deepcopy(mix)
        for key in ("kind", "exception_id", "copy_index", "source_index"):
            new[key] = [mix[key][i] for i in idx]
        out.meta["mixture"] = new
    return out


def heldout_rules(s: MixtureSettings, count: int) -> ModelSet:
    """``count`` rule models never in the mixture: models ``n_rule … n_rule + count − 1`` of the rule stream."""
    n_rule, _, _ = _check(s)
    ms = make_model_set(s.rule_family, n_rule + count, (s.size, s.size), s.spacing, s.seed, s.vmin, s.vmax,
                        s.difficulty)
    return ms.subset(np.arange(n_rule, n_rule + count))


def heldout_exceptions(s: MixtureSettings, count: int) -> ModelSet:
    """``count`` exception-family models never used as exceptions (after the ``E`` used ones)."""
    _, _, copies = _check(s)
    e = len(copies)
    ms = make_model_set(s.exception_family, e + count, (s.size, s.size), s.spacing, s.seed, s.vmin, s.vmax,
                        s.difficulty)
    return ms.subset(np.arange(e, e + count))
