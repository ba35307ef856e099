"""Lab 07 (labs/theory/07-mini-gpt.md): the mini-GPT learns 2-digit addition.

`labs check 07` runs this file. A short real run of configs/addition.yaml (smaller model, 20
steps) checks what the lab's commands write: eval/accuracy in metrics.jsonl, held-out exact
match and worked examples in report.md. Then the two pieces the lab explains:
`AdditionTask.get_batch` (the question carries no loss) and greedy decoding of the answers.
The full 1000-step run (>= 99 % held-out exact match) is marked slow: `pytest -m slow`.
"""

import json
import re

import pytest
import torch
import torch.nn.functional as F

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.models import GPT, GPTConfig
from {{ cookiecutter.package_name }}.tasks import AdditionTask
from {{ cookiecutter.package_name }}.tracking import read_metrics

from ..conftest import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "configs" / "addition.yaml"
SMOKE = [
    "model.n_layer=1",
    "model.n_head=2",
    "model.n_embd=32",
    "train.device=cpu",
    "train.max_steps=20",
    "train.warmup_steps=5",
    "train.eval_interval=10",
    "train.eval_iters=2",
    "train.log_interval=5",
    "train.checkpoint_interval=20",
]


def train_args(runs_dir, name: str, overrides: list[str]) -> list[str]:
    args = ["train", "--config", str(CONFIG), "--runs-dir", str(runs_dir), "--set", f"name={name}"]
    for override in overrides:
        args += ["--set", override]
    return args


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """`train --config configs/addition.yaml` (small and short), then `report RUN_DIR`."""
    runs = tmp_path_factory.mktemp("runs")
    assert main(train_args(runs, "smoke", SMOKE)) == 0
    run_dir = runs / "smoke"
    (run_dir / "report.md").unlink()
    assert main(["report", str(run_dir)]) == 0  # the lab's second command rebuilds it
    return run_dir


@pytest.fixture(scope="module")
def task():
    return AdditionTask(load_config(CONFIG, ["train.device=cpu"]))


def test_metrics_log_held_out_exact_match(smoke_run):
    evals = [r for r in read_metrics(smoke_run) if "eval/accuracy" in r]
    assert [r["step"] for r in evals] == [10, 20]
    assert all(0.0 <= r["eval/accuracy"] <= 1.0 for r in evals)
    summary = json.loads((smoke_run / "summary.json").read_text())
    assert summary["task"] == "addition"
    assert summary["eval"]["eval/accuracy"] == evals[-1]["eval/accuracy"]


def test_report_shows_accuracy_and_worked_examples(smoke_run):
    report = (smoke_run / "report.md").read_text(encoding="utf-8")
    accuracy = json.loads((smoke_run / "summary.json").read_text())["eval"]["eval/accuracy"]
    assert f"| eval/accuracy | {accuracy:.4g} |" in report
    rows = re.findall(r"^\| `(\d\d)\+(\d\d)=` \| `(\d{3})` \| `([^`]*)`( ✗)? \|$", report, re.M)
    assert len(rows) == 8  # eight held-out problems, wrong ones first
    for a, b, expected, output, wrong in rows:
        assert int(a) + int(b) == int(expected)  # the table's "expected" is the true sum
        assert len(output) == 3  # greedy decoding writes exactly the answer's 3 tokens
        assert bool(wrong) == (output != expected)
    wrong_first = [bool(r[4]) for r in rows]
    assert wrong_first == sorted(wrong_first, reverse=True)


def check_batch(task: AdditionTask) -> None:
    """What `get_batch` must give: inputs = the problem minus its last character, targets =
    the problem shifted by one, with -1 (no loss) wherever the next character is still part
    of the question. Raises AssertionError otherwise."""
    x, y = task.get_batch("train", 16, torch.Generator().manual_seed(0), "cpu")
    p = task.prompt_len  # 'ab+cd=' is 6 characters
    assert x.shape == y.shape == (16, p + task.answer_len - 1), "x and y: (B, 8) for 2 digits"
    for xi, yi in zip(x.tolist(), y.tolist(), strict=True):
        text = task.codec.decode(xi) + task.codec.decode([yi[-1]])  # 'ab+cd=sss'
        a, b, answer = int(text[:2]), int(text[3:5]), text[p:]
        assert text[2] == "+" and text[5] == "=" and int(answer) == a + b, text
        assert yi[: p - 1] == [-1] * (p - 1), f"the question must carry no loss: {yi}"
        assert task.codec.decode(yi[p - 1 :]) == answer, f"targets must be the answer: {yi}"
    # So the loss is the cross-entropy of the answer digits alone.
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=12))
    logits, loss = model(x, y)
    answer_only = F.cross_entropy(logits[:, p - 1 :].reshape(-1, 12), y[:, p - 1 :].reshape(-1))
    assert loss.item() == pytest.approx(answer_only.item(), rel=1e-5)


def test_get_batch_masks_the_question(task):
    check_batch(task)


def _no_mask(self, split, batch_size, generator, device):
    seq = self.splits[split][
        torch.randint(len(self.splits[split]), (batch_size,), generator=generator)
    ]
    return seq[:, :-1], seq[:, 1:]


def _mask_one_too_many(self, split, batch_size, generator, device):
    x, y = _no_mask(self, split, batch_size, generator, device)
    y = y.clone()
    y[:, : self.prompt_len] = -1  # hides the first answer digit too
    return x, y


def _mask_one_too_few(self, split, batch_size, generator, device):
    x, y = _no_mask(self, split, batch_size, generator, device)
    y = y.clone()
    y[:, : self.prompt_len - 2] = -1  # still asks the model to predict '='
    return x, y


def _not_shifted(self, split, batch_size, generator, device):
    x, y = _no_mask(self, split, batch_size, generator, device)
    y = x.clone()
    y[:, : self.prompt_len - 1] = -1
    return x, y


@pytest.mark.parametrize("broken", [_no_mask, _mask_one_too_many, _mask_one_too_few, _not_shifted])
def test_check_batch_catches_broken_masks(broken, task, monkeypatch):
    monkeypatch.setattr(AdditionTask, "get_batch", broken)
    with pytest.raises(AssertionError):
        check_batch(task)


def test_greedy_decoding_writes_answers_of_the_right_length(task):
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=12)).eval()
    prompts, predicted, answers = task.predict(model, "cpu", limit=50)
    assert prompts.shape == (50, task.prompt_len)
    assert predicted.shape == answers.shape == (50, task.answer_len)
    # Greedy: at each step append the single most likely next token, given all before it.
    idx = prompts
    with torch.no_grad():
        for _ in range(task.answer_len):
            logits, _ = model(idx)
            idx = torch.cat([idx, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    assert torch.equal(predicted, idx[:, task.prompt_len :])
    exact = (predicted == answers).all(dim=1).float().mean().item()
    assert task.eval_metrics(model, "cpu", limit=50)["accuracy"] == pytest.approx(exact)


@pytest.mark.slow
def test_full_run_reaches_99_percent_on_unseen_problems(tmp_path, capsys):
    """configs/addition.yaml as it is: 1000 steps, about a minute on a 2-core CPU."""
    assert main(train_args(tmp_path, "full", ["train.device=cpu"])) == 0
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    with capsys.disabled():
        print(
            f"\naddition: held-out exact match {summary['eval']['eval/accuracy']:.3f}, "
            f"{summary['wall_time_s']:.0f} s wall ({summary['train_time_s']:.0f} s training)"
        )
    assert summary["steps"] == 1000
    assert summary["eval"]["eval/accuracy"] >= 0.99
