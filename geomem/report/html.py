"""A self-contained HTML report: one file, figures embedded as base64 ``data:`` URIs.

    report = Report("compare: N = 50")
    report.add_heading("Memorization")
    report.add_table(rows, header)
    report.add_figure(fig, "ratio histograms with nulls")      # a matplotlib Figure or a PNG path
    report.add_json_block(metrics, "metrics.json")
    report.write(run.file("report.html"))                       # atomic

Every piece of text is HTML-escaped; the file needs no network and no other file to display.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from geomem.errors import DataFileError, ShapeError, ValueRangeError
from geomem.runs import write_text

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #bbb; padding: .3em .6em; text-align: left; font-variant-numeric: tabular-nums; }
th { background: #eee; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption, caption { color: #444; font-size: 0.92em; margin: .4em 0; caption-side: top; text-align: left; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: 0.85em; }
"""


def _plain(obj: Any) -> Any:
    """JSON fallback for NumPy arrays/scalars and paths."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise ShapeError(f"cannot show a {type(obj).__name__} as JSON; pass numbers, strings, lists, dicts or arrays")


class Report:
    """An HTML document built block by block; :meth:`write` saves it atomically as one file."""

    def __init__(self, title: str):
        self.title = str(title)
        self._blocks: list[str] = []

    def add_heading(self, text: str, level: int = 2) -> None:
        if level not in (1, 2, 3, 4):
            raise ValueRangeError(f"heading level must be 1, 2, 3 or 4, got {level!r}")
        self._blocks.append(f"<h{level}>{html.escape(str(text))}</h{level}>")

    def add_paragraph(self, text: str) -> None:
        self._blocks.append(f"<p>{html.escape(str(text))}</p>")

    def add_table(self, rows: list[list[Any]] | list[tuple[Any, ...]], header: list[str],
                  caption: str | None = None) -> None:
        """A table of ``rows`` (each as long as ``header``); floats shown with 4 significant digits."""
        width = len(header)
        for i, row in enumerate(rows):
            if len(row) != width:
                raise ShapeError(f"table row {i} has {len(row)} cells but the header has {width}")

        def cell(v: Any) -> str:
            text = f"{v:.4g}" if isinstance(v, float) else str(v)
            return html.escape(text)

        parts = ["<table>"]
        if caption:
            parts.append(f"<caption>{html.escape(caption)}</caption>")
        parts.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>")
        parts.append("</table>")
        self._blocks.append("\n".join(parts))

    def add_figure(self, figure: Any, caption: str, alt: str | None = None, dpi: int = 110) -> None:
        """Embed a matplotlib ``Figure`` (rendered to PNG at ``dpi``) or an existing PNG file."""
        if isinstance(figure, (str, Path)):
            path = Path(figure)
            if not path.is_file():
                raise DataFileError(f"figure file {path} does not exist; pass an existing PNG or a matplotlib Figure")
            data = path.read_bytes()
            if not data.startswith(_PNG_SIGNATURE):
                raise DataFileError(f"figure file {path} is not a PNG; save figures as .png")
        elif hasattr(figure, "savefig"):
            buf = io.BytesIO()
            figure.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
            data = buf.getvalue()
        else:
            raise ShapeError(f"add_figure takes a PNG path or a matplotlib Figure, got {type(figure).__name__}")
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        alt_text = html.escape(alt if alt is not None else caption, quote=True)
        self._blocks.append(
            f'<figure><img src="{uri}" alt="{alt_text}"><figcaption>{html.escape(caption)}</figcaption></figure>'
        )

    def add_json_block(self, data: Any, caption: str | None = None) -> None:
        """Pretty-printed JSON (NumPy arrays and scalars and paths converted to plain values)."""
        text = json.dumps(data, indent=2, default=_plain)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._blocks.append(f"<figure>{cap}<pre>{html.escape(text)}</pre></figure>")

    @property
    def n_figures(self) -> int:
        return sum(block.startswith("<figure><img") for block in self._blocks)

    def to_html(self) -> str:
        title = html.escape(self.title)
        body = "\n".join(self._blocks)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n{body}\n"
            "</body>\n</html>\n"
        )

    def write(self, path: str | Path) -> Path:
        """Write the report to ``path`` atomically (a killed process never leaves a partial file)."""
        return write_text(path, self.to_html())
