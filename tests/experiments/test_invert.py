"""`geomem invert` on a tiny survey: memorized prior, modelled and observed data, a learned prior's device, bad
input."""

import json

import numpy as np
import pytest
import torch

from geomem.cli import main
from geomem.config import load_config, parse_override
from geomem.errors import ConfigError
from geomem.experiments.invert import InvertConfig, run_invert
from geomem.workflow.problem import load_model_set

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
        ["device=gpu0"],
        ["device=cuda:99"],                                    # no such GPU (none at all on a CPU machine)
    ]
    for extra in cases:
        argv = ["invert", "--out", str(tmp_path / "x"), *TINY, *(["--prior", "memorized"] if "--prior" not in extra
                                                               else []), *extra]
        assert main(argv) == 2, extra
        assert "Traceback" not in capsys.readouterr().err


def _overrides(items: list[str]) -> dict:
    return dict(parse_override(item) for item in items)


@pytest.fixture(scope="module")
def tiny_learned_prior(tmp_path_factory, train_tiny_prior):
    """A tiny UNet trained for a few steps on the first 10 models of the tiny invert model set (CPU, seconds)."""
    ms = load_model_set(load_config(InvertConfig, None, _overrides(TINY)).model_set)
    return train_tiny_prior(ms, 10, (16, 16), 6, tmp_path_factory.mktemp("prior"))


def test_invert_default_device_on_a_machine_without_gpu_gives_the_cpu_samples(tmp_path, tiny_learned_prior,
                                                                              monkeypatch):
    """device = "auto" (the default) on a machine without a GPU puts the learned prior's network on the CPU and
    draws exactly the samples of an explicit device = "cpu" run of the same seed (the same code on the same
    device in one process): CPU results did not change with the setting."""
    base = _overrides(TINY) | {"prior": str(tiny_learned_prior), "chains": 2, "sampler.method": "split_gibbs"}
    cpu = load_config(InvertConfig, None, base | {"device": "cpu"})
    default = load_config(InvertConfig, None, base)
    assert default.device == "auto"
    run_invert(cpu, tmp_path / "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # "auto" as on a CPU-only machine
    metrics = run_invert(default, tmp_path / "auto")
    assert metrics["device"] == "cpu"
    with np.load(tmp_path / "cpu" / "samples.npz") as a, np.load(tmp_path / "auto" / "samples.npz") as b:
        assert set(a.files) == set(b.files) and "velocity" in a.files
        assert np.isfinite(a["velocity"]).all() and a["velocity"].shape == (2, 1, 16, 16)
        for name in (n for n in a.files if "wall_time" not in n):  # all but the timing
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_invert_device_errors_say_what_to_change(tmp_path, monkeypatch):
    """The same device check as compare: a malformed name, a GPU on a machine without one, a GPU index this machine
    does not have; each fails before any work with a ConfigError naming the setting's allowed values."""
    base = _overrides(TINY) | {"prior": "memorized"}
    with pytest.raises(ConfigError, match="device must be 'auto', 'cpu' or 'cuda"):
        run_invert(load_config(InvertConfig, None, base | {"device": "gpu0"}), tmp_path / "a")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA GPU is available; use device='auto' or 'cpu'"):
        run_invert(load_config(InvertConfig, None, base | {"device": "cuda"}), tmp_path / "b")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"1 CUDA GPU\(s\) \(cuda:0 to cuda:0\); use one of those"):
        run_invert(load_config(InvertConfig, None, base | {"device": "cuda:1"}), tmp_path / "c")
    assert not any((tmp_path / d).exists() for d in "abc")


def test_full_budget_invert_config_uses_the_validated_compare_sampler():
    """data/configs/invert_full.toml and compare_gpu.toml carry the same sampler (the one measured at full size in
    docs/posterior.md, "Hamiltonian moves"), and it stays within issue 16's budget of 2,000 gradients per sample."""
    from geomem.experiments.compare import CompareConfig

    inv = load_config(InvertConfig, "data/configs/invert_full.toml", {})
    cmp = load_config(CompareConfig, "data/configs/compare_gpu.toml", {})
    assert inv.sampler == cmp.sampler and inv.chains == cmp.chains == 16
    a = inv.sampler.annealed
    assert (inv.sampler.method, a.moves) == ("annealed", "hmc")
    assert a.steps * (a.mala_steps + 1) <= 2000
