"""scripts/gpu/sweep_50k_driver.sh deals the runs to lanes and GPUs as its header says.

The GPU machine is stood in for by stubs on PATH: ``nvidia-smi -L`` lists the GPUs asked for, and ``python3``
records each call's CUDA_VISIBLE_DEVICES and arguments and reads its standard input (the packer's Python comes as a
here-document), so Python trains and packs nothing; the driver runs with stdin from /dev/null, so that read never
waits on a terminal. What is checked is the schedule, not the training: which run goes to which GPU and lane, in
which order, each trained before it is sampled, and that the driver packs and marks itself done at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "scripts" / "gpu" / "sweep_50k_driver.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("split") is None,
                                reason="needs bash and coreutils")


def _stubs(bin_dir: Path, n_gpus: int, calls: Path) -> None:
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    gpus = "".join(f"echo 'GPU {i}: NVIDIA H200 (UUID: GPU-{i})'\n" for i in range(n_gpus))
    smi.write_text(f"#!/usr/bin/env bash\n{gpus}")
    py = bin_dir / "python3"
    py.write_text(f'#!/usr/bin/env bash\necho "$CUDA_VISIBLE_DEVICES|$*" >> {calls}\ncat > /dev/null\n')
    for f in (smi, py):
        f.chmod(0o755)


def _run_driver(tmp_path: Path, n_gpus: int, runs: list[str], lanes: int | None = None) -> list[tuple[str, str, str]]:
    calls = tmp_path / "calls.txt"
    _stubs(tmp_path / "bin", n_gpus, calls)
    run_dir = tmp_path / "sweep50k"
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "GEOMEM_MPS": "0"}
    env.pop("SWEEP_LANES", None)
    if lanes is not None:
        env["SWEEP_LANES"] = str(lanes)
    proc = subprocess.run(["bash", str(DRIVER), str(run_dir), "data/configs/sweep_50k.toml", *runs], cwd=REPO,
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (run_dir / "driver.done").is_file()
    assert list((tmp_path / "sweep50k.pack").glob("sweep50k.tgz.*")), "the run folder was not packed"
    out = []
    for line in calls.read_text().splitlines():
        gpu, args = line.split("|", 1)
        if "geomem.cli sweep" in args:
            words = args.split()
            out.append((gpu, words[words.index("--stage") + 1], words[words.index("--run") + 1]))
    return out


def test_three_lanes_on_one_gpu_train_every_run_at_once_then_sample_it(tmp_path):
    """SWEEP_LANES=3 on one GPU: every run in its own lane on GPU 0, each trained then sampled (the session 12
    retraining of the 50,000-step priors ran so, under CUDA MPS)."""
    runs = ["n200_w32", "n1000_w32", "n50_w32"]
    calls = _run_driver(tmp_path, 1, runs, lanes=3)
    assert sorted(calls) == sorted((g, s, r) for r in runs for g, s in (("0", "train"), ("0", "samples")))
    for r in runs:
        stages = [s for _, s, rr in calls if rr == r]
        assert stages == ["train", "samples"]
    assert {p.name for p in tmp_path.joinpath("sweep50k").glob("lane*.log")} == {"lane0.log", "lane1.log", "lane2.log"}


def test_default_lanes_are_one_per_gpu_and_runs_follow_each_other_in_a_lane(tmp_path):
    """Without SWEEP_LANES: one lane per GPU, runs dealt round-robin (run i to GPU i mod 2), one after another."""
    runs = ["n200_w32", "n1000_w32", "n50_w32"]  # not the default order, so no hand-off between the GPUs
    calls = _run_driver(tmp_path, 2, runs)
    gpu_of = {r: {g for g, _, rr in calls if rr == r} for r in runs}
    assert gpu_of == {"n200_w32": {"0"}, "n1000_w32": {"1"}, "n50_w32": {"0"}}
    lane0 = [(s, r) for g, s, r in calls if g == "0"]
    assert lane0 == [("train", "n200_w32"), ("samples", "n200_w32"), ("train", "n50_w32"), ("samples", "n50_w32")]


def test_sweep_stop_ends_one_run_and_its_lane_and_leaves_the_others(tmp_path):
    """scripts/gpu/sweep_stop.sh RUN: the run's `geomem sweep` process gets SIGTERM (the trainer then saves a
    checkpoint) and its lane stops, so the run is never sampled; the other lane trains and samples as usual and the
    driver still packs and finishes."""
    calls = tmp_path / "calls.txt"
    _stubs(tmp_path / "bin", 1, calls)
    # the stopped run's training runs until it is signalled, and records the signal (its trap is set before it
    # records its call, so the test never signals it before it can answer)
    (tmp_path / "bin" / "python3").write_text(
        "#!/usr/bin/env bash\n"
        'stopped_run() { [[ "$*" == *"--stage train --run n50_w32"* ]]; }\n'
        f"if stopped_run \"$@\"; then trap 'echo \"SIGTERM|n50_w32\" >> {calls}; exit 0' TERM; fi\n"
        f'echo "$CUDA_VISIBLE_DEVICES|$*" >> {calls}\n'
        'if stopped_run "$@"; then\n'
        "  for _ in $(seq 600); do sleep 0.1; done\n"
        "  exit 3\n"
        "fi\n"
        'if [[ "$*" == *"--stage train --run n200_w32"* ]]; then sleep 1; fi\n'
        "cat > /dev/null\n")
    run_dir = tmp_path / "sweep50k"
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "GEOMEM_MPS": "0", "SWEEP_LANES": "2"}
    driver = subprocess.Popen(["bash", str(DRIVER), str(run_dir), "data/configs/sweep_50k.toml", "n200_w32", "n50_w32"],
                              cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):
            if calls.exists() and "--run n50_w32" in calls.read_text():
                break
            time.sleep(0.1)
        stop = subprocess.run(["bash", "scripts/gpu/sweep_stop.sh", "n50_w32"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=30)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "stopped its lane" in stop.stdout and "sent SIGTERM" in stop.stdout
        out, _ = driver.communicate(timeout=60)
    finally:
        driver.kill()
    assert driver.returncode == 0, out
    assert (run_dir / "driver.done").is_file()
    lines = calls.read_text().splitlines()
    assert "SIGTERM|n50_w32" in lines
    runs = [line.split("|", 1)[1] for line in lines if "geomem.cli sweep" in line]
    assert sum("--stage train --run n200_w32" in a for a in runs) == 1
    assert sum("--stage samples --run n200_w32" in a for a in runs) == 1
    assert not any("--stage samples --run n50_w32" in a for a in runs)
    missing = subprocess.run(["bash", "scripts/gpu/sweep_stop.sh", "n50_w32"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1 and "no geomem sweep process of n50_w32" in missing.stderr
