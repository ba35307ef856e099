"""The training loop under torchrun: 2 CPU processes with the gloo backend."""

import json
import os
import socket
import subprocess
import sys

import pytest

from {{ cookiecutter.package_name }}.tracking import read_metrics

from .conftest import PACKAGE, PROJECT_ROOT, small_overrides

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        "-m",
        PACKAGE,
        "train",
        "--runs-dir",
        str(tmp_path),
    ]
    for item in small_overrides(**{"name": "ddp", "train.threads": 1}):
        cmd += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = tmp_path / "ddp"
    rows = read_metrics(run_dir)
    losses = [r for r in rows if "loss" in r]
    steps = [r["step"] for r in losses]
    assert steps == sorted(set(steps)), "only rank 0 may write metrics"
    assert losses[-1]["loss"] < losses[0]["loss"] - 0.5
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert (run_dir / "report.md").is_file()
    assert sorted(p.name for p in run_dir.iterdir() if p.suffix == ".png") == ["loss.png"]
