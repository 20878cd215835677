"""The README's notebook example runs as written and prints what the README says it prints."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 1
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], "README.md", "exec"), {})
    nearest, ratio = out.getvalue().strip().split("] [")
    assert set(nearest.strip("[").split()) == {"11"}  # every chain on training model 11 (the lookup's pick)
    assert all(abs(float(r) - 5.26) < 0.05 for r in ratio.strip("]").split())
