import logging
import math
import shutil
from pathlib import Path

import pytest
import torch

from {{ cookiecutter.package_name }}.checkpoint import CheckpointError, list_checkpoints
from {{ cookiecutter.package_name }}.config import Config, load_config
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.models import GPT, GPTConfig
from {{ cookiecutter.package_name }}.optim import build_optimizer, lr_at
from {{ cookiecutter.package_name }}.sample import (
    latest_checkpoint,
    load_for_generation,
    stream_text,
)
from {{ cookiecutter.package_name }}.tasks import AdditionTask, TextTask, task_class
from {{ cookiecutter.package_name }}.tasks.text import Codec, read_corpus
from {{ cookiecutter.package_name }}.tracking import read_metrics
from {{ cookiecutter.package_name }}.train import run

from .conftest import small_overrides


def final_loss(run_dir: Path) -> float:
    return [r for r in read_metrics(run_dir) if "loss" in r][-1]["loss"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short real run shared by several tests (40 steps, checkpoints every 10)."""
    cfg = load_config(None, small_overrides(**{"train.keep_last": 5, "name": "ref"}))
    runs = tmp_path_factory.mktemp("runs")
    return cfg, run(cfg, runs)


def test_loss_goes_down_and_artefacts(trained):
    _, run_dir = trained
    rows = [r for r in read_metrics(run_dir) if "loss" in r]
    assert rows[0]["step"] == 1 and rows[-1]["step"] == 40
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.5
    assert all({"step", "loss", "lr", "tokens_per_s"} <= r.keys() for r in rows)
    assert not (run_dir / ".lock").exists()  # released at the end
    evals = [r for r in read_metrics(run_dir) if "eval/loss" in r]
    assert [r["step"] for r in evals] == [20, 40]
    for name in ("config.yaml", "metrics.jsonl", "report.md", "loss.png", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert [p.name for p in list_checkpoints(run_dir)][-1] == "step_0000040.pt"
    assert "## Environment" in (run_dir / "report.md").read_text()


def test_resume_matches_and_corrupt_checkpoint_falls_back(trained, tmp_path, caplog):
    _, ref = trained
    copy = tmp_path / "copy"
    shutil.copytree(ref, copy)
    ckpts = list_checkpoints(copy)
    ckpts[-2].unlink()  # step 30 gone: fall back further
    data = ckpts[-1].read_bytes()
    ckpts[-1].write_bytes(data[: len(data) // 2])  # step 40 truncated, as by a crash
    with caplog.at_level(logging.WARNING):
        run(resume=copy)
    assert "damaged or truncated" in caplog.text and "weights_only" not in caplog.text
    assert final_loss(copy) == final_loss(ref)  # resumed from step 20, bit-identical result
    steps = [r["step"] for r in read_metrics(copy) if "loss" in r]
    assert steps == sorted(set(steps))  # no duplicated lines after the resume


def test_all_checkpoints_corrupt(tmp_path, trained):
    _, ref = trained
    copy = tmp_path / "copy"
    shutil.copytree(ref, copy)
    for p in list_checkpoints(copy):
        p.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="unreadable"):
        run(resume=copy)


def test_existing_run_name_refused(trained):
    cfg, ref = trained
    with pytest.raises(UserError, match="already exists"):
        run(cfg, ref.parent)


def test_overfit_one_batch():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=16, vocab_size=30))
    opt = build_optimizer(model, Config().train)
    x = torch.randint(0, 30, (4, 16))
    y = torch.randint(0, 30, (4, 16))
    for _ in range(150):
        _, loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    assert loss.item() < 0.05


def test_lr_schedule():
    t = Config().train
    t.max_steps, t.warmup_steps, t.lr, t.min_lr = 100, 10, 1.0, 0.1
    assert lr_at(0, t) < lr_at(9, t) < lr_at(10, t) == pytest.approx(1.0)
    assert lr_at(100, t) == pytest.approx(0.1)


def test_optimizer_groups():
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=10, bias=True))
    opt = build_optimizer(model, Config().train)
    decay, no_decay = opt.param_groups
    assert all(p.dim() >= 2 for p in decay["params"]) and no_decay["weight_decay"] == 0
    assert all(p.dim() < 2 for p in no_decay["params"])


def test_text_task_batches():
    cfg = load_config(
        None, ["model.block_size=16", f"data.path={Path(__file__).parents[1] / 'docs'}"]
    )
    task = TextTask(cfg)
    gen = torch.Generator().manual_seed(0)
    x, y = task.get_batch("train", 4, gen, "cpu")
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert task.codec.decode(task.codec.encode("device")) == "device"
    byte = Codec.from_text("x", "byte")
    assert byte.vocab_size == 256 and byte.decode(byte.encode("héllo")) == "héllo"


def test_missing_data_path_is_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_corpus(tmp_path / "nope")


def test_addition_task_masks_the_question():
    task = AdditionTask(load_config(None, ["data.kind=addition", "data.digits=2"]))
    x, y = task.get_batch("train", 8, torch.Generator().manual_seed(0), "cpu")
    assert x.shape == (8, 8)
    assert (y[:, :5] == -1).all() and (y[:, 5:] >= 0).all()
    assert task.codec.decode(task.splits["val"][0].tolist())[2] == "+"
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=12)).eval()
    acc = task.eval_metrics(model, "cpu", limit=20)["accuracy"]
    assert 0.0 <= acc <= 1.0
    examples = task.report(model, "cpu")["examples"]
    assert len(examples) == 8 and examples[0]["input"].endswith("=")


def test_datasets_path(tmp_path):
    pytest.importorskip("datasets", reason="optional extra 'datasets' is not installed")
    f = tmp_path / "corpus.txt"
    f.write_text("hello world\n" * 200)
    cfg = load_config(None, ["data.kind=datasets", f"data.path={f}", "model.block_size=16"])
    task = task_class("datasets")(cfg)
    assert task.codec.decode(task.codec.encode("hello")) == "hello"


def test_sample_helpers(trained):
    _, run_dir = trained
    assert latest_checkpoint(run_dir.parent) == list_checkpoints(run_dir)[-1]
    model, codec = load_for_generation(run_dir)
    texts = list(stream_text(model, codec, "The ", max_new_tokens=5, temperature=0.8, top_k=5))
    assert len(texts) == 5 and all(t.startswith("The ") for t in texts)
    assert len(texts[-1]) > len(texts[0])
    assert latest_checkpoint(run_dir / "nothing-here") is None


@pytest.mark.parametrize("backend", ["tensorboard", "wandb"])
def test_optional_trackers_resume_cleanly(backend, small_config, tmp_path, monkeypatch):
    pytest.importorskip(backend, reason=f"optional extra '{backend}' is not installed")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)  # offline: nothing leaves the machine
    cfg = small_config(**{"tracking.backend": backend, "train.max_steps": 20, "name": backend})
    run_dir = run(cfg, tmp_path)
    assert read_metrics(run_dir)  # jsonl is written whatever the backend
    list_checkpoints(run_dir)[-1].unlink()  # as if killed after step 10
    if backend == "wandb":
        run_id = (run_dir / "wandb_id.txt").read_text()
        run(resume=run_dir)
        assert (run_dir / "wandb_id.txt").read_text() == run_id  # the same W&B run continues
        return
    run(resume=run_dir)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    steps = [e.step for e in events.Scalars("loss")]
    assert steps == sorted(set(steps)) and steps[-1] == 20  # steps 11-20 logged once, not twice


def test_grad_accum_and_cpu_bf16_autocast(small_config, tmp_path):
    cfg = small_config(**{"train.grad_accum": 2, "train.dtype": "bfloat16", "train.max_steps": 6})
    run_dir = run(cfg, tmp_path)
    rows = [r for r in read_metrics(run_dir) if "loss" in r]
    assert rows[-1]["step"] == 6 and all(r["loss"] == r["loss"] for r in rows)  # no NaN


def test_early_stopping(small_config, tmp_path):
    # A learning rate this small cannot improve the eval loss: the second eval stops the run.
    cfg = small_config(
        **{
            "train.lr": 1e-12,
            "train.min_lr": 1e-12,
            "train.eval_interval": 5,
            "train.early_stopping_patience": 1,
        }
    )
    run_dir = run(cfg, tmp_path)
    summary = (run_dir / "summary.json").read_text()
    assert '"stopped_early": true' in summary
    assert max(r["step"] for r in read_metrics(run_dir)) == 10


def test_report_of_unfinished_run(trained, tmp_path):
    from {{ cookiecutter.package_name }}.report import write_report

    _, ref = trained
    copy = tmp_path / "copy"
    shutil.copytree(ref, copy)
    (copy / "summary.json").unlink()
    text = write_report(copy).read_text()
    assert "did not finish" in text and "final train loss" in text
    assert (copy / "loss.png").stat().st_size > 1000


@pytest.mark.slow
def test_torch_compile_option_trains_and_saves_plain_weights(small_config, tmp_path):
    """`train.compile: true` wraps the model in torch.compile; checkpoints hold the plain
    weights (no `_orig_mod.` prefix), so they load into an uncompiled GPT."""
    run_dir = run(small_config(**{"train.compile": True, "train.max_steps": 10}), tmp_path)
    losses = [r["loss"] for r in read_metrics(run_dir) if "loss" in r]
    assert losses and all(math.isfinite(x) for x in losses)
    state = torch.load(list_checkpoints(run_dir)[-1], weights_only=True)
    assert not any(key.startswith("_orig_mod.") for key in state["model"])
