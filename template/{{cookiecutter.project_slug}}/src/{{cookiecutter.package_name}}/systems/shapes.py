"""The mini-GPT a lab measures: built from the shape in its settings, with seeded random weights.

Speed does not depend on the values in the weights, so most labs time a freshly initialised
model of the shape they are given (`n_layer`, `n_head`, `n_embd`, `block_size`) over a byte-sized
vocabulary; the labs that judge quality (quantize, distill) train one first.
"""

from __future__ import annotations

from typing import Any

import torch

from ..models.gpt import GPT, GPTConfig

VOCAB_SIZE = 256  # any byte: random tokens need no tokenizer


def build_gpt(settings: Any, device: str = "cpu", block_size: int | None = None) -> GPT:
    """GPT(settings' shape) on `device`; its weights drawn after manual_seed(settings.seed)."""
    torch.manual_seed(settings.seed)
    config = GPTConfig(
        n_layer=settings.n_layer,
        n_head=settings.n_head,
        n_embd=settings.n_embd,
        block_size=block_size or settings.block_size,
        vocab_size=VOCAB_SIZE,
    )
    return GPT(config).to(device)
