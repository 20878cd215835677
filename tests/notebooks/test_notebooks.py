"""The three notebooks execute top to bottom at tiny settings (GEOMEM_NOTEBOOK_TINY=1) with nbclient, and are
stored without outputs."""

import os
import re
from pathlib import Path

import nbformat
import pytest

nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _execute(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    os.environ["GEOMEM_NOTEBOOK_TINY"] = "1"
    os.environ["GEOMEM_ROOT"] = str(ROOT)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    return nb


def test_three_notebooks_stored_without_outputs():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(not c.outputs and c.execution_count is None for c in code), path.name
        assert "GEOMEM_NOTEBOOK_TINY" in code[0].source  # the parameters cell


def test_stylized_notebook_runs():
    nb = _execute(ROOT / "notebooks" / "01_memorized_prior_stylized.ipynb")
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "lookup weights" in text and "σ = 0.05" in text


@pytest.mark.slow
@pytest.mark.parametrize("name", ["02_fwi_with_devito", "03_learned_vs_memorized"])
def test_devito_notebooks_run(name):
    """nbclient raises at the first failing cell, so what is checked here is what the notebooks computed: every
    code cell ran, notebook 02's dot test (float32 operator) is below 1e-4 and its data have the survey's rank,
    notebook 03's memorization rates are fractions in [0, 1], one per (family, N, prior)."""
    nb = _execute(ROOT / "notebooks" / f"{name}.ipynb")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    text = "".join(o.get("text", "") for c in code for o in c.outputs)
    if name == "02_fwi_with_devito":
        line = re.search(r"relative\):(.*)", text)
        assert line is not None, text
        numbers = re.findall(r"[-+]?\d+\.?\d*(?:[eE][-+]?\d+)?", line.group(1).replace("np.float64", ""))
        assert len(numbers) == 3 and float(numbers[2]) < 1e-4, line.group(1)  # (lhs, rhs, relative error)
        assert re.search(r"data shape \((\d+), (\d+), (\d+)\)", text)
    else:
        rates = re.findall(r"rate (\d+\.\d+) \(held-out null (\d+\.\d+)\)", text)
        assert rates, text
        assert all(0.0 <= float(v) <= 1.0 for pair in rates for v in pair)
