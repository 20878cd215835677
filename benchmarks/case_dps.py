"""Case 3: diffusion posterior sampling, time per step split into denoiser, VJP, physics and overhead.

One chain of :func:`geomem.posterior.dps` (Chung guidance, the default schedule) at 64² with the 5-shot
survey, for the shipped learned prior (``n50``, a diffusers UNet behind EDM preconditioning)
and for the memorized prior of 50 random models. Instrumentation, without touching the sampler:

- ``denoiser``: time inside ``denoise`` calls (the UNet forward pass, or the memorized mixture);
- ``physics``: time inside the misfit (Devito forward + adjoint-state gradient of every shot, on CPU);
- ``vjp``: for the learned prior, the rest of ``denoise_and_vjp`` (the autograd backward pass through the
  UNet); the memorized prior computes ``D`` and its analytic VJP in one fused pass, reported as
  ``denoiser+vjp`` with no split;
- ``overhead``: step wall time minus the three (the sampler's own tensor work, noise draws, bookkeeping).
  ``overhead_fraction`` sums every step; ``overhead_fraction_steady`` leaves out the first, which also holds
  one-off work (``first_step_wall``). One-off work per process (compiling, capturing a CUDA graph) falls in
  the untimed warm-up call of 2 steps (``warmup_call_s``; ``graph_captures``: captures in the warm-up and in
  the timed call).

Steps are delimited by the sampler's ``callback``; statistics are over the steps of the chain. A posterior
sample's time also includes the final denoise and misfit after the last step. Target: overhead ≤ 10 % of
the step. On a GPU machine without Devito (``physics="placeholder"``) the misfit is replaced by
``φ = ½‖x‖²`` (``F`` the identity, evaluated on the host like the real physics, with the same copies to and
from the device; negligible cost), so the network part is timed on the GPU and physics is not.

Operation counts (untimed, any device; with the placeholder physics only): a separate run under a
``TorchDispatchMode`` counts, per step and per phase (``sampler``: DPS's own update and bookkeeping;
``denoiser``; ``physics``), the ATen operations that launch work (views and allocations left out: on a GPU
each counted one is a kernel launch or a copy), the host reads of a tensor value (``item``/``float``/``bool``:
on a GPU each is a synchronization) and the copies between devices. Per-step numbers are the difference
between a run of 31 and one of 11 steps, divided by 20 (after a warm-up run), so set-up, caches filled once
and the final denoise drop out. On a launch-bound GPU step (the memorized prior at N = 50) the sampler's
share of the operations is close to its share of the time.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks.common import summarize
from geomem.priors.denoiser import Denoiser

FULL = {"size": 64, "steps": 50, "n_shots": 5, "priors": ["learned", "memorized"]}
QUICK = {"size": 64, "steps": 3, "n_shots": 1, "priors": ["learned", "memorized"]}


class Clock:
    """Accumulates seconds per component between step boundaries."""

    def __init__(self, sync):
        self.sync = sync
        self.acc = {"denoiser": 0.0, "vjp": 0.0, "physics": 0.0, "denoiser+vjp": 0.0}

    def take(self) -> dict:
        out, self.acc = self.acc, dict.fromkeys(self.acc, 0.0)
        return out


class TimedDenoiser(Denoiser):
    """A denoiser that reports the time of its own calls to a :class:`Clock`."""

    def __init__(self, inner: Denoiser, clock: Clock):
        self.inner, self.clock = inner, clock
        self.model_shape = inner.model_shape
        self.autograd_vjp = type(inner).denoise_and_vjp is Denoiser.denoise_and_vjp

    def denoise(self, x, sigma):
        self.clock.sync()
        t = time.perf_counter()
        out = self.inner.denoise(x, sigma)
        self.clock.sync()
        self.clock.acc["denoiser"] += time.perf_counter() - t
        return out

    def denoise_and_vjp(self, x, sigma, cotangent_fn):
        self.clock.sync()
        t = time.perf_counter()
        if self.autograd_vjp:  # the base class differentiates through self.denoise: split is measurable
            before = self.clock.acc["denoiser"] + self.clock.acc["physics"]
            out = Denoiser.denoise_and_vjp(self, x, sigma, cotangent_fn)
            self.clock.sync()
            inside = self.clock.acc["denoiser"] + self.clock.acc["physics"] - before
            self.clock.acc["vjp"] += time.perf_counter() - t - inside
        else:
            before = self.clock.acc["physics"]
            out = self.inner.denoise_and_vjp(x, sigma, cotangent_fn)
            self.clock.sync()
            self.clock.acc["denoiser+vjp"] += time.perf_counter() - t - (self.clock.acc["physics"] - before)
        return out


def timed_likelihood(lik, clock: Clock):
    """The same likelihood, with the time of its misfit-and-gradient calls reported to ``clock``."""
    from geomem.posterior.likelihood import Likelihood

    class Timed(Likelihood):
        def misfit_and_gradient(self, x):
            clock.sync()
            t = time.perf_counter()
            out = super().misfit_and_gradient(x)
            clock.sync()
            clock.acc["physics"] += time.perf_counter() - t
            return out

    return Timed(lik.operator, lik.y, lik.gamma, lik.parameterization)


def build(prior: str, size: int, n_shots: int, physics: str, device: str):
    from geomem.priors import MemorizedPrior
    from geomem.priors.learned import LearnedPrior

    if prior == "learned":
        den = LearnedPrior.from_pretrained("n50", device=device)
        den.unet.eval()
    else:
        gen = torch.Generator().manual_seed(0)
        den = MemorizedPrior(torch.rand(50, 1, size, size, generator=gen) * 2 - 1).to(device)
    from geomem.posterior.likelihood import Likelihood

    if physics == "placeholder":  # φ = ½‖x‖², ∇φ = x: stands in for the physics where Devito is absent
        from geomem.physics.toy import IdentityOperator

        return den, Likelihood(IdentityOperator((1, size, size)), np.zeros((1, size, size)), 1.0)
    from benchmarks.case_devito import velocity
    from geomem.geology.parameterization import Parameterization
    from geomem.physics.acoustic import AcousticOperator
    from geomem.physics.acquisition import Geometry

    op = AcousticOperator((size, size), 10.0, Geometry.surface((size, size), 10.0, n_src=n_shots))
    y = op.forward(velocity(size))
    return den, Likelihood(op, y, 1.0, Parameterization(1.5, 4.5))


#: ATen operations that launch no device work (views, metadata, allocation without initialization)
NO_LAUNCH = frozenset({"view", "_reshape_alias", "reshape", "detach", "expand", "as_strided", "t", "transpose",
                       "select", "slice", "unsqueeze", "squeeze", "alias", "permute", "unbind", "lift_fresh",
                       "_unsafe_view", "empty", "empty_like", "empty_strided", "split", "unflatten", "flatten"})


def count_ops(den: Denoiser, lik, device: str, short: int = 11, long: int = 31, kind: str = "eager") -> dict:
    """Operations, host reads and cross-device copies per DPS step, by phase (module docstring), with the update
    run as ``kind`` (``dps(step=kind)``; a CUDA graph's replay is no ATen operation: what it launches is not
    counted, its captures drop out of the difference)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from geomem.posterior.dps import DPSConfig, dps

    class Counter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.phase = ["sampler"]
            self.n: dict[tuple[str, str], int] = {}

        def add(self, kind: str) -> None:
            key = (self.phase[-1], kind)
            self.n[key] = self.n.get(key, 0) + 1

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = func.__name__.split(".")[0]
            if name == "_local_scalar_dense":
                self.add("host_reads")
            elif name not in NO_LAUNCH:
                self.add("ops")
                dst = kwargs.get("device") if name == "_to_copy" else (args[1].device if name == "copy_" else None)
                if dst is not None and torch.device(dst) != args[0].device:
                    self.add("transfers")
            return func(*args, **kwargs)

    counter = Counter()

    class CountedDenoiser(Denoiser):
        def __init__(self, inner):
            self.inner, self.model_shape = inner, inner.model_shape

        def _in(self, phase, fn, *a):
            counter.phase.append(phase)
            try:
                return fn(*a)
            finally:
                counter.phase.pop()

        def denoise(self, x, sigma):
            return self._in("denoiser", self.inner.denoise, x, sigma)

        def denoise_and_vjp(self, x, sigma, cotangent_fn):
            return self._in("denoiser", self.inner.denoise_and_vjp, x, sigma,
                            lambda d: self._in("physics", cotangent_fn, d))

    def totals(steps: int) -> dict:
        counter.n = {}
        with counter:
            dps(CountedDenoiser(den), lik, 1, DPSConfig(steps=steps), seed=0, device=device, step=kind)
        return dict(counter.n)

    totals(2)  # warm-up: one-off host reads (the prior's cached norms) stay out of the difference
    a, b = totals(short), totals(long)
    keys = sorted(set(a) | set(b))
    out: dict = {}
    for phase, kind in keys:
        out.setdefault(kind, {})[phase] = (b.get((phase, kind), 0) - a.get((phase, kind), 0)) / (long - short)
    return out


def run(quick: bool, device: str = "cpu", physics: str = "devito", priors: list[str] | None = None,
        steps: list[str] | None = None) -> dict:
    """Every prior of ``priors`` (default both) with each update kind of ``steps`` (default ``["eager"]``;
    ``dps(..., step=kind)``: ``eager``, ``compiled``, ``graph``), a row each."""
    cfg = dict(QUICK if quick else FULL)
    if priors is not None:
        unknown = sorted(set(priors) - set(FULL["priors"]))
        if unknown:
            raise ValueError(f"unknown DPS prior(s) {unknown}; choose from {', '.join(FULL['priors'])}")
        cfg["priors"] = list(priors)
    rows = []
    for prior in cfg["priors"]:
        den, misfit = build(prior, cfg["size"], cfg["n_shots"], physics, device)
        for kind in steps or ["eager"]:
            row = time_steps(den, misfit, cfg, device, kind)
            row.update({"prior": prior, "physics": physics})
            if physics == "placeholder" and kind != "compiled":  # (Devito physics: counting takes as long again)
                try:
                    row["per_step"] = count_ops(den, misfit, device, kind=kind)
                except Exception as err:  # noqa: BLE001 (the count is a side result: keep the timing row)
                    row["per_step_error"] = f"{type(err).__name__}: {err}"
            rows.append(row)
    return {"config": cfg, "rows": rows}


def time_steps(den: Denoiser, misfit, cfg: dict, device: str, kind: str = "eager") -> dict:
    """One timed chain (after a warm-up chain of 2 steps): per-step split and totals (module docstring)."""
    from geomem.posterior.dps import DPSConfig, dps

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    clock = Clock(sync)
    tden, tmis = TimedDenoiser(den, clock), timed_likelihood(misfit, clock)
    steps, marks = [], []

    def callback(i, x, x0):
        sync()
        now = time.perf_counter()
        steps.append({"wall": now - marks[-1], **clock.take()})
        marks.append(now)

    # warm-up (first calls, compile caches; the compiled step's graph for a guided step; the CUDA graph's capture)
    sync()
    t_warm = time.perf_counter()
    warm = dps(tden, tmis, 1, DPSConfig(steps=2), seed=0, device=device, step=kind)
    sync()
    t_warm = time.perf_counter() - t_warm
    clock.take()
    marks.append(time.perf_counter())
    t0 = marks[0]
    res = dps(tden, tmis, 1, DPSConfig(steps=cfg["steps"]), seed=0, device=device, callback=callback,
              step=kind)
    sync()
    total = time.perf_counter() - t0
    parts = ("denoiser", "vjp", "physics", "denoiser+vjp")
    for s in steps:
        s["overhead"] = s["wall"] - sum(s[k] for k in parts)
    wall = np.array([s["wall"] for s in steps])
    steady = steps[1:]  # the first step also holds one-off work (a CUDA graph's capture)
    row = {"device": device, "steps": cfg["steps"], "n_shots": cfg["n_shots"], "size": cfg["size"],
           "step_kind": kind, "step_ran": res.info["step"],
           "warmup_call_s": t_warm, "graph_captures": [warm.info.get("graph_captures"), res.info.get("graph_captures")],
           "step_wall": summarize(list(wall)),
           "seconds_per_sample": total, "chains_per_hour": 3600.0 / total}
    for k in (*parts, "overhead"):
        vals = [s[k] for s in steps]
        row[f"time_{k}"] = summarize(vals)
        row[f"{k}_fraction"] = float(np.sum(vals) / np.sum(wall))
        row[f"{k}_fraction_steady"] = float(np.sum([s[k] for s in steady]) / np.sum(wall[1:]))
    row["first_step_wall"] = float(wall[0])
    row["overhead_target_met"] = bool(row["overhead_fraction"] <= 0.10)
    row["overhead_target_met_steady"] = bool(row["overhead_fraction_steady"] <= 0.10)
    return row


def table(result: dict) -> list[list[str]]:
    out = []
    for r in result["rows"]:
        split = ", ".join(f"{k} {100 * r[f'{k}_fraction']:.0f}%" for k in
                          ("denoiser", "vjp", "denoiser+vjp", "physics", "overhead") if r[f"{k}_fraction"] > 0
                          or k == "overhead")
        name = f"dps {r['prior']} {r['device']} {r['step_ran']} step"
        split += (f" (after step 1: overhead {100 * r['overhead_fraction_steady']:.0f}%; step 1 "
                  f"{1e3 * r['first_step_wall']:.3g} ms)" if "overhead_fraction_steady" in r else "")
        out.append([name, f"{r['size']}² {r['n_shots']} shots ({r['physics']})",
                    f"{1e3 * r['step_wall']['median']:.4g} ms/step [{1e3 * r['step_wall']['q1']:.4g}-"
                    f"{1e3 * r['step_wall']['q3']:.4g}]", split,
                    f"{r['seconds_per_sample']:.3g} s/sample ({r['steps']} steps)",
                    f"{r['chains_per_hour']:.0f} chains/h" + (_counts(r["per_step"]) if "per_step" in r else "")])
    return out


def _counts(per_step: dict) -> str:
    ops, reads = per_step.get("ops", {}), per_step.get("host_reads", {})
    return (f"; ops/step sampler {ops.get('sampler', 0):.3g}, denoiser {ops.get('denoiser', 0):.3g}; "
            f"host reads/step sampler {reads.get('sampler', 0):.3g}, denoiser {reads.get('denoiser', 0):.3g}")
