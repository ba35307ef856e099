"""Lab 01 (labs/systems/01-profile.md): profile a few training steps of the mini-GPT.

`python -m {{ cookiecutter.package_name }} labs check 01` runs this file. The model is tiny
here so the tests take seconds; the lab's command profiles the configs/tiny.yaml shape.
"""

import json

import pytest
import torch

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.device import pick_precision
from {{ cookiecutter.package_name }}.models.gpt import GPT, GPTConfig
from {{ cookiecutter.package_name }}.systems.profiling import PHASES, train_step

SMALL = {
    "n_layer": 1,
    "n_head": 2,
    "n_embd": 32,
    "block_size": 16,
    "batch_size": 2,
    "steps": 2,
    "warmup": 1,
    "device": "cpu",
}


def small_args(tmp_path, *extra: str) -> list[str]:
    args = ["systems", "profile", "--set", f"out={tmp_path / 'trace.json'}"]
    for key, value in SMALL.items():
        args += ["--set", f"{key}={value}"]
    return [*args, *extra]


def test_train_step_lowers_the_loss():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=50))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    x = torch.randint(0, 50, (4, 16))
    y = torch.randint(0, 50, (4, 16))
    precision = pick_precision("cpu", "float32")
    losses = [train_step(model, optimizer, scaler, x, y, precision) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]  # one fixed batch: the model learns it by heart
    assert all(p.grad is None for p in model.parameters())  # gradients cleared for the next step


def test_profile_writes_a_chrome_trace_and_the_top_operators(tmp_path, capsys):
    assert main(small_args(tmp_path, "--json")) == 0
    result = json.loads(capsys.readouterr().out)
    trace = json.loads((tmp_path / "trace.json").read_text(encoding="utf-8"))
    names = {event.get("name") for event in trace["traceEvents"]}
    assert set(PHASES) <= names  # the phases of every step are on the timeline
    assert "aten::mm" in names  # and the matrix multiplications inside them
    ops = result["top_operators"]
    assert ops and all(op["name"] not in PHASES for op in ops)
    assert [op["self_ms"] for op in ops] == sorted((op["self_ms"] for op in ops), reverse=True)
    assert all(share > 0 for share in result["phases"].values())
    assert sum(result["phases"].values()) == pytest.approx(1.0)
    assert result["steps"] == SMALL["steps"] and result["tokens_per_s"] > 0


def test_profile_prints_a_table(tmp_path, capsys):
    assert main(small_args(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "Top operators by self CPU time" in out
    assert "forward" in out and "backward" in out and "optimizer" in out
    assert str(tmp_path / "trace.json") in out


def test_bad_setting_is_a_one_line_error(tmp_path, capsys):
    assert main(small_args(tmp_path, "--set", "n_head=3")) == 2
    assert "n_head" in capsys.readouterr().err


def test_profile_also_traces_kv_cache_decoding(tmp_path, capsys):
    assert main(small_args(tmp_path, "--set", "decode_tokens=6")) == 0
    out = capsys.readouterr().out
    assert "Decoding 6 tokens with the KV-cache" in out
    trace = json.loads((tmp_path / "trace-decode.json").read_text(encoding="utf-8"))
    names = {event.get("name") for event in trace["traceEvents"]}
    assert "decode" in names and "aten::scaled_dot_product_attention" in names
