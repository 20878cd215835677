"""The GPU fast path of training (``TrainConfig.compile``): on the CPU it is ignored, so CPU training is the same
bit for bit; bad values are refused; on CUDA (skipped without a GPU) the compiled step trains like the eager one."""

import numpy as np
import pytest
import torch

from geomem.config import load_config
from geomem.errors import ConfigError
from geomem.priors.learned import UNetConfig
from geomem.priors.training import DataConfig, OptimConfig, TrainConfig, Trainer

TINY = UNetConfig(channels=(8, 16), attention=(False, False), layers_per_block=1, norm_groups=4, attention_head_dim=8)


def _cfg(**kw):
    base = dict(steps=10, batch_size=4, data=DataConfig(n=6, size=(8, 8)), model=TINY,
                optim=OptimConfig(warmup_steps=2), log_every=5, device="cpu")
    return TrainConfig(**(base | kw))


def _data():
    return np.random.default_rng(0).uniform(-1, 1, (6, 1, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compile_is_ignored_on_cpu(mode):
    eager, fast = Trainer(_cfg(), _data()), Trainer(_cfg(compile=mode), _data())
    assert not fast.compiled
    for _ in range(3):
        assert torch.equal(eager.train_step(), fast.train_step())
    for a, b in zip(eager.unet.parameters(), fast.unet.parameters(), strict=True):
        assert torch.equal(a, b)


def test_bad_compile_mode_is_refused(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('compile = "max-speed"\n')
    with pytest.raises(ConfigError, match="compile must be one of"):
        load_config(TrainConfig, path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_step_trains_like_eager_on_cuda():
    """Same seed, same data: the compiled fp32 loss equals the eager one to float32 rounding at the first step,
    and 20 steps later both have lowered the loss."""
    data = _data()
    kw = dict(device="cuda", bf16=False, channels_last=False, steps=40)
    eager, fast = Trainer(_cfg(**kw), data), Trainer(_cfg(compile="default", **kw), data)
    assert fast.compiled
    l0e, l0f = eager.train_step(), fast.train_step()
    torch.testing.assert_close(l0f, l0e, rtol=1e-4, atol=1e-5)
    for _ in range(20):
        le, lf = eager.train_step(), fast.train_step()
    assert float(le) < float(l0e) and float(lf) < float(l0f)
