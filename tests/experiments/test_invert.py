"""`geomem invert` on a tiny survey: memorized prior, modelled and observed data, bad input."""

import json

import numpy as np

from geomem.cli import main

TINY = ["model_set.n=30", "model_set.size=16", "model_set.heldout_start=20", "survey.n_src=2",
        "survey.t_max=250.0", "survey.nbl=6", "sampler.split_gibbs.levels=4", "sampler.split_gibbs.mala_steps=2",
        "workers=0", "n_train=10"]


def test_invert_with_memorized_prior_writes_samples(tmp_path):
    out = tmp_path / "run"
    assert main(["invert", "--prior", "memorized", "--chains", "3", "--out", str(out), "truth=train:2", *TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    with np.load(out / "samples.npz") as f:
        # the memorized prior gets the exact posterior: training models (train:2 itself here) noised to σ_min
        assert f["velocity"].shape == (3, 1, 16, 16) and np.isfinite(f["velocity"]).all()
        assert f["component_weights"].shape == (10,) and int(np.argmax(f["component_weights"])) == 2
        y, gamma = f["y"], float(f["gamma"])
    assert metrics["n_diverged"] == 0 and "rmse" in metrics
    assert (out / "figures" / "posterior.png").is_file()
    # observed data from a file, with its noise level, give a run too
    np.save(tmp_path / "y.npy", y)
    out2 = tmp_path / "run2"
    assert main(["invert", "--prior", "memorized", "--chains", "2", "--out", str(out2), "--data",
                 str(tmp_path / "y.npy"), f"gamma={gamma}", *TINY]) == 0
    assert "rmse" not in json.loads((out2 / "metrics.json").read_text())


def test_invert_bad_input_exits_2(tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 4)))
    cases = [
        ["--data", str(tmp_path / "bad.npy"), "gamma=0.1"],   # wrong shape for the survey
        ["--data", str(tmp_path / "missing.npy"), "gamma=0.1"],
        ["--prior", str(tmp_path)],                            # not a prior folder
        ["sampler.method=nope"],
        ["truth=train:99"],
    ]
    for extra in cases:
        argv = ["invert", "--out", str(tmp_path / "x"), *TINY, *(["--prior", "memorized"] if "--prior" not in extra
                                                               else []), *extra]
        assert main(argv) == 2, extra
        assert "Traceback" not in capsys.readouterr().err
