"""Experiment tracking: metrics.jsonl always, TensorBoard or Weights & Biases when chosen.

metrics.jsonl has one JSON object per line ({"step": 10, "loss": 2.31, "lr": 0.001, ...};
evaluation lines carry "eval/loss" and task metrics such as "eval/accuracy"). It needs no
extra package, is easy to read back (`report.py`), and survives a crash line by line.
The optional backends are imported only when selected, so they stay optional extras.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
from pathlib import Path
from typing import Any

from .config import Config
from .errors import UserError
from .files import atomic_write_text

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.jsonl"
WANDB_ID_FILE = "wandb_id.txt"  # the W&B run id, so a resumed run continues the same W&B run


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The usable lines of a run's metrics.jsonl: JSON objects with an integer "step".

    A torn last line after a crash is skipped silently; other damage (binary bytes, lines that
    are not metrics) is skipped with one warning that counts the lines.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    rows, bad = [], 0
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                raise ValueError
            rows.append(row)
        except ValueError:
            if i < len(lines) - 1:  # a torn last line is normal after a crash
                bad += 1
    if bad:
        log.warning("%s: skipped %d damaged line(s)", path, bad)
    return rows


def json_line(metrics: dict[str, Any]) -> str:
    """One metrics line. NaN/inf are not JSON: they are written as null, never as bare NaN."""
    clean = {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()
    }
    return json.dumps(clean, allow_nan=False)


def truncate_metrics(run_dir: Path, after_step: int) -> None:
    """On resume, drop lines logged after the checkpoint we restart from (they will be redone)."""
    keep = [r for r in read_metrics(run_dir) if r["step"] <= after_step]
    atomic_write_text(Path(run_dir) / METRICS_FILE, "".join(json_line(r) + "\n" for r in keep))


class Tracker:
    """Writes metrics lines to metrics.jsonl and the chosen backend.

    On resume (`resume_step` > 0) the backends continue where the checkpoint left off:
    TensorBoard drops the events logged after that step (they will be logged again) and W&B
    resumes the same run, whose id is kept in the run folder.
    """

    def __init__(self, run_dir: Path, cfg: Config, enabled: bool = True, resume_step: int = 0):
        self.enabled = enabled  # False on DDP ranks other than 0
        self._file = None
        self._tb = None
        self._wandb = None
        if not enabled:
            return
        self._file = open(Path(run_dir) / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        backend = cfg.tracking.backend
        if backend == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UserError(
                    "tracking.backend=tensorboard needs: pip install tensorboard"
                ) from None
            # purge_step: events at or after it (from the interrupted process) are discarded.
            purge = resume_step + 1 if resume_step else None
            self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"), purge_step=purge)
        elif backend == "wandb":
            try:
                import wandb
            except ImportError:
                raise UserError("tracking.backend=wandb needs: pip install wandb") from None
            # Offline unless a key is configured: nothing leaves the machine by surprise.
            mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
            id_file = Path(run_dir) / WANDB_ID_FILE
            run_id = id_file.read_text(encoding="utf-8").strip() if id_file.is_file() else None
            if run_id is None:
                run_id = secrets.token_hex(4)  # W&B ids: short, unique per project
                atomic_write_text(id_file, run_id + "\n")
            self._wandb = wandb.init(
                project=cfg.tracking.project,
                name=Path(run_dir).name,
                id=run_id,
                resume="allow",  # the same W&B run continues after --resume
                dir=str(run_dir),
                config=cfg.to_dict(),
                mode=mode,
            )

    def log(self, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self._file.write(json_line(metrics) + "\n")
        self._file.flush()
        step = metrics["step"]
        if self._tb is not None:
            for key, value in metrics.items():
                if key != "step" and isinstance(value, (int, float)):
                    self._tb.add_scalar(key, value, step)
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in metrics.items() if k != "step"}, step=step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
