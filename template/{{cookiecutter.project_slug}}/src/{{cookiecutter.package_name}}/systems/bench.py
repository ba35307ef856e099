"""`bench`: every technique of the systems track against its baseline, in one process.

Each figure is a ratio measured here and now (best of a few repeats), never a number from
another machine: other programs on the machine slow both sides alike. The machine's own limit
comes first: the peak rate of a large matrix product (FLOP/s). The training step's and
decoding's utilisation against it (MFU, model FLOPs utilisation) say how far from that limit
each one runs; PaLM's paper defines MFU, nanoGPT's `estimate_mfu` computes it the same way.

The labs run each part on its own, with more settings (`systems kv-cache`, `systems quantize`...);
`bench` runs them at one CPU-sized shape and gathers the headline figures in one JSON object.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import require
from ..errors import UserError
from ..models.gpt import GPT
from .kv_bench import build_model
from .timing import best_time

PARTS = ("gemm", "train", "kv_cache", "int8", "amp", "compile", "batching", "serving")


@dataclass
class BenchSettings:
    parts: list[str] = field(default_factory=lambda: list(PARTS))  # what to measure
    size: str = "6x512"  # model for decoding and training, LAYERSxWIDTH: matrix work dominates
    prompt_tokens: int = 16  # prompt before decoding
    new_tokens: int = 256  # tokens decoded, with and without the KV-cache
    train_batch: int = 4  # sequences per training step
    train_tokens: int = 128  # tokens per training sequence
    gemm_size: int = 2048  # n of the n x n matrix product that measures the peak (4096+ on GPU)
    repeats: int = 3  # timings per measurement; the best one counts
    quick: bool = False  # tiny shapes for every part: checks the wiring, not the machine
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    out: str = "runs/bench"  # where the plots (and report.md with --report) go
    seed: int = 0  # weights, prompts and batches

    def check(self) -> None:
        unknown = sorted(set(self.parts) - set(PARTS))
        require(not unknown, f"parts: unknown {unknown}; choose from {', '.join(PARTS)}")
        require(bool(self.parts), f"parts must name at least one of {', '.join(PARTS)}")
        require(self.new_tokens >= 1 and self.prompt_tokens >= 1, "tokens must be >= 1")
        require(self.train_batch >= 1 and self.train_tokens >= 2, "train_batch, train_tokens")
        require(self.gemm_size >= 64, f"gemm_size must be >= 64, got {self.gemm_size}")
        require(self.repeats >= 1, f"repeats must be >= 1, got {self.repeats}")


def peak_flops(n: int, repeats: int, device: str, dtype: torch.dtype) -> float:
    """FLOP/s of an n x n matrix product (2 n^3 operations): about the most this device does."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds, _ = best_time(lambda: a @ b, repeats + 1, device)
    return 2 * n**3 / seconds


def flops_per_token(model: GPT, context: int, training: bool) -> float:
    """Model FLOPs for one token: 2 per weight forward (6 with the backward), plus attention.

    Attention's matrix products score the token against `context` keys and mix as many values:
    4 * n_layer * n_embd * context forward, three times that with the backward.
    """
    config = model.config
    weights = model.num_params()  # the embedding table is a lookup, but it is also lm_head
    attention = 4 * config.n_layer * config.n_embd * context
    return 3 * (2 * weights + attention) if training else 2 * weights + attention


def measure_gemm(settings: BenchSettings, device: str) -> dict[str, Any]:
    n = 256 if settings.quick else settings.gemm_size
    result = {"n": n, "fp32_flops": peak_flops(n, settings.repeats, device, torch.float32)}
    if device.startswith("cuda"):  # GPUs have a much higher peak in bf16 (tensor cores)
        result["bf16_flops"] = peak_flops(n, settings.repeats, device, torch.bfloat16)
    return result


def measure_train(settings: BenchSettings, device: str, peak: float | None) -> dict[str, Any]:
    """Tokens/s of a plain fp32 training step (forward, backward, AdamW) and its MFU."""
    B, T = (2, 16) if settings.quick else (settings.train_batch, settings.train_tokens)
    model = build_model(settings.size, T, device, settings.seed).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(settings.seed)
    x, y = torch.randint(0, 256, (2, B, T), generator=g).to(device)

    def step() -> None:
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up: the optimizer allocates its state on the first step
    seconds, _ = best_time(step, settings.repeats, device)
    tokens_per_s = B * T / seconds
    flops = flops_per_token(model, T, training=True) * tokens_per_s
    return {
        "batch": [B, T],
        "parameters": model.num_params(),
        "tokens_per_s": tokens_per_s,
        "flops": flops,
        "mfu": flops / peak if peak else None,
    }


def measure_kv_cache(settings: BenchSettings, device: str, peak: float | None) -> dict[str, Any]:
    """Decoding with and without the cache (lab 03), and the cached decode's MFU."""
    from .kv_bench import measure

    prompt_len, new = (4, 16) if settings.quick else (settings.prompt_tokens, settings.new_tokens)
    model = build_model(settings.size, prompt_len + new, device, settings.seed)
    g = torch.Generator().manual_seed(settings.seed)
    prompt = torch.randint(0, 256, (1, prompt_len), generator=g).to(device)
    figures = measure(model, prompt, new, min(settings.repeats, 2))  # no cache: slow, 2 at most
    flops = flops_per_token(model, prompt_len + new // 2, training=False)
    figures["flops"] = flops * figures["cache_tokens_per_s"]
    figures["mfu"] = figures["flops"] / peak if peak else None
    return {"size": settings.size, "prompt_tokens": prompt_len, "new_tokens": new, **figures}


def measure_int8(settings: BenchSettings) -> dict[str, Any]:
    from .quantize import QuantizeSettings, run

    quick = {"train_steps": 20, "n_layer": 1, "n_embd": 64, "n_head": 1, "block_size": 40}
    quick |= {"batch_size": 2, "seq_len": 16, "new_tokens": 8, "repeats": 1}
    quick |= {"train_n_layer": 1, "train_n_head": 2, "train_n_embd": 32, "train_len": 32}
    shape = dict(zip(("n_layer", "n_embd"), map(int, settings.size.split("x")), strict=True))
    shape["n_head"] = shape["n_embd"] // 64
    # 32 x 64 tokens: int8 changes the Linear layers only, and at 64 tokens attention (which
    # stays fp32) is a small share of the forward; at 8 x 256 it is about a third of it.
    shape |= {"batch_size": 32, "seq_len": 64, "repeats": max(settings.repeats, 5)}
    return run(QuantizeSettings(**(quick if settings.quick else shape)))


def measure_amp(settings: BenchSettings, device: str) -> dict[str, Any]:
    from .precision import AmpSettings, run

    quick = {"steps": 2, "repeats": 1, "n_layer": 1, "n_embd": 32, "n_head": 2, "block_size": 16}
    return run(AmpSettings(device=device, **(quick if settings.quick else {})))


def measure_compile(settings: BenchSettings, device: str) -> dict[str, Any]:
    from .compiling import CompileSettings, run

    quick = {"backend": "eager", "steps": 2, "new_tokens": 4, "repeats": 1, "n_layer": 1}
    quick |= {"n_embd": 32, "n_head": 2, "block_size": 16, "batch_size": 2}
    return run(CompileSettings(device=device, **(quick if settings.quick else {})))


def measure_batching(settings: BenchSettings, device: str) -> dict[str, Any]:
    from .batching import BatchingSettings, run

    small = {"requests": 6, "new_tokens": [2, 8], "batch_sizes": [1, 4], "n_embd": 32, "rate": 0}
    return run(
        BatchingSettings(
            device=device,
            plot=str(Path(settings.out) / "batching.png"),
            **(small if settings.quick else {"batch_sizes": [1, 4, 16]}),
        )
    )


def measure_serving(settings: BenchSettings, device: str) -> dict[str, Any]:
    """The OpenAI-compatible server (lab 07) on a free port, under `concurrency` clients."""
    from ..models.gpt import GPTConfig
    from ..tasks.text import Codec
    from .engine import Engine
    from .loadtest import load_test
    from .serve import background_server, create_app

    codec = Codec.from_text("".join(chr(c) for c in range(32, 127)) + "\n")
    torch.manual_seed(settings.seed)
    n_embd = 32 if settings.quick else 128  # configs/tiny.yaml's shape: what `serve` serves
    config = GPTConfig(n_layer=4, n_head=4, n_embd=n_embd, block_size=128)
    config.vocab_size = codec.vocab_size
    engine = Engine(GPT(config).to(device).eval(), max_batch=8).start()
    concurrency, requests = (4, 8) if settings.quick else (32, 128)
    try:
        with background_server(create_app(engine, codec, "bench", max_batch=8)) as url:
            result = asyncio.run(load_test(url, concurrency, requests, max_tokens=32))
    finally:
        engine.stop()
    if result["errors"]:  # a load test never hides errors
        raise UserError(f"{result['errors']} requests failed: {result['first_errors']}")
    return result


def run(settings: BenchSettings) -> dict[str, Any]:
    """Run the chosen parts; a part that cannot run here says why instead of stopping the rest."""
    from ..device import pick_device

    device = pick_device(settings.device)
    result: dict[str, Any] = {"device": device, "torch": torch.__version__, "quick": settings.quick}
    result["threads"] = torch.get_num_threads()
    peak = None

    def part(name: str, measure) -> None:
        t0 = time.perf_counter()
        try:
            result[name] = measure()
        except UserError as exc:  # e.g. no int8 backend, no C++ compiler for compile
            result[name] = {"skipped": str(exc)}
        result[name]["seconds"] = time.perf_counter() - t0

    if "gemm" in settings.parts:
        part("gemm", lambda: measure_gemm(settings, device))
        peak = result["gemm"].get("fp32_flops")
    steps = {
        "train": lambda: measure_train(settings, device, peak),
        "kv_cache": lambda: measure_kv_cache(settings, device, peak),
        "int8": lambda: measure_int8(settings),
        "amp": lambda: measure_amp(settings, device),
        "compile": lambda: measure_compile(settings, device),
        "batching": lambda: measure_batching(settings, device),
        "serving": lambda: measure_serving(settings, device),
    }
    for name, measure in steps.items():
        if name in settings.parts:
            part(name, measure)
    result.update(headline(result))
    speedups = speedup_bars(result)
    if speedups:
        result["plot"] = str(plot_speedups(speedups, Path(settings.out) / "speedups.png"))
    return result


def speedup_bars(result: dict[str, Any]) -> dict[str, float]:
    """{technique: its speed-up over its baseline} for the parts that ran (1.0 = no gain)."""
    bars = {
        "KV-cache decode": result.get("kv_cache_speedup"),
        "int8 forward": result.get("int8_speedup"),
        "int8 decode": result.get("int8_decode_speedup"),
        "batching": result.get("batching_speedup"),
    }
    for row in result.get("amp", {}).get("rows", []):
        if row["precision"] != "float32" and not row.get("skipped"):
            bars[f"{row['precision']} training"] = row["train_speedup"]
            bars[f"{row['precision']} inference"] = row["infer_speedup"]
    compiled = result.get("compile", {})
    if "training" in compiled:
        bars["compile training"] = compiled["training"]["speedup"]
        bars["compile decode"] = compiled["decoding"]["speedup"]
    return {name: value for name, value in bars.items() if value is not None}


def plot_speedups(bars: dict[str, float], path: Path) -> Path:
    """One bar per technique, against the line at 1x (its baseline)."""
    from ..plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(bars) + 1.2), dpi=100)
    names = list(bars)[::-1]  # the first at the top
    ax.barh(names, [bars[n] for n in names], color="tab:blue")
    ax.axvline(1.0, color="black", lw=1)
    ax.set_xlim(0, max(bars.values()) * 1.15)  # room for the labels
    for i, name in enumerate(names):
        ax.text(bars[name], i, f" {bars[name]:.2f}x", va="center", fontsize=8)
    ax.set_xlabel("speed-up over the baseline (x)")
    ax.set_title("measured in one run")
    return save_figure(fig, path)


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The flat figures of the contract (`bench --json`), picked from the parts that ran."""
    out: dict[str, Any] = {}
    kv = result.get("kv_cache", {})
    if "speedup" in kv:
        out["tokens_per_s"] = kv["cache_tokens_per_s"]  # decoding with the cache, batch 1
        out["kv_cache_speedup"] = kv["speedup"]
        out["decode_mfu"] = kv["mfu"]
    if "tokens_per_s" in result.get("train", {}):
        out["train_tokens_per_s"] = result["train"]["tokens_per_s"]
        out["train_mfu"] = result["train"]["mfu"]
    if "fp32_flops" in result.get("gemm", {}):
        out["peak_flops"] = result["gemm"]["fp32_flops"]
    int8 = result.get("int8", {})
    if "forward" in int8:
        out["int8_speedup"] = int8["forward"]["speedup"]
        out["int8_quality_delta"] = int8["quality"]["quality_delta"]
        out["int8_decode_speedup"] = int8["decode"]["speedup"]
    serving = result.get("serving", {})
    if "requests_per_s" in serving:
        out["serving_requests_per_s"] = serving["requests_per_s"]
        out["serving_p95_s"] = serving["latency_p95_s"]
    batching = result.get("batching", {})
    if "best" in batching:
        out["batching_speedup"] = batching["best"]["speedup_over_one_by_one"]
    return out


def _fmt(value: Any, spec: str = ".2f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def summary_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(technique, figure, compared with what) rows for the printed table and the report."""
    rows = []
    if "peak_flops" in result:
        n = result["gemm"]["n"]
        rows.append(("peak matmul", f"{result['peak_flops'] / 1e9:,.0f} GFLOP/s", f"fp32, {n}x{n}"))
    if "train_tokens_per_s" in result:
        train = result["train"]
        mfu = _fmt(result["train_mfu"] and 100 * result["train_mfu"], ".1f", " % MFU")
        figure = f"{result['train_tokens_per_s']:,.0f} tokens/s, {mfu}"
        batch = f"fp32, batch {train['batch'][0]} x {train['batch'][1]}"
        rows.append(("training step", figure, batch))
    if "kv_cache_speedup" in result:
        kv = result["kv_cache"]
        mfu = _fmt(result["decode_mfu"] and 100 * result["decode_mfu"], ".1f", " % MFU")
        figure = f"{result['kv_cache_speedup']:.1f}x, {result['tokens_per_s']:,.0f} tokens/s, {mfu}"
        against = f"no cache, {kv['size']}, {kv['new_tokens']} new tokens"
        rows.append(("KV-cache decode", figure, against))
    if "int8_speedup" in result:
        rows.append(
            (
                "int8 weights",
                f"{result['int8_speedup']:.2f}x forward, "
                f"{result['int8_decode_speedup']:.2f}x decode",
                f"fp32; loss change {100 * result['int8_quality_delta']:+.2f} %",
            )
        )
    for row in result.get("amp", {}).get("rows", []):
        if row["precision"] != "float32" and not row.get("skipped"):
            rows.append(
                (
                    row["label"],
                    f"{row['train_speedup']:.2f}x training, {row['infer_speedup']:.2f}x inference",
                    f"fp32; loss change {row['loss_diff']:+.1e}",
                )
            )
    compiled = result.get("compile", {})
    if "training" in compiled:
        train, decode = compiled["training"], compiled["decoding"]
        figure = f"{train['speedup']:.2f}x training, {decode['speedup']:.2f}x decode"
        compile_s = f"compiling took {train['compile_s']:.1f} s + {decode['compile_s']:.1f} s"
        rows.append(("torch.compile", figure, f"eager ({compiled['backend']}; {compile_s})"))
    if "batching_speedup" in result:
        best = result["batching"]["best"]
        rows.append(
            (
                "continuous batching" if best["scheduler"] == "continuous" else "static batching",
                f"{result['batching_speedup']:.1f}x tokens/s",
                f"one request at a time; best at batch {best['batch_size']}",
            )
        )
    if "serving_requests_per_s" in result:
        s = result["serving"]
        rows.append(
            (
                "OpenAI-compatible server",
                f"{s['requests_per_s']:.1f} requests/s, p95 {s['latency_p95_s']:.2f} s",
                f"{s['concurrency']} concurrent clients, {s['errors']} errors",
            )
        )
    for name in PARTS:
        if result.get(name, {}).get("skipped"):
            rows.append((name, "skipped", result[name]["skipped"]))
    return rows


def format_report(result: dict[str, Any]) -> str:
    lines = [f"bench on {result['device']} (torch {result['torch']}, {result['threads']} threads)"]
    rows = summary_rows(result)
    width = max((len(r[0]) for r in rows), default=10)
    wide = max((len(r[1]) for r in rows), default=10)
    lines += [f"  {name:<{width}}  {figure:<{wide}}  {against}" for name, figure, against in rows]
    return "\n".join(lines)


def write_report(result: dict[str, Any], out_dir: str | Path) -> Path:
    """out_dir/report.md: the summary table, then every part's figures, and the plots."""
    import json

    from ..files import atomic_write_text

    out = Path(out_dir)
    lines = [
        "# Systems benchmark",
        "",
        f"`bench` on {result['device']}, torch {result['torch']}, {result['threads']} threads. "
        "Every ratio was measured in this one process (best of the repeats).",
        "",
        "| technique | figure | compared with |",
        "|---|---|---|",
        *(f"| {name} | {figure} | {against} |" for name, figure, against in summary_rows(result)),
    ]
    for title, plot in (
        ("Speed-ups", result.get("plot", "")),
        ("Batching", result.get("batching", {}).get("plot", "")),
    ):
        if plot and Path(plot).is_file():
            link = Path(os.path.relpath(plot, out)).as_posix()  # the report moves with its folder
            lines += ["", f"## {title}", "", f"![{title.lower()}]({link})"]
    lines += ["", "## Every figure", "", "```json", json.dumps(result, indent=2), "```", ""]
    report = out / "report.md"
    atomic_write_text(report, "\n".join(lines))
    return report
