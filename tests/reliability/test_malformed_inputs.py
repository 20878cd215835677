"""Property tests: random malformed inputs to the public functions and the CLI give either a correct result or
a one-line GeomemError, never another exception, a hang or a NaN output."""

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import count, finite_or_geomem_error

from geomem.cli import main
from geomem.cli.data import DataMakeConfig
from geomem.config import load_config
from geomem.errors import GeomemError, ShapeError
from geomem.geology import ModelSet, make_model_set
from geomem.geology.parameterization import Parameterization
from geomem.physics.acoustic import AcousticOperator
from geomem.physics.acquisition import Geometry
from geomem.posterior.likelihood import Likelihood
from geomem.posterior.linearized import LinearizedPosterior
from geomem.posterior.lookup import lookup_weights
from geomem.priors.memorized import MemorizedPrior
from geomem.priors.training import TrainConfig

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

#: any float, including NaN, ±inf, 0, negative, subnormal and huge
# Devito's compiled operators are built with -ffast-math, which turns on flush-to-zero for the whole process
# once one is loaded (by an earlier test); hypothesis then refuses strategies that may draw subnormals.
any_float = st.floats(allow_nan=True, allow_infinity=True, width=64, allow_subnormal=False)
small_shape = st.lists(st.integers(0, 4), min_size=0, max_size=5).map(tuple)


def arrays(shape, poison: bool):
    """A float64 array of ``shape`` with values in [-2, 5] and, if ``poison``, one NaN / inf / -inf."""
    return st.tuples(st.integers(0, 2**31 - 1), st.sampled_from([np.nan, np.inf, -np.inf])).map(
        lambda t: _array(shape, t[0], t[1] if poison else None))


def _array(shape, seed, bad):
    a = np.random.default_rng(seed).uniform(-2.0, 5.0, shape)
    if bad is not None and a.size:
        a.flat[seed % a.size] = bad
    return a


# ---------------------------------------------------------------------------------------------- Parameterization
@FAST
@given(vmin=any_float, vmax=any_float, v=st.floats(0.0, 1.0, allow_subnormal=False))
def test_parameterization(vmin, vmax, v):
    p = finite_or_geomem_error(Parameterization, vmin, vmax)
    if p is not None:
        assert 0 < vmin < vmax
        vel = vmin + v * (vmax - vmin)
        x = p.to_normalized(vel)
        assert -1 - 1e-9 <= x <= 1 + 1e-9
        assert math.isclose(float(p.to_velocity(x)), vel, rel_tol=1e-9, abs_tol=1e-12 * vmax)


# ---------------------------------------------------------------------------------------------- model sets
@FAST
@given(family=st.sampled_from(["curvefault", "flatvel", "layers", "salt", "nope", ""]),
       n=st.integers(-2, 3), size=st.one_of(st.integers(-1, 12), st.tuples(st.integers(-1, 12), st.integers(-1, 12))),
       seed=st.integers(-3, 5), vmin=st.sampled_from([1.5, 0.0, -1.0, np.nan, 4.5, 2.0]),
       vmax=st.sampled_from([4.5, 1.0, np.inf, 1.5, 3.0]), difficulty=st.sampled_from(["A", "B", "C"]),
       spacing=st.sampled_from([10.0, 0.0, -5.0, np.nan]))
def test_make_model_set_arguments(family, n, size, seed, vmin, vmax, difficulty, spacing):
    ms = finite_or_geomem_error(make_model_set, family=family, n=n, size=size, seed=seed, vmin=vmin, vmax=vmax,
                                difficulty=difficulty, spacing=spacing)
    if ms is not None:
        assert len(ms) == n and ms.models.shape[0] == n and ms.models.ndim == 4
        assert ms.models.min() >= vmin - 1e-6 and ms.models.max() <= vmax + 1e-6
        assert np.all(np.abs(ms.normalized()) <= 1 + 1e-5)


@FAST
@given(data=st.data(), shape=small_shape, poison=st.booleans(), vmin=st.sampled_from([-2.0, 0.5, 1.5]),
       vmax=st.sampled_from([5.0, 1.0, np.nan]))
def test_model_set_constructor(data, shape, poison, vmin, vmax):
    models = data.draw(arrays(shape, poison))
    ms = finite_or_geomem_error(ModelSet, models, "user", None, 10.0, vmin, vmax)
    if ms is not None:
        assert len(shape) == 4 and shape[1] == 1 and shape[0] >= 1 and not poison
        assert ms.models.dtype == np.float32 and np.all(np.abs(ms.normalized()) <= 1 + 1e-5)


# ---------------------------------------------------------------------------------------------- memorized prior
_TRAIN = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (7, 1, 3, 4)))


@FAST
@given(data=st.data(), shape=st.sampled_from(
           [(2, 1, 3, 4), (1, 1, 3, 4), (2, 1, 4, 3), (2, 3, 4), (12,), (0, 1, 3, 4)]),
       poison=st.booleans(), sigma=st.one_of(any_float, st.sampled_from([1e-4, 1e-8, 1e4, 0.0, -1.0])),
       sigma_kind=st.sampled_from(["float", "batch", "wrong-length"]), dtype=st.sampled_from([torch.float32,
                                                                                              torch.float64]))
def test_memorized_prior_denoise_and_log_density(data, shape, poison, sigma, sigma_kind, dtype):
    prior = MemorizedPrior(_TRAIN.to(dtype))
    x = torch.as_tensor(data.draw(arrays(shape, poison)), dtype=dtype)
    s = sigma
    if sigma_kind != "float" and len(shape) and shape[0]:
        s = torch.full((shape[0] + (sigma_kind == "wrong-length"),), sigma, dtype=torch.float64).to(dtype)
    d = finite_or_geomem_error(prior.denoise, x, s)
    lp = finite_or_geomem_error(prior.log_density, x, s)
    if d is not None:
        # the posterior mean is a convex combination of training models: inside their coordinate-wise hull
        flat = _TRAIN.to(dtype).flatten(1)
        lo, hi = flat.min(0).values, flat.max(0).values
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        assert d.shape == x.shape and bool(((d.flatten(1) >= lo - tol) & (d.flatten(1) <= hi + tol)).all())
    assert (d is None) == (lp is None)


# ---------------------------------------------------------------------------------------------- posteriors
@FAST
@given(data=st.data(), n=st.integers(0, 4), dshape=st.sampled_from([(3,), (2, 2), ()]), ydiff=st.booleans(),
       poison=st.booleans(), gamma=st.one_of(any_float, st.sampled_from([1e-8, 1e-3, 1.0])),
       scale=st.sampled_from([1.0, 1e4, 1e8]))
def test_lookup_weights(data, n, dshape, ydiff, poison, gamma, scale):
    F = data.draw(arrays((n, *dshape), poison)) * scale
    y = data.draw(arrays(dshape + ((1,) if ydiff else ()), False)) * scale
    w = finite_or_geomem_error(lambda: lookup_weights(F, Likelihood.of_data(y, gamma)))
    if w is not None:
        assert w.shape == (n,) and np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
        misfit = ((F - y).reshape(n, -1) ** 2).sum(1)
        assert w[np.argmin(misfit)] == w.max()  # the best-fitting model has the largest weight


@settings(FAST, max_examples=40)
@given(data=st.data(), n=st.integers(0, 3), d=st.integers(1, 3), m=st.integers(1, 3), bad=st.sampled_from(
    ["none", "F", "J", "y", "poison"]), sigma=st.sampled_from([0.1, 1e-4, 0.0, -1.0, np.nan]),
       gamma=st.sampled_from([0.5, 1e-6, 0.0, np.inf]))
def test_linearized_posterior_from_arrays(data, n, d, m, bad, sigma, gamma):
    train = data.draw(arrays((n, d), bad == "poison"))
    F = data.draw(arrays((n + (bad == "F"), m), False))
    J = data.draw(arrays((n, m, d + (bad == "J")), False))
    y = data.draw(arrays((m + (bad == "y"),), False))
    post = finite_or_geomem_error(lambda: LinearizedPosterior.from_arrays(Likelihood.of_data(y, gamma), train, F, J,
                                                                          sigma))
    if post is not None:
        w = np.exp(post.log_weights)
        assert np.all(np.isfinite(post.means)) and abs(w.sum() - 1) < 1e-9 and w.shape == (n,)


# ---------------------------------------------------------------------------------------------- geometry, velocity
@FAST
@given(shape=st.tuples(st.integers(-1, 20), st.integers(-1, 20)), spacing=st.sampled_from([10.0, 0.0, -1.0, np.nan]),
       src=st.lists(st.tuples(st.floats(-50, 250, allow_subnormal=False), st.floats(-50, 250, allow_subnormal=False)),
                    min_size=0, max_size=3),
       duplicate=st.booleans(), t_max=st.sampled_from([100.0, 0.0, -1.0, np.inf]),
       f0=st.sampled_from([15.0, 0.0, np.nan]))
def test_geometry_construction(shape, spacing, src, duplicate, t_max, f0):
    src = np.array(src + src[:1] if duplicate else src, dtype=float).reshape(-1, 2)
    rec = np.array([[0.0, 10.0], [10.0, 10.0]])
    g = finite_or_geomem_error(Geometry, shape, (spacing, spacing), src, rec, t_max, f0)
    if g is not None:
        xmax, zmax = (shape[1] - 1) * spacing, (shape[0] - 1) * spacing
        assert np.all((src[:, 0] >= 0) & (src[:, 0] <= xmax) & (src[:, 1] >= 0) & (src[:, 1] <= zmax))
        assert g.nt >= 2 and g.dt > 0


_OP = None


def _operator():
    global _OP
    if _OP is None:  # constructing the operator builds no Devito objects; that happens on the first solve
        _OP = AcousticOperator((6, 5), 10.0, Geometry.surface((6, 5), 10.0, n_src=2, t_max=50.0), nbl=2)
    return _OP


@FAST
@given(data=st.data(), shape=st.sampled_from([(1, 6, 5), (2, 1, 6, 5), (6, 5), (1, 5, 6), (1, 1, 1, 6, 5)]),
       poison=st.booleans(), offset=st.sampled_from([0.0, -3.0, 2.5, 10.0]))
def test_velocity_checks(data, shape, poison, offset):
    v = data.draw(arrays(shape, poison)) * 0.2 + 2.5 + offset
    with warnings.catch_warnings():  # a dispersion warning is allowed: it is advice, not an error
        warnings.simplefilter("ignore")
        out = finite_or_geomem_error(_operator().check_velocity, v)
    if out is not None:
        assert out.dtype == np.float64 and np.all(out > 0) and out.max() <= 4.5


def test_velocity_check_empty_batch():
    with pytest.raises(ShapeError, match="B >= 1"):
        _operator().check_velocity(np.zeros((0, 1, 6, 5)))


# ---------------------------------------------------------------------------------------------- configs
toml_value = st.recursive(
    st.one_of(st.integers(-10, 10), any_float, st.booleans(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
#: characters of a one-line key (a key with a newline in it is echoed as given, on two lines)
_LINE = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp"))
known_keys = st.sampled_from(["steps", "batch_size", "seed", "name", "data", "model", "noise", "optim", "augment",
                              "checkpoint_steps", "device", "save_dtype", "bogus", "family", "n", "size", "vmin",
                              "vmax", "difficulty", "min_distance", "spacing"])


@FAST
@given(cls=st.sampled_from([TrainConfig, DataMakeConfig]),
       values=st.dictionaries(st.one_of(known_keys, st.text(_LINE, max_size=8)), toml_value, max_size=4))
def test_load_config_random_tables(cls, values):
    overrides = {k: v for k, v in values.items() if k}
    cfg = finite_or_geomem_error(load_config, cls, None, overrides)
    if cfg is not None:
        for k, v in overrides.items():
            if not isinstance(v, dict):
                got = getattr(cfg, k)
                assert got == (tuple(v) if isinstance(got, tuple) else v)


def test_load_config_bad_files(tmp_path):
    bad = tmp_path / "bad.toml"
    for text in ("steps = ", "[data]\nn = 'many'", "steps = 1\nsteps = 2", "\x00", "[model]\nchannels = 3"):
        bad.write_text(text, encoding="utf-8")
        assert finite_or_geomem_error(load_config, TrainConfig, bad) is None, text
    assert finite_or_geomem_error(load_config, TrainConfig, tmp_path / "missing.toml") is None


# ---------------------------------------------------------------------------------------------- CLI
#: tokens each of which makes a command line wrong; every argv drawn below holds at least one
BAD_TOKENS = {
    "train": ["bogus=1", "steps=-1", "steps='many'", "batch_size=0", "data.n=true", "model=3", "optim.lr=-1",
              "--config=missing.toml", "--config=bad.toml", "noequals", "--resume"],
    "compare": ["bogus=1", "chains=0", "sampler.split_gibbs.levels='x'", "train_sizes=[-3]", "--config=missing.toml",
                "--config=bad.toml", "--model-set=missing.npz", "--prior=missing_dir", "--workers=-1"],
    "data make": ["--n=0", "--n=-4", "--size=0", "--size=64x", "--vmin=5", "--vmin=nan", "--out=x.txt",
                  "--family=nope", "--difficulty=Z", "--spacing=-1", "--config=bad.toml"],
    "sample": ["--prior=missing_dir", "--prior=memorized", "--n=0", "--steps=1", "--method=rk9",
               "--sigma-min=-1", "--model-set=missing.npz"],
    "stylized": ["--config=missing.toml", "--config=bad.toml", "bogus=1"],
    "model": ["--velocity=missing.npy", "--config=bad.toml", "bogus=1"],
}
OK_TOKENS = {
    "train": ["--config=cfg.toml", "--out=run_t", "--no-progress", "steps=2", "device='cpu'"],
    "compare": ["--out=run_c", "chains=2", "--workers=0"],
    "data make": ["--out=s.npz", "--n=2", "--size=8", "--seed=3"],
    "sample": ["--out=run_s", "--n=2", "--steps=3", "--device=cpu"],
    "stylized": ["--out=run_y"],
    "model": ["--out=run_m"],
}


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "bad.toml").write_text("steps = [1,\n", encoding="utf-8")
    (d / "cfg.toml").write_text("", encoding="utf-8")
    return d


@settings(FAST, max_examples=50)
@given(data=st.data(), command=st.sampled_from(sorted(BAD_TOKENS)))
def test_cli_malformed_argv(cli_dir, capsys, monkeypatch, data, command):
    monkeypatch.chdir(cli_dir)
    bad = data.draw(st.lists(st.sampled_from(BAD_TOKENS[command]), min_size=1, max_size=2, unique=True))
    ok = data.draw(st.lists(st.sampled_from(OK_TOKENS[command]), max_size=3, unique=True))
    argv = command.split() + data.draw(st.permutations(bad + ok))
    _check_cli(argv, capsys, expect=(2,))


@settings(FAST, max_examples=40)
@given(argv=st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8), max_size=3))
def test_cli_random_words(cli_dir, capsys, monkeypatch, argv):
    monkeypatch.chdir(cli_dir)
    if argv and argv[0] in ("version", "--help") or any(a in ("--help", "-h") for a in argv):
        return  # valid: prints and exits 0; exercised below once
    _check_cli(argv, capsys, expect=(0, 2))


def test_cli_help_and_version_are_valid(capsys):
    _check_cli(["--help"], capsys, expect=(0,))
    _check_cli(["data", "make", "--help"], capsys, expect=(0,))


def _check_cli(argv, capsys, expect):
    count("malformed CLI command lines tried")
    capsys.readouterr()
    try:
        code = main(list(argv))
    except GeomemError as exc:  # main() must turn these into exit status 2
        pytest.fail(f"GeomemError escaped main({argv}): {exc}")
    captured = capsys.readouterr()
    err = captured.err
    assert "Traceback" not in err + captured.out, (argv, err)
    assert code in expect, (argv, code, err)
    if code == 2:
        count("CLI exits with status 2")
        assert (err + captured.out).strip(), f"exit 2 without a message for {argv}"  # no args: help on stdout


def test_velocity_outside_the_model_set_range():
    """A truth velocity outside the set's range is refused by the model set, not clamped silently."""
    ms = make_model_set(n=2, size=8)
    bad = ms.models.copy()
    bad[0, 0, 0, 0] = ms.vmax * 1.5
    with pytest.raises(GeomemError, match="widen"):
        ModelSet(bad, ms.family, ms.seed, ms.spacing, ms.vmin, ms.vmax)
    count("malformed inputs tried")
