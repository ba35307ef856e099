"""Lab 05 (labs/applied/05-lora.md): LoRA adapters, saved, reloaded and merged.

`python -m {{ cookiecutter.package_name }} labs check 05` runs this file.
"""

import importlib.util

import pytest
import torch

from {{ cookiecutter.package_name }}.applied import encoder
from {{ cookiecutter.package_name }}.applied.data import load_texts
from {{ cookiecutter.package_name }}.applied.encoder import (
    EncoderConfig,
    build_classifier,
    class_probabilities,
    count_parameters,
)
from {{ cookiecutter.package_name }}.applied.export import export
from {{ cookiecutter.package_name }}.applied.predict import load_classifier
from {{ cookiecutter.package_name }}.config import ConfigError, load_config
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.train import run

from .conftest import classify_config

LABELS = ["data", "deployment", "evaluation", "retrieval", "setup", "training"]


def test_lora_on_the_shipped_encoder_trains_under_two_percent():
    model = build_classifier(EncoderConfig(lora_r=8), LABELS)
    counts = count_parameters(model)
    assert 0 < counts["share"] <= 0.02
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in n or "classifier" in n for n in names)
    assert any("query.lora_A" in n for n in names) and any("value.lora_B" in n for n in names)


def test_the_shipped_lora_config_is_the_classify_config_with_adapters():
    lora = load_config("configs/applied/lora.yaml")
    full = load_config("configs/applied/classify.yaml")
    assert (lora.model.lora_r, lora.data.path, lora.data.kind) == (8, "", "classify")
    assert lora.train.max_steps == full.train.max_steps


@pytest.fixture(scope="module")
def lora_run(tiny_encoder, labelled_csv, tmp_path_factory):
    cfg = classify_config(tiny_encoder, labelled_csv, model__lora_r=4, train__max_steps=20)
    return run(config=cfg, runs_dir=tmp_path_factory.mktemp("runs"))


def test_adapters_save_reload_and_merge_with_the_same_predictions(lora_run, labelled_csv, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    texts = load_texts(str(labelled_csv)).splits["test"][0]
    trained = load_classifier(lora_run)
    expected = trained.probabilities(texts)
    written = export(lora_run, tmp_path / "export")
    assert set(written) == {"adapter", "merged"}
    adapter_files = {p.name for p in written["adapter"].iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= adapter_files
    assert (written["adapter"] / "adapter_model.safetensors").stat().st_size < 2_000_000

    base = build_classifier(EncoderConfig(name=trained.cfg.model.name), trained.labels)
    reloaded = PeftModel.from_pretrained(base, written["adapter"])
    merged = AutoModelForSequenceClassification.from_pretrained(written["merged"])
    assert merged.config.id2label == dict(enumerate(trained.labels))
    for model in (reloaded, merged):
        got = class_probabilities(model, trained.tokenizer, texts, 32, "cpu")
        assert torch.allclose(got, expected, atol=1e-5)
    with pytest.raises(UserError, match="already exists"):
        export(lora_run, tmp_path / "export")


def test_a_full_fine_tuning_run_exports_one_plain_model(classify_run, tmp_path):
    written = export(classify_run, tmp_path / "out")
    assert set(written) == {"model"}
    assert (written["model"] / "config.json").is_file()
    assert not list(tmp_path.glob(".*partial"))


def test_without_peft_lora_says_how_to_install_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        encoder.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "peft" else real(name, *a),
    )
    with pytest.raises(UserError, match="uv sync --extra lora"):
        encoder.add_lora(torch.nn.Linear(2, 2), EncoderConfig(lora_r=4))


def test_qlora_needs_a_gpu_and_lora(tiny_encoder, labelled_csv):
    with pytest.raises(ConfigError, match="load_in_4bit needs LoRA"):
        classify_config(tiny_encoder, labelled_csv, model__load_in_4bit=True)
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="needs an NVIDIA GPU"):
            build_classifier(
                EncoderConfig(name=str(tiny_encoder), lora_r=4, load_in_4bit=True), LABELS
            )


def test_the_lab_commands_train_lora_and_export(tiny_encoder, labelled_csv, tmp_path, capsys):
    from pathlib import Path

    from {{ cookiecutter.package_name }}.cli import main

    from .test_lab03_finetune import smoke

    assert main(smoke("configs/applied/lora.yaml", tiny_encoder, labelled_csv, tmp_path)) == 0
    captured = capsys.readouterr()
    assert "LoRA r=8: training" in captured.err
    run_dir = Path(captured.out.strip().splitlines()[-1])
    assert main(["applied", "export", str(run_dir)]) == 0
    assert "merged: " in capsys.readouterr().out
    assert (run_dir / "export" / "merged" / "config.json").is_file()
