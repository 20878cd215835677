"""Import of user models from .npy and SEG-Y, units, resampling, and bad files."""

import numpy as np
import pytest
import segyio

from geomem.errors import DataFileError, ShapeError, ValueRangeError
from geomem.geology import import_models
from geomem.geology.io import resample


def write_segy(path, model_m_per_s):
    """A tiny SEG-Y with one trace per column of ``model`` (nz, nx), IEEE floats."""
    nz, nx = model_m_per_s.shape
    spec = segyio.spec()
    spec.format = 5
    spec.samples = list(range(nz))
    spec.tracecount = nx
    spec.sorting = None
    with segyio.create(str(path), spec) as f:
        for ix in range(nx):
            f.trace[ix] = model_m_per_s[:, ix].astype(np.float32)


def test_segy_roundtrip(tmp_path):
    nz, nx = 12, 7
    model = 1500.0 + 100.0 * np.arange(nz)[:, None] + 10.0 * np.arange(nx)[None, :]
    write_segy(tmp_path / "m.sgy", model)
    ms = import_models(tmp_path / "m.sgy", spacing=25.0)
    assert ms.models.shape == (1, 1, nz, nx)
    np.testing.assert_allclose(ms.models[0, 0], model / 1000.0, rtol=1e-6)
    assert ms.meta["source_units"] == "m/s" and ms.meta["source_format"] == "segy"
    assert (ms.vmin, ms.vmax, ms.spacing, ms.seed) == (pytest.approx(1.5), pytest.approx(2.66), 25.0, None)


def test_npy_shapes_units_and_range(tmp_path):
    model = np.linspace(1.5, 3.0, 20 * 10).reshape(20, 10)
    for arr in (model, model[None], model[None, None]):
        np.save(tmp_path / "m.npy", arr)
        ms = import_models(tmp_path / "m.npy")
        np.testing.assert_allclose(ms.models[0, 0], model, rtol=1e-6)
        assert ms.meta["source_units"] == "km/s"
    np.save(tmp_path / "ms.npy", model * 1000)
    np.testing.assert_allclose(import_models(tmp_path / "ms.npy").models[0, 0], model, rtol=1e-6)
    np.testing.assert_allclose(import_models(tmp_path / "ms.npy", units="m/s").models[0, 0], model, rtol=1e-6)
    ms = import_models(tmp_path / "m.npy", vmin=1.0, vmax=5.0)
    assert (ms.vmin, ms.vmax) == (1.0, 5.0)
    with pytest.raises(ValueRangeError, match="outside"):
        import_models(tmp_path / "m.npy", vmin=2.0, vmax=5.0)
    clipped = import_models(tmp_path / "m.npy", vmin=2.0, vmax=2.5, clip=True)
    assert clipped.models.min() == 2.0 and clipped.models.max() == 2.5


def test_resampling_reproduces_a_linear_ramp():
    # bilinear resampling is exact for a linear function; output cell i sits at input (i + ½)·n_in/n_out − ½
    nz_in, nx_in, nz_out, nx_out = 16, 10, 32, 25
    a, bz, bx = 2.0, 0.05, 0.03
    model = a + bz * np.arange(nz_in)[:, None] + bx * np.arange(nx_in)[None, :]
    out = resample(model[None, None], (nz_out, nx_out))[0, 0]
    zi = (np.arange(nz_out) + 0.5) * nz_in / nz_out - 0.5
    xi = (np.arange(nx_out) + 0.5) * nx_in / nx_out - 0.5
    exact = a + bz * zi[:, None] + bx * xi[None, :]
    inside = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(out[inside], exact[inside], atol=1e-9)


def test_resampling_to_target_grid(tmp_path):
    model = np.full((50, 80), 2.0)
    model[25:] = 3.0
    np.save(tmp_path / "m.npy", model)
    ms = import_models(tmp_path / "m.npy", size=(20, 32), spacing=10.0)
    assert ms.models.shape == (1, 1, 20, 32) and ms.meta["source_shape"] == [50, 80]
    np.testing.assert_allclose(ms.models[0, 0, :8], 2.0, atol=1e-6)
    np.testing.assert_allclose(ms.models[0, 0, 12:], 3.0, atol=1e-6)


def test_bad_files(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        import_models(tmp_path / "missing.sgy")
    (tmp_path / "text.sgy").write_text("this is not a SEG-Y file\n" * 5)
    with pytest.raises(DataFileError, match="not a readable SEG-Y"):
        import_models(tmp_path / "text.sgy")
    (tmp_path / "noise.segy").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(DataFileError, match="not a readable SEG-Y"):
        import_models(tmp_path / "noise.segy")
    nan = np.full((8, 8), 2.0)
    nan[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(ValueRangeError, match="1 NaN or infinite") as info:
        import_models(tmp_path / "nan.npy")
    assert "\n" not in str(info.value)
    np.save(tmp_path / "neg.npy", -np.ones((8, 8)))
    with pytest.raises(ValueRangeError, match="velocities must lie"):
        import_models(tmp_path / "neg.npy")
    np.save(tmp_path / "cube.npy", np.ones((2, 3, 8, 8)))
    with pytest.raises(ShapeError):
        import_models(tmp_path / "cube.npy")
    (tmp_path / "bad.npy").write_text("garbage")
    with pytest.raises(DataFileError):
        import_models(tmp_path / "bad.npy")
    (tmp_path / "m.txt").write_text("1 2 3")
    with pytest.raises(DataFileError, match="reads .npy or SEG-Y"):
        import_models(tmp_path / "m.txt")
    np.save(tmp_path / "const.npy", np.full((8, 8), 2.0))
    with pytest.raises(ValueRangeError, match="constant"):
        import_models(tmp_path / "const.npy")
    with pytest.raises(ValueRangeError, match="units"):
        import_models(tmp_path / "neg.npy", units="ft/s")
