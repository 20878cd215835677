"""`geomem train` and `geomem sample` end to end on tiny settings (CPU, seconds)."""

import json
from pathlib import Path

import numpy as np

from geomem.cli import main
from geomem.geology import make_model_set

CONFIG = str(Path(__file__).resolve().parents[2] / "data" / "configs" / "train_n50.toml")
TINY = ["steps=6", "batch_size=4", "log_every=3", "checkpoint_steps=[3]", "data.n=6", "data.size=[16, 16]",
        "model.channels=[8, 16]", "model.attention=[false, false]", "model.norm_groups=4",
        "model.attention_head_dim=8", "device='cpu'"]


def test_train_then_sample_learned_and_memorized(tmp_path):
    run = tmp_path / "train"
    assert main(["train", "--config", CONFIG, "--out", str(run), "--no-progress", *TINY]) == 0
    assert (run / "prior" / "model.safetensors").is_file() and (run / "figures" / "loss.png").is_file()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000003", "step_0000006"]
    cfg = json.loads((run / "prior" / "config.json").read_text())
    assert cfg["weights_dtype"] == "float16" and cfg["model_set"]["n"] == 6 and cfg["model_set"]["size"] == [16, 16]

    out = tmp_path / "learned"
    assert main(["sample", "--prior", str(run / "prior"), "--n", "3", "--steps", "4", "--device", "cpu",
                 "--out", str(out)]) == 0
    with np.load(out / "samples.npz") as z:
        assert z["samples_velocity"].shape == (3, 1, 16, 16) and z["nearest_index"].shape == (3, 2)
        assert np.all((z["samples_velocity"] >= 1.5) & (z["samples_velocity"] <= 4.5))
    assert (out / "figures" / "gallery.png").stat().st_size > 0

    ms = make_model_set(n=6, size=(16, 16))
    ms.save(tmp_path / "train.npz")
    mem = tmp_path / "memorized"
    assert main(["sample", "--prior", "memorized", "--model-set", str(tmp_path / "train.npz"), "--n", "4",
                 "--steps", "20", "--device", "cpu", "--out", str(mem)]) == 0
    metrics = json.loads((mem / "metrics.json").read_text())
    assert metrics["nearest_distance_max"] < 1e-4  # the memorized prior returns training models


def test_cli_mistakes_exit_2(tmp_path, capsys):
    assert main(["sample", "--prior", "memorized", "--out", str(tmp_path / "s")]) == 2
    assert "--model-set" in capsys.readouterr().err
    assert main(["train", "--config", CONFIG, "--out", str(tmp_path / "t"), "bogus=1"]) == 2
    assert "unknown config key bogus" in capsys.readouterr().err
    assert main(["sample", "--prior", str(tmp_path / "nothing"), "--out", str(tmp_path / "s2")]) == 2
    assert "config.json is missing" in capsys.readouterr().err
