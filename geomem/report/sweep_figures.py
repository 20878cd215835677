"""Figures and ``report.html`` of ``geomem sweep``, drawn from its run folder and metrics alone.

- ``rate_vs_n.png``: memorized fraction of unconditional samples at the last checkpoint against the training-set
  size N (log axis), one line per UNet width, with 95% bootstrap intervals; the held-out and leave-one-out null
  rates of the same N dashed beside them.
- ``rate_vs_step.png``: the same rate against the optimizer step, one panel per N.
- ``posterior_n<N>_w<w>_s<step>.png``: the learned prior's posterior samples with the smallest ``d1/mean(d2..dk)`` above
  their nearest training models (from ``posteriors/n<N>_w<w>_s<step>.npz``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from geomem.report import save_figure
from geomem.report.compare_figures import memorized_pairs
from geomem.report.html import Report

_NULL_STYLE = {"heldout": ("held-out null", ":"), "leave_one_out": ("leave-one-out null", "--")}


def _save(fig: Figure, path: Path) -> Path:
    return save_figure(fig, path, dpi=110)


def _rate(row: dict, criterion: str, group: str) -> dict:
    return row["memorization"]["rates"][criterion][group]


def _errorbar(ax, xs, rates: list[dict], **kw) -> None:
    y = np.array([r["rate"] for r in rates])
    err = np.array([[r["rate"] - r["low"] for r in rates], [r["high"] - r["rate"] for r in rates]])
    ax.errorbar(xs, y, yerr=err, capsize=3, marker="o", **kw)


def rate_vs_n(sample_rows: list[dict], criterion: str) -> Figure:
    """Rate at each prior's last checkpoint against N, per width, nulls dashed (same colour per width)."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    widths = sorted({r["width"] for r in sample_rows})
    for j, w in enumerate(widths):
        last = {}
        for r in sample_rows:
            if r["width"] == w and r["step"] >= last.get(r["n"], {"step": -1})["step"]:
                last[r["n"]] = r
        ns = sorted(last)
        steps = sorted({last[n]["step"] for n in ns})
        _errorbar(ax, ns, [_rate(last[n], criterion, "samples") for n in ns], color=f"C{j}",
                  label=f"samples, width {w} (step {'/'.join(map(str, steps))})")
        for n in ns:  # a prior stopped early (e.g. at a time limit) says at which step its point was taken
            if len(steps) > 1 and last[n]["step"] != steps[-1]:
                ax.annotate(f"step {last[n]['step']}", (n, _rate(last[n], criterion, "samples")["rate"]),
                            textcoords="offset points", xytext=(6, 6), fontsize=7, color=f"C{j}")
    ref = {}
    for r in sample_rows:
        ref.setdefault(r["n"], r)
    ns = sorted(ref)
    for g, (label, ls) in _NULL_STYLE.items():
        if all(g in ref[n]["memorization"]["rates"][criterion] for n in ns):
            ax.plot(ns, [_rate(ref[n], criterion, g)["rate"] for n in ns], ls=ls, color="0.4", label=label)
    ax.set_xscale("log")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("training-set size N")
    ax.set_ylabel(f"memorized fraction ({criterion})")
    ax.set_title("unconditional samples: memorization against N (95% bootstrap CI)")
    ax.legend(fontsize=8)
    return fig


def rate_vs_step(sample_rows: list[dict], criterion: str) -> Figure:
    """Rate against optimizer step, one panel per N, one line per width; the N's nulls as horizontal lines."""
    ns = sorted({r["n"] for r in sample_rows})
    widths = sorted({r["width"] for r in sample_rows})
    fig = Figure(figsize=(4.2 * len(ns), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(ns), sharey=True))
    for ax, n in zip(axes, ns, strict=True):
        for j, w in enumerate(widths):
            rows = sorted((r for r in sample_rows if r["n"] == n and r["width"] == w), key=lambda r: r["step"])
            if rows:
                _errorbar(ax, [r["step"] for r in rows], [_rate(r, criterion, "samples") for r in rows],
                          color=f"C{j}", label=f"width {w}")
        ref = next(r for r in sample_rows if r["n"] == n)
        for g, (label, ls) in _NULL_STYLE.items():
            if g in ref["memorization"]["rates"][criterion]:
                ax.axhline(_rate(ref, criterion, g)["rate"], ls=ls, color="0.4", label=label)
        ax.set_title(f"N = {n}")
        ax.set_xlabel("optimizer step")
        ax.set_ylim(-0.03, 1.03)
    axes[0].set_ylabel(f"memorized fraction ({criterion})")
    axes[-1].legend(fontsize=8)
    fig.suptitle("unconditional samples: memorization along training")
    return fig


def posterior_pairs(path: Path, spacing: float, vmin: float, vmax: float, title: str, kind: str = "learned") -> Figure:
    """Posterior samples of ``kind`` above their nearest training models, from a ``posteriors/*.npz`` file."""
    with np.load(path) as f:
        keep = f[f"{kind}__kept"].astype(bool)
        samples = f[f"{kind}__velocity"][keep]
        return memorized_pairs(samples, f[f"{kind}__nearest_velocity"], f[f"{kind}__samples__ratio_k"],
                               f[f"{kind}__samples__nearest"], spacing, vmin, vmax, title)


def _training_table(metrics: dict) -> tuple[list[str], list[list]]:
    header = ["N", "width", "parameters", "checkpoints", "final loss", "wall (s)", "models/s", "device"]
    rows = [[r["n"], r["width"], r["parameters"] or "n/a", ", ".join(map(str, r["checkpoints"])),
             r["final_loss"] if r["final_loss"] is not None else "n/a",
             r["wall_s"] if r["wall_s"] is not None else "n/a",
             r["models_per_s"] if r["models_per_s"] is not None else "n/a", r["device"] or "n/a"]
            for r in metrics["training"]]
    return header, rows


def sample_table(metrics: dict) -> tuple[list[str], list[list]]:
    """N × width × step → sample rate [CI], null rates, median ratio, distinct nearest models."""
    c = metrics["criterion"]
    header = ["N", "width", "step", "samples", f"rate ({c})", "held-out null", "leave-one-out null",
              "median d1/mean(d2..dk)", "distinct nearest"]
    rows = []
    for r in metrics["samples"]:
        rates = r["memorization"]["rates"][c]
        fmt = lambda x: f"{x['rate']:.3f} [{x['low']:.3f}, {x['high']:.3f}]"  # noqa: E731
        rows.append([r["n"], r["width"], r["step"], r["n_samples"], fmt(rates["samples"]), fmt(rates["heldout"]),
                     fmt(rates["leave_one_out"]), round(r["memorization"]["median_ratio_k"]["samples"], 3),
                     r["distinct_nearest"]])
    return header, rows


def posterior_table(metrics: dict) -> tuple[list[str], list[list]]:
    """N × width × posterior → rate [CI], RMSE, mean std, coverage@0.9, misfit/noise."""
    c = metrics["criterion"]
    header = ["N", "width", "step", "posterior", f"rate ({c})", "held-out null", "RMSE (km/s)", "mean std (km/s)",
              "coverage@0.9", "misfit/noise", "distinct nearest"]
    rows = []
    for r in metrics["posteriors"]:
        s, h = r["rates"]["samples"], r["rates"]["heldout"]
        learned = r["posterior"] == "learned"
        rows.append([r["n"], r["width"] if learned else "-", r["step"] if learned else "-", r["posterior"],
                     f"{s['rate']:.3f} [{s['low']:.3f}, {s['high']:.3f}]", f"{h['rate']:.3f}", r["rmse"],
                     r["mean_std"], r["coverage@0.9"], r["misfit/noise"] if r["misfit/noise"] is not None else "n/a",
                     r["distinct_nearest"] if r["distinct_nearest"] is not None else "n/a"])
    return header, rows


def write_report(out: str | Path, metrics: dict) -> Path:
    """Draw every figure into ``out/figures`` and write ``out/report.html``; returns the report's path."""
    from geomem.config import load_toml

    out = Path(out)
    cfg = load_toml(out / "config.toml")
    ms = cfg["model_set"]
    report = Report(f"geomem sweep: N = {metrics['train_sizes']}, widths = {metrics['widths']}")
    report.add_heading("Training")
    report.add_table(*reversed(_training_table(metrics)))
    c = metrics["criterion"]
    if metrics["samples"]:
        report.add_heading("Unconditional samples")
        report.add_table(*reversed(sample_table(metrics)), caption="rates with 95% bootstrap intervals; nulls beside")
        for name, fig in (("rate_vs_n.png", rate_vs_n(metrics["samples"], c)),
                          ("rate_vs_step.png", rate_vs_step(metrics["samples"], c))):
            report.add_figure(_save(fig, out / "figures" / name), name)
    if metrics["posteriors"]:
        report.add_heading("Posteriors on the held-out truth (learned DPS beside its fully memorized counterparts)")
        report.add_table(*reversed(posterior_table(metrics)), caption="memorized, linearized and lookup depend on N "
                         "only (one row per N); learned: one row per width")
        for r in metrics["posteriors"]:
            key = f"n{r['n']}_w{r['width']}_s{r['step']}"
            path = out / "posteriors" / f"{key}.npz"
            if r["posterior"] != "learned" or not path.is_file():
                continue
            fig = posterior_pairs(path, ms.get("spacing", 10.0), ms.get("vmin", 1.5), ms.get("vmax", 4.5),
                                  f"learned posterior, N = {r['n']}, width {r['width']}, step {r['step']}: closest "
                                  f"samples and their nearest training models")
            report.add_figure(_save(fig, out / "figures" / f"posterior_{key}.png"), path.name)
    report.add_json_block({k: metrics[k] for k in ("stage_wall_s", "device")}, "stage wall times")
    return report.write(out / "report.html")
