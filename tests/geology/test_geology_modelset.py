"""ModelSet: the documented API, normalization, subsets and splits, storage (npz, zarr), bad input."""

import json

import numpy as np
import pytest

from geomem.errors import ConfigError, DataFileError, GeomemError, ShapeError, ValueRangeError
from geomem.geology import DEFAULT_MODEL_SET, ModelSet, Parameterization, make_model_set


@pytest.fixture(scope="module")
def ms():
    return make_model_set(family="curvefault", n=30, size=(16, 20), spacing=12.5, seed=3, vmin=1.5, vmax=4.5)


def test_api_and_metadata(ms):
    assert DEFAULT_MODEL_SET == dict(family="curvefault", n=1200, size=(64, 64), spacing=10.0, seed=0, vmin=1.5,
                                     vmax=4.5)
    assert ms.models.shape == (30, 1, 16, 20) and ms.models.dtype == np.float32
    assert len(ms) == 30 and ms.shape == (1, 16, 20)
    assert (ms.family, ms.seed, ms.spacing, ms.vmin, ms.vmax) == ("curvefault", 3, 12.5, 1.5, 4.5)
    assert ms.meta["difficulty"] == "A"
    assert ms.parameterization == Parameterization(1.5, 4.5)


def test_normalized_closed_form(ms):
    x = ms.normalized()
    assert x.dtype == np.float32 and x.shape == ms.models.shape
    np.testing.assert_allclose(x, (ms.models - 3.0) / 1.5, atol=1e-6)
    assert x.min() >= -1 and x.max() <= 1
    np.testing.assert_allclose(ms.parameterization.to_velocity(x), ms.models, atol=1e-6)


def test_subset_and_split(ms):
    np.testing.assert_array_equal(ms.subset([4, 1]).models, ms.models[[4, 1]])
    np.testing.assert_array_equal(ms.subset(slice(2, 5)).models, ms.models[2:5])
    mask = np.zeros(30, bool)
    mask[[0, 29]] = True
    np.testing.assert_array_equal(ms.subset(mask).models, ms.models[[0, 29]])
    train, held = ms.split(10)
    np.testing.assert_array_equal(train.models, ms.models[:10])
    np.testing.assert_array_equal(held.models, ms.models[10:])
    train2, held2 = ms.split(20, n_heldout=5)
    np.testing.assert_array_equal(train2.models[:10], train.models)  # nested prefixes
    np.testing.assert_array_equal(held2.models, ms.models[20:25])
    assert train.seed == 3 and held.meta["split"] == "heldout"


@pytest.mark.parametrize("args", [(0,), (30,), (10, 21), (10, 0), (True,), (2.5,)])
def test_bad_split(ms, args):
    with pytest.raises(ConfigError):
        ms.split(*args)


@pytest.mark.parametrize("bad", [[30], [0.5], np.zeros(3, bool)])
def test_bad_subset(ms, bad):
    with pytest.raises(ShapeError):
        ms.subset(bad)


@pytest.mark.parametrize("suffix", [".npz", ".zarr"])
def test_save_load_roundtrip(ms, tmp_path, suffix):
    path = tmp_path / f"set{suffix}"
    ms.save(path)
    back = ModelSet.load(path)
    np.testing.assert_array_equal(back.models, ms.models)
    assert back.header() == ms.header()
    ms.subset([0, 1]).save(path)  # overwrite in place
    assert len(ModelSet.load(path)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary leftovers


def test_failed_save_leaves_nothing(ms, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        ms.save(tmp_path / "set.npz")
    import zarr

    monkeypatch.setattr(zarr, "open_group", boom)
    with pytest.raises(OSError):
        ms.save(tmp_path / "set.zarr")
    assert list(tmp_path.iterdir()) == []


def test_bad_files(ms, tmp_path):
    with pytest.raises(DataFileError, match="must end in .npz"):
        ms.save(tmp_path / "set.h5")
    with pytest.raises(DataFileError, match="does not exist"):
        ModelSet.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFileError, match="not a readable"):
        ModelSet.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataFileError):
        ModelSet.load(tmp_path / "other.npz")
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(DataFileError):
        ModelSet.load(tmp_path / "empty.zarr")
    header = dict(json.loads(json.dumps(ms.header())), format="geomem.modelset", version=99)
    np.savez(tmp_path / "future.npz", models=ms.models, header=np.array(json.dumps(header)))
    with pytest.raises(DataFileError, match="version 99"):
        ModelSet.load(tmp_path / "future.npz")
    assert not list(tmp_path.glob("*.tmp-*")) and not list(tmp_path.glob(".*tmp*"))


def test_constructor_checks():
    good = np.full((2, 1, 4, 4), 2.0, np.float32)
    with pytest.raises(ShapeError):
        ModelSet(good[:, 0], "x", 0, 10.0, 1.5, 4.5)
    with pytest.raises(ValueRangeError, match="NaN"):
        ModelSet(np.where(np.eye(4, dtype=bool), np.nan, good), "x", 0, 10.0, 1.5, 4.5)
    with pytest.raises(ValueRangeError, match="outside"):
        ModelSet(good + 3, "x", 0, 10.0, 1.5, 4.5)
    with pytest.raises(ValueRangeError, match="smaller than vmax"):
        ModelSet(good, "x", 0, 10.0, 4.5, 1.5)
    with pytest.raises(ConfigError):
        ModelSet(good, "x", 0, -1.0, 1.5, 4.5)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(size=-5), "size"),
        (dict(size=(64, 0)), "size"),
        (dict(size=(64,)), "size"),
        (dict(vmin=3.0, vmax=3.0), "smaller than vmax"),
        (dict(vmin=-1.0), "positive"),
        (dict(family="volcano"), "unknown family"),
        (dict(difficulty="C"), "difficulty"),
        (dict(n=0), "positive integer"),
        (dict(seed=-1), "seed"),
        (dict(spacing=0.0), "spacing"),
        (dict(min_distance=-0.1), "min_distance"),
    ],
)
def test_bad_generation_arguments(kwargs, needle):
    args = dict(family="flatvel", n=2, size=8) | kwargs
    with pytest.raises(GeomemError, match=needle) as info:
        make_model_set(**args)
    assert "\n" not in str(info.value)
