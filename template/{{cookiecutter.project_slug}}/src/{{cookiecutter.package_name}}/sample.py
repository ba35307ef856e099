"""Text generation from a trained run: the helpers a demo (e.g. Gradio) builds on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError, list_checkpoints, load_checkpoint, load_latest
from .errors import UserError
from .report import run_task
from .tasks.text import Codec

# Tasks whose model is the GPT with a character codec: their runs can generate text.
TEXT_TASKS = ("text", "addition", "datasets")


def text_checkpoints(runs_dir: str | Path) -> list[Path]:
    """Checkpoint files of the text-generating runs under runs_dir, newest first (by mtime).

    A run whose config.yaml names another task is passed over without opening its checkpoints;
    one whose config cannot be read is tried (its checkpoint says what it holds).
    """
    runs = Path(runs_dir)
    if not runs.is_dir():
        return []
    found = [
        ckpt
        for run in runs.iterdir()
        if run.is_dir() and run_task(run) in (*TEXT_TASKS, None)  # not a classifier's 270 MB
        for ckpt in list_checkpoints(run)
    ]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p), reverse=True)


def latest_checkpoint(runs_dir: str | Path) -> Path | None:
    """Newest checkpoint file under runs_dir (or None)."""
    found = text_checkpoints(runs_dir)
    return found[0] if found else None


def _model_from_state(state: dict[str, Any], device: str) -> tuple[Any, Codec]:
    from .models.gpt import GPT, GPTConfig

    config = state.get("config") or {}
    kind = (config.get("data") or {}).get("kind", "text")
    if kind not in TEXT_TASKS:
        raise CheckpointError(
            f"a {kind!r} run does not generate text; give a run of a GPT task "
            f"({', '.join(TEXT_TASKS)}), e.g. train --config configs/addition.yaml"
        )
    codec = state.get("task", {}).get("codec") or state.get("codec")
    if codec is None:
        raise CheckpointError("the checkpoint holds no vocabulary")
    model = GPT(GPTConfig(**config["model"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), Codec.from_dict(codec)


def load_for_generation(run_dir_or_ckpt: str | Path, device: str = "cpu") -> tuple[Any, Codec]:
    """Model (eval mode) and codec from a run folder (newest good checkpoint) or a .pt file."""
    path = Path(run_dir_or_ckpt)
    if path.is_dir():
        state, _ = load_latest(path, map_location=device)
    elif path.is_file():
        state = load_checkpoint(path, map_location=device)
    else:
        raise UserError(f"{path} is neither a run folder nor a checkpoint file")
    return _model_from_state(state, device)


def load_newest_model(
    runs_dir: str | Path, device: str = "cpu"
) -> tuple[Any, Codec, Path, list[tuple[Path, str]]]:
    """The newest readable text-generating checkpoint under runs_dir.

    Returns (model, codec, checkpoint path, skipped), where skipped lists the newer checkpoints
    that could not be used, each with a short reason, so the caller can say so.
    """
    skipped: list[tuple[Path, str]] = []
    for path in text_checkpoints(runs_dir):
        try:
            state = load_checkpoint(path, map_location=device)
            model, codec = _model_from_state(state, device)
        except (CheckpointError, KeyError, TypeError, RuntimeError) as exc:
            reason = str(exc).removeprefix(f"cannot load checkpoint {path}: ")
            skipped.append((path, reason))
            continue
        return model, codec, path, skipped
    if skipped:
        raise UserError(
            f"none of the {len(skipped)} checkpoints under {runs_dir} can be read "
            f"(newest: {skipped[0][0]}: {skipped[0][1]}); train a model first: "
            "train --config configs/tiny.yaml"
        )
    raise UserError(
        f"no trained model under {runs_dir}; train one: train --config configs/tiny.yaml"
    )


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
