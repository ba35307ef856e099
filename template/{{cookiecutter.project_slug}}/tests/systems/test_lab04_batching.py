"""Lab 04 (labs/systems/04-batching.md): static and continuous batching, same tokens.

`python -m {{ cookiecutter.package_name }} labs check 04` runs this file.
"""

import json
import threading

import pytest
import torch

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.models.gpt import GPT, GPTConfig
from {{ cookiecutter.package_name }}.systems.batching import generate_padded
from {{ cookiecutter.package_name }}.systems.engine import Engine


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = GPTConfig(n_layer=2, n_head=4, n_embd=64, block_size=64, vocab_size=50)
    return GPT(config).eval()


@pytest.fixture(scope="module")
def prompts():
    g = torch.Generator().manual_seed(1)
    lengths = [1, 9, 4, 15, 2, 7]
    return [torch.randint(1, 50, (n,), generator=g).tolist() for n in lengths]


def alone(model, prompt, new_tokens):
    """What one prompt gets on its own, without any batching."""
    out = model.generate(torch.tensor([prompt]), new_tokens, temperature=0)
    return out[0, len(prompt) :].tolist()


def test_static_batch_with_left_padding_gives_each_prompt_its_own_tokens(model, prompts):
    batched = generate_padded(model, prompts, 20)
    assert batched == [alone(model, p, 20) for p in prompts]


def test_continuous_batching_gives_each_request_its_own_tokens(model, prompts):
    engine = Engine(model, max_batch=3)  # fewer slots than requests: they must take turns
    asked = [5, 30, 12, 1, 25, 8]
    requests = [engine.submit(p, n, temperature=0) for p, n in zip(prompts, asked, strict=True)]
    engine.run_until_idle()
    expected = [alone(model, p, n) for p, n in zip(prompts, asked, strict=True)]
    assert [r.tokens for r in requests] == expected
    assert all(r.finish_reason == "length" for r in requests)
    assert engine.free and sorted(engine.free) == [0, 1, 2]  # every slot given back
    # Requests left as soon as they were done: fewer decode steps than the longest alone x 2.
    assert engine.steps < sum(asked)


def test_the_engine_thread_streams_tokens_and_honours_seeds(model, prompts):
    engine = Engine(model, max_batch=2).start()
    try:
        seen = []
        first = engine.submit(prompts[1], 12, temperature=1.0, seed=3, on_token=seen.append)
        streamed = list(first.stream())
        second = engine.submit(prompts[1], 12, temperature=1.0, seed=3)
        assert second.done.wait(10)
        assert streamed == first.tokens == second.tokens == seen[:-1] and seen[-1] is None
        stopped = threading.Event()
        endless = engine.submit(prompts[0], 60, on_token=lambda t: t is None and stopped.set())
        endless.cancel()
        assert stopped.wait(10) and endless.finish_reason == "cancelled"
    finally:
        engine.stop()


def test_requests_that_do_not_fit_are_refused(model):
    engine = Engine(model, max_batch=1)
    with pytest.raises(ValueError, match="empty"):
        engine.submit([], 5)
    with pytest.raises(ValueError, match="context of 64 tokens"):
        engine.submit([1] * 60, 5)


def test_batching_command_compares_the_schedulers(tmp_path, capsys):
    plot = tmp_path / "batching.png"
    args = ["systems", "batching", "--json", "--set", "requests=6", "--set", "batch_sizes=[1, 4]"]
    args += ["--set", "new_tokens=[2, 10]", "--set", "n_layer=1", "--set", "n_embd=32"]
    assert main([*args, "--set", f"plot={plot}"]) == 0
    result = json.loads(capsys.readouterr().out)
    kinds = {(row["scheduler"], row["batch_size"]) for row in result["rows"]}
    assert kinds == {("static", 1), ("continuous", 1), ("static", 4), ("continuous", 4)}
    assert all(row["p95_latency_s"] >= row["p50_latency_s"] > 0 for row in result["rows"])
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_an_impossible_trace_is_a_clear_error(capsys):
    assert main(["systems", "batching", "--set", "new_tokens=[8, 200]"]) == 2
    assert "must fit in block_size" in capsys.readouterr().err


def test_a_failing_step_ends_the_requests_in_flight_and_the_engine_keeps_serving(
    model, prompts, monkeypatch
):
    from {{ cookiecutter.package_name }}.systems import engine as engine_module

    real_forward = engine_module.forward
    calls = {"n": 0}

    def fails_once(*args, **kwargs):  # e.g. out of memory on the first prefill
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("out of memory")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(engine_module, "forward", fails_once)
    engine = Engine(model, max_batch=2).start()
    try:
        failed = engine.submit(prompts[0], 5, temperature=0)
        assert failed.done.wait(10) and failed.finish_reason == "error"
        served = engine.submit(prompts[0], 5, temperature=0)
        assert served.done.wait(10) and served.tokens == alone(model, prompts[0], 5)
        assert engine.alive and sorted(engine.free) == [0, 1]
    finally:
        engine.stop()
