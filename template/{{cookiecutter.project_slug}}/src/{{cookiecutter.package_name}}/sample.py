"""Text generation from a trained run: the helpers a demo (e.g. Gradio) builds on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .checkpoint import list_checkpoints, load_latest
from .data import Codec
from .errors import UserError


def latest_checkpoint(runs_dir: str | Path) -> Path | None:
    """Newest checkpoint file of the most recently modified run under runs_dir (or None)."""
    runs = Path(runs_dir)
    if not runs.is_dir():
        return None
    best: tuple[float, Path] | None = None
    for run_dir in runs.iterdir():
        if run_dir.is_dir():
            for ckpt in list_checkpoints(run_dir):
                key = (ckpt.stat().st_mtime, ckpt)
                best = key if best is None or key > best else best
    return best[1] if best else None


def load_for_generation(run_dir_or_ckpt: str | Path, device: str = "cpu") -> tuple[Any, Codec]:
    """Model (eval mode) and codec from a run folder (newest good checkpoint) or a .pt file."""
    from .checkpoint import load_checkpoint
    from .models.gpt import GPT, GPTConfig

    path = Path(run_dir_or_ckpt)
    if path.is_dir():
        state, _ = load_latest(path, map_location=device)
    elif path.is_file():
        try:
            state = load_checkpoint(path, map_location=device)
        except Exception as exc:
            raise UserError(f"cannot load checkpoint {path}: {exc}") from None
    else:
        raise UserError(f"{path} is neither a run folder nor a checkpoint file")
    model = GPT(GPTConfig(**state["config"]["model"]))
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return model, Codec.from_dict(state["codec"])


def stream_text(
    model: Any,
    codec: Codec,
    prompt: str,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = None,
) -> Iterator[str]:
    """Yield the prompt plus the generated text so far, one token at a time (for streaming UIs)."""
    import torch

    device = next(model.parameters()).device
    ids = codec.encode(prompt) or [0]  # an empty/unknown prompt starts from token 0
    idx = torch.tensor([ids], dtype=torch.long, device=device)
    generated: list[int] = []
    for _ in range(max_new_tokens):
        idx = model.generate(idx, 1, temperature=temperature, top_k=top_k)
        generated.append(int(idx[0, -1]))
        yield prompt + codec.decode(generated)
