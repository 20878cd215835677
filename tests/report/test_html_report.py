"""The self-contained HTML report: escaping, embedded PNGs, atomic writes, bad input."""

import base64
import io
import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from geomem.errors import DataFileError, ShapeError, ValueRangeError
from geomem.report.html import Report

PNG = b"\x89PNG\r\n\x1a\n"


def small_figure():
    fig = Figure(figsize=(2, 2))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1])
    return fig


def embedded_pngs(text):
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def test_figures_are_embedded_pngs(tmp_path):
    png_path = tmp_path / "f.png"
    small_figure().savefig(png_path)
    r = Report("t")
    r.add_figure(small_figure(), "from a figure")
    r.add_figure(png_path, "from a file")
    text = r.to_html()
    pngs = embedded_pngs(text)
    assert len(pngs) == 2 == r.n_figures and all(p.startswith(PNG) for p in pngs)
    assert pngs[1] == png_path.read_bytes()
    assert "src=\"http" not in text and "src=\"file" not in text  # self-contained


def test_text_is_escaped_and_tables_formatted(tmp_path):
    r = Report("a <b> & c")
    r.add_heading("<script>alert(1)</script>")
    r.add_paragraph("x < y")
    r.add_table([["ratio", 0.123456789, 3], ["<i>", np.float64(2.0), "ok"]], ["name", "value", "n"], caption="c&d")
    r.add_json_block({"a": np.arange(3), "b": np.float32(1.5)}, caption="metrics")
    text = r.to_html()
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "<title>a &lt;b&gt; &amp; c</title>" in text and "x &lt; y" in text
    assert "<td>0.1235</td>" in text and "<td>&lt;i&gt;</td>" in text and "c&amp;d" in text
    assert "[\n    0,\n    1,\n    2\n  ]" in text and "1.5" in text
    out = r.write(tmp_path / "sub" / "report.html")
    assert out.read_text(encoding="utf-8") == text
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary left behind


def test_failed_write_leaves_old_file(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    target.write_text("old")
    r = Report("t")
    r.add_paragraph("new")
    monkeypatch.setattr(Report, "to_html", lambda self: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        r.write(target)
    assert target.read_text() == "old"


def test_bad_input(tmp_path):
    r = Report("t")
    with pytest.raises(DataFileError, match="does not exist"):
        r.add_figure(tmp_path / "missing.png", "x")
    (tmp_path / "not.png").write_text("hello")
    with pytest.raises(DataFileError, match="not a PNG"):
        r.add_figure(tmp_path / "not.png", "x")
    with pytest.raises(ShapeError):
        r.add_figure(io.BytesIO(), "x")
    with pytest.raises(ShapeError, match="row 0 has 1 cells"):
        r.add_table([[1]], ["a", "b"])
    with pytest.raises(ValueRangeError):
        r.add_heading("x", level=7)
    with pytest.raises(ShapeError, match="cannot show"):
        r.add_json_block({"x": object()})
