"""The optimiser and its schedule: AdamW, linear warmup, then cosine decay to min_lr."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .config import TrainConfig


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then cosine to min_lr."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def build_optimizer(
    model: Any, cfg: TrainConfig, lr_scale: Callable[[str], float] | None = None
) -> Any:
    """AdamW with weight decay on matrices (linear weights, embeddings) only.

    Biases and LayerNorm gains are 1-D: decaying them towards zero only hurts. `lr_scale(name)`
    multiplies the learning rate of the parameter called `name` (a task's discriminative
    learning rates: lower layers of a pretrained encoder learn more slowly); the schedule then
    scales every group alike. The fused implementation (one kernel for all parameters) is used
    where this torch has it.
    """
    import torch

    groups: dict[tuple[bool, float], list[Any]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            scale = lr_scale(name) if lr_scale else 1.0
            groups.setdefault((p.dim() >= 2, scale), []).append(p)
    param_groups = [
        {"params": params, "weight_decay": cfg.weight_decay if decay else 0.0, "lr": cfg.lr * s}
        for (decay, s), params in groups.items()
    ]
    kwargs = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2)}
    try:
        return torch.optim.AdamW(param_groups, fused=True, **kwargs)
    except (RuntimeError, TypeError):  # no fused kernel for this device / torch version
        return torch.optim.AdamW(param_groups, **kwargs)
