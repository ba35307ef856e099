"""The optimiser and its schedule: AdamW, linear warmup, then cosine decay to min_lr."""

from __future__ import annotations

import math
from typing import Any

from .config import TrainConfig


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then cosine to min_lr."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def build_optimizer(model: Any, cfg: TrainConfig) -> Any:
    """AdamW with weight decay on matrices (linear weights, embeddings) only.

    Biases and LayerNorm gains are 1-D: decaying them towards zero only hurts. The fused
    implementation (one kernel for all parameters) is used where this torch has it.
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    kwargs = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2)}
    try:
        return torch.optim.AdamW(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError):  # no fused kernel for this device / torch version
        return torch.optim.AdamW(groups, **kwargs)
