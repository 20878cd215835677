#!/usr/bin/env python
"""Open a geomem HTML report in headless Chromium and check that every image decodes.

    python scripts/render_report.py REPORT.html [--screenshot out.png] [--window-size 1280,4000]

A copy of the report gets a small inline script that, once the page has loaded, counts the ``<img>``
elements and those that did not decode (``!complete`` or ``naturalWidth == 0``) and writes the counts
into the DOM; Chromium's ``--dump-dom`` prints that DOM and this script reads the counts back.

Exit status: 0 every image decoded; 1 at least one broken image; 2 bad arguments or no Chromium;
3 Chromium ran but the check did not report (page failed to load, crash, timeout).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--hide-scrollbars")

_CHECK = """
<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (im) { return !im.complete || im.naturalWidth === 0; });
  var out = document.createElement("div");
  out.id = "geomem-render-check";
  out.setAttribute("data-total", String(imgs.length));
  out.setAttribute("data-broken", String(broken.length));
  out.setAttribute("data-broken-alts", broken.map(function (im) { return im.alt; }).join(" | "));
  document.body.appendChild(out);
});
</script>
"""

_RESULT = re.compile(
    r'<div id="geomem-render-check" data-total="(\d+)" data-broken="(\d+)" data-broken-alts="([^"]*)"'
)


def find_chromium(explicit: str | None = None) -> str | None:
    """Path of a Chromium/Chrome executable, or None."""
    for name in ((explicit,) if explicit else _CANDIDATES):
        path = shutil.which(name) if name else None
        if path:
            return path
    return None


def _run(chromium: str, profile: str, extra: list[str], url: str, timeout: float) -> subprocess.CompletedProcess:
    cmd = [chromium, *_FLAGS, f"--user-data-dir={profile}", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def check_report(report: Path, chromium: str, screenshot: Path | None = None, window_size: str = "1280,4000",
                 timeout: float = 120.0) -> tuple[int, int, str]:
    """Render ``report``; return ``(n_images, n_broken, broken_alts)``. Raises RuntimeError if no result."""
    with tempfile.TemporaryDirectory(prefix="geomem-render-") as tmp:
        page = Path(tmp) / "page.html"
        text = report.read_text(encoding="utf-8")
        text = text.replace("</body>", _CHECK + "</body>", 1) if "</body>" in text else text + _CHECK
        page.write_text(text, encoding="utf-8")
        url = page.resolve().as_uri()
        proc = _run(chromium, str(Path(tmp) / "profile"), ["--dump-dom", "--virtual-time-budget=10000"], url,
                    timeout)
        match = _RESULT.search(proc.stdout)
        if match is None:
            raise RuntimeError(f"Chromium did not report the image check (exit {proc.returncode}): "
                               f"{proc.stderr.strip()[-500:]}")
        if screenshot is not None:
            shot = Path(tmp) / "shot.png"
            proc = _run(chromium, str(Path(tmp) / "profile"),
                        [f"--screenshot={shot}", f"--window-size={window_size}", "--virtual-time-budget=10000"],
                        url, timeout)
            if not shot.is_file() or shot.stat().st_size == 0:
                raise RuntimeError(f"Chromium wrote no screenshot (exit {proc.returncode}): "
                                   f"{proc.stderr.strip()[-500:]}")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            partial = screenshot.with_name(f".{screenshot.name}.tmp-{os.getpid()}")
            shutil.copyfile(shot, partial)
            os.replace(partial, screenshot)  # atomic: never a partial screenshot
    return int(match.group(1)), int(match.group(2)), match.group(3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("report", type=Path, help="the HTML report to open")
    parser.add_argument("--screenshot", type=Path, default=None, help="also save a PNG screenshot here")
    parser.add_argument("--window-size", default="1280,4000", help="screenshot size WIDTH,HEIGHT in pixels")
    parser.add_argument("--chromium", default=None, help="Chromium executable (default: search PATH)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per Chromium run")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(f"error: report {args.report} does not exist; pass an existing .html file", file=sys.stderr)
        return 2
    if not re.fullmatch(r"\d+,\d+", args.window_size):
        print(f"error: --window-size must look like 1280,4000, got {args.window_size!r}", file=sys.stderr)
        return 2
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("error: Chromium not found; install it (apt-get install -y chromium) or pass --chromium PATH",
              file=sys.stderr)
        return 2
    try:
        total, broken, alts = check_report(args.report, chromium, args.screenshot, args.window_size, args.timeout)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(f"{args.report}: {total} images, {broken} broken" + (f" ({alts})" if broken else ""))
    if args.screenshot is not None:
        print(f"screenshot: {args.screenshot}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
