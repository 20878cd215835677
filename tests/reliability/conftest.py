"""Reliability suite: writes the figures of the run (malformed inputs tried, kills survived, faults injected)
to ``<pytest basetemp>/reliability_figures.json`` and prints them in the terminal summary."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reliability_helpers import FIGURES  # noqa: E402


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not FIGURES:
        return
    base = config._tmp_path_factory.getbasetemp() if hasattr(config, "_tmp_path_factory") else Path(".")
    path = Path(base) / "reliability_figures.json"
    path.write_text(json.dumps(dict(sorted(FIGURES.items())), indent=2) + "\n", encoding="utf-8")
    terminalreporter.write_sep("-", "reliability figures")
    for k, v in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{k:40s} {v}")
    terminalreporter.write_line(f"(written to {path})")
