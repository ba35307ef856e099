"""Checkpoints: everything needed to continue a run exactly, written so a crash cannot corrupt them.

A checkpoint is one `torch.save` file holding plain containers and tensors only (so it loads
with `weights_only=True`, which refuses to run pickled code): model, optimizer, GradScaler and
LR-scheduler states, the step, every random-number-generator state, the config and the codec.

Writes are atomic (`files.atomic_write_with`: a temporary file, flushed, then renamed): a kill -9
mid-write leaves the previous checkpoints intact. Loading tries the newest file first and falls
back to older ones, naming each unreadable file with a short reason.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any

from .errors import UserError
from .files import atomic_write_with

log = logging.getLogger(__name__)
_NAME = re.compile(r"^step_(\d+)\.pt$")


class CheckpointError(UserError):
    """No usable checkpoint could be loaded."""


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint files of a run, oldest first (by step number)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def rng_state(generator: Any = None) -> dict[str, Any]:
    """All RNG states as tensors/lists (numpy's array becomes a tensor for weights_only)."""
    import numpy as np
    import torch

    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if generator is not None:
        state["data"] = generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], generator: Any = None) -> None:
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "data" in state:
        generator.set_state(state["data"])


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep_last: int = 3) -> Path:
    """Atomically write `checkpoints/step_NNNNNNN.pt` and delete all but the newest keep_last."""
    import torch

    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:07d}.pt"
    atomic_write_with(path, lambda f: torch.save(state, f))
    for old in list_checkpoints(run_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    """Load one checkpoint file safely (weights_only=True: tensors and plain containers only)."""
    import torch

    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, garbage, foreign pickle: all mean "unusable"
        raise CheckpointError(f"cannot load checkpoint {path}: {unreadable_reason(exc)}") from None
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise CheckpointError(f"{path} is not a training checkpoint (no 'model' or 'step')")
    return state


def unreadable_reason(exc: BaseException) -> str:
    """A short reason for a checkpoint that failed to load.

    torch's own message for a file it refuses suggests loading it with weights_only=False,
    which would run whatever code the file contains: never do that with a damaged or foreign
    file, so that advice is left out here.
    """
    text = str(exc)
    if "Weights only load failed" in text or "weights_only" in text:
        return "it is damaged or was not written by this project's training loop"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"damaged or truncated ({first[:120]})"


def load_latest(run_dir: Path, map_location: str = "cpu") -> tuple[dict[str, Any], Path]:
    """Newest loadable checkpoint of a run; corrupt/truncated files are skipped with a warning."""
    candidates = list_checkpoints(run_dir)
    if not candidates:
        raise CheckpointError(f"no checkpoints in {checkpoint_dir(run_dir)}; nothing to resume")
    for path in reversed(candidates):
        try:
            return load_checkpoint(path, map_location), path
        except CheckpointError as exc:
            log.warning("%s; trying the previous one", exc)
    raise CheckpointError(
        f"every checkpoint in {checkpoint_dir(run_dir)} is unreadable; start a new run"
    )
