"""``geomem data make | show | import``: outputs, run folder, one-line errors and no partial files."""

import json

import numpy as np
import pytest

from geomem.cli import main
from geomem.geology import ModelSet, make_model_set


def test_make_show_roundtrip(tmp_path):
    out = tmp_path / "sets" / "cf.npz"
    rc = main(["data", "make", "--family", "curvefault", "--n", "12", "--size", "24,32", "--seed", "5",
               "--out", str(out), "--run", str(tmp_path / "run")])
    assert rc == 0
    ms = ModelSet.load(out)
    expected = make_model_set("curvefault", n=12, size=(24, 32), seed=5)
    np.testing.assert_array_equal(ms.models, expected.models)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n"] == 12 and metrics["nearest_neighbour_distance"]["min"] >= 0.01
    assert (tmp_path / "run" / "config.toml").read_text().count("seed = 5") == 1
    assert (tmp_path / "run" / "figures" / "gallery.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    png = tmp_path / "g.png"
    assert main(["data", "show", str(out), "--out", str(png), "--n", "4"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_make_zarr_and_config_file(tmp_path):
    cfg = tmp_path / "data.toml"
    cfg.write_text('family = "grf"\nn = 5\nsize = [16, 16]\nvmax = 3.0\n')
    out = tmp_path / "g.zarr"
    assert main(["data", "make", "--config", str(cfg), "--seed", "2", "--out", str(out)]) == 0
    ms = ModelSet.load(out)
    assert (ms.family, len(ms), ms.vmax, ms.seed) == ("grf", 5, 3.0, 2)


def test_import(tmp_path):
    np.save(tmp_path / "m.npy", np.linspace(1500, 3000, 40 * 30).reshape(40, 30))
    out = tmp_path / "user.npz"
    assert main(["data", "import", str(tmp_path / "m.npy"), "--size", "20", "--out", str(out)]) == 0
    ms = ModelSet.load(out)
    assert ms.models.shape == (1, 1, 20, 20) and ms.family == "imported"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["make", "--size", "-5"], "size"),
        (["make", "--vmin", "3", "--vmax", "2"], "vmin"),
        (["make", "--family", "volcano"], "family"),
        (["make", "--n", "0"], "n must be"),
        (["make", "--out-format-typo"], None),
        (["import", "{tmp}/missing.sgy"], "does not exist"),
        (["import", "{tmp}/text.sgy"], "SEG-Y"),
        (["import", "{tmp}/nan.npy"], "NaN"),
        (["show", "{tmp}/missing.npz"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_file(tmp_path, capsys, args, needle):
    (tmp_path / "text.sgy").write_text("not a SEG-Y file\n" * 3)
    bad = np.full((8, 8), 2.0)
    bad[0, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    before = set(tmp_path.iterdir())
    out = tmp_path / ("out.png" if args[0] == "show" else "out.npz")
    argv = ["data"] + [a.format(tmp=tmp_path) for a in args] + ["--out", str(out)]
    if args[0] == "make":
        argv += ["--n", "2"] if "--n" not in args else []
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    if needle is not None:  # our GeomemError: one line naming the problem
        assert err.startswith("error:") and needle in err and "\n" not in err
    assert set(tmp_path.iterdir()) == before
