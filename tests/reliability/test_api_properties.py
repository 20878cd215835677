"""Property tests over public entry points: for any input, a call either returns a result that passes its oracle
or raises a GeomemError subclass with a one-line message; no other exception type, no NaN, no hang.

The same properties run twice: a fast subset in the normal suite (``FAST_EXAMPLES`` per property) and, marked
slow, ``SLOW_EXAMPLES`` per property (10,800 examples, about 12,000 calls). The number of calls made is added to the
reliability figures (``api property calls``)."""

from __future__ import annotations

import json
import math
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reliability_helpers import count

from geomem.config import from_dict, load_toml, parse_override
from geomem.errors import GeomemError
from geomem.geology import make_model_set
from geomem.geology.io import import_models
from geomem.priors.learned import check_training_set, models_sha256
from geomem.priors.memorized import MemorizedPrior
from geomem.priors.prior_config import check_prior_config
from geomem.priors.training import TrainConfig
from geomem.runs import check_plain_name

FAST_EXAMPLES = 30
SLOW_EXAMPLES = 1200
_SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)

# allow_subnormal=False: once a Devito library is loaded in the process (-ffast-math), the CPU flushes subnormals
# to zero and hypothesis refuses to generate them; the suite must not depend on test order
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False), st.sampled_from(
    [0.0, -0.0, 1e-320, 5e-324, 1e-155, 1e-100, 1e200, -1e200, 1e308, 1.0, 0.5, 80.0]))


def any_array(dtype: str, shape) -> st.SearchStrategy:
    """Arrays of ``dtype`` with any values but subnormals (see ``floats``)."""
    dt = np.dtype(dtype)
    return hnp.arrays(dt, shape, elements=hnp.from_dtype(dt, **({"allow_subnormal": False} if dt.kind in "fc" else {})))


TRAIN = torch.tensor(np.random.default_rng(0).uniform(-1, 1, (7, 1, 2, 3)))
PRIOR = MemorizedPrior(TRAIN)


def geomem_error_or(fn, *args, **kwargs):
    """``fn(...)`` or ``None`` when it raised a GeomemError with a one-line message (any other exception fails)."""
    count("api property calls")
    try:
        return fn(*args, **kwargs)
    except GeomemError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), repr(exc)
        count("api property calls refused with a GeomemError")
        return None


def prop_memorized_denoise(data):
    shape = data.draw(st.sampled_from([(2, 1, 2, 3), (1, 1, 2, 3), (3, 6), (2, 1, 3, 2), (0, 1, 2, 3), (1, 2, 3)]))
    dtype = data.draw(st.sampled_from([np.float64, np.float32]))
    x = data.draw(hnp.arrays(dtype, shape, elements=floats.map(lambda v: float(np.clip(v, -3e38, 3e38))
                                                                if dtype == np.float32 else v)))
    sigma = data.draw(st.one_of(floats, st.lists(floats, min_size=1, max_size=3).map(np.array)))
    s = torch.as_tensor(sigma, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    method = data.draw(st.sampled_from(["denoise", "score", "responsibilities", "log_density"]))
    out = geomem_error_or(getattr(PRIOR, method), torch.from_numpy(x), s)
    if out is None:
        return
    if method == "denoise":  # a convex combination of the training models: inside their bounding box
        assert out.shape == x.shape and torch.isfinite(out).all()
        flat = out.reshape(len(x), -1).double()
        lo, hi = TRAIN.reshape(7, -1).min(0).values, TRAIN.reshape(7, -1).max(0).values
        tol = 1e-5 if dtype == np.float32 else 1e-9
        assert bool(((flat >= lo - tol) & (flat <= hi + tol)).all())
    elif method == "responsibilities":
        total = out.double().sum(1)
        assert torch.isfinite(out).all() and torch.allclose(total, torch.ones_like(total), atol=1e-5)
    elif method == "log_density":
        assert not torch.isnan(out).any()


def prop_check_training_set(data):
    n = data.draw(st.integers(1, 5))
    models = np.random.default_rng(data.draw(st.integers(0, 3))).uniform(-1, 1, (n, 1, 2, 2)).astype(np.float32)
    meta = data.draw(st.fixed_dictionaries({}, optional={
        "n": st.one_of(st.integers(-2, 7), st.text(max_size=3), st.none(), st.floats(allow_subnormal=False)),
        "models_sha256": st.one_of(st.just(models_sha256(models[:2])), st.text(max_size=64), st.none())}))
    allow = data.draw(st.booleans())
    geomem_error_or(check_training_set, meta, models, allow)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), floats, st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda c: st.one_of(st.lists(c, max_size=3),
                                                             st.dictionaries(st.text(max_size=6), c, max_size=3)),
                           max_leaves=8)


def prop_prior_config(data):
    base = {"format_version": 1, "unet": {"sample_size": [16, 16], "in_channels": 1, "out_channels": 1,
                                          "block_out_channels": [8, 16], "layers_per_block": 1, "norm_num_groups": 4,
                                          "attention_head_dim": 8, "down_block_types": ["DownBlock2D"] * 2,
                                          "up_block_types": ["UpBlock2D"] * 2},
            "sigma_data": 0.5, "noise_range": [0.002, 80.0], "weights_sha256": "0" * 64, "model_set": {}}
    cfg = json.loads(json.dumps(base))
    for _ in range(data.draw(st.integers(1, 3))):
        table = data.draw(st.sampled_from([cfg, cfg["unet"]] if isinstance(cfg.get("unet"), dict) else [cfg]))
        key = data.draw(st.sampled_from(sorted(table) + ["weights_file", "model_shape", "bogus"]))
        table[key] = data.draw(json_values)
    geomem_error_or(check_prior_config, cfg, Path("config.json"))


def prop_import_models(data):
    dtype = data.draw(st.sampled_from(["f8", "f4", "i4", "U2", "c16", "?", "u1"]))
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=5))
    arr = data.draw(any_array(dtype, shape))
    size = data.draw(st.one_of(st.none(), st.integers(-2, 9), st.tuples(st.integers(-1, 6), st.integers(-1, 6))))
    units = data.draw(st.sampled_from(["auto", "km/s", "m/s", "mph"]))
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "m.npy", arr)
        ms = geomem_error_or(import_models, Path(tmp) / "m.npy", size=size, units=units)
    if ms is not None:
        assert np.isfinite(ms.models).all() and ms.models.min() >= ms.vmin - 1e-4 and ms.models.max() <= ms.vmax + 1e-4


def prop_toml_and_overrides(data):
    raw = data.draw(st.one_of(st.binary(max_size=60), st.text(max_size=40).map(lambda t: t.encode("utf-8", "replace"))))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "c.toml").write_bytes(raw)
        parsed = geomem_error_or(load_toml, Path(tmp) / "c.toml")
    if parsed is not None:
        geomem_error_or(from_dict, TrainConfig, parsed)
    geomem_error_or(parse_override, data.draw(st.text(max_size=30)))


def prop_train_config(data):
    keys = ["name", "steps", "batch_size", "seed", "device", "save_dtype", "data", "model", "optim", "noise", "bogus"]
    table = data.draw(st.dictionaries(st.sampled_from(keys), json_values, max_size=4))
    cfg = geomem_error_or(from_dict, TrainConfig, table)
    if cfg is not None:
        assert "/" not in cfg.name and cfg.name not in ("", ".", "..")


def prop_plain_name(data):
    name = data.draw(st.text(alphabet=string.printable + "é/\\\0", max_size=12))
    out = geomem_error_or(check_plain_name, name)
    if out is not None:
        assert Path(out).name == out and out not in (".", "..")


def prop_make_model_set(data):
    kwargs = dict(family=data.draw(st.sampled_from(["curvefault", "flatvel", "salt", "grf", "nope"])),
                  n=data.draw(st.integers(-1, 3)), size=data.draw(st.one_of(st.integers(-1, 12), st.just((8, 0)))),
                  spacing=data.draw(floats), seed=data.draw(st.integers(-1, 3)),
                  vmin=data.draw(st.sampled_from([1.5, 0.0, -1.0, math.nan, 5.0])),
                  vmax=data.draw(st.sampled_from([4.5, 1.0, math.inf])))
    ms = geomem_error_or(make_model_set, **kwargs)
    if ms is not None:
        assert len(ms) == kwargs["n"] and np.isfinite(ms.models).all()
        assert ms.models.min() >= ms.vmin - 1e-5 and ms.models.max() <= ms.vmax + 1e-5


def prop_load_observed(data):
    from geomem.physics.acquisition import Geometry
    from geomem.physics.observed import load_observed, read_observed, save_observed

    survey = Geometry.surface((6, 8), 10.0, n_src=2, t_max=30.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "o.npz"
        save_observed(path, np.zeros((2, survey.nt, 8)), survey)
        fields = dict(np.load(path))
        for _ in range(data.draw(st.integers(0, 3))):
            key = data.draw(st.sampled_from(sorted(fields) + ["bogus"]))
            if data.draw(st.booleans()):
                fields.pop(key, None)
            else:
                dtype = data.draw(st.sampled_from(["f8", "i8", "U3", "?", "c8"]))
                shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
                fields[key] = data.draw(any_array(dtype, shape))
        np.savez(path, **fields)
        obs = geomem_error_or(load_observed, path)
        if obs is not None:
            assert np.isfinite(obs.data).all() and obs.data.shape == (obs.geometry.n_src, obs.geometry.nt,
                                                                      obs.geometry.n_rec)
            y = geomem_error_or(read_observed, path, survey)
            assert y is None or y.shape == (2, survey.nt, 8)


PROPERTIES = [prop_memorized_denoise, prop_check_training_set, prop_prior_config, prop_import_models,
              prop_toml_and_overrides, prop_train_config, prop_plain_name, prop_make_model_set,
              prop_load_observed]


def _run(prop, examples: int) -> None:
    from hypothesis import given

    settings(max_examples=examples, **_SETTINGS)(given(data=st.data())(prop))()


@pytest.mark.parametrize("prop", PROPERTIES, ids=lambda p: p.__name__[5:])
def test_api_property_fast(prop):
    _run(prop, FAST_EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("prop", PROPERTIES, ids=lambda p: p.__name__[5:])
def test_api_property_slow(prop):
    _run(prop, SLOW_EXAMPLES)
