"""Lab 01: profile first. Where does the time of a training step go?

Before making anything faster, measure where the time goes. This records a few training steps
of the project's mini-GPT with `torch.profiler` and gives you three views of them:

- the phases: how the step splits between forward, backward and the optimizer (each step is
  wrapped in `record_function` ranges with those names, so they show up in the profile);
- the top operators: the aten:: calls (matmul, layer norm, softmax...) that take the most time;
- a Chrome trace (JSON): every call on a timeline, to open in https://ui.perfetto.dev or
  chrome://tracing.

The tokens are random: what a step costs does not depend on what the text says. Profiling
slows every call down a little, so the step time here is an upper bound; for clean speed
figures, time without the profiler (benchmarks/systems/ does both and compares).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import require
from ..errors import UserError

PHASES = ("forward", "backward", "optimizer")
STEP = "train_step"  # the range around each whole step


@dataclass
class ProfileSettings:
    steps: int = 5  # training steps recorded
    warmup: int = 2  # steps run first and not recorded: first calls pay one-off costs
    batch_size: int = 16  # sequences per step
    block_size: int = 64  # tokens per sequence
    n_layer: int = 4  # the model's shape, as in configs/tiny.yaml
    n_head: int = 4  # attention heads per layer
    n_embd: int = 128  # width
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    dtype: str = "auto"  # auto, float32, bfloat16 or float16, as train.dtype
    fused: bool = False  # AdamW as one fused kernel (what `train` uses) instead of a loop
    decode_tokens: int = 32  # then tokens decoded with the KV-cache, in a second trace; 0: skip
    rows: int = 12  # operators in the printed table
    out: str = "runs/profile/trace.json"  # where the Chrome trace is written
    seed: int = 0  # weights and tokens

    def check(self) -> None:
        require(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        require(self.warmup >= 0, f"warmup must be >= 0, got {self.warmup}")
        require(self.batch_size >= 1 and self.block_size >= 2, "batch_size >= 1, block_size >= 2")
        require(
            self.n_embd % self.n_head == 0,
            f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})",
        )
        require(self.decode_tokens >= 0, f"decode_tokens must be >= 0, got {self.decode_tokens}")
        require(self.rows >= 1, f"rows must be >= 1, got {self.rows}")
        require(self.out.endswith(".json"), f"out must be a .json file, got {self.out!r}")


def train_step(model, optimizer, scaler, x, y, precision) -> float:
    """One training step, each phase in a named range so the profile can tell them apart."""
    from torch.profiler import record_function

    with record_function("forward"), precision.autocast_context():
        _, loss = model(x, y)
    with record_function("backward"):
        scaler.scale(loss).backward()  # scaling is a no-op unless the dtype is float16
    with record_function("optimizer"):
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
    return loss.item()


def profile_training(settings: ProfileSettings) -> tuple[Any, dict[str, Any]]:
    """Run `warmup` steps, then record `steps` steps; returns (the profiler, facts about it)."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from ..device import pick_device, pick_precision
    from .shapes import build_gpt

    # Kineto (the profiler's engine) logs its own start/stop lines and, on a machine without
    # a GPU, a CUDA error that is harmless: keep the output for what the lab is about.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    device = pick_device(settings.device)
    precision = pick_precision(device, settings.dtype)
    model = build_gpt(settings, device)
    try:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=settings.fused)
    except (RuntimeError, TypeError) as exc:  # no fused kernel for this device or torch
        raise UserError(f"fused AdamW is not available here ({exc}); set fused=false") from None
    scaler = torch.amp.GradScaler(precision.device_type, enabled=precision.use_scaler)
    shape = (settings.batch_size, settings.block_size)
    x = torch.randint(0, model.config.vocab_size, shape, device=device)  # (B, T)
    y = torch.randint(0, model.config.vocab_size, shape, device=device)  # (B, T)

    def sync() -> None:  # GPU work is queued: wait for it before reading a clock
        if precision.device_type == "cuda":
            torch.cuda.synchronize()

    for _ in range(settings.warmup):
        train_step(model, optimizer, scaler, x, y, precision)
    sync()
    activities = [ProfilerActivity.CPU]
    if precision.device_type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        for _ in range(settings.steps):
            with record_function(STEP):
                loss = train_step(model, optimizer, scaler, x, y, precision)
        sync()
        seconds = time.perf_counter() - t0
    step_s = seconds / settings.steps
    facts = {
        "device": device,
        "dtype": precision.dtype,
        "fused": settings.fused,
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch": list(shape),
        "steps": settings.steps,
        "step_ms": 1000 * step_s,
        "tokens_per_s": settings.batch_size * settings.block_size / step_s,
        "loss": loss,
    }
    return prof, facts


def phase_shares(events) -> dict[str, float]:
    """{"forward": 0.3, ...}: each phase's share of the CPU time spent in the three phases."""
    totals = {e.key: e.cpu_time_total for e in events if e.key in PHASES}
    whole = sum(totals.values()) or 1.0
    return {phase: totals.get(phase, 0.0) / whole for phase in PHASES}


def top_operators(events, rows: int, on_gpu: bool) -> list[dict[str, Any]]:
    """The operators with the most self time (time in the call itself, not in its children)."""
    key = "self_device_time_total" if on_gpu else "self_cpu_time_total"
    ops = [e for e in events if e.key not in (*PHASES, STEP)]
    whole = sum(getattr(e, key) for e in ops) or 1.0
    ops.sort(key=lambda e: getattr(e, key), reverse=True)
    return [
        {
            "name": e.key,
            "calls": e.count,
            "self_ms": getattr(e, key) / 1000,  # the profiler counts microseconds
            "total_ms": (e.device_time_total if on_gpu else e.cpu_time_total) / 1000,
            "share": getattr(e, key) / whole,
        }
        for e in ops[:rows]
    ]


def write_trace(prof, out: Path) -> Path:
    """The Chrome trace, written next to its final place and then renamed (never half a file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        partial = Path(tmp) / out.name
        prof.export_chrome_trace(str(partial))
        os.replace(partial, out)
    return out


def profile_decoding(settings: ProfileSettings) -> tuple[Any, dict[str, Any]]:
    """Record KV-cache decoding (lab 03) of the same model shape: one token per step.

    Decoding looks nothing like training: one token per step, so each matrix product is a
    thin matrix-vector product and the per-call overhead of every small operator shows.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from ..device import pick_device
    from .kv_cache import generate
    from .shapes import build_gpt

    device = pick_device(settings.device)
    prompt_tokens = 8
    block_size = max(settings.block_size, prompt_tokens + settings.decode_tokens)
    model = build_gpt(settings, device, block_size).eval()
    prompt = torch.randint(0, model.config.vocab_size, (1, prompt_tokens), device=device)
    generate(model, prompt, 2, temperature=0)  # warm-up
    activities = [ProfilerActivity.CPU]
    if device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        with record_function("decode"):
            generate(model, prompt, settings.decode_tokens, temperature=0)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    ms_per_token = 1000 * seconds / settings.decode_tokens
    return prof, {"tokens": settings.decode_tokens, "ms_per_token": ms_per_token}


def run(settings: ProfileSettings) -> dict[str, Any]:
    prof, facts = profile_training(settings)
    events = prof.key_averages()
    on_gpu = facts["device"].startswith("cuda")
    out = Path(settings.out)
    result = {
        **facts,
        "phases": phase_shares(events),
        "top_operators": top_operators(events, settings.rows, on_gpu),
        "sorted_by": "self GPU time" if on_gpu else "self CPU time",
        "trace": str(write_trace(prof, out)),
    }
    if settings.decode_tokens:
        prof, decode = profile_decoding(settings)
        decode["top_operators"] = top_operators(prof.key_averages(), settings.rows, on_gpu)
        decode["trace"] = str(write_trace(prof, out.with_name(f"{out.stem}-decode.json")))
        result["decode"] = decode
    return result


def operator_lines(ops: list[dict[str, Any]]) -> list[str]:
    lines = [f"  {'operator':<56} {'calls':>6} {'self ms':>9} {'share':>6}"]
    for op in ops:
        name = op["name"] if len(op["name"]) <= 56 else op["name"][:53] + "..."
        lines.append(f"  {name:<56} {op['calls']:>6} {op['self_ms']:>9.2f} {op['share']:>6.1%}")
    return lines


def format_report(result: dict[str, Any]) -> str:
    batch, params = result["batch"], result["parameters"] / 1e6
    phases = ", ".join(f"{name} {share:.0%}" for name, share in result["phases"].items())
    lines = [
        f"Profiled {result['steps']} training steps of the mini-GPT ({params:.2f} M parameters) "
        f"on {result['device']}, {result['dtype']}, batch {batch[0]} x {batch[1]} tokens, "
        f"{'fused' if result['fused'] else 'plain'} AdamW",
        f"  {result['step_ms']:.1f} ms a step while profiled, "
        f"{result['tokens_per_s']:,.0f} tokens/s, loss {result['loss']:.3f}",
        f"  where the CPU time goes: {phases}",
        f"Top operators by {result['sorted_by']}:",
        *operator_lines(result["top_operators"]),
        f"Trace: {result['trace']} (open it in https://ui.perfetto.dev)",
    ]
    if "decode" in result:
        decode = result["decode"]
        lines += [
            f"Decoding {decode['tokens']} tokens with the KV-cache, batch 1: "
            f"{decode['ms_per_token']:.2f} ms a token while profiled",
            *operator_lines(decode["top_operators"]),
            f"Trace: {decode['trace']}",
        ]
    return "\n".join(lines)
