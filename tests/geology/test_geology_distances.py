"""Nearest-neighbour distances, pooled screening, and the generator's near-duplicate rejection."""

import numpy as np
import pytest

from geomem.errors import GeomemError, ShapeError
from geomem.geology import make_model_set, nearest_neighbour_distances
from geomem.geology.distances import close_pairs, pool
from geomem.geology.generator import generate_models


def brute_force(models, scale):
    flat = models.reshape(len(models), -1).astype(np.float64)
    d = np.sqrt(((flat[:, None] - flat[None]) ** 2).mean(-1)) / scale
    np.fill_diagonal(d, np.inf)
    return d


def test_nearest_neighbour_matches_brute_force():
    rng = np.random.default_rng(0)
    models = rng.uniform(1.5, 4.5, size=(37, 1, 6, 5))
    d, idx = nearest_neighbour_distances(models, scale=3.0, chunk=8)
    full = brute_force(models, 3.0)
    np.testing.assert_allclose(d, full.min(1), rtol=1e-10)
    np.testing.assert_array_equal(idx, full.argmin(1))
    ref = rng.uniform(1.5, 4.5, size=(11, 1, 6, 5))
    d2, idx2 = nearest_neighbour_distances(models, ref)
    cross = np.sqrt(((models.reshape(37, 1, -1) - ref.reshape(1, 11, -1)) ** 2).mean(-1))
    np.testing.assert_allclose(d2, cross.min(1), rtol=1e-10)
    np.testing.assert_array_equal(idx2, cross.argmin(1))


def test_distance_scale_is_rms_fraction_of_range():
    a = np.full((2, 1, 4, 4), 2.0)
    a[1] += 0.3  # every cell differs by 0.3 km/s = 10 % of a 3 km/s range
    d, _ = nearest_neighbour_distances(a, scale=3.0)
    np.testing.assert_allclose(d, [0.1, 0.1])


def test_bad_shapes():
    with pytest.raises(ShapeError):
        nearest_neighbour_distances(np.zeros(5))
    with pytest.raises(ShapeError):
        nearest_neighbour_distances(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ShapeError):
        nearest_neighbour_distances(np.zeros((3, 1, 4, 4)), np.zeros((3, 1, 4, 5)))


def test_pooled_distances_are_lower_bounds():
    rng = np.random.default_rng(1)
    models = rng.normal(size=(30, 1, 37, 50))
    p = pool(models, target=8)
    full = models.reshape(30, -1)
    dp = np.linalg.norm(p[:, None] - p[None], axis=-1)
    df = np.linalg.norm(full[:, None] - full[None], axis=-1)
    assert (dp <= df + 1e-9).all()


def test_close_pairs_matches_brute_force():
    rng = np.random.default_rng(2)
    base = rng.uniform(1.5, 4.5, size=(40, 1, 32, 32))
    models = np.concatenate([base, base[[3, 17, 25]] + rng.normal(0, 0.01, size=(3, 1, 32, 32))])
    pairs = close_pairs(models, threshold=0.02, scale=3.0, chunk=16)
    d = brute_force(models, 3.0)
    expected = {(i, j) for i in range(len(models)) for j in range(i) if d[i, j] < 0.02}
    assert {tuple(p) for p in pairs.tolist()} == expected == {(40, 3), (41, 17), (42, 25)}


def test_generator_rejects_near_duplicates_and_keeps_prefixes():
    # flatvel A at 24×24 has pairs within 5 % of the range; the rule must redraw them
    threshold = 0.05
    raw, info0 = generate_models("flatvel", 150, 24, seed=0, min_distance=0.0)
    assert (brute_force(raw, 3.0) < threshold).any()
    assert info0["redrawn"] == []
    ms = make_model_set("flatvel", n=150, size=24, seed=0, min_distance=threshold)
    assert ms.meta["redrawn"], "expected some models to be redrawn at this threshold"
    assert brute_force(ms.models, 3.0).min() >= threshold
    assert ms.nearest_neighbour_distances()[0].min() >= threshold
    unchanged = np.setdiff1d(np.arange(150), ms.meta["redrawn"])
    np.testing.assert_array_equal(ms.models[unchanged], raw[unchanged])
    prefix = make_model_set("flatvel", n=60, size=24, seed=0, min_distance=threshold)
    np.testing.assert_array_equal(prefix.models, ms.models[:60])


def test_impossible_threshold_is_an_error():
    with pytest.raises(GeomemError, match="lower min_distance"):
        generate_models("flatvel", 3, 8, seed=0, min_distance=10.0)
