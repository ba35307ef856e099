"""A run killed with SIGKILL and resumed ends with the same final loss as an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import pytest

from {{ cookiecutter.package_name }}.checkpoint import list_checkpoints
from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.tracking import read_metrics
from {{ cookiecutter.package_name }}.train import run

from .conftest import PACKAGE, PROJECT_ROOT, small_overrides

pytestmark = pytest.mark.slow


def final_loss(run_dir):
    return [r for r in read_metrics(run_dir) if "loss" in r][-1]["loss"]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_kill_9_then_resume_matches(tmp_path):
    overrides = small_overrides(**{"train.max_steps": 300, "train.checkpoint_interval": 20})
    reference = run(load_config(None, [*overrides, "name=reference"]), tmp_path)

    cmd = [sys.executable, "-m", PACKAGE, "train", "--runs-dir", str(tmp_path)]
    for item in [*overrides, "name=killed"]:
        cmd += ["--set", item]
    proc = subprocess.Popen(
        cmd, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    killed = tmp_path / "killed"
    deadline = time.monotonic() + 120
    while len(list_checkpoints(killed)) < 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint written in time"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    steps_done = max(r["step"] for r in read_metrics(killed))
    assert steps_done < 300, "the run finished before it could be killed; raise max_steps"

    resumed = subprocess.run(
        [sys.executable, "-m", PACKAGE, "train", "--resume", str(killed)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    assert "stale lock" in resumed.stderr  # the killed process left its lock; it is taken over
    assert final_loss(killed) == final_loss(reference)
    losses = [(r["step"], r["loss"]) for r in read_metrics(killed) if "loss" in r]
    assert losses == [(r["step"], r["loss"]) for r in read_metrics(reference) if "loss" in r]
    assert (killed / "report.md").is_file()
