"""User shot records (SEG-Y or .npy) and user acquisition geometry files for `compare` and `invert`."""

import numpy as np
import pytest
import segyio

from geomem.cli import main
from geomem.errors import ConfigError, DataFileError, ShapeError
from geomem.physics.observed import read_observed, write_segy_shots
from geomem.workflow.problem import ModelSetSettings, SurveySettings, build_operator, load_model_set

SHAPE = (2, 30, 16)  # n_src, nt, n_rec


def test_segy_without_its_survey_in_the_headers_is_refused(tmp_path):
    """Counts alone are not enough: a 4 ms interval or missing coordinates are refused (physics/observed.py)."""
    ms = load_model_set(ModelSetSettings(n=4, size=16, heldout_start=2))
    op = build_operator(ms, SurveySettings(t_max=200.0, nbl=6, n_src=2))
    y = np.random.default_rng(0).standard_normal(op.data_shape).astype(np.float32)
    flat = y.transpose(0, 2, 1).reshape(-1, y.shape[1])
    segyio.tools.from_array2D(str(tmp_path / "4ms.sgy"), flat, dt=4000)
    with pytest.raises(ConfigError, match="sampled every 4 ms"):
        read_observed(tmp_path / "4ms.sgy", op.geometry)
    segyio.tools.from_array2D(str(tmp_path / "bare.sgy"), flat, dt=int(round(op.geometry.dt * 1000)))
    with pytest.raises(DataFileError, match="coordinates"):
        read_observed(tmp_path / "bare.sgy", op.geometry)
    write_segy_shots(tmp_path / "ok.sgy", y, op.geometry, order="receiver")
    np.testing.assert_array_equal(read_observed(tmp_path / "ok.sgy", op.geometry), y)
    with pytest.raises(ShapeError, match="traces"):
        read_observed(tmp_path / "ok.sgy", build_operator(ms, SurveySettings(t_max=200.0, nbl=6, n_src=3)).geometry)


def test_geometry_file_sets_sources_and_receivers(tmp_path):
    ms = load_model_set(ModelSetSettings(n=4, size=16, heldout_start=2))
    (tmp_path / "geo.toml").write_text("src = [[20.0, 10.0], [130.0, 40.0]]\nrec = [[0.0, 10.0], [50.0, 10.0], "
                                       "[100.0, 10.0], [150.0, 10.0]]\n")
    op = build_operator(ms, SurveySettings(t_max=200.0, nbl=6, geometry=str(tmp_path / "geo.toml")))
    np.testing.assert_array_equal(op.geometry.src_coords, [[20.0, 10.0], [130.0, 40.0]])
    assert op.data_shape[0] == 2 and op.data_shape[2] == 4
    (tmp_path / "bad.toml").write_text("src = 3\n")
    with pytest.raises(ConfigError, match="geometry file"):
        build_operator(ms, SurveySettings(geometry=str(tmp_path / "bad.toml")))


def test_invert_reads_segy_data_recorded_with_a_geometry_file(tmp_path):
    (tmp_path / "geo.toml").write_text("src = [[30.0, 10.0], [120.0, 10.0]]\n"
                                       "rec = [[0.0, 10.0], [40.0, 10.0], [80.0, 10.0], [150.0, 10.0]]\n")
    common = ["model_set.n=30", "model_set.size=16", "model_set.heldout_start=20",
              f"survey.geometry='{tmp_path}/geo.toml'", "survey.t_max=250.0", "survey.nbl=6",
              "sampler.split_gibbs.levels=4", "workers=0", "n_train=10"]
    ms = load_model_set(ModelSetSettings(n=30, size=16, heldout_start=20))
    op = build_operator(ms, SurveySettings(t_max=250.0, nbl=6, geometry=str(tmp_path / "geo.toml")))
    write_segy_shots(tmp_path / "shots.sgy", op.forward(ms.models[3]), op.geometry, order="receiver")
    out = tmp_path / "run"
    assert main(["invert", "--prior", "memorized", "--chains", "2", "--out", str(out), "--data",
                 str(tmp_path / "shots.sgy"), "gamma=0.01", *common]) == 0
    with np.load(out / "samples.npz") as f:
        assert f["y"].shape == op.data_shape and np.isfinite(f["velocity"]).all()


def test_model_output_feeds_invert(tmp_path, capsys):
    """`geomem model`'s shots.npz is read by `invert` when the surveys match; another vmax bound is refused
    with a message naming the flag to change."""
    ms = load_model_set(ModelSetSettings(n=30, size=16, heldout_start=20))
    np.save(tmp_path / "v.npy", ms.models[3, 0])
    common = ["model_set.n=30", "model_set.size=16", "model_set.heldout_start=20", "survey.t_max=250.0",
              "survey.nbl=6", "survey.n_src=2", "sampler.split_gibbs.levels=4", "workers=0", "n_train=10", "gamma=0.01"]
    model = ["model", "--velocity", str(tmp_path / "v.npy"), "--n-src", "2", "--t-max", "250", "--nbl", "6"]
    assert main([*model, "--out", str(tmp_path / "shots"), "--vmax-bound", str(ms.vmax)]) == 0
    out = tmp_path / "inv"
    assert main(["invert", "--prior", "memorized", "--chains", "2", "--out", str(out), "--data",
                 str(tmp_path / "shots" / "shots.npz"), *common]) == 0
    with np.load(out / "samples.npz") as f, np.load(tmp_path / "shots" / "shots.npz") as s:
        np.testing.assert_array_equal(f["y"], s["data"])
    assert main([*model, "--out", str(tmp_path / "shots5"), "--vmax-bound", "5.0"]) == 0
    capsys.readouterr()
    assert main(["invert", "--prior", "memorized", "--out", str(tmp_path / "inv5"), "--data",
                 str(tmp_path / "shots5" / "shots.npz"), *common]) == 2
    err = capsys.readouterr().err
    assert "another survey" in err and f"--vmax-bound {ms.vmax:g}" in err and err.count("\n") == 1
