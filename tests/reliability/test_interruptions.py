"""Interruptions: SIGKILL at a random moment never leaves a corrupt checkpoint, model set or run folder, and the
next run resumes to the uninterrupted result; SIGTERM/SIGINT stop cleanly with what is finished saved."""

import random
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from reliability_helpers import REPO, check_complete, count, is_debris, start, wait_for
from safetensors.torch import load_file

from geomem.config import load_config, parse_override
from geomem.geology import ModelSet
from geomem.priors.training import TrainConfig, last_checkpoint, train

CONFIG = REPO / "data" / "configs" / "train_n50.toml"
#: a UNet of a few thousand weights on 8×8 models; a checkpoint after every step so kills land mid-write
TINY = ["steps=50", "batch_size=4", "log_every=7", "checkpoint_every=1", "data.n=6", "data.size=[8, 8]",
        "model.channels=[8, 16]", "model.attention=[false, false]", "model.norm_groups=4",
        "model.attention_head_dim=8", "model.layers_per_block=1", "optim.warmup_steps=5", "device='cpu'"]


def _tiny_cfg() -> TrainConfig:
    return load_config(TrainConfig, CONFIG, dict(parse_override(o) for o in TINY))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    train(_tiny_cfg(), out, progress=False)
    return out


def _same_weights(a: Path, b: Path) -> None:
    def weights(folder: Path) -> list[str]:  # a SIGKILL mid-write may leave a temporary file: never a result
        return sorted(p.name for p in folder.glob("*.safetensors") if not is_debris(p.relative_to(folder)))

    names = weights(b)
    assert names and names == weights(a)
    for name in names:
        wa, wb = load_file(a / name), load_file(b / name)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), name


def _kill_training(run: Path, seed: int, sig: int) -> tuple[str, int]:
    """Start ``geomem train`` into ``run``, wait for its first checkpoint, wait a seeded random delay, send
    ``sig``; return the process's stdout and exit status."""
    proc = start(["train", "--config", str(CONFIG), "--out", str(run), "--no-progress", *TINY], cwd=run.parent)
    try:
        assert wait_for(lambda: last_checkpoint(run / "checkpoints") is not None, 120, proc), proc.communicate()
        wait_for(lambda: False, random.Random(seed).uniform(0.0, 0.4))
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "Traceback" not in err, err
    return out, proc.returncode


def _resume_and_compare(run: Path, uninterrupted: Path) -> None:
    check_complete(run)
    res = train(_tiny_cfg(), run, resume=True, progress=False)
    assert res.steps_done == 50 and not res.interrupted
    check_complete(run)
    _same_weights(run / "checkpoints" / "step_0000050", uninterrupted / "checkpoints" / "step_0000050")
    _same_weights(run / "prior", uninterrupted / "prior")


def test_sigkill_during_training_then_resume_equals_uninterrupted(tmp_path, uninterrupted):
    run = tmp_path / "killed"
    _, code = _kill_training(run, seed=0, sig=signal.SIGKILL)
    if code == -signal.SIGKILL:
        count("SIGKILLs survived")
    _resume_and_compare(run, uninterrupted)


@pytest.mark.slow
def test_sigterm_stops_training_with_a_checkpoint(tmp_path, uninterrupted):
    run = tmp_path / "term"
    out, code = _kill_training(run, seed=1, sig=signal.SIGTERM)
    assert code == 0 and "stopped (resume with --resume)" in out, out
    step = int(last_checkpoint(run / "checkpoints").name.split("_")[1])
    assert f"step {step}," in out  # the checkpoint is at the step where it stopped
    count("SIGTERM/SIGINT stops checked")
    _resume_and_compare(run, uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 6))
def test_repeated_sigkills_then_resume(tmp_path, uninterrupted, seed):
    """Kill the same run several times in a row at random moments (seeded); resume each time."""
    run = tmp_path / "killed"
    for k in range(3):
        if k == 0 or last_checkpoint(run / "checkpoints") is None:
            args, resume = [], False
        else:
            args, resume = ["--resume"], True
        proc = start(["train", "--config", str(CONFIG), "--out", str(run), "--no-progress", *args, *TINY],
                     cwd=tmp_path)
        wait_for(lambda: False, random.Random(seed * 10 + k).uniform(3.0, 8.0), proc)
        proc.kill()
        proc.communicate()
        count("SIGKILLs survived")
        check_complete(run) if run.exists() else None
        if resume:
            assert last_checkpoint(run / "checkpoints") is not None
    if last_checkpoint(run / "checkpoints") is None:  # killed before its first checkpoint: start again
        train(_tiny_cfg(), run, progress=False)
        _same_weights(run / "prior", uninterrupted / "prior")
    else:
        _resume_and_compare(run, uninterrupted)


@pytest.mark.parametrize("suffix", [".npz", pytest.param(".zarr", marks=pytest.mark.slow)])
def test_sigkill_while_writing_a_model_set(tmp_path, suffix):
    """Kill ``geomem data make`` while it generates and writes: the target is absent or a complete set equal to
    an uninterrupted one; temporary files are never read as a set; a rerun writes the full set."""
    target = tmp_path / f"set{suffix}"
    argv = ["data", "make", "--n", "400", "--size", "32", "--seed", "5", "--out", str(target)]
    for delay in (random.Random(7).uniform(4.0, 6.0),):
        proc = start(argv, cwd=tmp_path)
        wait_for(lambda: False, delay, proc)
        proc.kill()
        proc.communicate()
        count("SIGKILLs survived")
        if target.exists():
            assert len(ModelSet.load(target)) == 400
        for p in tmp_path.iterdir():
            assert p == target or is_debris(p.relative_to(tmp_path)), p
    proc = start(argv, cwd=tmp_path)
    assert proc.wait(timeout=120) == 0
    ms = ModelSet.load(target)
    from geomem.geology import make_model_set

    np.testing.assert_array_equal(ms.models, make_model_set(n=400, size=32, seed=5).models)


def test_sigterm_outside_training_unwinds_atomic_writes(tmp_path):
    """SIGTERM during ``geomem sample`` (no handler of its own) aborts with a message and exit status 130; nothing it
    wrote is partial."""
    from geomem.geology import make_model_set

    make_model_set(n=20, size=16).save(tmp_path / "train.npz")
    out = tmp_path / "sample"
    proc = start(["sample", "--prior", "memorized", "--model-set", str(tmp_path / "train.npz"), "--n", "64",
                  "--steps", "4000", "--device", "cpu", "--out", str(out)], cwd=tmp_path)
    assert wait_for(lambda: (out / "provenance.json").is_file(), 120, proc)
    wait_for(lambda: False, 0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Aborted" in err and "Traceback" not in err, err
    count("SIGTERM/SIGINT stops checked")
    check_complete(out)
    assert not (out / "samples.npz").exists() and not [p for p in out.rglob("*") if is_debris(p.relative_to(out))]
