"""The demo's Generate served by the KV-cache engine (systems/demo_tab.py).

Skipped in a project rendered without the demo (it has no demo_tab.py and no Gradio).
"""

import threading

import pytest
import torch

from {{ cookiecutter.package_name }}.models.gpt import GPT, GPTConfig
from {{ cookiecutter.package_name }}.sample import stream_text as sliding_window
from {{ cookiecutter.package_name }}.tasks.text import Codec

from ..conftest import PACKAGE

demo_tab = pytest.importorskip(f"{PACKAGE}.systems.demo_tab", reason="this project has no demo")
demo = pytest.importorskip(f"{PACKAGE}.demo")

CODEC = Codec.from_text("the quick brown fox jumps over the lazy dog.\n")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=48)
    config.vocab_size = CODEC.vocab_size
    model = GPT(config).eval()
    yield model
    demo_tab.engine_for(model).stop()


def test_the_demo_uses_the_engine_for_generate():
    assert any(getattr(tab, "stream_text", None) for tab in demo.track_tabs())


def test_engine_text_is_the_text_of_plain_generation(model):
    engine_out = list(demo_tab.stream_text(model, CODEC, "the fox", 20, temperature=0))
    plain_out = list(sliding_window(model, CODEC, "the fox", 20, temperature=0))
    assert engine_out[-1] == plain_out[-1]
    assert all(text.startswith("the fox") for text in engine_out)


def test_a_text_longer_than_the_context_falls_back_to_the_sliding_window(model):
    out = list(demo_tab.stream_text(model, CODEC, "the lazy dog", 60, temperature=0))
    assert out[-1] == list(sliding_window(model, CODEC, "the lazy dog", 60, temperature=0))[-1]


def test_two_visitors_share_one_engine(model):
    results = {}

    def visit(name, prompt):
        results[name] = list(demo_tab.stream_text(model, CODEC, prompt, 25, temperature=0))[-1]

    threads = [threading.Thread(target=visit, args=(n, p)) for n, p in (("a", "the"), ("b", "dog"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results["a"] == list(sliding_window(model, CODEC, "the", 25, temperature=0))[-1]
    assert results["b"] == list(sliding_window(model, CODEC, "dog", 25, temperature=0))[-1]
    assert demo_tab.engine_for(model).steps > 0
