"""Lab 08: more than one process. The same `train` command on 1, then 2 processes (torchrun).

Data parallelism: every process holds the model, trains on its own batches and, after each
backward pass, the processes average their gradients (an all-reduce), so every copy takes the
same step. With N processes a step sees N times the data (`train.batch_size` is per process):
in the ideal case the global throughput (tokens/s) is N times that of one process. What is
lost on the way is the cost of averaging gradients, of waiting for the slowest process, and,
on a CPU, of sharing the same cores: scaling efficiency = tokens/s(N) / (N * tokens/s(1)).

This lab runs nothing home-made: each run is the project's own `train` command started by
`torchrun` (`python -m torch.distributed.run`), PyTorch's launcher, in a child process, and the
figures are read from the run folder it writes (`metrics.jsonl`, `summary.json`). The core's
`distributed.py` does the joining up: DDP by default, FSDP2 (sharded weights) with
`parallel: fsdp`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..config import require
from ..errors import UserError

PACKAGE = __package__.rsplit(".", 1)[0]  # the project's package: `python -m PACKAGE train`


@dataclass
class DistributedSettings:
    config: str = "configs/tiny.yaml"  # the training config every run starts from
    processes: list[int] = field(default_factory=lambda: [1, 2])  # torchrun --nproc-per-node
    parallel: str = "ddp"  # ddp (a whole copy per process) or fsdp (weights sharded, FSDP2)
    max_steps: int = 100  # optimizer steps of each run
    log_interval: int = 10  # steps per throughput window (the first step is not counted)
    threads: int = 0  # torch threads per process; 0 = the CPU cores shared out evenly
    device: str = "cpu"  # cpu (gloo) or cuda (NCCL, one GPU per process)
    overrides: list[str] = field(default_factory=list)  # more `train --set` values, both runs
    runs_dir: str = ""  # keep the runs here; empty = a temporary folder, deleted afterwards
    timeout: int = 900  # seconds one run may take before it is stopped

    CHOICES: ClassVar = {"parallel": ("ddp", "fsdp"), "device": ("cpu", "cuda")}

    def check(self) -> None:
        require(bool(self.processes), "processes must list at least one count, e.g. [1, 2]")
        require(
            all(n >= 1 for n in self.processes), f"processes must be >= 1, got {self.processes}"
        )
        require(self.max_steps >= 2, f"max_steps must be >= 2, got {self.max_steps}")
        require(
            1 <= self.log_interval < self.max_steps,
            f"log_interval must be in [1, max_steps), got {self.log_interval}",
        )
        require(self.threads >= 0, f"threads must be >= 0 (0 = shared out), got {self.threads}")
        require(self.timeout >= 1, f"timeout must be >= 1 second, got {self.timeout}")
        for item in self.overrides:
            require("=" in item, f"overrides holds key=value items, got {item!r}")


def torchrun_command(settings: DistributedSettings, processes: int, runs_dir: Path) -> list[str]:
    """The command line of one run: torchrun starting `processes` copies of `train`.

    `--standalone` is torchrun's one-machine mode: it picks a free port for the processes to
    meet on, so two labs on one machine do not collide. On several machines the same `train`
    arguments follow `--nnodes/--node-rank/--rdzv-*` instead (see the lab page).
    """
    threads = settings.threads or max(1, (os.cpu_count() or 1) // processes)
    values = {
        "name": f"procs{processes}",
        "train.max_steps": settings.max_steps,
        "train.log_interval": settings.log_interval,
        "train.eval_interval": settings.max_steps,  # evaluate once, at the end
        "train.checkpoint_interval": settings.max_steps,
        "train.sample_tokens": 0,
        "train.device": settings.device,
        "train.threads": threads,
        "train.parallel": settings.parallel,
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", str(processes), "-m", PACKAGE, "train"]
    command += ["--config", settings.config, "--runs-dir", str(runs_dir)]
    for item in [*(f"{k}={v}" for k, v in values.items()), *settings.overrides]:
        command += ["--set", item]
    return command


def best_window(metrics: list[dict[str, Any]], unit: str) -> float:
    """The best throughput over the log windows after the first step.

    The first window holds one-off costs (memory allocation, the first collective setting up
    its connections); the best of the others is the speed the machine can sustain, the least
    disturbed by other programs.
    """
    key = f"{unit}_per_s"
    values = [row[key] for row in metrics if key in row and row["step"] > 1]
    if not values:
        raise UserError("the run logged no throughput after step 1; lower log_interval")
    return max(values)


def read_run(run_dir: Path) -> dict[str, Any]:
    """The figures of one finished run, from the files `train` wrote."""
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    metrics = [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    key = next(k for k in summary if k.startswith("train_") and k.endswith("_per_s"))
    unit = key[len("train_") : -len("_per_s")]  # train_tokens_per_s -> tokens
    return {
        "processes": summary["world_size"],
        "unit": unit,
        "tokens_per_s": best_window(metrics, unit),  # global: every process's tokens
        "mean_tokens_per_s": summary[key],  # the whole run's average, first step included
        "final_loss": summary["final"]["loss"],
        "eval_loss": summary["eval"].get("eval/loss"),
        "threads": summary["environment"].get("threads"),
        "steps": summary["steps"],
    }


def scaling(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add to each run its speed-up and scaling efficiency against the first run.

    speed-up = tokens/s(N) / tokens/s(N0); per-process tokens/s = tokens/s(N) / N;
    efficiency = speed-up / (N / N0): 1.0 means every added process brought its full share.
    """
    base = runs[0]
    for r in runs:
        r["per_process_tokens_per_s"] = r["tokens_per_s"] / r["processes"]
        r["speedup"] = r["tokens_per_s"] / base["tokens_per_s"]
        r["efficiency"] = r["speedup"] / (r["processes"] / base["processes"])
    return runs


def train_once(settings: DistributedSettings, processes: int, runs_dir: Path) -> dict[str, Any]:
    """Run `train` under torchrun with `processes` processes; its figures plus the wall time."""
    command = torchrun_command(settings, processes, runs_dir)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun sets it anyway; train.threads decides
    t0 = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=settings.timeout
        )
    except subprocess.TimeoutExpired:
        raise UserError(
            f"the {processes}-process run took more than {settings.timeout} s; lower max_steps "
            "or raise timeout"
        ) from None
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise UserError(f"the {processes}-process run failed (exit {done.returncode}):\n{tail}")
    folders = [p for p in runs_dir.iterdir() if p.name.startswith(f"procs{processes}")]
    if len(folders) != 1:  # only rank 0 may create the run folder
        raise UserError(f"expected one run folder for {processes} processes, found {folders}")
    return {**read_run(folders[0]), "wall_s": wall, "run_dir": str(folders[0])}


def run(settings: DistributedSettings) -> dict[str, Any]:
    """Train once per entry of `processes`, one after the other, and compare throughputs."""
    import torch

    if not Path(settings.config).is_file():
        raise UserError(f"config file not found: {settings.config} (run from the project root)")
    if settings.device == "cuda":
        have = torch.cuda.device_count()
        if max(settings.processes) > have:
            raise UserError(
                f"device=cuda with {max(settings.processes)} processes needs as many GPUs; "
                f"{have} visible. Use device=cpu (gloo) or fewer processes"
            )
    keep = Path(settings.runs_dir) if settings.runs_dir else None
    runs_dir = keep or Path(tempfile.mkdtemp(prefix="ddp-lab-"))
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        runs = [train_once(settings, n, runs_dir) for n in settings.processes]
    finally:
        if keep is None:
            shutil.rmtree(runs_dir, ignore_errors=True)
    if keep is None:
        for r in runs:
            r.pop("run_dir")
    return {
        "device": settings.device,
        "parallel": settings.parallel,
        "config": settings.config,
        "max_steps": settings.max_steps,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "runs": scaling(runs),
    }


def format_report(result: dict[str, Any]) -> str:
    """The comparison table, one line per process count."""
    lines = [
        f"train --config {result['config']}, {result['max_steps']} steps per run, "
        f"{result['parallel'].upper()} on {result['device']} ({result['cpu_count']} CPU cores), "
        f"torch {result['torch']}",
        f"  {'processes':>9} {'threads':>7} {'tokens/s':>9} {'per proc':>9} {'speed-up':>8} "
        f"{'efficiency':>10} {'loss':>6} {'wall s':>6}",
    ]
    for r in result["runs"]:
        lines.append(
            f"  {r['processes']:>9} {r['threads']:>7} {r['tokens_per_s']:>9,.0f} "
            f"{r['per_process_tokens_per_s']:>9,.0f} {r['speedup']:>7.2f}x "
            f"{r['efficiency']:>10.0%} {r['final_loss']:>6.3f} {r['wall_s']:>6.1f}"
        )
    lines += [
        "tokens/s: the best log window, counting every process's tokens (batch_size is per",
        "process: N processes train on N times the tokens per step)",
    ]
    return "\n".join(lines)
