"""Lab 02 (labs/systems/02-mixed-precision.md): fp32 vs bf16 autocast vs fp16 + GradScaler.

`python -m {{ cookiecutter.package_name }} labs check 02` runs this file.
The model is tiny here so the tests take seconds; the lab's command measures a 4-layer, 256-wide
model.
"""

import json

import pytest
import torch

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.device import pick_precision
from {{ cookiecutter.package_name }}.models.gpt import GPT, GPTConfig
from {{ cookiecutter.package_name }}.systems.precision import make_batches, train_step

SMALL = {
    "n_layer": 1,
    "n_head": 2,
    "n_embd": 32,
    "block_size": 16,
    "batch_size": 2,
    "steps": 3,
    "repeats": 1,
    "device": "cpu",
}


def small_args(*extra: str) -> list[str]:
    args = ["systems", "amp"]
    for key, value in SMALL.items():
        args += ["--set", f"{key}={value}"]
    return [*args, *extra]


def train(dtype: str, initial: dict, batches: list) -> list[float]:
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=64))
    model.load_state_dict(initial)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    precision = pick_precision("cpu", dtype)
    scaler = torch.amp.GradScaler("cpu", enabled=precision.use_scaler)
    losses = [train_step(model, optimizer, scaler, x, y, precision) for x, y in batches]
    assert all(p.grad is None for p in model.parameters())  # gradients cleared for the next step
    return losses


def test_train_step_learns_in_bf16_and_matches_fp32():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=64))
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    batches = make_batches(1, 8, 16, 64, seed=1, device="cpu") * 30  # one batch, 30 times
    fp32 = train("float32", initial, batches)
    bf16 = train("bfloat16", initial, batches)
    assert fp32[-1] < 0.5 * fp32[0] and bf16[-1] < 0.5 * bf16[0]  # both learn the batch
    assert bf16[0] == pytest.approx(fp32[0], rel=0.01)  # same weights, same batch
    assert bf16[-1] == pytest.approx(fp32[-1], rel=0.1)  # and the same course, within rounding
    assert bf16 != fp32  # the bf16 steps really ran in lower precision


def test_amp_compares_every_precision_against_fp32(capsys):
    assert main(small_args("--json")) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {row["precision"]: row for row in result["rows"]}
    assert list(rows) == ["float32", "bfloat16", "float16"]
    fp32, bf16, fp16 = rows["float32"], rows["bfloat16"], rows["float16"]
    assert fp32["skipped"] is None and fp32["loss_diff"] == 0 and fp32["logits_max_diff"] == 0
    assert fp32["train_speedup"] == 1 and fp32["infer_speedup"] == 1
    assert bf16["skipped"] is None
    assert 0 < bf16["logits_max_diff"] < 0.1  # autocast changed the numbers, a little
    assert abs(bf16["loss_diff"]) < 0.05 and abs(bf16["infer_loss_diff"]) < 0.05
    for row in (fp32, bf16):
        assert row["train_tokens_per_s"] > 0 and row["infer_tokens_per_s"] > 0
        assert row["train_peak_mb"] > 0 and row["infer_peak_mb"] > 0  # measured by the profiler
    assert fp16["skipped"] == "needs a CUDA GPU"  # these tests run on the CPU


def test_amp_prints_a_table(capsys):
    assert main(small_args()) == 0
    out = capsys.readouterr().out
    assert "Training:" in out and "Inference:" in out
    assert "bf16 autocast" in out
    assert "fp16 + GradScaler  skipped: needs a CUDA GPU" in out


def test_bad_setting_is_a_one_line_error(capsys):
    assert main(small_args("--set", "repeats=0")) == 2
    assert "repeats" in capsys.readouterr().err
