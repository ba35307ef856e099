"""Lab 02: mixed precision. The same training and inference in fp32, bf16 and fp16.

A float32 number takes 4 bytes; bfloat16 and float16 take 2. Half the bytes means half the
memory traffic, and hardware with 16-bit matrix units (GPU tensor cores, Intel AMX, Arm SME)
multiplies 16-bit matrices several times faster. *Mixed* precision keeps the weights, the
optimizer and the sensitive operations (softmax, layer norm, the loss) in float32 and runs the
matrix products in 16 bits: `torch.autocast` picks the dtype operation by operation.

- bfloat16 keeps float32's 8 exponent bits (same range) and drops mantissa bits (about 3
  significant digits): nothing overflows or underflows, so training needs no other change.
- float16 keeps more mantissa bits but only 5 exponent bits: small gradients underflow to zero.
  `torch.amp.GradScaler` multiplies the loss by a large factor before backward (so gradients stay
  representable), divides them back before the optimizer step, and skips a step whose
  gradients overflowed. float16 autocast is a GPU feature: on a CPU the row is skipped.

Every precision starts from the same initial weights and trains on the same batches, so the loss
differences in the table are the precision's doing, nothing else. Whether 16 bits are *faster*
depends on the hardware: a CPU without native bf16 instructions (avx512_bf16 / AMX on Intel,
bf16 on recent Arm) converts back and forth and is often slower in bf16 than in fp32.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import require
from .timing import sync

# (dtype name, label in the table)
PRECISIONS = (
    ("float32", "fp32"),
    ("bfloat16", "bf16 autocast"),
    ("float16", "fp16 + GradScaler"),
)


@dataclass
class AmpSettings:
    steps: int = 8  # training steps per run (and batches per inference run)
    repeats: int = 3  # timed runs per precision; the best one counts
    warmup: int = 1  # untimed steps first: first calls pay one-off costs
    batch_size: int = 8  # sequences per step
    block_size: int = 128  # tokens per sequence
    n_layer: int = 4  # the model's shape
    n_head: int = 4  # attention heads per layer
    n_embd: int = 256  # width
    lr: float = 1e-3  # AdamW learning rate
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    seed: int = 0  # initial weights and batches

    def check(self) -> None:
        require(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        require(self.repeats >= 1, f"repeats must be >= 1, got {self.repeats}")
        require(self.warmup >= 0, f"warmup must be >= 0, got {self.warmup}")
        require(self.batch_size >= 1 and self.block_size >= 2, "batch_size >= 1, block_size >= 2")
        require(
            self.n_embd % self.n_head == 0,
            f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})",
        )
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")


def train_step(model, optimizer, scaler, x, y, precision) -> float:
    """One training step under `precision`; returns the loss (a float) of this step.

    Only the forward pass runs under autocast: backward reuses the dtypes the forward chose.
    The scaler multiplies the loss before backward and unscales the gradients in `step`
    (a no-op when it is disabled, i.e. for float32 and bfloat16).
    """
    with precision.autocast_context():
        _, loss = model(x, y)
    scaler.scale(loss).backward()
    scaler.step(optimizer)  # skips the update if a gradient overflowed (float16 only)
    scaler.update()  # adjusts the scale factor for the next step
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def make_batches(
    count: int, batch_size: int, block_size: int, vocab_size: int, seed: int, device: str
) -> list[tuple[Any, Any]]:
    """`count` batches of counting sequences (start + k * stride, modulo the vocabulary).

    Random tokens would leave nothing to learn; these sequences have a rule, so the loss
    visibly goes down within a few steps and the precisions can be compared on a falling loss.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        start = torch.randint(0, vocab_size, (batch_size, 1), generator=g)
        stride = torch.randint(1, 8, (batch_size, 1), generator=g)
        seq = (start + stride * torch.arange(block_size + 1)) % vocab_size
        batches.append((seq[:, :-1].to(device), seq[:, 1:].to(device)))  # inputs, next tokens
    return batches


def peak_memory_mb(fn: Callable[[], Any], device_type: str) -> float | None:
    """Peak tensor memory (MiB) that `fn` allocates beyond what was allocated before it.

    CUDA keeps counters: reset the peak, run, read `max_memory_allocated`. The CPU allocator
    keeps none, so on a CPU the profiler records every allocation and free
    (`profile_memory=True`) and the running sum of their sizes gives the peak. Both count
    tensors only (not the allocator's cache, not oneDNN's own scratch memory). None on MPS.
    """
    import torch

    if device_type == "cuda":
        sync(device_type)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        sync(device_type)
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    if device_type != "cpu":
        return None
    from torch.profiler import ProfilerActivity, profile

    with warnings.catch_warnings():
        # Freeing a tensor made before profiling started (last step's activations) warns that
        # the free cannot be matched; those tensors are not counted, which is what we want.
        warnings.filterwarnings("ignore", message="Memory block of unknown size")
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
    results = getattr(prof.profiler, "kineto_results", None)  # not a public API: may move
    if results is None:
        return None
    events = [e for e in results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()  # > 0: allocated, < 0: freed
        peak = max(peak, live)
    return peak / 2**20


def _cuda_bf16() -> bool:
    """bf16 in hardware (Ampere or newer), not emulated through float32."""
    import torch

    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.3 has no such argument and reports hardware support only
        return torch.cuda.is_bf16_supported()


def _native_bf16(device: str) -> bool | None:
    """Does this processor multiply bf16 natively? (None: cannot tell.)"""
    import torch

    if device.startswith("cuda"):
        return _cuda_bf16()
    if device == "cpu":
        check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # private, may go away
        amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
        if check is None or amx is None:
            return None
        return bool(check() or amx())
    return None


def skip_reason(dtype: str, device: str) -> str | None:
    """Why this precision cannot run on this device, or None if it can."""
    if dtype == "float16" and not device.startswith("cuda"):
        return "needs a CUDA GPU"
    if dtype == "bfloat16" and device.startswith("cuda") and not _cuda_bf16():
        return "this GPU has no bfloat16 (needs compute capability 8.0, Ampere, or newer)"
    return None


def measure(settings: AmpSettings, model, initial, batches, precision) -> dict[str, Any]:
    """Train and infer under one precision; speed is the best of `repeats` runs."""
    import torch

    device_type = precision.device_type

    def fresh() -> tuple[Any, Any]:  # the same starting point for every run and precision
        model.load_state_dict(initial)
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr)
        scaler = torch.amp.GradScaler(device_type, enabled=precision.use_scaler)
        return optimizer, scaler

    optimizer, scaler = fresh()
    for i in range(settings.warmup):
        x, y = batches[i % len(batches)]
        train_step(model, optimizer, scaler, x, y, precision)
    train_s = float("inf")
    for _ in range(settings.repeats):
        optimizer, scaler = fresh()
        sync(device_type)
        t0 = time.perf_counter()
        losses = [train_step(model, optimizer, scaler, x, y, precision) for x, y in batches]
        sync(device_type)
        train_s = min(train_s, time.perf_counter() - t0)
    # Memory of one step with the optimizer state already there (as in a long run).
    optimizer, scaler = fresh()
    x, y = batches[0]
    train_step(model, optimizer, scaler, x, y, precision)
    train_mb = peak_memory_mb(
        lambda: train_step(model, optimizer, scaler, x, y, precision), device_type
    )

    model.load_state_dict(initial)
    model.eval()

    @torch.no_grad()
    def infer() -> tuple[Any, float]:
        first, total = None, 0.0
        for x, y in batches:
            with precision.autocast_context():
                logits, loss = model(x, y)
            first = logits.float() if first is None else first  # (B, T, V), vs fp32's
            total += loss.item()
        return first, total / len(batches)

    infer()  # warm-up
    infer_s = float("inf")
    for _ in range(settings.repeats):
        sync(device_type)
        t0 = time.perf_counter()
        logits, infer_loss = infer()
        sync(device_type)
        infer_s = min(infer_s, time.perf_counter() - t0)
    infer_mb = peak_memory_mb(infer, device_type)
    tokens = settings.steps * settings.batch_size * settings.block_size
    return {
        "train_tokens_per_s": tokens / train_s,
        "loss": losses[-1],
        "first_loss": losses[0],
        "train_peak_mb": train_mb,
        "infer_tokens_per_s": tokens / infer_s,
        "infer_loss": infer_loss,
        "infer_peak_mb": infer_mb,
        "_logits": logits,  # removed by run() after comparing
    }


def run(settings: AmpSettings) -> dict[str, Any]:
    """Measure every precision on the same weights and batches; fp32 is the baseline."""
    from ..device import pick_device, pick_precision
    from .shapes import build_gpt

    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # keep the profiler's own logs quiet
    device = pick_device(settings.device)
    model = build_gpt(settings, device)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    batches = make_batches(
        settings.steps,
        settings.batch_size,
        settings.block_size,
        model.config.vocab_size,
        settings.seed + 1,
        device,
    )
    rows: list[dict[str, Any]] = []
    base: dict[str, Any] | None = None
    for dtype, label in PRECISIONS:
        row: dict[str, Any] = {"precision": dtype, "label": label}
        reason = skip_reason(dtype, device)
        if reason is None:
            try:
                precision = pick_precision(device, dtype)
                row.update(measure(settings, model, initial, batches, precision))
            except RuntimeError as exc:  # e.g. an op without a 16-bit kernel on this device
                reason = f"failed on {device}: {str(exc).splitlines()[0]}"
        if reason is not None:
            rows.append({**row, "skipped": reason})
            continue
        logits = row.pop("_logits")
        if base is None:  # float32 comes first: the reference for the others
            base = {**row, "logits": logits}
        row.update(
            skipped=None,
            train_speedup=row["train_tokens_per_s"] / base["train_tokens_per_s"],
            loss_diff=row["loss"] - base["loss"],
            infer_speedup=row["infer_tokens_per_s"] / base["infer_tokens_per_s"],
            infer_loss_diff=row["infer_loss"] - base["infer_loss"],
            logits_max_diff=(logits - base["logits"]).abs().max().item(),
        )
        rows.append(row)
    if device.startswith("cuda"):
        memory = "CUDA max_memory_allocated during one step, minus what was allocated before it"
    elif device == "cpu":
        memory = "torch.profiler(profile_memory=True): peak of the tensors one step allocates"
    else:
        memory = f"n/a on {device}: no peak-memory counter here"
    return {
        "device": device,
        "native_bf16": _native_bf16(device),
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch": [settings.batch_size, settings.block_size],
        "steps": settings.steps,
        "repeats": settings.repeats,
        "memory": memory,
        "rows": rows,
    }


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def format_report(result: dict[str, Any]) -> str:
    """The comparison as two tables, training and inference, fp32 first."""
    batch, params = result["batch"], result["parameters"] / 1e6
    native = {True: "yes", False: "no", None: "unknown"}[result["native_bf16"]]
    lines = [
        f"Mixed precision on {result['device']} (native bf16: {native}), mini-GPT "
        f"({params:.2f} M parameters), batch {batch[0]} x {batch[1]} tokens, "
        f"best of {result['repeats']}",
        f"Training: {result['steps']} steps from the same weights on the same batches",
        f"  {'precision':<18} {'tokens/s':>9} {'speed-up':>8} {'loss':>7} {'vs fp32':>8} "
        f"{'step MB':>8}",
    ]
    for row in result["rows"]:
        if row["skipped"]:
            lines.append(f"  {row['label']:<18} skipped: {row['skipped']}")
            continue
        lines.append(
            f"  {row['label']:<18} {row['train_tokens_per_s']:>9,.0f} "
            f"{row['train_speedup']:>7.2f}x {row['loss']:>7.4f} {row['loss_diff']:>+8.4f} "
            f"{_mb(row['train_peak_mb']):>8}"
        )
    lines += [
        f"Inference: batch forward of the same {result['steps']} batches, initial weights",
        f"  {'precision':<18} {'tokens/s':>9} {'speed-up':>8} {'max|dlogit|':>11} "
        f"{'loss diff':>9} {'peak MB':>8}",
    ]
    for row in result["rows"]:
        if row["skipped"]:
            lines.append(f"  {row['label']:<18} skipped: {row['skipped']}")
            continue
        lines.append(
            f"  {row['label']:<18} {row['infer_tokens_per_s']:>9,.0f} "
            f"{row['infer_speedup']:>7.2f}x {row['logits_max_diff']:>11.4f} "
            f"{row['infer_loss_diff']:>+9.4f} {_mb(row['infer_peak_mb']):>8}"
        )
    lines.append(f"Memory: {result['memory']}")
    return "\n".join(lines)
