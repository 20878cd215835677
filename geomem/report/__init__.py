"""geomem.report: matplotlib figures per capability and the self-contained HTML report."""

from __future__ import annotations

from pathlib import Path


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` (a ``matplotlib.figure.Figure``; geomem never uses pyplot, so no backend is switched) as a
    PNG at ``path`` atomically (parents created)."""
    from geomem.runs import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return path
