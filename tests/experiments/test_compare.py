"""`geomem compare` on a tiny configuration: runs end to end with a (tiny) learned prior and the memorized prior,
writes the metrics and a report, flags memorized-prior samples as memorized beside the held-out null."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from geomem.cli import main
from geomem.config import load_config
from geomem.errors import ConfigError, DataFileError
from geomem.experiments.compare import CompareConfig, run_compare
from geomem.experiments.invert import InvertConfig
from geomem.priors.learned import LearnedPrior
from geomem.workflow.posteriors import sampled_posterior
from geomem.workflow.priors import memorized_prior
from geomem.workflow.problem import Problem, load_model_set

TINY_TOML = "data/configs/compare_tiny.toml"


@pytest.fixture(scope="module")
def tiny_prior(tmp_path_factory, train_tiny_prior):
    """A tiny UNet trained for a few steps on the first 12 models of the tiny model set (CPU, seconds)."""
    ms = load_model_set(load_config(CompareConfig, TINY_TOML).model_set)
    return train_tiny_prior(ms, 12, (32, 32), 10, tmp_path_factory.mktemp("prior"))


@pytest.fixture(scope="module")
def tiny_run(tiny_prior, tmp_path_factory):
    cfg = load_config(CompareConfig, TINY_TOML, {"priors": [str(tiny_prior)], "train_sizes": []})
    out = tmp_path_factory.mktemp("compare")
    return out, run_compare(cfg, out, progress=False)


def test_compare_writes_metrics_and_report(tiny_run):
    out, metrics = tiny_run
    assert (out / "report.html").is_file() and (out / "config.toml").is_file()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["sizes"] == [12]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 8
    for spec in ("heldout:0", "train:0"):
        res = saved["truths"][spec]["sizes"]["12"]
        assert set(res["memorization"]) == {"learned", "memorized", "linearized", "lookup"}
        assert "learned <-> memorized" in res["quality"]["energy_distance"]


def test_default_recipes_sample_the_learned_posterior_with_the_started_annealed_sampler(tiny_prior):
    """compare and invert default to the sampler chosen in docs/posterior.md ("Which sampler when"): `annealed`,
    8 levels × 4 MALA steps (40 gradients per sample) from 32 importance-resampled prior draws; the learned
    posterior goes through it (the memorized prior keeps the exact sampler)."""
    default = load_config(CompareConfig, None).sampler
    assert default == load_config(InvertConfig, None).sampler
    assert default.method == "annealed" and default.config.prior_draws == 32 and default.config.start_sigma == 2.0
    tiny = load_config(CompareConfig, TINY_TOML)  # its model set and survey; the default sampler, not its pinned one
    problem = Problem.build(tiny.model_set, tiny.survey)
    _, lik = problem.likelihood("heldout:0", tiny.noise, 0, 12)
    post = sampled_posterior(LearnedPrior.from_pretrained(tiny_prior), lik, 2, default, seed=0)
    assert post.method == "annealed" and post.info["gradients_per_sample"] == 40
    assert len(post.info["start_draws"]) == 2 and post.info["start_ess"] >= 1.0
    assert post.info["forwards_per_sample"] >= 32 / 2  # the start's forward solves, shared by the chains
    assert np.isfinite(post.samples).all() and not post.diverged.any()
    assert sampled_posterior(memorized_prior(problem.train(12)), lik, 2, default, seed=0).method == "exact"


def test_memorized_prior_samples_are_flagged_beside_their_nulls(tiny_run):
    _, metrics = tiny_run
    for spec in ("heldout:0", "train:0"):
        rates = metrics["truths"][spec]["sizes"]["12"]["memorization"]["memorized"]["memorization"]["rates"]
        r = rates["d1/mean(d2..dk) < 0.5"]
        # samples at σ_min = 0.01 sit on training models: every one is flagged ...
        assert r["samples"]["rate"] == 1.0
        # ... while the nulls are reported beside them and are clearly lower
        assert r["heldout"]["rate"] < 0.5 and r["leave_one_out"]["rate"] < 0.5


def test_linearized_and_lookup_fit_a_training_truth_to_the_noise_level(tiny_run):
    _, metrics = tiny_run
    q = metrics["truths"]["train:0"]["sizes"]["12"]["quality"]["posteriors"]
    assert q["lookup"]["misfit/noise"] == pytest.approx(1.0, abs=0.1)
    assert q["linearized"]["misfit/noise"] == pytest.approx(1.0, abs=0.1)


def test_rerun_reuses_finished_stages(tiny_run, tiny_prior):
    out, metrics = tiny_run
    cached = {p: p.stat().st_mtime_ns for p in (out / "cache").rglob("*.npz")}
    assert len(cached) >= 6  # forward cache, linearized and two DPS stages per truth
    cfg = load_config(CompareConfig, TINY_TOML, {"priors": [str(tiny_prior)], "train_sizes": []})
    again = run_compare(cfg, out, progress=False)
    assert {p: p.stat().st_mtime_ns for p in (out / "cache").rglob("*.npz")} == cached  # nothing recomputed
    assert again["truths"] == metrics["truths"]
    a = np.load(out / "samples_train0_n12.npz")["memorized__velocity"]
    assert np.isfinite(a).all()


def test_bad_inputs_fail_before_work(tmp_path, tiny_prior):
    with pytest.raises(DataFileError, match="no config.json"):
        run_compare(load_config(CompareConfig, TINY_TOML, {"priors": [str(tmp_path)]}), tmp_path / "x")
    with pytest.raises(ConfigError, match="different model set"):
        run_compare(load_config(CompareConfig, TINY_TOML, {"priors": [str(tiny_prior)], "model_set.vmax": 5.0}),
                    tmp_path / "y")
    # same family, range and size, but other models than the prior was trained on (seed 1): refused, with the override
    # named; deliberate cross-set use is allowed with allow_other_set
    with pytest.raises(ConfigError, match="allow_other_set"):
        run_compare(load_config(CompareConfig, TINY_TOML, {"priors": [str(tiny_prior)], "model_set.seed": 1}),
                    tmp_path / "y")
    with pytest.raises(ConfigError, match="truth"):
        run_compare(load_config(CompareConfig, TINY_TOML, {"truths": ["train:50"]}), tmp_path / "z")
    with pytest.raises(ConfigError, match="nothing to compare"):
        run_compare(load_config(CompareConfig, TINY_TOML, {"truths": []}), tmp_path / "z")
    with pytest.raises(ConfigError, match="device must be"):
        run_compare(load_config(CompareConfig, TINY_TOML, {"device": "gpu0"}), tmp_path / "z")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            run_compare(load_config(CompareConfig, TINY_TOML, {"device": "cuda"}), tmp_path / "z")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert main(["compare", "-c", TINY_TOML, "--out", str(tmp_path / "w"), "--model-set", "nope.npz"]) == 2


@pytest.mark.skipif(not any(shutil.which(c) for c in ("chromium", "/usr/bin/chromium")),
                    reason="Chromium is not installed (apt-get install chromium); the render check needs a browser")
def test_report_renders_every_figure_in_headless_chromium(tiny_run):
    out, _ = tiny_run
    proc = subprocess.run([sys.executable, "scripts/render_report.py", str(out / "report.html")],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compare_on_observed_data_without_a_truth(tiny_run, tmp_path):
    """User shot records (.npy) with their noise level: every posterior and memorization rate, no truth metrics."""
    out, _ = tiny_run
    with np.load(out / "truth_train0.npz") as f:
        y, gamma = f["y"], float(f["gamma"])
    np.save(tmp_path / "shots.npy", y)
    cfg = load_config(CompareConfig, TINY_TOML, {"data": str(tmp_path / "shots.npy"), "gamma": gamma})
    metrics = run_compare(cfg, tmp_path / "obs", progress=False)
    res = metrics["truths"]["observed"]["sizes"]["12"]
    assert "rmse" not in res["quality"]["posteriors"]["lookup"]
    assert res["quality"]["posteriors"]["lookup"]["misfit/noise"] == pytest.approx(1.0, abs=0.1)
    assert res["memorization"]["memorized"]["memorization"]["rates"]["d1/mean(d2..dk) < 0.5"]["samples"]["rate"] == 1
    assert (tmp_path / "obs" / "report.html").is_file()
    with pytest.raises(ConfigError, match="gamma"):
        run_compare(load_config(CompareConfig, TINY_TOML, {"data": str(tmp_path / "shots.npy")}), tmp_path / "o2")


def test_changed_inputs_are_recomputed_never_reused(tmp_path):
    """Same settings, same run folder, but the model-set file (then the observed data file) replaced at the same
    path: every cached stage is recomputed from the new contents, nothing computed from the old ones is reported."""
    from geomem.geology import make_model_set

    path, out = tmp_path / "set.npz", tmp_path / "run"
    fast = {"model_set.path": str(path), "truths": ["train:0"], "chains": 2, "sampler.split_gibbs.levels": 3}
    cfg = load_config(CompareConfig, TINY_TOML, fast)
    make_model_set("curvefault", n=40, size=32, seed=0).save(path)
    run_compare(cfg, out, progress=False)
    first = np.load(out / "samples_train0_n12.npz")["lookup__velocity"]
    other = make_model_set("curvefault", n=40, size=32, seed=1)
    other.save(path)
    run_compare(cfg, out, progress=False)
    with np.load(out / "samples_train0_n12.npz") as f:
        for kind in ("lookup", "linearized", "memorized"):
            v = f[f"{kind}__velocity"].reshape(2, -1)
            # every sample is near a model of the new set, none is a model of the old one
            d_new = np.linalg.norm(v[:, None] - other.models[:12].reshape(1, 12, -1), axis=2).min(1)
            d_old = np.linalg.norm(v[:, None] - first.reshape(1, 2, -1), axis=2).min(1)
            assert (d_new < d_old).all(), kind
    # observed data replaced at the same path: the posteriors follow the new data
    y_path = tmp_path / "y.npy"
    obs = {**fast, "data": str(y_path), "gamma": 1e-3}
    truth = np.load(out / "truth_train0.npz")
    np.save(y_path, truth["y"])
    a = run_compare(load_config(CompareConfig, TINY_TOML, obs), out, progress=False)
    np.save(y_path, 2.0 * truth["y"])
    b = run_compare(load_config(CompareConfig, TINY_TOML, obs), out, progress=False)
    misfit = {k: m["truths"]["observed"]["sizes"]["12"]["quality"]["posteriors"]["lookup"]["misfit/noise"]
              for k, m in (("a", a), ("b", b))}
    assert misfit["a"] != misfit["b"]
