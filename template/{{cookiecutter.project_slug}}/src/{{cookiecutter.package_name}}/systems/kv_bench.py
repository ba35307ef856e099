"""Lab 03's measurement: decoding with and without the KV-cache, at several model sizes.

Same weights, same prompt, greedy decoding: both ways must give the same tokens, so the only
difference is the time. The speed-up grows with the model: a tiny model spends most of a decode
step on per-call overhead (Python, dispatch, small kernels), which the cache does not remove; a
wider, deeper model spends it on matrix products over the whole sequence, which the cache does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import require
from ..models.gpt import GPT, GPTConfig
from . import kv_cache
from .timing import best_time

SIZE = re.compile(r"^(\d+)x(\d+)$")  # "6x512": 6 layers, 512 wide


@dataclass
class KVCacheSettings:
    sizes: list[str] = field(default_factory=lambda: ["2x128", "4x256", "6x512"])  # layers x width
    prompt_tokens: int = 16  # prompt length
    new_tokens: int = 256  # tokens decoded
    batch_size: int = 1  # prompts decoded together
    repeats: int = 2  # timings per way; the best one counts
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    plot: str = "runs/kv-cache/speedup.png"  # speed-up against model size
    seed: int = 0  # weights and prompt

    def check(self) -> None:
        require(bool(self.sizes), "sizes must list at least one model size such as 6x512")
        for size in self.sizes:
            match = SIZE.match(size)
            require(
                match is not None and int(match[1]) >= 1 and int(match[2]) % 64 == 0,
                f"sizes: {size!r} is not LAYERSxWIDTH with a width divisible by 64 (e.g. 6x512)",
            )
        require(self.prompt_tokens >= 1, f"prompt_tokens must be >= 1, got {self.prompt_tokens}")
        require(self.new_tokens >= 1, f"new_tokens must be >= 1, got {self.new_tokens}")
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.repeats >= 1, f"repeats must be >= 1, got {self.repeats}")
        require(self.plot.endswith(".png"), f"plot must be a .png file, got {self.plot!r}")


def build_model(size: str, block_size: int, device: str, seed: int = 0) -> GPT:
    """A randomly initialised GPT of the given LAYERSxWIDTH (heads of 64 dimensions)."""
    n_layer, n_embd = (int(v) for v in SIZE.match(size).groups())
    torch.manual_seed(seed)
    config = GPTConfig(
        n_layer=n_layer,
        n_head=n_embd // 64,
        n_embd=n_embd,
        block_size=block_size,
        vocab_size=256,
    )
    return GPT(config).to(device).eval()


def measure(model: GPT, prompt: torch.Tensor, new_tokens: int, repeats: int) -> dict[str, Any]:
    """Greedy decoding of new_tokens with GPT.generate and with the cache: time and tokens."""
    device = str(prompt.device)
    kv_cache.generate(model, prompt, 2, temperature=0)  # warm-up: first calls pay one-off costs
    plain_s, plain = best_time(
        lambda: model.generate(prompt, new_tokens, temperature=0), repeats, device
    )
    cached_s, cached = best_time(
        lambda: kv_cache.generate(model, prompt, new_tokens, temperature=0), repeats, device
    )
    tokens = prompt.shape[0] * new_tokens
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "no_cache_tokens_per_s": tokens / plain_s,
        "cache_tokens_per_s": tokens / cached_s,
        "speedup": plain_s / cached_s,
        "same_tokens": bool(torch.equal(plain, cached)),
    }


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    from ..plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=100)
    params = [r["parameters"] / 1e6 for r in rows]
    ax.plot(params, [r["speedup"] for r in rows], marker="o")
    for r, x in zip(rows, params, strict=True):
        ax.annotate(r["size"], (x, r["speedup"]), textcoords="offset points", xytext=(4, -12))
    ax.set_xscale("log")
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel("KV-cache speed-up (x)")
    ax.set_title("decoding: cache vs no cache")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def run(settings: KVCacheSettings) -> dict[str, Any]:
    from ..device import pick_device

    device = pick_device(settings.device)
    block_size = settings.prompt_tokens + settings.new_tokens
    g = torch.Generator().manual_seed(settings.seed)
    prompt = torch.randint(0, 256, (settings.batch_size, settings.prompt_tokens), generator=g)
    rows = []
    for size in settings.sizes:
        model = build_model(size, block_size, device, settings.seed)
        figures = measure(model, prompt.to(device), settings.new_tokens, settings.repeats)
        rows.append({"size": size, **figures})
    return {
        "device": device,
        "prompt_tokens": settings.prompt_tokens,
        "new_tokens": settings.new_tokens,
        "batch_size": settings.batch_size,
        "rows": rows,
        "plot": str(plot(rows, Path(settings.plot))),
    }


def format_report(result: dict[str, Any]) -> str:
    lines = [
        f"Greedy decoding of {result['new_tokens']} tokens after a {result['prompt_tokens']}-token "
        f"prompt, batch {result['batch_size']}, on {result['device']} (best of the repeats)",
        f"  {'size':<8} {'params':>8} {'no cache tok/s':>15} {'cache tok/s':>12} "
        f"{'speed-up':>9} {'same tokens':>12}",
    ]
    for row in result["rows"]:
        lines.append(
            f"  {row['size']:<8} {row['parameters'] / 1e6:>7.2f}M "
            f"{row['no_cache_tokens_per_s']:>15.0f} {row['cache_tokens_per_s']:>12.0f} "
            f"{row['speedup']:>8.1f}x {'yes' if row['same_tokens'] else 'NO':>12}"
        )
    lines.append(f"Plot: {result['plot']}")
    return "\n".join(lines)
