"""Bad-input harness: run 300+ malformed ``geomem`` command lines and classify what each one does.

    OMP_NUM_THREADS=1 python scripts/bad_input_harness.py [--out harness.json] [--timeout 120] [-k WORD]

Every case is one command line run through :func:`geomem.cli.main` in a forked child process (the parent
imports geomem, torch and Devito once; each child gets its own working folder, stdin from /dev/null, stdout and
stderr captured, and its own process group so a hang is killed with everything it started). Each case is
classified as

- ``clean``: exit status 2, no traceback, and the last stderr line is ``error: ...`` (a GeomemError, one line)
  or a usage error of the argument parser;
- ``traceback``: a Python traceback, or an exit status other than 0, 2 or 130;
- ``hang``: still running after ``--timeout`` seconds (killed);
- ``silent``: exit status 0 for an input that must be refused, or a valid-looking run whose result fails the
  case's check (a silent wrong result);
- ``ok``: a control case (valid input) that succeeded and whose result passed its check;
- ``refused-valid``: a control case refused with exit status 2 (no traceback, but a valid input was refused).

The cases, the fixtures they read (model sets, a tiny trained prior, broken prior configs, TOML files, SEG-Y
files, unwritable outputs) and their expected outcome are defined below; fixtures are built once in a temporary
folder. The script prints a table of counts per class and per command and writes every case's outcome to JSON;
it exits 1 when a case is a traceback, hang or silent wrong result.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TINY_TRAIN = REPO / "data" / "configs" / "train_tiny.toml"
#: a tiny model-set/survey for `invert` and `compare` (16×16 models, short records, few DPS steps)
INV = ["model_set.n=12", "model_set.size=16", "model_set.heldout_start=10", "survey.t_max=200.0", "survey.nbl=6",
       "survey.n_src=2", "sampler.dps.steps=4", "sampler.split_gibbs.levels=2", "workers=0", "n_train=8",
       "--chains", "2"]


@dataclass
class Case:
    """One command line: ``expect`` is ``"error"`` (must be refused) or ``"ok"`` (valid; ``check(workdir)`` must
    then hold for the result to count as correct)."""

    command: str
    argv: list[str]
    expect: str = "error"
    check: Callable[[Path], bool] | None = None
    note: str = ""
    outcome: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------- fixtures
def build_fixtures(root: Path) -> dict[str, str]:
    """Files the cases read; returns name → path."""
    from geomem.geology import make_model_set
    from geomem.physics.acquisition import Geometry
    from geomem.physics.observed import save_observed, write_segy_shots

    f: dict[str, str] = {}

    def put(name: str, path: Path) -> None:
        f[name] = str(path)

    ms = make_model_set(n=12, size=(16, 16), seed=0)
    ms.save(root / "set0.npz")
    put("set0", root / "set0.npz")
    make_model_set(n=12, size=(16, 16), seed=1).save(root / "set1.npz")
    put("set1", root / "set1.npz")
    make_model_set(n=12, size=(32, 32), seed=0).save(root / "set32.npz")
    put("set32", root / "set32.npz")
    v = ms.models[3, 0].astype(np.float64)
    arrays = {
        "v_good": v, "v_nan": np.where(np.arange(v.size).reshape(v.shape) == 5, np.nan, v), "v_neg": -v,
        "v_zero": np.zeros_like(v), "v_inf": np.full_like(v, np.inf), "v_str": np.full(v.shape, "a"),
        "v_bool": v > 2, "v_complex": v + 1j, "v_empty": np.zeros((0, 16)), "v_empty3": np.zeros((0, 16, 16)),
        "v_1d": v[0], "v_5d": v[None, None, None], "v_huge": np.full_like(v, 1e300), "v_ms": v * 1000.0,
        "v_tiny": np.full((1, 1), 2.0), "v_int": np.full(v.shape, 2, dtype=np.int64),
        "v_fast": np.full_like(v, 9.0), "v_3models": np.stack([v, v, v]),
    }
    for name, arr in arrays.items():
        np.save(root / f"{name}.npy", arr)
        put(name, root / f"{name}.npy")
    (root / "pickled.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"
                                       + b" " * 50 + b"\n" + b"\x80\x04N." * 2)
    put("v_pickle", root / "pickled.npy")
    (root / "text.npy").write_text("not an array\n")
    put("v_text", root / "text.npy")
    (root / "empty.npy").write_bytes(b"")
    put("v_emptyfile", root / "empty.npy")
    (root / "dir.npy").mkdir()
    put("v_dir", root / "dir.npy")
    (root / "junk.npz").write_bytes(b"PK\x03\x04junk")
    put("set_junk", root / "junk.npz")
    (root / "empty.npz").write_bytes(b"")
    put("set_empty", root / "empty.npz")
    np.savez(root / "wrongkeys.npz", a=np.zeros(3))
    put("set_wrongkeys", root / "wrongkeys.npz")
    (root / "setdir.npz").mkdir()
    put("set_dir", root / "setdir.npz")
    (root / "a_file").write_text("x")
    put("a_file", root / "a_file")
    for suffix in (".npz", ".png"):
        (root / "outdir" / f"x{suffix}").mkdir(parents=True)
    put("out_dir", root / "outdir")

    # TOML files
    tomls = {
        "toml_latin1": "name = \"caf\xe9\"\n".encode("latin-1"), "toml_invalid": b"steps = = 3\n",
        "toml_unknown": b"bogus_key = 1\n", "toml_types": b"steps = \"many\"\n", "toml_empty": b"",
        "toml_bom": b"\xef\xbb\xbfsteps = 3\n", "toml_nested": b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "toml_nul": b"steps = 3\x00\n", "toml_binary": bytes(range(256)),
    }
    for name, data in tomls.items():
        (root / f"{name}.toml").write_bytes(data)
        put(name, root / f"{name}.toml")
    (root / "cfgdir.toml").mkdir()
    put("toml_dir", root / "cfgdir.toml")

    # a tiny trained prior and broken copies of it
    from geomem.config import load_config
    from geomem.priors.training import TrainConfig, train

    res = train(load_config(TrainConfig, TINY_TRAIN, {"steps": 4, "data.n": 8, "log_every": 2}), root / "trainrun",
                progress=False)
    put("prior", res.prior_dir)
    put("trainrun", root / "trainrun")
    # compare_tiny's problem: 32×32 models; a prior trained on the first 12 of seed 0, and a seed-1 set of 40
    res32 = train(load_config(TrainConfig, TINY_TRAIN, {"steps": 4, "data.n": 12, "data.size": [32, 32]}),
                  root / "trainrun32", progress=False)
    put("prior32", res32.prior_dir)
    make_model_set(n=40, size=(32, 32), seed=1).save(root / "set1_40.npz")
    put("set1_40", root / "set1_40.npz")
    good_cfg = json.loads((res.prior_dir / "config.json").read_text())
    broken = {
        "p_abs_weights": lambda c: c.update(weights_file="/etc/passwd"),
        "p_up_weights": lambda c: c.update(weights_file="../../x.safetensors"),
        "p_unet_str": lambda c: c.update(unet="google/ddpm-cifar10-32"),
        "p_unet_list": lambda c: c.update(unet=[1]),
        "p_huge_channels": lambda c: c["unet"].update(block_out_channels=[1 << 17, 1 << 17], norm_num_groups=1),
        "p_neg_channels": lambda c: c["unet"].update(block_out_channels=[-8, 16]),
        "p_str_channels": lambda c: c["unet"].update(block_out_channels="8,16"),
        "p_no_unet": lambda c: c.pop("unet"),
        "p_sigma_str": lambda c: c.update(sigma_data="half"),
        "p_sigma_neg": lambda c: c.update(sigma_data=-0.5),
        "p_noise_range": lambda c: c.update(noise_range=[80.0, 0.002]),
        "p_noise_short": lambda c: c.update(noise_range=[0.1]),
        "p_version_new": lambda c: c.update(format_version=99),
        "p_version_str": lambda c: c.update(format_version="1"),
        "p_sha_missing": lambda c: c.pop("weights_sha256"),
        "p_sha_wrong": lambda c: c.update(weights_sha256="0" * 64),
        "p_dtype": lambda c: c.update(weights_dtype="int8"),
        "p_model_set_list": lambda c: c.update(model_set=[1, 2]),
        "p_model_set_n": lambda c: c["model_set"].update(n="eight"),
        "p_model_set_size": lambda c: c["model_set"].update(size=[16, 16, 16]),
        "p_shape": lambda c: c.update(model_shape=[3, 16, 16]),
        "p_sample_size": lambda c: c["unet"].update(sample_size=[16, 0]),
        "p_block_types": lambda c: c["unet"].update(down_block_types=["Nope", "Nope"]),
        "p_layers": lambda c: c["unet"].update(layers_per_block=10 ** 9),
    }
    for name, change in broken.items():
        d = root / name
        shutil.copytree(res.prior_dir, d)
        cfg = json.loads(json.dumps(good_cfg))
        change(cfg)
        (d / "config.json").write_text(json.dumps(cfg))
        put(name, d)
    for name, text in (("p_json_bad", "{not json"), ("p_json_list", "[1, 2]"), ("p_json_latin1", None)):
        d = root / name
        shutil.copytree(res.prior_dir, d)
        if text is None:
            (d / "config.json").write_bytes(b'{"format_version": 1, "x": "\xe9"}')
        else:
            (d / "config.json").write_text(text)
        put(name, d)
    d = root / "p_truncated"
    shutil.copytree(res.prior_dir, d)
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    put("p_truncated", d)
    d = root / "p_no_weights"
    shutil.copytree(res.prior_dir, d)
    (d / "model.safetensors").unlink()
    put("p_no_weights", d)

    # observed data for the invert survey (16×16 set, spacing 10, 2 shots, t_max 200, vmax bound 4.5)
    survey = Geometry.surface((16, 16), 10.0, n_src=2, t_max=200.0, f0=15.0, vmax_bound=ms.vmax)
    y = np.random.default_rng(0).standard_normal((survey.n_src, survey.nt, survey.n_rec)) * 1e-3
    save_observed(root / "obs.npz", y, survey)
    put("obs_npz", root / "obs.npz")
    other = Geometry.surface((16, 16), 10.0, n_src=2, t_max=200.0, f0=15.0, vmax_bound=5.0)
    save_observed(root / "obs_vmax5.npz", np.zeros((2, other.nt, 16)), other)
    put("obs_vmax5", root / "obs_vmax5.npz")
    other = Geometry.surface((16, 16), 10.0, n_src=2, t_max=200.0, f0=10.0, vmax_bound=ms.vmax)
    save_observed(root / "obs_f10.npz", y, other)
    put("obs_f10", root / "obs_f10.npz")
    write_segy_shots(root / "shots_rec.sgy", y, survey, order="receiver")
    put("segy_receiver_major", root / "shots_rec.sgy")
    np.save(root / "y_good.npy", y)
    put("y_npy", root / "y_good.npy")
    import segyio

    flat = y.transpose(0, 2, 1).reshape(-1, survey.nt).astype(np.float32)
    segyio.tools.from_array2D(str(root / "shots_4ms.sgy"), flat, dt=4000)
    put("segy_4ms", root / "shots_4ms.sgy")
    segyio.tools.from_array2D(str(root / "shots_nocoords.sgy"), flat, dt=int(round(survey.dt * 1000)))
    put("segy_nocoords", root / "shots_nocoords.sgy")
    (root / "junk.sgy").write_bytes(b"not segy" * 100)
    put("segy_junk", root / "junk.sgy")
    np.save(root / "y_wrong.npy", y[:, :-2])
    put("y_wrong_shape", root / "y_wrong.npy")
    np.save(root / "y_nan.npy", np.full_like(y, np.nan))
    put("y_nan", root / "y_nan.npy")
    np.save(root / "y_str.npy", np.full(y.shape, "a"))
    put("y_str", root / "y_str.npy")
    (root / "geo_bad.toml").write_text("src = 3\n")
    put("geo_bad", root / "geo_bad.toml")
    (root / "geo_outside.toml").write_text("src = [[-50.0, 10.0]]\nrec = [[0.0, 10.0]]\n")
    put("geo_outside", root / "geo_outside.toml")
    return f


# ---------------------------------------------------------------------------------------------------- checks
def _metrics(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def invert_result_is_sane(run: str) -> Callable[[Path], bool]:
    """A finished invert run whose chains are finite and not all glued to the velocity clamp unreported."""

    def check(work: Path) -> bool:
        m = _metrics(work / run / "metrics.json")
        if not m:
            return False
        with np.load(work / run / "samples.npz") as z:
            v = z["velocity"]
            diverged = z["diverged"]
        if not np.isfinite(v).all():
            return False
        at_clamp = np.mean((v >= 4.5 - 1e-6) | (v <= 1.5 + 1e-6), axis=tuple(range(1, v.ndim))) > 0.5
        return bool(np.all(diverged[at_clamp]))  # a chain stuck at the bounds must be reported as diverged

    return check


def data_equal_to(run: str, ref: str) -> Callable[[Path], bool]:
    def check(work: Path) -> bool:
        try:
            with np.load(work / run / "samples.npz") as z:
                y = z["y"]
        except OSError:
            return False
        return bool(np.allclose(y, np.load(ref), rtol=0, atol=1e-9))

    return check


def file_exists(rel: str) -> Callable[[Path], bool]:
    return lambda work: (work / rel).exists()


# ----------------------------------------------------------------------------------------------------- cases
def cases(f: dict[str, str]) -> list[Case]:
    out: list[Case] = []

    def add(command, argv, expect="error", check=None, note=""):
        out.append(Case(command, [str(a) for a in argv], expect, check, note))

    bad_outs = [f["a_file"], f"{f['a_file']}/sub", "/proc/geomem_harness_out", "/dev/null/run"]

    def bad_files(suffix: str) -> list[str]:  # outputs that are files: a folder in the way, a file as folder, ...
        return [f"{f['out_dir']}/x{suffix}", f"{f['a_file']}/x{suffix}", f"/proc/geomem_harness{suffix}",
                f"/dev/null/x{suffix}"]

    bad_tomls = [k for k in f if k.startswith("toml_") and k != "toml_empty"]
    bad_npys = ["v_nan", "v_neg", "v_zero", "v_inf", "v_str", "v_bool", "v_complex", "v_empty", "v_empty3", "v_1d",
                "v_5d", "v_huge", "v_pickle", "v_text", "v_emptyfile", "v_dir"]

    # --- data make -----------------------------------------------------------------------------------------
    mk = ["data", "make", "--n", "4", "--size", "16"]
    add("data make", [*mk, "--out", "ok.npz"], "ok", file_exists("ok.npz"), "control")
    for opt, values in {"--n": ["0", "-1", "10000000000000", "x"], "--size": ["0", "-5", "abc", "1,2,3", "1000000",
                        "16,0", "1"], "--family": ["nope", ""], "--difficulty": ["C", ""],
                        "--spacing": ["0", "-1", "nan", "inf"], "--vmin": ["0", "-1", "nan", "5.0"],
                        "--vmax": ["1.0", "inf", "-2"], "--min-distance": ["-1", "2", "nan"]}.items():
        for v in values:
            argv = ["data", "make", *(["--n", "4"] if opt != "--n" else []), *(["--size", "16"] if opt != "--size"
                                                                                 else [])]
            add("data make", [*argv, opt, v, "--out", "x.npz"])
    for t in bad_tomls:
        add("data make", [*mk, "--config", f[t], "--out", "x.npz"])
    add("data make", [*mk, "--config", f["toml_empty"], "--out", "e.npz"], "ok", file_exists("e.npz"), "empty TOML")
    for o in bad_files(".npz"):
        add("data make", [*mk, "--out", o])
    add("data make", [*mk, "--out", "x.txt"])
    add("data make", [*mk, "--out", "x.npz", "--run", f["a_file"]])

    # --- data import / show -------------------------------------------------------------------------------------
    for name in bad_npys:
        add("data import", ["data", "import", f[name], "--out", "imp.npz"])
    add("data import", ["data", "import", f["v_good"], "--out", "imp.npz"], "ok", file_exists("imp.npz"), "control")
    for opt, v in (("--size", "0"), ("--size", "x"), ("--size", "99999"), ("--units", "mph"), ("--spacing", "-1"),
                   ("--vmin", "nan"), ("--vmax", "0.1"), ("--spacing", "nan")):
        add("data import", ["data", "import", f["v_good"], opt, v, "--out", "imp.npz"])
    add("data import", ["data", "import", f["v_ms"], "--units", "km/s", "--out", "imp.npz"])
    add("data import", ["data", "import", f["segy_junk"], "--out", "imp.npz"])
    add("data import", ["data", "import", f["a_file"], "--out", "imp.npz"])
    add("data import", ["data", "import", "/nonexistent.npy", "--out", "imp.npz"])
    for o in bad_files(".npz"):
        add("data import", ["data", "import", f["v_good"], "--out", o])
    for name in ("set_junk", "set_empty", "set_wrongkeys", "set_dir", "v_good", "a_file"):
        add("data show", ["data", "show", f[name], "--out", "g.png"])
    add("data show", ["data", "show", f["set0"], "--out", "g.png"], "ok", file_exists("g.png"), "control")
    for o in bad_files(".png"):
        add("data show", ["data", "show", f["set0"], "--out", o])
    add("data show", ["data", "show", f["set0"], "--out", "g.xyz"])

    # --- model ---------------------------------------------------------------------------------------------------
    md = ["model", "--velocity", f["v_good"], "--t-max", "150", "--nbl", "6", "--n-src", "2"]
    add("model", [*md, "--out", "m"], "ok", file_exists("m/shots.npz"), "control")
    for name in [*bad_npys, "v_fast", "v_tiny", "v_3models", "v_ms"]:
        add("model", ["model", "--velocity", f[name], "--t-max", "150", "--out", "m"])
    for opt, values in {"--spacing": ["0", "-1", "nan", "inf", "1e9", "1e-9"], "--n-src": ["0", "-1", "1000000000"],
                        "--depth": ["-1", "1e9", "nan"], "--f0": ["0", "-1", "nan", "5e-324", "1e9"],
                        "--t-max": ["0", "-1", "nan", "1e12"], "--vmax-bound": ["0", "-1", "1.0", "nan", "1e-300"],
                        "--nbl": ["-1", "10000000"]}.items():
        for v in values:
            add("model", [*md, opt, v, "--out", "m"])
    for t in bad_tomls:
        add("model", [*md, "--config", f[t], "--out", "m"])
    for o in bad_outs:
        add("model", [*md, "--out", o])

    # --- train -----------------------------------------------------------------------------------------------------
    tr = ["train", "--config", str(TINY_TRAIN), "--no-progress", "steps=4", "data.n=8"]
    add("train", [*tr, "--out", "t"], "ok", file_exists("t/prior/model.safetensors"), "control")
    for ov in ["steps=0", "batch_size=0", "optim.lr=-1", "optim.lr=1e30", "noise.p_mean=1e6", "noise.p_std=1e6",
               "noise.sigma_data=1e-300", "optim.lr=nan", "name='../../x'", "name='/abs/path'", "name='a/b'",
               "name='..'", "name=''", "model.channels=[100000, 100000]", "model.channels=[]",
               "model.attention=[true]", "model.norm_groups=0", "model.norm_groups=3", "data.n=0", "data.size=[0, 0]",
               "data.size=[15, 15]", "data.size=[100000, 100000]", "data.n=100000000", f"data.path='{f['set_junk']}'",
               "data.path='/nonexistent.npz'", f"data.path='{f['set32']}'", "device='cuda'", "device='tpu'",
               "save_dtype='int8'", "bogus=1", "data.family='nope'", "log_every=0", "checkpoint_every=-1",
               "optim.beta1=2", "data.vmin=5", "steps=1e3", "steps='10'", "data.spacing=0", "model.channels=[8, -16]",
               "model.attention_head_dim=0", "noise.distribution='gauss'", "data.n=-3", "batch_size=100000000"]:
        add("train", [*tr, ov, "--out", "t"])
    for t in bad_tomls:
        add("train", ["train", "--config", f[t], "--out", "t"])
    add("train", ["train", "--config", "/nonexistent.toml", "--out", "t"])
    add("train", [*tr, "--resume", "--out", "fresh"])
    for o in bad_outs:
        add("train", [*tr, "--out", o])
    add("train", [*tr, "--out", f["trainrun"]], note="a run folder with checkpoints, no --resume")

    # --- sample ----------------------------------------------------------------------------------------------------
    sp = ["sample", "--n", "2", "--steps", "3", "--device", "cpu"]
    add("sample", [*sp, "--prior", f["prior"], "--out", "s"], "ok", file_exists("s/samples.npz"), "control")
    for name in [k for k in f if k.startswith("p_")]:
        add("sample", [*sp, "--prior", f[name], "--out", "s"])
    add("sample", [*sp, "--prior", f["prior"], "--model-set", f["set1"], "--out", "s"], note="another training set")
    add("sample", [*sp, "--prior", f["prior"], "--model-set", f["set32"], "--out", "s"])
    add("sample", [*sp, "--prior", f["prior"], "--model-set", f["set_junk"], "--out", "s"])
    add("sample", [*sp, "--prior", "/nonexistent", "--out", "s"])
    add("sample", [*sp, "--prior", f["a_file"], "--out", "s"])
    add("sample", [*sp, "--prior", "memorized", "--out", "s"])
    for opt, v in (("--n", "0"), ("--n", "-1"), ("--steps", "1"), ("--steps", "0"), ("--sigma-min", "0"),
                   ("--sigma-min", "-1"), ("--sigma-max", "nan"), ("--sigma-min", "1e-320"), ("--method", "rk4"),
                   ("--device", "cuda:7"), ("--device", "tpu"), ("--sigma-max", "1e300")):
        add("sample", [*sp, "--prior", f["prior"], opt, v, "--out", "s"])
    for name in ("set_junk", "set_empty", "set_wrongkeys", "set_dir", "v_good"):
        add("sample", [*sp, "--prior", "memorized", "--model-set", f[name], "--out", "s"])
    for o in bad_outs:
        add("sample", [*sp, "--prior", f["prior"], "--out", o])

    # --- invert ----------------------------------------------------------------------------------------------------
    iv = ["invert", "--prior", "memorized", *INV]
    add("invert", [*iv, "--out", "i"], "ok", invert_result_is_sane("i"), "control")
    add("invert", [*iv, "--data", f["obs_npz"], "gamma=0.001", "--out", "i"], "ok", data_equal_to("i", f["y_npy"]),
        "control: .npz contract")
    add("invert", [*iv, "--data", f["segy_receiver_major"], "gamma=0.001", "--out", "i"], "ok",
        data_equal_to("i", f["y_npy"]), "receiver-major SEG-Y is sorted by its headers")
    add("invert", ["invert", "--prior", f["prior"], *INV, "sampler.method='dps'", "sampler.dps.zeta=1e30", "--out",
                   "i"], "ok", invert_result_is_sane("i"),
        "guidance that drives every state to the clamp must be counted as divergence")
    for name in ("obs_vmax5", "obs_f10", "segy_4ms", "segy_nocoords", "segy_junk", "y_wrong_shape", "y_nan", "y_str",
                 "v_text", "a_file"):
        add("invert", [*iv, "--data", f[name], "gamma=0.001", "--out", "i"])
    add("invert", [*iv, "--data", f["obs_npz"], "--out", "i"], note="observed data without gamma")
    add("invert", [*iv, "--data", "/nonexistent.npz", "gamma=0.001", "--out", "i"])
    add("invert", [*[a for a in iv if a not in ("--chains", "2")], "chains=0", "--out", "i"])
    add("invert", [*iv, "workers=-1", "--out", "i"], "ok", invert_result_is_sane("i"), "auto workers")
    for ov in ["seed=-5", "sampler.dps.steps=0", "sampler.dps.zeta=-1", "sampler.dps.sigma_min=0",
               "sampler.dps.sigma_max=-1", "sampler.dps.guidance='nope'", "sampler.method='nope'",
               "sampler.split_gibbs.levels=0", "dps.steps=4", "n_train=0", "n_train=1000", "model_set.n=0",
               "model_set.size=0",
               "model_set.size=100000", "survey.n_src=0", "survey.f0=0", "survey.f0=5e-324", "survey.t_max=-1",
               "survey.space_order=3", "survey.nbl=-1", "noise=0", "noise=-1", "truth='train:999'", "truth='bogus'",
               "gamma=-1", "workers=-2", "bogus=1", f"survey.geometry='{f['geo_bad']}'",
               f"survey.geometry='{f['geo_outside']}'", "survey.geometry='/nonexistent.toml'",
               f"model_set.path='{f['set_junk']}'", "survey.t_max=1e12", "model_set.spacing=1e9"]:
        add("invert", [*iv, ov, "--out", "i"])
    for name in ("p_abs_weights", "p_unet_str", "p_huge_channels", "p_json_bad", "p_truncated", "p_sha_wrong"):
        add("invert", ["invert", "--prior", f[name], *INV, "--out", "i"])
    add("invert", ["invert", "--prior", f["prior"], *INV, f"model_set.path='{f['set1']}'", "--out", "i"],
        note="a prior with another training set")
    for t in bad_tomls:
        add("invert", ["invert", "--config", f[t], "--out", "i"])
    for o in bad_outs:
        add("invert", [*iv, "--out", o])

    # --- compare (refusals only: a valid compare takes minutes) -------------------------------------------------
    cp = ["compare", "--config", str(REPO / "data" / "configs" / "compare_tiny.toml")]
    add("compare", [*cp, "priors=[]", "--out", "c"], "ok", file_exists("c/metrics.json"), "memorized prior only")
    for ov in ["train_sizes=[]", "chains=1", "truths=[]", "truths=['bogus']", "noise=0", "workers=-2", "bogus=1",
               "gamma=-1", "sampler.dps.steps=0", "priors=['nope']", "model_set.n=0", "train_sizes=[0]",
               "train_sizes=[100000]", "linearized.rank=-1", "survey.n_src=0", "data='/nonexistent.npy'",
               "survey.f0=5e-324", "model_set.size=100000"]:
        add("compare", [*cp, ov, "--out", "c"])
    for name in ("p_abs_weights", "p_unet_str", "p_huge_channels", "p_json_bad", "a_file"):
        add("compare", [*cp, "--prior", f[name], "--out", "c"])
    add("compare", [*cp, "--prior", f["prior32"], "--model-set", f["set1_40"], "--out", "c"],
        note="a prior with another training set")
    add("compare", [*cp, "--prior", f["prior32"], "--out", "c"], "ok", file_exists("c/report.html"),
        "control: the prior with its own training set")
    add("compare", [*cp, "--model-set", f["set_junk"], "--out", "c"])
    for t in bad_tomls:
        add("compare", ["compare", "--config", f[t], "--out", "c"])
    for o in bad_outs:
        add("compare", [*cp, "--out", o])

    # --- sweep / rules / select / stylized (configuration refusals) -------------------------------------------
    for cmd, cfg, overrides in (
        ("sweep", "sweep_tiny.toml", ["train_sizes=[]", "bogus=1", "chains=0", "train_sizes=[-1]", "seeds=[]"]),
        ("rules", "rules_tiny.toml", ["bogus=1", "epsilons=[]", "epsilons=[-1]", "training.steps=0"]),
        ("select", "select_tiny.toml", ["bogus=1", "rule.rule='nope'", "rule.budget=-1"]),
        ("stylized", "stylized.toml", ["bogus=1", "sigmas=[]", "sigmas=[-1]", "sigmas=[0]"]),
    ):
        for ov in overrides:
            add(cmd, [cmd, "--config", str(REPO / "data" / "configs" / cfg), ov, "--out", cmd])
        for t in ("toml_latin1", "toml_invalid", "toml_dir"):
            add(cmd, [cmd, "--config", f[t], "--out", cmd])
        add(cmd, [cmd, "--config", "/nonexistent.toml", "--out", cmd])
        add(cmd, [cmd, "--config", str(REPO / "data" / "configs" / cfg), "--out", f["a_file"]])

    # --- argument-parser level -------------------------------------------------------------------------------
    for argv in (["nope"], ["train"], ["model"], ["data", "make"], ["sample"], ["--bogus"], ["data", "nope"],
                 ["model", "--velocity"], ["train", "--config", str(TINY_TRAIN), "steps"],
                 ["train", "--config", str(TINY_TRAIN), "=3"], ["invert", "--chains", "many"],
                 ["sample", "--prior", f["prior"], "--n", "1e3"], ["data", "make", "--out"]):
        add("argv", argv)
    return out


# --------------------------------------------------------------------------------------------------- running
def run_case(case: Case, work: Path, timeout: float) -> dict:
    """Run one case in a forked child; returns exit code, stderr tail, seconds and the class."""
    work.mkdir(parents=True, exist_ok=True)
    out_path, err_path = work / ".stdout", work / ".stderr"
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.setpgid(0, 0)
            os.chdir(work)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
            os.dup2(os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
            sys.stdout = open(1, "w", buffering=1, closefd=False)
            sys.stderr = open(2, "w", buffering=1, closefd=False)
            from geomem.cli import main

            code = main(case.argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001  (what the user would see)
            traceback.print_exc()
            code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code if isinstance(code, int) else 1)
    status, hung = None, False
    while True:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(st)
            break
        if time.perf_counter() - start > timeout:
            hung = True
            with _suppress():
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.05)
    with _suppress():
        os.killpg(pid, signal.SIGKILL)  # anything the case left running (Dask workers)
    seconds = time.perf_counter() - start
    err = err_path.read_text(errors="replace") if err_path.exists() else ""
    lines = [ln for ln in err.splitlines() if ln.strip() and not _is_noise(ln)]
    result = {"argv": case.argv, "command": case.command, "expect": case.expect, "note": case.note,
              "exit": status, "seconds": round(seconds, 2), "stderr_tail": lines[-3:]}
    if hung:
        result["class"] = "hang"
    elif "Traceback (most recent call last)" in err or status not in (0, 2, 130):
        result["class"] = "traceback"
    elif status == 2:
        usage = any("Usage:" in ln for ln in lines) or any("Error" in ln for ln in lines)
        one_line = bool(lines) and lines[-1].startswith("error: ") and len([ln for ln in lines
                                                                             if ln.startswith("error: ")]) == 1
        result["class"] = "clean" if (one_line or usage) else "traceback"
        result["message"] = "geomem" if one_line else "usage"
        if case.expect == "ok":
            result["class"] = "refused-valid"
    elif status == 0:
        if case.expect == "error":
            result["class"] = "silent"
        else:
            try:
                good = case.check is None or bool(case.check(work))
            except Exception as exc:  # noqa: BLE001
                good, result["check_error"] = False, repr(exc)
            result["class"] = "ok" if good else "silent"
    else:
        result["class"] = "interrupted"
    return result


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], (ProcessLookupError, PermissionError, ChildProcessError))


def _is_noise(line: str) -> bool:
    """Progress bars and library warnings are not the error message."""
    return ("it/s]" in line or "s/it]" in line or line.startswith(("  warnings.warn", "Operator `"))
            or "Warning:" in line or line.lstrip().startswith(("train:", "|")) or "%|" in line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bad_input_harness.json", help="JSON file of every case's outcome")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds before a case counts as a hang")
    parser.add_argument("-k", default="", help="run only cases whose command line contains this text")
    parser.add_argument("--keep", action="store_true", help="keep the working folders")
    parser.add_argument("--list", action="store_true", help="print the cases per command and stop")
    args = parser.parse_args(argv)
    if args.list:
        from collections import defaultdict

        listed = cases(defaultdict(lambda: "FIXTURE"))
        print(len(listed), "cases:", dict(Counter(c.command for c in listed)))
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("DEVITO_LANGUAGE", "C")
    os.environ.setdefault("DEVITO_LOGGING", "WARNING")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.pop("GEOMEM_DASK_ADDRESS", None)
    os.environ["HF_HUB_OFFLINE"] = "1"
    import geomem.cli

    try:
        geomem.cli._register()  # import every command module once, before forking
    except Exception:  # noqa: BLE001  (then each case shows the traceback itself)
        traceback.print_exc()
    import torch  # noqa: F401

    root = Path(tempfile.mkdtemp(prefix="geomem-harness-"))
    t0 = time.perf_counter()
    try:
        fixtures = build_fixtures(root / "fixtures")
        selected = [c for c in cases(fixtures) if args.k in " ".join(c.argv)]
        print(f"{len(selected)} cases; fixtures built in {time.perf_counter() - t0:.0f} s", flush=True)
        results = []
        for i, case in enumerate(selected):
            r = run_case(case, root / "cases" / f"{i:04d}", args.timeout)
            results.append(r)
            flag = "" if r["class"] in ("clean", "ok") else "   <-- " + r["class"].upper()
            print(f"[{i + 1:3d}/{len(selected)}] {r['class']:9s} {r['seconds']:6.1f}s  "
                  f"{' '.join(case.argv)[:110]}{flag}", flush=True)
            if not args.keep:
                shutil.rmtree(root / "cases" / f"{i:04d}", ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    counts = Counter(r["class"] for r in results)
    per_cmd: dict[str, Counter] = {}
    for r in results:
        per_cmd.setdefault(r["command"], Counter())[r["class"]] += 1
    summary = {"cases": len(results), "counts": dict(counts), "per_command": {k: dict(v) for k, v in per_cmd.items()},
               "wall_s": round(time.perf_counter() - t0, 1), "timeout_s": args.timeout}
    Path(args.out).write_text(json.dumps({"summary": summary, "results": results}, indent=1) + "\n")
    print("\nclass counts:", dict(counts))
    for cmd, c in per_cmd.items():
        print(f"  {cmd:12s} {dict(c)}")
    bad = [r for r in results if r["class"] not in ("clean", "ok")]
    for r in bad:
        print(f"{r['class'].upper():9s} {' '.join(r['argv'])}\n          {' | '.join(r['stderr_tail'])[:300]}")
    print(f"written to {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
