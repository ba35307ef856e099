"""Experiment tracking: metrics.jsonl always, TensorBoard or Weights & Biases when chosen.

metrics.jsonl has one JSON object per line ({"step": 10, "loss": 2.31, "lr": 0.001, ...};
evaluation lines carry "eval/loss" and task metrics such as "eval/accuracy"). It needs no
extra package, is easy to read back (`report.py`), and survives a crash line by line.
The optional backends are imported only when selected, so they stay optional extras.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .config import Config
from .errors import UserError

METRICS_FILE = "metrics.jsonl"


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All complete lines of a run's metrics.jsonl (a torn last line after a crash is skipped)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def truncate_metrics(run_dir: Path, after_step: int) -> None:
    """On resume, drop lines logged after the checkpoint we restart from (they will be redone)."""
    path = Path(run_dir) / METRICS_FILE
    keep = [r for r in read_metrics(run_dir) if r.get("step", 0) <= after_step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in keep), encoding="utf-8")
    os.replace(tmp, path)


class Tracker:
    def __init__(self, run_dir: Path, cfg: Config, enabled: bool = True):
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
            self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        elif backend == "wandb":
            try:
                import wandb
            except ImportError:
                raise UserError("tracking.backend=wandb needs: pip install wandb") from None
            # Offline unless a key is configured: nothing leaves the machine by surprise.
            mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
            self._wandb = wandb.init(
                project=cfg.tracking.project,
                name=Path(run_dir).name,
                dir=str(run_dir),
                config=cfg.to_dict(),
                mode=mode,
            )

    def log(self, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self._file.write(json.dumps(metrics) + "\n")
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
