"""Figures of ``geomem rules`` from its ``metrics.json`` (no recomputation).

- ``memorized_vs_epsilon.png``: memorized fraction of samples near exceptions and near rule models against ε,
  one line per capacity, the nulls (held-out models of each kind) dashed;
- ``coverage_vs_copies.png``: samples that reproduce each exception against its number of copies (frequency);
- ``generalization_vs_epsilon.png``: learned/memorized denoising loss on held-out rule models against ε
  (below 1: the prior generalizes the rule better than a lookup of its training set).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from geomem.report import save_figure


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path, dpi=110)


def _series(results: dict, key, alpha: float | None = None) -> dict[int, tuple[list[float], list[float]]]:
    out: dict[int, tuple[list[float], list[float]]] = {}
    for r in sorted(results.values(), key=lambda r: (r["capacity"], r["epsilon"])):
        if alpha is not None and r["alpha"] != alpha:
            continue
        xs, ys = out.setdefault(r["capacity"], ([], []))
        xs.append(r["epsilon"])
        ys.append(key(r))
    return out


def rules_figures(metrics: dict, folder: str | Path) -> list[Path]:
    folder = Path(folder)
    res = metrics["results"]
    alpha = min(r["alpha"] for r in res.values())
    paths = []
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, kind in zip(axes, ("exception", "rule"), strict=True):
        for c, (x, y) in _series(res, lambda r, k=kind: r["memorization"][f"memorized_{k}"], alpha).items():
            ax.plot(x, y, "o-", label=f"capacity {c}")
        for c, (x, y) in _series(res, lambda r, k=kind: r["memorization"][f"null_{k}"], alpha).items():
            ax.plot(x, y, "k--", alpha=0.5, label="null (held-out)" if c == min(r["capacity"] for r in res.values())
                    else None)
        ax.set(xlabel="exception fraction ε", title=f"samples nearest to a {kind}", ylim=(-0.02, 1.02))
        ax.legend(fontsize=8)
    axes[0].set_ylabel("memorized fraction (d1/mean(d2..dk) < 0.5)")
    fig.suptitle(f"α = {alpha:g}")
    paths.append(_save(fig, folder / "memorized_vs_epsilon.png"))

    fig = Figure(figsize=(5, 3.6), layout="constrained")

    ax = fig.subplots()
    for _, r in sorted(res.items()):
        m = r["memorization"]
        if m["exception_copies"]:
            ax.plot(m["exception_copies"], m["exception_hits"], "o", alpha=0.7,
                    label=f"ε={r['epsilon']:g}, α={r['alpha']:g}, c={r['capacity']}")
    ax.set(xlabel="copies of the exception in the training set", ylabel="samples reproducing it")
    ax.legend(fontsize=7)
    paths.append(_save(fig, folder / "coverage_vs_copies.png"))

    fig = Figure(figsize=(5, 3.6), layout="constrained")

    ax = fig.subplots()
    for s in next(iter(res.values()))["generalization"]:
        for c, (x, y) in _series(res, lambda r, s=s: r["generalization"][s]["gen_ratio"], alpha).items():
            ax.plot(x, y, "o-", label=f"capacity {c}, σ={s}")
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set(xlabel="exception fraction ε", ylabel="learned / memorized loss, held-out rules", yscale="log")
    ax.legend(fontsize=8)
    paths.append(_save(fig, folder / "generalization_vs_epsilon.png"))
    return paths
