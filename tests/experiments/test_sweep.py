"""`geomem sweep` on the tiny config: nested training sets, one prior per (N, width) with the same step budget,
checkpoint memorization ratios recomputed by brute force, checkpoint loading against the saved prior, the memorized
posterior of each N beside the learned one, the report, and bad input refused before any work."""

import hashlib
import json

import numpy as np
import pytest
import torch

from geomem.cli import main
from geomem.config import load_config
from geomem.errors import ConfigError
from geomem.experiments.sweep import SweepConfig, grid, run_name, run_sweep
from geomem.priors.learned import LearnedPrior
from geomem.workflow.priors import checkpoint_prior, checkpoints
from geomem.workflow.problem import load_model_set
from geomem.workflow.scoring import PRIMARY

TINY = "data/configs/sweep_tiny.toml"
# smaller still than the shipped tiny config, to keep the test near 30 s on one core
FAST = {"train.steps": 16, "train.checkpoint_steps": [8], "samples.n": 12, "sampler.split_gibbs.levels": 3, "chains": 2,
        "posterior_steps": [8]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    cfg = load_config(SweepConfig, TINY, FAST)
    return cfg, out, run_sweep(cfg, out, progress=False)


def test_every_prior_has_the_same_step_budget_on_a_nested_prefix(tiny):
    cfg, out, metrics = tiny
    ms = load_model_set(cfg.model_set)
    assert [(r["n"], r["width"]) for r in metrics["training"]] == grid(cfg) == [(6, 4), (6, 8), (12, 4), (12, 8)]
    for n, w in grid(cfg):
        run = out / "train" / run_name(n, w)
        assert [s for s, _ in checkpoints(run)] == [8, 16]
        saved = json.loads((run / "prior" / "config.json").read_text())["model_set"]
        prefix = np.ascontiguousarray(ms.normalized()[:n], dtype=np.float32)
        assert saved["n"] == n and saved["models_sha256"] == hashlib.sha256(prefix.tobytes()).hexdigest()
        assert saved["size"] == [16, 16]
    params = {r["width"]: r["parameters"] for r in metrics["training"]}
    assert params[8] > 2 * params[4]  # two capacities


def test_checkpoint_prior_is_the_saved_final_prior(tiny):
    _, out, _ = tiny
    run = out / "train" / "n6_w8"
    step, ckpt = checkpoints(run)[-1]
    a = checkpoint_prior(run, ckpt)
    b = LearnedPrior.from_pretrained(run / "prior")  # the same EMA weights, saved in fp16
    x = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        da, db = a(x, 0.5), b(x, 0.5)
    assert step == 16
    assert torch.allclose(da, db, atol=2e-2)
    assert not torch.allclose(da, checkpoint_prior(run, checkpoints(run)[0][1])(x, 0.5), atol=1e-4)


def test_sample_ratios_match_brute_force_nearest_neighbours(tiny):
    cfg, out, metrics = tiny
    ms = load_model_set(cfg.model_set)
    train = ms.normalized().astype(np.float64)
    for n, w in grid(cfg):
        with np.load(out / "samples" / f"{run_name(n, w)}_s16.npz") as f:
            kept = f["kept_normalized"].reshape(len(f["kept_normalized"]), -1)
            ratio_k, nearest = f["samples__ratio_k"], f["samples__nearest"]
        d = np.linalg.norm(kept[:, None, :] - train[:n].reshape(1, n, -1), axis=2)
        d.sort(axis=1)
        k = min(50, n)
        np.testing.assert_allclose(ratio_k[: len(kept)], d[:, 0] / d[:, 1:k].mean(1), rtol=1e-9)
        assert nearest.max() < n
    rows = [r for r in metrics["samples"] if r["n"] == 6 and r["width"] == 4]
    assert [r["step"] for r in rows] == [8, 16]
    with np.load(out / "samples" / "nulls_n6.npz") as f:
        expect = float(np.mean(f["heldout__ratio_k"] < 0.5))
    assert rows[0]["memorization"]["rates"][PRIMARY]["heldout"]["rate"] == pytest.approx(expect)


def test_memorized_posterior_beside_each_learned_one(tiny):
    cfg, out, metrics = tiny
    kinds = {(r["n"], r["posterior"]) for r in metrics["posteriors"]}
    for n in cfg.train_sizes:
        assert {(n, k) for k in ("learned", "memorized", "linearized", "lookup")} <= kinds
        look = next(r for r in metrics["posteriors"] if r["n"] == n and r["posterior"] == "lookup")
        # the σ → 0 posterior of the memorized prior draws training models themselves (d1 = 0): all flagged,
        # with the held-out null beside it
        assert look["rates"]["samples"]["rate"] == 1.0 and look["rates"]["heldout"]["rate"] < 1.0
        assert look["distinct_nearest"] <= cfg.chains
    # one memorized / linearized / lookup row per N, whatever the widths and checkpoints
    assert sorted(r["n"] for r in metrics["posteriors"] if r["posterior"] == "memorized") == sorted(cfg.train_sizes)
    learned = [r for r in metrics["posteriors"] if r["posterior"] == "learned"]
    assert sorted((r["n"], r["width"], r["step"]) for r in learned) == sorted(
        (n, w, s) for n, w in grid(cfg) for s in (8, 16))
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 + 2 * len(grid(cfg))


def test_checkpoints_differ_in_the_learned_posterior_only(tiny):
    _, out, _ = tiny
    with np.load(out / "posteriors" / "n6_w4_s8.npz") as a, np.load(out / "posteriors" / "n6_w8_s16.npz") as b:
        # the memorized counterpart is computed once per N and shared by every (width, checkpoint)
        np.testing.assert_array_equal(a["memorized__velocity"], b["memorized__velocity"])
        np.testing.assert_array_equal(a["linearized__velocity"], b["linearized__velocity"])
        assert not np.array_equal(a["learned__velocity"], b["learned__velocity"])
    with np.load(out / "posteriors" / "n6_w4_s8.npz") as a, np.load(out / "posteriors" / "n6_w4_s16.npz") as b:
        assert not np.array_equal(a["learned__velocity"], b["learned__velocity"])
    assert (out / "figures" / "rate_vs_n.png").is_file() and (out / "figures" / "rate_vs_step.png").is_file()


def test_training_row_of_a_stopped_run_comes_from_its_log(tiny):
    """A training stopped early has no metrics.json; its table row is read from train_log.jsonl instead."""
    from geomem.experiments.sweep import _from_train_log

    _, out, _ = tiny
    run = out / "train" / "n6_w4"
    m = json.loads((run / "metrics.json").read_text())
    log = _from_train_log(run)
    assert log["final_loss"] == m["final_loss"]
    assert 0 < log["wall_s_this_process"] <= m["wall_s_this_process"]
    assert log["last_step"] == m["steps"] == 16  # the row's last step when the checkpoints were not kept
    assert _from_train_log(out / "train" / "missing") == {}


def test_rate_vs_n_says_when_a_prior_stopped_early(tiny):
    """A prior whose last checkpoint is earlier than the others' is labelled with its own step."""
    from geomem.report.sweep_figures import rate_vs_n

    _, _, metrics = tiny
    rows = [r for r in metrics["samples"] if not (r["n"] == 6 and r["width"] == 4 and r["step"] == 16)]
    ax = rate_vs_n(rows, PRIMARY).axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "samples, width 4 (step 8/16)" in labels and "samples, width 8 (step 16)" in labels
    assert [t.get_text() for t in ax.texts] == ["step 8"]


def test_bad_input_is_refused_before_work(tmp_path):
    with pytest.raises(ConfigError, match="held-out pool"):
        run_sweep(load_config(SweepConfig, TINY, {"train_sizes": [6, 30]}), tmp_path / "a")
    with pytest.raises(ConfigError, match="past train.steps"):
        run_sweep(load_config(SweepConfig, TINY, {"train.checkpoint_steps": [500]}), tmp_path / "b")
    with pytest.raises(ConfigError, match="not checkpoint steps"):
        run_sweep(load_config(SweepConfig, TINY, {"posterior_steps": [7]}), tmp_path / "e")
    with pytest.raises(ConfigError, match="not in this sweep"):
        run_sweep(load_config(SweepConfig, TINY, {"stages": ["train"]}), tmp_path / "c", only="n7_w4")
    with pytest.raises(ConfigError, match="train_sizes is empty"):
        run_sweep(load_config(SweepConfig, TINY, {"train_sizes": []}), tmp_path / "f")
    assert not any((tmp_path / p).exists() for p in "abcef")
    assert main(["sweep", "-c", TINY, "--out", str(tmp_path / "d"), "train_sizes=[2]"]) == 2


def test_stop_at_hands_a_training_on_and_the_resumed_prior_equals_an_uninterrupted_one(tiny, tmp_path):
    """``--stop-at`` (how scripts/gpu/sweep_50k.sh moves a prior between GPUs): the first call stops at the step
    with a checkpoint, a second call at the same step leaves it alone, a call without it resumes to the end, and
    the final EMA weights equal those of the uninterrupted run of the fixture (same seed, same schedule)."""
    cfg, out, _ = tiny
    args = ["sweep", "-c", TINY, "--out", str(tmp_path), "--stage", "train", "--run", "n6_w4", "--no-progress",
            *(f"{k}={json.dumps(v)}" for k, v in FAST.items())]
    assert main(args + ["--stop-at", "5"]) == 0
    run = tmp_path / "train" / "n6_w4"
    assert [s for s, _ in checkpoints(run)] == [5]
    assert main(args + ["--stop-at", "5"]) == 0
    assert [s for s, _ in checkpoints(run)] == [5]
    assert main(args) == 0
    assert [s for s, _ in checkpoints(run)] == [5, 8, 16]
    from safetensors.torch import load_file

    a = load_file(run / "checkpoints" / "step_0000016" / "ema.safetensors")
    b = load_file(out / "train" / "n6_w4" / "checkpoints" / "step_0000016" / "ema.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
