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
