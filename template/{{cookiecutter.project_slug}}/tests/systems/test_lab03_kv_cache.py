"""Lab 03 (labs/systems/03-kv-cache.md): decoding with a KV-cache gives the same tokens, faster.

`python -m {{ cookiecutter.package_name }} labs check 03` runs this file.
"""

import json

import pytest
import torch

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.models.gpt import GPT, GPTConfig
from {{ cookiecutter.package_name }}.systems import kv_cache


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = GPTConfig(n_layer=2, n_head=4, n_embd=64, block_size=48, vocab_size=50)
    return GPT(config).eval()


def test_cached_decoding_gives_the_same_tokens_as_generate(model):
    prompt = torch.randint(0, 50, (3, 7), generator=torch.Generator().manual_seed(1))
    expected = model.generate(prompt, 30, temperature=0)
    assert torch.equal(kv_cache.generate(model, prompt, 30, temperature=0), expected)


def test_every_cached_step_gives_the_logits_of_the_whole_sequence(model):
    tokens = torch.randint(0, 50, (2, 40), generator=torch.Generator().manual_seed(2))
    cache = kv_cache.KVCache.allocate(model, 2, 40)
    start = torch.zeros(2, dtype=torch.long)
    logits = kv_cache.forward(model, cache, tokens[:, :5], start)  # the prompt at once
    for t in range(5, 40):
        full, _ = model(tokens[:, :t])  # no cache: the whole sequence again
        torch.testing.assert_close(logits, full[:, -1], atol=1e-5, rtol=0)
        logits = kv_cache.forward(model, cache, tokens[:, t : t + 1], start + t)


def test_sampling_follows_the_generator(model):
    prompt = torch.tensor([[1, 2, 3]])

    def draw(seed):
        generator = torch.Generator().manual_seed(seed)
        return kv_cache.generate(model, prompt, 20, temperature=1.0, top_k=10, generator=generator)

    assert torch.equal(draw(5), draw(5))
    assert not torch.equal(draw(5), draw(6))


def test_a_sequence_longer_than_the_context_is_refused(model):
    with pytest.raises(ValueError, match="block_size 48"):
        kv_cache.generate(model, torch.zeros(1, 40, dtype=torch.long), 9)


def test_kv_cache_command_reports_the_speedup(tmp_path, capsys):
    plot = tmp_path / "speedup.png"
    args = ["systems", "kv-cache", "--json", "--set", "sizes=[1x64, 2x128]"]
    args += ["--set", "new_tokens=24", "--set", "repeats=1", "--set", f"plot={plot}"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert [row["size"] for row in result["rows"]] == ["1x64", "2x128"]
    assert all(row["same_tokens"] and row["speedup"] > 0 for row in result["rows"])
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_a_bad_size_is_a_clear_error(capsys):
    assert main(["systems", "kv-cache", "--set", "sizes=[6x500]"]) == 2
    assert "LAYERSxWIDTH" in capsys.readouterr().err
