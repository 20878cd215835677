"""``geomem validate-samplers`` at CI size: the run folder, the table, and the exact sampler's row."""

import json

import numpy as np
import pytest

from geomem.config import load_config
from geomem.errors import ConfigError
from geomem.experiments.validate_samplers import ValidateConfig, run_validate, tv_floor


def test_tiny_config_writes_metrics_and_table(tmp_path):
    cfg = load_config(ValidateConfig, "data/configs/validate_samplers_tiny.toml",
                      {"toys.chains": 20, "methods": ["exact", "split_gibbs"]})
    metrics = run_validate(cfg, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    rows = {(r["problem"], r["method"]) for r in saved["toys"]}
    # the exact sampler needs a memorized prior: no exact row for the Gaussian problem
    assert rows == {("cubic1d", "exact"), ("cubic1d", "split_gibbs"), ("linear_gaussian", "split_gibbs")}
    table = (tmp_path / "run" / "table.md").read_text()
    assert table == metrics["table"] and "| cubic1d | exact |" in table
    exact = next(r for r in saved["toys"] if r["method"] == "exact")
    assert exact["gradients_per_sample"] == 0
    gauss = next(r for r in saved["toys"] if r["problem"] == "linear_gaussian")
    assert 0 < gauss["coverage"] <= 1


def test_tv_floor_is_the_iid_sampling_noise():
    # two equal modes, n draws: E|f − ½| = E TV ≈ √(1/(4n)) √(2/π)
    assert tv_floor(np.array([0.5, 0.5]), 400) == pytest.approx(np.sqrt(1 / 1600) * np.sqrt(2 / np.pi), rel=0.1)


def test_bad_names_are_refused():
    with pytest.raises(ConfigError, match="unknown sampler"):
        ValidateConfig(methods=("gibbs",))
    with pytest.raises(ConfigError, match="unknown toy problem"):
        load_config(ValidateConfig, None, {"toys.problems": ["quartic"]})


@pytest.mark.slow
def test_fwi_part_on_a_tiny_survey(tmp_path):
    """Exact reference on FWI: a training truth is recovered by every chain at misfit/noise ≈ 1 (noise only)."""
    cfg = load_config(ValidateConfig, None, {
        "toys.problems": [], "fwi.chains": 4, "fwi.n_train": 12, "fwi.truths": ["train:0", "heldout:0"],
        "fwi.methods": ["split_gibbs"], "fwi.workers": 0,
        "fwi.model_set": {"n": 40, "size": 32, "heldout_start": 20, "n_heldout_null": 20},
        "fwi.survey": {"n_src": 3, "t_max": 400.0, "nbl": 10},
        "fwi.split_gibbs": {"levels": 2, "mala_steps": 1, "final_sweeps": 0}})
    fwi = run_validate(cfg, tmp_path / "run")["fwi"]
    exact = fwi["truths"]["train:0"]["rows"][0]
    assert exact["method"] == "exact" and exact["on_truth"] == 4 and exact["tv"] < 0.5
    assert exact["misfit_over_noise"] == pytest.approx(1.0, abs=0.05)
    assert fwi["truths"]["train:0"]["exact_top"] == 0
    sg = fwi["truths"]["heldout:0"]["rows"][1]
    assert sg["method"] == "split_gibbs" and sg["gradients_per_sample"] == 3
    assert "| heldout:0 | split_gibbs |" in (tmp_path / "run" / "table.md").read_text()
