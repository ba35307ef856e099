"""Lab 06: torch.compile. What a compiler buys a training step and a decode step, and at what cost.

Eager PyTorch runs one operator at a time: every `+`, `gelu` or `layer_norm` reads its inputs
from memory and writes its output back, and Python dispatches each call. `torch.compile` traces
the Python code into a graph (Dynamo), then a backend turns the graph into code:

- `inductor` (the default) fuses chains of small operators into one loop and generates C++
  (CPU, so a C++ compiler is needed) or Triton kernels (GPU);
- `aot_eager` traces forward and backward ahead of time but runs them with eager kernels;
- `eager` only traces. Both are quick to compile: they check the wiring, not the speed.

Compiling costs time on the first call(s); afterwards each call reuses the compiled code as long
as its *guards* hold (same shapes, same dtypes...). A guard that fails triggers a *recompile*,
and code Dynamo cannot trace (e.g. `int(tensor)`, a Python `if` on a tensor's value) splits the
graph in two (*graph break*), with a return to Python in between.

KV-cache decoding is the hard case: the attended length grows by one every step, and
kv_cache.forward reads it with `int(start.max())`. Compiled as it is (`decode: as_is`) it breaks
into several graphs and recompiles when the length changes. `decode_step` below does the same
work with shapes that never change: it attends over the whole cache and masks the positions
not written yet, so one graph serves every step (`decode: padded`, the default). The extra keys
cost a little attention work; for a small model the fused, overhead-free graph wins.
"""

from __future__ import annotations

import importlib.util
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.nn import functional as F

from ..config import require
from ..errors import UserError
from ..models.gpt import GPT
from .kv_cache import KVCache
from .kv_cache import forward as cache_forward
from .precision import make_batches
from .timing import sync

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
HOW_TO_GET_A_COMPILER = (
    "inductor turns the graph into C++ on a CPU, so it needs a C++ compiler: on Linux install "
    "g++ (e.g. `sudo apt install g++`), on macOS run `xcode-select --install`, on Windows "
    "install the Visual Studio Build Tools and run from a Developer Command Prompt (cl.exe on "
    "PATH); or set backend=aot_eager to check everything but the generated code"
)


class CompileError(UserError):
    """torch.compile cannot work here (no C++ compiler, no Triton, an unsupported Python)."""


@dataclass
class CompileSettings:
    CHOICES: ClassVar = {
        "backend": ("inductor", "aot_eager", "eager"),
        "decode": ("padded", "as_is"),
    }

    backend: str = "inductor"  # inductor (generates code), aot_eager or eager (quick checks)
    mode: str | None = None  # inductor mode: none, reduce-overhead or max-autotune
    decode: str = "padded"  # padded: one graph for every step; as_is: kv_cache.forward
    steps: int = 5  # training steps per run
    new_tokens: int = 64  # tokens decoded per run
    decode_batch: int = 1  # sequences decoded together
    repeats: int = 3  # timed runs after the first; the best one counts
    batch_size: int = 8  # sequences per training step
    block_size: int = 128  # tokens per sequence
    n_layer: int = 4  # the model's shape
    n_head: int = 4  # attention heads per layer
    n_embd: int = 256  # width
    cold_compile: bool = False  # true: ignore inductor's on-disk cache (a first-ever compile)
    tolerance: float = 1e-3  # compiled outputs (losses, logits) must match eager within this
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    seed: int = 0  # weights and batches

    def check(self) -> None:
        require(
            self.mode is None or self.mode in MODES,
            f"mode must be none or one of {', '.join(MODES)}, got {self.mode!r}",
        )
        require(
            self.mode is None or self.backend == "inductor",
            f"mode applies to backend=inductor only (backend is {self.backend})",
        )
        require(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        require(self.repeats >= 1, f"repeats must be >= 1, got {self.repeats}")
        require(self.batch_size >= 1 and self.block_size >= 2, "batch_size >= 1, block_size >= 2")
        require(self.decode_batch >= 1, f"decode_batch must be >= 1, got {self.decode_batch}")
        require(
            1 <= self.new_tokens <= self.block_size,
            f"new_tokens must be between 1 and block_size ({self.block_size}), "
            f"got {self.new_tokens}",
        )
        require(
            self.n_embd % self.n_head == 0,
            f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})",
        )
        require(self.tolerance > 0, f"tolerance must be > 0, got {self.tolerance}")


@torch.no_grad()
def decode_step(model: GPT, cache: KVCache, token: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """kv_cache.forward for one new token per row, with shapes that never change.

    token: (B, 1) ids; pos: (B,) the position of each row's token (rows use cache slots
    0..B-1, no padding). Every call attends over all `cache.max_len` positions and masks the
    ones after `pos`, so the shapes are the same at every step and a compiled version needs
    one graph and no recompiles. Returns the logits of the new tokens, (B, V).
    """
    B = token.shape[0]
    C, nh = model.config.n_embd, model.config.n_head
    x = model.wte(token) + model.wpe(pos)[:, None]  # (B, 1, C)
    visible = torch.arange(cache.max_len, device=token.device) <= pos[:, None]  # (B, S)
    mask = visible[:, None, None, :]  # (B, 1, 1, S): the same for every head
    rows = torch.arange(B, device=token.device)
    for layer, block in enumerate(model.blocks):
        attn = block.attn
        q, k, v = attn.c_attn(block.ln_1(x)).view(B, 1, 3, nh, C // nh).unbind(2)  # (B, 1, nh, hs)
        cache.keys[layer][rows, :, pos] = k[:, 0]  # (B, nh, hs) written at position pos[b]
        cache.values[layer][rows, :, pos] = v[:, 0]
        keys, values = cache.keys[layer][:B], cache.values[layer][:B]  # (B, nh, S, hs)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), keys, values, attn_mask=mask)
        x = x + attn.c_proj(y.transpose(1, 2).reshape(B, 1, C))
        x = x + block.mlp(block.ln_2(x))
    return model.lm_head(model.ln_f(x[:, -1]))  # (B, V)


def _as_is_step(model: GPT, cache: KVCache, token: torch.Tensor, pos: torch.Tensor):
    """One decode step through kv_cache.forward (the lab 03 reference)."""
    return cache_forward(model, cache, token, pos)


# ----------------------------------------------------------------------------- compiling


def check_toolchain(backend: str, device: str) -> None:
    """Fail early, with what to install, if inductor cannot generate code on this machine."""
    if backend != "inductor":
        return
    if device.startswith("cuda"):
        if importlib.util.find_spec("triton") is None:
            raise CompileError(
                "inductor on a GPU generates Triton kernels and triton is not installed "
                "(`uv pip install triton`); or set backend=aot_eager"
            )
        return
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler  # private: may move
    except ImportError:
        return  # cannot ask: the first compiled call will tell
    try:
        get_cpp_compiler()
    except (RuntimeError, OSError) as exc:  # InvalidCxxCompiler is a RuntimeError
        raise CompileError(f"{str(exc).splitlines()[0]}; {HOW_TO_GET_A_COMPILER}") from None


def compile_fn(fn: Callable, settings: CompileSettings) -> Callable:
    """torch.compile(fn) with the settings' backend and mode, or a one-line error."""
    try:
        return torch.compile(fn, backend=settings.backend, mode=settings.mode)
    except RuntimeError as exc:  # e.g. a Python version Dynamo does not support yet
        raise CompileError(f"torch.compile is not available here: {exc}") from None


@contextmanager
def compile_errors(backend: str) -> Iterator[None]:
    """Compiling happens at the first call: turn a backend failure into a one-line error."""
    try:
        yield
    except torch._dynamo.exc.BackendCompilerFailed as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = HOW_TO_GET_A_COMPILER if backend == "inductor" else "try backend=eager"
        raise CompileError(f"torch.compile (backend {backend}) failed: {first}; {hint}") from None


@contextmanager
def inductor_caches(settings: CompileSettings) -> Iterator[None]:
    """A context in which inductor may reuse code compiled by earlier runs, or may not.

    Inductor keeps the code it generates on disk (under the temp folder) and a later process
    compiling the same graph loads it in a fraction of the time. `cold_compile: true` turns the
    caches off, to see what a first-ever compile costs.
    """
    from torch._inductor import config

    # (an older torch has no such switch: its caches stay on)
    cold = settings.cold_compile and settings.backend == "inductor"
    if not (cold and hasattr(config, "force_disable_caches")):
        yield
        return
    with warnings.catch_warnings():
        # Turning the caches off also turns off Dynamo's profile-guided cache, which warns once
        # to say so: expected here.
        warnings.filterwarnings("ignore", message=".*force_disable_caches")
        with config.patch(force_disable_caches=True):
            yield


class _Count(logging.Handler):
    """Counts the recompile messages Dynamo logs (its `recompiles` log artifact)."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.reasons.append(record.getMessage())


@contextmanager
def watch_compiles() -> Iterator[dict[str, Any]]:
    """Yields a dict filled, on exit, with the graphs, graph breaks and recompiles inside.

    The counts come from `torch._dynamo.utils.counters` (graphs, graph breaks) and from the
    `recompiles` log (what `TORCH_LOGS=recompiles` prints), caught here instead of printed.
    """
    from torch._dynamo.utils import counters

    torch._dynamo.reset()  # forget earlier compiled code: count this part's compiles only
    counters.clear()
    logger = logging.getLogger("torch._dynamo.guards.__recompiles")
    handler, propagate = _Count(), logger.propagate
    torch._logging.set_logs(recompiles=True)
    logger.addHandler(handler)
    logger.propagate = False  # count the messages without printing them
    facts: dict[str, Any] = {}
    try:
        yield facts
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        torch._logging.set_logs()  # back to the default log settings
        facts.update(
            graphs=counters["stats"]["unique_graphs"],
            graph_breaks=sum(counters["graph_break"].values()),
            recompiles=len(handler.reasons),
            recompile_reasons=[r.splitlines()[0] for r in handler.reasons],
        )


# ----------------------------------------------------------------------------- measuring


def time_runs(fn: Callable[[], Any], repeats: int, device: str) -> tuple[float, float, Any]:
    """(seconds of the first run, best seconds of `repeats` runs after it, first run's output).

    The first run of a compiled function includes tracing and code generation; the later
    runs show the steady state.
    """
    times, first_output = [], None
    for i in range(1 + repeats):
        sync(device)
        t0 = time.perf_counter()
        output = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
        first_output = output if i == 0 else first_output
    return times[0], min(times[1:]), first_output


def train_run(forward: Callable, model: GPT, initial: dict, batches: list) -> list[float]:
    """`len(batches)` training steps (forward, backward, AdamW step) from the initial weights."""
    model.load_state_dict(initial)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for x, y in batches:
        _, loss = forward(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    return torch.stack(losses).tolist()


def decode_run(step: Callable, model: GPT, first: torch.Tensor, new_tokens: int):
    """Greedy decoding of `new_tokens` tokens, one per step; returns (tokens, logits)."""
    B = first.shape[0]
    cache = KVCache.allocate(model, B, new_tokens)
    token, tokens, logits = first, [], []
    for i in range(new_tokens):
        pos = torch.full((B,), i, dtype=torch.long, device=first.device)
        out = step(model, cache, token, pos)  # (B, V)
        token = out.argmax(dim=-1, keepdim=True)  # (B, 1)
        tokens.append(token)
        logits.append(out)
    return torch.cat(tokens, dim=1), torch.stack(logits, dim=1)


def _entry(first_s: float, best_s: float, tokens: int) -> dict[str, float]:
    return {"first_run_s": first_s, "best_s": best_s, "tokens_per_s": tokens / best_s}


def measure_training(settings: CompileSettings, model: GPT, initial: dict, device: str) -> dict:
    """Eager against compiled training steps from the same weights on the same batches."""
    batches = make_batches(
        settings.steps,
        settings.batch_size,
        settings.block_size,
        model.config.vocab_size,
        settings.seed + 1,
        device,
    )
    tokens = settings.steps * settings.batch_size * settings.block_size
    # One untimed eager step first: the very first step of a process pays one-off costs
    # (lazy imports, first allocations) that are not what this lab compares.
    train_run(model, model, initial, batches[:1])
    eager = time_runs(lambda: train_run(model, model, initial, batches), settings.repeats, device)
    with watch_compiles() as compiles:
        compiled_model = compile_fn(model, settings)  # shares the parameters with model
        with compile_errors(settings.backend):
            compiled = time_runs(
                lambda: train_run(compiled_model, model, initial, batches), settings.repeats, device
            )
    diff = max(abs(a - b) for a, b in zip(eager[2], compiled[2], strict=True))
    return {
        "eager": _entry(eager[0], eager[1], tokens),
        "compiled": _entry(compiled[0], compiled[1], tokens),
        # the first run minus a warm run: what tracing and code generation cost
        "compile_s": max(compiled[0] - compiled[1], 0.0),
        "speedup": eager[1] / compiled[1],
        "losses": compiled[2],
        "max_loss_diff": diff,
        "equal": diff <= settings.tolerance,
        **compiles,
    }


def measure_decoding(settings: CompileSettings, model: GPT, device: str) -> dict:
    """Eager kv_cache.forward against the compiled decode step, greedy, same first tokens."""
    model.eval()
    g = torch.Generator().manual_seed(settings.seed + 2)
    first = torch.randint(0, 256, (settings.decode_batch, 1), generator=g).to(device)
    n, repeats = settings.new_tokens, settings.repeats
    tokens = n * settings.decode_batch

    def timed(step: Callable) -> tuple[float, float, Any]:
        return time_runs(lambda: decode_run(step, model, first, n), repeats, device)

    reference = timed(_as_is_step)  # lab 03's kv_cache.forward, eager
    step = decode_step if settings.decode == "padded" else _as_is_step
    rows = {"eager kv_cache.forward": _entry(reference[0], reference[1], tokens)}
    if settings.decode == "padded":  # the same padded step without compiling: padding's cost
        padded = timed(decode_step)
        rows["eager decode_step (padded)"] = _entry(padded[0], padded[1], tokens)
    with watch_compiles() as compiles:
        compiled_step = compile_fn(step, settings)
        with compile_errors(settings.backend):
            compiled = timed(compiled_step)
    label = "compiled decode_step" if settings.decode == "padded" else "compiled kv_cache.forward"
    rows[label] = _entry(compiled[0], compiled[1], tokens)
    ref_tokens, ref_logits = reference[2]
    out_tokens, out_logits = compiled[2]
    logit_diff = (out_logits - ref_logits).abs().max().item()
    same = bool(torch.equal(out_tokens, ref_tokens))
    return {
        "rows": rows,
        "compile_s": max(compiled[0] - compiled[1], 0.0),
        "speedup": reference[1] / compiled[1],
        "same_tokens": same,
        "max_logit_diff": logit_diff,
        "equal": same and logit_diff <= settings.tolerance,
        **compiles,
    }


def run(settings: CompileSettings) -> dict[str, Any]:
    """Training step and decode step, eager against compiled, in one process."""
    from ..device import pick_device
    from .shapes import build_gpt

    device = pick_device(settings.device)
    if device == "mps":
        raise CompileError("this lab supports cpu and cuda; set device=cpu")
    check_toolchain(settings.backend, device)
    model = build_gpt(settings, device)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        with inductor_caches(settings):
            training = measure_training(settings, model, initial, device)
            model.load_state_dict(initial)
            decoding = measure_decoding(settings, model, device)
    finally:
        torch._dynamo.reset()  # free the compiled code and its caches
    return {
        "device": device,
        "backend": settings.backend,
        "mode": settings.mode,
        "decode": settings.decode,
        "cold_compile": settings.cold_compile,
        "torch": torch.__version__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch": [settings.batch_size, settings.block_size],
        "steps": settings.steps,
        "new_tokens": settings.new_tokens,
        "decode_batch": settings.decode_batch,
        "repeats": settings.repeats,
        "tolerance": settings.tolerance,
        "training": training,
        "decoding": decoding,
    }


def _compiles(part: dict[str, Any]) -> str:
    return (
        f"{part['graphs']} graph(s), {part['graph_breaks']} graph break(s), "
        f"{part['recompiles']} recompile(s)"
    )


def _row(name: str, e: dict[str, float]) -> str:
    return f"  {name:<28} {e['first_run_s']:>11.2f} {e['best_s']:>8.3f} {e['tokens_per_s']:>10,.0f}"


def format_report(result: dict[str, Any]) -> str:
    """Compile time apart from steady-state speed, and whether the outputs match eager."""
    train, dec = result["training"], result["decoding"]
    params, batch = result["parameters"] / 1e6, result["batch"]
    mode = result["mode"] or "default"
    cache = "caches off (cold compile)" if result["cold_compile"] else "on-disk caches on"
    head = f"  {'':<28} {'first run s':>11} {'best s':>8} {'tokens/s':>10}"
    lines = [
        f"torch.compile on {result['device']}: backend {result['backend']}, mode {mode}, "
        f"{cache}, mini-GPT ({params:.2f} M parameters), torch {result['torch']}",
        f"Training: {result['steps']} steps (forward, backward, AdamW) of {batch[0]} x {batch[1]} "
        f"tokens, best of {result['repeats']} after the first run",
        head,
    ]
    lines += [_row(name, train[name]) for name in ("eager", "compiled")]
    lines += [
        f"  compile time ~{train['compile_s']:.1f} s; steady state {train['speedup']:.2f}x eager; "
        f"{_compiles(train)}",
        f"  losses match eager: {'yes' if train['equal'] else 'NO'} "
        f"(max difference {train['max_loss_diff']:.2e}, tolerance {result['tolerance']:g})",
        f"Decoding: {result['new_tokens']} new tokens x {result['decode_batch']} sequence(s), "
        f"greedy, one token a step (decode: {result['decode']})",
        head,
    ]
    lines += [_row(name, entry) for name, entry in dec["rows"].items()]
    lines += [
        f"  compile time ~{dec['compile_s']:.1f} s; steady state {dec['speedup']:.2f}x eager "
        f"kv_cache.forward; {_compiles(dec)}",
        f"  same tokens: {'yes' if dec['same_tokens'] else 'NO'}, max logit difference "
        f"{dec['max_logit_diff']:.2e}",
    ]
    return "\n".join(lines)
