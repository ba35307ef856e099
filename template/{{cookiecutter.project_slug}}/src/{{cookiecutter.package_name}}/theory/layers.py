"""Neural-network layers written from scratch with plain tensor operations.

Each function does what its PyTorch counterpart does (`F.linear`, `F.conv2d`, `F.max_pool2d`,
`F.layer_norm`, `F.gelu`, `F.softmax`, `F.cross_entropy`, `F.dropout`,
`F.scaled_dot_product_attention`), using only indexing, matrix products and elementwise maths.
PyTorch's autograd still computes the gradients of these operations; what is ours is the
forward maths, and `theory layers` and tests/theory/test_lab03_layers.py check both the values
and (with `torch.autograd.gradcheck`) the gradients against PyTorch's own layers.

The modules at the end wrap the functions with parameters, so the CNN (`cnn.py`) and the
Transformer block (`block.py`) can be built from them. Their parameter names match `torch.nn`
(weight, bias), so a state dict from `models/gpt.py` loads into the block unchanged.

Shapes: N = batch, C = channels, H x W = image size, C_out = output channels, k = kernel size,
B = batch, nh = heads, T = time (sequence length), hs = head size.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

# ----------------------------------------------------------------------------- functions


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None):
    """y = x W^T + b. weight: (out, in), as in nn.Linear; x: (..., in) -> (..., out)."""
    y = x @ weight.T
    return y if bias is None else y + bias


def pad2d(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Surround every (H, W) image with `padding` zeros on each side."""
    if padding == 0:
        return x
    N, C, H, W = x.shape
    out = x.new_zeros(N, C, H + 2 * padding, W + 2 * padding)
    out[:, :, padding : padding + H, padding : padding + W] = x
    return out


def patches2d(x: torch.Tensor, k: int, stride: int) -> torch.Tensor:
    """Every k x k window of every image: (N, C, H, W) -> (N, C, Ho, Wo, k, k) (a view)."""
    return x.unfold(2, k, stride).unfold(3, k, stride)


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
) -> torch.Tensor:
    """2-D convolution as one matrix product (im2col): x (N, C, H, W), weight (C_out, C, k, k).

    Like every deep-learning library, this is cross-correlation: the kernel is not flipped.
    Each output pixel is the dot product of one C x k x k window with each of the C_out kernels,
    so lining all windows up as columns ("im2col") turns the whole layer into one matmul.
    """
    N, C, _, _ = x.shape
    C_out, C_w, k, k_w = weight.shape
    if C_w != C or k_w != k:
        raise ValueError(f"weight {tuple(weight.shape)} does not fit input {tuple(x.shape)}")
    windows = patches2d(pad2d(x, padding), k, stride)  # (N, C, Ho, Wo, k, k)
    Ho, Wo = windows.shape[2], windows.shape[3]
    # im2col: one column of C*k*k numbers per output pixel -> (N, C*k*k, Ho*Wo)
    cols = windows.permute(0, 1, 4, 5, 2, 3).reshape(N, C * k * k, Ho * Wo)
    out = weight.reshape(C_out, C * k * k) @ cols  # (N, C_out, Ho*Wo)
    if bias is not None:
        out = out + bias.view(C_out, 1)
    return out.view(N, C_out, Ho, Wo)


def max_pool2d(x: torch.Tensor, kernel_size: int, stride: int | None = None) -> torch.Tensor:
    """The largest value of every kernel_size x kernel_size window (stride = kernel by default)."""
    windows = patches2d(x, kernel_size, stride or kernel_size)  # (N, C, Ho, Wo, k, k)
    return windows.flatten(-2).amax(dim=-1)


def layer_norm(
    x: torch.Tensor,
    normalized_shape: tuple[int, ...] | int,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Normalise over the last dimensions (one sample at a time): mean 0, variance 1, then
    scale and shift. The variance is the biased one (divide by n), as in the paper and PyTorch."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    dims = tuple(range(-len(normalized_shape), 0))
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def gelu(x: torch.Tensor) -> torch.Tensor:
    """GELU, x * P(X <= x) for a standard normal X; the exact form (erf), PyTorch's default."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def relu(x: torch.Tensor) -> torch.Tensor:
    """max(0, x), elementwise."""
    return x.clamp_min(0)


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """exp(x) / sum(exp(x)) along `dim`. Subtracting the max first changes nothing
    mathematically and keeps exp() from overflowing."""
    e = torch.exp(x - x.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log(softmax(x)) computed without taking the log of tiny numbers (log-sum-exp)."""
    shifted = x - x.amax(dim=dim, keepdim=True)
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100
) -> torch.Tensor:
    """Mean of -log softmax(logits)[target] over the rows whose target is not ignore_index.

    logits: (N, classes); targets: (N,) class indices.
    """
    keep = targets != ignore_index
    logp = log_softmax(logits[keep], dim=-1)
    picked = logp.gather(1, targets[keep].unsqueeze(1)).squeeze(1)
    return -picked.mean()


def dropout(
    x: torch.Tensor, p: float, training: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero each value with probability p and scale the rest by 1 / (1 - p), so the expected
    value is unchanged and nothing needs rescaling at test time ("inverted dropout")."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return x * keep / (1 - p)


def causal_mask(
    T: int, device: torch.device | str | None = None, S: int | None = None
) -> torch.Tensor:
    """(T, S) booleans (S = T by default), True where query t may look at key s, i.e. s <= t."""
    return torch.ones(T, T if S is None else S, dtype=torch.bool, device=device).tril()


def attention_weights(
    q: torch.Tensor,
    k: torch.Tensor,
    mask: torch.Tensor | None = None,
    is_causal: bool = False,
) -> torch.Tensor:
    """softmax(q k^T / sqrt(hs)): how much each query position looks at each key position.

    q: (..., T, hs), k: (..., S, hs) -> (..., T, S); each row sums to 1. `mask` is boolean
    (True = may attend), as in F.scaled_dot_product_attention.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if is_causal:
        mask = causal_mask(q.size(-2), q.device, k.size(-2))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return softmax(scores, dim=-1)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    is_causal: bool = False,
) -> torch.Tensor:
    """Each query's output is the average of the values, weighted by attention_weights."""
    return attention_weights(q, k, mask, is_causal) @ v


def causal_self_attention(
    x: torch.Tensor,
    w_qkv: torch.Tensor,
    w_proj: torch.Tensor,
    n_head: int,
    b_qkv: torch.Tensor | None = None,
    b_proj: torch.Tensor | None = None,
    return_weights: bool = False,
):
    """Multi-head causal self-attention, the weights laid out as in models/gpt.py.

    x: (B, T, C); w_qkv: (3C, C) makes queries, keys and values for all heads in one matmul;
    w_proj: (C, C) mixes the heads' outputs. Returns (B, T, C), and with return_weights also
    the attention weights (B, nh, T, T).
    """
    B, T, C = x.shape
    hs = C // n_head
    qkv = linear(x, w_qkv, b_qkv)  # (B, T, 3C)
    q, k, v = qkv.view(B, T, 3, n_head, hs).permute(2, 0, 3, 1, 4)  # each (B, nh, T, hs)
    weights = attention_weights(q, k, is_causal=True)  # (B, nh, T, T)
    y = (weights @ v).transpose(1, 2).reshape(B, T, C)  # heads side by side: (B, T, C)
    y = linear(y, w_proj, b_proj)
    return (y, weights) if return_weights else y


# ----------------------------------------------------------------------------- modules


class Linear(nn.Module):
    def __init__(self, n_in: int, n_out: int, bias: bool = True):
        super().__init__()
        # PyTorch's default initialisation: uniform in +-1/sqrt(fan_in).
        bound = 1 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(n_out, n_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_out).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


class Conv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.stride, self.padding = stride, padding
        bound = 1 / math.sqrt(c_in * kernel_size * kernel_size)
        shape = (c_out, c_in, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(c_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)


class MaxPool2d(nn.Module):
    def __init__(self, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool2d(x, self.kernel_size)


class LayerNorm(nn.Module):
    def __init__(self, n: int, bias: bool = True, eps: float = 1e-5):
        super().__init__()
        self.n, self.eps = n, eps
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x, (self.n,), self.weight, self.bias, self.eps)


class GELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gelu(x)


class ReLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return relu(x)


class Dropout(nn.Module):
    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with models/gpt.py's parameter names (c_attn, c_proj)."""

    def __init__(self, n_embd: int, n_head: int, bias: bool = False):
        super().__init__()
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        self.n_head = n_head
        self.c_attn = Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = Linear(n_embd, n_embd, bias=bias)

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        return causal_self_attention(
            x,
            self.c_attn.weight,
            self.c_proj.weight,
            self.n_head,
            self.c_attn.bias,
            self.c_proj.bias,
            return_weights=return_weights,
        )
