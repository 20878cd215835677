"""DPS's fused update replayed as a CUDA graph: four launches and one replay per step instead of eleven launches.

On a GPU, a DPS step with a cheap prior (the memorized prior of a small training set) is bound by kernel launches
from the host, and the sampler's own update (:func:`geomem.posterior.dps._device_step`: the DDIM/ancestral move,
the guidance term, the divergence rule and the freeze of diverged chains) is eleven of them. Here that update
is captured once per guidance rule (at most two graphs: the unguided steps before ``guidance_start`` and the
guided ones) and replayed every step. Per step the host then launches: three copies into the graph's input
buffers (``x̂₀``, the guidance vector, ``φ``), the noise draw of each chain straight into the graph's noise buffer
(:class:`~geomem.posterior.chains.ChainNoise`, the same per-chain generators and so the same draws as the eager
step), and one graph replay. The step's coefficients ``(w, s, f, t)`` are read inside the graph from the run's
table by a step counter that the graph itself advances, so no per-step number crosses from the host.

What the graph computes is :func:`_device_step` itself, kernel for kernel (a replay runs the captured kernels on
the same buffers), so its states and divergence flags equal those of ``_device_step`` run eagerly on the same
inputs, bit for bit; ``tests/posterior_samplers/test_dps_step.py`` checks that on a GPU.

Semantics that differ from the eager step: the state ``x`` lives in one buffer that every step overwrites (the
``callback`` of :func:`~geomem.posterior.dps.dps` receives that buffer: clone it to keep it), and the divergence
flags are OR-ed into one ``(B,)`` buffer inside the graph rather than kept per step.

Capturing costs a few milliseconds (a warm-up of the update, the capture, the graph's instantiation), paid at the
first step of a rule. :func:`graphed_step` keeps the last :data:`CACHED_STEPS` graphed steps of this thread, by
device, dtype, batch shape, number of steps (:func:`table_rows`), noise and clamp rule, and hands a later run of
the same shapes the kept one with its buffers reset (the new run's first state, step table and generators copied
in): its graphs are replayed from the first step, so a process pays each capture once, as ``torch.compile`` pays
its compilation. :func:`clear_cache` frees them.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict

import torch

from geomem.errors import ValueRangeError
from geomem.posterior.chains import ChainNoise


class GraphedStep:
    """The DPS update of :func:`geomem.posterior.dps._device_step` as CUDA graphs (module docstring).

    ``x`` (B, *model_shape): the first state (copied into the state buffer); ``table`` (K, 4) float64 on the
    device: ``(w, s, f, t)`` of step ``k`` in row ``k``; ``noise``: the chains' generators, or ``None`` for a
    deterministic run; ``clamp``: whether the velocity-clamp rule runs (a parameterized likelihood).
    Call it once per step, in order, from step 0. If a capture fails (a driver or a torch build without graph
    support for an operation) it warns and runs that rule's update eagerly from then on; ``replayed`` says
    whether every step so far was a replay, ``captures`` how many graphs this run captured. :meth:`reset` starts
    another run of the same shapes on the same buffers and graphs.
    """

    def __init__(self, x: torch.Tensor, table: torch.Tensor, noise: ChainNoise | None, clamp: bool):
        if x.device.type != "cuda":
            raise ValueRangeError(f"the CUDA-graph DPS step needs a CUDA device, got {x.device}; "
                                  f"use step='eager' (or 'compiled') on this device")
        self.x = x.detach().clone()
        self.table = torch.zeros((table_rows(len(table)), table.shape[1]), dtype=table.dtype, device=table.device)
        self.table[: len(table)] = table
        self.noise, self.clamp = noise, clamp
        self.z = torch.empty_like(self.x) if noise is not None else None
        self.bad = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        self.counter = torch.zeros(1, dtype=torch.long, device=x.device)  # the step the next replay computes
        self.x0 = self.guide = self.phi = self.limit = None  # made at the first call (their dtypes come from it)
        self.graphs: dict[str | None, torch.cuda.CUDAGraph | None] = {}
        self.step = self.captures = 0
        self.replayed = self.in_use = True

    def reset(self, x: torch.Tensor, table: torch.Tensor, noise: ChainNoise | None) -> None:
        """Start a new run on these buffers and graphs: ``x`` (of this step's shape) and ``table`` (at most
        :func:`table_rows` of its length rows) copied in."""
        self.x.copy_(x)
        self.table[: len(table)].copy_(table)
        self.noise = noise
        self.bad.zero_()
        self.counter.zero_()
        self.step = self.captures = 0
        self.replayed = self.in_use = True

    def release(self) -> None:
        """The run is over: :func:`graphed_step` may hand these buffers to the next run (its generators dropped)."""
        self.in_use = False
        self.noise = None

    def _inputs(self, rule: str | None):
        guide = self.guide if rule is not None else None
        return self.x, self.x0, self.z, guide, self.phi, self.limit

    def _capture(self, rule: str | None) -> torch.cuda.CUDAGraph | None:
        from geomem.posterior.dps import _device_step

        x, x0, z, guide, phi, limit = self._inputs(rule)

        def body():
            coef = torch.index_select(self.table, 0, self.counter)[0]
            new, bad = _device_step(x, x0, z, guide, phi, limit, coef, rule, self.clamp)
            x.copy_(new)
            self.bad.logical_or_(bad)
            self.counter.add_(1)

        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up: a pure call, no buffer of the run is written
                _device_step(x, x0, z, guide, phi, limit, self.table[self.step], rule, self.clamp)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                body()
            return graph
        except Exception as err:  # noqa: BLE001 (no graph support here: the eager update below is the same one)
            warnings.warn(f"capturing the DPS step as a CUDA graph failed ({type(err).__name__}: {err}); running "
                          f"that step eagerly", RuntimeWarning, stacklevel=3)
            return None

    def __call__(self, step: int, x: torch.Tensor, x0: torch.Tensor, guide: torch.Tensor | None,
                 phi: torch.Tensor, phi_limit: torch.Tensor, rule: str | None) -> torch.Tensor:
        """The state after step ``step`` (the state buffer itself); ``guide``: the guidance vector of ``rule``
        (``J_Dᵀ∇φ`` for ``chung``/``likelihood``, ``∇φ`` for ``normalized``, ``None`` unguided)."""
        from geomem.posterior.dps import _device_step

        if step != self.step:
            raise ValueRangeError(f"the graphed DPS step expected step {self.step}, got {step}: call it in order")
        if step == 0 and (self.x0 is None or (x0.dtype, phi.dtype, phi.shape) != (self.x0.dtype, self.phi.dtype,
                                                                                    self.phi.shape)):
            self.x0, self.phi = torch.empty_like(x0), torch.empty_like(phi)
            self.limit = torch.empty_like(phi_limit)
            self.graphs.clear()  # captured on the old buffers
        if step == 0:
            self.limit.copy_(phi_limit)
        if rule is not None and self.guide is None:
            self.guide = torch.empty_like(self.x)  # in the state's dtype (copy_ below casts)
        if x is not self.x:  # the first step only: later states are the buffer itself
            self.x.copy_(x)
        self.x0.copy_(x0)
        self.phi.copy_(phi)
        if rule is not None:
            self.guide.copy_(guide)
        if self.noise is not None:
            self.noise.normal(out=self.z)
        if rule not in self.graphs:
            self.graphs[rule] = self._capture(rule)
            self.captures += 1
        graph = self.graphs[rule]
        if graph is not None:
            graph.replay()
        else:
            self.replayed = False
            new, bad = _device_step(*self._inputs(rule), self.table[step], rule, self.clamp)
            self.x.copy_(new)
            self.bad.logical_or_(bad)
            self.counter.add_(1)
        self.step += 1
        return self.x


def table_rows(steps: int) -> int:
    """Rows of a graphed step's coefficient table: ``steps`` rounded up to a power of two, at least 64 (runs of
    up to that many steps share the buffer the graphs read)."""
    return max(64, 1 << (max(1, int(steps)) - 1).bit_length())


#: graphed steps kept per thread (:func:`graphed_step`)
CACHED_STEPS = 8
_LOCAL = threading.local()


def _cache() -> OrderedDict:
    if not hasattr(_LOCAL, "steps"):
        _LOCAL.steps = OrderedDict()
    return _LOCAL.steps


def graphed_step(x: torch.Tensor, table: torch.Tensor, noise: ChainNoise | None, clamp: bool) -> GraphedStep:
    """A :class:`GraphedStep` for a run starting at ``x`` with ``table``: this thread's kept one of the same
    device, dtype, shapes, noise and clamp rule, reset for the run, when it is not in use; else a new one, which
    is kept (in place of one in use, or of the least recently used past :data:`CACHED_STEPS`)."""
    key = (x.device, x.dtype, tuple(x.shape), table_rows(len(table)), noise is not None, bool(clamp))
    cache = _cache()
    kept = cache.get(key)
    if kept is not None and not kept.in_use:
        kept.reset(x, table, noise)
        cache.move_to_end(key)
        return kept
    new = GraphedStep(x, table, noise, clamp)
    cache[key] = new
    cache.move_to_end(key)
    while len(cache) > CACHED_STEPS:
        cache.popitem(last=False)
    return new


def clear_cache() -> None:
    """Forget this thread's kept graphed steps (their buffers and graphs are freed once no run holds them)."""
    _cache().clear()
