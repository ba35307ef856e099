"""Lab 04 (labs/theory/04-cnn.md): a CNN from your own layers learns scikit-learn's digits.

`labs check 04` runs this file. The full run (>= 99 % test accuracy) is the slow test at the
end; the others check the parts in seconds.
"""

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.theory.cnn import CNN, CNNConfig
from {{ cookiecutter.package_name }}.theory.tasks import (
    DigitsTask,
    shift_images,
    split_indices,
)

CONFIG = "configs/theory/digits.yaml"


def test_cnn_output_shape_and_loss():
    model = CNN(CNNConfig(channels=[4, 8], hidden=16))
    logits, loss = model(torch.randn(5, 1, 8, 8), torch.tensor([0, 1, 2, 3, 9]))
    assert logits.shape == (5, 10)
    assert loss.shape == () and torch.isfinite(loss)
    assert model(torch.randn(2, 1, 8, 8))[1] is None


def test_cnn_uses_only_the_from_scratch_layers():
    from {{ cookiecutter.package_name }}.theory import layers

    model = CNN(CNNConfig())
    ours = {layers.Conv2d, layers.ReLU, layers.MaxPool2d, layers.Linear, layers.Dropout}
    for module in model.modules():
        assert type(module) in ours | {CNN, torch.nn.Sequential}, type(module)


def test_shift_images_moves_each_image_by_at_most_max_shift():
    images = torch.zeros(200, 1, 8, 8)
    images[:, 0, 3, 4] = 1.0  # one bright pixel, away from the border
    shifted = shift_images(images, 1, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    assert torch.equal(shifted.sum(dim=(1, 2, 3)), torch.ones(200))  # nothing lost or added
    rows, cols = shifted[:, 0].nonzero(as_tuple=True)[1:]
    assert set(rows.tolist()) == {2, 3, 4} and set(cols.tolist()) == {3, 4, 5}  # every offset
    assert shift_images(images, 0, torch.Generator()) is images


def test_splits_are_disjoint_stratified_and_tuning_never_sees_the_test_set():
    labels = load_digits().target
    train, test = split_indices(labels, "test", 0.2)
    tune_train, tune = split_indices(labels, "tune", 0.2)
    assert len(test) == 360 and not set(train) & set(test)
    assert not (set(tune_train) | set(tune)) & set(test)  # tuning stays inside the train part
    assert set(tune_train) | set(tune) == set(train)
    share = np.bincount(labels[test], minlength=10) / len(test)
    assert np.abs(share - np.bincount(labels, minlength=10) / len(labels)).max() < 0.01


def test_the_task_evaluates_on_every_held_out_image():
    cfg = load_config(CONFIG, ["model.channels=[4, 8]", "model.hidden=16"])
    task = DigitsTask(cfg)
    model = task.build_model()
    images, predicted, labels = task.predict(model, "cpu")
    assert len(images) == len(predicted) == len(labels) == 360
    acc = task.eval_metrics(model, "cpu")["accuracy"]
    assert acc == pytest.approx(float((predicted == labels).float().mean()))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.kernel_size=4", "model.kernel_size must be odd"),
        ("model.channels=[8, 8, 8, 8]", "must be divisible by 2 ** (number of stages"),
        ("data.holdout=everything", "data.holdout"),
        ("data.shift=5", "data.shift must be 0, 1 or 2"),
    ],
)
def test_bad_settings_are_refused_with_the_key(override, message, tmp_path, capsys):
    code = main(["train", "--config", CONFIG, "--set", override, "--runs-dir", str(tmp_path)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_short_run_logs_accuracy_and_draws_the_report_figures(tmp_path, capsys):
    overrides = [
        "train.max_steps=60",
        "train.eval_interval=60",
        "train.checkpoint_interval=60",
        "train.warmup_steps=5",
        "name=short",
    ]
    args = ["train", "--config", CONFIG, "--runs-dir", str(tmp_path)]
    assert main(args + [a for o in overrides for a in ("--set", o)]) == 0
    run = tmp_path / "short"
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    accuracy = [r["eval/accuracy"] for r in evals if "eval/accuracy" in r][-1]
    assert accuracy > 0.5  # 60 steps is far from done, but well above chance (0.1)
    summary = json.loads((run / "summary.json").read_text())
    assert sum(map(sum, summary["confusion"])) == 360
    report = (run / "report.md").read_text()
    for picture in ("confusion.png", "misclassified.png"):
        assert (run / picture).read_bytes().startswith(b"\x89PNG")
        assert f"]({picture})" in report
    capsys.readouterr()
    # A CNN has no attention to draw: one line that says which runs do.
    assert main(["theory", "attention", str(run), "--prompt", "12"]) == 2
    assert "a 'digits' run does not generate text" in capsys.readouterr().err


@pytest.mark.slow
def test_the_config_reaches_99_percent_on_the_test_set(tmp_path):
    assert main(["train", "--config", CONFIG, "--runs-dir", str(tmp_path), "--set", "name=d"]) == 0
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["eval"]["eval/accuracy"] >= 0.99
