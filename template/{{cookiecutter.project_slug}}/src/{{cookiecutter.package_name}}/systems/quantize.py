"""Lab 05, part 1: int8 weights. The same model, a quarter of the bytes, faster on a CPU.

A Linear layer stores its weights as 32-bit floats. Dynamic int8 quantization stores them as
8-bit integers plus one scale (a float) per tensor or per output row: weight ~= scale * int8.
At run time each input is quantized too ("dynamic": its scale is measured on the fly), the
matrix product runs in integer arithmetic, and the result is scaled back to floats. Two things
get cheaper: memory (4x fewer weight bytes to store and to read) and arithmetic (int8 kernels
do more multiply-adds per instruction). Both only pay off when the Linear layers are where the
time goes: at 6 layers x 512 wide they are; at 4 x 128 the per-call overhead dominates and int8
can even be slower (benchmark at a size where matrix work dominates).

Only the Linear layers of the transformer blocks are quantized. The token embedding and the
output head share one matrix (weight tying, models/gpt.py); quantizing the head would untie
them and store the matrix twice, so it stays in float32, as many int8 schemes keep it.
Layer norms, softmax and attention's own products stay in float32 too.

Two backends, found at run time (torch changes here from version to version):
- `torch.ao`: `torch.ao.quantization.quantize_dynamic`, in torch itself; deprecated in recent
  torch (it warns on every call) but still the fastest CPU path measured here. Its kernels come
  from an *engine*: fbgemm, oneDNN (which uses the AMX int8 unit of recent Intel CPUs), or
  QNNPACK (Arm); which is fastest depends on the CPU;
- `torchao`: the `torchao` package's `quantize_` with an int8-activation, int8-weight config,
  the successor; not installed by default (`uv add torchao`).
`backend: auto` times every backend (and engine) that works and keeps the fastest.

Speed says nothing without quality: the report gives the held-out loss of both models on the
same text (`quality_delta` = relative change) and how often their greedy next-token choices
agree. Quality on random weights would be meaningless (their predictions are flat), so the
model is a trained one: a checkpoint of a text run, or one trained here for a few steps.

This module also holds the small helpers that distill.py shares: the text, a short training
loop, the held-out loss and the timer.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from ..config import require
from ..errors import UserError
from .timing import best_times

BACKENDS = ("torch.ao", "torchao")
ENGINES = ("x86", "fbgemm", "onednn", "qnnpack")  # torch.ao's int8 kernel libraries
VAL_FRACTION = 0.1  # the last 10% of the text is held out, as configs/tiny.yaml does
INSTALL_TORCHAO = "uv add torchao (or pip install torchao)"


@dataclass
class QuantizeSettings:
    backend: str = "auto"  # auto (time every working backend, keep the fastest), torch.ao, torchao
    engine: str = "auto"  # torch.ao kernels: auto (default, onednn), x86, fbgemm, onednn, qnnpack
    checkpoint: str | None = None  # a text run folder or .pt: time and judge it; empty: see below
    data: str = "docs"  # text to train on and to measure the loss on (its last 10% is held out)
    n_layer: int = 6  # the timed model (no checkpoint): 6 x 512, where matrix work dominates
    n_head: int = 8  # its attention heads (n_embd must be divisible by it)
    n_embd: int = 512  # its width
    block_size: int = 272  # its context: prompt_tokens + new_tokens must fit in it
    train_n_layer: int = 4  # the model trained here to judge quality (no checkpoint): tiny.yaml's
    train_n_head: int = 4  # its attention heads
    train_n_embd: int = 128  # its width
    train_len: int = 64  # its context: tokens per training sequence and per held-out window
    train_steps: int = 300  # its optimizer steps
    train_batch: int = 12  # sequences per training step
    lr: float = 3e-3  # AdamW peak learning rate (short warm-up, then cosine decay)
    batch_size: int = 8  # sequences in the timed batch forward
    seq_len: int = 256  # tokens per sequence in the timed batch forward
    prompt_tokens: int = 16  # prompt length (held-out text) for the timed decode
    new_tokens: int = 128  # tokens decoded greedily with the KV-cache, fp32 and int8
    repeats: int = 3  # timed repeats after one warm-up; the best one counts
    seed: int = 0  # weights, training batches

    CHOICES: ClassVar = {"backend": ("auto", *BACKENDS), "engine": ("auto", *ENGINES)}

    def check(self) -> None:
        for name in ("n", "train_n"):
            embd, head = getattr(self, f"{name}_embd"), getattr(self, f"{name}_head")
            require(
                embd % head == 0,
                f"{name}_embd ({embd}) must be divisible by {name}_head ({head})",
            )
        require(self.train_steps >= 1, f"train_steps must be >= 1, got {self.train_steps}")
        require(self.train_batch >= 1, f"train_batch must be >= 1, got {self.train_batch}")
        require(self.train_len >= 2, f"train_len must be >= 2, got {self.train_len}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.repeats >= 1, f"repeats must be >= 1, got {self.repeats}")
        require(
            self.prompt_tokens >= 1 and self.new_tokens >= 1,
            "prompt_tokens and new_tokens must be >= 1",
        )
        require(
            self.prompt_tokens < self.train_len,
            f"prompt_tokens ({self.prompt_tokens}) must be < train_len ({self.train_len})",
        )
        require(
            1 <= self.seq_len <= self.block_size,
            f"seq_len ({self.seq_len}) must be 1 to block_size ({self.block_size})",
        )
        require(
            self.prompt_tokens + self.new_tokens <= self.block_size,
            f"prompt_tokens + new_tokens = {self.prompt_tokens + self.new_tokens} must fit in "
            f"block_size ({self.block_size}): raise block_size or lower new_tokens",
        )


# ----------------------------------------------------------------------------- shared helpers


@dataclass
class Text:
    """The project's text as token ids, split into training and held-out parts."""

    codec: Any  # tasks.text.Codec
    train: Any  # 1-D tensor of token ids
    val: Any  # 1-D tensor of token ids: the last VAL_FRACTION of the text
    source: str  # where it came from, for the report


def load_text(path: str, codec: Any = None, window: int = 64) -> Text:
    """Read a file or folder of text (as `train` does) and split it like the text task does.

    `codec`: the vocabulary of a loaded checkpoint (its token ids must not change); None builds
    a character vocabulary from the text. `window`: the longest sequence taken from a split.
    """
    import torch

    from ..tasks.text import Codec, DataError, read_corpus

    text = read_corpus(path, (".md", ".txt", ".rst"))
    codec = codec or Codec.from_text(text)
    ids = torch.tensor(codec.encode(text), dtype=torch.long)
    n_val = max(int(len(ids) * VAL_FRACTION), window + 2)
    if len(ids) - n_val < window + 2:
        raise DataError(
            f"{path!r} is too small: {len(ids)} tokens for sequences of {window}; "
            "give more text (data: FILE_OR_FOLDER) or shorter sequences"
        )
    return Text(codec, ids[:-n_val], ids[-n_val:], path)


def random_batch(ids: Any, batch: int, length: int, generator: Any) -> tuple[Any, Any]:
    """(x, y): `batch` windows of `length` tokens at random offsets, y = x shifted by one."""
    import torch

    starts = torch.randint(len(ids) - length - 1, (batch, 1), generator=generator)
    chunk = ids[starts + torch.arange(length + 1)]  # (B, length + 1)
    return chunk[:, :-1], chunk[:, 1:]


def lr_at(step: int, steps: int, lr: float) -> float:
    """Linear warm-up over the first 10% of the steps, then cosine decay to lr / 10."""
    warmup = max(1, steps // 10)
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr / 10 + (lr - lr / 10) * 0.5 * (1 + math.cos(math.pi * progress))


def train_briefly(
    model: Any,
    ids: Any,
    steps: int,
    batch: int,
    length: int,
    lr: float,
    seed: int,
    loss_fn: Callable[[Any, Any, Any], Any] | None = None,
) -> float:
    """A few AdamW steps of next-token prediction on `ids`; returns the last training loss.

    A plain loop on purpose (the project's `train` writes a whole run folder): enough to turn
    flat predictions into a model whose held-out loss means something. `loss_fn(model, x, y)`
    replaces the plain cross-entropy (distill.py passes its distillation loss); the batches
    depend on `seed` only, so two runs with the same seed see the same data in the same order.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    model.train()
    loss = torch.tensor(float("nan"))
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr)
        x, y = random_batch(ids, batch, length, generator)
        loss = loss_fn(model, x, y) if loss_fn else model(x, y)[1]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    return loss.item()


def heldout_windows(ids: Any, length: int) -> tuple[Any, Any]:
    """The held-out ids cut into non-overlapping windows: every held-out token counted once."""
    n = (len(ids) - 1) // length
    x = ids[: n * length].view(n, length)
    y = ids[1 : n * length + 1].view(n, length)
    return x, y


def heldout_eval(model: Any, x: Any, y: Any, batch: int = 8) -> tuple[float, Any]:
    """(mean cross-entropy over every held-out token, greedy next-token predictions (N, T))."""
    import torch

    total, count, predictions = 0.0, 0, []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits, loss = model(x[i : i + batch], y[i : i + batch])
            n = y[i : i + batch].numel()
            total += loss.item() * n
            count += n
            predictions.append(logits.argmax(-1))
    return total / count, torch.cat(predictions)


def state_dict_bytes(model: Any) -> int:
    """Bytes of the model's saved state_dict: what a checkpoint of it costs on disk."""
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def shape_of(model: Any) -> dict[str, int]:
    """The model's shape and parameter count, for the report."""
    c = model.config
    return {
        "n_layer": c.n_layer,
        "n_head": c.n_head,
        "n_embd": c.n_embd,
        "block_size": c.block_size,
        "vocab_size": c.vocab_size,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def trained_model(
    checkpoint: str | None,
    data: str,
    shape: dict[str, int],
    steps: int,
    batch: int,
    length: int,
    lr: float,
    seed: int,
) -> tuple[Any, Text, str]:
    """(model in eval mode, its text, which weights these are): loaded, or trained here."""
    import torch

    from ..models.gpt import GPT, GPTConfig

    if checkpoint:
        from ..sample import load_for_generation

        model, codec = load_for_generation(checkpoint, "cpu")
        text = load_text(data, codec, min(length, model.config.block_size))
        return model.eval(), text, f"checkpoint {checkpoint}"
    text = load_text(data, None, length)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**shape, vocab_size=text.codec.vocab_size))
    t0 = time.perf_counter()
    loss = train_briefly(model, text.train, steps, batch, length, lr, seed)
    return (
        model,
        text,
        f"trained here: {steps} steps on {data} (batch {batch} x {length} tokens, "
        f"last loss {loss:.2f}, {time.perf_counter() - t0:.0f} s)",
    )


# ----------------------------------------------------------------------------- int8 backends


def quantize_torch_ao(model: Any, engine: str | None = None) -> Any:
    """A copy of `model` whose block Linear layers hold int8 weights (torch.ao, in torch).

    `engine`: the kernel library that packs the weights and later multiplies with them, e.g.
    fbgemm (x86 with AVX2/AVX-512), onednn (Intel's oneDNN: uses AMX int8 tiles where the CPU
    has them) or qnnpack (Arm); x86 lets torch pick between fbgemm and onednn. None: torch's
    current default (`torch.backends.quantized.engine`).
    """
    import torch

    int8 = copy.deepcopy(model)
    default = torch.backends.quantized.engine
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in recent torch: it warns on every call, and so
        # does its creation of quantized tensors. This lab uses it on purpose (the fastest CPU
        # path measured here); the project's tests turn every warning into an error.
        warnings.filterwarnings(
            "ignore", r"torch\.ao\.quantization is deprecated", DeprecationWarning
        )
        warnings.filterwarnings("ignore", r"torch\.quantize_per_tensor, ", UserWarning)
        from torch.ao.quantization import quantize_dynamic

        # Each nn.Linear becomes a DynamicQuantizedLinear: int8 weights, one scale per tensor,
        # packed for the engine in use now (the packed weights then always use its kernels).
        torch.backends.quantized.engine = engine or default
        try:
            quantize_dynamic(int8.blocks, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        finally:
            torch.backends.quantized.engine = default
    return int8.eval()


def _import_torchao() -> Any:
    """torchao.quantization, imported quietly (or ImportError when the package is missing)."""
    pytree_log = logging.getLogger("torch.utils._pytree")
    level = pytree_log.level
    with warnings.catch_warnings():
        # torchao's own source raises SyntaxWarnings (invalid escapes) and DeprecationWarnings
        # while it is first compiled and imported: noise from the package, not from this lab.
        warnings.filterwarnings("ignore", category=SyntaxWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        pytree_log.setLevel(logging.ERROR)  # and a log line about torch.compile internals
        try:
            import torchao.quantization as torchao_quantization
        finally:
            pytree_log.setLevel(level)
    return torchao_quantization


def quantize_torchao(model: Any) -> Any:
    """A copy of `model` whose block Linear layers hold int8 weights (the torchao package)."""
    tq = _import_torchao()
    if hasattr(tq, "Int8DynamicActivationInt8WeightConfig"):  # torchao >= 0.9
        config = tq.Int8DynamicActivationInt8WeightConfig()
    else:  # older torchao spells the same thing as a function
        config = tq.int8_dynamic_activation_int8_weight()
    int8 = copy.deepcopy(model)
    # quantize_ swaps each Linear weight for a tensor subclass holding int8 values and scales;
    # the module stays an nn.Linear, its matmul dispatches to torchao's int8 kernels.
    tq.quantize_(int8.blocks, config)
    return int8.eval()


QUANTIZERS: dict[str, Callable[[Any], Any]] = {
    "torch.ao": quantize_torch_ao,
    "torchao": quantize_torchao,
}


def backend_problem(name: str) -> str | None:
    """None when the backend quantizes and runs a tiny GPT here, else why not (with the fix).

    Feature detection by trying: an import can succeed and the kernels still be missing
    (a CPU without a quantized engine, a torchao built for another torch).
    """
    import torch

    from ..models.gpt import GPT, GPTConfig

    tiny = GPT(GPTConfig(n_layer=1, n_head=1, n_embd=16, block_size=4, vocab_size=8)).eval()
    try:
        with torch.no_grad():
            QUANTIZERS[name](tiny)(torch.zeros(1, 4, dtype=torch.long))
    except ImportError as exc:
        if name == "torchao":
            return f"torchao is not installed: {INSTALL_TORCHAO}"
        return (
            f"torch {torch.__version__} has no torch.ao.quantization.quantize_dynamic ({exc}); "
            f"use torchao: {INSTALL_TORCHAO}, then backend: torchao"
        )
    except (RuntimeError, NotImplementedError, AttributeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        return f"{name} does not run here: {first}"
    return None


def torch_ao_engines(requested: str) -> list[str]:
    """The engines to time for torch.ao: the requested one, or (auto) torch's default and onednn.

    Which one is faster depends on the CPU: on one with AMX (recent Intel Xeons) oneDNN's int8
    kernels beat the default clearly; elsewhere the default usually wins. So auto times both.
    """
    import torch

    supported = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    if requested != "auto":
        if requested not in supported:
            raise UserError(
                f"engine {requested} is not in this torch build (it has {', '.join(supported)})"
            )
        return [requested]
    default = torch.backends.quantized.engine
    return [default] + [e for e in ("onednn",) if e in supported and e != default]


def pick_backends(requested: str) -> list[str]:
    """The backends to try: the requested one, or every one that works (auto); else UserError."""
    names = BACKENDS if requested == "auto" else (requested,)
    problems = {name: backend_problem(name) for name in names}
    working = [name for name in names if problems[name] is None]
    if working:
        return working
    if requested != "auto":
        raise UserError(f"backend {requested} is not available: {problems[requested]}")
    reasons = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
    raise UserError(f"no int8 backend works here ({reasons}). Install torchao: {INSTALL_TORCHAO}")


# ----------------------------------------------------------------------------- the lab


def run(settings: QuantizeSettings) -> dict[str, Any]:
    """Quantize the mini-GPT to int8 and measure speed, size and quality against fp32.

    Two models unless a checkpoint is given: speed is timed on the larger `n_layer` x `n_embd`
    model (random weights: the time of a matrix product does not depend on the values in it),
    quality is judged on a small model trained here first (training the large one would take
    far longer than this lab should). With a checkpoint, both are measured on it.
    """
    import torch

    from ..models.gpt import GPT, GPTConfig
    from .kv_cache import generate

    started = time.perf_counter()
    names = pick_backends(settings.backend)  # first: fail fast, before any training
    engines = torch_ao_engines(settings.engine) if "torch.ao" in names else []
    small = {
        "n_layer": settings.train_n_layer,
        "n_head": settings.train_n_head,
        "n_embd": settings.train_n_embd,
        "block_size": settings.train_len,
    }
    judged, text, weights = trained_model(
        settings.checkpoint,
        settings.data,
        small,
        settings.train_steps,
        settings.train_batch,
        settings.train_len,
        settings.lr,
        settings.seed,
    )
    if settings.checkpoint:
        timed, timed_weights = judged, weights
    else:
        torch.manual_seed(settings.seed)
        shape = GPTConfig(
            n_layer=settings.n_layer,
            n_head=settings.n_head,
            n_embd=settings.n_embd,
            block_size=settings.block_size,
            vocab_size=text.codec.vocab_size,
        )
        timed = GPT(shape).eval()
        timed_weights = "random init (the time of a matrix product does not depend on its values)"
    repeats = settings.repeats

    # A checkpoint's context may be shorter than the settings ask for: use what fits.
    block = timed.config.block_size
    seq_len = min(settings.seq_len, block)
    prompt_len = min(settings.prompt_tokens, block - 1)
    new_tokens = min(settings.new_tokens, block - prompt_len)

    # 1. Batch forward (logits and loss at every position, as an evaluation does), fp32 vs int8.
    generator = torch.Generator().manual_seed(settings.seed)
    x = torch.randint(timed.config.vocab_size, (settings.batch_size, seq_len), generator=generator)

    quantizers = {
        f"torch.ao ({engine})": partial(quantize_torch_ao, engine=engine) for engine in engines
    }
    if "torchao" in names:
        quantizers["torchao"] = quantize_torchao
    quantized = {label: quantizer(timed) for label, quantizer in quantizers.items()}
    with torch.no_grad():
        times = best_times([partial(m, x, x) for m in (timed, *quantized.values())], repeats)
    fp32_forward = times[0]
    candidates = {
        label: (model, t) for (label, model), t in zip(quantized.items(), times[1:], strict=True)
    }
    backend = min(candidates, key=lambda label: candidates[label][1])  # auto: the fastest
    timed_int8, int8_forward = candidates[backend]

    # 2. Greedy decode with the KV-cache: the same algorithm, only the weights differ.
    prompt = text.val[:prompt_len][None]  # (1, prompt_len)

    fp32_decode, int8_decode = best_times(
        [partial(generate, m, prompt, new_tokens, temperature=0) for m in (timed, timed_int8)],
        repeats,
    )

    # 3. Quality, on the trained model: held-out loss, top-1 agreement, greedy text.
    judged_int8 = timed_int8 if judged is timed else quantizers[backend](judged)
    judged_block = judged.config.block_size
    hx, hy = heldout_windows(text.val, min(settings.train_len, judged_block))
    loss_fp32, pred_fp32 = heldout_eval(judged, hx, hy)
    loss_int8, pred_int8 = heldout_eval(judged_int8, hx, hy)
    quality_delta = (loss_int8 - loss_fp32) / loss_fp32
    p = min(settings.prompt_tokens, judged_block - 1)
    n = min(settings.new_tokens, judged_block - p)
    greedy = [
        generate(m, text.val[:p][None], n, temperature=0)[0, p:] for m in (judged, judged_int8)
    ]

    # 4. Size on disk.
    fp32_bytes, int8_bytes = state_dict_bytes(timed), state_dict_bytes(timed_int8)
    tokens = settings.batch_size * seq_len
    return {
        "weights": {"timed": timed_weights, "judged": weights},
        "data": text.source,
        "model": shape_of(timed),
        "judged_model": shape_of(judged),
        "device": "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "backend": backend,
        "backends": {
            name: {"forward_s": t, "forward_speedup": fp32_forward / t}
            for name, (_, t) in candidates.items()
        },
        "forward": {
            "batch": [settings.batch_size, seq_len],
            "fp32_s": fp32_forward,
            "int8_s": int8_forward,
            "fp32_tokens_per_s": tokens / fp32_forward,
            "int8_tokens_per_s": tokens / int8_forward,
            "speedup": fp32_forward / int8_forward,
        },
        "decode": {
            "prompt_tokens": prompt_len,
            "new_tokens": new_tokens,
            "fp32_s": fp32_decode,
            "int8_s": int8_decode,
            "speedup": fp32_decode / int8_decode,
        },
        "size": {
            "fp32_bytes": fp32_bytes,
            "int8_bytes": int8_bytes,
            "ratio": fp32_bytes / int8_bytes,
        },
        "quality": {
            "heldout_tokens": hy.numel(),
            "loss_fp32": loss_fp32,
            "loss_int8": loss_int8,
            "quality_delta": quality_delta,
            "top1_agreement": (pred_fp32 == pred_int8).float().mean().item(),
            "greedy_tokens": n,
            "greedy_same": (greedy[0] == greedy[1]).float().mean().item(),
            "greedy_fp32": text.codec.decode(greedy[0].tolist()),
            "greedy_int8": text.codec.decode(greedy[1].tolist()),
        },
        "int8_speedup": fp32_forward / int8_forward,
        "int8_quality_delta": quality_delta,
        "repeats": repeats,
        "seconds": time.perf_counter() - started,
    }


def format_report(result: dict[str, Any]) -> str:
    """The result as a few readable lines: speed, size and quality, each fp32 -> int8."""
    m, j, f, d = result["model"], result["judged_model"], result["forward"], result["decode"]
    s, q, w = result["size"], result["quality"], result["weights"]
    lines = [
        f"int8 with {result['backend']} vs fp32 on cpu, torch {result['torch']}, "
        f"{result['threads']} threads",
        f"Speed: mini-GPT {m['n_layer']} layers x {m['n_embd']} wide "
        f"({m['parameters'] / 1e6:.1f} M parameters), weights: {w['timed']}",
        f"  batch forward {f['batch'][0]} x {f['batch'][1]} tokens: {f['fp32_s'] * 1000:.0f} ms "
        f"-> {f['int8_s'] * 1000:.0f} ms, {f['speedup']:.2f}x",
    ]
    if len(result["backends"]) > 1:
        each = ", ".join(
            f"{name} {b['forward_speedup']:.2f}x" for name, b in result["backends"].items()
        )
        lines.append(f"    every candidate: {each} (auto keeps the fastest)")
    lines += [
        f"  KV-cache decode, {d['new_tokens']} new tokens, greedy: {d['fp32_s']:.2f} s -> "
        f"{d['int8_s']:.2f} s, {d['speedup']:.2f}x",
        f"  saved state_dict: {s['fp32_bytes'] / 1e6:.1f} MB -> "
        f"{s['int8_bytes'] / 1e6:.1f} MB, {s['ratio']:.2f}x smaller",
        f"Quality: mini-GPT {j['n_layer']} layers x {j['n_embd']} wide, weights: {w['judged']}",
        f"  held-out loss ({q['heldout_tokens']:,} tokens of {result['data']}): "
        f"{q['loss_fp32']:.4f} -> {q['loss_int8']:.4f}, "
        f"quality_delta {q['quality_delta']:+.2%}",
        f"  same top-1 prediction: {q['top1_agreement']:.1%}; same greedy tokens: "
        f"{q['greedy_same']:.0%} of {q['greedy_tokens']}",
        f"  fp32: {q['greedy_fp32']!r}",
        f"  int8: {q['greedy_int8']!r}",
        f"({result['seconds']:.0f} s in all, best of {result['repeats']} timed repeats)",
    ]
    return "\n".join(lines)
