"""LearnedPrior: EDM preconditioning in closed form, save/load round trip, refusal of bad files and sizes."""

import json

import pytest
import torch

from geomem.errors import CheckpointError, ConfigError, ShapeError
from geomem.priors.learned import LearnedPrior, UNetConfig, build_unet, check_size

TINY = UNetConfig(channels=(8, 16), attention=(False, True), layers_per_block=1, norm_groups=4, attention_head_dim=8)


def tiny_prior(size=(8, 8), seed=0, **meta):
    torch.manual_seed(seed)
    return LearnedPrior(build_unet(TINY, size), sigma_data=0.5, model_set=meta or None)


def test_preconditioning_closed_form():
    prior = tiny_prior()
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sd = 0.5
    with torch.no_grad():
        for p in prior.unet.conv_out.parameters():
            p.zero_()  # F_θ ≡ 0  ⇒  D(x, σ) = c_skip(σ) x
        for sigma in (0.01, 0.5, 3.0):
            assert torch.allclose(prior(x, sigma), sd**2 / (sigma**2 + sd**2) * x, rtol=1e-12, atol=0)
        # F_θ ≡ 1 (output bias 1)  ⇒  D = c_skip x + c_out
        prior.unet.conv_out.bias.fill_(1.0)
        sigma = 0.7
        c_out = sigma * sd / (sigma**2 + sd**2) ** 0.5
        assert torch.allclose(prior(x, sigma), sd**2 / (sigma**2 + sd**2) * x + c_out, rtol=1e-6, atol=1e-7)
    lo, hi = prior.noise_range
    s = torch.tensor([lo, hi, (lo * hi) ** 0.5])
    assert torch.allclose(prior.c_noise(s), torch.tensor([0.0, 1000.0, 500.0]), atol=1e-3)
    assert torch.allclose(prior.loss_weight(torch.tensor([0.5])), torch.tensor([8.0]))  # (0.25+0.25)/0.0625


def test_per_sample_sigma_and_float64_input():
    prior = tiny_prior()
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        both = prior(x, torch.tensor([0.2, 2.0], dtype=torch.float64))
        first, second = prior(x[:1], 0.2), prior(x[1:], 2.0)
    assert both.dtype == torch.float64
    assert torch.allclose(both, torch.cat([first, second]), atol=1e-6)


def test_save_load_round_trip_identical(tmp_path):
    prior = tiny_prior(family="curvefault", vmin=1.5, vmax=4.5, size=[8, 8], n=6)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    prior.save_pretrained(tmp_path / "p32")
    loaded = LearnedPrior.from_pretrained(tmp_path / "p32")
    with torch.no_grad():
        assert torch.equal(prior(x, 0.3), loaded(x, 0.3))
    assert loaded.model_set["n"] == 6 and loaded.model_shape == (1, 8, 8)
    # fp16 storage: loading casts back to float32; outputs agree to fp16 weight rounding
    prior.save_pretrained(tmp_path / "p16", dtype=torch.float16)
    half = LearnedPrior.from_pretrained(tmp_path / "p16")
    size = {k: (tmp_path / k / "model.safetensors").stat().st_size for k in ("p16", "p32")}
    assert size["p16"] < 0.6 * size["p32"]
    with torch.no_grad():
        assert torch.allclose(prior(x, 0.3), half(x, 0.3), atol=5e-3)
        assert torch.equal(half(x, 0.3), LearnedPrior.from_pretrained(tmp_path / "p16")(x, 0.3))


def test_resave_prior_to_fp16_keeps_checksum_and_extra(tmp_path):
    from geomem.priors.learned import read_config, resave_prior

    prior = tiny_prior(family="curvefault", vmin=1.5, vmax=4.5, size=[8, 8], n=6)
    prior.save_pretrained(tmp_path / "p", extra={"train_steps": 7})
    resave_prior(tmp_path / "p", torch.float16)
    cfg = read_config(tmp_path / "p")
    assert cfg["weights_dtype"] == "float16" and cfg["extra"] == {"train_steps": 7}
    half = LearnedPrior.from_pretrained(tmp_path / "p")  # checksum matches the rewritten weights
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(prior(x, 0.3), half(x, 0.3), atol=5e-3)


def test_corrupt_truncated_and_newer_files_are_refused(tmp_path):
    prior = tiny_prior()
    d = prior.save_pretrained(tmp_path / "p")
    weights = d / "model.safetensors"
    blob = weights.read_bytes()
    weights.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        LearnedPrior.from_pretrained(d)
    flipped = bytearray(blob)
    flipped[-10] ^= 0xFF
    weights.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match=str(weights)):
        LearnedPrior.from_pretrained(d)
    weights.write_bytes(blob)
    LearnedPrior.from_pretrained(d)  # intact again
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps(cfg | {"format_version": 99}))
    with pytest.raises(CheckpointError, match="newer"):
        LearnedPrior.from_pretrained(d)
    (d / "config.json").write_text(json.dumps(cfg)[:40])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        LearnedPrior.from_pretrained(d)
    with pytest.raises(CheckpointError, match="missing"):
        LearnedPrior.from_pretrained(tmp_path / "nowhere")


def test_weights_not_matching_config_are_refused(tmp_path):
    d = tiny_prior().save_pretrained(tmp_path / "p")
    small = UNetConfig(channels=(4, 8), attention=(False, False), norm_groups=4, attention_head_dim=4)
    other = LearnedPrior(build_unet(small, (8, 8)))
    other.save_pretrained(tmp_path / "q")
    (d / "model.safetensors").write_bytes((tmp_path / "q" / "model.safetensors").read_bytes())
    cfg = json.loads((d / "config.json").read_text())
    cfg["weights_sha256"] = json.loads((tmp_path / "q" / "config.json").read_text())["weights_sha256"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="does not match the model config"):
        LearnedPrior.from_pretrained(d)


def test_sizes_the_unet_cannot_take():
    with pytest.raises(ShapeError, match="multiple of 4"):
        check_size((64, 30), 3)
    with pytest.raises(ShapeError, match="multiple of 2"):
        build_unet(TINY, (9, 8))
    with pytest.raises(ShapeError, match=r"\(B, 1, 8, 8\)"):
        tiny_prior()(torch.zeros(1, 1, 16, 16), 0.5)
    check_size((64, 48), 3)
    with pytest.raises(ConfigError, match="attention_head_dim"):
        build_unet(UNetConfig(channels=(8, 16), attention=(False, False), norm_groups=4, attention_head_dim=32), (8, 8))


def test_mismatched_model_set_is_refused():
    prior = tiny_prior(family="curvefault", vmin=1.5, vmax=4.5, size=[8, 8], n=6)
    prior.check_model_set("curvefault", 1.5, 4.5, (8, 8))
    with pytest.raises(ConfigError, match="vmax"):
        prior.check_model_set("curvefault", 1.5, 3.0, (8, 8))
    with pytest.raises(ConfigError, match="family"):
        prior.check_model_set("salt", 1.5, 4.5, (8, 8))
