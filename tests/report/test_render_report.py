"""The report opened in real headless Chromium: every figure decodes; a broken one is caught."""

import subprocess
import sys
from pathlib import Path

import pytest

from geomem.report.html import Report
from geomem.report.metric_figures import calibration_plot, posterior_panels, ratio_histograms

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "render_report.py"
sys.path.insert(0, str(SCRIPT.parent))
from render_report import find_chromium  # noqa: E402

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="Chromium is not installed (apt-get install -y chromium)"
)


def render(path, *extra):
    return subprocess.run([sys.executable, str(SCRIPT), str(path), *extra], capture_output=True, text=True,
                          timeout=300, check=False)


def test_report_renders_every_figure(small_results, tmp_path):
    report, truth, summary, cal = small_results
    r = Report("render check")
    header, rows = report.summary_rows()
    r.add_table(rows, header)
    r.add_figure(ratio_histograms(report), "ratios with nulls")
    r.add_figure(calibration_plot(cal), "calibration")
    r.add_figure(posterior_panels(truth, summary), "posterior")
    page = r.write(tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    proc = render(page, "--screenshot", str(shot), "--window-size", "1000,1500")
    assert proc.returncode == 0, proc.stderr
    assert "3 images, 0 broken" in proc.stdout
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_broken_image_is_detected(tmp_path):
    r = Report("broken")
    page = tmp_path / "broken.html"
    html = r.to_html().replace("</body>", '<img src="data:image/png;base64,AAAA" alt="bad one"></body>')
    page.write_text(html)
    proc = render(page)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 images, 1 broken (bad one)" in proc.stdout


def test_missing_report_is_a_usage_error(tmp_path):
    proc = render(tmp_path / "nope.html")
    assert proc.returncode == 2 and "does not exist" in proc.stderr
