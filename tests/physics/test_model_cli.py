"""``geomem model``: a run folder with shot records equal to the operator's, a figure, and one-line errors."""

import numpy as np
from physics_helpers import random_velocity

from geomem.cli import main
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.acquisition import Geometry


def test_model_command_writes_run_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("GEOMEM_DASK_ADDRESS", raising=False)
    v = random_velocity(60)[0]
    np.save(tmp_path / "v.npy", v)
    out = tmp_path / "run"
    args = ["model", "--velocity", str(tmp_path / "v.npy"), "--out", str(out), "--n-src", "2", "--t-max", "150",
            "--nbl", "10", "--float64"]
    assert main(args) == 0
    shots = np.load(out / "shots.npz")
    geom = Geometry.surface(v.shape, 10.0, n_src=2, t_max=150.0)
    ref = AcousticOperator(v.shape, 10.0, geom, nbl=10, dtype=np.float64).forward(v[None])
    np.testing.assert_array_equal(shots["data"], ref)
    assert (out / "figures" / "shots.png").stat().st_size > 1000
    assert (out / "config.toml").is_file() and (out / "metrics.json").is_file()


def test_model_command_errors_are_one_line(tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.full((3, 8, 8), 2.0))
    assert main(["model", "--velocity", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "r")]) == 2
    assert main(["model", "--velocity", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "r")]) == 2
    np.save(tmp_path / "fast.npy", np.full((8, 8), 5.0))
    assert main(["model", "--velocity", str(tmp_path / "fast.npy"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "(nz, nx)" in err and "missing.npy" in err and "vmax_bound" in err
    assert not (tmp_path / "r").exists()


def test_verbose_flag_routes_geomem_progress_lines_to_stderr_once(capsys):
    """`geomem --verbose ...` attaches one stderr handler to the `geomem` logger at INFO (not one per call)."""
    import logging

    log = logging.getLogger("geomem")
    saved = (list(log.handlers), log.level)
    try:
        log.handlers.clear()
        assert main(["--verbose", "version"]) == 0
        assert main(["--verbose", "version"]) == 0
        assert len(log.handlers) == 1 and log.level == logging.INFO
        logging.getLogger("geomem.posterior.annealed").info("annealed level 1/1: test line")
        assert "annealed level 1/1: test line" in capsys.readouterr().err
    finally:
        log.handlers[:] = saved[0]
        log.setLevel(saved[1])
