"""The inverse problem every recipe sets up: model set and split, survey → operator, truth and noise → data.

Split of a model set of ``n`` models: the first ``N`` models are the training set of a prior trained on
``N`` (nested sets: a smaller set is a prefix of a larger one); models from ``heldout_start`` on are the
held-out pool, the first ``n_heldout_null`` of which are the held-out null baseline. Truth specs:
``heldout:i`` → model ``heldout_start + i``; ``train:i`` → model ``i`` (in every nested training set).

Data: ``y = F(v_truth) + ε``, ``γ = noise × RMS(F(v_truth))``, ``ε ~ N(0, γ²I)`` drawn from
``numpy.random.default_rng([seed, truth index])`` (:meth:`Problem.likelihood`, through
:meth:`geomem.posterior.Likelihood.from_truth`) — the one seeding rule of every recipe; or observed shot
records read from a file with their γ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from geomem.config import Settings, load_toml, to_dict
from geomem.errors import ConfigError, DataFileError
from geomem.geology import ModelSet, make_model_set
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.acquisition import Geometry
from geomem.physics.observed import read_observed
from geomem.posterior.likelihood import Likelihood
from geomem.workflow.cache import cache_root, cached, digest_array, stage_key, versions
from geomem.workflow.parallel import forward_all


@dataclass(frozen=True)
class ModelSetSettings(Settings):
    """The model set: a saved file (``path``), or generated from the family settings (the default)."""

    path: str = ""
    family: str = "curvefault"
    n: int = field(default=1200, metadata={"min": 2})
    size: int = field(default=64, metadata={"min": 8})
    spacing: float = field(default=10.0, metadata={"gt": 0})
    seed: int = field(default=0, metadata={"min": 0})
    vmin: float = field(default=1.5, metadata={"gt": 0})
    vmax: float = field(default=4.5, metadata={"gt": 0})
    heldout_start: int = field(default=1000, metadata={"min": 1})
    n_heldout_null: int = field(default=100, metadata={"min": 1})


@dataclass(frozen=True)
class SurveySettings(Settings):
    """Acquisition: a surface line of sources and a receiver per column (``physics.Geometry.surface``)."""

    n_src: int = field(default=5, metadata={"min": 1})
    f0: float = field(default=15.0, metadata={"gt": 0})
    t_max: float = field(default=1000.0, metadata={"gt": 0})
    space_order: int = field(default=8, metadata={"choices": (2, 4, 6, 8, 10, 12)})
    nbl: int = field(default=20, metadata={"min": 0})
    geometry: str = ""  # a TOML file with src = [[x, z], ...] and rec = [[x, z], ...] in m; replaces the line


def load_model_set(s: ModelSetSettings) -> ModelSet:
    if s.path:
        if not Path(s.path).exists():
            raise DataFileError(f"model set {s.path} does not exist; give an existing .npz/.zarr or leave path empty")
        ms = ModelSet.load(s.path)
    else:
        ms = make_model_set(family=s.family, n=s.n, size=(s.size, s.size), spacing=s.spacing, seed=s.seed,
                            vmin=s.vmin, vmax=s.vmax)
    if s.heldout_start >= len(ms):
        raise ConfigError(f"model_set.heldout_start ({s.heldout_start}) must be below the number of models "
                          f"({len(ms)}): models from there on are the held-out pool")
    return ms


def build_operator(ms: ModelSet, s: SurveySettings) -> AcousticOperator:
    """The acoustic operator of the survey: a surface line (``Geometry.surface``) or the coordinates of
    ``s.geometry`` (TOML: ``src = [[x, z], ...]``, ``rec = [[x, z], ...]`` in m)."""
    shape = tuple(ms.shape[1:])
    if s.geometry:
        coords = load_toml(s.geometry)
        try:
            src, rec = (np.asarray(coords[k], dtype=float).reshape(-1, 2) for k in ("src", "rec"))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"geometry file {s.geometry} needs src = [[x, z], ...] and rec = [[x, z], ...] "
                              "(metres)") from None
        geometry = Geometry(shape, (ms.spacing, ms.spacing), src, rec, t_max=s.t_max, f0=s.f0,
                            vmax_bound=ms.vmax, space_order=s.space_order)
    else:
        geometry = Geometry.surface(shape, ms.spacing, n_src=s.n_src, t_max=s.t_max, f0=s.f0, vmax_bound=ms.vmax,
                                    space_order=s.space_order)
    return AcousticOperator(shape, ms.spacing, geometry, vmax_bound=ms.vmax, space_order=s.space_order, nbl=s.nbl)


def truth_index(spec: str, heldout_start: int, n_models: int, n_min: int) -> int:
    """``heldout:i`` → model ``heldout_start + i``; ``train:i`` → model ``i`` (in every nested training set)."""
    kind, _, idx = spec.partition(":")
    if kind not in ("heldout", "train") or not idx.isdigit():
        raise ConfigError(f"truth {spec!r} must look like 'heldout:<i>' or 'train:<i>'")
    i = int(idx)
    index = heldout_start + i if kind == "heldout" else i
    limit = n_models if kind == "heldout" else n_min
    if index >= limit:
        pool = "held-out pool" if kind == "heldout" else "smallest training set"
        raise ConfigError(f"truth {spec!r} points past the {pool}; use a smaller index")
    return index


@dataclass
class Problem:
    """A model set with its split and the survey's operator; makes likelihoods and caches training data."""

    model_set: ModelSet
    settings: ModelSetSettings
    survey: SurveySettings
    operator: AcousticOperator

    @classmethod
    def build(cls, settings: ModelSetSettings, survey: SurveySettings) -> Problem:
        ms = load_model_set(settings)
        op = build_operator(ms, survey)
        op.geometry.check_dispersion(ms.vmin)
        return cls(ms, settings, survey, op)

    @property
    def parameterization(self):
        return self.model_set.parameterization

    @cached_property
    def x(self) -> np.ndarray:
        """Every model in prior coordinates ``(n, 1, nz, nx)`` float64."""
        return self.model_set.normalized().astype(np.float64)

    def train(self, n: int) -> np.ndarray:
        """The training set of a prior trained on ``n`` models (prior coordinates)."""
        if not 1 <= n <= self.settings.heldout_start:
            raise ConfigError(f"a training set of {n} models overlaps the held-out pool that starts at model "
                              f"{self.settings.heldout_start}; raise model_set.heldout_start or model_set.n")
        return self.x[:n]

    @property
    def heldout_null(self) -> np.ndarray:
        """The held-out models of the null baseline (prior coordinates)."""
        return self.x[self.settings.heldout_start:][: self.settings.n_heldout_null]

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the model set's contents (models, velocity range, spacing): keys every cache."""
        ms = self.model_set
        return stage_key(models=digest_array(ms.models.astype(np.float32)), vmin=ms.vmin, vmax=ms.vmax,
                         spacing=ms.spacing)

    def operator_key(self) -> dict:
        """What the forward data depend on besides the models."""
        return {"survey": to_dict(self.survey), "dt": self.operator.dt, "nt": self.operator.nt,
                "dtype": str(self.operator.dtype), **versions()}

    def truth(self, spec: str, n_min: int) -> int:
        return truth_index(spec, self.settings.heldout_start, len(self.model_set), n_min)

    def forward_train(self, n: int, client=None, progress: bool = False) -> np.ndarray:
        """``F(v_n)`` of the first ``n`` models, from the shared forward cache (computed once per model-set
        contents and survey, reused by every run folder)."""
        key = stage_key(models=self.digest, n=n, **self.operator_key())
        path = cache_root() / "forward" / f"{key}.npz"
        if progress and not path.is_file():
            print(f"forward modelling {n} training models (cached in {path.parent})", flush=True)
        return cached(path, key, lambda: {"F": forward_all(self.operator, self.model_set.models[:n], client)})["F"]

    def likelihood(self, spec: str, noise: float, seed: int, n_min: int, forward: np.ndarray | None = None,
                   client=None) -> tuple[int, Likelihood]:
        """``(truth index, Likelihood)`` for synthetic data of truth ``spec`` (noise seeded by ``[seed, index]``).

        ``forward``: cached ``F(v_n)`` of the first models, used for the truth's clean data when it is among them.
        """
        idx = self.truth(spec, n_min)
        clean = forward[idx] if forward is not None and idx < len(forward) else None
        lik = Likelihood.from_truth(self.operator, self.model_set.models[idx], noise, self.parameterization,
                                    seed=[seed, idx], client=client, clean=clean)
        return idx, lik

    def observed(self, path: str | Path, gamma: float, client=None) -> Likelihood:
        """The likelihood of observed shot records (no truth)."""
        if not gamma > 0:
            raise ConfigError("observed data need their noise standard deviation: set gamma > 0")
        y = read_observed(path, self.operator.geometry)  # the observed-data contract (physics/observed.py)
        return Likelihood(self.operator, y, gamma, self.parameterization, client=client)
