"""Dask shot parallelism: serial, in-process and LocalCluster results are identical."""

import numpy as np
import pytest
from physics_helpers import SHAPE, SPACING, random_velocity, tiny_geometry

from geomem.errors import ConfigError
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.parallel import ENV_ADDRESS, ShotParallel, local_client, resolve_client


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
