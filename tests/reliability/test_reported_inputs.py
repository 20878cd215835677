"""The bad inputs of issue 18 item 8 that gave tracebacks or NaN: each is now a one-line GeomemError (or, for
the CLI, exit status 2 with one ``error:`` line), raised before any heavy work."""

import numpy as np
import pytest
import torch

from geomem.cli import main
from geomem.config import load_toml, parse_override
from geomem.errors import ConfigError, DataFileError, GeomemError, ShapeError, ValueRangeError
from geomem.geology import make_model_set
from geomem.geology.io import import_models
from geomem.memory import available_bytes, check_fits
from geomem.priors.memorized import MemorizedPrior
from geomem.runs import RunFolder, check_plain_name, write_json


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_toml_that_is_not_utf8_or_not_a_file(tmp_path):
    (tmp_path / "latin1.toml").write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_toml(tmp_path / "latin1.toml")
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "dir.toml")
    assert parse_override("a=" + "[" * 5000) == ("a", "[" * 5000)  # too deep for TOML: kept as a string


@pytest.mark.parametrize("where", ["file", "under-file", "proc", "dev-null"])
def test_unwritable_outputs_are_data_file_errors(tmp_path, where):
    (tmp_path / "f").write_text("x")
    target = {"file": tmp_path / "f", "under-file": tmp_path / "f" / "run", "proc": "/proc/geomem_test_run",
              "dev-null": "/dev/null/run"}[where]
    with pytest.raises(DataFileError, match="--out"):
        RunFolder(target)
    with pytest.raises(DataFileError, match="cannot write"):
        write_json(f"{target}/metrics.json", {})


def test_model_refuses_an_unwritable_out_before_simulating(tmp_path, capsys, monkeypatch):
    from geomem.physics.parallel import ShotParallel

    def forbidden(*_):
        raise AssertionError("simulated before checking the output folder")

    monkeypatch.setattr(ShotParallel, "forward", forbidden)
    np.save(tmp_path / "v.npy", np.full((12, 12), 2.0))
    (tmp_path / "f").write_text("x")
    assert main(["model", "--velocity", str(tmp_path / "v.npy"), "--t-max", "100", "--out", str(tmp_path / "f")]) == 2
    assert "is a file" in one_line_error(capsys)


@pytest.mark.parametrize("array, error", [
    (np.zeros((0, 8, 8)), ShapeError), (np.zeros((0, 0)), ShapeError), (np.full((8, 8), "a"), DataFileError),
    (np.full((8, 8), 2.0 + 1j), DataFileError), (np.ones((8, 8), dtype=bool), DataFileError)])
def test_import_refuses_empty_and_non_real_arrays(tmp_path, array, error):
    np.save(tmp_path / "m.npy", array)
    with pytest.raises(error):
        import_models(tmp_path / "m.npy")


@pytest.mark.parametrize("name", ["s.npy", "c.npy", "e.npy"])
def test_model_refuses_non_real_or_empty_velocity(tmp_path, capsys, name):
    arrays = {"s.npy": np.full((8, 8), "a"), "c.npy": np.full((8, 8), 2.0 + 0j), "e.npy": np.zeros((0, 8))}
    np.save(tmp_path / name, arrays[name])
    assert main(["model", "--velocity", str(tmp_path / name), "--out", str(tmp_path / "r")]) == 2
    one_line_error(capsys)


def test_huge_sizes_are_refused_upfront_with_the_estimate(tmp_path, capsys):
    with pytest.raises(ValueRangeError, match="available"):
        check_fits(2.0 * available_bytes() + 1, "a test", "lower it")
    check_fits(1024, "a test", "lower it")
    with pytest.raises(ValueRangeError, match="models of 16×16"):
        make_model_set(n=10**13, size=16)
    assert main(["data", "make", "--n", "4", "--size", "1000000", "--out", str(tmp_path / "x.npz")]) == 2
    assert "memory" in one_line_error(capsys)
    np.save(tmp_path / "v.npy", np.full((8, 8), 2.0))
    assert main(["data", "import", str(tmp_path / "v.npy"), "--size", "99999", "--out", str(tmp_path / "i.npz")]) == 2
    assert "memory" in one_line_error(capsys)
    for flag, value in (("--n-src", "1000000000"), ("--t-max", "1e12"), ("--nbl", "10000000")):
        assert main(["model", "--velocity", str(tmp_path / "v.npy"), flag, value, "--out", str(tmp_path / "m")]) == 2
        assert "memory" in one_line_error(capsys)
    assert not (tmp_path / "m").exists()


def test_invert_refuses_a_negative_seed(tmp_path, capsys):
    assert main(["invert", "--prior", "memorized", "seed=-5", "--out", str(tmp_path / "i")]) == 2
    assert "seed must be >= 0" in one_line_error(capsys)


def test_run_names_must_be_plain():
    for bad in ("../x", "/abs", "a/b", "..", "", "a\\b", "x\0"):
        with pytest.raises(ConfigError):
            check_plain_name(bad)
    assert check_plain_name("n50_w16.v2") == "n50_w16.v2"


def test_memorized_denoise_at_extremes_is_an_error_not_nan():
    prior = MemorizedPrior(torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    x = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for sigma in (1e-155, 1e-160, 5e-324):  # (a subnormal σ reads as 0 where denormals are flushed: "> 0")
        with pytest.raises(ValueRangeError, match="below|> 0"):
            prior.denoise(x, sigma)
    big = x.clone()
    big[0, 0] = 1e200
    with pytest.raises(ValueRangeError, match="too large"):
        prior.denoise(big, 0.1)
    far = x.clone()
    far[0, 0] = 1e100
    for fn in (prior.denoise, prior.responsibilities, prior.score):
        with pytest.raises(ValueRangeError, match="too small for x this far"):
            fn(far, 1e-110)
    # just above the floor the answer is finite and is the nearest training model (the σ → 0 limit)
    d = prior.denoise(x, 1e-140)
    nearest = prior.train[torch.cdist(x, prior.train).argmin(1)]
    torch.testing.assert_close(d, nearest, rtol=0, atol=1e-12)
    with pytest.raises(GeomemError):
        MemorizedPrior(torch.randn(4, 3), top_k=2).denoise(far.float(), 1e-30)
