"""OpenFWI survey preset and importer, on small synthetic arrays made here (nothing is downloaded)."""

import numpy as np
import pytest

from geomem.errors import DataFileError, ShapeError, StabilityError, ValueRangeError
from geomem.geology import import_openfwi_data, import_openfwi_velocity
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.acquisition import Geometry


def openfwi_like_velocities(n=3, seed=0):
    """``(n, 1, 70, 70)`` float32 in m/s: layered 1500 → 4500 with a random interface depth."""
    rng = np.random.default_rng(seed)
    z = np.arange(70)[:, None] * np.ones((1, 70))
    out = []
    for _ in range(n):
        k = rng.integers(20, 50)
        out.append(np.where(z < k, 1500.0 + 20.0 * z, 4500.0)[None])
    return np.stack(out).astype(np.float32)


def test_preset_matches_openfwi_layout():
    g = Geometry.openfwi()
    assert g.shape == (70, 70) and g.spacing == (10.0, 10.0) and g.f0 == 15.0
    assert (g.n_src, g.nt, g.n_rec) == (5, 1000, 70)
    assert g.dt == 1.0 and g.time[-1] == 999.0
    np.testing.assert_array_equal(g.src_coords[:, 0], [0.0, 170.0, 340.0, 520.0, 690.0])
    assert AcousticOperator.openfwi().data_shape == (5, 1000, 70)
    with pytest.raises(StabilityError, match="CFL limit"):  # 1 ms is unstable at 6 km/s on a 10 m grid
        Geometry.openfwi(vmax_bound=6.0)


def test_velocity_import_converts_to_km_per_s(tmp_path):
    v = openfwi_like_velocities()
    path = tmp_path / "model1.npy"
    np.save(path, v)
    for source in (v, path):
        ms = import_openfwi_velocity(source)
        assert ms.models.shape == (3, 1, 70, 70) and ms.spacing == 10.0
        np.testing.assert_allclose(ms.models, v / 1000.0, rtol=1e-6)
        assert (ms.vmin, ms.vmax) == pytest.approx((1.5, 4.5))
        assert ms.meta["source_units"] == "m/s"
    ms = import_openfwi_velocity(v / 1000.0, units="km/s", vmin=1.0, vmax=5.0)
    assert (ms.vmin, ms.vmax) == (1.0, 5.0)


def test_velocity_import_refuses_wrong_units_and_shapes(tmp_path):
    v = openfwi_like_velocities()
    with pytest.raises(ValueRangeError, match="units='km/s'"):
        import_openfwi_velocity(v / 1000.0)  # km/s read as m/s
    with pytest.raises(ValueRangeError, match="units='m/s'"):
        import_openfwi_velocity(v, units="km/s")
    with pytest.raises(ShapeError, match=r"\(N, 1, 70, 70\)"):
        import_openfwi_velocity(v[:, 0])
    with pytest.raises(ShapeError, match=r"\(N, 1, 70, 70\)"):
        import_openfwi_velocity(v[:, :, :64, :64])
    bad = v.copy()
    bad[1, 0, 3, 3] = np.nan
    with pytest.raises(ValueRangeError, match="NaN"):
        import_openfwi_velocity(bad)
    with pytest.raises(DataFileError, match="does not exist"):
        import_openfwi_velocity(tmp_path / "missing.npy")
    with pytest.raises(ValueRangeError, match="units must be"):
        import_openfwi_velocity(v, units="ft/s")


def test_data_import_checks_shape_and_sample_interval(tmp_path):
    d = np.random.default_rng(0).standard_normal((2, 5, 1000, 70)).astype(np.float32)
    path = tmp_path / "data1.npy"
    np.save(path, d)
    np.testing.assert_array_equal(import_openfwi_data(path), d)
    with pytest.raises(ShapeError, match=r"\(N, 5, 1000, 70\)"):
        import_openfwi_data(d[:, :, :999])
    with pytest.raises(ShapeError, match=r"\(N, 5, 1000, 70\)"):
        import_openfwi_data(d.transpose(0, 1, 3, 2))  # receiver-major
    with pytest.raises(ValueRangeError, match="sampled at 2 ms.*time_step=2"):
        import_openfwi_data(d, sample_interval_ms=2.0)
    zero = d.copy()
    zero[1] = 0
    with pytest.raises(ValueRangeError, match=r"record\(s\) \[1\] are all zeros"):
        import_openfwi_data(zero)


def test_simulated_openfwi_data_round_trip():
    """A model imported from m/s, simulated on the OpenFWI survey, gives data the data importer accepts."""
    ms = import_openfwi_velocity(openfwi_like_velocities(1))
    d = AcousticOperator.openfwi().forward(ms.models)
    assert d.shape == (1, 5, 1000, 70)
    np.testing.assert_array_equal(import_openfwi_data(d), d)
