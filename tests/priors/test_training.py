"""Trainer: the loss drives the network toward the exact memorized denoiser, resume is bit-for-bit, checkpoints
are refused when damaged, bad training sets are refused."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from geomem.errors import CheckpointError, ConfigError, ShapeError, ValueRangeError
from geomem.priors import MemorizedPrior
from geomem.priors.learned import LearnedPrior, UNetConfig
from geomem.priors.training import DataConfig, OptimConfig, TrainConfig, Trainer, last_checkpoint, lr_factor, train

TINY = UNetConfig(channels=(8, 16), attention=(False, False), layers_per_block=1, norm_groups=4, attention_head_dim=8)


def tiny_cfg(**kw):
    base = dict(steps=40, batch_size=4, data=DataConfig(n=6, size=(8, 8)), model=TINY,
                optim=OptimConfig(warmup_steps=5), log_every=10, device="cpu")
    return TrainConfig(**(base | kw))


def tiny_data(n=6, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 1, 8, 8)).astype(np.float32)


def test_training_moves_toward_the_memorized_denoiser():
    """The minimizer of the EDM loss on a finite set is the memorized (mixture) denoiser: after 300 steps on 6
    images the error against MemorizedPrior at σ = 0.3 and 1.0 falls by more than 5× from initialization."""
    data = tiny_data()
    mem = MemorizedPrior(torch.as_tensor(data))
    cfg = tiny_cfg(steps=300, batch_size=16, model=UNetConfig(channels=(16, 32), attention=(False, False),
                   norm_groups=4, attention_head_dim=8), optim=OptimConfig(lr=2e-3, warmup_steps=20, ema_decay=0.99))
    tr = Trainer(cfg, data)

    def err(prior, s):
        g = torch.Generator().manual_seed(5)
        x0 = torch.as_tensor(data)[torch.randint(0, 6, (64,), generator=g)]
        x = x0 + s * torch.randn(x0.shape, generator=g)
        with torch.no_grad():
            return float(((prior(x, s) - mem(x, s)) ** 2).mean())

    before = {s: err(tr.prior, s) for s in (0.3, 1.0)}
    for _ in range(cfg.steps):
        tr.train_step()
    after = {s: err(tr.ema_prior(), s) for s in (0.3, 1.0)}
    for s in before:
        assert after[s] < before[s] / 5, (s, before[s], after[s])


def test_resume_reproduces_uninterrupted_run_bit_for_bit(tmp_path):
    cfg = tiny_cfg(steps=40, checkpoint_steps=(20,))
    data = tiny_data()
    straight = train(cfg, tmp_path / "a", data, progress=False)
    stopped = train(cfg, tmp_path / "b", data, progress=False, stop_at=17)
    assert stopped.interrupted and stopped.steps_done == 17 and stopped.prior_dir is None
    assert last_checkpoint(tmp_path / "b" / "checkpoints").name == "step_0000017"
    resumed = train(cfg, tmp_path / "b", data, progress=False, resume=True)
    assert resumed.steps_done == 40 and not resumed.interrupted
    for name in ("model.safetensors", "ema.safetensors"):
        a = load_file(tmp_path / "a" / "checkpoints" / "step_0000040" / name)
        b = load_file(tmp_path / "b" / "checkpoints" / "step_0000040" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    x = torch.as_tensor(data[:2])
    pa, pb = LearnedPrior.from_pretrained(straight.prior_dir), LearnedPrior.from_pretrained(resumed.prior_dir)
    with torch.no_grad():
        assert torch.equal(pa(x, 0.5), pb(x, 0.5))
    log = [json.loads(line) for line in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [10, 17, 20, 30, 40]
    assert (tmp_path / "a" / "figures" / "loss.png").stat().st_size > 0
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["steps"] == 40
    assert not list((tmp_path / "a" / "checkpoints").glob(".*tmp*"))


def test_damaged_checkpoint_gives_a_clear_error(tmp_path):
    cfg = tiny_cfg(steps=20)
    data = tiny_data()
    train(cfg, tmp_path / "r", data, progress=False, stop_at=10)
    ckpt = tmp_path / "r" / "checkpoints" / "step_0000010"
    ema = ckpt / "ema.safetensors"
    ema.write_bytes(ema.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="ema.safetensors is corrupt or truncated"):
        train(cfg, tmp_path / "r", data, progress=False, resume=True)
    (ckpt / "complete.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete or corrupt"):
        train(cfg, tmp_path / "r", data, progress=False, resume=True)


def test_resume_and_restart_mistakes(tmp_path):
    cfg = tiny_cfg(steps=10)
    data = tiny_data()
    with pytest.raises(ConfigError, match="same settings"):
        train(cfg, tmp_path / "none", data, progress=False, resume=True)
    train(cfg, tmp_path / "r", data, progress=False, stop_at=5)
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, tmp_path / "r", data, progress=False)
    with pytest.raises(ConfigError, match="same settings"):
        train(tiny_cfg(steps=12), tmp_path / "r", data, progress=False, resume=True)


def test_bad_training_sets_are_refused(tmp_path):
    cfg = tiny_cfg()
    bad = tiny_data()
    bad[2, 0, 3, 3] = np.nan
    with pytest.raises(ValueRangeError, match="NaN"):
        train(cfg, tmp_path / "nan", bad, progress=False)
    with pytest.raises(ValueRangeError, match="empty"):
        train(cfg, tmp_path / "empty", np.zeros((0, 1, 8, 8), np.float32), progress=False)
    with pytest.raises(ShapeError, match="multiple of 2"):
        train(tiny_cfg(data=DataConfig(n=6, size=(9, 8))), tmp_path / "odd",
              np.zeros((6, 1, 9, 8), np.float32), progress=False)
    with pytest.raises(ShapeError, match=r"\(N, 1, nz, nx\)"):
        train(cfg, tmp_path / "rank", np.zeros((6, 8, 8), np.float32), progress=False)
    assert not (tmp_path / "nan").exists()


def test_lr_schedule_warmup_and_cosine():
    o = OptimConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, o, 110) == pytest.approx(0.1)
    assert lr_factor(9, o, 110) == pytest.approx(1.0)
    assert lr_factor(60, o, 110) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(110, o, 110) == pytest.approx(0.1)
