"""The stylized experiment end to end (reduced grids), its numbers, its figures and its CLI."""

import json

import numpy as np
import pytest

from geomem.cli import main
from geomem.errors import ConfigError
from geomem.experiments.stylized import load_stylized_config, run_stylized
from geomem.report.stylized_figures import draw_all

FAST = {
    "one_d.grid_points": 1201,
    "two_d.grid_points": 121,
    "two_d.zoom_points": 61,
    "modes.n_train": [3, 10],
    "modes.n_sigma": 8,
    "modes.grid_points": 2001,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stylized")
    cfg = load_stylized_config(None, FAST)
    return run_stylized(cfg, out, progress=False).path


def test_run_folder_contents_and_redraw(run, tmp_path):
    for name in ("config.toml", "provenance.json", "metrics.json", "stylized.npz"):
        assert (run / name).is_file()
    figs = sorted(p.name for p in (run / "figures").glob("*.png"))
    assert figs == ["effective_modes.png", "stylized_1d.png", "stylized_2d.png", "stylized_2d_zoom.png"]
    with np.load(run / "stylized.npz") as arrays:  # the folder alone redraws every figure
        drawn = draw_all(dict(arrays), tmp_path)
    assert all(p.stat().st_size > 10_000 for p in drawn)
    assert load_stylized_config(run / "config.toml") == load_stylized_config(None, FAST)


def test_metrics_have_every_component_and_agree_with_theory(run):
    m = json.loads((run / "metrics.json").read_text())
    one = m["one_d"]["sigmas"]
    assert set(one) == {"0.5", "0.3", "0.05"}
    for part in ("one_d", "two_d"):
        for entry in m[part]["sigmas"].values():
            for kind in ("exact", "linearized", "linearized_no_logdet"):
                w = np.asarray(entry[kind]["weights"])
                assert w.shape == (5,) and w.sum() == pytest.approx(1.0, abs=1e-9)
                assert np.asarray(entry[kind]["means"]).shape == np.asarray(entry[kind]["stds"]).shape
    # the exact marginal likelihood (with log-det) is closer to the exact posterior masses than without
    assert one["0.5"]["weights_l1_linearized_vs_exact"] < one["0.5"]["weights_l1_no_logdet_vs_exact"]
    # at small sigma both collapse to the lookup weights: y = 0 sits between -0.4 and 0.4
    np.testing.assert_allclose(one["0.05"]["exact"]["weights"], m["one_d"]["lookup_weights"], atol=1e-3)
    np.testing.assert_allclose(one["0.05"]["exact"]["weights"], [0, 0.5, 0.5, 0, 0], atol=1e-3)
    modes = m["effective_modes"]["N"]
    for n, entry in modes.items():
        # smallest sigma: the lookup's number of modes; largest sigma: every component equally weighted
        assert entry["effective_modes_exact"][0] == pytest.approx(entry["effective_modes_lookup"], rel=1e-2)
        assert entry["effective_modes_exact"][-1] == pytest.approx(int(n), rel=2e-2)
        assert entry["sigma_crit"] == pytest.approx(np.sqrt(entry["delta"] * 0.3 / entry["jac_norm"]))
    assert modes["3"]["effective_modes_lookup"] == pytest.approx(1.0)  # x = 0 is a training model
    assert modes["10"]["effective_modes_lookup"] == pytest.approx(2.0, abs=0.01)  # ±1/3 tie


def test_cli_writes_run_and_rejects_bad_settings(tmp_path, capsys):
    args = ["stylized", "--out", str(tmp_path / "r"), "--no-progress"] + [f"{k}={v}" for k, v in FAST.items()]
    assert main(args + ["sigmas=[0.3]"]) == 0
    assert (tmp_path / "r" / "metrics.json").is_file()
    assert main(["stylized", "--out", str(tmp_path / "bad"), "gamma=-1"]) == 2
    assert "gamma must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ConfigError, match="unknown config key"):
        load_stylized_config(None, {"one_d.sigma": 1.0})
    with pytest.raises(ConfigError, match="grid_min"):
        load_stylized_config(None, {"one_d.grid_min": 5.0})
