"""Lab 06 (labs/systems/06-compile.md): torch.compile on and off, training and decoding.

`python -m {{ cookiecutter.package_name }} labs check 06` runs this file.
The fast tests use the `eager` and `aot_eager` backends, which trace like inductor but generate
no code: they check the wiring and that the outputs equal eager ones. One slow test compiles
with inductor for real.
"""

import json

import pytest
import torch
from torch._inductor import config as inductor_config

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.models.gpt import GPT, GPTConfig
from {{ cookiecutter.package_name }}.systems import compiling
from {{ cookiecutter.package_name }}.systems.compiling import (
    CompileError,
    CompileSettings,
    decode_run,
    decode_step,
    run,
    watch_compiles,
)
from {{ cookiecutter.package_name }}.systems.kv_cache import forward as cache_forward

SMALL = {
    "n_layer": 1,
    "n_head": 2,
    "n_embd": 32,
    "block_size": 16,
    "batch_size": 2,
    "steps": 2,
    "new_tokens": 6,
    "repeats": 1,
    "device": "cpu",
}


def small_args(*extra: str) -> list[str]:
    args = ["systems", "compile"]
    for key, value in SMALL.items():
        args += ["--set", f"{key}={value}"]
    return [*args, *extra]


def small_model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=64)).eval()


def test_decode_step_matches_kv_cache_forward_and_compiles_once():
    model = small_model()
    first = torch.tensor([[3], [7]])  # two sequences decoded together
    ref_tokens, ref_logits = decode_run(cache_forward, model, first, 10)
    tokens, logits = decode_run(decode_step, model, first, 10)
    assert torch.equal(tokens, ref_tokens)
    assert torch.allclose(logits, ref_logits, atol=1e-5)
    with watch_compiles() as compiles:
        step = torch.compile(decode_step, backend="eager")
        tokens, _ = decode_run(step, model, first, 10)
    assert torch.equal(tokens, ref_tokens)
    # Static shapes: one graph serves all 10 steps, whatever the position.
    assert compiles["graphs"] == 1 and compiles["recompiles"] == 0
    assert compiles["graph_breaks"] == 0


def test_compiled_training_and_decoding_equal_eager(capsys):
    assert main(small_args("--set", "backend=aot_eager", "--json")) == 0
    result = json.loads(capsys.readouterr().out)
    train, dec = result["training"], result["decoding"]
    assert train["equal"] and train["max_loss_diff"] <= result["tolerance"]
    assert len(train["losses"]) == SMALL["steps"]
    assert train["graphs"] >= 1 and train["speedup"] > 0 and train["compile_s"] >= 0
    for name in ("eager", "compiled"):
        assert train[name]["tokens_per_s"] > 0 and train[name]["first_run_s"] > 0
    assert dec["equal"] and dec["same_tokens"]
    assert dec["graphs"] == 1 and dec["recompiles"] == 0 and dec["graph_breaks"] == 0
    assert list(dec["rows"]) == [
        "eager kv_cache.forward",
        "eager decode_step (padded)",
        "compiled decode_step",
    ]


def test_kv_cache_forward_as_is_breaks_the_graph_and_recompiles():
    result = run(CompileSettings(backend="eager", decode="as_is", **SMALL))
    dec = result["decoding"]
    # int(start.max()) cannot be traced (graph break) and the length changes every step.
    assert dec["graph_breaks"] > 0 and dec["recompiles"] >= 1 and dec["graphs"] > 1
    assert dec["equal"]
    report = compiling.format_report(result)
    assert "compiled kv_cache.forward" in report and "same tokens: yes" in report


def test_missing_cpp_compiler_is_a_clear_error(capsys):
    # inductor's own switch for the compiler it looks for (patch() restores it afterwards)
    with inductor_config.patch({"cpp.cxx": (None, "no-such-c++-compiler")}):
        with pytest.raises(CompileError, match=r"C\+\+ compiler"):
            compiling.check_toolchain("inductor", "cpu")
        assert main(small_args("--set", "backend=inductor")) == 2
    err = capsys.readouterr().err
    assert "C++ compiler" in err and "backend=aot_eager" in err and "Traceback" not in err


def test_mode_needs_inductor(capsys):
    assert main(small_args("--set", "backend=eager", "--set", "mode=max-autotune")) == 2
    assert "mode applies to backend=inductor" in capsys.readouterr().err


@pytest.mark.slow
def test_inductor_compiles_and_matches_eager():
    result = run(CompileSettings(backend="inductor", **SMALL))
    assert result["training"]["equal"] and result["decoding"]["equal"]
    assert result["decoding"]["recompiles"] == 0
    assert result["training"]["compile_s"] > 0


@pytest.mark.slow
def test_cold_compile_turns_inductors_caches_off():
    settings = CompileSettings(backend="inductor", cold_compile=True)
    with compiling.inductor_caches(settings):
        assert inductor_config.force_disable_caches
        # a real C++ compile, with no cached code to load (and no warning about it)
        double = torch.compile(lambda x: x * 2 + 1, backend="inductor")
        assert torch.equal(double(torch.arange(4.0)), torch.tensor([1.0, 3.0, 5.0, 7.0]))
    assert not inductor_config.force_disable_caches
    torch._dynamo.reset()
