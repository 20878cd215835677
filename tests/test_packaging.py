"""geomem works outside the repository: a plain (non-editable) install carries the shipped priors as package data,
and `geomem compare` with a shipped prior runs from any directory."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_plain_install_finds_the_shipped_priors(tmp_path):
    wheels, target, cwd = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    cwd.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
                    str(ROOT)], check=True, timeout=600)
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    *map(str, wheels.glob("geomem-*.whl"))], check=True, timeout=600)
    code = ("import geomem; from geomem import LearnedPrior; p = LearnedPrior.from_pretrained('n1000'); "
            "print(geomem.__file__, p.model_set['n'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env={"PYTHONPATH": str(target), "PATH": "/usr/bin"},
                         capture_output=True, text=True, timeout=300, check=True).stdout.split()
    assert out[0].startswith(str(target)) and out[1] == "1000"


def test_compare_with_a_shipped_prior_from_another_directory(tmp_path):
    """The shipped N = 50 prior by name, on the first 50 models of the default model set (checked against them),
    a tiny survey and sampler budget, run from a temporary directory."""
    args = [sys.executable, "-m", "geomem.cli", "compare", "-c", str(ROOT / "data/configs/compare_tiny.toml"),
            "--out", "run", "--prior", "n50", "model_set.size=64", "model_set.n=54", "model_set.heldout_start=50",
            "model_set.n_heldout_null=4", "survey.n_src=1", "survey.t_max=300.0", "chains=2", 'truths=["train:0"]',
            "sampler.split_gibbs.levels=2", "sampler.split_gibbs.mala_steps=1", "sampler.split_gibbs.final_sweeps=0",
            "sampler.split_gibbs.prior_steps=4", "n_boot=20", "train_sizes=[]"]
    res = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["sizes"] == [50] and (tmp_path / "run" / "report.html").is_file()
