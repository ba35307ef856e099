"""A small GPT (decoder-only transformer), nanoGPT-sized and readable in one sitting.

Shapes use B = batch, T = time (sequence length), C = n_embd, nh = n_head, hs = C // nh,
V = vocab_size.

Why it is fast on a CPU as well as a GPU: one fused QKV matmul per layer, PyTorch's
`scaled_dot_product_attention` (flash / memory-efficient kernels where available), no dropout
modules at all when `dropout == 0` (each one is an extra op forward and backward), and a
single reshape/permute instead of three view/transpose pairs. Small models are dominated by
per-op overhead, so fewer ops is the main lever.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    """Model hyper-parameters (contract). `vocab_size` comes from the tokenizer/codec."""

    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads per block (n_embd must be divisible by it)
    n_embd: int = 128  # width of the residual stream
    block_size: int = 64  # context length in tokens (the longest sequence the model sees)
    vocab_size: int = 256  # tokens the model knows; in a config, 0 = take it from the data
    dropout: float = 0.0  # dropout probability; 0 builds no dropout layers at all
    bias: bool = False  # bias in Linear/LayerNorm like GPT-2; False is a bit faster and as good


def _dropout(p: float) -> nn.Module:
    # Identity when p == 0 so a dropout-free model pays nothing for it.
    return nn.Dropout(p) if p > 0 else nn.Identity()


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        if config.n_embd % config.n_head != 0:
            raise ValueError(
                f"n_embd ({config.n_embd}) must be divisible by n_head ({config.n_head})"
            )
        self.n_head = config.n_head
        self.dropout = config.dropout
        # One matmul computes queries, keys and values for every head at once.
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = _dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        hs = C // self.n_head
        # (B, T, 3C) -> (B, T, 3, nh, hs) -> (3, B, nh, T, hs) -> q, k, v each (B, nh, T, hs)
        q, k, v = self.c_attn(x).view(B, T, 3, self.n_head, hs).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again: (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = _dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, T, C) -> (B, T, 4C) -> (B, T, C)
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embeddings
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # learned positions
        self.drop = _dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: the input embedding and the output projection share one matrix
        # (fewer parameters, and it usually trains better).
        self.wte.weight = self.lm_head.weight
        # Positions 0..block_size-1, kept as a buffer so forward() does not allocate them.
        self.register_buffer("pos", torch.arange(config.block_size), persistent=False)
        self.apply(self._init_weights)
        # GPT-2 init: residual projections scaled by 1/sqrt(2 * n_layer) so the residual
        # stream's variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; position embeddings excluded by default (as in the GPT-2 paper)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx: (B, T) token ids. targets: (B, T) ids, -1 = ignore (e.g. prompt tokens).

        Returns logits (B, T, V) with targets, or (B, 1, V) for the last position without
        (all generation needs), and the mean cross-entropy loss or None.
        """
        B, T = idx.shape
        if self.config.block_size < T:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}")
        x = self.drop(self.wte(idx) + self.wpe(self.pos[:T]))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        if targets is None:
            return self.lm_head(x[:, -1:, :]), None  # (B, 1, V)
        logits = self.lm_head(x)  # (B, T, V)
        loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T), ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> torch.Tensor:
        """Append `max_new_tokens` sampled tokens to idx (B, T); returns (B, T + new).

        temperature <= 0 means greedy (argmax). Put the model in eval() mode first.
        """
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -self.config.block_size :]  # crop the context to block_size
            logits, _ = self(idx_cond)
            logits = logits[:, -1, :]  # (B, V)
            if temperature <= 0:
                idx_next = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits = logits.masked_fill(logits < v[:, [-1]], float("-inf"))
                probs = F.softmax(logits, dim=-1)
                idx_next = torch.multinomial(probs, num_samples=1)  # (B, 1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx
