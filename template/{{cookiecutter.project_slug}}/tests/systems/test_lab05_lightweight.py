"""Lab 05 (labs/systems/05-quantize-distill.md): int8 weights and distillation.

`python -m {{ cookiecutter.package_name }} labs check 05` runs this file.
The models are tiny and trained for a few dozen steps on a small repeating text, so each test
takes seconds; the lab's commands measure the real shapes. Nothing here asserts a speed: only
correctness (close logits, the same tokens, a smaller file, a lower divergence) and that every
figure is reported.
"""

import json
import math
import sys

import pytest
import torch
from torch.nn import functional as F

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.models.gpt import GPT, GPTConfig
from {{ cookiecutter.package_name }}.systems.distill import distillation_loss, divergence
from {{ cookiecutter.package_name }}.systems.kv_cache import generate
from {{ cookiecutter.package_name }}.systems.quantize import (
    BACKENDS,
    QUANTIZERS,
    backend_problem,
    heldout_eval,
    heldout_windows,
    load_text,
    pick_backends,
    state_dict_bytes,
    train_briefly,
)

SENTENCES = (
    "the cat sat on the mat. the dog ate the bone. a bird sang in the tree. "
    "the sun is warm and the sky is blue. we read a book and then we slept. "
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small text that a tiny model learns in a few dozen steps (it repeats)."""
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text(SENTENCES * 20, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(corpus):
    """A tiny GPT trained until its next-character predictions are confident: (model, text)."""
    text = load_text(str(corpus), window=32)
    torch.manual_seed(0)
    config = GPTConfig(
        n_layer=2, n_head=2, n_embd=64, block_size=48, vocab_size=text.codec.vocab_size
    )
    model = GPT(config)
    train_briefly(model, text.train, steps=80, batch=8, length=32, lr=1e-2, seed=0)
    return model, text


def usable(name: str) -> str:
    """`name`, or skip the test where that backend does not work here."""
    problem = backend_problem(name)
    if problem:
        pytest.skip(problem)
    return name


def pick_or_skip() -> str:
    """The backend `auto` would use here (skip the test where none works)."""
    try:
        return pick_backends("auto")[0]
    except UserError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("name", BACKENDS)
def test_int8_logits_are_close_and_greedy_tokens_the_same(trained, name):
    model, text = trained
    int8 = QUANTIZERS[usable(name)](model)
    assert model.blocks[0].mlp.c_fc.weight.dtype == torch.float32  # the original is untouched
    x, y = heldout_windows(text.val, 32)
    with torch.no_grad():
        fp32_logits, _ = model(x, y)
        int8_logits, _ = int8(x, y)
    # int8 rounds each weight to one of 255 steps of its tensor's range: an error of ~0.2% per
    # weight, a percent or two on a logit after two blocks. Far below the gaps between the
    # logits of a trained model, so its choices do not change.
    spread = fp32_logits.abs().max()
    assert (int8_logits - fp32_logits).abs().max() < 0.05 * spread
    loss_fp32, pred_fp32 = heldout_eval(model, x, y)
    loss_int8, pred_int8 = heldout_eval(int8, x, y)
    assert abs(loss_int8 - loss_fp32) / loss_fp32 < 0.01  # the lab's target: within 1%
    assert (pred_fp32 == pred_int8).float().mean() > 0.98
    prompt = text.val[:8][None]
    fp32_text = generate(model, prompt, 32, temperature=0)
    assert torch.equal(generate(int8, prompt, 32, temperature=0), fp32_text)


def test_int8_state_dict_is_smaller(trained):
    model, _ = trained
    int8 = QUANTIZERS[pick_or_skip()](model)
    # The block Linears (4 bytes -> 1 a weight) are most of this model; the tied embedding and
    # output head stay in float32.
    assert state_dict_bytes(int8) < 0.6 * state_dict_bytes(model)


def hide(monkeypatch, *modules: str) -> None:
    """Make `import module` fail as if the package were not installed (None in sys.modules)."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_missing_torchao_is_a_one_line_error_naming_the_fix(monkeypatch, capsys):
    hide(monkeypatch, "torchao", "torchao.quantization")
    assert main(["systems", "quantize", "--set", "backend=torchao"]) == 2
    err = capsys.readouterr().err
    assert "torchao is not installed" in err and "uv add torchao" in err
    with pytest.raises(UserError, match="torchao"):
        pick_backends("torchao")


def test_no_backend_at_all_says_what_to_install(monkeypatch):
    hide(monkeypatch, "torchao", "torchao.quantization", "torch.ao.quantization")
    with pytest.raises(UserError, match=r"no int8 backend works here.*uv add torchao"):
        pick_backends("auto")


@pytest.mark.parametrize(
    ("command", "setting", "named"),
    [
        ("quantize", "backend=fp8", "backend"),
        ("quantize", "engine=tpu", "engine"),
        ("quantize", "n_head=3", "n_head"),
        ("quantize", "new_tokens=300", "block_size"),
        ("quantize", "repeats=0", "repeats"),
        ("distill", "alpha=1.5", "alpha"),
        ("distill", "temperature=0", "temperature"),
        ("distill", "student_n_head=3", "student_n_head"),
        ("distill", "new_tokens=64", "seq_len"),
    ],
)
def test_bad_settings_are_one_line_errors(command, setting, named, capsys):
    assert main(["systems", command, "--set", setting]) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1


QUANTIZE_SMALL = {
    "n_layer": 1,
    "n_head": 2,
    "n_embd": 32,
    "block_size": 32,
    "train_n_layer": 1,
    "train_n_head": 2,
    "train_n_embd": 32,
    "train_len": 32,
    "train_steps": 20,
    "train_batch": 4,
    "batch_size": 2,
    "seq_len": 16,
    "prompt_tokens": 4,
    "new_tokens": 8,
    "repeats": 1,
}


def sets(values: dict) -> list[str]:
    args = []
    for key, value in values.items():
        args += ["--set", f"{key}={value}"]
    return args


def test_quantize_command_reports_speed_size_and_quality(corpus, capsys):
    backend = pick_or_skip()
    args = ["systems", "quantize", "--json", "--set", f"data={corpus}"]
    assert main([*args, "--set", f"backend={backend}", *sets(QUANTIZE_SMALL)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["backend"].startswith(backend)  # e.g. "torch.ao (x86)": backend (engine)
    assert result["backend"] in result["backends"]  # every candidate timed is reported
    assert result["weights"]["judged"].startswith("trained here: 20 steps")
    assert result["forward"]["speedup"] > 0 and result["decode"]["speedup"] > 0
    assert result["forward"]["batch"] == [2, 16] and result["decode"]["new_tokens"] == 8
    assert result["size"]["int8_bytes"] < result["size"]["fp32_bytes"]
    quality = result["quality"]
    assert math.isfinite(quality["loss_fp32"]) and abs(quality["quality_delta"]) < 0.05
    assert result["int8_quality_delta"] == quality["quality_delta"]
    assert result["int8_speedup"] == result["forward"]["speedup"]


def test_quantize_prints_a_report(corpus, capsys):
    args = ["systems", "quantize", "--set", f"data={corpus}", "--set", f"backend={pick_or_skip()}"]
    assert main([*args, *sets(QUANTIZE_SMALL)]) == 0
    out = capsys.readouterr().out
    assert "batch forward 2 x 16 tokens" in out and "quality_delta" in out
    assert "weights: trained here" in out


def test_distillation_loss():
    """The "your turn" function: the formula, its two ends, and the T^2 scaling."""
    torch.manual_seed(0)
    student = torch.randn(2, 5, 7, requires_grad=True)
    teacher = torch.randn(2, 5, 7)
    targets = torch.randint(0, 7, (2, 5))
    ce = F.cross_entropy(student.reshape(-1, 7), targets.reshape(-1))
    # alpha = 0: plain cross-entropy with the text.
    assert torch.allclose(distillation_loss(student, teacher, targets, 2.0, 0.0), ce)
    # alpha = 1: T^2 * KL(teacher_T || student_T), summed over the vocabulary, mean over tokens.
    for temperature in (1.0, 2.0, 4.0):
        p = F.softmax(teacher / temperature, dim=-1)
        q = F.log_softmax(student / temperature, dim=-1)
        kl = (p * (p.log() - q)).sum(-1).mean()
        loss = distillation_loss(student, teacher, targets, temperature, 1.0)
        assert torch.allclose(loss, temperature**2 * kl, atol=1e-6)
    # A student that already predicts what the teacher does has nothing left to learn from it.
    same = distillation_loss(teacher, teacher, targets, 2.0, 1.0)
    assert same.abs() < 1e-6
    # Halfway: the weighted sum of both ends; and the gradient reaches the student.
    half = distillation_loss(student, teacher, targets, 2.0, 0.5)
    kl_end = distillation_loss(student, teacher, targets, 2.0, 1.0)
    assert torch.allclose(half, 0.5 * kl_end + 0.5 * ce)
    half.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_kl_term_brings_the_student_closer_to_the_teacher(trained):
    teacher, text = trained
    teacher.requires_grad_(False)
    x, _ = heldout_windows(text.val, 32)

    def student_trained(alpha: float) -> GPT:
        torch.manual_seed(1)  # both students: the same start, the same batches
        config = GPTConfig(
            n_layer=1, n_head=2, n_embd=16, block_size=48, vocab_size=teacher.config.vocab_size
        )
        student = GPT(config)

        def loss_fn(model, xb, yb):
            with torch.no_grad():
                teacher_logits, _ = teacher(xb, yb)
            return distillation_loss(model(xb, yb)[0], teacher_logits, yb, 2.0, alpha)

        train_briefly(
            student, text.train, steps=25, batch=8, length=32, lr=1e-2, seed=0, loss_fn=loss_fn
        )
        return student

    distilled, scratch = student_trained(0.9), student_trained(0.0)
    # Divergence from the teacher on held-out text (0 = the same predictions).
    assert divergence(distilled, teacher, x) < divergence(scratch, teacher, x)


DISTILL_SMALL = {
    "teacher_n_layer": 1,
    "teacher_n_head": 2,
    "teacher_n_embd": 32,
    "teacher_steps": 10,
    "student_n_layer": 1,
    "student_n_head": 2,
    "student_n_embd": 16,
    "steps": 5,
    "batch_size": 4,
    "seq_len": 32,
    "prompt_tokens": 4,
    "new_tokens": 8,
    "repeats": 1,
}


def test_distill_command_reports_both_students(corpus, capsys):
    args = ["systems", "distill", "--json", "--set", f"data={corpus}", *sets(DISTILL_SMALL)]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["weights"].startswith("trained here: 10 steps")
    for who in ("distilled", "scratch"):
        assert math.isfinite(result[who]["heldout_loss"]) and result[who]["kl_to_teacher"] >= 0
    assert math.isfinite(result["teacher"]["heldout_loss"])
    assert result["student"]["parameters"] < result["teacher"]["parameters"]
    assert result["parameter_ratio"] > 1
    assert result["forward_speedup"] > 0 and result["decode_speedup"] > 0
    assert result["distill_gain"] == pytest.approx(
        result["scratch"]["heldout_loss"] - result["distilled"]["heldout_loss"]
    )


def test_distill_prints_a_table(corpus, capsys):
    args = ["systems", "distill", "--set", f"data={corpus}", *sets(DISTILL_SMALL)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "student, distilled" in out and "student, from scratch (CE)" in out
    assert "KV-cache decode" in out


@pytest.mark.slow
def test_both_commands_take_a_trained_checkpoint(corpus, tmp_path, capsys):
    """`checkpoint:` a run of `train`: both models of quantize, and distill's teacher, are it."""
    train = ["train", "--config", "configs/tiny.yaml", "--runs-dir", str(tmp_path)]
    settings = ("train.max_steps=5", f"data.path={corpus}", "model.block_size=32")
    for setting in (*settings, "train.sample_tokens=0", "tracking.backend=jsonl"):
        train += ["--set", setting]
    assert main(train) == 0
    (run_dir,) = tmp_path.iterdir()
    capsys.readouterr()
    common = ["--json", "--set", f"checkpoint={run_dir}", "--set", f"data={corpus}"]
    common += ["--set", "repeats=1", "--set", "prompt_tokens=4"]
    assert main(["systems", "quantize", *common, "--set", "train_len=32"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["weights"]["timed"] == result["weights"]["judged"] == f"checkpoint {run_dir}"
    assert result["model"]["n_layer"] == 4 and result["model"]["block_size"] == 32
    assert result["decode"]["new_tokens"] == 28  # capped: 4 + 28 fills the 32-token context
    assert abs(result["quality"]["quality_delta"]) < 0.01
    distill = ["--set", "seq_len=32", "--set", "new_tokens=8", "--set", "steps=5"]
    assert main(["systems", "distill", *common, *distill]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["weights"] == f"checkpoint {run_dir}"
    assert result["teacher"]["n_layer"] == 4 and result["student"]["n_layer"] == 2
