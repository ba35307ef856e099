"""Lab 05: what a trained mini-GPT looks at, drawn as one heatmap per layer and head.

    python -m <package> theory attention runs/<run> --prompt "12+34="

models/gpt.py computes attention with PyTorch's fused `scaled_dot_product_attention`, which
never keeps the attention weights. So each of the model's blocks is copied, weights and all, into
the from-scratch `Block` of theory/block.py, which hands them back. The copy repeats
`GPT.forward` (embeddings, blocks, final layer norm, output layer) and must reproduce the
model's own logits, or `attention_maps` refuses to draw: the pictures would not be of this
model. That same check is how lab 05's test catches a wrong `attention_weights` in layers.py.

Reading one heatmap: row t is the character at position t doing the looking (the query), column
s the character it looks at (the key). Each row sums to 1, and everything right of the diagonal
is 0: a GPT may not look ahead.
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from ..files import atomic_write_bytes
from .block import Block

# Characters that would be invisible (or break the layout) as tick labels.
VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}
KNOWN_SHOWN = 40  # how many of the model's characters a "never saw" message lists
TRAIN_COMMAND = "train --config configs/addition.yaml"


class AttentionMismatch(UserError):
    """The from-scratch blocks do not give the model's logits (a layer in layers.py is off)."""


# ----------------------------------------------------------------------------- the maps

# model -> (its parameters' versions, its blocks as from-scratch Blocks). Weak keys: a model
# that is gone takes its copy with it; a model trained further (new versions) is copied again.
_converted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_converted_lock = threading.Lock()  # the demo may draw for two visitors at once


def from_scratch_blocks(model: Any) -> list[Block]:
    """The GPT's blocks as theory/block.py `Block`s (same weights, same dtype), made once."""
    versions = tuple(p._version for p in model.parameters())
    with _converted_lock:
        cached = _converted.get(model)
        if cached is None or cached[0] != versions:
            cached = (versions, [Block.from_gpt(block).eval() for block in model.blocks])
            _converted[model] = cached
        return cached[1]


def _as_sequence(model: Any, idx: torch.Tensor) -> torch.Tensor:
    """idx (T,) or (1, T) -> (1, T) on the model's device; one sequence, at most block_size long."""
    if idx.dim() == 1:
        idx = idx.unsqueeze(0)
    T = idx.size(-1)
    if idx.dim() != 2 or idx.size(0) != 1 or not 0 < T <= model.config.block_size:
        raise ValueError(
            f"expected one sequence of 1 to {model.config.block_size} token ids, "
            f"got shape {tuple(idx.shape)}"
        )
    return idx.to(model.lm_head.weight.device)


@torch.no_grad()
def forward_with_attention(model: Any, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """GPT.forward done again with the from-scratch blocks, for one sequence idx (T,) or (1, T).

    Returns the logits (T, V) and the attention maps (n_layer, n_head, T, T). Put the model in
    eval() mode first (dropout off), as `attention_maps` does.
    """
    idx = _as_sequence(model, idx)
    T = idx.size(1)
    x = model.drop(model.wte(idx) + model.wpe(model.pos[:T]))  # (1, T, C), as in GPT.forward
    maps = []
    for block in from_scratch_blocks(model):
        x, weights = block(x, return_weights=True)  # weights: (1, nh, T, T)
        maps.append(weights[0])
    logits = model.lm_head(model.ln_f(x))  # (1, T, V)
    return logits[0], torch.stack(maps)


def tolerance(dtype: torch.dtype) -> float:
    """How far the two forward passes may differ, relative to the logits' size: rounding only."""
    return {torch.float64: 1e-9, torch.float32: 1e-4}.get(dtype, 5e-2)


def attention_maps(model: Any, idx: torch.Tensor) -> torch.Tensor:
    """The attention weights of every head of every layer for one sequence: (n_layer, n_head, T, T).

    model is a models.gpt.GPT; idx (T,) or (1, T) token ids. The from-scratch forward pass must
    give the model's own logits (within rounding), else AttentionMismatch: the maps would not be
    this model's.
    """
    idx = _as_sequence(model, idx)
    was_training = model.training
    model.eval()  # no dropout in either pass
    try:
        logits, maps = forward_with_attention(model, idx)
        with torch.no_grad():
            expected, _ = model(idx, idx)  # with targets the model returns every position's logits
    finally:
        model.train(was_training)
    diff = (logits - expected[0]).abs().max().item()
    allowed = tolerance(logits.dtype) * (1 + expected.abs().max().item())
    if not diff <= allowed:  # `not <=` also refuses NaN
        raise AttentionMismatch(
            "the from-scratch blocks do not reproduce the model's logits (largest difference "
            f"{diff:.2g}, allowed {allowed:.1g}), so the maps would not be this model's: "
            "check theory/layers.py with pytest tests/theory/test_lab05_attention.py"
        )
    return maps


# ----------------------------------------------------------------------------- the prompt


def visible(text: str) -> str:
    """Text as a label: spaces, newlines and other invisible characters made visible."""
    return "".join(VISIBLE.get(c, c if c.isprintable() else repr(c)[1:-1]) for c in text)


def token_texts(codec: Any, ids: list[int]) -> list[str]:
    """What each token stands for: a character, or (byte-level codec) an ASCII byte or its hex."""
    if codec.chars:
        return [codec.chars[i] for i in ids]
    return [chr(i) if i < 128 else f"{i:02X}" for i in ids]


def encode_prompt(codec: Any, prompt: str, block_size: int) -> tuple[list[int], str]:
    """Token ids of the prompt (the last block_size of them) and a note when it was cut, else ''.

    An empty prompt or a character the model never saw is a UserError that says what to do.
    """
    if not prompt:
        raise UserError("the prompt is empty: give the text to look at, e.g. 12+34= (addition)")
    if codec.chars:  # a byte-level codec knows every text
        unknown = sorted(set(prompt) - set(codec.chars), key=prompt.index)
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:10]) + (", ..." if unknown[10:] else "")
            known = repr(codec.chars[:KNOWN_SHOWN]) + ("..." if codec.chars[KNOWN_SHOWN:] else "")
            raise UserError(
                f"the prompt has characters this model never saw: {shown}; use only the "
                f"{len(codec.chars)} it knows: {known}"
            )
    ids = codec.encode(prompt)
    if len(ids) <= block_size:
        return ids, ""
    unit = "characters" if codec.chars else "bytes"
    note = (
        f"the prompt has {len(ids)} {unit}, more than the model's context of {block_size}: "
        f"drawing the last {block_size}"
    )
    return ids[-block_size:], note


# ----------------------------------------------------------------------------- the picture


@functools.cache
def _charmap(font_file: str) -> frozenset[str]:
    from matplotlib import ft2font

    try:
        return frozenset(map(chr, ft2font.FT2Font(font_file).get_charmap()))
    except (OSError, RuntimeError, ValueError):  # an unreadable font file: use another
        return frozenset()


def _fonts_for(texts: list[str]) -> tuple[list[str], list[str]]:
    """Font families that can draw texts, and texts with characters no font has as U+XXXX.

    matplotlib's own font (DejaVu Sans) has no Chinese, for example; an installed font that has
    it is added as a fallback, and a character no installed font has is written as its code point
    (instead of an empty box and a warning).
    """
    from matplotlib import font_manager

    default = font_manager.findfont(font_manager.FontProperties())
    families = [font_manager.FontProperties(fname=default).get_name()]
    missing = {c for text in texts for c in text} - _charmap(default)
    for font in font_manager.fontManager.ttflist:
        if not missing:
            break
        if font.name in families or font.name.startswith("Last Resort"):  # boxes, not letters
            continue
        found = missing & _charmap(font.fname)
        if found:
            families.append(font.name)
            missing -= found
    if missing:
        texts = ["".join(f"U+{ord(c):04X}" if c in missing else c for c in t) for t in texts]
    return families, texts


def attention_png(maps: torch.Tensor, tokens: list[str], title: str = "") -> bytes:
    """A PNG of the maps (n_layer, n_head, T, T): rows = layers, columns = heads.

    tokens are the T characters of the prompt (made visible here); they label the axes of the
    bottom row and the left column. The layout is computed in inches, not by matplotlib's
    layout engines, which take seconds for a grid of 16 heatmaps with 64 labels each.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    weights = maps.detach().float().cpu().numpy()
    n_layer, n_head, T, _ = weights.shape
    if len(tokens) != T:
        raise ValueError(f"{len(tokens)} tokens for maps of {T} positions")
    families, texts = _fonts_for([visible(t) for t in tokens] + [title])
    labels, title = texts[:-1], texts[-1]
    # Readable cells for a short prompt; about 1/8 inch per character for a long one.
    cell = min(max(1.7, 0.13 * T), 8.5)
    size = 9 if T <= 16 else 8 if T <= 40 else 7  # tick labels, in points
    longest = max(len(label) for label in labels) * size / 72 * 0.7  # inches, roughly
    rotate = longest > size / 72  # labels such as U+4F60 stand upright to stay apart
    gap, right, top = 0.15, 1.2, 0.75
    left = 0.75 + longest
    bottom = 0.55 + (longest if rotate else size / 72 * 1.5)
    width = left + n_head * cell + (n_head - 1) * gap + right
    height = top + n_layer * cell + (n_layer - 1) * gap + bottom
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # matplotlib's file-only Agg renderer: no pyplot, no GUI, thread-safe
    grid = fig.add_gridspec(
        n_layer,
        n_head,
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=gap / cell,
        hspace=gap / cell,
    )
    # parse_math=False: a '$' in the prompt is a dollar sign, not the start of a formula.
    text = {"fontsize": size, "fontfamily": families, "parse_math": False}
    image = None
    for layer in range(n_layer):
        for head in range(n_head):
            ax = fig.add_subplot(grid[layer, head])
            image = ax.imshow(
                weights[layer, head], vmin=0, vmax=1, cmap="viridis", interpolation="nearest"
            )
            ax.tick_params(length=0)
            # Only the outer axes get labels (and ticks: 16 x 128 labels take seconds to lay out).
            if layer == n_layer - 1:
                ax.set_xticks(range(T), labels, rotation=90 if rotate else 0, **text)
            else:
                ax.set_xticks([])
            if head == 0:
                ax.set_yticks(range(T), labels, **text)
                ax.set_ylabel(f"layer {layer + 1}", fontsize=10)
            else:
                ax.set_yticks([])
            if layer == 0:
                ax.set_title(f"head {head + 1}", fontsize=10)
    bar = fig.add_axes(
        (1 - (right - 0.25) / width, bottom / height, 0.18 / width, 1 - (top + bottom) / height)
    )
    fig.colorbar(image, cax=bar, label="attention weight")
    fig.supxlabel("key: the character looked at", y=0.12 / height, va="bottom")
    fig.supylabel("query: the character looking", x=0.12 / width, ha="left")
    if title:
        fig.suptitle(title, y=1 - 0.15 / height, va="top", parse_math=False, fontfamily=families)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def plot_attention(maps: torch.Tensor, tokens: list[str], path: str | Path, title: str = ""):
    """Write attention_png(maps, tokens, title) to path (atomically: never half a file)."""
    return atomic_write_bytes(path, attention_png(maps, tokens, title))


def strongest(maps: torch.Tensor) -> list[tuple[int, int, int, float]]:
    """(layer, head, key position, weight) of the key the last position attends to most."""
    weight, position = maps[:, :, -1, :].max(dim=-1)  # (n_layer, n_head) each
    return [
        (layer, head, int(position[layer, head]), float(weight[layer, head]))
        for layer in range(maps.size(0))
        for head in range(maps.size(1))
    ]


def describe(maps: torch.Tensor, tokens: list[str]) -> str:
    """Where the last character looks most, per layer and head, as text (1-based numbers)."""
    T = len(tokens)
    lines = [f"The last character {visible(tokens[-1])!r} looks most at:"]
    for layer, head, position, weight in strongest(maps):
        lines.append(
            f"  layer {layer + 1}  head {head + 1}  {visible(tokens[position])!r}"
            f"  (character {position + 1} of {T}, weight {weight:.2f})"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the command


def run_folder(path: Path) -> Path:
    """The run folder of a run folder or of one of its checkpoint files."""
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def cli(args: argparse.Namespace) -> int:
    """`theory attention RUN_DIR --prompt TEXT [--out PNG]`: draw the maps, say where it looks."""
    from ..checkpoint import list_checkpoints
    from ..sample import load_for_generation

    source = Path(args.run_dir)
    if source.is_dir() and not list_checkpoints(source):
        raise UserError(
            f"{source} has no checkpoints: train a model first ({TRAIN_COMMAND}) "
            "and pass its run folder, runs/<name>"
        )
    out = Path(args.out) if args.out else run_folder(source) / "attention.png"
    if out.is_dir():
        raise UserError(f"--out {out} is a folder: give a file name, e.g. {out / 'attention.png'}")
    model, codec = load_for_generation(source, "cpu")  # one small forward pass: the CPU is fine
    ids, note = encode_prompt(codec, args.prompt, model.config.block_size)
    if note:
        print(f"note: {note}", file=sys.stderr)
    maps = attention_maps(model, torch.tensor(ids))
    tokens = token_texts(codec, ids)
    title = f"{run_folder(source).name}: {visible(''.join(tokens))}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        plot_attention(maps, tokens, out, title)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    n_layer, n_head = maps.shape[:2]
    unit = ("character" if codec.chars else "byte") + ("" if len(ids) == 1 else "s")
    print(f"wrote {out} ({n_layer} layers x {n_head} heads, {len(ids)} {unit})")
    print(describe(maps, tokens))
    return 0
