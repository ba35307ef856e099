"""Lab 03 (labs/theory/03-layers.md): every from-scratch layer agrees with PyTorch.

`labs check 03` runs this file. The first tests compare each layer of theory/layers.py with its
torch.nn.functional twin (values in float32 and float64, gradients); a failure names the case,
e.g. `test_values[conv2d-3x3-stride-2-padding-1-float64]`.

The mutants at the end prove those checks have teeth: each one is a layer with a typical bug
(a transposed kernel, a missing scale, a mask off by one) put in place of the real function for
one test (in memory; layers.py is not changed), and the test passes only if the very same checks
now fail.
"""

import json
import math
import re
from functools import partial

import pytest
import torch
import torch.nn as nn

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.models import gpt
from {{ cookiecutter.package_name }}.theory import compare, layers


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with compare.one_thread():  # tiny tensors: one thread is faster
        yield


def case_id(case: compare.Case) -> str:
    return re.sub(r"\W+", "-", case.name).strip("-")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", compare.CASES, ids=case_id)
def test_values(case, dtype):
    check = compare.check_values(case, dtype)
    assert check.ok, f"{case.name}, {dtype}: {check.describe()}"


@pytest.mark.parametrize("case", compare.CASES, ids=case_id)
def test_gradients(case):
    check = compare.check_gradients(case)
    assert check.ok, f"{case.name}: {check.describe()}"


def test_dropout_statistics():
    result = compare.check_dropout()
    failed = [name for name, ok in result["checks"].items() if not ok]
    assert not failed, f"dropout: {failed} ({result})"


@pytest.mark.parametrize("p", compare.BAD_P)
def test_dropout_refuses_a_bad_probability(p):
    with pytest.raises(ValueError, match="dropout probability"):
        layers.dropout(torch.ones(3), p)


# ----------------------------------------------------------------------------- modules


def randomised(module: nn.Module) -> nn.Module:
    """The module with random parameters (not the init's ones and zeros), so each one matters."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.5)
    return module.eval()


MODULE_PAIRS = {
    "Linear": (lambda: layers.Linear(5, 3), lambda: nn.Linear(5, 3), (4, 5)),
    "Linear no bias": (
        lambda: layers.Linear(5, 3, bias=False),
        lambda: nn.Linear(5, 3, bias=False),
        (2, 4, 5),
    ),
    "Conv2d": (
        lambda: layers.Conv2d(3, 4, 3, stride=2, padding=1),
        lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1),
        (2, 3, 9, 8),
    ),
    "MaxPool2d": (lambda: layers.MaxPool2d(2), lambda: nn.MaxPool2d(2), (2, 3, 6, 7)),
    "LayerNorm": (lambda: layers.LayerNorm(6), lambda: nn.LayerNorm(6), (2, 3, 6)),
    "LayerNorm no bias": (
        lambda: layers.LayerNorm(6, bias=False),
        lambda: nn.LayerNorm(6, bias=False),
        (2, 3, 6),
    ),
    "GELU": (layers.GELU, nn.GELU, (4, 5)),
    "ReLU": (layers.ReLU, nn.ReLU, (4, 5)),
    "CausalSelfAttention": (
        lambda: layers.CausalSelfAttention(12, 3, bias=True),
        lambda: gpt.CausalSelfAttention(gpt.GPTConfig(n_embd=12, n_head=3, bias=True)),
        (2, 7, 12),
    ),
    "CausalSelfAttention no bias": (
        lambda: layers.CausalSelfAttention(12, 3),
        lambda: gpt.CausalSelfAttention(gpt.GPTConfig(n_embd=12, n_head=3, bias=False)),
        (2, 7, 12),
    ),
}


@pytest.mark.parametrize("name", MODULE_PAIRS)
def test_module_loaded_with_a_torch_state_dict_agrees(name):
    make_ours, make_reference, shape = MODULE_PAIRS[name]
    torch.manual_seed(0)
    reference = randomised(make_reference())
    ours = make_ours().eval()
    ours.load_state_dict(reference.state_dict())  # same parameter names, nothing to translate
    x = torch.randn(shape)
    got, expected = ours(x), reference(x)
    assert got.shape == expected.shape, name
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6), f"{name}: {got} != {expected}"


def test_attention_weights_are_causal_rows_of_probabilities():
    torch.manual_seed(0)
    attention = layers.CausalSelfAttention(12, 3)
    _, weights = attention(torch.randn(2, 5, 12), return_weights=True)
    assert weights.shape == (2, 3, 5, 5)  # (B, nh, T, T)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 5)), "rows do not sum to 1"
    assert torch.all(weights.triu(1) == 0), "a position looks at a later one"


def test_dropout_module_follows_train_and_eval():
    drop, x = layers.Dropout(0.5), torch.ones(1000)
    assert (drop(x) == 0).any()
    assert torch.equal(drop.eval()(x), x)


def test_attention_refuses_heads_that_do_not_divide_the_width():
    with pytest.raises(ValueError, match="divisible"):
        layers.CausalSelfAttention(10, 3)


# ----------------------------------------------------------------------------- the command


def test_command_reports_every_layer_as_matching(capsys):
    assert main(["theory", "layers", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["match"] is True
    assert [r["layer"] for r in result["layers"]] == [c.name for c in compare.CASES]
    assert all(r["ok"] and r["gradcheck"] for r in result["layers"])
    assert result["dropout"]["ok"] is True
    text = compare.format_report(result)  # the text table, from the same numbers
    assert "Verdict: every layer matches PyTorch" in text
    assert "conv2d 3x3 stride 2 padding 1" in text


# ----------------------------------------------------------------------------- mutants
#
# Each mutant is the reference code with one mistake a learner could make. Most are the real
# function with its inputs bent (a transposed kernel); the others are the function rewritten
# with a `bug` switch, so the one changed line is easy to find.

REAL = {name: getattr(layers, name) for name in ("conv2d", "max_pool2d", "softmax")}


def conv2d_with(bug, x, weight, bias=None, stride=1, padding=0):
    N, C, _, _ = x.shape
    C_out, _, k, _ = weight.shape
    windows = layers.patches2d(layers.pad2d(x, padding), k, stride)  # (N, C, Ho, Wo, k, k)
    Ho, Wo = windows.shape[2], windows.shape[3]
    if bug == "rows not permuted":  # C left in front of Ho, Wo: rows mix pixels and channels
        cols = windows.reshape(N, Ho * Wo, C * k * k)
    else:
        cols = windows.permute(0, 2, 3, 1, 4, 5).reshape(N, Ho * Wo, C * k * k)
    out = cols @ weight.reshape(C_out, C * k * k).T  # (N, Ho*Wo, C_out)
    if bias is not None:
        out = out + bias
    if bug == "output not transposed":  # (N, Ho*Wo, C_out) read as (N, C_out, Ho*Wo)
        return out.reshape(N, C_out, Ho, Wo)
    return out.transpose(1, 2).reshape(N, C_out, Ho, Wo)


def max_pool2d_keeping_partial_windows(x, kernel_size, stride=None):
    """Pads the right and bottom edges so the last, incomplete window counts too."""
    stride = stride or kernel_size
    H, W = x.shape[-2:]
    pad_h, pad_w = (-(H - kernel_size)) % stride, (-(W - kernel_size)) % stride
    x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), value=-math.inf)
    return REAL["max_pool2d"](x, kernel_size, stride)


def layer_norm_with(bug, x, normalized_shape, weight=None, bias=None, eps=1e-5):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    dims = tuple(range(-len(normalized_shape), 0))
    if bug == "first axis":  # normalises each feature over the batch, like batch norm
        dims = (0,)
    if bug == "last axis only":
        dims = (-1,)
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    if bug == "unbiased variance":  # divides by n - 1
        var = x.var(dim=dims, keepdim=True)
    std = torch.sqrt(var + eps)
    if bug == "eps outside sqrt":
        std = torch.sqrt(var) + eps
    if bug == "no eps":
        std = torch.sqrt(var)
    if bug == "mean detached":  # same values, but no gradient flows through the mean
        mean = mean.detach()
    y = (x - mean) / std
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def gelu_tanh(x):
    """The tanh approximation of GPT-2's code: within 5e-4 of the exact GELU, but not it."""
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


class ReluLettingEveryGradientThrough(torch.autograd.Function):
    """Right values, wrong hand-written backward: forgets to zero the gradient where x < 0."""

    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        return grad


def softmax_over_everything(x, dim=-1):
    e = torch.exp(x - x.amax())
    return e / e.sum()


def log_softmax_mixing_shifts(x, dim=-1):
    shifted = x - x.amax(dim=dim, keepdim=True)
    return shifted - torch.log(torch.exp(x).sum(dim=dim, keepdim=True))  # x, not shifted


def cross_entropy_with(bug, logits, targets, ignore_index=-100):
    keep = targets != ignore_index
    if bug == "no ignore_index":
        keep = torch.ones_like(targets, dtype=torch.bool)
    logp = layers.log_softmax(logits[keep], dim=-1)
    if bug == "probabilities, not log":
        logp = layers.softmax(logits[keep], dim=-1)
    if bug == "a column per target":  # (M, M): every row's log-probability of every target
        return -logp[:, targets[keep]].mean()
    picked = logp.gather(1, targets[keep].unsqueeze(1)).squeeze(1)
    if bug == "sum":
        return -picked.sum()
    if bug == "divides by all rows":  # the ignored rows still count in the denominator
        return -picked.sum() / len(targets)
    return -picked.mean()


def attention_weights_with(bug, q, k, mask=None, is_causal=False):
    scale = math.sqrt(q.size(-1))
    if bug == "no scale":
        scale = 1.0
    if bug == "scale 1/d":
        scale = q.size(-1)
    if bug == "scale by the number of keys":
        scale = math.sqrt(k.size(-2))
    scores = q @ k.transpose(-2, -1) / scale
    if is_causal:
        mask = layers.causal_mask(q.size(-2), q.device)
    if mask is not None and bug == "mask inverted":  # True taken to mean "hide"
        mask = ~mask
    if mask is not None and bug != "mask after softmax":
        scores = scores.masked_fill(~mask, 0.0 if bug == "mask with 0" else float("-inf"))
    weights = layers.softmax(scores, dim=-2 if bug == "softmax over queries" else -1)
    if mask is not None and bug == "mask after softmax":  # rows no longer sum to 1
        weights = weights.masked_fill(~mask, 0.0)
    return weights


def causal_mask_with(diagonal, T, device=None, S=None):
    return torch.ones(T, T if S is None else S, dtype=torch.bool, device=device).tril(diagonal)


def causal_self_attention_with(
    bug, x, w_qkv, w_proj, n_head, b_qkv=None, b_proj=None, return_weights=False
):
    B, T, C = x.shape
    hs = C // n_head
    qkv = layers.linear(x, w_qkv, b_qkv)  # (B, T, 3C)
    if bug == "q, k, v per head":  # reads the 3C columns as (nh, 3, hs), not (3, nh, hs)
        q, k, v = qkv.view(B, T, n_head, 3, hs).permute(3, 0, 2, 1, 4)
    else:
        q, k, v = qkv.view(B, T, 3, n_head, hs).permute(2, 0, 3, 1, 4)
    weights = layers.attention_weights(q, k, is_causal=bug != "not causal")
    y = weights @ v  # (B, nh, T, hs)
    if bug == "heads merged without transpose":
        y = y.reshape(B, T, C)
    else:
        y = y.transpose(1, 2).reshape(B, T, C)
    y = layers.linear(y, w_proj, b_proj)
    return (y, weights) if return_weights else y


def dropout_with(bug, x, p, training=True, generator=None):
    if bug != "accepts any p" and not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if (not training and bug != "drops in eval mode") or p == 0:
        return x
    shape = x.shape[-1:] if bug == "one mask for every row" else x.shape
    if bug == "ignores the generator":
        generator = None
    keep = torch.rand(shape, generator=generator, device=x.device) >= p
    if bug == "p is the keep probability":
        keep = ~keep
    if bug == "no rescale":
        return x * keep
    return x * keep / (1 - p)


ATTENTION = ("attention", "causal_self_attention")

# (name, function of layers.py replaced, the broken version, the cases that must catch it;
#  "dropout" = check_dropout)
MUTANTS = [
    (
        "linear: reshape instead of transpose",
        "linear",
        lambda x, w, b=None: x @ w.reshape(w.shape[1], w.shape[0]) + (0 if b is None else b),
        ("linear",),
    ),
    (
        "conv2d: kernel transposed",
        "conv2d",
        lambda x, w, b=None, stride=1, padding=0: REAL["conv2d"](
            x, w.transpose(-1, -2), b, stride, padding
        ),
        ("conv2d",),
    ),
    (
        "conv2d: kernel flipped (true convolution)",
        "conv2d",
        lambda x, w, b=None, stride=1, padding=0: REAL["conv2d"](
            x, w.flip(-2, -1), b, stride, padding
        ),
        ("conv2d",),
    ),
    (
        "conv2d: ignores padding",
        "conv2d",
        lambda x, w, b=None, stride=1, padding=0: REAL["conv2d"](x, w, b, stride, 0),
        ("conv2d",),
    ),
    (
        "conv2d: ignores stride",
        "conv2d",
        lambda x, w, b=None, stride=1, padding=0: REAL["conv2d"](x, w, b, 1, padding),
        ("conv2d",),
    ),
    (
        "conv2d: im2col rows not permuted",
        "conv2d",
        partial(conv2d_with, "rows not permuted"),
        ("conv2d",),
    ),
    (
        "conv2d: output not transposed",
        "conv2d",
        partial(conv2d_with, "output not transposed"),
        ("conv2d",),
    ),
    (
        "max_pool2d: stride is always the kernel size",
        "max_pool2d",
        lambda x, kernel_size, stride=None: REAL["max_pool2d"](x, kernel_size),
        ("max_pool2d",),
    ),
    (
        "max_pool2d: keeps the partial window at the edge",
        "max_pool2d",
        max_pool2d_keeping_partial_windows,
        ("max_pool2d",),
    ),
    (
        "layer_norm: unbiased variance",
        "layer_norm",
        partial(layer_norm_with, "unbiased variance"),
        ("layer_norm",),
    ),
    (
        "layer_norm: normalises over the first axis",
        "layer_norm",
        partial(layer_norm_with, "first axis"),
        ("layer_norm",),
    ),
    (
        "layer_norm: normalises over the last axis only",
        "layer_norm",
        partial(layer_norm_with, "last axis only"),
        ("layer_norm",),
    ),
    (
        "layer_norm: eps outside the square root",
        "layer_norm",
        partial(layer_norm_with, "eps outside sqrt"),
        ("layer_norm",),
    ),
    ("layer_norm: no eps", "layer_norm", partial(layer_norm_with, "no eps"), ("layer_norm",)),
    (
        "layer_norm: mean detached (values right, gradients wrong)",
        "layer_norm",
        partial(layer_norm_with, "mean detached"),
        ("layer_norm",),
    ),
    ("gelu: tanh approximation", "gelu", gelu_tanh, ("gelu",)),
    ("gelu: sigmoid approximation", "gelu", lambda x: x * torch.sigmoid(1.702 * x), ("gelu",)),
    (
        "relu: backward lets every gradient through",
        "relu",
        ReluLettingEveryGradientThrough.apply,
        ("relu",),
    ),
    (
        "softmax: always over the last axis",
        "softmax",
        lambda x, dim=-1: REAL["softmax"](x, dim=-1),
        ("softmax",),
    ),
    ("softmax: normalised over every element", "softmax", softmax_over_everything, ("softmax",)),
    (
        "log_softmax: shifted minus log-sum-exp of the unshifted",
        "log_softmax",
        log_softmax_mixing_shifts,
        ("log_softmax",),
    ),
    (
        "cross_entropy: sum, not mean",
        "cross_entropy",
        partial(cross_entropy_with, "sum"),
        ("cross_entropy",),
    ),
    (
        "cross_entropy: ignore_index not ignored",
        "cross_entropy",
        partial(cross_entropy_with, "no ignore_index"),
        ("cross_entropy",),
    ),
    (
        "cross_entropy: divides by every row, ignored ones too",
        "cross_entropy",
        partial(cross_entropy_with, "divides by all rows"),
        ("cross_entropy",),
    ),
    (
        "cross_entropy: a column per target",
        "cross_entropy",
        partial(cross_entropy_with, "a column per target"),
        ("cross_entropy",),
    ),
    (
        "cross_entropy: probabilities, not log-probabilities",
        "cross_entropy",
        partial(cross_entropy_with, "probabilities, not log"),
        ("cross_entropy",),
    ),
    (
        "attention: no 1/sqrt(d) scale",
        "attention_weights",
        partial(attention_weights_with, "no scale"),
        ATTENTION,
    ),
    (
        "attention: scale 1/d",
        "attention_weights",
        partial(attention_weights_with, "scale 1/d"),
        ATTENTION,
    ),
    (
        "attention: scale by the number of keys",
        "attention_weights",
        partial(attention_weights_with, "scale by the number of keys"),
        ATTENTION,
    ),
    (
        "attention: softmax over the query axis",
        "attention_weights",
        partial(attention_weights_with, "softmax over queries"),
        ATTENTION,
    ),
    (
        "attention: masked scores set to 0, not -inf",
        "attention_weights",
        partial(attention_weights_with, "mask with 0"),
        ATTENTION,
    ),
    (
        "attention: mask inverted (True = hide)",
        "attention_weights",
        partial(attention_weights_with, "mask inverted"),
        ATTENTION,
    ),
    (
        "attention: mask applied after the softmax",
        "attention_weights",
        partial(attention_weights_with, "mask after softmax"),
        ATTENTION,
    ),
    (
        "causal mask: tril(-1), hides the diagonal",
        "causal_mask",
        partial(causal_mask_with, -1),
        ATTENTION,
    ),
    (
        "causal mask: tril(1), shows the next token",
        "causal_mask",
        partial(causal_mask_with, 1),
        ATTENTION,
    ),
    (
        "causal_self_attention: q, k, v split per head",
        "causal_self_attention",
        partial(causal_self_attention_with, "q, k, v per head"),
        ("causal_self_attention",),
    ),
    (
        "causal_self_attention: heads merged without transpose",
        "causal_self_attention",
        partial(causal_self_attention_with, "heads merged without transpose"),
        ("causal_self_attention",),
    ),
    (
        "causal_self_attention: not causal",
        "causal_self_attention",
        partial(causal_self_attention_with, "not causal"),
        ("causal_self_attention",),
    ),
    ("dropout: no 1/(1-p) rescale", "dropout", partial(dropout_with, "no rescale"), "dropout"),
    (
        "dropout: p taken as the keep probability",
        "dropout",
        partial(dropout_with, "p is the keep probability"),
        "dropout",
    ),
    (
        "dropout: drops in eval mode",
        "dropout",
        partial(dropout_with, "drops in eval mode"),
        "dropout",
    ),
    (
        "dropout: ignores the generator",
        "dropout",
        partial(dropout_with, "ignores the generator"),
        "dropout",
    ),
    (
        "dropout: one mask for every row",
        "dropout",
        partial(dropout_with, "one mask for every row"),
        "dropout",
    ),
    ("dropout: accepts any p", "dropout", partial(dropout_with, "accepts any p"), "dropout"),
]


@pytest.mark.parametrize(
    ("name", "function", "mutant", "cases"), MUTANTS, ids=[m[0] for m in MUTANTS]
)
def test_mutant_is_caught(monkeypatch, name, function, mutant, cases):
    monkeypatch.setattr(layers, function, mutant)  # layers.py calls it through this name too
    if cases == "dropout":
        assert not compare.check_dropout()["ok"], f"not caught: {name}"
        return
    chosen = [case for case in compare.CASES if case.name.startswith(cases)]
    assert chosen, f"no case starts with {cases}"
    failure = next(filter(None, (compare.first_failure(case) for case in chosen)), None)
    assert failure, f"not caught: {name}"
    # Caught for the right reason, not because the mutant does not fit the function's signature.
    assert "raised TypeError" not in failure, failure


def test_command_exits_1_and_names_the_wrong_layers(monkeypatch, capsys):
    monkeypatch.setattr(layers, "causal_mask", partial(causal_mask_with, -1))  # rows of nan
    assert main(["theory", "layers", "--json"]) == 1
    result = json.loads(capsys.readouterr().out, parse_constant=refuse_non_json_number)
    wrong = [r["layer"] for r in result["layers"] if not r["ok"]]
    assert wrong == ["attention is_causal", "causal_self_attention vs gpt.py"]
    text = compare.format_report(result)
    assert re.search(r"attention is_causal +nan +nan", text)
    assert f"Verdict: 2 of {len(compare.CASES)} cases differ from PyTorch" in text


def refuse_non_json_number(name: str):
    raise AssertionError(f"{name} is not JSON")
