"""Lab 06 (labs/theory/06-transformer-block.md): the from-scratch block is models/gpt.py's block.

`labs check 06` runs this file. Both blocks get the same random weights (not the initial zeros
and ones, so every weight matters) and the same input, in float64; outputs and gradients must
agree to rounding. The last tests break the block on purpose, the way a first attempt often
is, and show that the comparison notices.
"""

import json

import pytest
import torch

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.models.gpt import Block as GPTBlock
from {{ cookiecutter.package_name }}.models.gpt import GPTConfig
from {{ cookiecutter.package_name }}.theory import layers
from {{ cookiecutter.package_name }}.theory.block import MLP, Block, compare

REFERENCE_ATTENTION = layers.attention_weights


def assert_close(got, expected, tol: float) -> None:
    """Largest difference within tol (torch.testing's first call costs seconds of imports)."""
    diff = (got - expected).abs().max().item()
    assert diff <= tol, f"largest difference {diff:.2e} > {tol:.0e}"


def random_pair(bias: bool, dtype=torch.float64, seed: int = 0):
    """A models.gpt.Block with random weights and our copy of it."""
    torch.manual_seed(seed)
    reference = GPTBlock(GPTConfig(n_embd=32, n_head=4, bias=bias, dropout=0.0)).to(dtype)
    with torch.no_grad():
        for p in reference.parameters():
            p.normal_(0, 0.3)
    return reference, Block.from_gpt(reference)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_block_matches_models_gpt_block(bias, mode):
    """Outputs, input gradients and weight gradients, in eval and (dropout 0) train mode."""
    reference, ours = random_pair(bias)
    reference.train(mode == "train")
    ours.train(mode == "train")
    x = torch.randn(2, 9, 32, dtype=torch.float64, requires_grad=True)
    expected, got = reference(x), ours(x)
    assert_close(got, expected, 1e-10)
    (grad_expected,) = torch.autograd.grad(expected.square().sum(), x)
    got.square().sum().backward()
    assert_close(x.grad, grad_expected, 1e-10)
    expected = reference(x)
    expected.square().sum().backward()
    theirs = dict(reference.named_parameters())
    for name, p in ours.named_parameters():
        assert (p.grad - theirs[name].grad).abs().max() <= 1e-10, name


def test_block_returns_the_attention_weights():
    _, ours = random_pair(bias=False)
    x = torch.randn(2, 9, 32, dtype=torch.float64)
    y, weights = ours(x, return_weights=True)
    assert y.shape == x.shape and weights.shape == (2, 4, 9, 9)
    assert_close(weights.sum(-1), torch.ones(2, 4, 9, dtype=torch.float64), 1e-12)
    assert_close(ours(x), y, 0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_from_gpt_keeps_the_dtype_and_the_exact_weights(dtype):
    reference, ours = random_pair(bias=True, dtype=dtype)
    theirs = dict(reference.named_parameters())
    assert set(theirs) == {name for name, _ in ours.named_parameters()}
    for name, p in ours.named_parameters():
        assert p.dtype == dtype, name
        assert torch.equal(p, theirs[name]), name  # a copy, not rounded through another dtype
        assert p.data_ptr() != theirs[name].data_ptr()  # and not shared: ours can change alone


def test_cli_block_json(capsys):
    assert main(["theory", "block", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["match"] is True
    assert [row["bias"] for row in result["rows"]] == [False, True]
    assert all(row["output_max_diff"] <= result["tolerance"] for row in result["rows"])


def test_cli_block_text(capsys):
    assert main(["theory", "block", "--seed", "3"]) == 0
    assert "Verdict: the two blocks match" in capsys.readouterr().out


# Broken blocks, as a first attempt at Block.forward often is: the comparison must fail.
def post_norm(self, x, return_weights=False):
    attended, weights = self.attn(x, return_weights=True)
    x = self.ln_1(x + attended)  # normalising after the residual addition (the 2017 paper)
    x = self.ln_2(x + self.mlp(x))
    return (x, weights) if return_weights else x


def without_residual(self, x, return_weights=False):
    attended, weights = self.attn(self.ln_1(x), return_weights=True)
    x = attended  # the input is lost: no "x +"
    x = x + self.mlp(self.ln_2(x))
    return (x, weights) if return_weights else x


def relu_mlp(self, x):
    return self.c_proj(layers.relu(self.c_fc(x)))


def without_causal_mask(q, k, mask=None, is_causal=False):
    return REFERENCE_ATTENTION(q, k)


@pytest.mark.parametrize(
    ("target", "name", "broken"),
    [
        (Block, "forward", post_norm),
        (Block, "forward", without_residual),
        (MLP, "forward", relu_mlp),
        (layers, "attention_weights", without_causal_mask),
    ],
    ids=["post-norm", "no-residual", "relu-mlp", "no-causal-mask"],
)
def test_a_broken_block_is_caught(monkeypatch, capsys, target, name, broken):
    monkeypatch.setattr(target, name, broken)  # test_cli_block_json: unbroken, they match
    result = compare()
    assert result["match"] is False
    assert all(row["output_max_diff"] > 1e-3 for row in result["rows"])
    assert main(["theory", "block"]) == 1
    assert "Verdict: the two blocks DIFFER" in capsys.readouterr().out
