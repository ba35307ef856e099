"""The Task interface: everything the training loop needs to know about one kind of problem."""

from __future__ import annotations

from typing import Any, ClassVar

from ..config import Config


class Task:
    """Subclass this to train something new with the same loop (checkpoints, resume, DDP...).

    The loop calls, in this order: `build_model()` once; per step `before_step(model, step)`,
    then `get_batch("train", ...)` and `loss(model, batch)`; per evaluation `loss` on "val"
    batches and `eval_metrics(model)`; at the end `report(model)` and `figures(model, device,
    run_dir)`. `state_dict()` is saved in every checkpoint and handed back to `__init__` on
    resume (a vocabulary must never be rebuilt from data that may have changed);
    `fingerprint()` identifies the data, so a resumed run can say when it changed.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[Config]] = Config  # a task may add config sections
    unit: ClassVar[str] = "tokens"  # what throughput counts: tokens, samples...

    def __init__(self, cfg: Config, state: dict[str, Any] | None = None):
        self.cfg = cfg

    def state_dict(self) -> dict[str, Any]:
        return {}

    def fingerprint(self) -> str:
        return ""

    def build_model(self) -> Any:
        raise NotImplementedError

    def lr_scale(self, name: str) -> float:
        """Learning-rate multiplier of the parameter `name` (1.0 = train.lr for all)."""
        return 1.0

    def before_step(self, model: Any, step: int) -> None:
        """Called before optimizer step `step` (0-based), e.g. to unfreeze layers on schedule."""

    def get_batch(self, split: str, batch_size: int, generator: Any, device: str) -> tuple:
        raise NotImplementedError

    def loss(self, model: Any, batch: tuple) -> Any:
        """Mean loss of one batch; by default the model computes it: model(x, y) -> (out, loss)."""
        _, loss = model(*batch)
        return loss

    def units(self, batch: tuple) -> int:
        """How many `unit`s a batch holds (for throughput)."""
        return batch[0].numel()

    def eval_metrics(self, model: Any, device: str) -> dict[str, float]:
        """Task metrics besides the loss, logged as eval/<name> (e.g. accuracy)."""
        return {}

    def report(self, model: Any, device: str) -> dict[str, Any]:
        """What the run report shows besides the metrics: {"sample": text} and/or
        {"examples": [{"input": ..., "target": ..., "output": ...}]}, plus any figures."""
        return {}

    def figures(self, model: Any, device: str, run_dir: Any) -> list[dict[str, str]]:
        """Pictures for the report, written into run_dir: [{"title": ..., "file": "x.png"}]."""
        return []

    def flops_per_unit(self, model: Any) -> float | None:
        """Training FLOPs per unit, for MFU on GPUs; None when unknown."""
        return None
