"""Data-parallel training (``WORLD_SIZE > 1``, accelerate + DDP) on 2 CPU processes (gloo backend).

Oracle: a 2-process run draws the same global batches as one process and averages the per-rank gradients, so its
weights equal the one-process run's up to float32 rounding; a 2-process run stopped and resumed equals an
uninterrupted 2-process run bit for bit; both ranks hold bitwise identical weights.

This file is also the worker that ``torchrun`` starts (``python -m torch.distributed.run ... <this file> DIR``).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from geomem.errors import ConfigError
from geomem.priors.learned import UNetConfig
from geomem.priors.training import DataConfig, OptimConfig, TrainConfig, Trainer, train

pytest.importorskip("accelerate")

TINY = UNetConfig(channels=(8, 16), attention=(False, False), layers_per_block=1, norm_groups=4, attention_head_dim=8)
# Float32 tolerance between 1 and 2 processes: DDP's all-reduce sums the two half-batch gradients in another
# order than one backward pass over the whole batch, and convolutions on batch 2 instead of 4 may round
# differently. AdamW divides each gradient by its running RMS, so an element whose gradient is small moves by
# ~lr per step whatever its size, and its rounding differences are amplified: measured ≤ 1.5e-7 absolute after
# 24 steps on one x86 CPU and up to 2.6e-6 (one element of a conv weight; all others ≤ 2.4e-7) on another.
# ATOL = 1e-5 (1 % of lr = 1e-3) holds on both and stays 1000× below how far training moves the weights
# (> 1e-2, asserted below). Exception: the attention key bias ``to_k.bias`` has an identically zero gradient
# (softmax(q·(k + b)) over keys is invariant to the shift q·b), so its "gradient" is rounding noise that AdamW
# normalizes to steps of size ~lr in either run; it is left out.
RTOL, ATOL = 1e-5, 1e-5
ZERO_GRAD = "to_k.bias"


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(steps=24, batch_size=4, data=DataConfig(n=6, size=(8, 8)), model=TINY,
                optim=OptimConfig(warmup_steps=5, lr=1e-3), log_every=6, checkpoint_steps=(12,), device="cpu")
    return TrainConfig(**(base | kw))


def tiny_data() -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (6, 1, 8, 8)).astype(np.float32)


def _worker(root: Path) -> None:
    """One rank: a straight run, a stopped + resumed run, a refused odd batch, and per-rank weights."""
    data = tiny_data()
    cfg = tiny_cfg()
    train(cfg, root / "ddp", data, progress=False)
    train(cfg, root / "ddp_resumed", data, progress=False, stop_at=9)
    train(cfg, root / "ddp_resumed", data, progress=False, resume=True)
    try:
        Trainer(tiny_cfg(batch_size=3), data)
        odd = ""
    except ConfigError as exc:
        odd = str(exc)
    tr = Trainer(cfg, data)
    for _ in range(5):
        tr.train_step()
    torch.save({k: v.clone() for k, v in tr.unet.state_dict().items()}, root / f"rank{tr.rank}.pt")
    if tr.is_main:
        (root / "worker.json").write_text(json.dumps({"world": tr.world, "odd_batch_error": odd}))


def _launch(root: Path) -> None:
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", __file__, str(root)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def _weights(run: Path, step: int, name: str) -> dict[str, torch.Tensor]:
    return load_file(run / "checkpoints" / f"step_{step:07d}" / name)


def test_two_processes_equal_one_process_and_resume_is_exact(tmp_path):
    _launch(tmp_path)
    single = train(tiny_cfg(), tmp_path / "single", tiny_data(), progress=False)
    info = json.loads((tmp_path / "worker.json").read_text())
    assert info["world"] == 2
    assert "must be divisible by the 2 processes" in info["odd_batch_error"]

    # 2 processes vs 1: same batches, averaged gradients -> same weights up to float32 rounding
    for name in ("model.safetensors", "ema.safetensors"):
        a, b = _weights(tmp_path / "ddp", 24, name), _weights(tmp_path / "single", 24, name)
        assert a.keys() == b.keys()
        for k in (k for k in a if not k.endswith(ZERO_GRAD)):
            torch.testing.assert_close(a[k], b[k], rtol=RTOL, atol=ATOL, msg=f"{name}:{k}")
    # the training moved the weights far more than the tolerance (the comparison is not vacuous)
    start = Trainer(tiny_cfg(), tiny_data()).unet.state_dict()
    moved = max(float((b[k] - start[k]).abs().max()) for k in b)
    assert moved > 1e-2
    # logged global loss is the mean over ranks, equal to the one-process loss
    log2 = [json.loads(x) for x in (tmp_path / "ddp" / "train_log.jsonl").read_text().splitlines()]
    log1 = [json.loads(x) for x in (single.run / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log2] == [r["step"] for r in log1] == [6, 12, 18, 24]
    np.testing.assert_allclose([r["loss"] for r in log2], [r["loss"] for r in log1], rtol=1e-5)

    # 2 processes stopped at 9 and resumed == 2 processes straight, bit for bit
    for name in ("model.safetensors", "ema.safetensors"):
        a, b = _weights(tmp_path / "ddp", 24, name), _weights(tmp_path / "ddp_resumed", 24, name)
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "ddp" / "prior" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["processes"] == 2

    # both ranks hold the same weights
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert all(torch.equal(r0[k], r1[k]) for k in r0)


def test_batch_must_divide_among_processes(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ConfigError, match="multiple of 3"):
        Trainer(tiny_cfg(batch_size=4), tiny_data())
    with pytest.raises(ConfigError, match="chosen per rank"):
        Trainer(tiny_cfg(batch_size=6, device="cuda:1"), tiny_data())


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
