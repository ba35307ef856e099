"""Lab 03: every from-scratch layer in layers.py checked against PyTorch's own.

A *case* is one layer on one set of shapes: our function, PyTorch's function (the reference)
and a maker of random inputs. Each case gets three checks:

- values: our output minus PyTorch's, in float32 and in float64;
- gradcheck: `torch.autograd.gradcheck` compares the gradients autograd computes through our
  operations with finite differences of our own forward pass (float64, tiny shapes). Its fast
  mode nudges the inputs along one random direction instead of one number at a time: a few
  finite differences instead of one per number, and a wrong gradient still shows unless its
  error happens to be exactly orthogonal to that random direction;
- gradients vs PyTorch: our gradients against those of PyTorch's function. gradcheck alone
  only proves that our backward fits our forward: a wrong forward has a matching backward too.

Dropout is random and cannot reproduce PyTorch's random numbers, so it is checked by its
statistics instead (`check_dropout`).

The cases call `layers.<function>` when they run, not a copy taken at import, so the tests can
swap in a broken version of a function and watch these same checks fail.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..models.gpt import CausalSelfAttention as GPTSelfAttention
from ..models.gpt import GPTConfig
from . import layers

# The largest |ours - PyTorch| allowed, relative to the size of PyTorch's output (at least 1).
# float32 keeps about 7 significant digits, float64 about 16; the same maths in a different
# order differs in the last few of them, a wrong formula in far more.
TOLERANCES = {torch.float32: 1e-5, torch.float64: 1e-10}
GRADIENT_TOLERANCE = 1e-10  # gradients are compared in float64


@dataclass(frozen=True)
class Case:
    name: str
    ours: Callable[..., torch.Tensor]  # calls layers.<function>
    reference: Callable[..., torch.Tensor]  # the same with torch.nn.functional
    make_inputs: Callable[[torch.Generator], tuple[torch.Tensor, ...]]  # float64 tensors


@dataclass
class Check:
    """One comparison: the largest difference found and what it was allowed to be."""

    max_diff: float
    tolerance: float
    error: str = ""  # why the check could not even compare (an exception, a wrong shape)
    gradcheck: bool = True  # only gradient checks use this

    @property
    def ok(self) -> bool:
        return not self.error and self.gradcheck and self.max_diff <= self.tolerance

    def describe(self) -> str:
        if self.error:
            return self.error
        text = f"max diff {self.max_diff:.1e} (tolerance {self.tolerance:.1e})"
        return text if self.gradcheck else f"gradcheck failed; {text}"


# ----------------------------------------------------------------------------- the cases


def randn(gen: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(shape, generator=gen, dtype=torch.float64) * scale


def targets(gen: torch.Generator, n: int, classes: int, ignore: int | None = None):
    """n class indices; with `ignore`, every third one replaced by that ignore_index."""
    t = torch.randint(classes, (n,), generator=gen)
    if ignore is not None:
        t[::3] = ignore
    return t


def bool_mask(gen: torch.Generator, T: int, S: int) -> torch.Tensor:
    """(T, S) random True/False; key 0 always allowed so no query is left with no key."""
    mask = torch.rand(T, S, generator=gen) < 0.6
    mask[:, 0] = True
    return mask


def attention_inputs(T: int, S: int, mask: bool = False, value_size: int = 4):
    """A maker of q (B, nh, T, 4), k (B, nh, S, 4), v (B, nh, S, value_size) [, mask (T, S)]."""

    def make(gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        q, k, v = randn(gen, 2, 2, T, 4), randn(gen, 2, 2, S, 4), randn(gen, 2, 2, S, value_size)
        return (q, k, v, bool_mask(gen, T, S)) if mask else (q, k, v)

    return make


def self_attention_inputs(gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """x (B, T, C) = (2, 5, 6) and the weights and biases of 2 heads of size 3."""
    x = randn(gen, 2, 5, 6)
    w_qkv, w_proj = randn(gen, 18, 6, scale=0.5), randn(gen, 6, 6, scale=0.5)
    return x, w_qkv, w_proj, randn(gen, 18), randn(gen, 6)


def gpt_attention(x, w_qkv, w_proj, b_qkv, b_proj, n_head):
    """models/gpt.py's CausalSelfAttention with these tensors as its weights."""
    config = GPTConfig(n_embd=x.size(-1), n_head=n_head, bias=True, dropout=0.0)
    module = GPTSelfAttention(config).eval()
    weights = {"c_attn.weight": w_qkv, "c_attn.bias": b_qkv}
    weights |= {"c_proj.weight": w_proj, "c_proj.bias": b_proj}
    return functional_call(module, weights, (x,))


def conv_case(name, x_shape, out_channels, k, stride, padding, bias=True) -> Case:
    def make(gen):
        w = randn(gen, out_channels, x_shape[1], k, k)
        b = (randn(gen, out_channels),) if bias else ()
        return (randn(gen, *x_shape), w, *b)

    return Case(
        name,
        lambda x, w, b=None: layers.conv2d(x, w, b, stride=stride, padding=padding),
        lambda x, w, b=None: F.conv2d(x, w, b, stride=stride, padding=padding),
        make,
    )


def pool_case(name, x_shape, k, stride=None) -> Case:
    return Case(
        name,
        lambda x: layers.max_pool2d(x, k, stride),
        lambda x: F.max_pool2d(x, k, stride),
        lambda gen: (randn(gen, *x_shape),),
    )


def softmax_case(name, dim) -> Case:
    return Case(
        name,
        lambda x: layers.softmax(x, dim=dim),
        lambda x: F.softmax(x, dim=dim),
        lambda gen: (randn(gen, 3, 4, 5, scale=3.0),),
    )


def log_softmax_case(name, dim) -> Case:
    return Case(
        name,
        lambda x: layers.log_softmax(x, dim=dim),
        lambda x: F.log_softmax(x, dim=dim),
        lambda gen: (randn(gen, 3, 4, 5, scale=3.0),),
    )


CASES: list[Case] = [
    Case(
        "linear",
        lambda x, w, b: layers.linear(x, w, b),
        F.linear,
        lambda gen: (randn(gen, 4, 5), randn(gen, 3, 5), randn(gen, 3)),
    ),
    Case(
        "linear 3-D input, no bias",
        lambda x, w: layers.linear(x, w),
        F.linear,
        lambda gen: (randn(gen, 2, 3, 5), randn(gen, 4, 5)),
    ),
    conv_case("conv2d 3x3", (2, 3, 7, 6), 4, 3, stride=1, padding=0),
    conv_case("conv2d 3x3 stride 2 padding 1", (2, 2, 7, 8), 3, 3, stride=2, padding=1),
    conv_case("conv2d 1x1", (1, 3, 5, 4), 2, 1, stride=1, padding=0),
    conv_case("conv2d 2x2 stride 2 no bias", (1, 2, 6, 5), 3, 2, stride=2, padding=0, bias=False),
    conv_case("conv2d 5x5 padding 2", (1, 1, 6, 7), 2, 5, stride=1, padding=2),
    pool_case("max_pool2d 2x2", (2, 3, 6, 7), 2),
    pool_case("max_pool2d 3x3 stride 2", (1, 2, 7, 8), 3, stride=2),
    pool_case("max_pool2d 2x2 stride 1", (1, 2, 5, 4), 2, stride=1),
    Case(
        "layer_norm last dim",
        lambda x, w, b: layers.layer_norm(x, 6, w, b),
        lambda x, w, b: F.layer_norm(x, (6,), w, b),
        lambda gen: (randn(gen, 3, 4, 6, scale=2.0) + 1, randn(gen, 6), randn(gen, 6)),
    ),
    Case(
        "layer_norm last dim, weight only",
        lambda x, w: layers.layer_norm(x, (6,), w),
        lambda x, w: F.layer_norm(x, (6,), w),
        lambda gen: (randn(gen, 3, 4, 6, scale=2.0) + 1, randn(gen, 6)),
    ),
    Case(
        "layer_norm last dim, no weight",
        lambda x: layers.layer_norm(x, (6,)),
        lambda x: F.layer_norm(x, (6,)),
        lambda gen: (randn(gen, 3, 4, 6, scale=2.0) - 1,),
    ),
    Case(
        "layer_norm last 2 dims",
        lambda x, w, b: layers.layer_norm(x, (4, 5), w, b),
        lambda x, w, b: F.layer_norm(x, (4, 5), w, b),
        lambda gen: (randn(gen, 3, 4, 5, scale=2.0), randn(gen, 4, 5), randn(gen, 4, 5)),
    ),
    Case(
        "layer_norm last 2 dims, no weight",
        lambda x: layers.layer_norm(x, (4, 5)),
        lambda x: F.layer_norm(x, (4, 5)),
        lambda gen: (randn(gen, 2, 3, 4, 5, scale=2.0),),
    ),
    Case(
        "gelu",
        lambda x: layers.gelu(x),
        F.gelu,
        lambda gen: (randn(gen, 8, 9, scale=3.0),),
    ),
    Case("relu", lambda x: layers.relu(x), F.relu, lambda gen: (randn(gen, 5, 7),)),
    softmax_case("softmax dim -1", -1),
    softmax_case("softmax dim 0", 0),
    softmax_case("softmax dim 1", 1),
    log_softmax_case("log_softmax dim -1", -1),
    log_softmax_case("log_softmax dim 0", 0),
    Case(
        "cross_entropy",
        lambda z, t: layers.cross_entropy(z, t),
        F.cross_entropy,
        lambda gen: (randn(gen, 6, 5, scale=2.0), targets(gen, 6, 5)),
    ),
    Case(
        "cross_entropy ignore_index -100",
        lambda z, t: layers.cross_entropy(z, t),
        F.cross_entropy,
        lambda gen: (randn(gen, 7, 5, scale=2.0), targets(gen, 7, 5, ignore=-100)),
    ),
    Case(
        "cross_entropy ignore_index -1",
        lambda z, t: layers.cross_entropy(z, t, ignore_index=-1),
        lambda z, t: F.cross_entropy(z, t, ignore_index=-1),
        lambda gen: (randn(gen, 8, 4, scale=2.0), targets(gen, 8, 4, ignore=-1)),
    ),
    Case(
        "attention",
        lambda q, k, v: layers.scaled_dot_product_attention(q, k, v),
        F.scaled_dot_product_attention,
        attention_inputs(T=3, S=3),
    ),
    Case(
        "attention is_causal",
        lambda q, k, v: layers.scaled_dot_product_attention(q, k, v, is_causal=True),
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        attention_inputs(T=5, S=5),
    ),
    Case(
        "attention bool mask",
        lambda q, k, v, m: layers.scaled_dot_product_attention(q, k, v, mask=m),
        lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
        attention_inputs(T=5, S=5, mask=True),
    ),
    Case(
        "attention T != S (cross), masked",
        lambda q, k, v, m: layers.scaled_dot_product_attention(q, k, v, mask=m),
        lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
        attention_inputs(T=3, S=6, mask=True, value_size=2),
    ),
    Case(
        "causal_self_attention vs gpt.py",
        lambda x, wa, wp, ba, bp: layers.causal_self_attention(x, wa, wp, 2, ba, bp),
        lambda x, wa, wp, ba, bp: gpt_attention(x, wa, wp, ba, bp, n_head=2),
        self_attention_inputs,
    ),
]


# ----------------------------------------------------------------------------- the checks


def make_inputs(case: Case, dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    """The case's inputs in `dtype` (the same numbers for every dtype; indices stay integers)."""
    inputs = case.make_inputs(torch.Generator().manual_seed(seed))
    return [t.to(dtype) if t.is_floating_point() else t for t in inputs]


def compare_outputs(got: Any, expected: torch.Tensor) -> str:
    """Why `got` cannot be compared with PyTorch's output, or "" when it can."""
    if not isinstance(got, torch.Tensor):
        return f"returned {type(got).__name__}, not a tensor"
    if got.shape != expected.shape:
        return f"shape {tuple(got.shape)}, PyTorch gives {tuple(expected.shape)}"
    if got.dtype != expected.dtype:
        return f"dtype {got.dtype}, PyTorch gives {expected.dtype}"
    return ""


def scale_of(*tensors: torch.Tensor) -> float:
    """The size the tolerance is relative to: the largest |value|, and at least 1."""
    return max([1.0] + [t.detach().abs().max().item() for t in tensors if t.numel()])


def check_values(case: Case, dtype: torch.dtype, seed: int = 0) -> Check:
    """Our output against PyTorch's on the same inputs, in `dtype`."""
    inputs = make_inputs(case, dtype, seed)
    expected = case.reference(*inputs)
    tolerance = TOLERANCES[dtype] * scale_of(expected)
    try:
        got = case.ours(*inputs)
    except Exception as exc:  # a broken layer must show up as a failed check, not a crash
        return Check(math.inf, tolerance, f"raised {type(exc).__name__}: {exc}")
    error = compare_outputs(got, expected)
    if error:
        return Check(math.inf, tolerance, error)
    return Check((got - expected).abs().max().item(), tolerance)


def input_gradients(fn, inputs, cotangent) -> list[torch.Tensor]:
    """d(sum(fn(inputs) * cotangent)) / d(each floating-point input)."""
    wrt = [t for t in inputs if t.requires_grad]
    grads = torch.autograd.grad(fn(*inputs), wrt, cotangent, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(wrt, grads, strict=True)]


def check_gradients(case: Case, seed: int = 0) -> Check:
    """gradcheck on our function, then our gradients against PyTorch's (float64)."""
    inputs = [
        t.requires_grad_() if t.is_floating_point() else t
        for t in make_inputs(case, torch.float64, seed)
    ]
    try:
        passed = torch.autograd.gradcheck(
            case.ours, tuple(inputs), fast_mode=True, raise_exception=False
        )
        expected = case.reference(*inputs)
        error = compare_outputs(case.ours(*inputs), expected)
        if error:
            return Check(math.inf, GRADIENT_TOLERANCE, error, gradcheck=passed)
        gen = torch.Generator().manual_seed(seed + 1)
        cotangent = torch.randn(expected.shape, generator=gen, dtype=torch.float64)
        ours = input_gradients(case.ours, inputs, cotangent)
        reference = input_gradients(case.reference, inputs, cotangent)
    except Exception as exc:
        return Check(math.inf, GRADIENT_TOLERANCE, f"raised {type(exc).__name__}: {exc}")
    diff = max((a - b).abs().max().item() for a, b in zip(ours, reference, strict=True))
    return Check(diff, GRADIENT_TOLERANCE * scale_of(*reference), gradcheck=passed)


def first_failure(case: Case, seed: int = 0) -> str | None:
    """What the first failing check of a case found (cheapest check first), or None."""
    checks = {
        "float64": lambda: check_values(case, torch.float64, seed),
        "float32": lambda: check_values(case, torch.float32, seed),
        "gradients": lambda: check_gradients(case, seed),
    }
    for what, run_check in checks.items():
        check = run_check()
        if not check.ok:
            return f"{case.name}, {what}: {check.describe()}"
    return None


# ----------------------------------------------------------------------------- dropout


def check_dropout(seed: int = 0, p: float = 0.25, n: int = 1000) -> dict[str, Any]:
    """Dropout by its statistics on an n x n tensor; every entry of "checks" must be True.

    The share of zeros is a binomial proportion: within 5 standard deviations of p. The mean
    of the output is compared with the input's within 5 standard errors.
    """
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, n, generator=gen) + 0.5).requires_grad_()  # no zeros: 0 means dropped
    out = layers.dropout(x, p, generator=torch.Generator().manual_seed(seed + 1))
    dropped = out.detach() == 0
    size = n * n
    zeroed = dropped.float().mean().item()
    zeroed_sigma = math.sqrt(p * (1 - p) / size)
    mean_in, mean_out = x.mean().item(), out.mean().item()
    mean_sigma = out.std().item() / math.sqrt(size)
    (grad,) = torch.autograd.grad(out.sum(), x)
    # Two halves of one mask agree on a share p^2 + (1 - p)^2 of positions if independent.
    agree = (dropped[: n // 2] == dropped[n // 2 :]).float().mean().item()
    agree_expected = p * p + (1 - p) * (1 - p)
    agree_sigma = math.sqrt(agree_expected * (1 - agree_expected) / (size // 2))
    again = layers.dropout(x, p, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        checks = {
            "share zeroed is p": abs(zeroed - p) <= 5 * zeroed_sigma,
            "kept values scaled by 1/(1-p)": torch.allclose(
                out[~dropped], x[~dropped] / (1 - p), rtol=1e-6, atol=0
            ),
            "mean preserved": abs(mean_out - mean_in) <= 5 * mean_sigma,
            "gradient is mask/(1-p)": torch.allclose(grad, ~dropped / (1 - p), rtol=1e-6),
            "values dropped independently": abs(agree - agree_expected) <= 5 * agree_sigma,
            "same generator, same mask": torch.equal(again, out),
            "identity in eval mode": torch.equal(layers.dropout(x, p, training=False), x),
            "identity at p=0": torch.equal(layers.dropout(x, 0.0), x),
            "p outside [0, 1) raises": all(refuses(layers.dropout, x, bad) for bad in BAD_P),
        }
    return {
        "p": p,
        "values": size,
        "zeroed": zeroed,
        "zeroed_sigma": zeroed_sigma,
        "mean_in": mean_in,
        "mean_out": mean_out,
        "mean_sigma": mean_sigma,
        "checks": checks,
        "ok": all(checks.values()),
    }


BAD_P = (-0.1, 1.0, 1.5, float("nan"))


def refuses(dropout, x: torch.Tensor, p: float) -> bool:
    try:
        dropout(x, p)
    except ValueError:
        return True
    return False


# ----------------------------------------------------------------------------- the command


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread: these tensors are tiny, so a second thread only costs time
    (on a busy machine, milliseconds per operation spent waiting for it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run(seed: int = 0) -> dict[str, Any]:
    with one_thread():
        rows = [check_case(case, seed) for case in CASES]
        dropout = check_dropout(seed)
    return {
        "seed": seed,
        "tolerances": {
            "float32": TOLERANCES[torch.float32],
            "float64": TOLERANCES[torch.float64],
            "gradient": GRADIENT_TOLERANCE,
        },
        "layers": rows,
        "dropout": dropout,
        "match": all(r["ok"] for r in rows) and dropout["ok"],
    }


def check_case(case: Case, seed: int = 0) -> dict[str, Any]:
    """One row of the table: every check of one case."""
    f32 = check_values(case, torch.float32, seed)
    f64 = check_values(case, torch.float64, seed)
    grad = check_gradients(case, seed)
    checks = {"float32": f32, "float64": f64, "gradients": grad}
    return {
        "layer": case.name,
        "float32_max_diff": f32.max_diff,
        "float64_max_diff": f64.max_diff,
        "gradcheck": grad.gradcheck and not grad.error,
        "gradient_max_diff": grad.max_diff,
        "ok": f32.ok and f64.ok and grad.ok,
        "errors": [f"{what}: {c.error}" for what, c in checks.items() if c.error],
    }


def format_report(result: dict[str, Any]) -> str:
    t = result["tolerances"]
    lines = [
        f"Our layers (theory/layers.py) vs torch.nn.functional, seed {result['seed']}",
        f"  {'layer':34} {'float32':>9} {'float64':>9}  gradcheck {'gradient':>9}  verdict",
    ]
    for r in result["layers"]:
        # float(): JSON carries inf and nan as strings
        keys = ("float32_max_diff", "float64_max_diff", "gradient_max_diff")
        f32, f64, grad = (float(r[k]) for k in keys)
        lines.append(
            f"  {r['layer']:34} {f32:9.1e} {f64:9.1e}"
            f"  {'pass' if r['gradcheck'] else 'FAIL':9} {grad:9.1e}"
            f"  {'ok' if r['ok'] else 'WRONG'}"
        )
        lines += [f"      {error}" for error in r["errors"]]
    d = result["dropout"]
    lines.append(
        f"Dropout, p = {d['p']} on {d['values']:,} values (random: checked by its statistics)"
    )
    lines.append(
        f"  zeroed {d['zeroed']:.2%} (expected {d['p']:.2%} +- {5 * d['zeroed_sigma']:.2%}),"
        f" mean {d['mean_out']:.4f} vs {d['mean_in']:.4f} (+- {5 * d['mean_sigma']:.4f})"
    )
    for name, ok in d["checks"].items():
        lines.append(f"  {name:34} {'ok' if ok else 'WRONG'}")
    lines += [
        "float32, float64: the largest |ours - PyTorch| of the outputs; gradcheck: our gradients",
        "against finite differences; gradient: the largest |ours - PyTorch| of the gradients.",
    ]
    if result["match"]:
        lines.append(
            f"Verdict: every layer matches PyTorch (tolerance {t['float32']:.0e} in float32, "
            f"{t['float64']:.0e} in float64)."
        )
    else:
        wrong = sum(not r["ok"] for r in result["layers"])
        what = f"{wrong} of {len(result['layers'])} cases" + ("" if d["ok"] else " and dropout")
        lines.append(f"Verdict: {what} differ from PyTorch: see the lines marked WRONG.")
    return "\n".join(lines)


def json_safe(value: Any) -> Any:
    """inf and nan as strings: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def cli(args: argparse.Namespace) -> int:
    result = run(args.seed)
    print(json.dumps(json_safe(result), indent=2) if args.json else format_report(result))
    return 0 if result["match"] else 1
