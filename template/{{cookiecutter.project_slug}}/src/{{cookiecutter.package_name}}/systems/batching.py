"""Lab 04: batching. One request at a time, static batches, continuous batching (engine.py).

A decode step of a small model is dominated by reading the weights and by per-call overhead, not
by arithmetic: a batch of 8 rows costs little more than one row. Batching turns that spare
capacity into throughput. Two ways, compared here on the same synthetic trace of requests:

- **static**: take up to `batch_size` waiting requests, pad their prompts on the left so they end
  at the same position, decode until the longest is done, answer them all, take the next batch.
  Short requests wait for long ones; new requests wait for the whole batch.
- **continuous**: the engine refills the batch between decode steps (engine.py).

Throughput is the generated tokens per second of wall time; latency is the time from a
request's arrival to its last token. The prompts' tokens are random: the cost of a step does not
depend on what the text says.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import require
from ..models.gpt import GPT
from .engine import Engine
from .kv_cache import KVCache, forward, sample
from .shapes import build_gpt


@dataclass
class BatchingSettings:
    requests: int = 64  # requests in the trace
    rate: float = 100.0  # arrivals per second (Poisson); 0 = every request arrives at the start
    prompt_tokens: list[int] = field(default_factory=lambda: [4, 32])  # prompt length range
    new_tokens: list[int] = field(default_factory=lambda: [8, 96])  # tokens asked, range
    batch_sizes: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])  # to compare
    n_layer: int = 4  # the model's shape, as in configs/tiny.yaml
    n_head: int = 4  # attention heads per layer
    n_embd: int = 128  # width
    block_size: int = 128  # context: the longest prompt plus the most new tokens must fit
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    plot: str = "runs/batching/batching.png"  # throughput and latency against batch size
    seed: int = 0  # weights and the trace

    def check(self) -> None:
        require(self.requests >= 1, f"requests must be >= 1, got {self.requests}")
        require(self.rate >= 0, f"rate must be >= 0, got {self.rate}")
        for name in ("prompt_tokens", "new_tokens"):
            low_high = getattr(self, name)
            require(
                len(low_high) == 2 and 1 <= low_high[0] <= low_high[1],
                f"{name} must be [low, high] with 1 <= low <= high, got {low_high}",
            )
        require(
            self.prompt_tokens[1] + self.new_tokens[1] <= self.block_size,
            f"the longest prompt + the most new tokens ({self.prompt_tokens[1]} + "
            f"{self.new_tokens[1]}) must fit in block_size ({self.block_size})",
        )
        require(
            bool(self.batch_sizes) and min(self.batch_sizes) >= 1,
            f"batch_sizes must be a list of sizes >= 1, got {self.batch_sizes}",
        )
        require(
            self.n_embd % self.n_head == 0,
            f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})",
        )
        require(self.plot.endswith(".png"), f"plot must be a .png file, got {self.plot!r}")


@torch.no_grad()
def generate_padded(
    model: GPT, prompts: list[list[int]], max_new_tokens: int, temperature: float = 0.0
) -> list[list[int]]:
    """Static batching: decode every prompt together, short prompts padded on the left.

    Returns the new tokens of each prompt (max_new_tokens each). With temperature 0 they are
    the tokens each prompt gets on its own: the padding is masked out of the attention, and the
    positions are counted from each prompt's first real token.
    """
    device = next(model.parameters()).device
    longest = max(len(p) for p in prompts)
    pad = torch.tensor([longest - len(p) for p in prompts], device=device)  # (B,)
    rows = [[0] * (longest - len(p)) + p for p in prompts]  # token 0 fills the padding
    idx = torch.tensor(rows, device=device)  # (B, longest)
    cache = KVCache.allocate(model, len(prompts), longest + max_new_tokens)
    start = torch.zeros(len(prompts), dtype=torch.long, device=device)
    logits = forward(model, cache, idx, start, pad=pad)
    out = []
    for step in range(max_new_tokens):
        token = sample(logits, temperature)  # (B, 1)
        out.append(token)
        if step + 1 < max_new_tokens:
            logits = forward(model, cache, token, start + longest + step, pad=pad)
    return torch.cat(out, dim=1).tolist()


@dataclass
class Arrival:
    at: float  # seconds after the start of the trace
    prompt: list[int]
    new_tokens: int


def make_trace(settings: BatchingSettings, vocab_size: int) -> list[Arrival]:
    """Requests with random prompt and answer lengths, arriving at random times (seeded)."""
    g = torch.Generator().manual_seed(settings.seed)

    def uniform(low_high: list[int]) -> int:
        return int(torch.randint(low_high[0], low_high[1] + 1, (1,), generator=g))

    trace, at = [], 0.0
    for _ in range(settings.requests):
        if settings.rate > 0:  # exponential gaps between arrivals: a Poisson process
            at += float(torch.empty(1).exponential_(settings.rate, generator=g))
        prompt = torch.randint(1, vocab_size, (uniform(settings.prompt_tokens),), generator=g)
        trace.append(Arrival(at, prompt.tolist(), uniform(settings.new_tokens)))
    return trace


def _figures(trace: list[Arrival], finished: list[float], started: float) -> dict[str, float]:
    latency = torch.tensor([end - (started + a.at) for a, end in zip(trace, finished, strict=True)])
    wall = max(finished) - started
    tokens = sum(a.new_tokens for a in trace)
    return {
        "tokens_per_s": tokens / wall,
        "p50_latency_s": float(latency.quantile(0.5)),
        "p95_latency_s": float(latency.quantile(0.95)),
        "wall_s": wall,
    }


def _wait_for(at: float) -> None:
    delay = at - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def run_static(model: GPT, trace: list[Arrival], batch_size: int) -> dict[str, float]:
    """Serve the trace in static batches (batch_size 1 = one request at a time)."""
    started = time.perf_counter()
    finished = [0.0] * len(trace)
    i = 0
    while i < len(trace):
        _wait_for(started + trace[i].at)  # nothing to do before the next arrival
        now = time.perf_counter() - started
        group = [j for j in range(i, min(i + batch_size, len(trace))) if trace[j].at <= now]
        most = max(trace[j].new_tokens for j in group)
        generate_padded(model, [trace[j].prompt for j in group], most)
        end = time.perf_counter()  # the batch answers when its longest request is done
        for j in group:
            finished[j] = end
        i += len(group)
    return _figures(trace, finished, started)


def run_continuous(model: GPT, trace: list[Arrival], batch_size: int) -> dict[str, float]:
    """Serve the trace with the continuous-batching engine, in this thread."""
    engine = Engine(model, max_batch=batch_size)
    started = time.perf_counter()
    requests = []
    while len(requests) < len(trace) or engine.busy():
        now = time.perf_counter() - started
        while len(requests) < len(trace) and trace[len(requests)].at <= now:
            arrival = trace[len(requests)]
            requests.append(engine.submit(arrival.prompt, arrival.new_tokens, temperature=0))
        if engine.busy():
            engine.step()
        elif len(requests) < len(trace):
            _wait_for(started + trace[len(requests)].at)
    return _figures(trace, [r.finished_at for r in requests], started)


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    from ..plots import pyplot, save_figure

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    for way in ("static", "continuous"):
        sizes = [r["batch_size"] for r in rows if r["scheduler"] == way]
        mine = [r for r in rows if r["scheduler"] == way]
        left.plot(sizes, [r["tokens_per_s"] for r in mine], marker="o", label=way)
        right.plot(sizes, [r["p95_latency_s"] for r in mine], marker="o", label=f"{way} p95")
        right.plot(sizes, [r["p50_latency_s"] for r in mine], ls="--", marker=".", label="p50")
    for ax, label in ((left, "generated tokens/s"), (right, "latency (s)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    left.set_title("throughput")
    right.set_title("latency: arrival to last token")
    return save_figure(fig, path)


def run(settings: BatchingSettings) -> dict[str, Any]:
    from ..device import pick_device

    device = pick_device(settings.device)
    model = build_gpt(settings, device).eval()
    trace = make_trace(settings, model.config.vocab_size)
    run_static(model, trace[:2], 2)  # warm-up: the first calls pay one-off costs
    rows = []
    for size in sorted(set(settings.batch_sizes)):
        for way, serve in (("static", run_static), ("continuous", run_continuous)):
            rows.append({"scheduler": way, "batch_size": size, **serve(model, trace, size)})
    one_by_one = next(r for r in rows if r["batch_size"] == 1)["tokens_per_s"]
    best = max(rows, key=lambda r: r["tokens_per_s"])
    return {
        "device": device,
        "parameters": sum(p.numel() for p in model.parameters()),
        "requests": len(trace),
        "generated_tokens": sum(a.new_tokens for a in trace),
        "rate": settings.rate,
        "rows": rows,
        "best": {**best, "speedup_over_one_by_one": best["tokens_per_s"] / one_by_one},
        "plot": str(plot(rows, Path(settings.plot))),
    }


def format_report(result: dict[str, Any]) -> str:
    arrivals = "all at once" if not result["rate"] else f"{result['rate']:g} per second"
    lines = [
        f"{result['requests']} requests ({result['generated_tokens']} new tokens, arriving "
        f"{arrivals}), mini-GPT of {result['parameters'] / 1e6:.2f} M parameters on "
        f"{result['device']}",
        f"  {'scheduler':<11} {'batch':>5} {'tokens/s':>9} {'p50 s':>7} {'p95 s':>7}",
    ]
    for row in result["rows"]:
        lines.append(
            f"  {row['scheduler']:<11} {row['batch_size']:>5} {row['tokens_per_s']:>9.0f} "
            f"{row['p50_latency_s']:>7.2f} {row['p95_latency_s']:>7.2f}"
        )
    best = result["best"]
    lines += [
        f"Best: {best['scheduler']} batching at {best['batch_size']}, "
        f"{best['speedup_over_one_by_one']:.1f}x the tokens/s of one request at a time",
        f"Plot: {result['plot']}",
    ]
    return "\n".join(lines)
