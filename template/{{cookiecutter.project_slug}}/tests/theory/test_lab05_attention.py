"""Lab 05 (labs/theory/05-attention.md): the attention maps of a trained mini-GPT.

`labs check 05` runs this file. A tiny addition model is trained once, for real (a few
seconds). Its maps come from the from-scratch blocks, so these tests also check your
`attention_weights` in theory/layers.py: the first test compares it with PyTorch's own attention,
the others need the whole model's logits to come out right.
"""

import math

import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.sample import load_for_generation
from {{ cookiecutter.package_name }}.theory import attention, layers

PROMPT = "12+34="
REFERENCE = layers.attention_weights  # the shipped one, for the broken variants below


def assert_close(got, expected, tol: float) -> None:
    """Largest difference within tol (torch.testing's first call costs seconds of imports)."""
    diff = (got - expected).abs().max().item()
    assert diff <= tol, f"largest difference {diff:.2e} > {tol:.0e}"


@pytest.fixture(scope="module")
def run_dir(addition_run):
    return addition_run  # tests/theory/conftest.py


@pytest.fixture(scope="module")
def model_and_ids(run_dir):
    model, codec = load_for_generation(run_dir)
    return model, torch.tensor(codec.encode(PROMPT))


def test_attention_weights_matches_pytorch():
    """weights @ v must be F.scaled_dot_product_attention, causal and with a boolean mask."""
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 7, 8, dtype=torch.float64).unbind(0)  # (B, nh, T, hs) each
    weights = layers.attention_weights(q, k, is_causal=True)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert_close(weights @ v, expected, 1e-12)
    mask = torch.rand(7, 7) > 0.3
    mask[:, 0] = True  # every query may look somewhere
    weights = layers.attention_weights(q, k, mask=mask)
    assert_close(weights @ v, F.scaled_dot_product_attention(q, k, v, mask), 1e-12)


def test_maps_have_one_row_per_character_summing_to_one(model_and_ids):
    model, ids = model_and_ids
    maps = attention.attention_maps(model, ids)
    T = len(PROMPT)
    assert maps.shape == (model.config.n_layer, model.config.n_head, T, T)
    assert_close(maps.sum(dim=-1), torch.ones(2, 2, T), 1e-6)
    assert (maps >= 0).all()


def test_maps_are_strictly_causal(model_and_ids):
    """No character looks ahead: everything right of the diagonal is exactly 0."""
    model, ids = model_and_ids
    maps = attention.attention_maps(model, ids)
    assert (maps.triu(diagonal=1) == 0).all()
    assert (maps.diagonal(dim1=-2, dim2=-1) > 0).all()  # each may look at itself


def test_the_from_scratch_forward_gives_the_models_logits(model_and_ids):
    """The pictures are of this model: the copy computes exactly what GPT.forward computes."""
    model, ids = model_and_ids
    logits, maps = attention.forward_with_attention(model, ids)
    expected, _ = model(ids[None], ids[None])
    assert_close(logits, expected[0], 1e-5)
    assert maps.shape[:2] == (2, 2)


def test_the_converted_blocks_are_made_once_per_model_and_weights(model_and_ids):
    model, _ = model_and_ids
    blocks = attention.from_scratch_blocks(model)
    assert attention.from_scratch_blocks(model) is blocks
    with torch.no_grad():
        model.ln_f.weight.mul_(1.0)  # changed in place (same values): copied again
    assert attention.from_scratch_blocks(model) is not blocks


# Broken versions of attention_weights, as a learner might write them: each must be caught.
def without_scale(q, k, mask=None, is_causal=False):
    return REFERENCE(q * math.sqrt(q.size(-1)), k, mask, is_causal)  # no 1/sqrt(hs)


def without_mask(q, k, mask=None, is_causal=False):
    return REFERENCE(q, k)  # looks ahead


def softmax_over_queries(q, k, mask=None, is_causal=False):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    scores = scores.masked_fill(~layers.causal_mask(q.size(-2), q.device), float("-inf"))
    return layers.softmax(scores, dim=-2)  # columns sum to 1 instead of rows


@pytest.mark.parametrize("broken", [without_scale, without_mask, softmax_over_queries])
def test_a_wrong_attention_is_refused_not_drawn(model_and_ids, monkeypatch, broken):
    model, ids = model_and_ids
    monkeypatch.setattr(layers, "attention_weights", broken)
    with pytest.raises(attention.AttentionMismatch, match="do not reproduce the model's logits"):
        attention.attention_maps(model, ids)


def test_cli_writes_a_png_and_says_where_the_last_character_looks(run_dir, tmp_path, capsys):
    out = tmp_path / "new" / "folder" / "att.png"  # missing folders are created
    assert main(["theory", "attention", str(run_dir), "--prompt", PROMPT, "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert f"wrote {out} (2 layers x 2 heads, 6 characters)" in stdout
    assert "The last character '=' looks most at:" in stdout
    assert stdout.count("  layer ") == 4 and "layer 2  head 2  '" in stdout
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.width > 300 and picture.height > 300
        picture.verify()


def test_cli_takes_a_checkpoint_file_and_writes_next_to_its_run(run_dir, capsys):
    (checkpoint,) = sorted((run_dir / "checkpoints").glob("*.pt"))[-1:]
    assert main(["theory", "attention", str(checkpoint), "--prompt", "9"]) == 0
    assert (run_dir / "attention.png").is_file()
    assert "(2 layers x 2 heads, 1 character)" in capsys.readouterr().out


def test_cli_keeps_the_last_block_size_characters_of_a_long_prompt(run_dir, tmp_path, capsys):
    prompt = "1+" * 20  # 40 characters; the model's context is 16
    out = tmp_path / "long.png"
    assert main(["theory", "attention", str(run_dir), "--prompt", prompt, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "note: the prompt has 40 characters, more than the model's context of 16" in (
        captured.err
    )
    assert "16 characters)" in captured.out and out.is_file()


@pytest.mark.parametrize(
    ("where", "prompt", "message"),
    [
        ("run", "12*34=", "the prompt has characters this model never saw: '*'; use only the 12"),
        ("run", "", "the prompt is empty"),
        ("missing", PROMPT, "is neither a run folder nor a checkpoint file"),
        ("empty", PROMPT, "has no checkpoints: train a model first"),
        ("out-is-folder", PROMPT, "is a folder: give a file name"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(run_dir, tmp_path, capsys, where, prompt, message):
    args = ["theory", "attention", str(run_dir), "--prompt", prompt]
    if where == "missing":
        args[2] = str(tmp_path / "no-such-run")
    elif where == "empty":
        args[2] = str(tmp_path)
    elif where == "out-is-folder":
        args += ["--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    if where == "run" and prompt:
        assert "'0123456789+='" in err  # the characters it does know
