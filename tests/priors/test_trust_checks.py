"""A prior is checked against the models it is used with; training refuses changed data and divergence; saved
prior configs are checked field by field (issue 18, items 2, 3 and 7). Tiny CPU settings (seconds)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from geomem.cli import main
from geomem.config import load_config
from geomem.errors import CheckpointError, ConfigError, DivergenceError
from geomem.geology import make_model_set
from geomem.priors.learned import LearnedPrior, check_training_set, models_sha256
from geomem.priors.prior_config import MAX_PARAMETERS
from geomem.priors.training import TrainConfig, last_checkpoint, train

TINY = Path(__file__).resolve().parents[2] / "data" / "configs" / "train_tiny.toml"


def tiny(overrides: dict | None = None) -> TrainConfig:
    """The tiny CPU config with dotted overrides."""
    return load_config(TrainConfig, TINY, {"steps": 6, "log_every": 2, "checkpoint_steps": [2]} | (overrides or {}))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny prior trained on the first 8 models of curvefault seed 0 (16×16)."""
    root = tmp_path_factory.mktemp("trained")
    res = train(tiny(), root / "run", progress=False)
    return res.prior_dir


def test_models_hash_is_recorded_and_checked(trained):
    prior = LearnedPrior.from_pretrained(trained)
    same = make_model_set(n=8, size=(16, 16), seed=0)
    assert prior.model_set["models_sha256"] == models_sha256(same) == models_sha256(same.normalized())
    check_training_set(prior, same)  # the training set itself
    check_training_set(prior, make_model_set(n=12, size=(16, 16), seed=0))  # ... as the prefix of a larger set
    other = make_model_set(n=8, size=(16, 16), seed=1)
    with pytest.raises(ConfigError, match="allow_other_set") as err:
        check_training_set(prior, other)
    msg = str(err.value)
    assert prior.model_set["models_sha256"][:16] in msg and models_sha256(other)[:16] in msg and "\n" not in msg
    check_training_set(prior, other, allow_other_set=True)  # deliberate cross-set use
    with pytest.raises(ConfigError, match="holds 4"):
        check_training_set(prior, make_model_set(n=4, size=(16, 16), seed=0))
    check_training_set(prior, same.normalized())  # a normalized array works too


def test_sample_refuses_a_prior_with_another_training_set(trained, tmp_path, capsys):
    make_model_set(n=8, size=(16, 16), seed=1).save(tmp_path / "seed1.npz")
    argv = ["sample", "--prior", str(trained), "--model-set", str(tmp_path / "seed1.npz"), "--n", "2", "--steps",
            "3", "--device", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "models_sha256" in err and "--allow-other-set" in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()
    assert main([*argv, "--out", str(tmp_path / "s2"), "--allow-other-set"]) == 0


def test_resume_refuses_changed_training_data(tmp_path):
    data = tmp_path / "set.npz"
    make_model_set(n=8, size=(16, 16), seed=0).save(data)
    cfg = tiny({"data.path": str(data)})
    res = train(cfg, tmp_path / "run", stop_at=2, progress=False)
    assert res.interrupted and res.steps_done == 2
    make_model_set(n=8, size=(16, 16), seed=3).save(data)  # same path, other models
    with pytest.raises(ConfigError, match="training data changed"):
        train(cfg, tmp_path / "run", resume=True, progress=False)
    make_model_set(n=8, size=(16, 16), seed=0).save(data)  # the original data: resume works
    assert train(cfg, tmp_path / "run", resume=True, progress=False).steps_done == 6


@pytest.mark.parametrize("override, first_bad", [("optim.lr=1e30", None), ("noise.p_mean=1e6", 1)])
def test_diverging_training_stops_with_an_error_and_saves_no_prior(tmp_path, capsys, override, first_bad):
    out = tmp_path / "run"
    code = main(["train", "--config", str(TINY), "--out", str(out), "--no-progress", "steps=8", "log_every=4",
                 "checkpoint_steps=[1]", override])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: training diverged") and err.count("\n") == 1, err
    assert not (out / "prior").exists()
    if first_bad is not None:
        assert f"step {first_bad}" in err
    ckpt = last_checkpoint(out / "checkpoints")
    if ckpt is not None:  # only checkpoints written before the divergence, with finite weights
        from safetensors.numpy import load_file

        assert str(ckpt) in err
        assert all(np.isfinite(v).all() for v in load_file(ckpt / "model.safetensors").values())


def test_divergence_is_detected_in_the_api(tmp_path):
    with pytest.raises(DivergenceError, match="not finite"):
        train(tiny({"optim.lr": 1e30}), tmp_path / "run", progress=False)


@pytest.mark.parametrize("name", ["../../x", "/abs/path", "a/b", "..", ".", "", " x", "a\\b"])
def test_training_run_names_are_plain(tmp_path, capsys, name):
    with pytest.raises(ConfigError, match="plain name"):
        tiny({"name": name})
    assert main(["train", "--config", str(TINY), f"name='{name}'"]) == 2
    assert "plain name" in capsys.readouterr().err


def _mutated(trained, tmp_path, change) -> Path:
    folder = tmp_path / "prior"
    shutil.copytree(trained, folder)
    cfg = json.loads((folder / "config.json").read_text())
    change(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


BAD_FIELDS = {
    "weights_file": [lambda c: c.update(weights_file="/etc/passwd"), lambda c: c.update(weights_file="../x"),
                     lambda c: c.update(weights_file=3)],
    "unet": [lambda c: c.update(unet="google/ddpm-cifar10-32"), lambda c: c.update(unet=[1, 2])],
    "unet.block_out_channels": [lambda c: c["unet"].update(block_out_channels="64"),
                                lambda c: c["unet"].update(block_out_channels=[])],
    "unet.sample_size": [lambda c: c["unet"].update(sample_size=[16, -1]),
                         lambda c: c["unet"].update(sample_size=1e9)],
    "unet.layers_per_block": [lambda c: c["unet"].update(layers_per_block="1")],
    "unet.norm_num_groups": [lambda c: c["unet"].update(norm_num_groups=3)],
    "unet.down_block_types": [lambda c: c["unet"].update(down_block_types=["os.system", "DownBlock2D"])],
    "unet.in_channels": [lambda c: c["unet"].update(in_channels=3)],
    "sigma_data": [lambda c: c.update(sigma_data="half"), lambda c: c.update(sigma_data=-1.0),
                   lambda c: c.pop("sigma_data")],
    "noise_range": [lambda c: c.update(noise_range=[1.0]), lambda c: c.update(noise_range=[2.0, 1.0]),
                    lambda c: c.update(noise_range={"lo": 1})],
    "weights_sha256": [lambda c: c.update(weights_sha256=None)],
    "weights_dtype": [lambda c: c.update(weights_dtype="int8")],
    "model_shape": [lambda c: c.update(model_shape=[1, 8, 8])],
    "model_set": [lambda c: c.update(model_set=[1]), lambda c: c["model_set"].update(n="8"),
                  lambda c: c["model_set"].update(models_sha256=5)],
}


@pytest.mark.parametrize("field, i", [(f, i) for f, changes in BAD_FIELDS.items() for i in range(len(changes))])
def test_prior_config_is_checked_field_by_field(trained, tmp_path, field, i):
    folder = _mutated(trained, tmp_path, BAD_FIELDS[field][i])
    with pytest.raises(CheckpointError, match=f"field {field}") as err:
        LearnedPrior.from_pretrained(folder)
    assert "\n" not in str(err.value)


def test_huge_channel_counts_are_refused_before_allocating(trained, tmp_path):
    def change(c):
        c["unet"].update(block_out_channels=[1 << 16, 1 << 16], norm_num_groups=1, attention_head_dim=None)

    with pytest.raises(CheckpointError, match="parameters") as err:
        LearnedPrior.from_pretrained(_mutated(trained, tmp_path, change))
    assert f"{MAX_PARAMETERS:.3g}" in str(err.value)


def test_weights_symlink_may_not_leave_the_prior_folder(trained, tmp_path):
    folder = _mutated(trained, tmp_path, lambda c: None)
    outside = tmp_path / "elsewhere.safetensors"
    (folder / "model.safetensors").rename(outside)
    (folder / "model.safetensors").symlink_to(outside)
    with pytest.raises(CheckpointError, match="outside the prior folder"):
        LearnedPrior.from_pretrained(folder)
