"""`geomem rules` on a tiny config (CPU, one ε, one capacity, a few training steps, a 3-step DPS posterior): the run
folder, the table, the figures, per-kind rates beside their nulls, exception hits per copy count, and bad input."""

import json

import numpy as np
import pytest

from geomem.cli import main
from geomem.config import load_config
from geomem.experiments.rules import RulesConfig, memorization_by_kind
from geomem.geology.mixtures import MixtureSettings, heldout_exceptions, heldout_rules, make_mixture_set, mixture_labels
from geomem.workflow.training import capacity_unet

TINY = "data/configs/rules_tiny.toml"
FAST = ["epsilons=[0.5]", "training.steps=8", "n_samples=6", "sample_steps=4", "posterior.sampler.split_gibbs.levels=3"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rules")
    assert main(["rules", "-c", TINY, "-o", str(out), *FAST]) == 0
    return out


def test_rules_cli_writes_tables_and_figures(tiny_run):
    m = json.loads((tiny_run / "metrics.json").read_text())
    (key, res), = m["results"].items()
    assert key == "eps0.5_a1_c8" and res["epsilon"] == 0.5 and res["capacity"] == 8
    mem = res["memorization"]
    for k in ("memorized_exception", "null_exception", "memorized_rule", "null_rule", "coverage_exception",
              "null_coverage_exception"):
        assert k in mem
    assert sum(mem["exception_copies"]) == 12 and len(mem["exception_hits"]) == 3
    assert mem["n_near_exception"] + mem["n_near_rule"] == 6
    gen = res["generalization"]["0.1"]
    assert gen["gen_ratio"] == pytest.approx(gen["learned_heldout"] / gen["memorized_heldout"])
    assert set(res["posterior"]) == {"exception", "rule_heldout", "rule_train"}
    assert all(np.isfinite(v["rmse_kms"]) for v in res["posterior"].values())
    assert "memorized exc. (null)" in (tiny_run / "table.md").read_text()
    for f in ("memorized_vs_epsilon.png", "coverage_vs_copies.png", "generalization_vs_epsilon.png"):
        assert (tiny_run / "figures" / f).stat().st_size > 1000


def test_memorization_by_kind_on_planted_copies():
    """Samples that are exact copies of exception facts are all flagged; held-out models (the nulls) are not."""
    s = MixtureSettings(n=24, size=16, epsilon=0.5, n_exceptions=3, perturbation=0.01)
    ms = make_mixture_set(s)
    lab = mixture_labels(ms)
    x = ms.normalized().astype(np.float64)
    f = lab.facts()
    copies = np.array([(lab.exception_id == lab.exception_id[i]).sum() if lab.is_exception[i] else 1 for i in f])
    exc_facts = f[lab.is_exception[f]]
    samples = np.concatenate([x[exc_facts[[0, 0, 1]]], x[f[:2]]])  # 3 exception copies, 2 rule copies
    m = memorization_by_kind(samples, x[f], lab.kind[f], copies, heldout_rules(s, 6).normalized(),
                             heldout_exceptions(s, 6).normalized(), 0.5, 0)
    assert m["memorized_exception"] == 1.0 and m["memorized_rule"] == 1.0
    assert m["exception_hits"] == [2, 1, 0] and m["exception_copies"] == copies[lab.is_exception[f]].tolist()
    assert m["coverage_exception"] == pytest.approx(2 / 3) and m["coverage_rule"] == pytest.approx(2 / 12)
    assert m["null_exception"] < 1 and m["null_rule"] < 1


def test_bad_input(tmp_path):
    assert main(["rules", "-c", TINY, "-o", str(tmp_path / "r"), "capacities=[6]"]) == 2
    assert main(["rules", "-c", TINY, "-o", str(tmp_path / "r"), "mixture.exception_family=curvefault"]) == 2
    assert load_config(RulesConfig, TINY).capacities == (8,)
    assert capacity_unet(16, 3).channels == (16, 32, 64)


def test_training_jobs_spread_over_visible_gpus(monkeypatch, tmp_path):
    """device = "auto" with several GPUs: job i trains on cuda:(i mod #GPUs); explicit devices are kept."""
    import geomem.workflow.training as training_mod
    from geomem.workflow.training import TrainingSettings, train_all, train_config

    seen = []
    monkeypatch.setattr(training_mod.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(training_mod.torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(training_mod, "_train_job", lambda cfg, out, path: seen.append(cfg.device))
    jobs = [(train_config(TrainingSettings(device=d), 8, 16, 0, f"j{i}"), tmp_path / f"j{i}", tmp_path / "s.npz")
            for i, d in enumerate(["auto", "auto", "auto", "cpu"])]
    train_all(jobs, workers=0)
    assert seen == ["cuda:0", "cuda:1", "cuda:0", "cpu"]
