"""Dask shot parallelism: serial, in-process and LocalCluster results are identical; operators resident per process."""

import pickle

import numpy as np
import pytest
from physics_helpers import SHAPE, SPACING, random_velocity, tiny_geometry

from geomem.errors import ConfigError
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.parallel import (
    ENV_ADDRESS,
    RESIDENT_MAX,
    ShotParallel,
    local_client,
    on_resident,
    resident,
    resident_key,
    resolve_client,
)


@pytest.fixture(scope="module")
def op():
    return AcousticOperator(SHAPE, SPACING, tiny_geometry(n_src=3, t_max=200.0), nbl=10, dtype=np.float64)


def _results(runner, v, d_obs, dd):
    phi, g = runner.misfit_and_gradient(v, d_obs, 0.7)
    return runner.forward(v), phi, g, runner.jacobian(v).rmatvec(dd)


def test_serial_wrapper_equals_operator(op, monkeypatch):
    monkeypatch.delenv(ENV_ADDRESS, raising=False)
    v, d_obs = random_velocity(50), op.forward(random_velocity(51))
    dd = np.random.default_rng(0).standard_normal(op.data_shape)
    serial = ShotParallel(op)
    assert serial.client is None
    for a, b in zip(_results(serial, v, d_obs, dd), _results(op, v, d_obs, dd), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_local_cluster_equals_serial(op, monkeypatch):
    v, d_obs = random_velocity(52), op.forward(random_velocity(53))
    dd = np.random.default_rng(1).standard_normal(op.data_shape)
    dv = np.random.default_rng(2).standard_normal(op.model_shape)
    ref = _results(op, v, d_obs, dd)
    client = local_client(2)
    try:
        par = ShotParallel(op, client)
        assert len(par.chunks) == 2
        for a, b in zip(_results(par, v, d_obs, dd), ref, strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(par.jacobian(v).matvec(dv), op.jacobian(v).matvec(dv))
        # the same cluster reached through GEOMEM_DASK_ADDRESS
        monkeypatch.setenv(ENV_ADDRESS, client.scheduler.address)
        by_env = ShotParallel(op)
        assert by_env.client is not None
        np.testing.assert_array_equal(by_env.forward(v), ref[0])
        by_env.client.close()
    finally:
        client.close()
        client.cluster.close()


def test_bad_address_is_config_error():
    with pytest.raises(ConfigError, match="Dask scheduler"):
        resolve_client("tcp://127.0.0.1:1", timeout="1s")


def test_a_new_copy_of_an_operator_reuses_the_resident_devito_objects(op):
    """What a worker does when Dask hands it a fresh copy (spilled to disk and read back, fetched from a peer, or
    scattered again): the copy is swapped for the resident operator, whose Devito objects are already built."""
    key = resident_key(op)
    first = resident(pickle.loads(pickle.dumps(op)), key)
    v = random_velocity(54)
    d = first.forward(v)
    assert first._dv is not None
    copy = pickle.loads(pickle.dumps(op))
    assert copy._dv is None  # a copy alone would build everything again
    again = resident(copy, key)
    assert again is first and again._dv is not None
    np.testing.assert_array_equal(on_resident(lambda o, x: o.forward(x), key, pickle.loads(pickle.dumps(op)), v), d)


def test_resident_key_is_one_per_operator_object(op):
    key = resident_key(op)
    op.misfit_and_gradient(random_velocity(55), op.forward(random_velocity(56)), 1.0)  # changes op's own state
    assert resident_key(op) == key
    twin = AcousticOperator(SHAPE, SPACING, tiny_geometry(n_src=3, t_max=200.0), nbl=10, dtype=np.float64)
    assert resident_key(twin) != key  # another object, even with the same settings


def test_resident_operators_are_bounded():
    keys = [f"k{i}" for i in range(RESIDENT_MAX + 2)]
    objs = [object() for _ in keys]
    for k, o in zip(keys, objs, strict=True):
        assert resident(o, k) is o
    assert resident(object(), keys[-1]) is objs[-1]
    fresh = object()
    assert resident(fresh, keys[0]) is fresh  # the oldest were dropped
