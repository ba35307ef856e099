"""Lab 03 (labs/applied/03-fine-tune.md): a pretrained encoder fine-tuned by the project's loop.

`python -m {{ cookiecutter.package_name }} labs check 03` runs this file.
The encoder here is a tiny BERT saved to a folder (tests/applied/conftest.py): the same
`from_pretrained` path as the shipped MiniLM, in seconds.
"""

import json
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.applied.classify import macro_f1, scores
from {{ cookiecutter.package_name }}.applied.encoder import EncoderConfig, build_classifier
from {{ cookiecutter.package_name }}.applied.predict import load_classifier
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import ConfigError, load_config
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.train import run

from .conftest import classify_config


def test_macro_f1_weighs_every_class_the_same():
    true = [0, 0, 0, 0, 1, 2]
    guess = [0, 0, 0, 0, 0, 2]  # class 1, seen once, always missed
    # per class F1: 0 -> 8/9 (precision 4/5, recall 1), 1 -> 0, 2 -> 1
    assert macro_f1(true, guess, 3) == pytest.approx((8 / 9 + 0 + 1) / 3)
    assert scores(true, guess, 3)["accuracy"] == pytest.approx(5 / 6)
    assert macro_f1([0, 1], [0, 1], 3) == pytest.approx(2 / 3)  # an absent class scores 0


def test_the_run_reports_val_metrics_test_once_and_the_baseline(classify_run):
    summary = json.loads((classify_run / "summary.json").read_text())
    assert summary["task"] == "classify"
    assert set(summary["eval"]) >= {"eval/accuracy", "eval/macro_f1"}
    assert summary["test"]["macro_f1"] > 0.5  # chance is 1/3; a tiny random encoder learns
    assert summary["baseline"]["model"] == "TF-IDF + logistic regression"
    assert summary["data"]["test"] == 14
    lines = (classify_run / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert any("eval/macro_f1" in row for row in rows)
    report = (classify_run / "report.md").read_text()
    assert "## Test split (14 texts, scored once at the end)" in report
    assert "| TF-IDF + logistic regression |" in report
    assert "![](confusion.png)" in report
    assert (classify_run / "confusion.png").read_bytes().startswith(b"\x89PNG")


def test_a_saved_classifier_predicts_what_the_run_measured(classify_run, labelled_csv, capsys):
    from {{ cookiecutter.package_name }}.applied.data import load_texts

    classifier = load_classifier(classify_run)
    texts, true = load_texts(str(labelled_csv)).splits["test"]
    ranked = classifier.predict(texts)
    guess = [classifier.labels.index(next(iter(r))) for r in ranked]
    summary = json.loads((classify_run / "summary.json").read_text())
    assert scores(true, guess, 3)["accuracy"] == pytest.approx(summary["test"]["accuracy"])
    assert all(abs(sum(r.values()) - 1) < 1e-4 for r in ranked)
    assert main(["applied", "predict", str(classify_run), texts[0], "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed[0]["text"] == texts[0]
    assert printed[0]["probabilities"] == pytest.approx(ranked[0], abs=1e-5)


def test_resume_continues_exactly(tiny_encoder, labelled_csv, tmp_path):
    """A run resumed from its step-6 checkpoint ends exactly where the uninterrupted one did."""
    import shutil

    from {{ cookiecutter.package_name }}.checkpoint import list_checkpoints

    config = classify_config(
        tiny_encoder, labelled_csv, train__max_steps=12, train__checkpoint_interval=6
    )
    straight = run(config=config, runs_dir=tmp_path)
    crashed = tmp_path / "crashed"
    shutil.copytree(straight, crashed)
    list_checkpoints(crashed)[-1].unlink()  # as if it had died between step 6 and step 12
    (crashed / "summary.json").unlink()
    resumed = run(resume=crashed)
    final = [json.loads((r / "summary.json").read_text()) for r in (straight, resumed)]
    assert final[1]["resumed_from_step"] == 6
    assert final[0]["final"]["loss"] == final[1]["final"]["loss"]
    assert final[0]["test"] == final[1]["test"]


def test_encoder_problems_are_one_clear_line(tmp_path, labelled_csv):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(UserError, match=r"cannot load the encoder .*local folder holding"):
        build_classifier(EncoderConfig(name=str(empty)), ["a", "b"])
    with pytest.raises(ConfigError, match=r"model\.max_length must be"):
        load_config(
            "configs/applied/classify.yaml", ["model.max_length=4", f"data.path={labelled_csv}"]
        )
    with pytest.raises(ConfigError, match=r"data\.augment must be in"):
        load_config("configs/applied/classify.yaml", ["data.augment=2"])


def test_a_run_of_another_task_is_not_a_classifier(tmp_path, small_config):
    text_run = run(config=small_config(**{"train.max_steps": 2}), runs_dir=tmp_path)
    with pytest.raises(UserError, match="is a 'text' run; give a classify run"):
        load_classifier(text_run)


def test_the_shipped_config_names_the_shipped_encoder_and_data():
    cfg = load_config("configs/applied/classify.yaml")
    assert (cfg.model.name, cfg.data.path, cfg.data.kind) == ("", "", "classify")
    assert cfg.train.max_steps * cfg.train.batch_size >= 3000  # about 8 passes over the texts


def smoke(config, tiny_encoder, labelled_csv, runs_dir):
    """`train --config CONFIG` as the lab runs it, shrunk to two steps of the tiny encoder."""
    values = {
        "model.name": tiny_encoder,
        "model.max_length": 32,
        "data.path": labelled_csv,
        "train.max_steps": 2,
        "train.warmup_steps": 1,
        "train.eval_interval": 2,
        "train.checkpoint_interval": 2,
    }
    sets = [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]
    return ["train", "--config", config, "--runs-dir", str(runs_dir), *sets]


def test_the_lab_command_runs_from_the_shipped_config(tiny_encoder, labelled_csv, tmp_path, capsys):
    args = smoke("configs/applied/classify.yaml", tiny_encoder, labelled_csv, tmp_path)
    assert main(args) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert "| TF-IDF + logistic regression |" in (run_dir / "report.md").read_text()


def test_a_bad_data_file_stops_the_run_and_leaves_no_folder(tmp_path, capsys):
    args = ["train", "--config", "configs/applied/classify.yaml", "--runs-dir", str(tmp_path)]
    assert main([*args, "--set", f"data.path={tmp_path / 'missing.csv'}"]) == 2
    assert "data file not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
