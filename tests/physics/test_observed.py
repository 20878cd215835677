"""The observed-data contract (geomem.physics.observed): .npz with its survey, SEG-Y checked by its headers,
and `geomem model` output fed to `geomem invert` (issue 18, items 5 and 6)."""

import numpy as np
import pytest
import segyio

from geomem.errors import ConfigError, DataFileError, ShapeError
from geomem.physics.acquisition import Geometry
from geomem.physics.observed import load_observed, read_observed, read_segy_shots, save_observed, write_segy_shots

SURVEY = Geometry.surface((12, 16), 10.0, n_src=3, t_max=120.0, f0=15.0, vmax_bound=4.5)


def shots(geom=SURVEY):
    return np.random.default_rng(0).standard_normal((geom.n_src, geom.nt, geom.n_rec))


def test_npz_round_trip_keeps_the_survey(tmp_path):
    y = shots()
    save_observed(tmp_path / "o.npz", y, SURVEY, velocity=np.ones((1, 12, 16)))
    obs = load_observed(tmp_path / "o.npz")
    np.testing.assert_array_equal(obs.data, y)
    assert obs.dt == SURVEY.dt and obs.geometry.vmax_bound == 4.5 and obs.geometry.f0 == 15.0
    obs.check_survey(SURVEY)
    np.testing.assert_array_equal(read_observed(tmp_path / "o.npz", SURVEY), y)


@pytest.mark.parametrize("change, words", [
    (dict(vmax_bound=5.0), "--vmax-bound 4.5"), (dict(t_max=140.0), "t_max"), (dict(f0=10.0), "f0"),
    (dict(n_src=2), "source positions"), (dict(spacing=12.0), "grid"), (dict(depth=20.0), "positions")])
def test_a_file_from_another_survey_is_refused(tmp_path, change, words):
    kw = dict(spacing=10.0, n_src=3, t_max=120.0, f0=15.0, vmax_bound=4.5) | change
    other = Geometry.surface((12, 16), kw.pop("spacing"), depth=kw.pop("depth", None), **kw)
    save_observed(tmp_path / "o.npz", shots(other), other)
    with pytest.raises(ConfigError, match="another survey") as err:
        read_observed(tmp_path / "o.npz", SURVEY)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_bad_npz_files_are_data_file_errors(tmp_path):
    np.savez(tmp_path / "plain.npz", data=shots())
    with pytest.raises(DataFileError, match="missing"):
        load_observed(tmp_path / "plain.npz")
    save_observed(tmp_path / "o.npz", shots(), SURVEY)
    fields = dict(np.load(tmp_path / "o.npz"))
    nt = SURVEY.nt
    for key, value, err in (("dt_ms", 0.5, "does not follow"), ("data", np.full((3, nt, 16), "a"), "floating"),
                            ("data", np.full((3, nt, 16), np.nan), "NaN"), ("data", np.zeros((3, 5, 16)), "shape"),
                            ("shape", np.array(["x", "y"]), "real numbers"), ("shape", np.zeros(3), "invalid"),
                            ("space_order", 10**18, "space_order"), ("f0_hz", -1.0, "invalid"),
                            ("format", 99, "newer")):
        np.savez(tmp_path / "bad.npz", **(fields | {key: value}))
        with pytest.raises((DataFileError, ShapeError), match=err):
            load_observed(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataFileError, match="readable"):
        load_observed(tmp_path / "junk.npz")
    with pytest.raises(DataFileError, match="must be .npz"):
        read_observed(tmp_path / "o.txt", SURVEY)


@pytest.mark.parametrize("order, scalar", [("shot", -100), ("receiver", -100), ("receiver", 1)])
def test_segy_is_sorted_by_its_header_coordinates(tmp_path, order, scalar):
    y = shots()
    write_segy_shots(tmp_path / "s.sgy", y, SURVEY, order=order, coordinate_scalar=scalar)
    np.testing.assert_allclose(read_segy_shots(tmp_path / "s.sgy", SURVEY), y.astype(np.float32), rtol=0, atol=0)


def test_segy_in_feet_with_field_coordinates(tmp_path):
    y = shots()
    write_segy_shots(tmp_path / "s.sgy", y, SURVEY, order="receiver", coordinate_scalar=-100)
    with segyio.open(str(tmp_path / "s.sgy"), "r+", ignore_geometry=True) as f:
        f.bin.update({segyio.BinField.MeasurementSystem: 2})
        for h in f.header:  # the same positions in feet, shifted by 5 km
            for k in (segyio.TraceField.SourceX, segyio.TraceField.GroupX):
                h[k] = int(round((h[k] / 100 + 5000.0) / 0.3048 * 100))
    np.testing.assert_array_equal(read_segy_shots(tmp_path / "s.sgy", SURVEY), y.astype(np.float32))


def test_segy_checks_interval_counts_delay_and_coordinates(tmp_path):
    y = shots()
    path = tmp_path / "s.sgy"
    segyio.tools.from_array2D(str(path), y.transpose(0, 2, 1).reshape(-1, SURVEY.nt).astype(np.float32), dt=4000)
    with pytest.raises(ConfigError, match="sampled every 4 ms"):
        read_segy_shots(path, SURVEY)
    segyio.tools.from_array2D(str(path), y.transpose(0, 2, 1).reshape(-1, SURVEY.nt).astype(np.float32),
                              dt=int(round(SURVEY.dt * 1000)))
    with pytest.raises(DataFileError, match="no source/receiver coordinates"):
        read_segy_shots(path, SURVEY)
    write_segy_shots(path, y, SURVEY)
    with pytest.raises(ShapeError, match="traces"):
        read_segy_shots(path, Geometry.surface((12, 16), 10.0, n_src=2, t_max=120.0))
    with pytest.raises(ConfigError, match="source x coordinates"):
        read_segy_shots(path, Geometry((12, 16), (10.0, 10.0), [[0, 10], [40, 10], [150, 10]], SURVEY.rec_coords,
                                       t_max=120.0))
    with segyio.open(str(path), "r+", ignore_geometry=True) as f:
        f.header[0] = {segyio.TraceField.DelayRecordingTime: 8}
    with pytest.raises(DataFileError, match="delay"):
        read_segy_shots(path, SURVEY)
    write_segy_shots(path, y, SURVEY)
    with segyio.open(str(path), "r+", ignore_geometry=True) as f:
        f.header[1] = {segyio.TraceField.GroupX: f.header[0][segyio.TraceField.GroupX]}
    with pytest.raises((DataFileError, ConfigError)):
        read_segy_shots(path, SURVEY)
