"""Lab 03: a KV-cache. Decode one token at a time without recomputing the past.

`GPT.generate` (models/gpt.py) runs the whole sequence through the model for every new token:
the keys and values of the earlier tokens are recomputed each time, although they never change
(a token only attends to the tokens before it). A KV-cache keeps them. After the prompt is
processed once (the *prefill*), each decode step feeds one token: its query attends to the cached
keys and values, and its own key and value are written into the cache for the next steps. The work
per step drops from the whole sequence to one token.

This module uses the same `GPT` and the same weights; it only calls the model's layers in a
different order (`c_attn`, `c_proj`, `ln_1`, `mlp`...). The cache is allocated once, at its full
length, so decoding never reallocates memory (vLLM's PagedAttention goes further: it hands out
the cache in blocks, so many requests can share one pool).

Rows of a batch may be at different places in their sequences (continuous batching, batching.py),
so every call takes, per row, the cache slot it writes to (`slots`), the position of its first new
token in that slot (`start`), and how many left-padding positions the slot begins with (`pad`,
static batching pads short prompts on the left so that every row ends at the same place).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..models.gpt import GPT


@dataclass
class KVCache:
    """Keys and values of every layer: `keys[layer]` is (slots, n_head, max_len, head_size)."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    @classmethod
    def allocate(cls, model: GPT, slots: int, max_len: int | None = None) -> KVCache:
        """Room for `slots` sequences of up to `max_len` tokens (default: the model's context)."""
        config = model.config
        max_len = max_len or config.block_size
        if max_len > config.block_size:
            raise ValueError(
                f"max_len {max_len} exceeds the model's context (block_size {config.block_size})"
            )
        weight = model.wte.weight  # its dtype and device (an int8 lm_head has no .weight tensor)
        shape = (slots, config.n_head, max_len, config.n_embd // config.n_head)
        keys = [weight.new_zeros(shape) for _ in range(config.n_layer)]
        values = [weight.new_zeros(shape) for _ in range(config.n_layer)]
        return cls(keys, values)

    @property
    def slots(self) -> int:
        return self.keys[0].shape[0]

    @property
    def max_len(self) -> int:
        return self.keys[0].shape[2]


def _attention_mask(
    start: torch.Tensor, pad: torch.Tensor, steps: int, length: int
) -> torch.Tensor | None:
    """(B, 1, T, S) True where query t of row b may attend to cache position j; None if all may.

    Row b's new tokens sit at cache positions start[b] .. start[b] + T - 1. Query t sees the
    positions from pad[b] (the first real token) up to its own. A padding query (one before
    pad[b]) sees itself only: its output is never used, but a row with nothing to attend to
    would give NaN, and NaN keys or values spread even where their weight is 0.
    """
    if steps == 1 and not bool(pad.any()) and bool((start == length - 1).all()):
        return None  # decoding one token, no padding, every row full: attend to everything
    here = start[:, None] + torch.arange(steps, device=start.device)  # (B, T) own positions
    cols = torch.arange(length, device=start.device)  # (S,)
    visible = (cols >= pad[:, None, None]) & (cols <= here[:, :, None])  # (B, T, S)
    visible |= cols == here[:, :, None]
    return visible[:, None]  # (B, 1, T, S): the same for every head


@torch.no_grad()
def forward(
    model: GPT,
    cache: KVCache,
    idx: torch.Tensor,
    start: torch.Tensor,
    slots: torch.Tensor | None = None,
    pad: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run new tokens idx (B, T) through the model, reading and extending the cache.

    start: (B,) cache position of each row's first new token; slots: (B,) the cache slot of each
    row (default: row b uses slot b); pad: (B,) left-padding positions at the start of each slot.
    Returns the logits of each row's last new token, (B, V).
    """
    B, T = idx.shape
    device = idx.device
    pad = torch.zeros(B, dtype=torch.long, device=device) if pad is None else pad
    length = int(start.max()) + T  # keys to attend to: positions 0 .. length - 1
    if length > cache.max_len:
        raise ValueError(f"{length} tokens do not fit in the cache ({cache.max_len})")
    here = start[:, None] + torch.arange(T, device=device)  # (B, T) cache positions
    positions = (here - pad[:, None]).clamp(min=0)  # padding does not count as a position
    mask = _attention_mask(start, pad, T, length)
    x = model.wte(idx) + model.wpe(positions)  # (B, T, C); dropout is off in eval mode
    C = x.shape[-1]
    nh = model.config.n_head
    rows = torch.arange(B, device=device) if slots is None else slots
    for layer, block in enumerate(model.blocks):
        attn = block.attn
        h = block.ln_1(x)
        q, k, v = attn.c_attn(h).view(B, T, 3, nh, C // nh).unbind(2)  # each (B, T, nh, hs)
        # Write this step's keys and values at their positions, then read the whole past.
        cache.keys[layer][rows[:, None], :, here] = k
        cache.values[layer][rows[:, None], :, here] = v
        if slots is None:  # rows 0..B-1: a slice is a view, no copy
            keys = cache.keys[layer][:B, :, :length]
            values = cache.values[layer][:B, :, :length]
        else:
            keys = cache.keys[layer][slots, :, :length]
            values = cache.values[layer][slots, :, :length]
        y = F.scaled_dot_product_attention(q.transpose(1, 2), keys, values, attn_mask=mask)
        x = x + attn.c_proj(y.transpose(1, 2).reshape(B, T, C))
        x = x + block.mlp(block.ln_2(x))
    x = model.ln_f(x[:, -1, :])  # only the last position's logits are needed to decode
    return model.lm_head(x)  # (B, V)


def sample(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Next token ids (B, 1) from logits (B, V), as GPT.generate picks them (<= 0: greedy)."""
    if temperature <= 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k:
        v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
        logits = logits.masked_fill(logits < v[:, [-1]], float("-inf"))
    return torch.multinomial(F.softmax(logits, dim=-1), num_samples=1, generator=generator)


@torch.no_grad()
def generate(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """GPT.generate with a KV-cache: append `max_new_tokens` tokens to idx (B, T).

    The whole sequence must fit in the model's context: learned position embeddings stop at
    block_size, and unlike GPT.generate a cache cannot slide its window (every cached key was
    computed at its old position).
    """
    B, T = idx.shape
    total = T + max_new_tokens
    if total > model.config.block_size:
        raise ValueError(
            f"prompt ({T}) + new tokens ({max_new_tokens}) = {total} exceeds the model's "
            f"context (block_size {model.config.block_size})"
        )
    cache = KVCache.allocate(model, B, total)
    start = torch.zeros(B, dtype=torch.long, device=idx.device)
    logits = forward(model, cache, idx, start)  # prefill: the whole prompt at once
    out = [idx]
    for step in range(max_new_tokens):
        token = sample(logits, temperature, top_k, generator)  # (B, 1)
        out.append(token)
        if step + 1 < max_new_tokens:
            logits = forward(model, cache, token, start + T + step)  # decode: one token
    return torch.cat(out, dim=1)
