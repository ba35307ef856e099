"""What does profiling cost? The same training steps with and without `torch.profiler`.

Lab 01 reports step times measured while profiling; this measures how much the profiler adds.
Both variants run the same model, batch and optimizer in one process, alternately, in chunks
of a few steps, and the best chunk of each is compared: other programs on a shared machine
slow some chunks down, the best ones are not.

    python benchmarks/systems/bench_profiler_overhead.py [--chunks 5] [--steps 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from torch.profiler import ProfilerActivity, profile

from {{ cookiecutter.package_name }}.device import pick_precision
from {{ cookiecutter.package_name }}.models.gpt import GPT, GPTConfig
from {{ cookiecutter.package_name }}.systems.profiling import train_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=5, help="timed chunks per variant")
    parser.add_argument("--steps", type=int, default=5, help="training steps per chunk")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # quiet the profiler's own log lines

    torch.manual_seed(0)
    model = GPT(GPTConfig())  # the configs/tiny.yaml shape
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    precision = pick_precision("cpu", "float32")
    x = torch.randint(0, 256, (16, 64))
    y = torch.randint(0, 256, (16, 64))

    def chunk(profiled: bool) -> float:
        """Milliseconds per step over one chunk."""
        t0 = time.perf_counter()
        if profiled:
            with profile(activities=[ProfilerActivity.CPU]):
                for _ in range(args.steps):
                    train_step(model, optimizer, scaler, x, y, precision)
        else:
            for _ in range(args.steps):
                train_step(model, optimizer, scaler, x, y, precision)
        return 1000 * (time.perf_counter() - t0) / args.steps

    chunk(False)  # warm-up: first calls pay one-off costs
    times = {"plain": [], "profiled": []}
    for _ in range(args.chunks):
        times["plain"].append(chunk(False))
        times["profiled"].append(chunk(True))
    best = {name: min(values) for name, values in times.items()}
    result = {
        "plain_ms": best["plain"],
        "profiled_ms": best["profiled"],
        "overhead": best["profiled"] / best["plain"] - 1,
        "threads": torch.get_num_threads(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"best ms a step, {args.steps}-step chunks, {result['threads']} threads:")
    print(f"  without the profiler {result['plain_ms']:8.2f}")
    print(f"  with the profiler    {result['profiled_ms']:8.2f}  ({result['overhead']:+.0%})")


if __name__ == "__main__":
    main()
