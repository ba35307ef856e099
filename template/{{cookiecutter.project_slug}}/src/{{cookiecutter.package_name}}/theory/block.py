"""A Transformer block built from the from-scratch layers: the bridge to models/gpt.py.

It has the same structure and the same parameter names as `models.gpt.Block`, so the real
model's weights load into it unchanged, and both must then compute the same numbers.
`theory block` checks that on random weights and inputs; `theory attention` uses it to read
the attention weights of a trained model, which PyTorch's fused attention never materialises.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch
import torch.nn as nn

from .layers import GELU, CausalSelfAttention, LayerNorm, Linear


class MLP(nn.Module):
    """Widen to 4C, GELU, back to C: where each position 'thinks' on its own."""

    def __init__(self, n_embd: int, bias: bool = False):
        super().__init__()
        self.c_fc = Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = GELU()
        self.c_proj = Linear(4 * n_embd, n_embd, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    """Pre-norm block: x + attention(ln_1(x)), then x + mlp(ln_2(x)).

    The additions are the residual stream: each sub-layer only adds a correction to x, which is
    why deep stacks of blocks still train. Normalising *before* each sub-layer (pre-norm, as in
    GPT-2) keeps that stream untouched from input to output.
    """

    def __init__(self, n_embd: int, n_head: int, bias: bool = False):
        super().__init__()
        self.ln_1 = LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, bias=bias)
        self.ln_2 = LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, bias=bias)

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        """x: (B, T, C) -> (B, T, C); with return_weights also the attention (B, nh, T, T)."""
        attended, weights = self.attn(self.ln_1(x), return_weights=True)
        x = x + attended
        x = x + self.mlp(self.ln_2(x))
        return (x, weights) if return_weights else x

    @classmethod
    def from_gpt(cls, block: nn.Module) -> Block:
        """A copy of a `models.gpt.Block` (same weights, same dtype), built from our layers."""
        cfg_bias = block.ln_1.bias is not None
        n_embd = block.ln_1.weight.numel()
        ours = cls(n_embd, block.attn.n_head, bias=cfg_bias).to(block.ln_1.weight)
        # Same parameter names, so nothing to translate. (Convert the dtype first:
        # load_state_dict copies into the existing tensors and would round to their dtype.)
        ours.load_state_dict(block.state_dict())
        return ours


def compare(seed: int = 0) -> dict[str, Any]:
    """Our block against models.gpt.Block with the same random weights, in float64."""
    from ..models.gpt import Block as GPTBlock
    from ..models.gpt import GPTConfig

    torch.manual_seed(seed)
    rows = []
    for bias in (False, True):
        config = GPTConfig(n_embd=48, n_head=4, bias=bias)
        reference = GPTBlock(config).double().eval()
        with torch.no_grad():  # random, not the init's zeros and ones, so every weight matters
            for p in reference.parameters():
                p.normal_(0, 0.3)
        ours = Block.from_gpt(reference).eval()
        x = torch.randn(3, 10, config.n_embd, dtype=torch.float64, requires_grad=True)
        expected, got = reference(x), ours(x)  # (B, T, C) each
        (grad_expected,) = torch.autograd.grad(expected.square().sum(), x)
        (grad_got,) = torch.autograd.grad(got.square().sum(), x)
        rows.append(
            {
                "bias": bias,
                "output_max_diff": (got - expected).abs().max().item(),
                "input_grad_max_diff": (grad_got - grad_expected).abs().max().item(),
            }
        )
    tolerance = 1e-10
    worst = max(max(r["output_max_diff"], r["input_grad_max_diff"]) for r in rows)
    return {"rows": rows, "tolerance": tolerance, "match": worst <= tolerance}


def cli(args: argparse.Namespace) -> int:
    result = compare(args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("Our Transformer block vs models/gpt.py's Block (same weights, float64)")
        print("  bias   output max diff   input-gradient max diff")
        for r in result["rows"]:
            print(
                f"  {r['bias']!s:5}  {r['output_max_diff']:15.1e}"
                f"   {r['input_grad_max_diff']:22.1e}"
            )
        verdict = "match" if result["match"] else "DIFFER"
        print(f"Verdict: the two blocks {verdict} (tolerance {result['tolerance']:.0e}).")
    return 0 if result["match"] else 1
