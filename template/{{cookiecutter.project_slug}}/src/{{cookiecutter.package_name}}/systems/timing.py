"""Timing for the labs: best of several runs, GPU work waited for, sides taken in turns.

Other programs on the machine slow a measurement down, never speed it up: the fastest of a few
runs is the one least disturbed. A GPU runs queued work after Python moves on, so the clock is
read only after `sync`. When two things are compared, they take turns (a, b, a, b...): a slow
spell of the machine then hits both alike, and their ratio holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def sync(device: str) -> None:
    """Wait for the GPU work queued on `device` ("cuda", "cuda:1"...); a CPU has none."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def best_time(
    fn: Callable[[], Any], repeats: int, device: str = "cpu", warmup: bool = False
) -> tuple[float, Any]:
    """(seconds of the fastest of `repeats` calls, the last call's result).

    warmup: one untimed call first, which pays one-off costs (allocations, kernel selection).
    """
    if warmup:
        fn()
    best, out = float("inf"), None
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


def best_times(fns: list[Callable[[], Any]], repeats: int, device: str = "cpu") -> list[float]:
    """The fastest of `repeats` calls of each function, the functions taking turns, after one
    untimed warm-up call of each."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            best[i] = min(best[i], time.perf_counter() - t0)
    return best
