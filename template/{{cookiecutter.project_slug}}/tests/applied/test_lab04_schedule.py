"""Lab 04 (labs/applied/04-freeze-and-lr-find.md): fine-tune gently, and find a learning rate.

`python -m {{ cookiecutter.package_name }} labs check 04` runs this file.
"""

import json
import math

import pytest
import torch

from {{ cookiecutter.package_name }}.applied.classify import ClassifyTask
from {{ cookiecutter.package_name }}.applied.encoder import build_classifier, depth
from {{ cookiecutter.package_name }}.applied.lr_find import steepest_descent
from {{ cookiecutter.package_name }}.checkpoint import load_latest
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import ConfigError
from {{ cookiecutter.package_name }}.optim import build_optimizer
from {{ cookiecutter.package_name }}.train import run

from .conftest import classify_config


@pytest.mark.parametrize(
    ("name", "layers", "expected"),
    [
        ("classifier.weight", 6, 0),
        ("bert.pooler.dense.weight", 6, 0),
        ("bert.encoder.layer.5.attention.self.query.weight", 6, 1),
        ("bert.encoder.layer.0.output.dense.bias", 6, 6),
        ("bert.embeddings.word_embeddings.weight", 6, 7),
        ("distilbert.transformer.layer.2.ffn.lin1.weight", 6, 4),
        ("model.layers.21.attn.Wqkv.weight", 22, 1),
        ("base_model.model.bert.encoder.layer.3.attention.self.value.lora_A.default.weight", 6, 3),
    ],
)
def test_depth_counts_layers_from_the_output(name, layers, expected):
    assert depth(name, layers) == expected


def test_lower_layers_learn_more_slowly(tiny_encoder, labelled_csv):
    cfg = classify_config(tiny_encoder, labelled_csv, finetune__layer_lr_decay=0.5)
    task = ClassifyTask(cfg)
    model = task.build_model()
    optimizer = build_optimizer(model, cfg.train, task.lr_scale)
    rate = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    lr = cfg.train.lr
    for name, p in model.named_parameters():
        assert rate[id(p)] == pytest.approx(lr * 0.5 ** depth(name, 2)), name
    assert rate[id(model.classifier.weight)] == lr
    assert rate[id(model.bert.embeddings.word_embeddings.weight)] == pytest.approx(lr / 8)


def trainable(model):
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_the_schedule_unfreezes_head_then_top_layers_then_all(tiny_encoder, labelled_csv):
    cfg = classify_config(
        tiny_encoder,
        labelled_csv,
        finetune__head_steps=2,
        finetune__top_steps=2,
        finetune__top_layers=1,
    )
    task = ClassifyTask(cfg)
    model = task.build_model()
    everything = {name for name, _ in model.named_parameters()}
    task.before_step(model, 0)
    assert trainable(model) == {n for n in everything if depth(n, 2) == 0}
    assert "classifier.weight" in trainable(model)
    task.before_step(model, 2)
    assert trainable(model) == {n for n in everything if depth(n, 2) <= 1}
    assert any(".layer.1." in n for n in trainable(model))
    assert not any(".layer.0." in n for n in trainable(model))
    task.before_step(model, 4)
    assert trainable(model) == everything


def test_frozen_weights_do_not_move_in_a_real_run(tiny_encoder, labelled_csv, tmp_path):
    cfg = classify_config(
        tiny_encoder,
        labelled_csv,
        finetune__head_steps=4,
        train__max_steps=4,
        train__checkpoint_interval=4,
    )
    run_dir = run(config=cfg, runs_dir=tmp_path)
    trained = load_latest(run_dir)[0]["model"]
    torch.manual_seed(0)
    start = build_classifier(cfg.model, ["retrieval", "setup", "training"]).state_dict()
    moved = {name for name, value in start.items() if not torch.equal(value, trained[name])}
    assert moved == {"classifier.weight", "classifier.bias", *_pooler(start)}


def _pooler(state):
    return {name for name in state if name.startswith("bert.pooler.")}


def test_lora_and_a_freeze_schedule_do_not_mix(tiny_encoder, labelled_csv):
    with pytest.raises(ConfigError, match="LoRA already freezes the encoder"):
        classify_config(tiny_encoder, labelled_csv, model__lora_r=4, finetune__head_steps=5)


def test_steepest_descent_finds_where_the_loss_falls_fastest():
    lrs = [10 ** (-7 + 7 * i / 99) for i in range(100)]
    # flat, then a fall centred at 1e-3 (a sigmoid in log10(lr)), then an explosion at 1e-1
    losses = [
        2 - 1.5 / (1 + math.exp(-3 * (math.log10(lr) + 3))) + (50 * lr if lr > 0.05 else 0)
        for lr in lrs
    ]
    suggested = steepest_descent(lrs, losses)
    assert 10**-3.2 < suggested < 10**-2.8


def test_the_range_test_writes_its_plot_and_suggests_a_rate(
    tiny_encoder, labelled_csv, tmp_path, capsys
):
    out = tmp_path / "lr.png"
    args = ["--set", f"model.name={tiny_encoder}", "--set", f"data.path={labelled_csv}"]
    assert main(["applied", "lr-find", *args, "--steps", "40", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert out.read_bytes().startswith(b"\x89PNG")
    assert 1e-7 <= result["suggested_lr"] <= 1
    assert len(result["lrs"]) == len(result["losses"]) == result["stopped_at"] <= 40
    assert main(["applied", "lr-find", *args, "--steps", "5"]) == 2
    assert "--steps must be >= 20" in capsys.readouterr().err
