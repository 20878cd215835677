"""One result shape for every posterior: samplers, closed forms and references all return a :class:`PosteriorSamples`.

Samples are in the prior's (normalized) coordinates, ``(S, *model_shape)`` float64. Beside them:

- ``misfit``: ``‖y − F(m(x_s))‖`` per sample (data units); ``misfit_over_noise`` divides by ``γ √M``
  (≈ 1 for draws of the posterior; ≫ 1 means the sampler did not fit the data);
- ``weights``: importance weights of the samples (SMC, importance sampling), normalized; ``None`` means equal;
- ``component_weights`` ``(N,)`` (and optionally ``component_means``): the posterior mass of each training
  model for mixture posteriors (lookup, linearized, exact memorized);
- ``diverged``: chains that blew up (non-finite, or driven to the velocity clamp), excluded by
  :meth:`PosteriorSamples.valid`;
- ``history``: ``‖y − F(x̂₀)‖`` along the reverse process ``(K, S)`` where a sampler records it;
- ``info``: provenance and costs — ``method``, settings, ``gradients_per_sample`` and
  ``forwards_per_sample`` (PDE solves), ``wall_time_s``, ``ess`` where defined.

Metrics and reports read only this shape.

>>> import numpy as np
>>> post = PosteriorSamples("example", samples=np.zeros((4, 2)), misfit=np.full(4, 3.0), gamma=1.5, n_data=4)
>>> post.misfit_over_noise, post.ess
(array([1., 1., 1., 1.]), 4.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geomem.errors import ShapeError


@dataclass
class PosteriorSamples:
    """Samples of a posterior and what is known about them (see the module docstring)."""

    method: str
    samples: np.ndarray
    misfit: np.ndarray
    gamma: float
    n_data: int
    weights: np.ndarray | None = None
    component_weights: np.ndarray | None = None
    component_means: np.ndarray | None = None
    diverged: np.ndarray | None = None
    history: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.samples = np.asarray(self.samples, dtype=np.float64)
        self.misfit = np.asarray(self.misfit, dtype=np.float64).reshape(-1)
        s = len(self.samples)
        if self.misfit.shape != (s,):
            raise ShapeError(f"misfit must have one value per sample ({s}), got {self.misfit.shape}")
        if self.diverged is None:
            self.diverged = np.zeros(s, dtype=bool)
        self.diverged = np.asarray(self.diverged, dtype=bool).reshape(-1)
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=np.float64).reshape(-1)
            if w.shape != (s,):
                raise ShapeError(f"weights must have one value per sample ({s}), got {w.shape}")
            self.weights = w / w.sum()

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    @property
    def misfit_over_noise(self) -> np.ndarray:
        """``‖y − F(m(x_s))‖ / (γ √M)`` per sample."""
        return self.misfit / (self.gamma * np.sqrt(self.n_data))

    @property
    def ess(self) -> float:
        """Effective sample size ``(Σ w)² / Σ w²`` (the number of samples when unweighted)."""
        if self.weights is None:
            return float(self.n_samples)
        return float(1.0 / np.sum(self.weights**2))

    def valid(self) -> PosteriorSamples:
        """The same result without diverged chains."""
        keep = ~self.diverged
        return PosteriorSamples(
            self.method, self.samples[keep], self.misfit[keep], self.gamma, self.n_data,
            weights=None if self.weights is None else self.weights[keep],
            component_weights=self.component_weights, component_means=self.component_means,
            diverged=self.diverged[keep], history=None if self.history is None else self.history[:, keep],
            info=dict(self.info),
        )

    def mean(self) -> np.ndarray:
        """Weighted sample mean of the valid samples, ``model_shape``."""
        v = self.valid()
        w = np.full(v.n_samples, 1.0 / v.n_samples) if v.weights is None else v.weights
        return np.tensordot(w, v.samples, axes=1)

    def nearest_training(self, train: np.ndarray) -> np.ndarray:
        """Index of the nearest training model (Euclidean, prior coordinates) of every sample, ``(S,)``."""
        from geomem.metrics.memorization import nearest_neighbours

        return nearest_neighbours(self.samples, np.asarray(train, dtype=np.float64), k=1)[1][:, 0]

    def assignment_frequencies(self, train: np.ndarray) -> np.ndarray:
        """Weighted fraction of valid samples whose nearest training model is ``n``, ``(N,)``."""
        v = self.valid()
        idx = v.nearest_training(train)
        w = np.full(v.n_samples, 1.0 / v.n_samples) if v.weights is None else v.weights
        return np.bincount(idx, weights=w, minlength=len(train))

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Arrays for an ``.npz`` (keys prefixed ``prefix``); numeric ``info`` entries are kept as ``info__<name>``,
        the others (``method`` and strings) are not."""
        out = {"samples": self.samples, "misfit": self.misfit, "diverged": self.diverged,
               "gamma": np.float64(self.gamma), "n_data": np.int64(self.n_data)}
        for name in ("weights", "component_weights", "component_means", "history"):
            value = getattr(self, name)
            if value is not None:
                out[name] = np.asarray(value)
        for name, value in self.info.items():
            a = np.asarray(value)
            if a.dtype.kind in "biuf":
                out[f"info__{name}"] = a
        return {f"{prefix}{k}": v for k, v in out.items()}

    @classmethod
    def from_arrays(cls, arrays: dict, method: str, prefix: str = "") -> PosteriorSamples:
        """Inverse of :meth:`to_arrays` (scalar info entries come back as Python numbers)."""
        get = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        optional = {k: get[k] for k in ("weights", "component_weights", "component_means", "history") if k in get}
        info = {k[len("info__"):]: (v.item() if np.ndim(v) == 0 else v) for k, v in get.items()
                if k.startswith("info__")}
        return cls(method, get["samples"], get["misfit"], float(get["gamma"]), int(get["n_data"]),
                   diverged=get["diverged"], info=info, **optional)
